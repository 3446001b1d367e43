// The daemon as the coordinator of workers fed by a Redis queue (BullMQ), end to end: a bare
// origin, the GitHub fake merging into it, a real redis-server per test, three `loom worker`s in
// three clones, script agents.
import Database from 'better-sqlite3';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ShepherdQueue } from '../../src/queue/shepherd-queue.js';
import { logFileFor } from '../../src/process/launcher.js';
import { loomAsync, startDaemon, until } from '../helpers/loom-repo.js';
import { Fleet, git, writes } from './fleet.js';

const fence = '```';

let fleet: Fleet | undefined;
afterEach(async () => {
  await fleet?.close();
  fleet = undefined;
});

/** `until`, with every process's output added to a timeout. */
async function waitFor(f: Fleet, condition: () => Promise<boolean> | boolean, timeoutMs: number, what: string): Promise<void> {
  try {
    await until(condition, timeoutMs, what);
  } catch (error) {
    throw new Error(`${(error as Error).message}\n${f.outputs()}`);
  }
}

/** Issues whose state is closed. */
async function closedCount(f: Fleet, numbers: number[]): Promise<number> {
  let closed = 0;
  for (const n of numbers) if ((await f.owner.getIssue(n))?.state === 'closed') closed += 1;
  return closed;
}

/** Every issue merged exactly once: one merged PR each, one merge on main each, every file there. */
async function expectMergedOnce(f: Fleet, numbers: number[], files: string[]): Promise<void> {
  const prs = await f.owner.listPullRequests({ state: 'all' });
  for (const n of numbers) {
    const mine = prs.filter((p) => p.closesIssue === n);
    expect(mine.map((p) => p.state), `PRs of #${n}`).toEqual(['merged']);
  }
  const merges = git(f.bare, 'log', '--first-parent', '--format=%s', 'main').split('\n').filter((s) => /^Merge/.test(s));
  expect(merges).toHaveLength(numbers.length);
  for (const file of files) expect(git(f.bare, 'show', `main:${file}`)).toBe(file);
}

describe('a fleet of workers fed by a Redis queue', () => {
  it('three workers in three clones merge 20 issues, each exactly once; status and the dashboard list the workers', async () => {
    fleet = await Fleet.create();
    const f = fleet;
    const numbers = await f.createIssues(20, (i) => writes(`f${i}.txt`));
    for (const name of ['w1', 'w2', 'w3']) f.startWorker(name, 2);
    const daemon = f.startDaemon(['--dashboard']);
    await waitFor(f, async () => (await closedCount(f, numbers)) === numbers.length, 150_000, 'all 20 issues merged');
    await expectMergedOnce(f, numbers, numbers.map((_, i) => `f${i + 1}.txt`));
    // An issue is closed before its shepherd ends (it takes its checkpoint off origin last): every
    // job is reported completed by its worker before the checks on origin below.
    const completed = () => new Set(f.workers.flatMap((w) => [...w.output().matchAll(/job issue-(\d+)-attempt-\d+: #\d+ completed/g)].map((m) => Number(m[1]))));
    await waitFor(f, () => completed().size === numbers.length, 60_000, 'every job reported completed by its worker');
    // Every worker took part, and each ran its shepherds in its own clone.
    for (const w of f.workers) expect(w.output(), w.name).toMatch(/job issue-\d+-attempt-1: #\d+ completed/);
    const status = await loomAsync(f.root, ['status', '--json'], f.env);
    const report = JSON.parse(status.stdout) as { queue: { available: boolean; workers: { name: string; host: string; jobs: number[]; last_seen: string }[] } };
    expect(report.queue.available).toBe(true);
    expect(report.queue.workers).toHaveLength(3);
    const text = await loomAsync(f.root, ['status'], f.env);
    expect(text.stdout).toMatch(/Workers \(3\)/);
    // The dashboard beside the daemon serves the same workers (its board's workers panel reads them).
    const url = /Dashboard: (http:\/\/127\.0\.0\.1:\d+\/)/.exec(daemon.output())?.[1];
    expect(url, daemon.output()).toBeDefined();
    const served = (await (await fetch(`${url}api/v1/state`)).json()) as typeof report;
    expect(served.queue.workers.map((w) => w.name).sort()).toEqual(report.queue.workers.map((w) => w.name).sort());
    const board = (await (await fetch(`${url}api/v1/board`)).json()) as { status: typeof report };
    expect(board.status.queue.workers).toHaveLength(3);
    await loomAsync(f.root, ['stop']);
    expect(await daemon.exited(60_000)).toBe(0);
    // The checkpoints on origin went with their issues.
    expect(git(f.bare, 'for-each-ref', 'refs/loom/')).toBe('');
  }, 240_000);

  it("without force mode a worker leaves the approved PR to the daemon's Champion and removes the agent home its clone kept for the issue (and the run logs and agent homes of its clone past logRetention); the Champion merges it", async () => {
    const off = { enabled: false };
    fleet = await Fleet.create({ roles: { architect: off, hermit: off, guide: off, curator: off, champion: { interval: '1s' } } });
    const f = fleet;
    // The builder leaves a session in its home, as an agent CLI does.
    const [issue] = await f.createIssues(1, () => `${fence}loom-script builder\nrun mkdir -p "$LOOM_STATE_DIR/cli" && echo builder > "$LOOM_STATE_DIR/cli/session.jsonl"\nwrite f1.txt <<EOF\nf1.txt\nEOF\n${fence}`);
    // The clone holds the log of a run 40 days ago: the worker removes it (logRetention, 30 days), as the daemon does its own.
    const clone = path.join(f.base, 'w1');
    git(f.base, 'clone', '-q', f.bare, clone);
    const started = new Date(Date.now() - 40 * 86_400_000);
    const oldLog = logFileFor(path.join(clone, '.loom', 'logs'), 'shepherd', 'issue-99', started);
    fs.mkdirSync(path.dirname(oldLog), { recursive: true });
    fs.writeFileSync(oldLog, 'a run of long ago\n');
    fs.utimesSync(oldLog, started, started);
    // Agent homes of two issues this clone worked on before (jobs handed over, say): one no run used for 40 days, one used yesterday.
    const home = (n: number, daysAgo: number) => {
      const dir = path.join(clone, '.loom', 'agent-homes', `issue-${n}`);
      fs.mkdirSync(path.join(dir, 'claude'), { recursive: true });
      const at = new Date(Date.now() - daysAgo * 86_400_000);
      fs.utimesSync(dir, at, at);
      return dir;
    };
    const [idle, recent] = [home(98, 40), home(97, 1)];
    // Usage its shepherds recorded before: no iteration runs in a clone, the worker indexes it in the same look.
    const usageLine = (n: number) => `${JSON.stringify({ at: new Date().toISOString(), issue: 97, role: 'builder', runtime: 'claude', model: null, session_id: 's', outcome: 'success', input_tokens: 10, output_tokens: 1, cached_input_tokens: 0, cost_usd: n, priced: false })}\n`;
    fs.writeFileSync(path.join(clone, '.loom', 'usage.jsonl'), usageLine(1) + usageLine(2));
    const w = f.startWorker('w1', 1);
    const daemon = f.startDaemon([], false);
    await waitFor(f, () => /removed 1 run log older than 30d \(logRetention\)/.test(w.output()), 30_000, "the worker's removal of the old run log");
    expect(fs.existsSync(oldLog)).toBe(false);
    await waitFor(f, () => /removed the agent home of #98 \(unused for 40d\)/.test(w.output()), 30_000, "the worker's removal of the idle agent home");
    expect([fs.existsSync(idle), fs.existsSync(recent)]).toEqual([false, true]);
    // The file appears before the worker's transaction commits: wait for the sums themselves.
    const index = path.join(clone, '.loom', 'usage-index.db');
    await waitFor(f, () => readIndexedIssue(index, 97) !== null, 30_000, "the worker's usage index of its clone");
    expect(readIndexedIssue(index, 97)).toEqual({ runs: 2, cost_usd: 3 });
    await waitFor(f, () => new RegExp(`#${issue} completed`).test(w.output()), 90_000, 'the job completed on the worker');
    expect(w.output()).toMatch(/approved/);
    // The worker logs the removal right after the job's end; the two lines may reach this process in two reads.
    await waitFor(f, () => new RegExp(`removed the agent home of #${issue} \\(its job is done\\)`).test(w.output()), 30_000, "the worker's removal of the agent home");
    expect(fs.existsSync(path.join(w.dir, '.loom', 'agent-homes', `issue-${issue!}`))).toBe(false);
    await waitFor(f, async () => (await closedCount(f, [issue!])) === 1, 90_000, "the Champion's merge");
    await expectMergedOnce(f, [issue!], ['f1.txt']);
    await loomAsync(f.root, ['stop']);
    expect(await daemon.exited(60_000)).toBe(0);
  }, 240_000);

  it('a worker killed with SIGKILL mid-job: its shepherd stops too, another worker resumes the job from the checkpoint on origin; merged once', async () => {
    fleet = await Fleet.create();
    const f = fleet;
    // The builder finishes at once; the judge takes long enough to kill its worker in the middle.
    const [issue] = await f.createIssues(1, () => `${writes('f1.txt')}\n\n${fence}loom-script judge\nsleep 6\nsay VERDICT: APPROVE\n${fence}`);
    const first = f.startWorker('w1', 1);
    f.startDaemon();
    // The judge runs on w1 once the PR's checkpoint is on origin.
    await waitFor(f, () => remotePhase(f, issue as number) === 'pr-opened', 60_000, 'the pr-opened checkpoint pushed by w1');
    expect(first.output()).toMatch(new RegExp(`shepherd #${issue} started`));
    const record = JSON.parse(fs.readFileSync(path.join(first.dir, '.loom', 'progress', `shepherd-${issue}.json`), 'utf8')) as { pid: number };
    const second = f.startWorker('w2', 1);
    // Only the worker process: its shepherd notices (its pipe from the worker closes) and stops.
    process.kill(first.child.pid as number, 'SIGKILL');
    await first.exited;
    await waitFor(f, () => !alive(record.pid), 20_000, 'the dead worker\'s shepherd gone');
    const last = JSON.parse(fs.readFileSync(path.join(first.dir, '.loom', 'progress', `shepherd-${issue}.json`), 'utf8')) as { status: string; message: string };
    expect(last).toMatchObject({ status: 'stopped', message: 'handed over: its worker stopped' });
    await waitFor(f, () => new RegExp(`job issue-${issue}-attempt-1: #${issue} completed`).test(second.output()), 90_000, 'the job completed by w2');
    expect((await f.owner.getIssue(issue as number))?.state).toBe('closed');
    // w2 resumed after the pushed phase: its shepherd did not build again.
    const log = shepherdLogs(second.dir, issue as number);
    expect(log).toMatch(/resuming after pr-opened/);
    expect(log).not.toMatch(/builder started/);
    await expectMergedOnce(f, [issue as number], ['f1.txt']);
    // loom status: the dead worker is shown as gone (not as running the job w2 finished) until forgotten.
    const dead = `:${first.child.pid as number} on `;
    let status = '';
    await waitFor(f, async () => (status = (await loomAsync(f.root, ['status'], f.env)).stdout).includes('not seen lately'), 30_000, 'status to show the killed worker as gone');
    expect(status).toMatch(/Workers \(2, 1 of them not seen lately\):/);
    const line = status.split('\n').find((l) => l.includes(dead)) ?? '';
    expect(line, status).toMatch(/: not seen for \d+(\.\d+)?s, longer than its job lock: stopped or cut off; what it ran goes to other workers \(listed until 1h without a report\)$/);
    expect(line).not.toContain(`#${issue}`);
  }, 200_000);

  it('Redis restarted mid-run (its data gone): dispatch pauses and says since when, workers keep their jobs, the run completes', async () => {
    fleet = await Fleet.create();
    const f = fleet;
    const numbers = await f.createIssues(4, (i) => `${writes(`f${i}.txt`)}\n\n${fence}loom-script judge\nsleep 4\nsay VERDICT: APPROVE\n${fence}`);
    const workers = [f.startWorker('w1', 2), f.startWorker('w2', 2)];
    const daemon = f.startDaemon();
    await waitFor(f, () => workers.some((w) => /shepherd #\d+ started/.test(w.output())), 60_000, 'a job running');
    await f.redis.down();
    await waitFor(f, () => /queue-unavailable since=/.test(daemon.output()), 30_000, 'the daemon noticing');
    const status = JSON.parse((await loomAsync(f.root, ['status', '--json'], f.env)).stdout) as { queue: { available: boolean; paused_since: string | null } };
    expect(status.queue.available).toBe(false);
    expect(Date.parse(status.queue.paused_since ?? '')).toBeGreaterThan(0);
    expect((await loomAsync(f.root, ['status'], f.env)).stdout).toMatch(/Redis unavailable since .*: dispatch paused/);
    await f.redis.up();
    await waitFor(f, async () => (await closedCount(f, numbers)) === numbers.length, 120_000, 'all issues merged after the restart');
    await expectMergedOnce(f, numbers, numbers.map((_, i) => `f${i + 1}.txt`));
    expect(workers.map((w) => w.output()).join('\n')).toMatch(/is unavailable/);
    expect(workers.map((w) => w.output()).join('\n')).toMatch(/is available again/);
    await waitFor(f, () => /queue-back/.test(daemon.output()), 10_000, 'the daemon saying Redis is back');
  }, 240_000);

  it('SIGTERM drains a worker: its running job gets shutdownGrace, then is handed over (work pushed) to another worker', async () => {
    fleet = await Fleet.create({ shutdownGrace: '2s' });
    const f = fleet;
    const [issue] = await f.createIssues(1, () => `${writes('f1.txt')}\n\n${fence}loom-script judge\nsleep 8\nsay VERDICT: APPROVE\n${fence}`);
    const first = f.startWorker('w1', 1);
    f.startDaemon();
    await waitFor(f, () => remotePhase(f, issue as number) === 'pr-opened', 60_000, 'the judge running on w1');
    first.child.kill('SIGTERM');
    expect(await first.exited).toBe(0);
    expect(first.output()).toMatch(/draining \(asked to stop\)/);
    expect(first.output()).toMatch(new RegExp(`job issue-${issue}-attempt-1: #${issue} handed over`));
    // Nothing was returned to the tracker's queue: the issue stays claimed for the next worker.
    expect((await f.owner.getIssue(issue as number))?.labels).toContain('loom:building');
    const second = f.startWorker('w2', 1);
    await waitFor(f, () => new RegExp(`job issue-${issue}-attempt-1: #${issue} completed`).test(second.output()), 90_000, 'the job completed by w2');
    expect(shepherdLogs(second.dir, issue as number)).toMatch(/resuming after pr-opened/);
    await expectMergedOnce(f, [issue as number], ['f1.txt']);
  }, 200_000);

  it('loom stop drains the fleet: jobs go back to the paused queue with their work pushed; the next start resumes them', async () => {
    fleet = await Fleet.create({ shutdownGrace: '2s' });
    const f = fleet;
    const [issue] = await f.createIssues(1, () => `${writes('f1.txt')}\n\n${fence}loom-script judge\nsleep 15\nsay VERDICT: APPROVE\n${fence}`);
    const worker = f.startWorker('w1', 1);
    // The judge sleeps long enough for the daemon to notice the stop and the worker its grace.
    const daemon = f.startDaemon();
    await waitFor(f, () => remotePhase(f, issue as number) === 'pr-opened', 60_000, 'the judge running on w1');
    expect((await loomAsync(f.root, ['stop'])).code).toBe(0);
    expect(await daemon.exited(60_000)).toBe(0);
    await waitFor(f, () => new RegExp(`#${issue} handed over`).test(worker.output()), 30_000, 'the job handed over');
    expect(worker.output()).toMatch(/draining \(the daemon asked the fleet to drain/);
    expect(worker.child.exitCode).toBeNull(); // the worker stays up
    expect((await f.owner.getIssue(issue as number))?.state).toBe('open');
    const again = f.startDaemon();
    await waitFor(f, () => new RegExp(`job issue-${issue}-attempt-1: #${issue} completed`).test(worker.output()), 90_000, 'the job completed after the restart');
    expect(worker.output()).toMatch(/the fleet drain is over/);
    expect(shepherdLogs(worker.dir, issue as number)).toMatch(/resuming after pr-opened/);
    await expectMergedOnce(f, [issue as number], ['f1.txt']);
    await loomAsync(f.root, ['stop']);
    expect(await again.exited(60_000)).toBe(0);
  }, 200_000);

  it('a second daemon on the same queue (another clone) dispatches nothing and says who coordinates it; the first runs the fleet; every issue merged once', async () => {
    fleet = await Fleet.create();
    const f = fleet;
    const numbers = await f.createIssues(3, (i) => writes(`f${i}.txt`));
    const daemon = f.startDaemon();
    await waitFor(f, () => /queue|ready=/.test(daemon.output()), 30_000, 'the first daemon’s first iteration');
    await waitFor(f, () => fs.existsSync(path.join(f.root, '.loom', 'queue-status.json')), 30_000, 'the first daemon to take the queue');
    const otherRoot = path.join(f.base, 'daemon-2');
    git(f.base, 'clone', '-q', f.bare, otherRoot);
    const other = startDaemon(otherRoot, ['start', '--force'], f.env);
    try {
      await waitFor(f, async () => /another Loom daemon coordinates this queue/.test((await loomAsync(otherRoot, ['status'], f.env)).stdout), 60_000, `the second daemon to see the first:\n${other.output()}`);
      const status = (await loomAsync(otherRoot, ['status'], f.env)).stdout;
      expect(status).toContain(`another Loom daemon coordinates this queue: ${f.root} on `);
      f.startWorker('w1', 2);
      await waitFor(f, async () => (await closedCount(f, numbers)) === numbers.length, 120_000, 'all 3 issues merged');
      await expectMergedOnce(f, numbers, numbers.map((_, i) => `f${i + 1}.txt`));
      expect(other.output()).not.toMatch(/spawn|enqueued|started shepherd/i);
      expect(other.output()).toMatch(/queue-coordinated-by=/);
    } finally {
      await loomAsync(otherRoot, ['stop'], f.env);
      await other.exited(60_000).catch(() => other.child.kill('SIGKILL'));
    }
  }, 240_000);

  it('one worker with --concurrency 3 runs three jobs at once, each shepherd in its own worktree of its clone; all merged once', async () => {
    fleet = await Fleet.create();
    const f = fleet;
    // Each builder waits until the test has seen all three jobs running (a file it writes then), so
    // the three overlap for certain, however slowly the status is read.
    const numbers = await f.createIssues(3, (i) => `${fence}loom-script builder\nrun touch "$LOOM_REPO_ROOT/../running-${i}"; for n in $(seq 1 900); do [ -e "$LOOM_REPO_ROOT/../go" ] && break; sleep 0.1; done\nwrite f${i}.txt <<EOF\nf${i}.txt\nEOF\n${fence}`);
    const worker = f.startWorker('w1', 3);
    f.startDaemon();
    let busy = '';
    await waitFor(f, async () => /#\d+, #\d+, #\d+ \(concurrency 3\)/.test((busy = (await loomAsync(f.root, ['status'], f.env)).stdout)), 60_000, 'three jobs on w1 at once');
    expect(busy).toMatch(/Workers \(1\):/);
    await waitFor(f, () => [1, 2, 3].every((i) => fs.existsSync(path.join(path.dirname(worker.dir), `running-${i}`))), 60_000, 'the three builders running');
    fs.writeFileSync(path.join(path.dirname(worker.dir), 'go'), '');
    await waitFor(f, () => numbers.every((n) => new RegExp(`#${n} completed: merged`).test(worker.output())), 120_000, 'all 3 jobs completed on w1');
    await expectMergedOnce(f, numbers, numbers.map((_, i) => `f${i + 1}.txt`));
  }, 240_000);

  it('Redis out of reach (frozen, its data kept) for longer than the job lock mid-job: the job goes to another worker, which resumes it from the checkpoint; the first shepherd stops and never pushes over it; merged once', async () => {
    fleet = await Fleet.create();
    const f = fleet;
    const [issue] = await f.createIssues(1, () => `${writes('f1.txt')}\n\n${fence}loom-script judge\nsleep 15\nsay VERDICT: APPROVE\n${fence}`);
    const first = f.startWorker('w1', 1);
    f.startDaemon();
    await waitFor(f, () => remotePhase(f, issue as number) === 'pr-opened', 60_000, 'the pr-opened checkpoint pushed by w1');
    const second = f.startWorker('w2', 1);
    await waitFor(f, async () => (await loomAsync(f.root, ['status'], f.env)).stdout.includes('Workers (2)'), 30_000, 'both workers registered');
    // Longer than the workers' 3 s job lock, while w1's judge runs.
    f.redis.freeze();
    await new Promise((resolve) => setTimeout(resolve, 6_000));
    f.redis.thaw();
    await waitFor(f, async () => (await closedCount(f, [issue as number])) === 1, 120_000, 'the issue merged');
    await waitFor(f, () => new RegExp(`job issue-${issue}-attempt-1: #${issue} completed: merged`).test(second.output()), 60_000, 'w2 to report the merge');
    expect(first.output()).toMatch(new RegExp(`job issue-${issue}-attempt-1: its lock was lost .*; stopping #${issue}, another worker resumes it`));
    expect(first.output()).not.toMatch(/completed: merged/);
    const log = shepherdLogs(second.dir, issue as number);
    expect(log).toMatch(/resuming after pr-opened/);
    expect(log).not.toMatch(/builder started/);
    await expectMergedOnce(f, [issue as number], ['f1.txt']);
  }, 200_000);

  it('a human pushes to the PR branch while a worker’s Doctor works: the worker merges the human’s commits in before it publishes (never force-pushes over them); merged with both', async () => {
    fleet = await Fleet.create();
    const f = fleet;
    const [issue] = await f.createIssues(1, () => [writes('f1.txt'), `${fence}loom-script judge 1\nsay VERDICT: REQUEST_CHANGES\n${fence}`, `${fence}loom-script doctor\nrun touch "$LOOM_REPO_ROOT/../doctor-started"; for n in $(seq 1 300); do [ -e "$LOOM_REPO_ROOT/../human-pushed" ] && break; sleep 0.1; done\nwrite f1.txt <<EOF\ndoctored\nEOF\n${fence}`].join('\n\n'));
    const worker = f.startWorker('w1', 1);
    f.startDaemon();
    await waitFor(f, () => fs.existsSync(path.join(f.base, 'doctor-started')), 60_000, 'the doctor round on w1');
    const human = path.join(f.base, 'human');
    git(f.base, 'clone', '-q', '-b', `loom/issue-${issue}`, f.bare, human);
    fs.writeFileSync(path.join(human, 'human.txt'), 'from a human\n');
    git(human, 'add', '.');
    git(human, '-c', 'user.name=Hu Man', '-c', 'user.email=hu@example.com', 'commit', '-qm', 'a human’s touch');
    git(human, 'push', '-q', 'origin', `loom/issue-${issue}`);
    fs.writeFileSync(path.join(f.base, 'human-pushed'), '');
    await waitFor(f, () => new RegExp(`#${issue} completed: merged`).test(worker.output()), 90_000, 'the job merged');
    expect(git(f.bare, 'show', 'main:human.txt')).toBe('from a human');
    expect(git(f.bare, 'show', 'main:f1.txt')).toBe('doctored');
  }, 200_000);

  it('a job that finishes while Redis is out of reach (its result not recorded, its lock lost) is not run again by its worker: the outcome is reported again', async () => {
    fleet = await Fleet.create();
    const f = fleet;
    const [issue] = await f.createIssues(1, () => `${writes('f1.txt')}\n\n${fence}loom-script judge\nsleep 2\nsay VERDICT: APPROVE\n${fence}`);
    const worker = f.startWorker('w1', 1);
    f.startDaemon();
    await waitFor(f, () => remotePhase(f, issue as number) === 'pr-opened', 60_000, 'the pr-opened checkpoint pushed by w1');
    f.redis.freeze();
    try {
      await waitFor(f, () => new RegExp(`#${issue} completed: merged`).test(worker.output()), 60_000, 'the job finished while Redis is frozen');
      // Past the 3 s job lock.
      await new Promise((resolve) => setTimeout(resolve, 4_000));
    } finally {
      f.redis.thaw();
    }
    await waitFor(f, () => /was finished here already/.test(worker.output()), 60_000, 'the job back from the stalled-job check, answered with its outcome');
    expect(worker.output().match(/shepherd #\d+ started/g)).toHaveLength(1);
    await expectMergedOnce(f, [issue as number], ['f1.txt']);
  }, 200_000);

  it('a worker without a GitHub token refuses to start in one line (exit 2) instead of taking jobs only to fail them', async () => {
    fleet = await Fleet.create();
    const f = fleet;
    const worker = f.startWorker('w1', 1, { GITHUB_TOKEN: '', GH_TOKEN: '' });
    const exit = await Promise.race([worker.exited, until(() => false, 30_000, 'the worker to exit').catch(() => 'still running')]);
    expect(exit, worker.output()).toBe(2);
    expect(worker.output().trim().split('\n'), worker.output()).toEqual([expect.stringMatching(/^loom: the github tracker needs a token: set GITHUB_TOKEN/)]);
  }, 60_000);

  it('a frozen worker that comes back after losing its job (fenced off, resumed elsewhere) does not take Redis for gone: it registers (and reports, and sees drains) again', async () => {
    fleet = await Fleet.create({ shutdownGrace: '2s' });
    const f = fleet;
    const [issue] = await f.createIssues(1, () => `${writes('f1.txt')}\n\n${fence}loom-script judge\nsleep 6\nsay VERDICT: APPROVE\n${fence}`);
    const frozen = f.startWorker('w1', 1);
    const daemon = f.startDaemon();
    await waitFor(f, () => remotePhase(f, issue as number) === 'pr-opened', 60_000, 'the judge running on w1');
    process.kill(-(frozen.child.pid as number), 'SIGSTOP');
    const other = f.startWorker('w2', 1);
    await waitFor(f, () => new RegExp(`shepherd #${issue} started`).test(other.output()), 60_000, 'w2 taking the job over');
    process.kill(-(frozen.child.pid as number), 'SIGCONT');
    await waitFor(f, () => /its lock was lost/.test(frozen.output()), 30_000, 'w1 finding its lock lost');
    await waitFor(f, async () => (await f.owner.getIssue(issue as number))?.state === 'closed', 120_000, 'the issue merged by w2');
    // Redis never went away: w1 must not take itself for cut off (it once stopped registering and
    // never saw a drain again).
    const resumed = Date.now();
    await waitFor(f, async () => {
      const status = JSON.parse((await loomAsync(f.root, ['status', '--json'], f.env)).stdout) as { queue: { workers: { pid: number; last_seen: string }[] } };
      return status.queue.workers.some((w) => w.pid === frozen.child.pid && Date.parse(w.last_seen) > resumed);
    }, 30_000, 'w1 registering again');
    expect(frozen.output()).not.toMatch(/is unavailable/);
    expect((await loomAsync(f.root, ['stop'])).code).toBe(0);
    expect(await daemon.exited(60_000)).toBe(0);
  }, 240_000);

  it('a worker whose Redis is away stops on SIGTERM all the same: no job to hand back, it does not wait for Redis', async () => {
    fleet = await Fleet.create();
    const f = fleet;
    const worker = f.startWorker('w1', 1);
    await waitFor(f, () => /taking shepherd jobs/.test(worker.output()), 30_000, 'the worker up');
    await f.redis.down();
    await waitFor(f, () => /is unavailable/.test(worker.output()), 30_000, 'the worker noticing Redis gone');
    worker.child.kill('SIGTERM');
    // It once waited for Redis for ever: a deadline, then the verdict.
    const exit = await Promise.race([worker.exited, until(() => false, 30_000, 'the worker to exit').catch(() => 'still running')]);
    expect(exit, worker.output()).toBe(0);
    expect(worker.output()).toMatch(/draining \(asked to stop\)[\s\S]*is unavailable; stopping without it[\s\S]*worker \S+ stopped/);
  }, 120_000);

  it('a merge on one worker turns main red: the merge on another worker (another clone) pauses too, until the revert PR is merged', async () => {
    fleet = await Fleet.create({ checksPollInterval: '0.1s' });
    const f = fleet;
    const ran = new Set<string>();
    // A CI app whose integration job runs on main only: a commit on main that holds f1.txt fails it.
    f.server.intercept = ({ checksOf }) => {
      const sha = checksOf ?? undefined;
      if (sha === undefined || ran.has(sha)) return;
      ran.add(sha);
      const onMain = git(f.bare, 'rev-parse', 'main') === sha;
      const red = onMain && spawnSync('git', ['cat-file', '-e', `${sha}:f1.txt`], { cwd: f.bare }).status === 0;
      f.server.setCheckRun(sha, { name: 'integration', status: 'completed', conclusion: red ? 'failure' : 'success', output: red ? { title: 'integration failed', summary: 'f1.txt breaks the deploy' } : {} });
    };
    // #2's builder finishes only once the guard on the other worker has opened its revert PR.
    const afterRevert = `run while [ -z "$(git ls-remote origin 'refs/heads/loom/revert-*')" ]; do sleep 0.1; done`;
    const [one, two] = await f.createIssues(2, (i) => (i === 1 ? writes('f1.txt') : `${fence}loom-script builder\n${afterRevert}\nwrite f2.txt <<EOF\nf2.txt\nEOF\n${fence}`));
    const workers = [f.startWorker('w1', 1), f.startWorker('w2', 1)];
    f.startDaemon();
    const all = () => workers.map((w) => `${w.output()}\n${shepherdLogs(w.dir, one as number)}\n${shepherdLogs(w.dir, two as number)}`).join('\n');
    await waitFor(f, () => /post-merge guard: PR #\d+ turned main red; reverted in PR #\d+/.test(all()), 120_000, 'the guard reverting #1’s merge');
    await waitFor(f, () => new RegExp(`#${two} completed`).test(workers.map((w) => w.output()).join('\n')), 120_000, '#2’s job to end');
    const prs = await f.owner.listPullRequests({ state: 'all' });
    const pr2 = prs.find((p) => p.closesIssue === two);
    expect(pr2?.state, all()).toBe('open');
    expect(all()).toMatch(new RegExp(`PR #${pr2?.number} approved, not merged: merging is paused: main went red after PR #\\d+`));
    expect(spawnSync('git', ['cat-file', '-e', 'main:f2.txt'], { cwd: f.bare }).status).not.toBe(0);
    // The daemon's Champion (a third clone) pauses too, and `loom status` there says why.
    const revert = prs.find((p) => p.head.startsWith('loom/revert-'));
    const paused = await loomAsync(f.root, ['role', 'champion'], f.env);
    expect(paused.stdout, paused.stdout + paused.stderr).toMatch(new RegExp(`merged nothing; skipped #${pr2?.number} \\(paused\\)`));
    expect((await loomAsync(f.root, ['status'], f.env)).stdout).toMatch(new RegExp(`PAUSED since .*: merging is paused: main went red after PR #\\d+ \\(issue #${one}, reverted in PR #${revert?.number}\\)`));
    // A maintainer merges the revert PR: main is green, the Champion merges #2's PR.
    await f.owner.markMerged(revert!.number);
    const resumed = await loomAsync(f.root, ['role', 'champion'], f.env);
    expect(resumed.stdout, resumed.stdout + resumed.stderr).toMatch(new RegExp(`merged #${pr2?.number}`));
    expect(git(f.bare, 'show', 'main:f2.txt')).toBe('f2.txt');
    expect((await loomAsync(f.root, ['status'], f.env)).stdout).not.toMatch(/PAUSED/);
  }, 240_000);

  it('two workers wait on checks at once; the first merges; the second, whose head was tested on the old main, is brought up to date and waits for its new head’s checks before merging', async () => {
    fleet = await Fleet.create({ checksPollInterval: '0.1s' });
    const f = fleet;
    // CI: the first two heads asked about stay in progress until the test says; every later commit passes at once.
    const held: string[] = [];
    const seen = new Set<string>();
    f.server.intercept = ({ checksOf }) => {
      const sha = checksOf ?? undefined;
      if (sha === undefined || seen.has(sha)) return;
      seen.add(sha);
      if (held.length < 2) {
        held.push(sha);
        f.server.setCheckRun(sha, { name: 'unit', status: 'in_progress' });
      } else f.server.setCheckRun(sha, { name: 'unit', status: 'completed', conclusion: 'success' });
    };
    const numbers = await f.createIssues(2, (i) => writes(`f${i}.txt`));
    const workers = [f.startWorker('w1', 1), f.startWorker('w2', 1)];
    f.startDaemon();
    await waitFor(f, () => held.length === 2, 90_000, 'both PRs waiting on their checks, on two workers');
    const before = git(f.bare, 'rev-parse', 'main');
    f.server.setCheckRun(held[0] as string, { name: 'unit', status: 'completed', conclusion: 'success' });
    await waitFor(f, () => git(f.bare, 'rev-parse', 'main') !== before, 60_000, 'the first merge');
    const first = git(f.bare, 'rev-parse', 'main');
    f.server.setCheckRun(held[1] as string, { name: 'unit', status: 'completed', conclusion: 'success' });
    await waitFor(f, async () => (await closedCount(f, numbers)) === 2, 120_000, 'both merged');
    await expectMergedOnce(f, numbers, ['f1.txt', 'f2.txt']);
    // The second merge brought in a head that holds the first: it was tested on the main it went into.
    const secondHead = git(f.bare, 'rev-parse', 'main^2');
    expect(git(f.bare, 'merge-base', '--is-ancestor', first, secondHead)).toBe('');
    expect(secondHead).not.toBe(held[1]);
    const logs = workers.map((w) => numbers.map((n) => shepherdLogs(w.dir, n)).join('\n')).join('\n');
    expect(logs).toMatch(/main moved on while the checks ran; the branch is brought up to date and its checks are waited for again/);
  }, 240_000);

  it('a shepherd that dies on its worker fails the job; the daemon counts it and enqueues the next attempt, which resumes', async () => {
    fleet = await Fleet.create();
    const f = fleet;
    const [issue] = await f.createIssues(1, () => writes('f1.txt'));
    // This worker's shepherds die (SIGKILL) right after opening the PR, before its checkpoint.
    const crashing = f.startWorker('w1', 1, { LOOM_TEST_CRASH_AT: 'pr:created' });
    const daemon = f.startDaemon();
    await waitFor(f, () => new RegExp(`shepherd #${issue} exited \\(code signal\\) without finishing`).test(crashing.output()), 60_000, 'the shepherd dying on w1');
    // The worker logs the death, then records the job failed in Redis: the machine goes only after
    // that (killed in between, the job would be a stalled one, handed back rather than failed).
    const queue = new ShepherdQueue(f.redis.url);
    try {
      await waitFor(f, async () => (await queue.jobs()).some((j) => j.id === `issue-${issue}-attempt-1` && j.state === 'failed'), 30_000, 'attempt 1 failed in the queue');
    } finally {
      await queue.close();
    }
    f.killMachine(crashing);
    await crashing.exited;
    await waitFor(f, () => /died=#\d+/.test(daemon.output()), 30_000, 'the daemon counting the failure');
    const healthy = f.startWorker('w2', 1);
    await waitFor(f, () => new RegExp(`job issue-${issue}-attempt-2: #${issue} completed`).test(healthy.output()), 120_000, 'attempt 2 completed on w2');
    expect(shepherdLogs(healthy.dir, issue as number)).toMatch(/resuming after built/);
    // The PR the dead shepherd opened is the one merged: no second PR.
    await expectMergedOnce(f, [issue as number], ['f1.txt']);
  }, 240_000);

  it('a shepherd whose heartbeat stalls is ended by its worker after stallTimeout; the next attempt finishes the issue', async () => {
    fleet = await Fleet.create({ stallTimeout: '8s' });
    const f = fleet;
    const [issue] = await f.createIssues(1, () => `${writes('f1.txt')}\n\n${fence}loom-script judge\nsleep 6\nsay VERDICT: APPROVE\n${fence}`);
    const worker = f.startWorker('w1', 1);
    const daemon = f.startDaemon();
    await waitFor(f, () => remotePhase(f, issue as number) === 'pr-opened', 60_000, 'the judge running');
    const record = JSON.parse(fs.readFileSync(path.join(worker.dir, '.loom', 'progress', `shepherd-${issue}.json`), 'utf8')) as { pid: number };
    process.kill(record.pid, 'SIGSTOP'); // frozen: no heartbeat any more
    await waitFor(f, () => new RegExp(`shepherd #${issue} stopped responding`).test(worker.output()), 30_000, 'the worker noticing the stall');
    await waitFor(f, () => !alive(record.pid), 10_000, 'the stalled shepherd ended');
    await waitFor(f, () => /died=#\d+/.test(daemon.output()), 30_000, 'the daemon counting the failure');
    await waitFor(f, () => new RegExp(`job issue-${issue}-attempt-2: #${issue} completed`).test(worker.output()), 120_000, 'attempt 2 completed');
    await expectMergedOnce(f, [issue as number], ['f1.txt']);
  }, 240_000);
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The phase of the checkpoint on origin for `issue` (null: none). */
function remotePhase(f: Fleet, issue: number): string | null {
  try {
    return (JSON.parse(git(f.bare, 'log', '-1', '--format=%B', `refs/loom/checkpoints/issue-${issue}`)) as { checkpoint: { phase: string } | null }).checkpoint?.phase ?? null;
  } catch {
    return null;
  }
}

/** Every shepherd log for `issue` in a worker's clone, concatenated. */
function shepherdLogs(dir: string, issue: number): string {
  const logs = path.join(dir, '.loom', 'logs');
  if (!fs.existsSync(logs)) return '';
  return fs
    .readdirSync(logs)
    .filter((n) => n.startsWith(`shepherd-issue-${issue}-`))
    .map((n) => fs.readFileSync(path.join(logs, n), 'utf8'))
    .join('\n');
}

/** An issue's sums as a usage index holds them (no ledger line added), or null while there is none yet. */
function readIndexedIssue(file: string, issue: number): unknown {
  if (!fs.existsSync(file)) return null;
  const db = new Database(file, { readonly: true, timeout: 10_000 });
  try {
    return db.prepare('SELECT runs, cost_usd FROM by_issue WHERE issue = ?').get(issue) ?? null;
  } catch {
    return null; // created, its tables not yet committed
  } finally {
    db.close();
  }
}
