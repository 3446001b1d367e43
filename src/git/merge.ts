/**
 * Merging an issue branch into the default branch the way the local tracker does it: a real
 * merge commit (`--no-ff` shape: one merge per issue on the default branch's first-parent
 * history), computed with `git merge-tree` so nothing is touched until it is known to be clean.
 *
 * Invariant owned here: merges are serialised by `.loom/merge.lock`, and the default branch only
 * moves by compare-and-swap from the commit the merge was computed on.
 */
import fs from 'node:fs';
import path from 'node:path';
import { tryLock, unlock } from '../process/lock-file.js';
import type { MergeQueue, MergeStep } from '../process/merge-queue.js';
import { waitFor } from '../process/wait.js';
import { git, gitMaybe, GitError } from './git.js';
import { GitFiles } from './git-files.js';

/** How often a merger waiting in the queue looks at what the queue ahead does, ms. */
const QUEUE_LOOK_MS = 1_000;

/** `already`: the branch was in the base before (nothing merged, `commit` is the base). */
export type MergeResult = { ok: true; commit: string; already: boolean } | { ok: false; reason: 'conflict' | 'dirty-main' | 'locked'; message: string };

/** Steps of a lock holder that wait on something outside (CI, the base's verification) and bound that wait themselves. */
const WAITING_OUTSIDE: ReadonlySet<MergeStep> = new Set(['waiting on checks', 'verifying the base']);

/**
 * Takes `.loom/merge.lock` (waiting up to `timeoutMs`), runs `fn`, releases it. The lock names its
 * holder process; one left by a crashed merger is taken over (src/process/lock-file.ts).
 *
 * In the queue, `timeoutMs` bounds a wait without progress: it starts again whenever the queue
 * ahead moves (another merger got the lock, or left) and while the holder waits on CI checks or
 * verifies the base — waits that `checksTimeout` bounds already, and that may well last longer
 * than `timeoutMs` each (a PR behind two others whose CI takes 20 minutes is not stuck).
 */
export async function withMergeLock<T>(lockFile: string, timeoutMs: number, fn: () => Promise<T>, queued?: { queue: MergeQueue; ticket: string }): Promise<T | 'locked'> {
  // In the queue, only the oldest live ticket may take the lock: the order `loom status` shows is the order served.
  const turn = () => (queued === undefined || queued.queue.isFirst(queued.ticket)) && tryLock(lockFile);
  let deadline = Date.now() + timeoutMs;
  let ahead: string | null = null;
  for (;;) {
    if (await waitFor(turn, Math.max(0, Math.min(QUEUE_LOOK_MS, deadline - Date.now())), 25)) break;
    const first = queued?.queue.list()[0];
    const now = first === undefined ? '' : `${first.seq} ${first.step}`;
    if (first !== undefined && (WAITING_OUTSIDE.has(first.step) || (ahead !== null && now !== ahead))) deadline = Date.now() + timeoutMs;
    ahead = now;
    if (Date.now() >= deadline) return 'locked';
  }
  try {
    return await fn();
  } finally {
    unlock(lockFile);
  }
}

/**
 * Rebases the worktree's branch onto `base` if `base` has moved on; false on a conflict (rebase
 * aborted). A branch that already holds a merge of the base (a conflict the Doctor resolved) is
 * updated by merging the base again instead: a rebase would replay its commits without that
 * resolution and conflict again. With `strategy` `merge` (config `updateStrategy`) it always merges.
 */
export async function rebaseIfBehind(worktree: string, base: string, strategy: 'rebase' | 'merge' = 'rebase'): Promise<{ rebased: boolean; conflict: boolean }> {
  const behind = (await gitMaybe(worktree, ['merge-base', '--is-ancestor', base, 'HEAD'])) === null;
  if (!behind) return { rebased: false, conflict: false };
  const merges = strategy === 'merge' ? 'merge' : await git(worktree, ['rev-list', '--merges', `${base}..HEAD`]);
  try {
    if (merges !== '') await git(worktree, ['merge', '-q', '--no-edit', base], { asLoom: true });
    else await git(worktree, ['rebase', '-q', base], { asLoom: true });
    return { rebased: true, conflict: false };
  } catch (error) {
    if (!(error instanceof GitError)) throw error;
    await gitMaybe(worktree, [merges !== '' ? 'merge' : 'rebase', '--abort']);
    return { rebased: false, conflict: true };
  }
}

/**
 * Whether commits `a` and `b` carry the same change against `base`: the same commit, or the same
 * diff from their merge bases with `base` (line numbers and blob ids aside) — `b` is `a` brought
 * up to date with a moved base and nothing else. A commit this clone does not have (after a fetch
 * of it from `origin`) carries no known change: false.
 */
export async function sameChange(root: string, base: string, a: string, b: string): Promise<boolean> {
  if (a === b) return true;
  const have = async (sha: string) => (await gitMaybe(root, ['cat-file', '-e', `${sha}^{commit}`])) !== null || ((await gitMaybe(root, ['fetch', '-q', 'origin', sha])) !== null && (await gitMaybe(root, ['cat-file', '-e', `${sha}^{commit}`])) !== null);
  if (!(await have(a)) || !(await have(b))) return false;
  const change = async (sha: string) => {
    const from = await gitMaybe(root, ['merge-base', base, sha]);
    if (from === null) return null;
    const diff = await git(root, ['diff', '--no-color', '--no-ext-diff', '--no-renames', '-U0', from, sha]);
    return diff
      .split('\n')
      .filter((line) => !line.startsWith('index ') && !line.startsWith('@@'))
      .join('\n');
  };
  const [x, y] = await Promise.all([change(a), change(b)]);
  return x !== null && x === y;
}

/**
 * Before Loom pushes the worktree's HEAD to `branch` on origin: commits someone else pushed there
 * on top of what this clone last pushed or fetched (a human's push to the PR) are merged into
 * HEAD first, so that the push carries them and never pushes over them. Returns origin's tip
 * when it was merged in, else null (nothing new there, no branch yet, or a rewrite of it that
 * this clone never saw — which the push's lease then refuses). A conflict with them aborts the
 * merge and throws `PushedWorkConflictError`.
 */
export async function mergePushedWork(worktree: string, branch: string): Promise<string | null> {
  const tracking = `refs/remotes/origin/${branch}`;
  const seen = await gitMaybe(worktree, ['rev-parse', '--verify', '-q', `${tracking}^{commit}`]);
  if (seen === null) return null;
  const there = (await gitMaybe(worktree, ['ls-remote', 'origin', `refs/heads/${branch}`]))?.split(/\s/)[0] ?? '';
  if (there === '' || there === seen) return null;
  if ((await gitMaybe(worktree, ['fetch', '-q', 'origin', `+refs/heads/${branch}:${tracking}`])) === null) return null;
  // HEAD has them already, or origin's branch is no descendant of what was seen (rewritten): nothing to merge.
  if ((await gitMaybe(worktree, ['merge-base', '--is-ancestor', there, 'HEAD'])) !== null) return null;
  if ((await gitMaybe(worktree, ['merge-base', '--is-ancestor', seen, there])) === null) return null;
  try {
    await git(worktree, ['merge', '-q', '--no-edit', '-m', `Merge the commits pushed to ${branch} meanwhile\n\nMerged by Loom before pushing its own work on top of them.`, there], { asLoom: true });
  } catch (error) {
    if (!(error instanceof GitError)) throw error;
    const files = (await gitMaybe(worktree, ['diff', '--name-only', '--diff-filter=U'])) ?? '';
    await gitMaybe(worktree, ['merge', '--abort']);
    throw new PushedWorkConflictError(branch, there, files.split('\n').filter(Boolean));
  }
  return there;
}

/** Commits pushed to an issue branch by someone else conflict with Loom's work on it. */
export class PushedWorkConflictError extends Error {
  constructor(
    readonly branch: string,
    readonly tip: string,
    readonly files: string[],
  ) {
    super(`commits pushed to \`${branch}\` meanwhile (up to ${tip.slice(0, 12)}) conflict with Loom's work on it${files.length > 0 ? ` in ${files.map((f) => `\`${f}\``).join(', ')}` : ''}; merge them on the branch, or remove them, and retry`);
  }
}

/** Of the commits reviews approved, those carrying `head`'s change against `base` (`sameChange`). */
export async function approvalsOf(root: string, base: string, head: string, approved: Iterable<string>): Promise<Set<string>> {
  const current = new Set<string>();
  for (const id of new Set(approved)) if (await sameChange(root, base, id, head)) current.add(id);
  return current;
}

/**
 * The files that conflict between the worktree's HEAD and `base`, computed without touching the
 * worktree (`git merge-tree --write-tree --name-only`); empty when they merge cleanly.
 */
export async function conflictingFiles(worktree: string, base: string): Promise<string[]> {
  try {
    await git(worktree, ['merge-tree', '--write-tree', '--name-only', '--no-messages', 'HEAD', base]);
    return [];
  } catch (error) {
    if (!(error instanceof GitError) || error.exitCode !== 1) throw error;
    // stdout: the tree, then one conflicted path per line.
    return [...new Set(error.stdout.split('\n').slice(1).filter((line) => line !== ''))];
  }
}

/**
 * Merges `base` into the worktree's branch for the Doctor to resolve: a clean merge is committed;
 * a conflicting one is left in progress (conflict markers in the files). Does nothing when the
 * branch already contains `base` or a merge is already in progress (a resumed round). Returns the
 * files still unmerged.
 */
export async function mergeBaseForDoctor(worktree: string, base: string): Promise<string[]> {
  const merging = (await gitMaybe(worktree, ['rev-parse', '-q', '--verify', 'MERGE_HEAD'])) !== null;
  const contains = (await gitMaybe(worktree, ['merge-base', '--is-ancestor', base, 'HEAD'])) !== null;
  if (!merging && !contains) {
    try {
      await git(worktree, ['merge', '-q', '--no-ff', '--no-edit', base], { asLoom: true });
    } catch (error) {
      if (!(error instanceof GitError)) throw error;
    }
  }
  const unmerged = await git(worktree, ['diff', '--name-only', '--diff-filter=U']);
  return unmerged === '' ? [] : unmerged.split('\n');
}

/** Concludes a merge left in progress (the Doctor resolved it without committing): stages everything and commits. */
export async function concludeMerge(worktree: string, message: string): Promise<boolean> {
  if ((await gitMaybe(worktree, ['rev-parse', '-q', '--verify', 'MERGE_HEAD'])) === null) return false;
  await git(worktree, ['add', '-A']);
  await git(worktree, ['commit', '-q', '--no-verify', '-m', message], { asLoom: true });
  return true;
}

/** Of `files` (a missing one is skipped), those that still hold a conflict marker line (`<<<<<<< ` or `>>>>>>> `) in the worktree. */
export async function filesWithConflictMarkers(worktree: string, files: string[]): Promise<string[]> {
  const present = files.filter((file) => fs.existsSync(path.join(worktree, file)));
  if (present.length === 0) return [];
  const found = await gitMaybe(worktree, ['grep', '-l', '--no-index', '-E', '-e', '^(<{7}|>{7})( |$)', '--', ...present]);
  return found === null || found === '' ? [] : found.split('\n');
}

/** Two commits as `branchInBase` read them: the base's and the branch tip's. */
interface BranchTips {
  base: string;
  tip: string;
  /** The tip strictly descends from the base: merged, the result is exactly the tip's tree. */
  ahead?: boolean;
}

/**
 * The commits `names` point to (`rev-parse NAME^{commit}` each), read from the ref files when they
 * say plainly, else in one git process; null when one of them names no commit.
 */
async function commitsOf(root: string, names: readonly string[]): Promise<string[] | null> {
  const files = GitFiles.of(root);
  const read = files === null ? [] : names.map((name) => files.resolve(name));
  if (read.length === names.length && read.every((sha) => typeof sha === 'string')) return read;
  const out = await gitMaybe(root, ['rev-parse', ...names.map((name) => `${name}^{commit}`)]);
  return out === null ? null : out.split('\n');
}

/**
 * Whether `branch`'s work is already in `baseRef`: `missing` (no such branch), `merged` (its tip is
 * an ancestor of `baseRef`, with the commit that brought it there) or `unmerged` — then `behind`
 * says whether `baseRef` has commits the branch lacks (a rebase is due), and `tips` what both were.
 * Two git processes in the common case: both commits, then their merge base (the tip when the
 * branch is in the base, the base's commit when the branch already contains it).
 */
export async function branchInBase(root: string, branch: string, baseRef: string): Promise<{ state: 'missing' } | { state: 'unmerged'; behind: boolean; tips: BranchTips | null } | { state: 'merged'; commit: string }> {
  const both = await commitsOf(root, [baseRef, `refs/heads/${branch}`]);
  const [baseSha = '', tipSha = ''] = both ?? [];
  let tip: string | null = tipSha;
  if (both === null) {
    // One of the two is missing: which one, as before (a missing base fails later, where it is used).
    tip = await gitMaybe(root, ['rev-parse', '--verify', '--quiet', `refs/heads/${branch}^{commit}`]);
    if (tip === null) return { state: 'missing' };
    if ((await gitMaybe(root, ['merge-base', '--is-ancestor', tip, baseRef])) === null) return { state: 'unmerged', behind: true, tips: null };
  } else {
    // The common case, from the object files when the branch's commits are loose: the tip descends from the base.
    if (GitFiles.of(root)?.descends(tipSha, baseSha) === true) return { state: 'unmerged', behind: false, tips: { base: baseSha, tip: tipSha, ahead: true } };
    // No common ancestor at all (exit 1): not merged, and behind.
    const common = await gitMaybe(root, ['merge-base', baseSha, tipSha]);
    if (common !== tipSha) return { state: 'unmerged', behind: common !== baseSha, tips: { base: baseSha, tip: tipSha, ahead: common === baseSha } };
  }
  // The oldest commit of the base that descends from the tip: the merge that brought it in.
  const first = (await git(root, ['rev-list', '--ancestry-path', '--reverse', `${tip}..${baseRef}`])).split('\n')[0];
  return { state: 'merged', commit: first === undefined || first === '' ? tip : first };
}

/**
 * Merges `branch` into `base` with a merge commit. When the main working tree has `base` checked
 * out it is fast-forwarded to the merge (so its files follow); otherwise only the ref moves.
 * A branch already in `base` is never merged again: no empty second merge commit.
 */
export async function mergeIntoBase(root: string, base: string, branch: string, message: string, unmerged: BranchTips | null = null): Promise<MergeResult> {
  const baseRef = `refs/heads/${base}`;
  // Read again right before the merge (from the ref files when they say plainly); a missing one fails as `rev-parse` does.
  const tips = await commitsOf(root, [baseRef, `refs/heads/${branch}`]);
  if (tips === null) await git(root, ['rev-parse', `${baseRef}^{commit}`, `refs/heads/${branch}^{commit}`]);
  const [baseSha = '', branchSha = ''] = tips ?? [];
  // `unmerged`: the two commits a caller found the branch not yet in the base with; still the same two, that holds.
  const known = unmerged !== null && unmerged.base === baseSha && unmerged.tip === branchSha;
  if (!known && (await gitMaybe(root, ['merge-base', '--is-ancestor', branchSha, baseSha])) !== null) return { ok: true, commit: baseSha, already: true };
  let tree: string;
  if (known && unmerged.ahead === true) {
    // The branch holds the base: the merge's tree is the branch's own, and it cannot conflict.
    tree = GitFiles.of(root)?.commit(branchSha)?.tree ?? `${branchSha}^{tree}`;
  } else {
    try {
      tree = (await git(root, ['merge-tree', '--write-tree', baseSha, branchSha])).split('\n')[0] ?? '';
    } catch (error) {
      if (error instanceof GitError && error.exitCode === 1) return { ok: false, reason: 'conflict', message: `${branch} does not merge cleanly into ${base}` };
      throw error;
    }
  }
  const commit = await git(root, ['commit-tree', tree, '-p', baseSha, '-p', branchSha, '-m', message], { asLoom: true });
  const moved = await moveBase(root, base, baseSha, commit);
  return moved.ok ? { ok: true, commit, already: false } : moved;
}

/**
 * Moves `base` from `from` to its descendant `to` by compare-and-swap: fast-forwarding the main
 * working tree when it has `base` checked out (refused, changing nothing, when its local changes
 * would be overwritten), else updating the ref alone.
 */
export async function moveBase(root: string, base: string, from: string, to: string, what = 'merge'): Promise<{ ok: true } | { ok: false; reason: 'dirty-main'; message: string }> {
  const baseRef = `refs/heads/${base}`;
  const head = headRef(root) ?? (await gitMaybe(root, ['symbolic-ref', '-q', 'HEAD']));
  if (head === baseRef) {
    try {
      await git(root, ['merge', '-q', '--ff-only', to]);
    } catch (error) {
      if (!(error instanceof GitError)) throw error;
      return { ok: false, reason: 'dirty-main', message: `the main working tree has local changes that the ${what} would overwrite: ${error.stderr.trim().split('\n')[0] ?? ''}` };
    }
  } else {
    await git(root, ['update-ref', baseRef, to, from]);
  }
  return { ok: true };
}

/**
 * The branch the main working tree has checked out, read from `.git/HEAD` without git (`ref:
 * refs/heads/…`); null when that file does not say (no `.git` directory, a detached HEAD, a ref
 * store whose HEAD file is a placeholder): then git is asked.
 */
function headRef(root: string): string | null {
  let text: string;
  try {
    text = fs.readFileSync(path.join(root, '.git', 'HEAD'), 'utf8');
  } catch {
    return null;
  }
  const ref = /^ref: (refs\/heads\/\S+)\s*$/.exec(text)?.[1];
  return ref === undefined || ref === 'refs/heads/.invalid' ? null : ref;
}
