/**
 * The errors of the `Tracker` port, part of its contract: an adapter reports a failure of the
 * tracker itself (rate limit, outage, rejected credentials, a refused merge) with one of these,
 * and a missing item with `NotFoundError` (core/tracker-model.ts), so callers test these classes
 * or the `LoomError` flags and never an adapter.
 *
 * Invariant: `retryable` is true exactly when the same call can succeed later without anyone
 * changing anything (the rate limit resets, the service comes back, the merge is retried on the
 * moved head); `userFixable` when the user must act (credentials).
 */
import { LoomError } from '../core/errors.js';

/** Base of the tracker's typed errors; `status` is the HTTP status behind it, if any. */
export class TrackerError extends LoomError {
  readonly status: number | null;

  constructor(code: string, message: string, opts: { status?: number | null; userFixable?: boolean; retryable?: boolean; cause?: unknown } = {}) {
    const { status = null, ...rest } = opts;
    super(code, message, rest);
    this.status = status;
  }
}

/** The tracker's storage cannot be used (the local database is missing, damaged or too new): the user repairs it. */
export class TrackerStorageError extends TrackerError {
  constructor(message: string) {
    super('tracker_storage', message, { userFixable: true });
  }
}

/** The rate limit is exhausted (or a secondary limit hit); nothing is sent until `until` (epoch ms). */
export class RateLimitedError extends TrackerError {
  readonly until: number;

  constructor(opts: { service: string; until: number; status?: number | null }) {
    super('rate_limited', `${opts.service} rate limit: requests paused until ${new Date(opts.until).toISOString()}`, { status: opts.status ?? null, retryable: true });
    this.until = opts.until;
  }
}

/** The tracker kept failing (5xx, unreachable) after the adapter's own retries. */
export class TrackerUnavailableError extends TrackerError {
  constructor(opts: { service: string; status: number; detail: string }) {
    super('tracker_unavailable', `${opts.service} is unavailable (${opts.status}): ${opts.detail}`, { status: opts.status, retryable: true });
  }
}

/** The tracker rejected the credentials; `hint` says what to check. */
export class TrackerAuthError extends TrackerError {
  constructor(opts: { service: string; status: number; detail: string; hint: string }) {
    super('tracker_auth', `${opts.service} rejected the token (${opts.status}: ${opts.detail}); ${opts.hint}`, { status: opts.status, userFixable: true });
  }
}

/** The tracker needs credentials and none were found; the message says where to put them. */
export class TrackerTokenMissingError extends TrackerError {
  constructor(message: string) {
    super('tracker_token_missing', message, { userFixable: true });
  }
}

/**
 * The tracker refused to merge a pull request: not mergeable (conflicts, checks), or `retryable`
 * when its head changed since it was read.
 */
export class MergeRejectedError extends TrackerError {
  readonly number: number;

  constructor(opts: { service: string; number: number; status: number; detail: string; retryable: boolean }) {
    super('merge_rejected', `${opts.service} refused to merge pull request #${opts.number} (${opts.status}): ${opts.detail}`, { status: opts.status, retryable: opts.retryable });
    this.number = opts.number;
  }
}
