/**
 * Claiming an issue for a shepherd: the one owner of the invariant "one shepherd per issue",
 * used by the daemon's spawn, `loom spawn` and `loom shepherd N` run by hand.
 *
 * The order matters: first the progress record is created exclusively (so an iteration running
 * at the same moment sees the issue as owned rather than orphaned), then the tracker claim
 * (atomic: `loom:issue` → `loom:building`). A failure undoes the step before it; a claim that
 * failed part-way leaves its record when the tracker cannot be repaired now, so the iteration that
 * finds it dead has the tracker restore the issue (`restoreInterruptedClaim`).
 */
import { Label } from '../core/labels.js';
import type { Progress } from '../core/progress.js';
import { startingRecord } from '../process/new-task.js';
import { processStart } from '../process/process-identity.js';
import type { ProgressStore } from '../process/progress-store.js';
import { viewOf } from '../process/progress-store.js';
import { terminateGroup } from '../process/wait.js';

/** How long a left-behind agent group gets after SIGTERM before SIGKILL, ms. */
const AGENT_GRACE_MS = 5_000;
import type { Tracker } from '../tracker/tracker.js';

export type ClaimResult =
  | { ok: true; record: Progress }
  | { ok: false; reason: 'owned'; message: string; owner: Progress | null }
  | { ok: false; reason: 'lost-claim'; message: string };

/**
 * Takes `issue` for the task `task_id`: its progress record, then the tracker claim. On success
 * the caller owns the issue and must launch (or run) its shepherd, or undo with `releaseClaim`.
 */
export async function claimIssue(opts: { progress: ProgressStore; tracker: Tracker; issue: number; task_id: string; output_file: string; now: Date }): Promise<ClaimResult> {
  const { progress, tracker, issue, now } = opts;
  const file = progress.shepherdFile(issue);
  const record = startingRecord({ kind: 'shepherd', task_id: opts.task_id, issue, role: null, output_file: opts.output_file, now });
  if (!progress.createExclusive(file, record)) {
    const existing = progress.read(file);
    if (viewOf(existing, now.getTime()).alive)
      return { ok: false, reason: 'owned', owner: existing, message: `#${issue} is already owned by shepherd task ${existing?.task_id ?? '?'} (pid ${existing?.pid ?? existing?.launcher_pid ?? '?'})` };
    // A finished or dead record left behind: it owns nothing any more. The agent group its
    // worker recorded goes with it (if it still runs and is provably that group), so that no
    // agent of the issue is left running unrecorded beside the next one.
    if (existing?.agent_pid) await terminateGroup(existing.agent_pid, existing.agent_pid_start, AGENT_GRACE_MS);
    progress.remove(file);
    if (!progress.createExclusive(file, record)) return { ok: false, reason: 'owned', owner: progress.read(file), message: `#${issue} was claimed by another launcher just now` };
  }
  let claimed: boolean;
  try {
    claimed = await tracker.claim(issue);
  } catch (error) {
    // A claim cut off part-way may have left the issue with no state label. Repaired here if the
    // tracker answers; otherwise the record stays behind as this process's, dead once it has
    // exited, and the iteration that recovers it has the tracker restore the interrupted claim.
    if (await tracker.restoreInterruptedClaim(issue).then(() => true, () => false)) progress.remove(file);
    else progress.write(file, { ...record, pid: process.pid, pid_start: processStart(process.pid), message: `claim interrupted: ${(error as Error).message}` });
    throw error;
  }
  if (!claimed) {
    progress.remove(file);
    return { ok: false, reason: 'lost-claim', message: `#${issue} is no longer ${Label.issue} (claimed elsewhere or changed)` };
  }
  return { ok: true, record };
}

/** Undoes a claim whose shepherd could not be started: the record goes, the issue is ready again. */
export async function releaseClaim(opts: { progress: ProgressStore; tracker: Tracker; issue: number }): Promise<void> {
  opts.progress.remove(opts.progress.shepherdFile(opts.issue));
  await opts.tracker.release(opts.issue);
}
