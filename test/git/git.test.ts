// Loom's git wrapper beside other git processes in the same worktree.
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { git, GitError, worktreeBeingAdded } from '../../src/git/git.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function repo(): string {
  const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'loom-git-')));
  dirs.push(dir);
  execFileSync('git', ['init', '-q', '-b', 'main', dir]);
  fs.writeFileSync(path.join(dir, 'a.txt'), 'a\n');
  execFileSync('git', ['add', 'a.txt'], { cwd: dir });
  execFileSync('git', ['-c', 'user.name=T', '-c', 'user.email=t@localhost', 'commit', '-qm', 'a'], { cwd: dir });
  return dir;
}

describe('git', () => {
  it('a commit that finds the index locked by another git process waits for it instead of failing', async () => {
    const dir = repo();
    const lock = path.join(dir, '.git', 'index.lock');
    fs.writeFileSync(lock, '');
    fs.writeFileSync(path.join(dir, 'b.txt'), 'b\n');
    // Another process lets go of the lock a moment after the commit first tried.
    const holder = spawn(process.execPath, ['-e', `setTimeout(() => require('fs').rmSync(${JSON.stringify(lock)}), 400)`]);
    const exited = new Promise((resolve) => holder.on('exit', resolve));
    await git(dir, ['add', 'b.txt']);
    await git(dir, ['commit', '-q', '-m', 'b'], { asLoom: true });
    await exited;
    expect(await git(dir, ['log', '--format=%s'])).toBe('b\na');
  });

  it('a lock left by a crashed git still fails, with git\'s own message, after the retries', async () => {
    const dir = repo();
    fs.writeFileSync(path.join(dir, '.git', 'index.lock'), '');
    fs.writeFileSync(path.join(dir, 'b.txt'), 'b\n');
    const error = await git(dir, ['add', 'b.txt']).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GitError);
    expect((error as GitError).message).toMatch(/index\.lock/);
  });

  it("a fetch that meets another worktree being added (git's placeholder HEAD) is tried again instead of failing", async () => {
    const origin = repo();
    const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'loom-git-clone-')));
    dirs.push(dir);
    execFileSync('git', ['clone', '-q', origin, dir]);
    execFileSync('git', ['worktree', 'add', '-q', '--detach', path.join(dir, 'issue-1'), 'HEAD'], { cwd: dir });
    execFileSync('git', ['-c', 'user.name=T', '-c', 'user.email=t@localhost', 'commit', '-q', '--allow-empty', '-m', 'b'], { cwd: origin });
    // `git worktree add` first writes a HEAD of zeros, then the real one: a fetch in between
    // ("bad object worktrees/…/HEAD") changed nothing and goes through once the HEAD is written.
    const head = path.join(dir, '.git', 'worktrees', 'issue-1', 'HEAD');
    const real = fs.readFileSync(head, 'utf8');
    fs.writeFileSync(head, `${'0'.repeat(40)}\n`);
    const writer = spawn(process.execPath, ['-e', `setTimeout(() => require('fs').writeFileSync(${JSON.stringify(head)}, ${JSON.stringify(real)}), 300)`]);
    const exited = new Promise((resolve) => writer.on('exit', resolve));
    await git(dir, ['fetch', '-q', 'origin', 'main']);
    await exited;
    expect(await git(dir, ['log', '-1', '--format=%s', 'origin/main'])).toBe('b');
  });

  it("tells git's placeholder HEAD from a locked worktree HEAD, which is not tried again (the command may have changed files before it)", () => {
    const dir = repo();
    const wt = path.join(dir, 'issue-1');
    execFileSync('git', ['worktree', 'add', '-q', '--detach', wt, 'HEAD'], { cwd: dir });
    fs.writeFileSync(path.join(dir, '.git', 'worktrees', 'issue-1', 'HEAD.lock'), '');
    let locked = '';
    try {
      execFileSync('git', ['-c', 'user.name=T', '-c', 'user.email=t@localhost', 'commit', '-q', '--allow-empty', '-m', 'x'], { cwd: wt, env: { ...process.env, LC_ALL: 'C' }, stdio: 'pipe' });
    } catch (error) {
      locked = String((error as { stderr: Buffer }).stderr);
    }
    expect(locked).toMatch(/worktrees\/issue-1\/HEAD\.lock/);
    expect(worktreeBeingAdded(locked)).toBe(false);
    expect(worktreeBeingAdded('fatal: bad object worktrees/issue-1/HEAD\nerror: /tmp/o.git did not send all necessary objects')).toBe(true);
    expect(worktreeBeingAdded("error: refs/worktrees/issue-1/HEAD does not point to a valid object!")).toBe(false);
  });

  it('looks into a worktree never take its index lock (git status does not rewrite the index)', async () => {
    const dir = repo();
    const index = path.join(dir, '.git', 'index');
    // The file's times change and its content does not: a plain `git status` refreshes the index and writes it back.
    const past = new Date(Date.now() - 60_000);
    fs.utimesSync(index, past, past);
    const later = new Date(Date.now() - 30_000);
    fs.utimesSync(path.join(dir, 'a.txt'), later, later);
    const before = fs.statSync(index).mtimeMs;
    expect(await git(dir, ['status', '--porcelain'])).toBe('');
    expect(fs.statSync(index).mtimeMs).toBe(before);
    // Without Loom's setting git does write it: the check above can fail.
    execFileSync('git', ['status', '--porcelain'], { cwd: dir, env: { ...process.env, GIT_OPTIONAL_LOCKS: '1' } });
    expect(fs.statSync(index).mtimeMs).not.toBe(before);
  });
});
