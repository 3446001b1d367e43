/**
 * `watchdogResult`: the result of a run the watchdogs ended, and `howItEnded` for one they did
 * not. Invariant: a run that was stalled, timed out, stopped or never started gets its outcome
 * and message here, the same for every runtime; only a command that exited on its own is left for
 * the runtime to judge, and its failure message starts the same way in every runtime.
 */
import type { RunCommandResult } from '../process/run-command.js';
import type { RunContext, RunFailure, RunResult } from './runtime.js';

/** A run's result before its outcome and message are known. */
export type RunBase = Omit<RunResult, 'outcome' | 'message'>;

/**
 * The result for a run the watchdogs ended (stalled, timed out, stopped, or never started); null
 * when the command exited on its own and the runtime must judge it. A spawn error is a failure
 * of kind `spawnFailure` (`config` unless null).
 */
export function watchdogResult(result: RunCommandResult, context: RunContext, base: RunBase, spawnFailure: RunFailure | null = { kind: 'config' }): RunResult | null {
  switch (result.outcome) {
    case 'exited':
      return null;
    case 'stalled':
      return { ...base, outcome: 'stalled', message: `produced no output for ${seconds(context.stallTimeout)} and was killed` };
    case 'timeout':
      return { ...base, outcome: 'timeout', message: `was still running after ${seconds(context.timeout)} and was killed` };
    case 'aborted':
      return { ...base, outcome: 'aborted', message: 'was stopped' };
    case 'spawn-error':
      return { ...base, outcome: 'failed', message: `could not start: ${result.error ?? 'unknown error'}`, ...(spawnFailure === null ? {} : { failure: spawnFailure }) };
  }
}

/** How a command that was not stopped ended: killed by a signal, or its exit code — `atZero` for a 0 exit that still failed. */
export function howItEnded(exitCode: number | null, atZero = 'exited with code 0'): string {
  return exitCode === null ? 'was killed by a signal' : exitCode === 0 ? atZero : `exited with code ${exitCode}`;
}

/** `how: detail`, or `how` alone without a detail. */
export function withDetail(how: string, detail: string): string {
  return detail === '' ? how : `${how}: ${detail}`;
}

function seconds(ms: number): string {
  return `${ms / 1000}s`;
}
