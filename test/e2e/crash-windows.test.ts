// Every side effect of a shepherd is idempotent across crashes, and nothing is left behind. Each
// test kills a real shepherd with SIGKILL at one named crash window (LOOM_TEST_CRASH_AT, the
// windows docs/shepherd.md lists), lets one `loom iterate` recover, and runs the issue again.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Label } from '../../src/core/labels.js';
import type { TestRepo } from '../helpers/loom-repo.js';
import { loom, makeRepo, until } from '../helpers/loom-repo.js';
import { isProcessAlive, processStart } from '../../src/process/process-identity.js';

let repo: TestRepo | undefined;
afterEach(() => repo?.cleanup());

const fence = '```';
const git = (cwd: string, ...args: string[]) => spawnSync('git', args, { cwd, encoding: 'utf8' }).stdout.trim();
const script = (role: string, body: string) => `${fence}loom-script ${role}\n${body}\n${fence}`;
const NO_SUPPORT_ROLES = Object.fromEntries(['architect', 'hermit', 'guide', 'curator', 'champion', 'judge', 'doctor'].map((r) => [r, { enabled: false }]));

function crashRepo(config: Record<string, unknown> = {}): TestRepo {
  return makeRepo({ runtime: 'script', heartbeatInterval: '0.2s', roles: NO_SUPPORT_ROLES, ...config });
}

/** Runs `loom shepherd N --force-merge`, killed with SIGKILL at `point`. */
function shepherdKilledAt(n: number, point: string): void {
  const r = loom(repo!.root, ['shepherd', String(n), '--force-merge'], { LOOM_TEST_CRASH_AT: point });
  expect(r.code, `the shepherd was not killed at ${point}:\n${r.stdout}${r.stderr}`).toBeNull();
}

/** One iteration: recovers the dead shepherd (its issue back to `loom:issue`) and cleans up. */
function iterate(): string {
  const r = loom(repo!.root, ['iterate']);
  expect(r.code, r.stdout + r.stderr).toBe(0);
  return r.stdout;
}

function shepherd(n: number): { code: number | null; output: string } {
  const r = loom(repo!.root, ['shepherd', String(n), '--force-merge']);
  return { code: r.code, output: r.stdout + r.stderr };
}

const mergesOf = (n: number) => git(repo!.root, 'log', '--first-parent', '--format=%s', 'main').split('\n').filter((s) => s.startsWith(`Merge #${n}:`));
/** The merge events of PR `pr`: every merge is counted once (`/metrics`, `loom events`), whoever records it. */
const mergeEvents = (pr: number) => (fs.existsSync(repo!.paths.events) ? fs.readFileSync(repo!.paths.events, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { type: string; pr?: number }) : []).filter((e) => e.type === 'pr.merged' && e.pr === pr);
const branches = () => git(repo!.root, 'branch', '--format=%(refname:short)').split('\n').filter(Boolean);
const checkpointFiles = () => (fs.existsSync(repo!.paths.checkpoints) ? fs.readdirSync(repo!.paths.checkpoints) : []);

function tempFiles(dir: string): string[] {
  const found: string[] = [];
  const walk = (d: string) => {
    for (const entry of fs.readdirSync(d, { withFileTypes: true })) {
      if (entry.name === 'worktrees') continue;
      const full = path.join(d, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.name.endsWith('.tmp')) found.push(path.relative(dir, full));
    }
  };
  walk(dir);
  return found;
}

/** Nothing of issue `n` is left: no worktree, no branch, no checkpoint, no temp file. */
function expectNothingLeft(n: number): void {
  expect(fs.existsSync(path.join(repo!.paths.worktrees, `issue-${n}`)), 'worktree').toBe(false);
  expect(branches()).toEqual(['main']);
  expect(checkpointFiles()).toEqual([]);
  expect(tempFiles(repo!.paths.dir)).toEqual([]);
}

describe('crash windows', () => {
  it('killed after the default branch moved, before the PR was marked merged: the retry records the merge and never merges again', async () => {
    repo = crashRepo();
    const tracker = repo.tracker();
    await tracker.createIssue({ title: 'add a file', body: script('builder', 'write a.txt <<EOF\na\nEOF'), labels: [Label.issue] });
    shepherdKilledAt(1, 'merge:base-moved');
    expect(mergesOf(1)).toHaveLength(1);
    expect((await tracker.getPullRequest(2))!.state).toBe('open');

    expect(iterate()).toMatch(/died=#1/);
    expect((await tracker.getIssue(1))!.labels).toEqual([Label.issue]);
    const again = shepherd(1);
    expect(mergesOf(1)).toHaveLength(1);
    expect(git(repo.root, 'log', '--format=%s', 'main').split('\n').filter((s) => s.startsWith('Merge '))).toHaveLength(1);
    expect(again.code, again.output).toBe(0);
    expect(again.output).toMatch(/PR #2 was already merged into main/);
    expect(mergeEvents(2)).toHaveLength(1);
    expect((await tracker.getPullRequest(2))!.state).toBe('merged');
    expect((await tracker.getIssue(1))!.state).toBe('closed');
    expect(fs.readFileSync(path.join(repo.root, 'a.txt'), 'utf8')).toBe('a\n');
    expectNothingLeft(1);
  });

  it('killed after the default branch moved, and then a human closes the issue: the next iteration records the PR as merged and leaves the issue closed', async () => {
    repo = crashRepo();
    const tracker = repo.tracker();
    await tracker.createIssue({ title: 'add a file', body: script('builder', 'write a.txt <<EOF\na\nEOF'), labels: [Label.issue] });
    shepherdKilledAt(1, 'merge:base-moved');
    expect(mergesOf(1)).toHaveLength(1);
    expect(loom(repo.root, ['issue', 'close', '1']).code).toBe(0);

    expect(iterate()).toMatch(/cleaned=#1/);
    // The work is on main: the PR says so, instead of staying open (and a support role's work) for ever.
    expect((await tracker.getPullRequest(2))!).toMatchObject({ state: 'merged', labels: [] });
    expect(mergeEvents(2)).toHaveLength(1);
    // The event log says what the cleanup did.
    const cleaned = fs.readFileSync(repo.paths.events, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { type: string; issue?: number; message?: string }).filter((e) => e.type === 'issue.cleaned' && e.issue === 1);
    expect(cleaned.map((e) => e.message)).toEqual([expect.stringMatching(/^#1: PR #2 was merged but not recorded \(the issue was closed since\); marked it merged; removed the worktree of #1 \(issue closed\)/)]);
    expect((await tracker.getIssue(1))!.state).toBe('closed');
    expect(mergesOf(1)).toHaveLength(1);
    expectNothingLeft(1);
  });

  it('killed after the PR was marked merged, before the issue was closed: the retry closes the issue instead of blocking it', async () => {
    repo = crashRepo();
    const tracker = repo.tracker();
    await tracker.createIssue({ title: 'add a file', body: script('builder', 'write a.txt <<EOF\na\nEOF'), labels: [Label.issue] });
    shepherdKilledAt(1, 'merge:pr-marked');
    expect((await tracker.getPullRequest(2))!.state).toBe('merged');
    expect((await tracker.getIssue(1))!.state).toBe('open');
    expect(mergeEvents(2)).toHaveLength(1);

    iterate();
    const again = shepherd(1);
    expect(mergeEvents(2)).toHaveLength(1);
    expect(again.code, again.output).toBe(0);
    const issue = await tracker.getIssue(1);
    expect(issue!.state).toBe('closed');
    expect(issue!.labels).toEqual([]);
    expect((await tracker.listComments(1)).filter((c) => /merged PR #2/.test(c.body))).toHaveLength(1);
    expect(mergesOf(1)).toHaveLength(1);
    expectNothingLeft(1);
  });

  it('killed after opening its PR, before the checkpoint: the retry reuses the open PR instead of opening a second one', async () => {
    repo = crashRepo();
    const tracker = repo.tracker();
    await tracker.createIssue({ title: 'add a file', body: script('builder', 'write a.txt <<EOF\na\nEOF'), labels: [Label.issue] });
    shepherdKilledAt(1, 'pr:created');
    expect(await tracker.listPullRequests({ state: 'all' })).toHaveLength(1);

    iterate();
    const again = shepherd(1);
    const prs = await tracker.listPullRequests({ state: 'all' });
    expect(prs.map((p) => [p.number, p.state])).toEqual([[2, 'merged']]);
    expect(again.code, again.output).toBe(0);
    expect(again.output).toMatch(/reusing the open PR #2/);
    expect(mergesOf(1)).toHaveLength(1);
    expectNothingLeft(1);
  });

  it('killed after posting its review, before recording the verdict: the retry posts no second review and runs no second judge', async () => {
    const journal = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'loom-judge-')), 'journal');
    repo = crashRepo();
    const tracker = repo.tracker();
    await tracker.createIssue({
      title: 'add a file',
      labels: [Label.issue],
      body: [script('builder', 'write a.txt <<EOF\na\nEOF'), script('judge', `run echo judge >> ${journal}\nsay VERDICT: APPROVE`)].join('\n\n'),
    });
    shepherdKilledAt(1, 'judge:reviewed');
    expect((await tracker.listComments(2)).filter((c) => c.body.startsWith('**Loom Judge'))).toHaveLength(1);

    iterate();
    const again = shepherd(1);
    expect(again.code, again.output).toBe(0);
    expect((await tracker.listComments(2)).filter((c) => c.body.startsWith('**Loom Judge'))).toHaveLength(1);
    expect(fs.readFileSync(journal, 'utf8').trim().split('\n')).toEqual(['judge']);
    expect((await tracker.getPullRequest(2))!.state).toBe('merged');
    expectNothingLeft(1);
  });

  it('killed after closing its issue, before removing its worktree: the next iteration removes the worktree, the merged branch and the checkpoint', async () => {
    repo = crashRepo();
    const tracker = repo.tracker();
    await tracker.createIssue({ title: 'add a file', body: script('builder', 'write a.txt <<EOF\na\nEOF'), labels: [Label.issue] });
    shepherdKilledAt(1, 'merge:issue-closed');
    expect((await tracker.getIssue(1))!.state).toBe('closed');
    // Whoever sees the issue closed finds its merge in the event log.
    expect(mergeEvents(2)).toHaveLength(1);
    expect(fs.existsSync(path.join(repo.paths.worktrees, 'issue-1'))).toBe(true);
    expect(branches()).toContain('loom/issue-1');
    expect(checkpointFiles()).toEqual(['issue-1.json']);

    expect(iterate()).toMatch(/cleaned=#1/);
    expect(mergesOf(1)).toHaveLength(1);
    expectNothingLeft(1);
  });

  it('a Champion killed after marking the PR merged, before closing the issue: the next iteration closes the issue and cleans up', async () => {
    repo = crashRepo();
    const tracker = repo.tracker();
    await tracker.createIssue({ title: 'add a file', body: script('builder', 'write a.txt <<EOF\na\nEOF'), labels: [Label.issue] });
    const approved = loom(repo.root, ['shepherd', '1']);
    expect(approved.code, approved.stdout + approved.stderr).toBe(0);
    expect(fs.existsSync(path.join(repo.paths.worktrees, 'issue-1'))).toBe(false);
    expect(checkpointFiles()).toEqual([]);
    const champion = loom(repo.root, ['role', 'champion'], { LOOM_TEST_CRASH_AT: 'merge:pr-marked' });
    expect(champion.code, champion.stdout + champion.stderr).toBeNull();
    expect((await tracker.getPullRequest(2))!.state).toBe('merged');
    expect((await tracker.getIssue(1))!.state).toBe('open');

    expect(mergeEvents(2)).toHaveLength(1);
    expect(iterate()).toMatch(/cleaned=#1/);
    expect((await tracker.getIssue(1))!.state).toBe('closed');
    expect((await tracker.listComments(1)).at(-1)!.body).toMatch(/merged PR #2/);
    expect(mergeEvents(2)).toHaveLength(1);
    expect(mergesOf(1)).toHaveLength(1);
    expectNothingLeft(1);
  });

  it('nothing is cleaned while a Judge, Doctor or Champion runs (they work in issue worktrees); it is once they are done', async () => {
    repo = crashRepo();
    const tracker = repo.tracker();
    await tracker.createIssue({ title: 'add a file', body: script('builder', 'write a.txt <<EOF\na\nEOF'), labels: [Label.issue] });
    shepherdKilledAt(1, 'merge:issue-closed');
    // A Champion run in progress: its progress record names a live process.
    const sleeper = spawn('sleep', ['60'], { stdio: 'ignore' });
    try {
      const record = { kind: 'role', task_id: 'abcdef123456', issue: null, role: 'champion', status: 'running', pid: sleeper.pid, pid_start: processStart(sleeper.pid!), launcher_pid: process.pid, output_file: '(terminal)', started: new Date().toISOString(), heartbeat: new Date().toISOString(), phase: 'champion' };
      fs.writeFileSync(path.join(repo.paths.progress, 'role-champion.json'), JSON.stringify(record));
      expect(iterate()).not.toMatch(/cleaned=/);
      expect(fs.existsSync(path.join(repo.paths.worktrees, 'issue-1'))).toBe(true);
      expect(checkpointFiles()).toEqual(['issue-1.json']);
    } finally {
      sleeper.kill('SIGKILL');
    }
    await until(() => !isProcessAlive(sleeper.pid), 10_000, 'the stand-in Champion is gone');
    expect(iterate()).toMatch(/cleaned=#1/);
    expectNothingLeft(1);
  });

  it('a checkpoint write killed before its rename leaves a temp file: the next iteration removes it, and the retry finishes', async () => {
    repo = crashRepo();
    const tracker = repo.tracker();
    await tracker.createIssue({ title: 'add a file', body: script('builder', 'write a.txt <<EOF\na\nEOF'), labels: [Label.issue] });
    shepherdKilledAt(1, 'checkpoint:before-rename');
    expect(checkpointFiles().filter((f) => f.endsWith('.tmp'))).toHaveLength(1);

    iterate();
    expect(tempFiles(repo.paths.dir)).toEqual([]);
    const again = shepherd(1);
    expect(again.code, again.output).toBe(0);
    expect(mergesOf(1)).toHaveLength(1);
    expectNothingLeft(1);
  });

  it('a killed shepherd whose issue a human then closes or blocks: the next iteration saves its uncommitted work, keeps branches with work, deletes empty ones', async () => {
    repo = crashRepo();
    const tracker = repo.tracker();
    // #1 has work on its branch and uncommitted work in its worktree; #2 has only an empty branch.
    await tracker.createIssue({ title: 'has work', body: script('builder', 'write a.txt <<EOF\na\nEOF'), labels: [Label.issue] });
    await tracker.createIssue({ title: 'no work yet', body: script('builder', 'write b.txt <<EOF\nb\nEOF'), labels: [Label.issue] });
    shepherdKilledAt(1, 'pr:created');
    fs.writeFileSync(path.join(repo.paths.worktrees, 'issue-1', 'unsaved.txt'), 'precious\n');
    git(repo.root, 'worktree', 'add', '-q', '-b', 'loom/issue-2', path.join(repo.paths.worktrees, 'issue-2'), 'main');
    await tracker.updateLabels(2, { add: [Label.building] });
    fs.mkdirSync(repo.paths.checkpoints, { recursive: true });
    await tracker.close(1);
    await tracker.updateLabels(2, { add: [Label.blocked] });

    const summary = iterate();
    expect(summary).toMatch(/cleaned=#1/);
    expect(summary).toMatch(/cleaned=#2/);
    expect(fs.readdirSync(repo.paths.worktrees)).toEqual([]);
    expect(checkpointFiles()).toEqual([]);
    expect(branches().sort()).toEqual(['loom/issue-1', 'main']);
    expect(git(repo.root, 'show', 'loom/issue-1:unsaved.txt')).toBe('precious');
    expect(git(repo.root, 'show', 'loom/issue-1:a.txt')).toBe('a');
  });
});
