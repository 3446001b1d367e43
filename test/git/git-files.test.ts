/**
 * `GitFiles` (src/git/git-files.ts) and the looks that use it instead of a git process — the
 * default branch, a branch's place relative to the base, the merge, a worktree's inspection, the
 * builder's leftovers — against real temporary repositories. "Without git" is proven by running
 * the look with no `git` on PATH: a git process would fail to start.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { GitFiles } from '../../src/git/git-files.js';
import { defaultBranch } from '../../src/git/git.js';
import { branchInBase, mergeIntoBase } from '../../src/git/merge.js';
import { Worktrees } from '../../src/git/worktrees.js';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'loom-git-files-')));
  dirs.push(dir);
  return dir;
}

function sh(cwd: string, ...args: string[]): string {
  return execFileSync('git', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trimEnd();
}

function commit(dir: string, message: string, files: Record<string, string>): string {
  for (const [file, content] of Object.entries(files)) fs.writeFileSync(path.join(dir, file), content);
  sh(dir, 'add', '-A');
  sh(dir, 'commit', '-q', '-m', message);
  return sh(dir, 'rev-parse', 'HEAD');
}

function makeRepo(): string {
  const root = tempDir();
  sh(root, 'init', '-q', '-b', 'main');
  sh(root, 'config', 'user.name', 'Files Tests');
  sh(root, 'config', 'user.email', 'files-tests@localhost');
  commit(root, 'initial', { 'a.txt': 'a\n' });
  return root;
}

/** Runs `fn` with no git on PATH (any git process fails to start), then puts PATH back. */
async function withoutGit<T>(fn: () => Promise<T> | T): Promise<T> {
  const saved = process.env.PATH;
  process.env.PATH = tempDir();
  try {
    return await fn();
  } finally {
    process.env.PATH = saved;
  }
}

const files = (root: string): GitFiles => {
  const found = GitFiles.of(root);
  if (found === null) throw new Error('no git files');
  return found;
};

describe('GitFiles', () => {
  it('reads loose and packed refs and follows symbolic ones; a missing ref is null', () => {
    const root = makeRepo();
    const main = sh(root, 'rev-parse', 'main');
    sh(root, 'branch', 'side');
    sh(root, 'update-ref', 'refs/remotes/origin/trunk', 'main');
    sh(root, 'symbolic-ref', 'refs/remotes/origin/HEAD', 'refs/remotes/origin/trunk');
    const f = files(root);
    expect(f.ref('refs/heads/main')).toBe(main);
    expect(f.ref('HEAD')).toBe(main);
    expect(f.symref('refs/remotes/origin/HEAD')).toBe('refs/remotes/origin/trunk');
    expect(f.ref('refs/remotes/origin/HEAD')).toBe(main);
    expect(f.ref('refs/heads/none')).toBeNull();
    sh(root, 'pack-refs', '--all');
    expect(fs.existsSync(path.join(root, '.git', 'refs', 'heads', 'side'))).toBe(false);
    expect(f.ref('refs/heads/side')).toBe(main);
    expect(f.resolve('origin/trunk')).toBe(main);
    expect(f.ref('refs/heads/none')).toBeNull();
    // `main` a directory (a branch under main/) and no branch main: none.
    sh(root, 'checkout', '-q', '-b', 'work');
    sh(root, 'branch', '-D', 'main');
    sh(root, 'branch', 'main/feature');
    expect(f.ref('refs/heads/main')).toBeNull();
  });

  it('leaves to git what the files do not say plainly: another ref storage, a tag a short name resolves to, a packed commit', () => {
    const root = makeRepo();
    const head = sh(root, 'rev-parse', 'HEAD');
    expect(files(root).commit(head)).toEqual({ tree: sh(root, 'rev-parse', 'HEAD^{tree}'), parents: [] });
    sh(root, 'tag', '-a', '-m', 'a tag', 'main-tag');
    sh(root, 'tag', '-a', '-m', 'shadows the branch', 'side');
    sh(root, 'branch', 'side');
    expect(files(root).resolve('side')).toBeUndefined();
    expect(files(root).resolve('main')).toBe(head);
    sh(root, 'gc', '-q');
    expect(files(root).commit(head)).toBeUndefined();
    fs.appendFileSync(path.join(root, '.git', 'config'), '[extensions]\n\trefStorage = reftable\n');
    expect(GitFiles.of(root)).toBeNull();
  });

  it('tells a tip that strictly descends from the base through loose commits, and nothing else', () => {
    const root = makeRepo();
    const base = sh(root, 'rev-parse', 'main');
    sh(root, 'checkout', '-q', '-b', 'feature');
    const one = commit(root, 'one', { 'b.txt': 'b\n' });
    sh(root, 'merge', '-q', '--no-ff', '-m', 'merge', sh(root, 'commit-tree', '-p', base, '-m', 'side', `${base}^{tree}`));
    const tip = sh(root, 'rev-parse', 'HEAD');
    const f = files(root);
    expect(f.descends(tip, base)).toBe(true);
    expect(f.descends(one, base)).toBe(true);
    expect(f.descends(base, base)).toBeUndefined();
    expect(f.descends(base, tip)).toBeUndefined();
    // A replace ref changes what git sees as history: the walk leaves it to git.
    sh(root, 'replace', one, base);
    expect(f.descends(tip, base)).toBeUndefined();
  });
});

describe('the looks that read files instead of starting git', () => {
  it('the default branch, from loose and packed refs', async () => {
    const root = makeRepo();
    expect(await withoutGit(() => defaultBranch(root))).toBe('main');
    sh(root, 'branch', '-m', 'main', 'master');
    sh(root, 'pack-refs', '--all');
    expect(await withoutGit(() => defaultBranch(root))).toBe('master');
  });

  it('a branch ahead of the base, and its merge: the tree is the branch’s own, the checked-out base follows', async () => {
    const root = makeRepo();
    const base = sh(root, 'rev-parse', 'main');
    sh(root, 'checkout', '-q', '-b', 'loom/issue-1');
    commit(root, 'work', { 'b.txt': 'b\n' });
    const tip = sh(root, 'rev-parse', 'HEAD');
    sh(root, 'checkout', '-q', 'main');
    const inBase = await withoutGit(() => branchInBase(root, 'loom/issue-1', 'main'));
    expect(inBase).toEqual({ state: 'unmerged', behind: false, tips: { base, tip, ahead: true } });
    const merged = await mergeIntoBase(root, 'main', 'loom/issue-1', 'Merge #1', inBase.state === 'unmerged' ? inBase.tips : null);
    expect(merged.ok).toBe(true);
    expect(sh(root, 'rev-parse', 'main^@').split('\n')).toEqual([base, tip]);
    expect(sh(root, 'rev-parse', 'main^{tree}')).toBe(sh(root, 'rev-parse', `${tip}^{tree}`));
    expect(fs.readFileSync(path.join(root, 'b.txt'), 'utf8')).toBe('b\n');
  });

  it('a branch whose history no longer holds the base (rewritten below it) is behind, and its merge keeps what the base gained', async () => {
    const root = makeRepo();
    const fork = sh(root, 'rev-parse', 'main');
    commit(root, 'base gains c', { 'c.txt': 'c\n' });
    sh(root, 'checkout', '-q', '-b', 'loom/issue-2', fork);
    commit(root, 'work', { 'b.txt': 'b\n' });
    sh(root, 'checkout', '-q', 'main');
    const inBase = await branchInBase(root, 'loom/issue-2', 'main');
    expect(inBase.state === 'unmerged' && inBase.behind && inBase.tips?.ahead === false).toBe(true);
    // Tips that claim "ahead" but are not the current ones are not trusted: the base moved since.
    const stale = { base: fork, tip: sh(root, 'rev-parse', 'loom/issue-2'), ahead: true };
    const merged = await mergeIntoBase(root, 'main', 'loom/issue-2', 'Merge #2', stale);
    expect(merged.ok).toBe(true);
    expect(sh(root, 'ls-tree', '--name-only', 'main').split('\n').sort()).toEqual(['a.txt', 'b.txt', 'c.txt']);
  });

  it('a worktree on its branch is inspected from its files; a detached one is still refused (by git)', async () => {
    const root = makeRepo();
    const worktrees = new Worktrees(root, path.join(root, '.loom', 'worktrees'));
    const dir = await worktrees.ensure(3, 'main');
    expect(await withoutGit(() => worktrees.inspect(3))).toEqual({ kind: 'worktree', interrupted: null });
    sh(dir, 'checkout', '-q', '--detach');
    expect(await worktrees.inspect(3)).toEqual({ kind: 'refused', reason: 'its HEAD is detached, not on loom/issue-3' });
  });

  it('the builder’s leftovers: committed when there are changes (untracked, staged, modified), nothing when clean', async () => {
    const root = makeRepo();
    const worktrees = new Worktrees(root, path.join(root, '.loom', 'worktrees'));
    const dir = await worktrees.ensure(4, 'main');
    const count = () => Number(sh(dir, 'rev-list', '--count', 'HEAD'));
    expect(await worktrees.commitAll(4, 'nothing')).toBe(false);
    expect(count()).toBe(1);
    fs.writeFileSync(path.join(dir, 'new.txt'), 'new\n');
    expect(await worktrees.commitAll(4, 'untracked')).toBe(true);
    fs.writeFileSync(path.join(dir, 'a.txt'), 'staged\n');
    sh(dir, 'add', 'a.txt');
    expect(await worktrees.commitAll(4, 'staged')).toBe(true);
    fs.writeFileSync(path.join(dir, 'a.txt'), 'modified\n');
    expect(await worktrees.commitAll(4, 'modified')).toBe(true);
    expect(count()).toBe(4);
    expect(sh(dir, 'status', '--porcelain')).toBe('');
    expect(await worktrees.commitAll(4, 'clean again')).toBe(false);
    expect(count()).toBe(4);
  });

  it('in a German locale git’s answers are still told apart: a clean worktree has nothing to commit, a kept branch gets its worktree again', async () => {
    const root = makeRepo();
    const worktrees = new Worktrees(root, path.join(root, '.loom', 'worktrees'));
    const dir = await worktrees.ensure(5, 'main');
    const saved = { LC_ALL: process.env.LC_ALL, LANGUAGE: process.env.LANGUAGE };
    process.env.LC_ALL = 'C.UTF-8';
    process.env.LANGUAGE = 'de';
    try {
      expect(await worktrees.commitAll(5, 'nothing')).toBe(false);
      fs.writeFileSync(path.join(dir, 'new.txt'), 'new\n');
      expect(await worktrees.commitAll(5, 'untracked')).toBe(true);
      // Removed, the branch kept with its work: `worktree add -b` refuses the existing branch (in German, unless asked for English).
      await worktrees.remove(5);
      expect(await worktrees.prepare(5, 'main')).toEqual({ dir, existed: false, branchExisted: true });
      expect(fs.readFileSync(path.join(dir, 'new.txt'), 'utf8')).toBe('new\n');
    } finally {
      for (const [key, value] of Object.entries(saved)) {
        if (value === undefined) delete process.env[key];
        else process.env[key] = value;
      }
    }
  });
});
