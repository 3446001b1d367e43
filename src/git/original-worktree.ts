/**
 * The original Loom's work on an issue, adopted before Loom uses the issue's worktree. The
 * original built issue N in the same place, `.loom/worktrees/issue-N`, but on branch
 * `feature/issue-N`, and left marker files in it (`.loom-in-use`: which shepherd works there;
 * `.loom-managed`: "Loom may clean this up").
 *
 * Invariants owned here:
 * - only the original's own worktree is adopted: this repository's linked worktree on
 *   `feature/issue-N`; anything else at the path is left to the worktree code (which refuses it);
 * - the original's work is kept: a worktree on `feature/issue-N` continues on `loom/issue-N`,
 *   created at its commit, with its uncommitted changes; `feature/issue-N` itself is not changed;
 *   without a worktree, a `feature/issue-N` with commits the base lacks starts `loom/issue-N`;
 * - the original's marker files are never committed: untracked ones are removed on adoption;
 * - a worktree an original shepherd still works in (`.loom-in-use` naming a live pid) is not
 *   taken.
 * The common case (no original work) costs no git call: refs and HEAD are read from files.
 */
import fs from 'node:fs';
import path from 'node:path';
import { LoomError } from '../core/errors.js';
import { isProcessAlive } from '../process/process-identity.js';
import { git, gitMaybe } from './git.js';

/** Marker files the original Loom kept in its worktrees. */
export const ORIGINAL_MARKERS = ['.loom-in-use', '.loom-managed'] as const;

/** The original's branch for an issue. */
export function originalBranchFor(issue: number): string {
  return `feature/issue-${issue}`;
}

const ours = (issue: number) => `loom/issue-${issue}`;

/** The original's work cannot be adopted without a human: the worktree is left exactly as it is. */
export class OriginalWorkError extends LoomError {}

/** The original shepherd still works in the worktree: Loom leaves it alone. */
export class OriginalWorktreeInUseError extends OriginalWorkError {
  constructor(dir: string, pid: number) {
    super('worktree_in_use', `${dir} is in use by a shepherd of the original Loom (pid ${pid}, see its .loom-in-use); stop the original Loom before Loom builds this issue`, { userFixable: true });
  }
}

/** Both branches have work Loom cannot put together by itself. */
export class OriginalWorkConflictError extends OriginalWorkError {
  constructor(dir: string, branch: string, issue: number) {
    super('worktree_diverged', `${dir} is on ${branch} and ${ours(issue)} has other commits; merge one into the other by hand (the work of both is kept)`, { userFixable: true });
  }
}

/** The git directory a worktree's `.git` file points to, or null when `dir` is no linked worktree. */
function gitDirOf(dir: string): string | null {
  try {
    const text = fs.readFileSync(path.join(dir, '.git'), 'utf8');
    const m = /^gitdir:\s*(.+)$/m.exec(text);
    return m?.[1] ? path.resolve(dir, m[1].trim()) : null;
  } catch {
    return null;
  }
}

/**
 * The branch checked out in `dir` when it is a linked worktree of the repository at `root` — a
 * real directory (no symbolic link) whose `.git` file points into `<root>/.git/worktrees/` —
 * `null` when detached; undefined when it is no such worktree (Loom's worktree code refuses it).
 */
function branchOf(root: string, dir: string): string | null | undefined {
  if (fs.lstatSync(dir, { throwIfNoEntry: false })?.isDirectory() !== true) return undefined;
  const gitDir = gitDirOf(dir);
  if (gitDir === null) return undefined;
  const admin = path.join(realOr(path.join(root, '.git')), 'worktrees');
  if (path.dirname(realOr(gitDir)) !== admin) return undefined;
  try {
    const head = fs.readFileSync(path.join(gitDir, 'HEAD'), 'utf8').trim();
    const m = /^ref:\s*refs\/heads\/(.+)$/.exec(head);
    return m?.[1] ?? null;
  } catch {
    return undefined;
  }
}

function realOr(p: string): string {
  try {
    return fs.realpathSync(p);
  } catch {
    return p;
  }
}

/** Whether `refs/heads/<branch>` exists in the repository at `root` (loose or packed; git itself for other ref stores). */
async function hasBranch(root: string, branch: string): Promise<boolean> {
  const common = path.join(root, '.git');
  if (!fs.statSync(common, { throwIfNoEntry: false })?.isDirectory() || fs.existsSync(path.join(common, 'reftable'))) {
    return (await gitMaybe(root, ['rev-parse', '--verify', '--quiet', `refs/heads/${branch}`])) !== null;
  }
  if (fs.existsSync(path.join(common, 'refs', 'heads', ...branch.split('/')))) return true;
  try {
    return fs.readFileSync(path.join(common, 'packed-refs'), 'utf8').split('\n').some((line) => line.endsWith(` refs/heads/${branch}`));
  } catch {
    return false;
  }
}

/** The pid a `.loom-in-use` marker names, if it is a live process. */
function livePidIn(dir: string): number | null {
  try {
    const marker = JSON.parse(fs.readFileSync(path.join(dir, '.loom-in-use'), 'utf8')) as { pid?: unknown };
    return typeof marker.pid === 'number' && marker.pid !== process.pid && isProcessAlive(marker.pid) ? marker.pid : null;
  } catch {
    return null;
  }
}

/** Removes the original's marker files from a worktree unless the branch tracks them. */
async function removeMarkers(dir: string): Promise<string[]> {
  const present = ORIGINAL_MARKERS.filter((m) => fs.existsSync(path.join(dir, m)));
  if (present.length === 0) return [];
  const tracked = (await git(dir, ['ls-files', '--', ...present])).split('\n').filter(Boolean);
  const removed = present.filter((m) => !tracked.includes(m));
  for (const m of removed) fs.rmSync(path.join(dir, m), { force: true });
  return removed;
}

/**
 * Adopts the original Loom's work on `issue` so that Loom's worktree `dir` (on `loom/issue-N`)
 * continues it. Returns what it did, in one line, or null when there was nothing to adopt.
 */
export async function adoptOriginalWork(root: string, dir: string, issue: number, base: string): Promise<string | null> {
  const branch = branchOf(root, dir);
  const mine = ours(issue);
  const original = originalBranchFor(issue);
  if (branch === original) {
    // The original's worktree: continue it on ours. (Any other branch is not the original's: the
    // worktree code refuses it and leaves it as it is.)
    const pid = livePidIn(dir);
    if (pid !== null) throw new OriginalWorktreeInUseError(dir, pid);
    const removed = await removeMarkers(dir);
    const from = branch;
    if (!(await hasBranch(root, mine))) await git(dir, ['switch', '-q', '-c', mine]);
    else if ((await gitMaybe(dir, ['merge-base', '--is-ancestor', mine, 'HEAD'])) !== null) await git(dir, ['switch', '-q', '-C', mine]);
    else throw new OriginalWorkConflictError(dir, from, issue);
    return `adopted ${path.basename(dir)} of the original Loom: its work on ${from} continues on ${mine}${removed.length > 0 ? `; removed its marker files ${removed.join(', ')}` : ''}`;
  }
  // No worktree: a branch of the original with work the base lacks starts ours.
  if (fs.lstatSync(dir, { throwIfNoEntry: false }) !== undefined) return null;
  if ((await hasBranch(root, mine)) || !(await hasBranch(root, original))) return null;
  const ahead = Number(await git(root, ['rev-list', '--count', `${base}..refs/heads/${original}`]));
  if (!(ahead > 0)) return null;
  await git(root, ['branch', mine, `refs/heads/${original}`]);
  return `${mine} starts from ${original} of the original Loom (${ahead} commit(s) not on ${base})`;
}

export interface OriginalWorktree {
  issue: number;
  dir: string;
  branch: string;
}

/** The original Loom's worktrees under `worktreesDir` (on `feature/issue-N`). */
export function originalWorktrees(root: string, worktreesDir: string): OriginalWorktree[] {
  let names: string[];
  try {
    names = fs.readdirSync(worktreesDir);
  } catch {
    return [];
  }
  const found: OriginalWorktree[] = [];
  for (const name of names.sort()) {
    const issue = Number(/^issue-(\d+)$/.exec(name)?.[1] ?? NaN);
    if (!Number.isSafeInteger(issue)) continue;
    const dir = path.join(worktreesDir, name);
    if (branchOf(root, dir) === originalBranchFor(issue)) found.push({ issue, dir, branch: originalBranchFor(issue) });
  }
  return found;
}

/** Whether `dir` is the original Loom's worktree for `issue` (on `feature/issue-N`). */
export function isOriginalWorktree(root: string, dir: string, issue: number): boolean {
  return branchOf(root, dir) === originalBranchFor(issue);
}
