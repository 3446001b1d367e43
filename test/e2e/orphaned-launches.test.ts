// A daemon killed outright (kill -9) can leave its iteration child running. Whatever that
// iteration would still launch, the next daemon's state would never know: it launches nothing.
// And a role run the state does not know (launched so, or by hand) is adopted while it runs and
// recorded once it ends, so no progress record is left behind and no second run starts beside it.
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Label } from '../../src/core/labels.js';
import { processStart } from '../../src/process/process-identity.js';
import type { TestRepo } from '../helpers/loom-repo.js';
import { LOOM_BIN, loom, makeRepo, until } from '../helpers/loom-repo.js';
import { groupHasLiveMembers } from '../runtimes/process-group.js';
import { killGroups } from '../helpers/child-process.js';

let repo: TestRepo | undefined;
const groups: number[] = [];
afterEach(() => {
  killGroups(groups);
  repo?.cleanup();
});

const SESSION = 'daemon0session';

/**
 * A repository with one ready issue and the Guide (its interval role) due — an iteration would
 * start both — and an issue left `loom:building` with no shepherd, which it would release.
 */
async function dueRepo(): Promise<TestRepo> {
  const r = makeRepo({ runtime: 'script', roles: { architect: { enabled: false }, hermit: { enabled: false }, judge: { enabled: false }, curator: { enabled: false }, doctor: { enabled: false }, champion: { enabled: false } } });
  await r.tracker().createIssue({ title: 'ready', labels: [Label.issue] });
  await r.tracker().createIssue({ title: 'nobody builds it', labels: [Label.building] });
  const now = new Date().toISOString();
  fs.writeFileSync(r.paths.state, JSON.stringify({ started_at: now, running: true, iteration: 0, force_mode: false, daemon_session_id: SESSION, shepherds: {}, support_roles: {}, warnings: [], completed_issues: [], total_prs_merged: 0 }));
  return r;
}

/**
 * Runs a daemon's iteration (`loom iterate` with the daemon's session) under a stand-in daemon
 * that holds the lock. The iteration is paused just before its actions; `meanwhile` then changes
 * the world (kills the stand-in, as `kill -9` does a daemon). Resolves with the iteration's output.
 */
async function iterationOf(r: TestRepo, meanwhile: (daemon: ChildProcess) => Promise<void>): Promise<string> {
  const dir = fs.mkdtempSync('/tmp/loom-orphan-');
  const out = path.join(dir, 'iteration.log');
  const script = `
    const { spawn } = require('node:child_process');
    const fs = require('node:fs');
    process.stdin.once('data', () => {
      const fd = fs.openSync(${JSON.stringify(out)}, 'a');
      const child = spawn(process.execPath, [${JSON.stringify(LOOM_BIN)}, 'iterate'], { detached: true, stdio: ['ignore', fd, fd], env: { ...process.env, LOOM_DAEMON_SESSION: ${JSON.stringify(SESSION)}, LOOM_TEST_PAUSE_AT: 'iteration:actions=${dir}' } });
      console.log(child.pid);
      child.on('exit', () => process.exit(0));
    });
  `;
  const daemon = spawn(process.execPath, ['-e', script], { cwd: r.root, stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = new Promise((resolve) => daemon.on('exit', resolve));
  await until(() => processStart(daemon.pid!), 5_000, 'the stand-in daemon to start');
  fs.writeFileSync(r.paths.lock, JSON.stringify({ pid: daemon.pid, pid_start: processStart(daemon.pid!), session_id: SESSION, started_at: new Date().toISOString(), holder: 'daemon' }));
  let pidText = '';
  daemon.stdout.on('data', (c: Buffer) => (pidText += c.toString()));
  daemon.stdin.write('go\n');
  const pid = Number(await until(() => pidText.trim(), 10_000, 'the iteration to start'));
  groups.push(pid);
  await until(() => fs.existsSync(path.join(dir, 'iteration_actions.reached')) || !groupHasLiveMembers(pid), 60_000, 'the iteration to reach its actions');
  expect(fs.existsSync(path.join(dir, 'iteration_actions.reached')), fs.readFileSync(out, 'utf8')).toBe(true);
  await meanwhile(daemon);
  fs.writeFileSync(path.join(dir, 'iteration_actions.go'), '');
  await until(() => !groupHasLiveMembers(pid), 60_000, 'the iteration to end');
  await exited;
  return fs.readFileSync(out, 'utf8');
}

const records = (r: TestRepo) => fs.readdirSync(r.paths.progress).filter((n) => n.endsWith('.json')).sort();
const stateOf = (r: TestRepo) => JSON.parse(fs.readFileSync(r.paths.state, 'utf8'));

describe('launches the next daemon would not know', () => {
  it('an iteration whose daemon was killed outright starts no shepherd and no role and changes nothing; with its daemon alive the same iteration does all of it', async () => {
    repo = await dueRepo();
    const orphaned = await iterationOf(repo, async (daemon) => {
      const gone = new Promise((resolve) => daemon.on('exit', resolve));
      daemon.kill('SIGKILL');
      await gone;
    });
    expect(orphaned).toMatch(/!daemon-gone/);
    expect(records(repo)).toEqual([]);
    expect(stateOf(repo).support_roles.guide?.status ?? 'idle').toBe('idle');
    expect((await repo.tracker().getIssue(1))!.labels).toEqual([Label.issue]);
    expect((await repo.tracker().getIssue(2))!.labels).toEqual([Label.building]);

    const alive = await iterationOf(repo, () => Promise.resolve());
    expect(alive).not.toMatch(/!daemon-gone/);
    expect(alive).toMatch(/\+shepherd=#1/);
    expect(alive).toMatch(/\+guide/);
    expect(alive).toMatch(/released=#2/);
    expect(stateOf(repo).support_roles.guide.status).toBe('running');
  });

  it('an iteration whose lock another daemon took meanwhile starts nothing either', async () => {
    repo = await dueRepo();
    const output = await iterationOf(repo, () => {
      // The next daemon (this process stands in for it) holds the lock under its own session.
      fs.writeFileSync(repo!.paths.lock, JSON.stringify({ pid: process.pid, pid_start: processStart(process.pid), session_id: 'next0session', started_at: new Date().toISOString(), holder: 'daemon' }));
      return Promise.resolve();
    });
    expect(output).toMatch(/!daemon-gone/);
    expect(records(repo)).toEqual([]);
    expect((await repo.tracker().getIssue(1))!.labels).toEqual([Label.issue]);
  });

  it('a finished role run the state does not know is recorded and its progress record removed; a live one is adopted, never run twice, and stopped by loom stop', async () => {
    repo = await dueRepo();
    const now = new Date().toISOString();
    // What the killed daemon's iteration launched: a Guide run that has finished since.
    const guide = path.join(repo.paths.progress, 'role-guide.json');
    fs.writeFileSync(guide, JSON.stringify({ kind: 'role', task_id: 'orphan0guide', issue: null, role: 'guide', status: 'completed', phase: 'guide', pid: 999_999, pid_start: 'gone', launcher_pid: 999_999, agent_pid: null, started: now, heartbeat: now, output_file: '(terminal)', message: 'triaged 0 issues' }));
    let r = loom(repo.root, ['iterate']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(fs.existsSync(guide)).toBe(false);
    expect(stateOf(repo).support_roles.guide).toMatchObject({ status: 'idle', last_outcome: 'completed' });
    expect(stateOf(repo).support_roles.guide.last_completed).not.toBeNull();

    // A Guide run the state does not know, still running.
    const runner = spawn('sleep', ['600'], { detached: true, stdio: 'ignore' });
    groups.push(runner.pid!);
    const start = await until(() => processStart(runner.pid!), 5_000, 'the run to start');
    const live = { kind: 'role', task_id: 'orphan1guide', issue: null, role: 'guide', status: 'running', phase: 'guide', pid: runner.pid, pid_start: start, launcher_pid: runner.pid, agent_pid: null, started: now, heartbeat: now, output_file: '(terminal)' };
    fs.writeFileSync(guide, JSON.stringify(live));
    const entry = stateOf(repo).support_roles.guide;
    fs.writeFileSync(repo.paths.state, JSON.stringify({ ...stateOf(repo), support_roles: { guide: { ...entry, last_completed: null } } }));
    r = loom(repo.root, ['iterate']);
    expect(r.stdout).toMatch(/adopt=guide/);
    const events = fs.readFileSync(repo.paths.events, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { type: string; role?: string });
    expect(events.filter((e) => e.type === 'role.adopted')).toEqual([expect.objectContaining({ role: 'guide' })]);
    expect(r.stdout).not.toMatch(/\+guide/);
    expect(stateOf(repo).support_roles.guide).toMatchObject({ status: 'running', task_id: 'orphan1guide', pid: runner.pid });
    expect(JSON.parse(fs.readFileSync(guide, 'utf8')).task_id).toBe('orphan1guide');
    const status = JSON.parse(loom(repo.root, ['status', '--json']).stdout);
    expect(status.support_roles.find((x: { role: string }) => x.role === 'guide')).toMatchObject({ status: 'running' });

    r = loom(repo.root, ['iterate', '--mode', 'stop']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    await until(() => !groupHasLiveMembers(runner.pid!), 10_000, 'the adopted run to be stopped');
    expect(fs.existsSync(guide)).toBe(false);
    expect(stateOf(repo).support_roles.guide).toMatchObject({ status: 'idle', last_outcome: 'stopped' });

    // Adopted while its record was still `starting` (no pid yet); the run records its pid after.
    const late = spawn('sleep', ['600'], { detached: true, stdio: 'ignore' });
    groups.push(late.pid!);
    const lateStart = await until(() => processStart(late.pid!), 5_000, 'the run to start');
    fs.writeFileSync(guide, JSON.stringify({ ...live, task_id: 'orphan2guide', status: 'starting', pid: null, pid_start: null, launcher_pid: process.pid }));
    r = loom(repo.root, ['iterate']);
    expect(r.stdout).toMatch(/adopt=guide/);
    expect(stateOf(repo).support_roles.guide).toMatchObject({ status: 'running', task_id: 'orphan2guide', pid: null });
    fs.writeFileSync(guide, JSON.stringify({ ...live, task_id: 'orphan2guide', pid: late.pid, pid_start: lateStart }));
    r = loom(repo.root, ['iterate', '--mode', 'stop']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    await until(() => !groupHasLiveMembers(late.pid!), 10_000, 'the run adopted before its pid was known to be stopped');
    expect(fs.existsSync(guide)).toBe(false);
  });
});
