// The original Loom's worktrees and branches on a real repository with the built `loom`: a
// worktree `.loom/worktrees/issue-N` on `feature/issue-N` with marker files is adopted — its work
// continues on `loom/issue-N`, the markers are never committed, the PR's branch exists and the
// Champion merges it — and the daemon's start-up cleanup leaves the original's worktrees alone.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Label } from '../../src/core/labels.js';
import type { TestRepo } from '../helpers/loom-repo.js';
import { loom, makeRepo, startDaemon, until } from '../helpers/loom-repo.js';

let repo: TestRepo | undefined;
afterEach(() => repo?.cleanup());

const fence = '```';
const script = (role: string, body: string) => `${fence}loom-script ${role}\n${body}\n${fence}`;
function git(cwd: string, ...args: string[]): string {
  const r = spawnSync('git', ['-c', 'user.name=Original Loom', '-c', 'user.email=original@localhost', ...args], { cwd, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`git ${args.join(' ')}: ${r.stderr}`);
  return r.stdout.trim();
}

/** What the original left: a worktree on feature/issue-N with a commit, uncommitted work and its two marker files. */
function originalWorktree(root: string, issue: number): string {
  const dir = path.join(root, '.loom', 'worktrees', `issue-${issue}`);
  git(root, 'worktree', 'add', '-q', '-b', `feature/issue-${issue}`, dir, 'main');
  fs.writeFileSync(path.join(dir, 'original.txt'), 'committed by the original\n');
  git(dir, 'add', 'original.txt');
  git(dir, 'commit', '-qm', `Original work on #${issue}`);
  fs.writeFileSync(path.join(dir, 'wip.txt'), 'not committed yet\n');
  fs.writeFileSync(path.join(dir, '.loom-in-use'), JSON.stringify({ shepherd_task_id: 'a1b2c3d', issue, created_at: '2026-06-01T09:00:00+00:00', pid: null }, null, 2));
  fs.writeFileSync(path.join(dir, '.loom-managed'), `# Loom-managed worktree marker\n# Issue: ${issue}\n# Branch: feature/issue-${issue}\n`);
  return dir;
}

describe('worktrees of the original Loom', () => {
  it('are adopted: the work on feature/issue-N continues on loom/issue-N, markers never committed, and the Champion merges the PR', async () => {
    repo = makeRepo({ runtime: 'script', heartbeatInterval: '0.2s' });
    const tracker = repo.tracker();
    await tracker.createIssue({ title: 'continue the original work', body: script('builder', 'write new.txt <<EOF\nby loom\nEOF'), labels: [Label.issue] });
    originalWorktree(repo.root, 1);
    const originalTip = git(repo.root, 'rev-parse', 'feature/issue-1');

    const r = loom(repo.root, ['shepherd', '1']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const pr = (await tracker.getPullRequest(2))!;
    expect(pr.head).toBe('loom/issue-1');
    expect(git(repo.root, 'rev-parse', '--verify', 'refs/heads/loom/issue-1')).toMatch(/^[0-9a-f]{40}$/);
    const files = git(repo.root, 'log', '--name-only', '--format=', 'main..loom/issue-1').split('\n').filter(Boolean).sort();
    expect(files).toEqual(['new.txt', 'original.txt', 'wip.txt']);
    expect(git(repo.root, 'merge-base', '--is-ancestor', originalTip, 'loom/issue-1')).toBe('');
    expect(git(repo.root, 'rev-parse', 'feature/issue-1')).toBe(originalTip);

    const champion = loom(repo.root, ['role', 'champion']);
    expect(champion.stdout, champion.stderr).toMatch(/merged #2/);
    const tree = git(repo.root, 'ls-tree', '-r', '--name-only', 'main').split('\n');
    expect(tree).toEqual(expect.arrayContaining(['new.txt', 'original.txt', 'wip.txt']));
    expect(tree).not.toContain('.loom-in-use');
    expect(tree).not.toContain('.loom-managed');
    expect(r.stdout).toMatch(/adopted issue-1 of the original Loom: its work on feature\/issue-1 continues on loom\/issue-1; removed its marker files \.loom-in-use, \.loom-managed/);
  });

  it('a feature/issue-N branch without a worktree starts loom/issue-N, so its work is kept', async () => {
    repo = makeRepo({ runtime: 'script', heartbeatInterval: '0.2s' });
    const tracker = repo.tracker();
    await tracker.createIssue({ title: 'branch only', body: script('builder', 'write more.txt <<EOF\nmore\nEOF'), labels: [Label.issue] });
    const dir = originalWorktree(repo.root, 1);
    fs.rmSync(path.join(dir, 'wip.txt'));
    git(repo.root, 'worktree', 'remove', '--force', dir);
    const r = loom(repo.root, ['shepherd', '1', '--force-merge']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(git(repo.root, 'ls-tree', '-r', '--name-only', 'main').split('\n')).toEqual(expect.arrayContaining(['more.txt', 'original.txt']));
    expect(r.stdout).toMatch(/loom\/issue-1 starts from feature\/issue-1 of the original Loom \(1 commit\(s\) not on main\)/);
  });

  it('daemon start-up cleanup leaves an original worktree alone, even for a closed issue', async () => {
    repo = makeRepo({ heartbeatInterval: '0.2s', pollInterval: '0.5s' });
    const tracker = repo.tracker();
    await tracker.createIssue({ title: 'done in the original' });
    await tracker.close(1, 'merged by the original');
    const dir = originalWorktree(repo.root, 1);
    const tip = git(repo.root, 'rev-parse', 'feature/issue-1');
    const daemon = startDaemon(repo.root);
    await until(() => /Iteration 1:/.test(daemon.output()), 20_000, `an iteration; output:\n${daemon.output()}`);
    expect(loom(repo.root, ['stop']).code).toBe(0);
    expect(await daemon.exited(30_000)).toBe(0);
    expect(fs.existsSync(path.join(dir, '.loom-in-use'))).toBe(true);
    expect(fs.readFileSync(path.join(dir, 'wip.txt'), 'utf8')).toBe('not committed yet\n');
    expect(git(repo.root, 'rev-parse', 'feature/issue-1')).toBe(tip);
    expect(daemon.output()).not.toMatch(/removed the worktree of #1/);
  });

  it('a worktree an original shepherd still works in (a live pid in .loom-in-use) is not taken', async () => {
    repo = makeRepo({ runtime: 'script', heartbeatInterval: '0.2s' });
    const tracker = repo.tracker();
    await tracker.createIssue({ title: 'still in use', body: script('builder', 'write x.txt <<EOF\nx\nEOF'), labels: [Label.issue] });
    const dir = originalWorktree(repo.root, 1);
    fs.writeFileSync(path.join(dir, '.loom-in-use'), JSON.stringify({ shepherd_task_id: 'a1b2c3d', issue: 1, pid: process.pid === 1 ? 2 : 1 }));
    const r = loom(repo.root, ['shepherd', '1']);
    expect(r.code, r.stdout + r.stderr).toBe(5);
    expect((await tracker.getIssue(1))!.labels).toEqual([Label.blocked]);
    expect((await tracker.listComments(1)).at(-1)!.body).toMatch(/in use by a shepherd of the original Loom \(pid \d+/);
    // Left exactly as it was: same branch, markers and uncommitted work in place.
    expect(git(dir, 'rev-parse', '--abbrev-ref', 'HEAD')).toBe('feature/issue-1');
    expect(fs.existsSync(path.join(dir, '.loom-managed'))).toBe(true);
    expect(git(dir, 'status', '--porcelain')).toMatch(/\?\? wip\.txt/);
  });
});
