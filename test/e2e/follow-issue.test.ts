// Loom follows what people do to an issue while it works on it: closing it, marking it
// `loom:blocked` or taking away `loom:building` stops its shepherd (agent ended, work kept on the
// branch, no PR, no merge, a comment), every merge re-reads the issue first, and the support
// roles leave alone a PR whose issue is closed or blocked.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Label } from '../../src/core/labels.js';
import type { Progress } from '../../src/core/progress.js';
import { isProcessAlive } from '../../src/process/process-identity.js';
import type { LocalTracker } from '../../src/tracker/local/local-tracker.js';
import type { RunResult, TestRepo } from '../helpers/loom-repo.js';
import { loom, loomAsync, makeRepo, processesIn, startDaemon, until } from '../helpers/loom-repo.js';

let repo: TestRepo | undefined;
afterEach(() => repo?.cleanup());

const fence = '```';
const git = (cwd: string, ...args: string[]) => spawnSync('git', args, { cwd, encoding: 'utf8' }).stdout.trim();
const script = (role: string, body: string) => `${fence}loom-script ${role}\n${body}\n${fence}`;

function progressOf(issue: number): Progress | null {
  try {
    return JSON.parse(fs.readFileSync(path.join(repo!.paths.progress, `shepherd-${issue}.json`), 'utf8')) as Progress;
  } catch {
    return null;
  }
}

/** Runs `loom <args>` in the background; `result()` is the result once it exited, else null. */
function background(args: string[]): { result(): RunResult | null } {
  let done: RunResult | null = null;
  void loomAsync(repo!.root, args).then((r) => (done = r));
  return { result: () => done };
}

/** The id of the newest event on `number`: what a human did last. */
async function lastEventId(tracker: LocalTracker, number: number): Promise<number> {
  return (await tracker.listEvents(number)).at(-1)?.id ?? 0;
}

const worktreeOf = (issue: number) => path.join(repo!.paths.worktrees, `issue-${issue}`);

/** A builder that writes part of its work, then takes a minute over the rest. */
const slowBuilder = script('builder', 'write half.txt <<EOF\nhalf done\nEOF\nsleep 60\nwrite rest.txt <<EOF\nrest\nEOF');

describe('a shepherd follows its issue', () => {
  const humanActions: [string, (t: LocalTracker) => Promise<unknown>, { state: string; labels: string[] }, RegExp][] = [
    ['closes it', (t) => t.close(1, "Won't do."), { state: 'closed', labels: [] }, /was closed/],
    ['marks it loom:blocked', (t) => t.updateLabels(1, { add: [Label.blocked] }), { state: 'open', labels: [Label.blocked] }, /was marked `loom:blocked`/],
    ['takes loom:building away', (t) => t.updateLabels(1, { remove: [Label.building] }), { state: 'open', labels: [] }, /`loom:building` was removed/],
  ];

  it.each(humanActions)('a human who %s mid-build stops the shepherd: agent ended, work kept on the branch, worktree removed, no PR, no merge, a comment, no label changed by Loom', async (_, act, expected, said) => {
    repo = makeRepo({ runtime: 'script', heartbeatInterval: '0.2s' });
    const tracker = repo.tracker();
    await tracker.createIssue({ title: 'slow change', labels: [Label.issue], body: slowBuilder });
    const shepherd = background(['shepherd', '1', '--force-merge']);
    await until(() => fs.existsSync(path.join(worktreeOf(1), 'half.txt')) && progressOf(1)?.agent_pid, 30_000, 'the builder at work');
    const agent = progressOf(1)!;
    await act(tracker);
    const acted = await lastEventId(tracker, 1);

    // The builder would take another minute; the shepherd stops long before.
    const r = await until(() => shepherd.result(), 15_000, 'the shepherd to stop');
    expect(r.code, r.stdout + r.stderr).toBe(9);
    expect(isProcessAlive(agent.agent_pid, agent.agent_pid_start)).toBe(false);
    expect(await tracker.listPullRequests({ state: 'all' })).toEqual([]);
    expect(git(repo.root, 'rev-list', '--count', 'main')).toBe('1');
    expect(git(repo.root, 'show', 'loom/issue-1:half.txt')).toBe('half done');
    expect(git(repo.root, 'log', '-1', '--format=%s', 'loom/issue-1')).toMatch(/^WIP #1: /);
    expect(fs.existsSync(worktreeOf(1))).toBe(false);

    const issue = (await tracker.getIssue(1))!;
    expect({ state: issue.state, labels: issue.labels }).toEqual(expected);
    const events = (await tracker.listEvents(1)).filter((e) => e.id > acted);
    expect(events).toEqual([]);
    const comment = (await tracker.listComments(1)).at(-1)!.body;
    expect(comment).toMatch(said);
    expect(comment).toMatch(/the builder phase/);
    expect(comment).toMatch(/branch `loom\/issue-1`/);
    expect(comment).toMatch(/No pull request was opened and nothing was merged/);
    expect(progressOf(1)).toMatchObject({ status: 'stopped', exit_code: 9 });
    await until(() => processesIn(repo!.root).length === 0, 10_000, 'no process left');
  });

  it('an issue closed while its approved PR waits for the merge lock is not merged: the merge re-reads the issue first', async () => {
    repo = makeRepo({ runtime: 'script', heartbeatInterval: '0.2s' });
    const tracker = repo.tracker();
    await tracker.createIssue({ title: 'quick change', labels: [Label.issue], body: script('builder', 'write quick.txt <<EOF\nquick\nEOF') });
    const mergeLock = path.join(repo.paths.dir, 'merge.lock');
    fs.writeFileSync(mergeLock, String(process.pid)); // another merge holds the lock
    const shepherd = background(['shepherd', '1', '--force-merge']);
    await until(() => progressOf(1)?.phase === 'merge', 30_000, 'the shepherd waiting to merge');
    await tracker.close(1, "Won't do after all.");
    fs.rmSync(mergeLock);

    const r = await until(() => shepherd.result(), 15_000, 'the shepherd to stop');
    expect(r.code, r.stdout + r.stderr).toBe(9);
    expect(git(repo.root, 'rev-list', '--count', 'main')).toBe('1');
    expect((await tracker.getPullRequest(2))!.state).toBe('open');
    const issue = (await tracker.getIssue(1))!;
    expect({ state: issue.state, labels: issue.labels }).toEqual({ state: 'closed', labels: [] });
    const comment = (await tracker.listComments(1)).at(-1)!.body;
    expect(comment).toMatch(/was closed/);
    expect(comment).toMatch(/PR #2 stays open; Loom will not review or merge it/);
    expect(fs.existsSync(worktreeOf(1))).toBe(false);
  });

  it('a PR marked loom:manual-merge while its shepherd judges is not merged, even with --force-merge: it is left approved for a human', async () => {
    repo = makeRepo({ runtime: 'script', heartbeatInterval: '0.2s' });
    const tracker = repo.tracker();
    await tracker.createIssue({ title: 'a human merges this', labels: [Label.issue], body: [script('builder', 'write m.txt <<EOF\nm\nEOF'), script('judge', 'sleep 3\nsay VERDICT: APPROVE')].join('\n\n') });
    const shepherd = background(['shepherd', '1', '--force-merge']);
    await until(async () => (await tracker.getPullRequest(2)) !== null && progressOf(1)?.phase === 'judge', 30_000, 'the judge at work on PR #2');
    await tracker.updateLabels(2, { add: [Label.manualMerge] });

    const r = await until(() => shepherd.result(), 30_000, 'the shepherd to end');
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(git(repo.root, 'rev-list', '--count', 'main')).toBe('1');
    const pr = (await tracker.getPullRequest(2))!;
    expect({ state: pr.state, labels: [...pr.labels].sort() }).toEqual({ state: 'open', labels: [Label.manualMerge, Label.pr].sort() });
    expect((await tracker.listComments(1)).at(-1)!.body).toMatch(/PR #2 is approved \(`loom:pr`\) and marked `loom:manual-merge`: a human merges it/);
    const champion = loom(repo.root, ['role', 'champion']);
    expect(champion.code, champion.stdout + champion.stderr).toBe(0);
    expect((await tracker.getPullRequest(2))!.state).toBe('open');
    expect(git(repo.root, 'rev-list', '--count', 'main')).toBe('1');
  });

  it('the daemon frees the slot of a shepherd whose issue was closed at once: its agent ends, its worktree goes, the next issue starts', async () => {
    repo = makeRepo({
      runtime: 'script',
      maxShepherds: 1,
      pollInterval: '1s',
      heartbeatInterval: '0.2s',
      roles: { architect: { enabled: false }, hermit: { enabled: false }, guide: { enabled: false }, curator: { enabled: false } },
    });
    const tracker = repo.tracker();
    await tracker.createIssue({ title: 'slow change', labels: [Label.issue], body: slowBuilder });
    await tracker.createIssue({ title: 'next in line', labels: [Label.issue], body: script('builder', 'write next.txt <<EOF\nnext\nEOF') });
    const daemon = startDaemon(repo.root);
    await until(() => fs.existsSync(path.join(worktreeOf(1), 'half.txt')) && progressOf(1)?.agent_pid, 30_000, `the builder of #1 at work; output:\n${daemon.output()}`);
    const agent = progressOf(1)!;
    await tracker.close(1, "Won't do.");

    // Only one slot: #2 starts once #1's shepherd has stopped, long before #1's builder would end.
    await until(async () => !(await tracker.getIssue(2))!.labels.includes(Label.issue), 20_000, `#2 to be claimed; output:\n${daemon.output()}`);
    expect(isProcessAlive(agent.agent_pid, agent.agent_pid_start)).toBe(false);
    expect(fs.existsSync(worktreeOf(1))).toBe(false);
    expect(git(repo.root, 'show', 'loom/issue-1:half.txt')).toBe('half done');
    // One iteration records the stopped shepherd and gives its slot to #2.
    await until(() => /stopped=#1 .*\+shepherd=#2/.test(daemon.output()), 10_000, `the iteration that freed the slot; output:\n${daemon.output()}`);
    loom(repo.root, ['stop']);
    expect(await daemon.exited(60_000)).toBe(0);
    // Nothing of #1 reached main (#2 may have been merged by the Champion before the stop).
    expect(spawnSync('git', ['cat-file', '-e', 'main:half.txt'], { cwd: repo.root }).status).not.toBe(0);
    expect(git(repo.root, 'log', '--format=%s', 'main')).not.toMatch(/#1\b/);
  });
});

describe('support roles leave alone a PR whose issue is closed or blocked', () => {
  it('after a shepherd judge agent is killed and the issue blocked, the support Judge, Doctor and Champion do not touch its PR', async () => {
    const flag = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'loom-judge-')), 'killed-once');
    repo = makeRepo({ runtime: 'script' });
    const tracker = repo.tracker();
    await tracker.createIssue({
      title: 'judged by a dying judge',
      labels: [Label.issue],
      body: [script('builder', 'write b.txt <<EOF\nb\nEOF'), script('judge', `run test -f ${flag} || (touch ${flag} && kill -9 $PPID)\nsay VERDICT: APPROVE`)].join('\n\n'),
    });
    const shepherd = loom(repo.root, ['shepherd', '1', '--force-merge']);
    expect(shepherd.code, shepherd.stdout + shepherd.stderr).toBe(5);
    expect(fs.existsSync(flag)).toBe(true);
    expect((await tracker.getIssue(1))!.labels).toEqual([Label.blocked]);
    expect((await tracker.getPullRequest(2))!.labels).toEqual([Label.reviewRequested]);
    expect(fs.existsSync(worktreeOf(1))).toBe(false);

    const judge = loom(repo.root, ['role', 'judge']);
    expect(judge.code, judge.stdout + judge.stderr).toBe(0);
    expect(judge.stdout).toMatch(/skipped #2 \(issue #1 is `loom:blocked`\)/);
    expect(fs.existsSync(worktreeOf(1))).toBe(false);
    expect((await tracker.getPullRequest(2))!.labels).toEqual([Label.reviewRequested]);
    expect((await tracker.listComments(2)).filter((c) => c.body.startsWith('**Loom Judge'))).toEqual([]);

    await tracker.updateLabels(2, { add: [Label.changesRequested] });
    const doctor = loom(repo.root, ['role', 'doctor']);
    expect(doctor.code, doctor.stdout + doctor.stderr).toBe(0);
    expect(doctor.stdout).toMatch(/skipped #2 \(issue #1 is `loom:blocked`\)/);
    expect(fs.existsSync(worktreeOf(1))).toBe(false);
    expect((await tracker.getPullRequest(2))!.labels).toEqual([Label.changesRequested]);

    await tracker.updateLabels(2, { add: [Label.pr] });
    const champion = loom(repo.root, ['role', 'champion']);
    expect(champion.code, champion.stdout + champion.stderr).toBe(0);
    expect(champion.stdout).toMatch(/skipped #2 \(issue #1 is `loom:blocked`\)/);
    expect((await tracker.getPullRequest(2))!.state).toBe('open');
    expect(git(repo.root, 'rev-list', '--count', 'main')).toBe('1');
  });

  it('the Champion merges no PR whose issue is closed or blocked, and merges it once the issue is unblocked', async () => {
    repo = makeRepo({ runtime: 'script' });
    const tracker = repo.tracker();
    await tracker.createIssue({ title: 'one', labels: [Label.issue], body: script('builder', 'write one.txt <<EOF\none\nEOF') });
    await tracker.createIssue({ title: 'two', labels: [Label.issue], body: script('builder', 'write two.txt <<EOF\ntwo\nEOF') });
    expect(loom(repo.root, ['shepherd', '1']).code).toBe(0);
    expect(loom(repo.root, ['shepherd', '2']).code).toBe(0);
    expect((await tracker.listPullRequests()).map((p) => [p.number, p.closesIssue, p.labels])).toEqual([
      [3, 1, [Label.pr]],
      [4, 2, [Label.pr]],
    ]);
    await tracker.updateLabels(1, { add: [Label.blocked] });
    await tracker.close(2, "Won't do.");

    const champion = loom(repo.root, ['role', 'champion']);
    expect(champion.code, champion.stdout + champion.stderr).toBe(0);
    expect(champion.stdout).toMatch(/merged nothing; skipped #3 \(issue #1 is `loom:blocked`\), #4 \(issue #2 is closed\)/);
    expect((await tracker.listPullRequests()).map((p) => p.state)).toEqual(['open', 'open']);
    expect(git(repo.root, 'rev-list', '--count', 'main')).toBe('1');

    await tracker.updateLabels(1, { remove: [Label.blocked] });
    const again = loom(repo.root, ['role', 'champion']);
    expect(again.stdout, again.stdout + again.stderr).toMatch(/merged #3; skipped #4 \(issue #2 is closed\)/);
    expect((await tracker.getPullRequest(3))!.state).toBe('merged');
    expect((await tracker.getPullRequest(4))!.state).toBe('open');
  });

  it('a support Doctor at work stops when the issue gets blocked: agent ended, work kept as WIP, the PR untouched', async () => {
    repo = makeRepo({ runtime: 'script', heartbeatInterval: '0.2s' });
    const tracker = repo.tracker();
    await tracker.createIssue({
      title: 'needs a fix',
      labels: [Label.issue],
      body: [script('builder', 'write a.txt <<EOF\na\nEOF'), script('doctor', 'write fix.txt <<EOF\nfix\nEOF\nsleep 60')].join('\n\n'),
    });
    expect(loom(repo.root, ['shepherd', '1']).code).toBe(0);
    await tracker.updateLabels(2, { add: [Label.changesRequested] }); // a maintainer sends the approved PR back
    await tracker.comment(2, '**Loom** — please add a fix.');
    const doctor = background(['role', 'doctor']);
    const roleFile = path.join(repo.paths.progress, 'role-doctor.json');
    await until(() => fs.existsSync(path.join(worktreeOf(1), 'fix.txt')) && fs.existsSync(roleFile) && (JSON.parse(fs.readFileSync(roleFile, 'utf8')) as Progress).agent_pid, 30_000, 'the doctor at work');
    const agent = JSON.parse(fs.readFileSync(roleFile, 'utf8')) as Progress;
    await tracker.updateLabels(1, { add: [Label.blocked] });

    const r = await until(() => doctor.result(), 15_000, 'the doctor to stop');
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/stopped #2 \(issue #1 is `loom:blocked`\)/);
    expect(isProcessAlive(agent.agent_pid, agent.agent_pid_start)).toBe(false);
    expect((await tracker.getPullRequest(2))!.labels).toEqual([Label.changesRequested]);
    expect((await tracker.listComments(2)).filter((c) => c.body.startsWith('**Loom Doctor'))).toEqual([]);
    expect(git(repo.root, 'show', 'loom/issue-1:fix.txt')).toBe('fix');
    expect(fs.existsSync(worktreeOf(1))).toBe(false);
    expect((await tracker.getIssue(1))!.labels).toEqual([Label.blocked]);
  });
});
