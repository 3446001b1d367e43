/**
 * `streamRunResult`: an agent CLI run's result from how its command ended and what its stream
 * said. Invariant: the watchdogs' verdict comes first; a run succeeds only when the CLI exited 0
 * and its stream says the turn ended well, and a successful run always reports a `result` event
 * (the stream's own, or one made here with the final text).
 */
import type { RunCommandResult } from '../process/run-command.js';
import type { RunContext, RunFailure, RunResult, Usage } from './runtime.js';
import { guarded } from './emit-event.js';
import { howItEnded, watchdogResult, withDetail } from './watchdog-result.js';
import type { RunBase } from './watchdog-result.js';

/** What a CLI's stream said about the whole run. */
export interface StreamSummary {
  /** The result's output: the CLI's final text. */
  output: string;
  sessionId?: string | undefined;
  usage?: Usage | undefined;
  /** The stream says the turn ended well (the exit code is checked here). */
  succeeded: boolean;
  /** The stream reported a `result` event of its own; else a successful run reports one with `output`. */
  reportsResult?: boolean;
}

/** A failed run's message and classified cause. */
export type FailureReport = Pick<RunResult, 'message' | 'failure'>;

/** The run's result: the watchdogs', else success, else the failure `failed` describes. */
export function streamRunResult(result: RunCommandResult, context: RunContext, summary: StreamSummary, failed: () => FailureReport): RunResult {
  const base: RunBase = {
    output: summary.output,
    exitCode: result.exitCode,
    duration: result.duration,
    ...(summary.sessionId === undefined ? {} : { sessionId: summary.sessionId }),
    ...(summary.usage === undefined ? {} : { usage: summary.usage }),
  };
  const ended = watchdogResult(result, context, base);
  if (ended !== null) return ended;
  if (result.exitCode === 0 && summary.succeeded) {
    if (summary.reportsResult !== true) guarded(() => context.onEvent?.({ type: 'result', ok: true, text: summary.output }));
    return { ...base, outcome: 'success', message: '' };
  }
  return { ...base, outcome: 'failed', ...failed() };
}

/**
 * The failure of a CLI whose stream reports a turn's error as a message (Codex, Gemini): a
 * missing CLI (exit 127 before any session) is `config`; otherwise the message — the stream's
 * error, else the last plain line — says what happened and `classify` why.
 */
export function turnFailure(cli: string, exitCode: number | null, facts: { sessionId?: string; errorMessage?: string }, lastPlainLine: string, classify: (cause: string) => RunFailure): FailureReport {
  if (exitCode === 127 && facts.sessionId === undefined) return { message: `${cli} CLI not found: ${lastPlainLine}`, failure: { kind: 'config' } };
  const cause = facts.errorMessage ?? lastPlainLine;
  return { message: withDetail(howItEnded(exitCode, 'ended without completing its turn'), cause), failure: classify(cause) };
}
