/**
 * `RetryCap`: Loom's limit on an agent CLI's own retries (`cliRetries`), read from its events.
 * Invariant: the run is stopped on the first retry beyond the limit in a row — only a retry the
 * CLI has no fallback for counts, and any event but a session id resets the count — and a run
 * the cap stopped fails as transient (`rate-limit` or `overloaded`), never as `aborted`.
 */
import type { AgentEvent, RunContext, RunResult } from './runtime.js';

/** How many times in a row an agent CLI may retry on its own when the run does not say (`cliRetries`). */
export const DEFAULT_CLI_RETRIES = 2;

/** The CLI's retries the run allows in a row. */
export function cliRetriesOf(context: RunContext): number {
  return context.cliRetries ?? DEFAULT_CLI_RETRIES;
}

/**
 * Counts an agent CLI's own retries (`retrying` events) in a row — any other event but the session
 * id is progress and resets the count — and aborts the run on the first one beyond `limit`. Agent CLIs retry failed
 * model requests with growing waits, for minutes; Loom would rather fail the run as transient and
 * reschedule it (backing off the runtime on a rate limit, or failing over to the role's fallback).
 */
export class RetryCap {
  private readonly controller = new AbortController();
  private readonly onOuterAbort = () => this.controller.abort();
  private inARow = 0;
  private lastReason = '';
  private tripped = false;

  constructor(
    private readonly limit: number,
    private readonly outer: AbortSignal | undefined,
  ) {
    if (outer?.aborted === true) this.controller.abort();
    else outer?.addEventListener('abort', this.onOuterAbort, { once: true });
  }

  /** Aborted when the caller's signal is, or when the CLI retried once too often. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  note(event: AgentEvent): void {
    // A session id is no progress: some CLIs report it only once a request got through, or late.
    if (event.type === 'session') return;
    if (event.type !== 'retrying') {
      this.inARow = 0;
      return;
    }
    // A retry the CLI has a fallback for (another transport) neither counts nor resets.
    if (event.fallback === true) return;
    this.inARow += 1;
    this.lastReason = event.reason;
    if (this.inARow > this.limit && !this.tripped) {
      this.tripped = true;
      this.controller.abort();
    }
  }

  /** The run's result, or — when this cap stopped it — a transient failure saying why. */
  verdict(result: RunResult): RunResult {
    if (!this.tripped || result.outcome !== 'aborted') return result;
    const kind = /\b429\b|rate.?limit|too many requests|usage limit|quota/i.test(this.lastReason) ? 'rate-limit' : 'overloaded';
    const reason = this.lastReason === '' ? '' : `: ${this.lastReason}`;
    return { ...result, outcome: 'failed', message: `was stopped: the CLI retried its model request ${this.limit + 1} times in a row (cliRetries is ${this.limit})${reason}`, failure: { kind } };
  }

  dispose(): void {
    this.outer?.removeEventListener('abort', this.onOuterAbort);
  }
}
