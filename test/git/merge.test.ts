/**
 * `mergeIntoBase`, `rebaseIfBehind` and `withMergeLock` (src/git/merge.ts) against real temporary
 * git repositories and worktrees, and real concurrent callers (in this process and in others).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { GitError } from '../../src/git/git.js';
import { concludeMerge, conflictingFiles, filesWithConflictMarkers, mergeBaseForDoctor, mergeIntoBase, rebaseIfBehind, withMergeLock } from '../../src/git/merge.js';
import { processStart } from '../../src/process/process-identity.js';
import { MergeQueue } from '../../src/process/merge-queue.js';
import type { Child } from '../helpers/child-process.js';
import { deadPid, killAll, runFixture, runIdleProcess, waitForExit, waitUntil } from '../helpers/child-process.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const racerScript = path.join(here, 'fixtures', 'merge-lock-racer.ts');

const dirs: string[] = [];
const children: Child[] = [];

afterEach(async () => {
  await killAll(children);
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'loom-merge-')));
  dirs.push(dir);
  return dir;
}

/** Runs git synchronously in `cwd` (test setup and inspection), returning trimmed stdout. */
function sh(cwd: string, ...args: string[]): string {
  return execFileSync('git', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trimEnd();
}

function write(dir: string, file: string, content: string): void {
  fs.mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
  fs.writeFileSync(path.join(dir, file), content);
}

/** Writes `files` in `dir` and commits them; returns the new commit. */
function commit(dir: string, message: string, files: Record<string, string>): string {
  for (const [file, content] of Object.entries(files)) write(dir, file, content);
  sh(dir, 'add', '-A');
  sh(dir, 'commit', '-q', '-m', message);
  return sh(dir, 'rev-parse', 'HEAD');
}

/** A repository on `main` with one commit (a.txt, shared.txt) and its own identity. */
function makeRepo(): string {
  const root = tempDir();
  sh(root, 'init', '-q', '-b', 'main');
  sh(root, 'config', 'user.name', 'Merge Tests');
  sh(root, 'config', 'user.email', 'merge-tests@localhost');
  commit(root, 'initial', { 'a.txt': 'a\n', 'shared.txt': 'one\ntwo\nthree\n' });
  return root;
}

/** A worktree beside the repository on a new branch `branch`, started from `from`. */
function addWorktree(root: string, branch: string, from = 'main'): string {
  const worktree = path.join(tempDir(), 'wt');
  sh(root, 'worktree', 'add', '-q', '-b', branch, worktree, from);
  return worktree;
}

const rev = (root: string, ref: string): string => sh(root, 'rev-parse', ref);
const parents = (root: string, ref: string): string[] => sh(root, 'rev-list', '--parents', '-n', '1', ref).split(' ').slice(1);
const isAncestor = (root: string, a: string, b: string): boolean => {
  try {
    sh(root, 'merge-base', '--is-ancestor', a, b);
    return true;
  } catch {
    return false;
  }
};

// ---------------------------------------------------------------------------------------------
// mergeIntoBase
// ---------------------------------------------------------------------------------------------

describe('mergeIntoBase', () => {
  it('merges a branch with a merge commit whose parents are the old base and the branch, and the checked-out base follows', async () => {
    const root = makeRepo();
    const wt = addWorktree(root, 'loom/issue-1');
    const branchTip = commit(wt, 'feature', { 'feature.txt': 'new\n' });
    const oldMain = rev(root, 'main');
    // The base moved on too, so this is a true merge.
    commit(root, 'main moves', { 'b.txt': 'b\n' });
    const movedMain = rev(root, 'main');

    const result = await mergeIntoBase(root, 'main', 'loom/issue-1', 'Merge #1: feature (PR #2)');

    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(rev(root, 'main')).toBe(result.commit);
    expect(parents(root, result.commit)).toEqual([movedMain, branchTip]);
    expect(sh(root, 'log', '-1', '--format=%s', result.commit)).toBe('Merge #1: feature (PR #2)');
    expect(sh(root, 'rev-list', '--first-parent', 'main')).toBe([result.commit, movedMain, oldMain].join('\n'));
    // The main working tree has main checked out: its files follow and it stays clean.
    expect(fs.readFileSync(path.join(root, 'feature.txt'), 'utf8')).toBe('new\n');
    expect(fs.readFileSync(path.join(root, 'b.txt'), 'utf8')).toBe('b\n');
    expect(sh(root, 'status', '--porcelain')).toBe('');
    // The branch itself is untouched.
    expect(rev(root, 'loom/issue-1')).toBe(branchTip);
  });

  it('makes a merge commit even when the branch could be fast-forwarded (one merge per issue on first-parent history)', async () => {
    const root = makeRepo();
    const wt = addWorktree(root, 'loom/issue-1');
    const oldMain = rev(root, 'main');
    commit(wt, 'step 1', { 'f1.txt': '1\n' });
    const branchTip = commit(wt, 'step 2', { 'f2.txt': '2\n' });

    const result = await mergeIntoBase(root, 'main', 'loom/issue-1', 'Merge #1');

    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(parents(root, 'main')).toEqual([oldMain, branchTip]);
    expect(sh(root, 'rev-list', '--first-parent', 'main')).toBe([result.commit, oldMain].join('\n'));
  });

  it('reports a conflict and changes nothing: base, branch, working tree', async () => {
    const root = makeRepo();
    const wt = addWorktree(root, 'loom/issue-1');
    const branchTip = commit(wt, 'branch edits line two', { 'shared.txt': 'one\nTWO (branch)\nthree\n' });
    const mainTip = commit(root, 'main edits line two', { 'shared.txt': 'one\nTWO (main)\nthree\n' });

    const result = await mergeIntoBase(root, 'main', 'loom/issue-1', 'Merge #1');

    expect(result).toEqual({ ok: false, reason: 'conflict', message: 'loom/issue-1 does not merge cleanly into main' });
    expect(rev(root, 'main')).toBe(mainTip);
    expect(rev(root, 'loom/issue-1')).toBe(branchTip);
    expect(fs.readFileSync(path.join(root, 'shared.txt'), 'utf8')).toBe('one\nTWO (main)\nthree\n');
    expect(sh(root, 'status', '--porcelain')).toBe('');
  });

  it('refuses with dirty-main when local changes in the main working tree would be overwritten, keeping them and the base', async () => {
    const root = makeRepo();
    const wt = addWorktree(root, 'loom/issue-1');
    commit(wt, 'branch edits shared', { 'shared.txt': 'one\ntwo\nthree\nfour\n' });
    const mainTip = rev(root, 'main');
    write(root, 'shared.txt', 'local edit, not committed\n');

    const result = await mergeIntoBase(root, 'main', 'loom/issue-1', 'Merge #1');

    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.reason).toBe('dirty-main');
    expect(result.message).toMatch(/^the main working tree has local changes that the merge would overwrite: /);
    expect(rev(root, 'main')).toBe(mainTip);
    expect(fs.readFileSync(path.join(root, 'shared.txt'), 'utf8')).toBe('local edit, not committed\n');
  });

  it('merges past local changes to files the merge does not touch, and keeps them', async () => {
    const root = makeRepo();
    const wt = addWorktree(root, 'loom/issue-1');
    commit(wt, 'feature', { 'feature.txt': 'new\n' });
    write(root, 'a.txt', 'local edit\n');

    const result = await mergeIntoBase(root, 'main', 'loom/issue-1', 'Merge #1');

    expect(result.ok).toBe(true);
    expect(fs.readFileSync(path.join(root, 'a.txt'), 'utf8')).toBe('local edit\n');
    expect(fs.readFileSync(path.join(root, 'feature.txt'), 'utf8')).toBe('new\n');
    expect(sh(root, 'status', '--porcelain')).toBe(' M a.txt');
  });

  it('only moves the base ref when the main working tree has another branch checked out, leaving HEAD and files alone', async () => {
    const root = makeRepo();
    const wt = addWorktree(root, 'loom/issue-1');
    const branchTip = commit(wt, 'feature', { 'feature.txt': 'new\n' });
    sh(root, 'checkout', '-q', '-b', 'elsewhere');
    const elsewhere = commit(root, 'elsewhere', { 'else.txt': 'x\n' });
    const oldMain = rev(root, 'main');

    const result = await mergeIntoBase(root, 'main', 'loom/issue-1', 'Merge #1');

    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(parents(root, 'main')).toEqual([oldMain, branchTip]);
    expect(sh(root, 'symbolic-ref', 'HEAD')).toBe('refs/heads/elsewhere');
    expect(rev(root, 'HEAD')).toBe(elsewhere);
    expect(fs.existsSync(path.join(root, 'feature.txt'))).toBe(false);
    expect(sh(root, 'status', '--porcelain')).toBe('');
  });

  it('only moves the base ref when HEAD is detached', async () => {
    const root = makeRepo();
    const wt = addWorktree(root, 'loom/issue-1');
    commit(wt, 'feature', { 'feature.txt': 'new\n' });
    const oldMain = rev(root, 'main');
    sh(root, 'checkout', '-q', '--detach', 'main');

    const result = await mergeIntoBase(root, 'main', 'loom/issue-1', 'Merge #1');

    expect(result.ok).toBe(true);
    expect(parents(root, 'main')[0]).toBe(oldMain);
    expect(rev(root, 'HEAD')).toBe(oldMain);
    expect(fs.existsSync(path.join(root, 'feature.txt'))).toBe(false);
  });

  it('rejects with a GitError for a branch that does not exist, and leaves the base alone', async () => {
    const root = makeRepo();
    const mainTip = rev(root, 'main');
    await expect(mergeIntoBase(root, 'main', 'loom/issue-404', 'Merge')).rejects.toBeInstanceOf(GitError);
    expect(rev(root, 'main')).toBe(mainTip);
  });

  it.each([
    ['checked out in the main working tree', false],
    ['not checked out (ref-only update)', true],
  ])('concurrent unserialised merges into a base %s never lose one: every merge reported ok is on the base', async (_where, detach) => {
    const root = makeRepo();
    const branches = [1, 2, 3, 4].map((n) => {
      const branch = `loom/issue-${n}`;
      const wt = addWorktree(root, branch);
      commit(wt, `feature ${n}`, { [`f${n}.txt`]: `${n}\n` });
      return branch;
    });
    if (detach) sh(root, 'checkout', '-q', '--detach', 'main');
    const start = rev(root, 'main');

    const results = await Promise.allSettled(branches.map((b) => mergeIntoBase(root, 'main', b, `Merge ${b}`)));

    const merged = results.flatMap((r) => (r.status === 'fulfilled' && r.value.ok ? [r.value.commit] : []));
    // At least the first to move the base succeeds; the others either merged on top or failed.
    expect(merged.length).toBeGreaterThanOrEqual(1);
    for (const c of merged) expect(isAncestor(root, c, 'main'), `merge ${c} is on main`).toBe(true);
    // The base moved only by merges: first-parent history from main back to the start is exactly the merges.
    const firstParent = sh(root, 'rev-list', '--first-parent', `${start}..main`).split('\n');
    expect(firstParent.sort()).toEqual([...merged].sort());
    for (const r of results) if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(GitError);
  });
});

// ---------------------------------------------------------------------------------------------
// rebaseIfBehind
// ---------------------------------------------------------------------------------------------

describe('rebaseIfBehind', () => {
  it('does nothing when the branch already contains the base', async () => {
    const root = makeRepo();
    const wt = addWorktree(root, 'loom/issue-1');
    const tip = commit(wt, 'feature', { 'feature.txt': 'new\n' });

    expect(await rebaseIfBehind(wt, 'main')).toEqual({ rebased: false, conflict: false });
    expect(rev(wt, 'HEAD')).toBe(tip);
  });

  it('rebases onto a base that moved on: the branch keeps its change, on top of the new base', async () => {
    const root = makeRepo();
    const wt = addWorktree(root, 'loom/issue-1');
    const oldTip = commit(wt, 'feature', { 'feature.txt': 'new\n' });
    const mainTip = commit(root, 'main moves', { 'b.txt': 'b\n' });

    expect(await rebaseIfBehind(wt, 'main')).toEqual({ rebased: true, conflict: false });

    const newTip = rev(wt, 'HEAD');
    expect(newTip).not.toBe(oldTip);
    expect(parents(wt, newTip)).toEqual([mainTip]);
    expect(sh(wt, 'log', '-1', '--format=%s')).toBe('feature');
    expect(sh(wt, 'symbolic-ref', 'HEAD')).toBe('refs/heads/loom/issue-1');
    expect(fs.readFileSync(path.join(wt, 'feature.txt'), 'utf8')).toBe('new\n');
    expect(fs.readFileSync(path.join(wt, 'b.txt'), 'utf8')).toBe('b\n');
    expect(sh(wt, 'status', '--porcelain')).toBe('');
    // The base is not touched by a rebase.
    expect(rev(root, 'main')).toBe(mainTip);
  });

  it('reports a conflict, aborts the rebase and leaves the branch exactly as it was', async () => {
    const root = makeRepo();
    const wt = addWorktree(root, 'loom/issue-1');
    const tip = commit(wt, 'branch edits line two', { 'shared.txt': 'one\nTWO (branch)\nthree\n' });
    commit(root, 'main edits line two', { 'shared.txt': 'one\nTWO (main)\nthree\n' });

    expect(await rebaseIfBehind(wt, 'main')).toEqual({ rebased: false, conflict: true });

    expect(rev(wt, 'HEAD')).toBe(tip);
    expect(sh(wt, 'symbolic-ref', 'HEAD')).toBe('refs/heads/loom/issue-1');
    expect(sh(wt, 'status', '--porcelain')).toBe('');
    expect(fs.readFileSync(path.join(wt, 'shared.txt'), 'utf8')).toBe('one\nTWO (branch)\nthree\n');
    // No rebase left in progress: a second call behaves the same and git has nothing to abort.
    const gitDir = sh(wt, 'rev-parse', '--absolute-git-dir');
    expect(fs.existsSync(path.join(gitDir, 'rebase-merge'))).toBe(false);
    expect(fs.existsSync(path.join(gitDir, 'rebase-apply'))).toBe(false);
    expect(await rebaseIfBehind(wt, 'main')).toEqual({ rebased: false, conflict: true });
  });
});

describe('rebaseIfBehind on a branch holding a resolved merge of the base', () => {
  it('merges the moved base instead of rebasing, so the resolution is kept and nothing conflicts again', async () => {
    const root = makeRepo();
    const wt = addWorktree(root, 'loom/issue-1');
    commit(wt, 'branch edits line two', { 'shared.txt': 'one\nTWO (branch)\nthree\n' });
    commit(root, 'main edits line two', { 'shared.txt': 'one\nTWO (main)\nthree\n' });
    expect(await mergeBaseForDoctor(wt, 'main')).toEqual(['shared.txt']);
    write(wt, 'shared.txt', 'one\nTWO (both)\nthree\n');
    expect(await concludeMerge(wt, 'Merge main')).toBe(true);
    const mainTip = commit(root, 'main moves again', { 'b.txt': 'b\n' });

    expect(await rebaseIfBehind(wt, 'main')).toEqual({ rebased: true, conflict: false });

    expect(isAncestor(wt, mainTip, 'HEAD')).toBe(true);
    expect(fs.readFileSync(path.join(wt, 'shared.txt'), 'utf8')).toBe('one\nTWO (both)\nthree\n');
    expect(sh(wt, 'status', '--porcelain')).toBe('');
  });
});

describe('rebaseIfBehind with updateStrategy merge', () => {
  it('merges the moved base into the branch (a merge commit on top of the branch tip) instead of rebasing', async () => {
    const root = makeRepo();
    const wt = addWorktree(root, 'loom/issue-1');
    const tip = commit(wt, 'feature', { 'feature.txt': 'new\n' });
    const mainTip = commit(root, 'main moves', { 'b.txt': 'b\n' });

    expect(await rebaseIfBehind(wt, 'main', 'merge')).toEqual({ rebased: true, conflict: false });

    expect(parents(wt, 'HEAD')).toEqual([tip, mainTip]);
    expect(sh(wt, 'status', '--porcelain')).toBe('');
  });

  it('a conflicting merge is aborted and the branch left as it was', async () => {
    const root = makeRepo();
    const wt = addWorktree(root, 'loom/issue-1');
    const tip = commit(wt, 'branch edits line two', { 'shared.txt': 'one\nTWO (branch)\nthree\n' });
    commit(root, 'main edits line two', { 'shared.txt': 'one\nTWO (main)\nthree\n' });

    expect(await rebaseIfBehind(wt, 'main', 'merge')).toEqual({ rebased: false, conflict: true });

    expect(rev(wt, 'HEAD')).toBe(tip);
    expect(sh(wt, 'status', '--porcelain')).toBe('');
    expect(fs.existsSync(path.join(sh(wt, 'rev-parse', '--absolute-git-dir'), 'MERGE_HEAD'))).toBe(false);
  });
});

describe('conflicts for the Doctor', () => {
  it('conflictingFiles names the conflicting files without touching the worktree; none for a clean merge', async () => {
    const root = makeRepo();
    const wt = addWorktree(root, 'loom/issue-1');
    const tip = commit(wt, 'branch edits', { 'shared.txt': 'one\nTWO (branch)\nthree\n', 'x.txt': 'branch\n', 'clean.txt': 'c\n' });
    expect(await conflictingFiles(wt, 'main')).toEqual([]);
    commit(root, 'main edits', { 'shared.txt': 'one\nTWO (main)\nthree\n', 'x.txt': 'main\n' });

    expect((await conflictingFiles(wt, 'main')).sort()).toEqual(['shared.txt', 'x.txt']);
    expect(rev(wt, 'HEAD')).toBe(tip);
    expect(sh(wt, 'status', '--porcelain')).toBe('');
  });

  it('mergeBaseForDoctor leaves the conflicting merge in progress with markers, is idempotent, and commits a clean one', async () => {
    const root = makeRepo();
    const wt = addWorktree(root, 'loom/issue-1');
    commit(wt, 'branch edits line two', { 'shared.txt': 'one\nTWO (branch)\nthree\n' });
    const mainTip = commit(root, 'main edits line two', { 'shared.txt': 'one\nTWO (main)\nthree\n' });

    expect(await mergeBaseForDoctor(wt, 'main')).toEqual(['shared.txt']);
    expect(rev(wt, 'MERGE_HEAD')).toBe(mainTip);
    expect(fs.readFileSync(path.join(wt, 'shared.txt'), 'utf8')).toBe("one\n<<<<<<< HEAD\nTWO (branch)\n=======\nTWO (main)\n>>>>>>> main\nthree\n");
    expect(await filesWithConflictMarkers(wt, ['shared.txt'])).toEqual(['shared.txt']);
    // A resumed round finds the merge in progress and does not start another.
    expect(await mergeBaseForDoctor(wt, 'main')).toEqual(['shared.txt']);

    write(wt, 'shared.txt', 'one\nTWO (both)\nthree\n');
    expect(await filesWithConflictMarkers(wt, ['shared.txt'])).toEqual([]);
    expect(await concludeMerge(wt, 'Merge main into loom/issue-1')).toBe(true);
    expect(parents(wt, 'HEAD')[1]).toBe(mainTip);
    expect(sh(wt, 'status', '--porcelain')).toBe('');
    expect(await concludeMerge(wt, 'again')).toBe(false);
    // Already containing the base: nothing to do.
    expect(await mergeBaseForDoctor(wt, 'main')).toEqual([]);

    const wt2 = addWorktree(root, 'loom/issue-2', mainTip);
    commit(wt2, 'elsewhere', { 'c.txt': 'c\n' });
    const moved = commit(root, 'main moves', { 'd.txt': 'd\n' });
    expect(await mergeBaseForDoctor(wt2, 'main')).toEqual([]);
    expect(parents(wt2, 'HEAD')[1]).toBe(moved);
    expect(sh(wt2, 'status', '--porcelain')).toBe('');
  });
});

// ---------------------------------------------------------------------------------------------
// withMergeLock
// ---------------------------------------------------------------------------------------------

/** A promise with its resolve exposed, to hold a critical section open until the test says so. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open = () => {};
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

describe('withMergeLock', () => {
  it('holds the lock file (naming this process) while fn runs, returns its value and removes the lock', async () => {
    const lock = path.join(tempDir(), 'merge.lock');
    let seen = '';
    const value = await withMergeLock(lock, 1_000, () => {
      seen = fs.readFileSync(lock, 'utf8');
      return Promise.resolve(42);
    });
    expect(value).toBe(42);
    expect(seen).toBe(`${process.pid} ${processStart(process.pid)}`);
    expect(fs.existsSync(lock)).toBe(false);
  });

  it('releases the lock when fn throws, and passes the error on', async () => {
    const lock = path.join(tempDir(), 'merge.lock');
    await expect(withMergeLock(lock, 1_000, () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(fs.existsSync(lock)).toBe(false);
    expect(await withMergeLock(lock, 1_000, () => Promise.resolve('again'))).toBe('again');
  });

  it('with the merge queue, serves waiters in the order they joined (not whoever polls first), and lists them in that order with what the holder does', async () => {
    const dir = tempDir();
    const lock = path.join(dir, 'merge.lock');
    const queue = new MergeQueue(path.join(dir, 'merge-queue'));
    const order: number[] = [];
    const hold = gate();
    const tickets = new Map<number, string>();
    const join = (pr: number) => tickets.set(pr, queue.join({ pr, issue: pr - 1, by: 'champion' }));
    const run = (pr: number, wait?: Promise<void>) => {
      const ticket = tickets.get(pr) ?? '';
      return withMergeLock(
        lock,
        10_000,
        async () => {
          order.push(pr);
          queue.update(ticket, 'waiting on checks', 'unit');
          await wait;
        },
        { queue, ticket },
      ).finally(() => queue.leave(ticket));
    };
    join(2);
    const first = run(2, hold.promise);
    await waitUntil(() => order.length === 1, 'the first merger to hold the lock', 5_000);
    // Joined 5, 3, 9, but they start asking for the lock in the other order: the queue decides.
    for (const pr of [5, 3, 9]) join(pr);
    const rest = [9, 3, 5].map((pr) => run(pr));
    expect(queue.list().map((t) => [t.pr, t.step, t.detail ?? null])).toEqual([
      [2, 'waiting on checks', 'unit'],
      [5, 'waiting', null],
      [3, 'waiting', null],
      [9, 'waiting', null],
    ]);
    hold.open();
    await Promise.all([first, ...rest]);
    expect(order).toEqual([2, 5, 3, 9]);
    expect(queue.list()).toEqual([]);
  });

  it('in the queue, the wait is bounded by no progress: a holder waiting on CI longer than the timeout does not time the waiter out; a holder that does nothing does', async () => {
    const dir = tempDir();
    const lock = path.join(dir, 'merge.lock');
    const queue = new MergeQueue(path.join(dir, 'merge-queue'));
    const hold = gate();
    const holder = queue.join({ pr: 2, issue: 1, by: 'shepherd' });
    let holding = false;
    const first = withMergeLock(lock, 10_000, async () => {
      holding = true;
      queue.update(holder, 'waiting on checks', 'unit');
      await hold.promise;
    }, { queue, ticket: holder }).finally(() => queue.leave(holder));
    await waitUntil(() => holding, 'the first merger to hold the lock', 5_000);
    const waiter = queue.join({ pr: 4, issue: 3, by: 'shepherd' });
    const started = Date.now();
    const second = withMergeLock(lock, 1_500, () => Promise.resolve('merged'), { queue, ticket: waiter }).finally(() => queue.leave(waiter));
    // Well past the waiter's 1.5 s: the holder's CI is still running. It once gave up here ('locked').
    await waitUntil(() => Date.now() - started > 4_000, 'the holder’s CI to take a while', 10_000);
    hold.open();
    expect(await second).toBe('merged');
    await first;
    // A holder stuck in plain merging (no CI wait, the queue not moving) still times the waiter out.
    const stuck = gate();
    const other = queue.join({ pr: 6, issue: 5, by: 'shepherd' });
    const third = withMergeLock(lock, 60_000, () => stuck.promise, { queue, ticket: other }).finally(() => queue.leave(other));
    await waitUntil(() => fs.existsSync(lock), 'the third merger to hold the lock', 5_000);
    const late = queue.join({ pr: 8, issue: 7, by: 'shepherd' });
    expect(await withMergeLock(lock, 1_500, () => Promise.resolve('merged'), { queue, ticket: late }).finally(() => queue.leave(late))).toBe('locked');
    stuck.open();
    await third;
  }, 30_000);

  it('a ticket whose process is gone neither holds the queue up nor shows', async () => {
    const dir = tempDir();
    const queue = new MergeQueue(path.join(dir, 'merge-queue'));
    fs.mkdirSync(queue.dir, { recursive: true });
    fs.writeFileSync(path.join(queue.dir, '000000000000001-00000001-000001.json'), JSON.stringify({ pr: 7, issue: 6, by: 'shepherd', pid: await deadPid(children), pid_start: null, since: '2026-01-01T00:00:00.000Z', step: 'merging' }));
    const ticket = queue.join({ pr: 4, issue: 3, by: 'champion' });
    expect(queue.list().map((t) => t.pr)).toEqual([4]);
    expect(queue.isFirst(ticket)).toBe(true);
    expect(await withMergeLock(path.join(dir, 'merge.lock'), 2_000, () => Promise.resolve('merged'), { queue, ticket })).toBe('merged');
  });

  it('makes a second caller wait until the first is done', async () => {
    const lock = path.join(tempDir(), 'merge.lock');
    const events: string[] = [];
    const first = gate();
    const a = withMergeLock(lock, 10_000, async () => {
      events.push('a in');
      await first.promise;
      events.push('a out');
      return 'a';
    });
    await waitUntil(() => events.includes('a in'), 'the first caller to hold the lock');
    const b = withMergeLock(lock, 10_000, () => {
      events.push('b in');
      return Promise.resolve('b');
    });
    // The second caller has tried once already (the first attempt is immediate) and waits.
    expect(events).toEqual(['a in']);
    first.open();
    expect(await Promise.all([a, b])).toEqual(['a', 'b']);
    expect(events).toEqual(['a in', 'a out', 'b in']);
    expect(fs.existsSync(lock)).toBe(false);
  });

  it("gives up with 'locked' after the timeout while another caller holds it, without running fn or touching the holder's lock", async () => {
    const lock = path.join(tempDir(), 'merge.lock');
    const first = gate();
    const a = withMergeLock(lock, 10_000, () => first.promise);
    await waitUntil(() => fs.existsSync(lock), 'the first caller to hold the lock');
    const held = fs.readFileSync(lock, 'utf8');
    let ran = false;
    const started = Date.now();
    const b = await withMergeLock(lock, 200, () => {
      ran = true;
      return Promise.resolve();
    });
    expect(b).toBe('locked');
    expect(Date.now() - started).toBeGreaterThanOrEqual(190);
    expect(ran).toBe(false);
    expect(fs.readFileSync(lock, 'utf8')).toBe(held);
    first.open();
    await a;
    expect(fs.existsSync(lock)).toBe(false);
  });

  it('serialises many concurrent callers in one process', async () => {
    const lock = path.join(tempDir(), 'merge.lock');
    let inside = 0;
    let maxInside = 0;
    const order: number[] = [];
    await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        withMergeLock(lock, 20_000, async () => {
          inside += 1;
          maxInside = Math.max(maxInside, inside);
          await new Promise((resolve) => setImmediate(resolve));
          order.push(i);
          inside -= 1;
        }),
      ),
    );
    expect(maxInside).toBe(1);
    expect([...order].sort()).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it('takes over a lock left by a process that is gone', async () => {
    const lock = path.join(tempDir(), 'merge.lock');
    fs.writeFileSync(lock, String(await deadPid(children)));
    const started = Date.now();
    expect(await withMergeLock(lock, 10_000, () => Promise.resolve('ran'))).toBe('ran');
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(fs.existsSync(lock)).toBe(false);
  });

  it('waits for a live process holding the lock, and proceeds once that process dies', async () => {
    const lock = path.join(tempDir(), 'merge.lock');
    const holder = runIdleProcess(children);
    await waitUntil(() => holder.lines.includes('up'), 'the holder to start');
    fs.writeFileSync(lock, String(holder.pid));

    expect(await withMergeLock(lock, 150, () => Promise.resolve('ran'))).toBe('locked');
    expect(fs.readFileSync(lock, 'utf8')).toBe(String(holder.pid));

    let ran = false;
    const waiting = withMergeLock(lock, 20_000, () => {
      ran = true;
      return Promise.resolve('ran');
    });
    expect(ran).toBe(false);
    holder.process.kill('SIGKILL');
    await waitForExit(holder);
    expect(await waiting).toBe('ran');
    expect(fs.existsSync(lock)).toBe(false);
  });

  it('takes over a lock whose pid now belongs to another process (same pid, other start identity)', async () => {
    const lock = path.join(tempDir(), 'merge.lock');
    const other = runIdleProcess(children);
    await waitUntil(() => other.lines.includes('up'), 'the process to start');
    const start = processStart(other.pid);
    expect(start).not.toBeNull();
    // The same live process with its real start identity holds the lock…
    fs.writeFileSync(lock, `${other.pid} ${start}`);
    expect(await withMergeLock(lock, 150, () => Promise.resolve('ran'))).toBe('locked');
    // …but a lock recorded for an earlier process with that pid is stale.
    fs.writeFileSync(lock, `${other.pid} ${Number(start) - 1}`);
    expect(await withMergeLock(lock, 10_000, () => Promise.resolve('ran'))).toBe('ran');
    expect(fs.existsSync(lock)).toBe(false);
    expect(fs.readdirSync(path.dirname(lock))).toEqual([]);
  });

  it('excludes racing processes, from the takeover of a crashed holder’s lock on: no two holders at once, no lost update, no error, nothing left behind', { timeout: 120_000 }, async () => {
    const dir = tempDir();
    const lock = path.join(dir, 'merge.lock');
    const counter = path.join(dir, 'counter');
    const inside = path.join(dir, 'inside');
    const go = path.join(dir, 'go');
    fs.writeFileSync(counter, '0');
    // They start by racing to take over the lock of a merger that crashed.
    fs.writeFileSync(lock, String(await deadPid(children)));
    const racers = 6;
    const rounds = 100;
    const procs = Array.from({ length: racers }, () => runFixture(children, racerScript, [lock, counter, inside, String(rounds), go]));
    await waitUntil(() => procs.every((p) => p.lines.includes('ready') || p.exitCode !== undefined), 'every racer to start', 60_000);
    fs.writeFileSync(go, '');
    for (const p of procs) await waitForExit(p, 110_000);

    for (const p of procs) expect({ lines: p.lines, stderr: p.stderr, code: p.exitCode }).toEqual({ lines: ['ready', 'done 0'], stderr: '', code: 0 });
    expect(Number(fs.readFileSync(counter, 'utf8'))).toBe(racers * rounds);
    expect(fs.readdirSync(dir).sort()).toEqual(['counter', 'go']);
  });
});
