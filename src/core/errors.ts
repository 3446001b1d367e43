/**
 * The one base error of Loom. Every error Loom throws on purpose is a `LoomError` with a stable
 * `code` (for logs, tests and the state file), whether the user can fix it (the CLI prints its
 * one-line message and exits 2, no stack trace) and whether retrying the same thing can help.
 * Anything else reaching the CLI's error boundary is a bug (exit 1).
 */
export class LoomError extends Error {
  /** A stable machine-readable name for the failure (`config_invalid`, `rate_limited`, ...). */
  readonly code: string;
  /** The user can fix it (bad input, bad config, missing setup): exit code 2. */
  readonly userFixable: boolean;
  /** Trying the same thing again later can succeed (rate limits, network, a held lock). */
  readonly retryable: boolean;

  constructor(code: string, message: string, opts: { userFixable?: boolean; retryable?: boolean; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = new.target.name;
    this.code = code;
    this.userFixable = opts.userFixable ?? false;
    this.retryable = opts.retryable ?? false;
  }
}

/** An error the user can fix: the CLI prints its one-line message and exits 2. */
export class UserError extends LoomError {
  constructor(message: string, opts: { code?: string; cause?: unknown } = {}) {
    super(opts.code ?? 'user_error', message, { userFixable: true, ...(opts.cause === undefined ? {} : { cause: opts.cause }) });
  }
}
