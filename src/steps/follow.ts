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

/** A read slower than this may answer with the state from before a change made meanwhile. */
const SLOW_READ_MS = 1_000;

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
      void this.read().finally(() => (this.reading = false));
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

  /**
   * Reads now (before an irreversible step); the reason to stop, or null. A read that failed, or
   * took longer than `SLOW_READ_MS` (its answer may predate a change made while it travelled), is
   * made once more before the step goes ahead.
   */
  async now(): Promise<T | null> {
    for (let attempt = 0; attempt < 2 && this.found === null; attempt += 1) {
      const began = Date.now();
      const read = await this.read();
      if (read === 'read' && Date.now() - began < SLOW_READ_MS) break;
    }
    return this.found;
  }

  /** One read (a failed one is ignored: the tracker is unavailable for a moment); records a reason it finds. */
  private async read(): Promise<'read' | 'failed'> {
    let reason: T | null;
    try {
      reason = await this.opts.check();
    } catch {
      return 'failed';
    }
    if (reason !== null && this.found === null) {
      this.found = reason;
      this.opts.onStop?.(reason);
      this.controller.abort();
    }
    return 'read';
  }

  /** Stops reading. */
  stop(): void {
    clearInterval(this.timer);
    this.opts.signal?.removeEventListener('abort', this.onOuterAbort);
  }
}

/**
 * `read()`, made once more when it took longer than `SLOW_READ_MS`: its answer may predate a
 * change made while it travelled. For the read before a step others would see.
 */
export async function freshRead<R>(read: () => Promise<R>): Promise<R> {
  const began = Date.now();
  const first = await read();
  return Date.now() - began < SLOW_READ_MS ? first : read();
}
