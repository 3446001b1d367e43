// A git command killed in the middle of a write in an issue's worktree (an agent's `git add` or
// `git commit`, stopped by Loom or killed) leaves `.git/worktrees/issue-N/index.lock`; every later
// git write there fails. Before Loom writes in a worktree it removes such a lock when no process
// holds it (none has its working directory in the worktree or the lock open), and says so — and
// leaves it when one does.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Label } from '../../src/core/labels.js';
import { GitError } from '../../src/git/git.js';
import { Worktrees } from '../../src/git/worktrees.js';
import type { TestRepo } from '../helpers/loom-repo.js';
import { loom, makeRepo, until } from '../helpers/loom-repo.js';

let repo: TestRepo | undefined;
const children: number[] = [];
afterEach(() => {
  for (const pid of children.splice(0)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  repo?.cleanup();
});

const fence = '```';
const script = (role: string, body: string) => `${fence}loom-script ${role}\n${body}\n${fence}`;
const git = (cwd: string, ...args: string[]) => spawnSync('git', args, { cwd, encoding: 'utf8' });
const NO_SUPPORT_ROLES = Object.fromEntries(['architect', 'hermit', 'guide', 'curator', 'champion', 'judge', 'doctor'].map((r) => [r, { enabled: false }]));

/** The issue's worktree, created as Loom does, with an uncommitted change and a planted `index.lock`. */
async function worktreeWithStaleLock(r: TestRepo, issue: number): Promise<{ worktrees: Worktrees; dir: string; lock: string; lines: string[] }> {
  const lines: string[] = [];
  const worktrees = new Worktrees(r.root, r.paths.worktrees, { log: (line) => lines.push(line) });
  const dir = await worktrees.ensure(issue, 'main');
  fs.writeFileSync(path.join(dir, 'left.txt'), 'uncommitted work\n');
  const lock = path.join(r.root, '.git', 'worktrees', `issue-${issue}`, 'index.lock');
  fs.writeFileSync(lock, '');
  // As a killed `git add` leaves it: every git write in the worktree fails now.
  expect(git(dir, 'add', '-A').stderr).toMatch(/index\.lock': File exists/);
  return { worktrees, dir, lock, lines };
}

describe('a stale index.lock in an issue worktree', () => {
  it('is removed before Loom commits there when no process holds it, with a log line; the work is committed', async () => {
    repo = makeRepo();
    const { worktrees, dir, lock, lines } = await worktreeWithStaleLock(repo, 1);
    expect(await worktrees.saveWip(1, 'stopped')).toBe(true);
    expect(fs.existsSync(lock)).toBe(false);
    expect(lines).toEqual([expect.stringMatching(/^removed a stale \.git\/worktrees\/issue-1\/index\.lock in the worktree of #1 \(left by a git command that was killed; no process holds it\)$/)]);
    expect(git(dir, 'show', 'HEAD:left.txt').stdout).toBe('uncommitted work\n');
    expect(git(dir, 'status', '--porcelain').stdout).toBe('');
  });

  it('is left alone while a live process works in the worktree (it may be a git command writing the index): the commit fails', async () => {
    repo = makeRepo();
    const { worktrees, dir, lock, lines } = await worktreeWithStaleLock(repo, 1);
    const busy = spawn('sleep', ['30'], { cwd: dir, stdio: 'ignore' });
    children.push(busy.pid!);
    await until(() => fs.readlinkSync(`/proc/${busy.pid}/cwd`) === fs.realpathSync(dir), 5_000, 'the process in the worktree');
    await expect(worktrees.saveWip(1, 'stopped')).rejects.toThrow(GitError);
    expect(fs.existsSync(lock)).toBe(true);
    expect(lines).toEqual([]);
  });

  it('is left alone while a process holds the lock file open, wherever its working directory is', async () => {
    repo = makeRepo();
    const { worktrees, lock } = await worktreeWithStaleLock(repo, 1);
    const holder = spawn('sh', ['-c', 'exec 9<"$1"; exec sleep 30', 'sh', lock], { cwd: repo.root, stdio: 'ignore' });
    children.push(holder.pid!);
    await until(() => fs.readdirSync(`/proc/${holder.pid}/fd`).some((fd) => { try { return fs.readlinkSync(`/proc/${holder.pid}/fd/${fd}`) === lock; } catch { return false; } }), 5_000, 'the lock held open');
    await expect(worktrees.saveWip(1, 'stopped')).rejects.toThrow(GitError);
    expect(fs.existsSync(lock)).toBe(true);
  });

  it('no longer kills the shepherd that resumes the issue: it removes the lock, saves the work left there and finishes', async () => {
    repo = makeRepo({ runtime: 'script', roles: NO_SUPPORT_ROLES });
    const tracker = repo.tracker();
    await tracker.createIssue({ title: 'resumed', labels: [Label.issue], body: script('builder', 'write b.txt <<EOF\nb\nEOF') });
    const { lock } = await worktreeWithStaleLock(repo, 1);
    const r = loom(repo.root, ['shepherd', '1', '--force-merge']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/removed a stale \.git\/worktrees\/issue-1\/index\.lock in the worktree of #1/);
    expect(fs.existsSync(lock)).toBe(false);
    expect(git(repo.root, 'show', 'main:left.txt').stdout).toBe('uncommitted work\n');
    expect(git(repo.root, 'show', 'main:b.txt').stdout).toBe('b\n');
    expect((await tracker.getIssue(1))!.state).toBe('closed');
  });

  it('a HEAD.lock and the branch\'s ref lock left by a killed git commit: the shepherd that resumes removes them, saves the work and finishes', async () => {
    repo = makeRepo({ runtime: 'script', roles: NO_SUPPORT_ROLES });
    const tracker = repo.tracker();
    await tracker.createIssue({ title: 'resumed', labels: [Label.issue], body: script('builder', 'write b.txt <<EOF\nb\nEOF') });
    const worktrees = new Worktrees(repo.root, repo.paths.worktrees, { log: () => undefined });
    const dir = await worktrees.ensure(1, 'main');
    fs.writeFileSync(path.join(dir, 'left.txt'), 'uncommitted work\n');
    const head = path.join(repo.root, '.git', 'worktrees', 'issue-1', 'HEAD.lock');
    const ref = path.join(repo.root, '.git', 'refs', 'heads', 'loom', 'issue-1.lock');
    fs.writeFileSync(head, '');
    fs.writeFileSync(ref, '');
    // As a `git commit` killed while it moved the branch leaves them: every commit there fails now.
    expect(git(dir, 'add', '-A').status).toBe(0);
    expect(git(dir, '-c', 'user.name=T', '-c', 'user.email=t@localhost', 'commit', '-qm', 'x').stderr).toMatch(/\.lock': File exists/);
    const r = loom(repo.root, ['shepherd', '1', '--force-merge']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/removed a stale \.git\/worktrees\/issue-1\/HEAD\.lock in the worktree of #1/);
    expect(r.stdout).toMatch(/removed a stale \.git\/refs\/heads\/loom\/issue-1\.lock in the worktree of #1/);
    expect(fs.existsSync(head)).toBe(false);
    expect(fs.existsSync(ref)).toBe(false);
    expect(git(repo.root, 'show', 'main:left.txt').stdout).toBe('uncommitted work\n');
    expect((await tracker.getIssue(1))!.state).toBe('closed');
  });

  it("no longer stops the daemon's cleanup for ever: the closed issue's worktree is removed, its work kept on the branch", async () => {
    repo = makeRepo({ runtime: 'script', roles: NO_SUPPORT_ROLES });
    const tracker = repo.tracker();
    await tracker.createIssue({ title: 'closed by a human', labels: [], body: 'nothing' });
    await tracker.close(1, "Won't do.");
    const { dir, lock } = await worktreeWithStaleLock(repo, 1);
    const r = loom(repo.root, ['iterate']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/cleaned=#1/);
    expect(fs.existsSync(dir)).toBe(false);
    expect(fs.existsSync(lock)).toBe(false);
    expect(git(repo.root, 'show', 'loom/issue-1:left.txt').stdout).toBe('uncommitted work\n');
  });
});

describe('a merge lock left by a merger that was killed', () => {
  it("is removed by the next iteration's cleanup; a live holder's lock is kept", () => {
    repo = makeRepo({ runtime: 'script', roles: NO_SUPPORT_ROLES });
    const lock = path.join(repo.paths.dir, 'merge.lock');
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
    fs.writeFileSync(lock, `${dead.stdout} 1`);
    const r = loom(repo.root, ['iterate']);
    expect(r.code, r.stderr).toBe(0);
    expect(fs.existsSync(lock)).toBe(false);
    expect(fs.readdirSync(repo.paths.dir).filter((f) => f.startsWith('merge.lock'))).toEqual([]);

    const live = spawn('sleep', ['60']);
    children.push(live.pid!);
    fs.writeFileSync(lock, `${live.pid}`);
    expect(loom(repo.root, ['iterate']).code).toBe(0);
    expect(fs.readFileSync(lock, 'utf8')).toBe(`${live.pid}`);
  });
});
