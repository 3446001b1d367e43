/**
 * Daemon start-up cleanup of `.loom/worktrees/`: a worktree whose issue is closed (or gone), or
 * that no shepherd owns and no shepherd is about to resume (not `loom:building`, not
 * `loom:issue`), is removed — after its uncommitted work is saved as a WIP commit on its branch.
 * The branch and the checkpoint stay, so the work can be resumed or inspected later.
 */
import type { LoomPaths } from '../config/paths.js';
import { Label } from '../core/labels.js';
import { Worktrees } from '../git/worktrees.js';
import { isOriginalWorktree } from '../git/original-worktree.js';
import { ProgressStore, viewOf } from '../process/progress-store.js';
import type { Tracker } from '../tracker/tracker.js';

export async function cleanupWorktrees(paths: LoomPaths, tracker: Tracker, log: (line: string) => void): Promise<number[]> {
  const worktrees = new Worktrees(paths.root, paths.worktrees);
  const progress = new ProgressStore(paths.progress);
  const removed: number[] = [];
  for (const n of worktrees.list()) {
    if (viewOf(progress.readShepherd(n), Date.now()).alive) continue;
    // The original Loom's worktrees (feature/issue-N) are left as they are until Loom builds the issue.
    if (isOriginalWorktree(worktrees.pathFor(n), n)) continue;
    const issue = await tracker.getIssue(n);
    const closed = issue === null || issue.state === 'closed';
    const unowned = !closed && !issue.labels.includes(Label.building) && !issue.labels.includes(Label.issue);
    if (!closed && !unowned) continue;
    const dirty = await worktrees.isDirty(n);
    await worktrees.remove(n, { reason: closed ? 'issue closed' : 'issue not owned by a shepherd' });
    removed.push(n);
    log(`removed the worktree of #${n} (${closed ? 'issue closed' : 'no shepherd owns it'})${dirty ? '; its uncommitted work was saved as a WIP commit on its branch' : ''}`);
  }
  return removed;
}
