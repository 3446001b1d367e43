// Workspaces by real path: `.loom/worktrees/issue-N` is used only when it really is this
// repository's worktree on `loom/issue-N`; anything else blocks the issue and is left untouched.
// And a retry starts from the current default branch, keeping earlier work.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Label } from '../../src/core/labels.js';
import type { TestRepo } from '../helpers/loom-repo.js';
import { loom, makeRepo } from '../helpers/loom-repo.js';

let repo: TestRepo | undefined;
const extraDirs: string[] = [];
afterEach(() => {
  repo?.cleanup();
  for (const d of extraDirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

const fence = '```';
const git = (cwd: string, ...args: string[]) => spawnSync('git', ['-c', 'user.name=T', '-c', 'user.email=t@localhost', ...args], { cwd, encoding: 'utf8' }).stdout.trim();
const script = (role: string, body: string) => `${fence}loom-script ${role}\n${body}\n${fence}`;
const NO_SUPPORT_ROLES = Object.fromEntries(['architect', 'hermit', 'guide', 'curator', 'champion', 'judge', 'doctor'].map((r) => [r, { enabled: false }]));

/** Another git repository with one commit, outside the test repository. */
function otherRepo(): string {
  const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'loom-other-')));
  extraDirs.push(dir);
  git(dir, 'init', '-q', '-b', 'main');
  fs.writeFileSync(path.join(dir, 'other.txt'), 'other\n');
  git(dir, 'add', '.');
  git(dir, 'commit', '-qm', 'other initial');
  return dir;
}

/** Every ref of a repository and its status, to prove nothing was committed or changed there. */
function gitState(dir: string): string {
  return `${git(dir, 'for-each-ref', '--format=%(refname) %(objectname)')}\n${git(dir, 'status', '--porcelain', '--untracked-files=all')}`;
}

const cases: { name: string; reason: RegExp; make: (slot: string, root: string) => string[] }[] = [
  {
    name: 'a symbolic link to another repository',
    reason: /is a symbolic link/,
    make: (slot) => {
      const other = otherRepo();
      fs.symlinkSync(other, slot);
      return [other];
    },
  },
  {
    name: 'a symbolic link to another worktree of this repository',
    reason: /is a symbolic link/,
    make: (slot, root) => {
      const elsewhere = path.join(fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'loom-elsewhere-'))), 'wt');
      extraDirs.push(path.dirname(elsewhere));
      git(root, 'worktree', 'add', '-q', '-b', 'elsewhere', elsewhere, 'main');
      fs.symlinkSync(elsewhere, slot);
      return [elsewhere];
    },
  },
  {
    name: 'a file, not a directory',
    reason: /is not a directory/,
    make: (slot) => {
      fs.writeFileSync(slot, 'not a worktree\n');
      return [];
    },
  },
  {
    name: 'a worktree of this repository registered to another branch',
    reason: /has branch feature checked out, not loom\/issue-1/,
    make: (slot, root) => {
      git(root, 'worktree', 'add', '-q', '-b', 'feature', slot, 'main');
      return [];
    },
  },
  {
    name: 'a clone of another repository',
    reason: /is not a worktree of this repository/,
    make: (slot) => {
      const other = otherRepo();
      git(path.dirname(slot), 'clone', '-q', other, path.basename(slot));
      return [slot];
    },
  },
];

/** What a kill can leave at the worktree path: Loom's own half-done work, recovered rather than refused. */
const interrupted: { name: string; make: (slot: string, root: string) => void; kept?: string }[] = [
  { name: 'an empty directory (a worktree add killed at once)', make: (slot) => fs.mkdirSync(slot) },
  {
    name: 'a worktree add killed while checking out',
    make: (slot, root) => {
      git(root, 'worktree', 'add', '-q', '-b', 'loom/issue-1', slot, 'main');
      fs.rmSync(path.join(slot, 'README.md'));
      fs.writeFileSync(path.join(root, '.git', 'worktrees', 'issue-1', 'locked'), 'initializing\n');
    },
  },
  {
    name: 'a worktree remove killed half-way',
    make: (slot, root) => {
      git(root, 'worktree', 'add', '-q', '-b', 'loom/issue-1', slot, 'main');
      fs.rmSync(path.join(slot, '.git'));
    },
  },
  {
    name: 'a rebase killed half-way',
    make: (slot, root) => {
      git(root, 'worktree', 'add', '-q', '-b', 'loom/issue-1', slot, 'main');
      fs.writeFileSync(path.join(slot, 'w.txt'), 'w\n');
      git(slot, 'add', 'w.txt');
      git(slot, 'commit', '-qm', 'earlier work');
      fs.writeFileSync(path.join(root, 'm.txt'), 'm\n');
      git(root, 'add', 'm.txt');
      git(root, 'commit', '-qm', 'main moves');
      git(slot, 'rebase', '-q', '--exec', 'false', 'main');
      expect(fs.existsSync(path.join(root, '.git', 'worktrees', 'issue-1', 'rebase-merge'))).toBe(true);
    },
    kept: 'w.txt',
  },
  {
    name: 'a conflicting merge killed half-way',
    make: (slot, root) => {
      git(root, 'branch', 'other', 'main');
      git(root, 'worktree', 'add', '-q', '-b', 'loom/issue-1', slot, 'main');
      fs.writeFileSync(path.join(slot, 'w.txt'), 'w\n');
      git(slot, 'add', 'w.txt');
      git(slot, 'commit', '-qm', 'earlier work');
      const other = path.join(root, 'other-wt');
      git(root, 'worktree', 'add', '-q', other, 'other');
      fs.writeFileSync(path.join(other, 'w.txt'), 'other\n');
      git(other, 'add', 'w.txt');
      git(other, 'commit', '-qm', 'other w');
      git(root, 'worktree', 'remove', other);
      git(slot, 'merge', '-q', '--no-commit', 'other');
      git(root, 'branch', '-D', 'other');
      expect(fs.existsSync(path.join(root, '.git', 'worktrees', 'issue-1', 'MERGE_HEAD'))).toBe(true);
    },
    kept: 'w.txt',
  },
];

describe('workspaces by real path', () => {
  it.each(cases)('refuses $name: the issue is blocked with the reason, nothing is committed anywhere', async ({ reason, make }) => {
    repo = makeRepo({ runtime: 'script', roles: NO_SUPPORT_ROLES });
    const tracker = repo.tracker();
    await tracker.createIssue({ title: 'add a file', body: script('builder', 'write a.txt <<EOF\na\nEOF'), labels: [Label.issue] });
    fs.mkdirSync(repo.paths.worktrees, { recursive: true });
    const slot = path.join(repo.paths.worktrees, 'issue-1');
    const others = make(slot, repo.root);
    const before = { self: gitState(repo.root), others: others.map(gitState), slot: fs.lstatSync(slot) };

    const r = loom(repo.root, ['shepherd', '1', '--force-merge']);
    expect(r.code, r.stdout + r.stderr).toBe(5);
    expect((await tracker.getIssue(1))!.labels).toEqual([Label.blocked]);
    const comment = (await tracker.listComments(1)).at(-1)!.body;
    expect(comment).toMatch(/\.loom\/worktrees\/issue-1/);
    expect(comment).toMatch(reason);
    expect(comment).toMatch(/nothing was changed or committed there/);
    expect(await tracker.listPullRequests({ state: 'all' })).toEqual([]);
    expect(gitState(repo.root)).toBe(before.self);
    expect(others.map(gitState)).toEqual(before.others);
    const after = fs.lstatSync(slot);
    expect([after.ino, after.mode, after.isSymbolicLink()]).toEqual([before.slot.ino, before.slot.mode, before.slot.isSymbolicLink()]);

    // The next iteration leaves it alone as well, and says so once.
    for (let i = 0; i < 2; i += 1) expect(loom(repo.root, ['iterate']).code).toBe(0);
    expect(fs.lstatSync(slot).ino).toBe(before.slot.ino);
    expect(gitState(repo.root)).toBe(before.self);
    const warnings = JSON.parse(fs.readFileSync(repo.paths.state, 'utf8')).warnings.map((w: { message: string }) => w.message);
    expect(warnings.filter((m: string) => /issue-1/.test(m) && reason.test(m))).toHaveLength(1);
  });

  it.each(interrupted)('recovers $name left at the worktree path, and the issue is merged', async ({ make, kept }) => {
    repo = makeRepo({ runtime: 'script', roles: NO_SUPPORT_ROLES });
    const tracker = repo.tracker();
    await tracker.createIssue({ title: 'add a file', body: script('builder', 'write a.txt <<EOF\na\nEOF'), labels: [Label.issue] });
    fs.mkdirSync(repo.paths.worktrees, { recursive: true });
    make(path.join(repo.paths.worktrees, 'issue-1'), repo.root);

    const r = loom(repo.root, ['shepherd', '1', '--force-merge']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect((await tracker.getIssue(1))!.state).toBe('closed');
    expect(fs.readFileSync(path.join(repo.root, 'a.txt'), 'utf8')).toBe('a\n');
    expect(fs.existsSync(path.join(repo.root, 'README.md'))).toBe(true);
    if (kept !== undefined) expect(fs.readFileSync(path.join(repo.root, kept), 'utf8'), `${kept}, the earlier work`).toBe('w\n');
    expect(git(repo.root, 'log', '--first-parent', '--format=%s', 'main').split('\n').filter((l) => l.startsWith('Merge #1:'))).toHaveLength(1);
    expect(git(repo.root, 'worktree', 'list', '--porcelain').split('\n').filter((l) => l.startsWith('worktree '))).toHaveLength(1);
    expect(fs.readdirSync(repo.paths.worktrees)).toEqual([]);
    expect(git(repo.root, 'branch', '--format=%(refname:short)')).toBe('main');
  });

  it('a retry after a failed build starts from the current default branch, and the block comment does not claim work that was never done', async () => {
    repo = makeRepo({ runtime: 'script', roles: NO_SUPPORT_ROLES });
    const tracker = repo.tracker();
    await tracker.createIssue({ title: 'needs the fix', body: script('builder', 'run test -f fix.txt\nwrite a.txt <<EOF\na\nEOF'), labels: [Label.issue] });
    const first = loom(repo.root, ['shepherd', '1', '--force-merge']);
    expect(first.code, first.stdout + first.stderr).toBe(3);
    const comment = (await tracker.listComments(1)).at(-1)!.body;
    expect(comment).not.toMatch(/work so far is on branch/);
    expect(comment).toMatch(/no work was committed/i);
    expect(git(repo.root, 'branch', '--format=%(refname:short)')).toBe('main');

    fs.writeFileSync(path.join(repo.root, 'fix.txt'), 'fixed\n');
    git(repo.root, 'add', 'fix.txt');
    git(repo.root, 'commit', '-qm', 'the fix');
    await tracker.updateLabels(1, { add: [Label.issue] });
    const retry = loom(repo.root, ['shepherd', '1', '--force-merge']);
    expect(retry.code, retry.stdout + retry.stderr).toBe(0);
    expect(fs.readFileSync(path.join(repo.root, 'a.txt'), 'utf8')).toBe('a\n');
  });

  it('a retry keeps the earlier attempt’s commits, rebased onto the current default branch', async () => {
    repo = makeRepo({ runtime: 'script', roles: NO_SUPPORT_ROLES });
    const tracker = repo.tracker();
    const body = script('builder', ["run test -f part1.txt || (echo one > part1.txt && git add part1.txt && git commit -qm 'part 1')", 'run test -f fix.txt', 'write part2.txt <<EOF\ntwo\nEOF'].join('\n'));
    await tracker.createIssue({ title: 'two parts', body, labels: [Label.issue] });
    const first = loom(repo.root, ['shepherd', '1', '--force-merge']);
    expect(first.code, first.stdout + first.stderr).toBe(3);
    expect((await tracker.listComments(1)).at(-1)!.body).toMatch(/work so far is on branch `loom\/issue-1`/);

    fs.writeFileSync(path.join(repo.root, 'fix.txt'), 'fixed\n');
    git(repo.root, 'add', 'fix.txt');
    git(repo.root, 'commit', '-qm', 'the fix');
    await tracker.updateLabels(1, { add: [Label.issue] });
    const retry = loom(repo.root, ['shepherd', '1', '--force-merge']);
    expect(retry.code, retry.stdout + retry.stderr).toBe(0);
    expect(retry.stdout).toMatch(/rebased loom\/issue-1 onto main/);
    for (const file of ['part1.txt', 'part2.txt', 'fix.txt']) expect(fs.existsSync(path.join(repo.root, file)), file).toBe(true);
    expect(git(repo.root, 'log', '--format=%s', 'main').split('\n').filter((s) => s === 'part 1')).toHaveLength(1);
  });

  it('a retry whose earlier commits do not rebase merges the default branch in instead', async () => {
    repo = makeRepo({ runtime: 'script', roles: NO_SUPPORT_ROLES });
    const tracker = repo.tracker();
    fs.writeFileSync(path.join(repo.root, 'x.txt'), 'zero\n');
    git(repo.root, 'add', 'x.txt');
    git(repo.root, 'commit', '-qm', 'x');
    // The first attempt changes x.txt and changes it back: a rebase replays the change and conflicts, a merge does not.
    const body = script('builder', [
      "run test -f tried.txt || (echo A > x.txt && git commit -qam 'try A' && echo zero > x.txt && echo t > tried.txt && git add -A && git commit -qm 'undo A')",
      'run test -f fix.txt',
      'write y.txt <<EOF\ny\nEOF',
    ].join('\n'));
    await tracker.createIssue({ title: 'retry with a conflicting history', body, labels: [Label.issue] });
    expect(loom(repo.root, ['shepherd', '1', '--force-merge']).code).toBe(3);

    fs.writeFileSync(path.join(repo.root, 'x.txt'), 'B\n');
    fs.writeFileSync(path.join(repo.root, 'fix.txt'), 'fixed\n');
    git(repo.root, 'add', '-A');
    git(repo.root, 'commit', '-qm', 'B and the fix');
    await tracker.updateLabels(1, { add: [Label.issue] });
    const retry = loom(repo.root, ['shepherd', '1', '--force-merge']);
    expect(retry.code, retry.stdout + retry.stderr).toBe(0);
    expect(retry.stdout).toMatch(/merged main into loom\/issue-1/);
    expect(fs.readFileSync(path.join(repo.root, 'x.txt'), 'utf8')).toBe('B\n');
    expect(fs.existsSync(path.join(repo.root, 'y.txt'))).toBe(true);
  });

  it('a retry whose earlier work conflicts with the default branch is blocked with a true comment; the branch keeps its work', async () => {
    repo = makeRepo({ runtime: 'script', roles: NO_SUPPORT_ROLES });
    const tracker = repo.tracker();
    const body = script('builder', ["run test -f x.txt || (echo A > x.txt && git add x.txt && git commit -qm 'x is A')", 'run test -f fix.txt', 'write y.txt <<EOF\ny\nEOF'].join('\n'));
    await tracker.createIssue({ title: 'conflicts', body, labels: [Label.issue] });
    expect(loom(repo.root, ['shepherd', '1', '--force-merge']).code).toBe(3);
    const work = git(repo.root, 'rev-parse', 'loom/issue-1');

    fs.writeFileSync(path.join(repo.root, 'x.txt'), 'B\n');
    fs.writeFileSync(path.join(repo.root, 'fix.txt'), 'fixed\n');
    git(repo.root, 'add', '-A');
    git(repo.root, 'commit', '-qm', 'B and the fix');
    await tracker.updateLabels(1, { add: [Label.issue] });
    const retry = loom(repo.root, ['shepherd', '1', '--force-merge']);
    expect(retry.code, retry.stdout + retry.stderr).toBe(5);
    expect((await tracker.getIssue(1))!.labels).toEqual([Label.blocked]);
    expect((await tracker.listComments(1)).at(-1)!.body).toMatch(/work on branch `loom\/issue-1` conflicts with `main`/);
    expect(git(repo.root, 'rev-parse', 'loom/issue-1')).toBe(work);
    expect(git(repo.root, 'status', '--porcelain')).toBe('');
    expect(fs.readdirSync(repo.paths.worktrees)).toEqual([]);
  });
});
