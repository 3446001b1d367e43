/**
 * Waiting for a PR's CI checks on GitHub before merging: the checks on the exact head commit Loom
 * pushed are read every `checksPollInterval` with conditional requests (an unchanged answer costs
 * no rate limit and no agent time) until none is pending, the deadline passes, or the work stops.
 */
import type { ChecksVerdict } from '../core/checks.js';
import { checksVerdict } from '../core/checks.js';
import type { Tracker } from '../tracker/tracker.js';

/** The pending name shown while no check has reported on a commit that expects some. */
export const NO_CHECK_YET = '(none reported yet)';

/** `silent`: of the pending checks at the deadline, those that never reported on the commit (a required check no CI runs, say). */
export type ChecksWait = Exclude<ChecksVerdict, { state: 'pending' }> | { state: 'timeout'; pending: readonly string[]; silent: readonly string[] } | { state: 'aborted' };

/**
 * `expectChecks`: no check reported yet counts as pending (a CI that ran on the PR's head is
 * expected on the base's new head too, and takes a moment to report).
 */
export async function waitForChecks(opts: { tracker: Tracker; sha: string; pollMs: number; timeoutMs: number; signal?: AbortSignal; onPending?: (pending: readonly string[]) => void | Promise<void>; expectChecks?: boolean; required?: readonly string[] | null }): Promise<ChecksWait> {
  const deadline = Date.now() + opts.timeoutMs;
  let reported = '';
  for (;;) {
    if (opts.signal?.aborted === true) return { state: 'aborted' };
    const all = await opts.tracker.checks(opts.sha);
    const read = checksVerdict(all, opts.required ?? null);
    const verdict = read.state === 'none' && opts.expectChecks === true ? { state: 'pending' as const, pending: [NO_CHECK_YET] } : read;
    if (verdict.state !== 'pending') return verdict;
    const names = verdict.pending.join(', ');
    if (names !== reported) await opts.onPending?.(verdict.pending);
    reported = names;
    if (Date.now() >= deadline) return { state: 'timeout', pending: verdict.pending, silent: verdict.pending.filter((name) => name === NO_CHECK_YET || !all.some((c) => c.name === name)) };
    await abortableDelay(Math.min(opts.pollMs, Math.max(1, deadline - Date.now())), opts.signal);
  }
}

function abortableDelay(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
