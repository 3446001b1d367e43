// kill -9 of the daemon (and of its shepherds) mid-run loses no issue and never lets two
// workers own one issue.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Label } from '../../src/core/labels.js';
import { isProcessAlive, processStart } from '../../src/process/process-identity.js';
import type { TestRepo } from '../helpers/loom-repo.js';
import { journalBuilder, loom, makeRepo, readJournal, startDaemon, until } from '../helpers/loom-repo.js';

let repo: TestRepo | undefined;
afterEach(() => repo?.cleanup());

async function setup(seconds: number, shepherds: 'host' | 'process') {
  const journal = path.join(fs.mkdtempSync('/tmp/loom-journal-'), 'journal');
  repo = makeRepo({ maxShepherds: 3, pollInterval: '1s', executor: { kind: 'local', shepherds }, roles: { builder: { command: journalBuilder(journal, seconds) } } });
  const tracker = repo.tracker();
  for (let i = 1; i <= 10; i += 1) await tracker.createIssue({ title: `Issue ${i}`, labels: [Label.issue] });
  return { journal, tracker };
}

async function allClosed(tracker: ReturnType<TestRepo['tracker']>) {
  return (await tracker.listIssues({ state: 'all' })).every((i) => i.state === 'closed');
}

// Both places a shepherd can run: the shepherd host (the default; killing a shepherd's pid kills
// the host and every run in it) and one `loom shepherd` process each.
describe.each(['host', 'process'] as const)('crash recovery, shepherds in %s', (shepherds) => {
  it('a daemon killed with SIGKILL is restarted: live shepherds are adopted, nothing is lost or built twice', async () => {
    const { journal, tracker } = await setup(1.5, shepherds);
    const first = startDaemon(repo!.root);
    await until(() => readJournal(journal).starts.size >= 3, 30_000, 'three builders running');
    first.child.kill('SIGKILL');
    await first.exited(10_000);

    const crashed = JSON.parse(loom(repo!.root, ['status', '--json']).stdout);
    expect(crashed.daemon.status).toBe('crashed');
    expect(loom(repo!.root, ['status']).stdout).toMatch(/Status: Crashed/);

    const second = startDaemon(repo!.root);
    await until(() => allClosed(tracker), 90_000, 'all issues closed after the restart');
    loom(repo!.root, ['stop']);
    expect(await second.exited(60_000)).toBe(0);

    const j = readJournal(journal);
    expect(j.overlapping).toEqual([]);
    for (let n = 1; n <= 10; n += 1) {
      expect(j.starts.get(n), `builds of #${n}`).toBe(1);
      expect(j.ends.get(n), `finished builds of #${n}`).toBe(1);
      const claims = (await tracker.listEvents(n)).filter((e) => e.type === 'labeled' && e.label === Label.building);
      expect(claims, `claims of #${n}`).toHaveLength(1);
    }
    const state = JSON.parse(fs.readFileSync(repo!.paths.state, 'utf8'));
    expect([...state.completed_issues].sort((a: number, b: number) => a - b)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  });

  it('a daemon and its shepherds killed with SIGKILL: orphaned agents are ended, issues return and are built once more, never concurrently', async () => {
    const { journal, tracker } = await setup(2, shepherds);
    const first = startDaemon(repo!.root);
    await until(() => readJournal(journal).starts.size >= 3, 30_000, 'three builders running');
    first.child.kill('SIGKILL');
    await first.exited(10_000);
    // Kill every shepherd process (not their builders: those are orphaned and must be ended by Loom).
    // In the host every record names the host's pid: it is killed once, with all its runs.
    const killed: number[] = [];
    const pids = new Set<number>();
    for (const name of fs.readdirSync(repo!.paths.progress)) {
      const record = JSON.parse(fs.readFileSync(path.join(repo!.paths.progress, name), 'utf8'));
      if (record.kind === 'shepherd' && record.pid) {
        pids.add(record.pid);
        killed.push(record.issue);
      }
    }
    for (const pid of pids) process.kill(pid, 'SIGKILL');
    expect(killed.length).toBeGreaterThan(0);

    const second = startDaemon(repo!.root);
    await until(() => allClosed(tracker), 90_000, 'all issues closed after the restart');
    loom(repo!.root, ['stop']);
    expect(await second.exited(60_000)).toBe(0);

    const j = readJournal(journal);
    expect(j.overlapping, `${fs.readFileSync(journal, 'utf8')}\n${second.output()}`).toEqual([]);
    for (let n = 1; n <= 10; n += 1) expect(j.ends.get(n), `finished builds of #${n}`).toBe(1);
    for (const n of killed) {
      const claims = (await tracker.listEvents(n)).filter((e) => e.type === 'labeled' && e.label === Label.building);
      expect(claims.length, `claims of killed #${n}`).toBeGreaterThanOrEqual(2);
    }
    expect(second.output()).toMatch(/died=#/);
    const open = await tracker.listIssues({ state: 'all' });
    expect(open.filter((i) => i.labels.includes(Label.building) || i.labels.includes(Label.blocked))).toEqual([]);
  });
});

describe('a daemon killed during its start-up', () => {
  it('before its state said running (its start-up cleanup): status says crashed, and the next start records the crash', async () => {
    repo = makeRepo();
    // A clean stop leaves a stopped state and no lock.
    const first = startDaemon(repo.root);
    await until(() => JSON.parse(loom(repo!.root, ['status', '--json']).stdout).daemon.status === 'running', 30_000, 'the first daemon running');
    expect(loom(repo.root, ['stop']).code).toBe(0);
    expect(await first.exited(30_000)).toBe(0);
    expect(JSON.parse(loom(repo.root, ['status', '--json']).stdout).daemon.status).toBe('stopped');
    const deadPid = async () => {
      const child = spawn(process.execPath, ['-e', '0'], { stdio: 'ignore' });
      await new Promise((resolve) => child.on('exit', resolve));
      return child.pid!;
    };
    // A daemon killed after it recorded its clean stop, while it released the rest (its lock taken
    // before that stop): stopped, not crashed.
    const stoppedAt = Date.parse(JSON.parse(fs.readFileSync(repo.paths.state, 'utf8')).stopped_at as string);
    fs.writeFileSync(repo.paths.lock, JSON.stringify({ pid: await deadPid(), pid_start: null, session_id: 'stopped-session', started_at: new Date(stoppedAt - 60_000).toISOString(), holder: 'daemon' }));
    expect(JSON.parse(loom(repo.root, ['status', '--json']).stdout).daemon.status).toBe('stopped');
    // What a daemon killed between taking its lock and marking its state running leaves: its lock.
    const held = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
    const pid = held.pid!;
    const gone = new Promise((resolve) => held.on('exit', resolve));
    fs.writeFileSync(repo.paths.lock, JSON.stringify({ pid, pid_start: processStart(pid), session_id: 'killed-session', started_at: new Date().toISOString(), holder: 'daemon' }));
    expect(JSON.parse(loom(repo.root, ['status', '--json']).stdout).daemon.status).toBe('running');
    held.kill('SIGKILL');
    await gone;
    expect(isProcessAlive(pid, processStart(pid))).toBe(false);
    expect(JSON.parse(loom(repo.root, ['status', '--json']).stdout).daemon.status).toBe('crashed');

    const second = startDaemon(repo.root);
    const events = () => fs.readFileSync(repo!.paths.events, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    await until(() => events().filter((e) => e.type === 'daemon.started').length === 2, 30_000, 'the second start recorded');
    expect(events().filter((e) => e.type === 'daemon.started').map((e) => e.after)).toEqual(['none', 'crash']);
    expect(events().filter((e) => e.type === 'daemon.crashed')).toEqual([expect.objectContaining({ pid, session: 'killed-session' })]);
    expect(loom(repo.root, ['stop']).code).toBe(0);
    expect(await second.exited(30_000)).toBe(0);
  });
});

describe('temp files of killed writers', () => {
  it('the next iteration removes every temp file a killed writer left: atomic writes and lock files (daemon lock, merge lock, issue lease, shepherd host), merge-queue and shepherd-host tickets', () => {
    repo = makeRepo({ runtime: 'script' });
    // pids above the kernel's largest (4194304) never run: their writers are gone.
    const left = [
      path.join(repo.paths.dir, 'daemon.lock.4194400.tmp'),
      path.join(repo.paths.dir, 'merge.lock.4194401.tmp'),
      path.join(repo.paths.dir, 'daemon-state.json.4194402.ab12cd.tmp'),
      path.join(repo.paths.worktrees, 'issue-3.lock.4194403.tmp'),
      path.join(repo.paths.progress, 'shepherd-9.json.4194404.claim.tmp'),
      path.join(repo.paths.mergeQueue, '000000000000001-00000001-000001.json.4194405.ef34gh.tmp'),
      path.join(repo.paths.host, 'shepherd-host.lock.4194406.tmp'),
      path.join(repo.paths.host, 'tickets', 'abc123.json.4194407.ij56kl.tmp'),
    ];
    for (const file of left) {
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, 'half written');
    }
    const r = loom(repo.root, ['iterate']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(left.filter((f) => fs.existsSync(f))).toEqual([]);
  });
});
