// At most one agent ever works in an issue's worktree. A process takes the issue's lease
// (`.loom/worktrees/issue-N.lock`) before it works there and records the agent group it starts
// (`issue-N.agent`); the next one ends an agent a dead starter left running. Support roles leave
// alone a PR whose issue a shepherd has or will resume; a shepherd waits for a support role to
// leave the worktree.
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Label } from '../../src/core/labels.js';
import type { Progress } from '../../src/core/progress.js';
import { processStart } from '../../src/process/process-identity.js';
import { CheckpointStore } from '../../src/state/checkpoint-store.js';
import type { RunResult, TestRepo } from '../helpers/loom-repo.js';
import { loom, loomAsync, makeRepo, startDaemon, until } from '../helpers/loom-repo.js';
import { groupHasLiveMembers } from '../runtimes/process-group.js';
import { killGroups } from '../helpers/child-process.js';

let repo: TestRepo | undefined;
const groups: number[] = [];
const dirs: string[] = [];
afterEach(() => {
  killGroups(groups);
  repo?.cleanup();
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

const fence = '```';
const script = (role: string, body: string) => `${fence}loom-script ${role}\n${body}\n${fence}`;
const git = (cwd: string, ...args: string[]) => spawnSync('git', args, { cwd, encoding: 'utf8' }).stdout.trim();
const ONLY_BUILDER = Object.fromEntries(['architect', 'hermit', 'guide', 'curator', 'champion', 'judge', 'doctor'].map((r) => [r, { enabled: false }]));
const worktreeOf = (issue: number) => path.join(repo!.paths.worktrees, `issue-${issue}`);

function scratch(): string {
  const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'loom-lease-')));
  dirs.push(dir);
  return dir;
}

/** Runs `loom <args>` in the background; `result()` is the result once it exited, else null. */
function background(args: string[]): { result(): RunResult | null } {
  let done: RunResult | null = null;
  void loomAsync(repo!.root, args).then((r) => (done = r));
  return { result: () => done };
}

/** A process group as a killed shepherd's agent leaves it: its leader gone, a child still running. */
async function leftoverAgentGroup(cwd: string): Promise<{ pid: number; start: string }> {
  const child: ChildProcess = spawn('sh', ['-c', 'sleep 600 & echo started; wait'], { cwd, detached: true, stdio: ['ignore', 'pipe', 'ignore'] });
  groups.push(child.pid!);
  await new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()));
  const start = processStart(child.pid!)!;
  child.kill('SIGKILL');
  await until(() => child.exitCode !== null || child.signalCode !== null, 5_000, 'the leader to die');
  expect(groupHasLiveMembers(child.pid!)).toBe(true);
  return { pid: child.pid!, start };
}

/** A pid and start identity of a process that has exited: the holder of a lease when it was killed. */
async function deadProcess(): Promise<string> {
  const child = spawn('sleep', ['600'], { stdio: 'ignore' });
  await until(() => processStart(child.pid!) !== null, 5_000, 'the process to start');
  const start = processStart(child.pid!)!;
  child.kill('SIGKILL');
  await until(() => child.signalCode !== null, 5_000, 'the process to die');
  return `${child.pid!} ${start}`;
}

/** A builder that notes whether process group `pgid` still had a live member when it started, then commits a file. */
function noticingBuilder(pgid: number, note: string): string {
  return script('builder', `run if kill -0 -- -${pgid} 2>/dev/null; then echo alive > ${note}; else echo gone > ${note}; fi\nwrite b.txt <<EOF\nb\nEOF`);
}

describe('an agent group whose starter died', () => {
  it('is ended (a leader already gone too) before the next shepherd of the issue starts an agent, with a log line', async () => {
    repo = makeRepo({ runtime: 'script', roles: ONLY_BUILDER });
    const tracker = repo.tracker();
    const note = path.join(scratch(), 'seen');
    const old = await leftoverAgentGroup(scratch());
    await tracker.createIssue({ title: 'again', labels: [Label.issue], body: noticingBuilder(old.pid, note) });
    fs.mkdirSync(repo.paths.worktrees, { recursive: true });
    fs.writeFileSync(path.join(repo.paths.worktrees, 'issue-1.lock'), await deadProcess());
    fs.writeFileSync(path.join(repo.paths.worktrees, 'issue-1.agent'), `${old.pid} ${old.start}`);

    const r = loom(repo.root, ['shepherd', '1', '--force-merge']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(fs.readFileSync(note, 'utf8')).toBe('gone\n');
    expect(groupHasLiveMembers(old.pid)).toBe(false);
    expect(r.stdout).toMatch(new RegExp(`a leftover agent of #1: ended its process group \\(pid ${old.pid}\\)`));
    expect(fs.readdirSync(repo.paths.worktrees)).toEqual([]);
  });

  it('recorded only in the dead shepherd record a new claim replaces, is ended before the new builder starts', async () => {
    repo = makeRepo({ runtime: 'script', roles: ONLY_BUILDER });
    const tracker = repo.tracker();
    const note = path.join(scratch(), 'seen');
    const old = await leftoverAgentGroup(scratch());
    await tracker.createIssue({ title: 'again', labels: [Label.issue], body: noticingBuilder(old.pid, note) });
    const [pid, start] = (await deadProcess()).split(' ');
    const now = new Date().toISOString();
    const record: Progress = { kind: 'shepherd', task_id: 'dead-task', issue: 1, role: null, status: 'running', phase: 'builder', pid: Number(pid), pid_start: start ?? null, launcher_pid: null, agent_pid: old.pid, agent_pid_start: old.start, started: now, heartbeat: now, last_output: null, output_file: '(terminal)', message: null, exit_code: null, merged: false, pr_number: null };
    fs.mkdirSync(repo.paths.progress, { recursive: true });
    fs.writeFileSync(path.join(repo.paths.progress, 'shepherd-1.json'), JSON.stringify(record));

    const r = loom(repo.root, ['shepherd', '1', '--force-merge']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(fs.readFileSync(note, 'utf8')).toBe('gone\n');
    expect(groupHasLiveMembers(old.pid)).toBe(false);
  });

  it('does not outlive the daemon: one recorded by a dead starter is ended by `loom stop` at the latest', async () => {
    repo = makeRepo({ runtime: 'script', roles: ONLY_BUILDER, pollInterval: '30s' });
    const old = await leftoverAgentGroup(scratch());
    const daemon = startDaemon(repo.root);
    await until(() => /Iteration 1:/.test(daemon.output()), 30_000, 'the first iteration');
    fs.mkdirSync(repo.paths.worktrees, { recursive: true });
    fs.writeFileSync(path.join(repo.paths.worktrees, 'issue-7.lock'), await deadProcess());
    fs.writeFileSync(path.join(repo.paths.worktrees, 'issue-7.agent'), `${old.pid} ${old.start}`);
    expect(loom(repo.root, ['stop']).code).toBe(0);
    expect(await daemon.exited(30_000)).toBe(0);
    expect(groupHasLiveMembers(old.pid)).toBe(false);
    expect(daemon.output()).toMatch(new RegExp(`a leftover agent of #7: ended its process group \\(pid ${old.pid}\\)`));
    expect(fs.readdirSync(repo.paths.worktrees)).toEqual([]);
  });

  it('is never signalled when its start identity does not match (the pid may be someone else’s now)', async () => {
    repo = makeRepo({ runtime: 'script', roles: ONLY_BUILDER });
    const tracker = repo.tracker();
    const note = path.join(scratch(), 'seen');
    const stranger = spawn('sleep', ['600'], { detached: true, stdio: 'ignore' });
    groups.push(stranger.pid!);
    await until(() => processStart(stranger.pid!) !== null, 5_000, 'the process to start');
    await tracker.createIssue({ title: 'again', labels: [Label.issue], body: noticingBuilder(stranger.pid!, note) });
    fs.mkdirSync(repo.paths.worktrees, { recursive: true });
    fs.writeFileSync(path.join(repo.paths.worktrees, 'issue-1.lock'), await deadProcess());
    fs.writeFileSync(path.join(repo.paths.worktrees, 'issue-1.agent'), `${stranger.pid!} 1`);
    const r = loom(repo.root, ['shepherd', '1', '--force-merge']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`pid ${stranger.pid!} is not provably Loom's any more`));
    expect(groupHasLiveMembers(stranger.pid!)).toBe(true);
  });
});

/** An issue built and approved by its shepherd, its PR left for the Champion: PR #2, issue #1. */
async function approvedPullRequest(body: string): Promise<ReturnType<TestRepo['tracker']>> {
  const tracker = repo!.tracker();
  await tracker.createIssue({ title: 'needs a fix', labels: [Label.issue], body });
  const built = loom(repo!.root, ['shepherd', '1']);
  expect(built.code, built.stdout + built.stderr).toBe(0);
  expect((await tracker.getPullRequest(2))!.labels).toEqual([Label.pr]);
  return tracker;
}

describe('support roles and a shepherd never work in one worktree', () => {
  it('the support Doctor and Judge leave alone the PR of an issue back in loom:issue with a checkpoint (its shepherd died mid doctor round; the next one resumes it)', async () => {
    repo = makeRepo({ runtime: 'script', roles: { ...ONLY_BUILDER, judge: {}, doctor: {} } });
    const tracker = await approvedPullRequest([script('builder', 'write a.txt <<EOF\na\nEOF'), script('doctor', 'write fix.txt <<EOF\nfix\nEOF'), script('judge', 'say VERDICT: APPROVE')].join('\n\n'));
    // What a shepherd killed in its doctor round leaves once the daemon returned the issue.
    new CheckpointStore(repo.paths.checkpoints).write({ issue: 1, branch: 'loom/issue-1', base: 'main', pr_number: 2, phase: 'judged', verdict: 'changes', review: '**Loom Judge — changes requested**', doctor_rounds: 0, tests_failed: false, updated_at: '' });
    await tracker.updateLabels(1, { add: [Label.issue] });
    await tracker.updateLabels(2, { add: [Label.changesRequested] });
    const tip = git(repo.root, 'rev-parse', 'loom/issue-1');
    const comments = await tracker.listComments(2);

    const doctor = loom(repo.root, ['role', 'doctor']);
    expect(doctor.code, doctor.stdout + doctor.stderr).toBe(0);
    expect(doctor.stdout).toMatch(/skipped #2 \(issue #1 has an unfinished shepherd run \(a checkpoint\) that its next shepherd resumes\)/);
    expect(git(repo.root, 'rev-parse', 'loom/issue-1')).toBe(tip);
    expect(fs.existsSync(worktreeOf(1))).toBe(false);

    await tracker.updateLabels(2, { add: [Label.reviewRequested] });
    const judge = loom(repo.root, ['role', 'judge']);
    expect(judge.code, judge.stdout + judge.stderr).toBe(0);
    expect(judge.stdout).toMatch(/skipped #2 \(issue #1 has an unfinished shepherd run/);
    expect(await tracker.listComments(2)).toEqual(comments);

    // The shepherd resumes the doctor round itself.
    await tracker.updateLabels(2, { add: [Label.changesRequested] });
    const resumed = loom(repo.root, ['shepherd', '1']);
    expect(resumed.code, resumed.stdout + resumed.stderr).toBe(0);
    expect(git(repo.root, 'show', 'loom/issue-1:fix.txt')).toBe('fix');
  });

  it('a shepherd claiming an issue whose worktree a support Doctor works in waits for it to stop; the two agents never overlap', async () => {
    repo = makeRepo({ runtime: 'script', heartbeatInterval: '0.2s', roles: { ...ONLY_BUILDER, doctor: {} } });
    const shared = scratch();
    const journal = path.join(shared, 'journal');
    // Each agent takes a lock for as long as it runs; one that finds it taken notes an overlap.
    const hold = (who: string, then: string) => `run exec 9>${shared}/lock; flock -n 9 || echo overlap-${who} >> ${journal}; echo start-${who} >> ${journal}; ${then}`;
    const tracker = await approvedPullRequest([script('builder', `${hold('builder', 'true')}\nwrite a.txt <<EOF\na\nEOF`), script('doctor', hold('doctor', 'sleep 60')), script('judge', 'say VERDICT: APPROVE')].join('\n\n'));
    fs.rmSync(journal, { force: true });
    await tracker.updateLabels(2, { add: [Label.changesRequested] });
    const doctor = background(['role', 'doctor']);
    await until(() => fs.existsSync(journal) && fs.readFileSync(journal, 'utf8').includes('start-doctor'), 30_000, 'the doctor at work');
    const doctorPid = Number(fs.readFileSync(path.join(repo.paths.worktrees, 'issue-1.lock'), 'utf8').split(' ')[0]);

    // A maintainer sends the issue back to be built: a shepherd claims it.
    await tracker.updateLabels(1, { add: [Label.issue] });
    const shepherd = background(['shepherd', '1']);
    const s = await until(() => shepherd.result(), 60_000, 'the shepherd to finish');
    expect(s.code, s.stdout + s.stderr).toBe(0);
    expect(s.stdout).toMatch(new RegExp(`waiting for process ${doctorPid}, which works in the worktree of #1, to finish`));
    const d = await until(() => doctor.result(), 15_000, 'the doctor to stop');
    // Which it saw first, the claim's label or the shepherd's record, depends on timing.
    expect(d.stdout).toMatch(/stopped #2 \(a shepherd (owns|is working on) issue #1/);
    const lines = fs.readFileSync(journal, 'utf8').trim().split('\n');
    expect(lines).toEqual(['start-doctor', 'start-builder']);
  });

  it('a support role skips a PR whose worktree another live Loom process holds', async () => {
    repo = makeRepo({ runtime: 'script', roles: { ...ONLY_BUILDER, doctor: {} } });
    const tracker = await approvedPullRequest([script('builder', 'write a.txt <<EOF\na\nEOF'), script('doctor', 'write fix.txt <<EOF\nfix\nEOF')].join('\n\n'));
    await tracker.updateLabels(2, { add: [Label.changesRequested] });
    const holder = spawn('sleep', ['600'], { detached: true, stdio: 'ignore' });
    groups.push(holder.pid!);
    await until(() => processStart(holder.pid!) !== null, 5_000, 'the holder to start');
    fs.writeFileSync(path.join(repo.paths.worktrees, 'issue-1.lock'), `${holder.pid!} ${processStart(holder.pid!)!}`);
    const tip = git(repo.root, 'rev-parse', 'loom/issue-1');
    const doctor = loom(repo.root, ['role', 'doctor']);
    expect(doctor.code, doctor.stdout + doctor.stderr).toBe(0);
    expect(doctor.stdout).toMatch(/skipped #2 \(another Loom process works in the worktree of #1\)/);
    expect(git(repo.root, 'rev-parse', 'loom/issue-1')).toBe(tip);
  });
});
