/**
 * `loom spawn N`: a human starts a shepherd for one issue now. Refused (a `UserError` saying what
 * to do) when the issue does not exist, is closed, or is already owned, or when the repository's
 * filesystem has less free space than `minFreeDisk` (no new worktree then); an open issue without
 * `loom:issue` gets it first, so the claim (steps/claim-issue.ts) applies as for the daemon.
 */
import { UserError } from '../core/errors.js';
import { formatSize } from '../core/size.js';
import { freeDiskBytes } from '../fs/free-disk.js';
import { Label } from '../core/labels.js';
import { buildBlocker } from '../core/original-labels.js';
import type { LoomPaths } from '../config/paths.js';
import { ProgressStore, viewOf } from '../process/progress-store.js';
import { liveLock } from '../state/daemon-lock.js';
import type { Tracker } from '../tracker/tracker.js';
import type { StartedTask } from './start-shepherd.js';
import { startShepherd } from './start-shepherd.js';

export interface SpawnedIssue {
  task: StartedTask;
  /** The pid of a running daemon, which adopts the shepherd on its next iteration; null when none runs. */
  daemonPid: number | null;
}

export async function spawnIssue(opts: { paths: LoomPaths; tracker: Tracker; issue: number; forceMerge: boolean; now: Date; shepherds?: 'process' | 'host'; minFreeDisk?: number }): Promise<SpawnedIssue> {
  const { paths, tracker, issue } = opts;
  const current = await tracker.getIssue(issue);
  if (current === null) {
    // Issues and pull requests share one number sequence: a PR's number names its issue.
    const pr = await tracker.getPullRequest(issue).catch(() => null);
    if (pr === null) throw new UserError(`issue #${issue} does not exist; see \`loom issue list\``);
    throw new UserError(`#${issue} is a pull request, not an issue (issues and pull requests share one number sequence)${pr.closesIssue === null ? '' : `; it is for issue #${pr.closesIssue}: \`loom spawn ${pr.closesIssue}\``}`);
  }
  if (current.state !== 'open') throw new UserError(`issue #${issue} is closed; reopen it before spawning a shepherd`);
  const blocker = buildBlocker(current.labels);
  if (blocker !== undefined) throw new UserError(`issue #${issue} is not built while it carries ${blocker.label} (${blocker.reason}); remove the label first: \`loom issue unlabel ${issue} ${blocker.label}\``);
  const progress = new ProgressStore(paths.progress);
  const record = progress.readShepherd(issue);
  if (viewOf(record, opts.now.getTime()).alive) throw new UserError(`issue #${issue} is already owned by a shepherd (pid ${record?.pid ?? record?.launcher_pid ?? '?'}); see \`loom status\``);
  if (current.labels.includes(Label.building)) {
    throw new UserError(`issue #${issue} is already claimed (${Label.building}); if no shepherd runs it the daemon returns it to ${Label.issue} on its next iteration`);
  }
  const free = opts.minFreeDisk !== undefined ? freeDiskBytes(paths.root) : null;
  if (free !== null && opts.minFreeDisk !== undefined && free < opts.minFreeDisk) {
    throw new UserError(`no new worktree: ${formatSize(free)} free, below minFreeDisk (${formatSize(opts.minFreeDisk)}); free some space (finished worktrees go by themselves) or lower minFreeDisk in .loom/config.json`);
  }
  if (!current.labels.includes(Label.issue)) await tracker.updateLabels(issue, { add: [Label.issue] });
  const daemon = liveLock(paths.lock);
  const result = await startShepherd({ paths, tracker, progress, issue, forceMerge: opts.forceMerge, now: opts.now, ...(opts.shepherds ? { shepherds: opts.shepherds } : {}) });
  if (!result.ok) throw new UserError(`could not spawn a shepherd for #${issue}: ${result.message}`);
  return { task: result.task, daemonPid: daemon?.holder === 'daemon' ? daemon.pid : null };
}
