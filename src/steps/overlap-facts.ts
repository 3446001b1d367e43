/**
 * Gathers the file facts overlap avoidance decides from (`OverlapFacts`, src/core/overlap.ts):
 * - a ready issue's predicted files: the paths its title and body name (a bare name such as
 *   `console.log` only when the repository tracks a file of that name), and for an issue with an
 *   earlier attempt the files its branch (`loom/issue-N`) changed;
 * - a running shepherd's: the same, plus what its worktree changed and has not committed yet;
 * - an open Loom PR's: the files its branch changed (local branch, else `origin/<head>`), plus the
 *   paths its issue names.
 * Branch diffs are cached by base and head commit (`ChangedFiles`): a tick where no branch moved
 * costs two git calls plus one `git status` per running shepherd.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { LoomPaths } from '../config/paths.js';
import type { OverlapFacts, WorkInProgress } from '../core/overlap.js';
import { awaitsPerson, looksLikeFile, namedPaths } from '../core/overlap.js';
import type { LoomConfig } from '../core/config-model.js';
import type { Issue, TrackerSnapshot } from '../core/tracker-model.js';
import { ChangedFiles } from '../git/changed-files.js';
import { branchFor } from '../git/worktrees.js';

export interface OverlapInput {
  paths: LoomPaths;
  config: Pick<LoomConfig, 'roles'>;
  /** The branch issues are built from (without `origin/`). */
  base: string;
  /** `github`: branches and the base are compared as the remote has them (`origin/…`) when no local branch exists. */
  remote: boolean;
  snapshot: TrackerSnapshot;
  /** The ready issues whose files are predicted. */
  candidates: readonly Issue[];
  /** Issues a live shepherd works on now. */
  running: readonly number[];
  /** Keep new diffs in `.loom/diff-cache.json` (false: read it only, as `loom status` and `loom why` do). */
  saveCache: boolean;
}

const union = (...lists: string[][]) => [...new Set(lists.flat())];

export async function gatherOverlap(input: OverlapInput): Promise<OverlapFacts> {
  const { paths, snapshot } = input;
  // Nothing waits to start: nothing to compare, no git call.
  if (input.candidates.length === 0) return { predicted: {}, work: [] };
  const changed = new ChangedFiles(paths.root, paths.diffCache);
  const baseSha = (input.remote ? await changed.resolve(`origin/${input.base}`) : null) ?? (await changed.resolve(input.base));
  const heads = baseSha === null ? new Map<string, string>() : await changed.heads(['refs/heads/loom/', 'refs/remotes/origin/loom/', ...new Set(snapshot.pullRequests.filter((p) => !p.head.startsWith('loom/')).map((p) => `refs/heads/${p.head}`))]);
  const branchFiles = async (branch: string): Promise<string[]> => {
    const head = heads.get(`refs/heads/${branch}`) ?? heads.get(`refs/remotes/origin/${branch}`);
    return head === undefined || baseSha === null ? [] : changed.branchFiles(baseSha, head);
  };
  const issues = new Map(snapshot.issues.map((i) => [i.number, i]));
  for (const c of input.candidates) issues.set(c.number, c);
  const mentioned = (n: number) => {
    const issue = issues.get(n);
    return issue === undefined ? [] : namedPaths(`${issue.title}\n${issue.body}`);
  };
  // A bare name counts when it is surely a file (`notes.md`, `planner.ts`) or the repository has a
  // file of that name: `console.log` or `path.join` in an issue's text is code, not a file.
  const involved = [...input.candidates.map((c) => c.number), ...input.running, ...snapshot.pullRequests.flatMap((p) => (p.closesIssue === null ? [] : [p.closesIssue]))];
  const unsure = [...new Set(involved.flatMap(mentioned).filter((p) => !p.includes('/') && !looksLikeFile(p)))];
  const tracked = await changed.trackedNames(unsure);
  const named = (n: number) => mentioned(n).filter((p) => p.includes('/') || looksLikeFile(p) || tracked.has(p));

  const predicted: Record<string, string[]> = {};
  for (const c of input.candidates) predicted[String(c.number)] = union(named(c.number), await branchFiles(branchFor(c.number)));

  const work: WorkInProgress[] = [];
  const openPr = (n: number) => snapshot.pullRequests.find((p) => p.closesIssue === n && p.state === 'open') ?? null;
  for (const n of [...new Set(input.running)].sort((a, b) => a - b)) {
    const dir = path.join(paths.worktrees, `issue-${n}`);
    const inWorktree = fs.existsSync(path.join(dir, '.git')) ? await changed.uncommitted(dir) : [];
    work.push({ issue: n, pr: openPr(n)?.number ?? null, running: true, awaitsPerson: false, files: union(named(n), await branchFiles(branchFor(n)), inWorktree) });
  }
  for (const pr of snapshot.pullRequests) {
    if (pr.state !== 'open' || pr.closesIssue === null || input.running.includes(pr.closesIssue)) continue;
    work.push({ issue: pr.closesIssue, pr: pr.number, running: false, awaitsPerson: awaitsPerson(pr.labels, issues.get(pr.closesIssue)?.labels ?? null, input.config), files: union(named(pr.closesIssue), await branchFiles(pr.head)) });
  }
  if (input.saveCache) changed.save();
  return { predicted, work };
}
