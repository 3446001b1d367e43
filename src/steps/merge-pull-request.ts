/**
 * Merging an approved PR into the default branch, shared by the shepherd (force mode or
 * `--force-merge`) and the Champion: under the merge lock, rebase the branch if the default
 * branch moved on (and run the test gate again if it did), merge with a merge commit, then mark
 * the PR merged, close the issue, and remove the worktree, branch and checkpoint.
 */
import path from 'node:path';
import type { LoomConfig } from '../core/config-model.js';
import type { LoomPaths } from '../config/paths.js';
import { git } from '../git/git.js';
import { mergeIntoBase, rebaseIfBehind, withMergeLock } from '../git/merge.js';
import { MergeRejectedError } from '../tracker/tracker-errors.js';
import { branchFor, Worktrees } from '../git/worktrees.js';
import type { Tracker } from '../tracker/tracker.js';
import type { PullRequest } from '../core/tracker-model.js';
import { CheckpointStore } from '../state/checkpoint-store.js';
import { runTestGate } from './judge-round.js';
import { EventLog } from '../process/event-log.js';

export type MergeOutcome =
  | { ok: true; commit: string }
  | { ok: false; reason: 'conflict' | 'tests' | 'dirty-main' | 'locked'; message: string };

/** How long a merger waits for another merge to finish, ms. */
const MERGE_LOCK_WAIT_MS = 10 * 60_000;

export async function mergePullRequest(opts: { paths: LoomPaths; config: LoomConfig; tracker: Tracker; pr: PullRequest; issue: number; base: string; signal?: AbortSignal }): Promise<MergeOutcome> {
  const { paths, config, tracker, pr, issue, base } = opts;
  const worktrees = new Worktrees(paths.root, paths.worktrees);
  const branch = branchFor(issue);
  const remote = tracker.kind === 'github';
  const baseRef = remote ? `origin/${base}` : base;
  const worktree = await worktrees.ensure(issue, baseRef);
  const result = await withMergeLock(path.join(paths.dir, 'merge.lock'), MERGE_LOCK_WAIT_MS, async (): Promise<MergeOutcome> => {
    if (remote) await git(paths.root, ['fetch', '-q', 'origin', base]);
    const rebase = await rebaseIfBehind(worktree, baseRef);
    if (rebase.conflict) return { ok: false, reason: 'conflict', message: `${branch} does not rebase cleanly onto ${base}` };
    if (rebase.rebased) {
      const gate = await runTestGate(config, worktree, opts.signal);
      if (!gate.passed) return { ok: false, reason: 'tests', message: `after rebasing onto ${base} the test gate fails:\n\n\`\`\`\n${gate.output}\n\`\`\`` };
    }
    if (remote) {
      // The host merges: push the (possibly rebased) branch, merge through the API, then learn the result.
      await git(worktree, ['push', '-q', '--force-with-lease', 'origin', `HEAD:refs/heads/${branch}`]);
      try {
        await tracker.markMerged(pr.number);
      } catch (error) {
        if (error instanceof MergeRejectedError) return { ok: false, reason: 'conflict', message: error.message };
        throw error;
      }
      await git(paths.root, ['fetch', '-q', 'origin', base]);
      await tracker.close(issue, `Loom: merged PR #${pr.number} into \`${base}\`.`);
      return { ok: true, commit: await git(paths.root, ['rev-parse', `origin/${base}`]) };
    }
    const merged = await mergeIntoBase(paths.root, base, branch, `Merge #${issue}: ${pr.title.replace(/^#\d+:\s*/, '')} (PR #${pr.number})`);
    if (!merged.ok) return merged;
    await tracker.markMerged(pr.number);
    await tracker.close(issue, `Loom: merged PR #${pr.number} into \`${base}\` as ${merged.commit.slice(0, 12)}.`);
    return merged;
  });
  if (result === 'locked') return { ok: false, reason: 'locked', message: 'another merge held the merge lock for too long' };
  if (result.ok) {
    new EventLog(paths.events).emit('pr.merged', { issue, pr: pr.number, commit: result.commit });
    await worktrees.remove(issue, { deleteBranch: true, reason: 'merged' });
    new CheckpointStore(paths.checkpoints).remove(issue);
  }
  return result;
}
