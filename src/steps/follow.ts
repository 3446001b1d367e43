/**
 * Following what a task works on: while a shepherd or a support role works on an issue or a PR,
 * it reads it again every heartbeat interval (one cheap read: a SQLite query locally, a
 * conditional request on GitHub) and stops its work — through an AbortSignal that ends the agent's
 * process group — as soon as the read says the work is no longer wanted. The rule saying so is
 * the caller's (`core/follow-issue.ts`); this is the timer around it.
 */

export interface FollowOptions<T> {
  /** Time between two reads, ms. */
  every: number;
  /** One read; a reason to stop, or null to carry on. A read that throws (tracker trouble) is ignored. */
  check: () => Promise<T | null>;
  /** Aborting it (shutdown) aborts `Follow.signal` too. */
  signal?: AbortSignal;
  /** Called once, with the reason, when a read finds one. */
  onStop?: (reason: T) => void;
}

export class Follow<T> {
  private readonly controller = new AbortController();
  private readonly timer: NodeJS.Timeout;
  private readonly onOuterAbort = () => this.controller.abort();
  private found: T | null = null;
  private reading = false;

  constructor(private readonly opts: FollowOptions<T>) {
    if (opts.signal?.aborted === true) this.controller.abort();
    else opts.signal?.addEventListener('abort', this.onOuterAbort, { once: true });
    this.timer = setInterval(() => {
      if (this.reading || this.found !== null) return;
      this.reading = true;
      void this.now().finally(() => (this.reading = false));
    }, opts.every);
    this.timer.unref();
  }

  /** Aborted when a read found a reason to stop, or when the caller's signal is. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** The reason a read found, if any. */
  get reason(): T | null {
    return this.found;
  }

  /** Reads now (before an irreversible step); the reason to stop, or null. */
  async now(): Promise<T | null> {
    if (this.found !== null) return this.found;
    let reason: T | null;
    try {
      reason = await this.opts.check();
    } catch {
      return null; // the tracker is unavailable for a moment: carry on, the next read decides
    }
    if (reason !== null && this.found === null) {
      this.found = reason;
      this.opts.onStop?.(reason);
      this.controller.abort();
    }
    return this.found;
  }

  /** Stops reading. */
  stop(): void {
    clearInterval(this.timer);
    this.opts.signal?.removeEventListener('abort', this.onOuterAbort);
  }
}
