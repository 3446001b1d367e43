/**
 * An error the user can fix: the CLI prints its one-line message and exits 2, no stack trace.
 * Anything else reaching the CLI's error boundary is a bug (exit 1).
 */
export class UserError extends Error {
  readonly code = 'user_error';
}
