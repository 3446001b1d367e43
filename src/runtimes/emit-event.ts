/**
 * `emitEvent` / `emitOutput`: a run's events and transcript text handed to the caller's
 * callbacks. Invariant: a callback's exception never reaches the run — thrown inside
 * `runCommand`'s handlers it would crash the process or leave the agent running unwatched.
 */
import type { AgentEvent, RunContext } from './runtime.js';

/** Reports an event and its transcript text (if any) to the context's callbacks. */
export function emitEvent(context: RunContext, event: AgentEvent, transcript: string): void {
  guarded(() => context.onEvent?.(event));
  if (transcript !== '') emitOutput(context, transcript);
}

/** Reports transcript text to the context's `onOutput`. */
export function emitOutput(context: RunContext, text: string): void {
  guarded(() => context.onOutput?.(text));
}

/**
 * Runs a caller's callback, dropping its exceptions: thrown inside runCommand's event handlers
 * they would crash the process or leave the agent running with nobody watching it.
 */
export function guarded(callback: () => void): void {
  try {
    callback();
  } catch {
    // The callback's own failure is the caller's concern; the run carries on under its watchdogs.
  }
}
