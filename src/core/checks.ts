/**
 * CI checks on a PR's head commit (GitHub check runs and commit statuses) and the merge rule over
 * them: every check that reported must have passed; any still running means wait; none at all
 * means there is no CI to wait for. Pure: the adapter reads the checks, this decides.
 */

/** One check run or commit status, reduced to what the merge needs. */
export interface CheckResult {
  /** The check run's name, or the status's context. */
  readonly name: string;
  readonly state: 'pending' | 'success' | 'failure';
  /** GitHub's conclusion (`failure`, `timed_out`, …) or status state (`error`, …); `pending` while running. */
  readonly conclusion: string;
  /** What the check said: the check run's output title, summary and text, or the status's description and link. */
  readonly details: string;
  /** A failing GitHub Actions job's log, its last lines (when the API gives it). */
  readonly log?: string;
}

export type ChecksVerdict =
  | { readonly state: 'none' }
  | { readonly state: 'pending'; readonly pending: readonly string[] }
  | { readonly state: 'success' }
  | { readonly state: 'failure'; readonly failing: readonly CheckResult[] };

/** Check-run conclusions that count as passed. */
const PASSED = new Set(['success', 'neutral', 'skipped']);

/** The state of a check run (`status` + `conclusion`). */
export function checkRunState(status: string, conclusion: string | null): CheckResult['state'] {
  if (status !== 'completed' || conclusion === null || conclusion === 'stale') return 'pending';
  return PASSED.has(conclusion) ? 'success' : 'failure';
}

/** The state of a commit status (`error`, `failure`, `pending`, `success`). */
export function commitStatusState(state: string): CheckResult['state'] {
  if (state === 'success') return 'success';
  if (state === 'pending') return 'pending';
  return 'failure';
}

/**
 * A failure wins over pending (the Doctor can start at once); pending over success. With
 * `required` (branch protection's required checks, when readable) only those count, and one that
 * has not reported yet is pending; without, every check that reported counts.
 */
export function checksVerdict(all: readonly CheckResult[], required: readonly string[] | null = null): ChecksVerdict {
  const only = required !== null && required.length > 0 ? new Set(required) : null;
  const checks = only === null ? all : all.filter((c) => only.has(c.name));
  const missing = only === null ? [] : [...only].filter((name) => !checks.some((c) => c.name === name));
  if (checks.length === 0 && missing.length === 0) return { state: 'none' };
  const failing = checks.filter((c) => c.state === 'failure');
  if (failing.length > 0) return { state: 'failure', failing };
  const pending = [...checks.filter((c) => c.state === 'pending').map((c) => c.name), ...missing];
  if (pending.length > 0) return { state: 'pending', pending };
  return { state: 'success' };
}

/** Lines of a failing job's log the Doctor gets: its end, where a job says what failed. */
export const JOB_LOG_LINES = 60;

/**
 * The end of an Actions job log, as the Doctor reads it: the last `lines` lines (at most
 * `maxChars`), each without the timestamp GitHub puts first; null when nothing is left.
 */
export function jobLogExcerpt(log: string, lines = JOB_LOG_LINES, maxChars = 4000): string | null {
  const all = log
    .replace(/\r\n?/g, '\n')
    .split('\n')
    .map((l) => l.replace(/^\uFEFF?\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z ?/, '').trimEnd());
  while (all.length > 0 && all.at(-1) === '') all.pop();
  if (all.length === 0) return null;
  const tail = all.slice(-lines).join('\n');
  return tail.length > maxChars ? `…${tail.slice(-maxChars)}` : tail;
}

/** The Doctor's work list for failing checks: each name, conclusion, output and job log excerpt (bounded). */
export function failingChecksReview(failing: readonly CheckResult[], sha: string, maxChars = 4000): string {
  const parts = failing.map((c) => {
    const details = c.details.length > maxChars ? `${c.details.slice(0, maxChars)}\n… (cut)` : c.details;
    const log = c.log === undefined || c.log === '' ? '' : `Job log (its last lines):\n\n\`\`\`\n${c.log}\n\`\`\``;
    return `### ${c.name}: ${c.conclusion}\n\n${[details, log].filter((t) => t !== '').join('\n\n') || '(no output)'}`;
  });
  return `CI checks failed on ${sha.slice(0, 12)}: ${failing.map((c) => `\`${c.name}\` (${c.conclusion})`).join(', ')}. Fix the causes; the checks run again on the new commit.\n\n${parts.join('\n\n')}`;
}
