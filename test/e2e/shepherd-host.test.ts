// `executor.shepherds: "host"`: a repository's shepherd runs live in one long-lived
// `loom shepherd-host` process (docs/shepherd.md, "Shepherd host"). Real daemon, real host
// process, real git and SQLite; agents are shell commands.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import type { StatusReport } from '../../src/status/status-report.js';
import { Label } from '../../src/core/labels.js';
import { isProcessAlive } from '../../src/process/process-identity.js';
import { ProgressStore, viewOf } from '../../src/process/progress-store.js';
import { handToHost, hostLockFile, listTickets, liveHost, requestStop } from '../../src/process/host-tickets.js';
import { processStart } from '../../src/process/process-identity.js';
import { claimIssue } from '../../src/steps/claim-issue.js';
import { startShepherd } from '../../src/daemon/start-shepherd.js';
import type { TestRepo } from '../helpers/loom-repo.js';
import { journalBuilder, loom, loomAsync, makeRepo, processesIn, readJournal, startDaemon, until } from '../helpers/loom-repo.js';

let repo: TestRepo | undefined;
afterEach(() => repo?.cleanup());

const ROLES = ['builder', 'judge', 'doctor', 'curator', 'architect', 'hermit', 'guide'];

/** A repository in host mode whose builder is `builder` (the judge approves, the other roles do nothing). */
function hostRepo(builder: string, extra: Record<string, unknown> = {}): TestRepo {
  const command = (role: string) => (role === 'builder' ? builder : role === 'judge' ? 'echo "VERDICT: APPROVE"' : 'true');
  return makeRepo({ runtime: 'command', pollInterval: '1s', maxShepherds: 3, executor: { kind: 'local', shepherds: 'host' }, roles: Object.fromEntries(ROLES.map((role) => [role, { command: command(role) }])), ...extra });
}

interface Event {
  type: string;
  kind?: string;
  issue?: number;
  pid?: number;
}
const events = (r: TestRepo): Event[] =>
  fs.existsSync(r.paths.events)
    ? fs
        .readFileSync(r.paths.events, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Event)
    : [];
const hostLog = (r: TestRepo, part = '') => {
  const file = `${r.paths.hostLog}${part}`;
  return fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
};
const hostsStarted = (r: TestRepo) => [...hostLog(r).matchAll(/shepherd host started \(pid (\d+)\)/g)].map((m) => Number(m[1]));

async function allClosed(r: TestRepo) {
  return (await r.tracker().listIssues({ state: 'all' })).every((i) => i.state === 'closed');
}

describe('the shepherd host', () => {
  it('a run goes only into a host of its launcher\'s daemon session: beside a host started by hand (loom spawn), the daemon runs its issue in a loom shepherd process of its own, in the daemon\'s environment', async () => {
    const journal = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'loom-mark-')), 'journal');
    repo = hostRepo(`echo "mark $LOOM_ISSUE $LC_MARK" >> '${journal}'; if [ "$LOOM_ISSUE" = 1 ]; then sleep 8; fi; echo "NO CHANGES NEEDED: marked"`);
    const tracker = repo.tracker();
    await tracker.createIssue({ title: 'by hand', labels: [Label.issue] });
    const spawned = loom(repo.root, ['spawn', '1'], { LC_MARK: 'shell' });
    expect(spawned.code, spawned.stderr).toBe(0);
    expect(spawned.stdout).toMatch(/in the shepherd host, pid \d+/);
    const byHand = liveHost(repo.paths.host);
    await until(() => fs.existsSync(journal) && fs.readFileSync(journal, 'utf8').includes('mark 1 '), 20_000, '#1 building in the host started by hand');

    await tracker.createIssue({ title: 'by the daemon', labels: [Label.issue] });
    const daemon = startDaemon(repo.root, ['start'], { LC_MARK: 'daemon' });
    await until(async () => (await tracker.getIssue(2))?.state === 'closed', 30_000, () => `#2 done; daemon output:\n${daemon.output()}`);
    const marks = fs.readFileSync(journal, 'utf8');
    expect(marks).toContain('mark 1 shell');
    expect(marks).toContain('mark 2 daemon');
    const started = events(repo).find((e) => e.type === 'task.started' && e.issue === 2);
    expect(started?.pid).toBeGreaterThan(0);
    expect(started?.pid).not.toBe(byHand?.pid);
    loom(repo.root, ['stop']);
    expect(await daemon.exited(30_000), daemon.output()).toBe(0);
    fs.rmSync(path.dirname(journal), { recursive: true, force: true });
  });

  it('a daemon builds and merges several issues through one host process, starting no loom shepherd', async () => {
    repo = hostRepo('echo "$LOOM_ISSUE" > "issue-$LOOM_ISSUE.txt"', { maxShepherds: 3 });
    const tracker = repo.tracker();
    for (let i = 1; i <= 5; i += 1) await tracker.createIssue({ title: `Issue ${i}`, labels: [Label.issue] });
    const daemon = startDaemon(repo.root, ['start', '--force']);
    await until(() => allClosed(repo!), 60_000, 'all five issues closed');
    loom(repo.root, ['stop']);
    expect(await daemon.exited(30_000), daemon.output()).toBe(0);

    for (let n = 1; n <= 5; n += 1) expect(fs.readFileSync(path.join(repo.root, `issue-${n}.txt`), 'utf8').trim()).toBe(String(n));
    const hosts = hostsStarted(repo);
    expect(hosts, hostLog(repo)).toHaveLength(1);
    // Every run started under the host's pid: no `loom shepherd` process ran one.
    const started = events(repo).filter((e) => e.type === 'task.started' && e.kind === 'shepherd');
    expect(started.map((e) => e.issue).sort()).toEqual([1, 2, 3, 4, 5]);
    expect(new Set(started.map((e) => e.pid))).toEqual(new Set(hosts));
    // Each run's log holds its own lines (and its agent's output), not the host's.
    const log1 = fs.readdirSync(repo.paths.logs).find((f) => f.startsWith('shepherd-issue-1-'));
    const text = fs.readFileSync(path.join(repo.paths.logs, log1!), 'utf8');
    expect(text).toContain('VERDICT: APPROVE');
    expect(text).toMatch(/shepherd #1: merged PR #\d+/);
    expect(text).not.toMatch(/shepherd #[2-5]/);
    // The stopping daemon ended the idle host: nothing is left running.
    await until(() => !isProcessAlive(hosts[0]), 10_000, 'the host gone');
    expect(processesIn(repo.root)).toEqual([]);
    expect(fs.existsSync(hostLockFile(repo.paths.host))).toBe(false);
  });

  it('loom status says which shepherds run in the shepherd host, with its pid', async () => {
    const release = path.join(fs.mkdtempSync('/tmp/loom-release-'), 'go');
    repo = hostRepo(`while [ ! -e '${release}' ]; do sleep 0.05; done; echo "$LOOM_ISSUE" > "issue-$LOOM_ISSUE.txt"`);
    const tracker = repo.tracker();
    await tracker.createIssue({ title: 'one', labels: [Label.issue] });
    const daemon = startDaemon(repo.root, ['start', '--force']);
    try {
      const progress = new ProgressStore(repo.paths.progress);
      await until(() => progress.readShepherd(1)?.status === 'running', 30_000, '#1 running');
      const host = liveHost(repo.paths.host)!;
      await until(() => (JSON.parse(loom(repo!.root, ['status', '--json']).stdout) as StatusReport).shepherds.active === 1, 15_000, 'status shows #1');
      const slot = (JSON.parse(loom(repo.root, ['status', '--json']).stdout) as StatusReport).shepherds.slots.find((s) => s.issue === 1);
      expect(slot).toMatchObject({ status: 'working', alive: true, hosted: true, pid: host.pid });
      expect(loom(repo.root, ['status']).stdout).toMatch(new RegExp(`Issue #1 \\([^)]*in the shepherd host, pid ${host.pid}\\)`));
      fs.writeFileSync(release, '');
      await until(async () => (await tracker.getIssue(1))?.state === 'closed', 30_000, '#1 merged');
    } finally {
      loom(repo.root, ['stop']);
      await daemon.exited(30_000);
    }
  });

  it('a stop of one hosted shepherd (loom:abort, or a stop request) leaves the others running', async () => {
    const journal = path.join(fs.mkdtempSync('/tmp/loom-journal-'), 'journal');
    const release = `${journal}.go`;
    // Each builder works until the test lets it finish.
    repo = hostRepo(`echo "start $LOOM_ISSUE" >> '${journal}'; while [ ! -e '${release}' ]; do sleep 0.05; done; echo "end $LOOM_ISSUE" >> '${journal}'; echo "$LOOM_ISSUE" > "issue-$LOOM_ISSUE.txt"`);
    const tracker = repo.tracker();
    for (let i = 1; i <= 3; i += 1) await tracker.createIssue({ title: `Issue ${i}`, labels: [Label.issue] });
    for (let n = 1; n <= 3; n += 1) expect(loom(repo.root, ['spawn', String(n), '--force-merge']).code).toBe(0);
    await until(() => readJournal(journal).starts.size === 3, 30_000, 'three builders running');
    const host = liveHost(repo.paths.host);
    expect(host).not.toBeNull();
    const progress = new ProgressStore(repo.paths.progress);

    loom(repo.root, ['issue', 'label', '1', Label.abort]);
    requestStop(repo.paths.host, progress.readShepherd(2)!.task_id);
    await until(() => progress.readShepherd(1)?.status === 'stopped' && progress.readShepherd(2)?.status === 'stopped', 30_000, '#1 and #2 stopped');
    expect(progress.readShepherd(1)?.message).toMatch(/loom:abort/);
    // #3 still runs, in the same host.
    expect(progress.readShepherd(3)?.status).toBe('running');
    expect(viewOf(progress.readShepherd(3), Date.now()).alive).toBe(true);
    expect(isProcessAlive(host!.pid, host!.pid_start)).toBe(true);

    fs.writeFileSync(release, '');
    await until(() => progress.readShepherd(3)?.status === 'completed', 30_000, '#3 merged');
    expect((await tracker.getIssue(3))?.state).toBe('closed');
    expect(readJournal(journal).ends.get(3)).toBe(1);
    for (const n of [1, 2]) expect((await tracker.getIssue(n))?.labels).toContain(Label.issue);
    expect(new Set(events(repo).filter((e) => e.type === 'task.started').map((e) => e.pid))).toEqual(new Set([host!.pid]));
  });

  it('kill -9 of the host: its issues are recovered and built once, never concurrently', { timeout: 150_000 }, async () => {
    const journal = path.join(fs.mkdtempSync('/tmp/loom-journal-'), 'journal');
    repo = hostRepo(journalBuilder(journal, 4));
    const tracker = repo.tracker();
    for (let i = 1; i <= 6; i += 1) await tracker.createIssue({ title: `Issue ${i}`, labels: [Label.issue] });
    const daemon = startDaemon(repo.root);
    await until(() => readJournal(journal).starts.size >= 3, 30_000, 'three builders running');
    const host = liveHost(repo.paths.host);
    expect(host).not.toBeNull();
    process.kill(host!.pid, 'SIGKILL');

    await until(() => allClosed(repo!), 120_000, 'all issues closed after the host died');
    loom(repo.root, ['stop']);
    expect(await daemon.exited(60_000)).toBe(0);
    expect(daemon.output()).toMatch(/died=#/);

    const j = readJournal(journal);
    expect(j.overlapping, fs.readFileSync(journal, 'utf8')).toEqual([]);
    for (let n = 1; n <= 6; n += 1) expect(j.ends.get(n), `finished builds of #${n}\n${fs.readFileSync(journal, 'utf8')}`).toBe(1);
    // A second host took over the recovered runs.
    expect(hostsStarted(repo).length).toBeGreaterThanOrEqual(2);
    const all = await tracker.listIssues({ state: 'all' });
    expect(all.filter((i) => i.labels.includes(Label.building) || i.labels.includes(Label.blocked))).toEqual([]);
    expect(processesIn(repo.root)).toEqual([]);
  });

  it('a stuck run in a host that does not answer its stop request is ended with its host, the last resort', { timeout: 120_000 }, async () => {
    const journal = path.join(fs.mkdtempSync('/tmp/loom-journal-'), 'journal');
    repo = hostRepo(journalBuilder(journal, 2), { stallTimeout: '3s', heartbeatInterval: '0.5s', maxShepherds: 1 });
    const tracker = repo.tracker();
    await tracker.createIssue({ title: 'one', labels: [Label.issue] });
    const daemon = startDaemon(repo.root);
    await until(() => readJournal(journal).starts.size === 1, 30_000, 'the builder running');
    const host = liveHost(repo.paths.host)!;
    // A host whose event loop no longer runs: no heartbeat, no answer to a stop request.
    process.kill(host.pid, 'SIGSTOP');
    await until(() => !isProcessAlive(host.pid, host.pid_start), 60_000, 'the stuck host ended');
    await until(() => allClosed(repo!), 60_000, 'the issue built again and closed');
    loom(repo.root, ['stop']);
    expect(await daemon.exited(30_000)).toBe(0);
    expect(daemon.output()).toMatch(/stuck=#1/);
    const state = JSON.parse(fs.readFileSync(repo.paths.state, 'utf8')) as { warnings: { message: string }[] };
    expect(state.warnings.map((w) => w.message).join('\n')).toMatch(/did not stop within 10s in the shepherd host/);
    expect(readJournal(journal).overlapping).toEqual([]);
    expect(processesIn(repo.root)).toEqual([]);
  });

  it('loom stop stops the running shepherds and the host, and leaves nothing running', async () => {
    const journal = path.join(fs.mkdtempSync('/tmp/loom-journal-'), 'journal');
    repo = hostRepo(journalBuilder(journal, 60), { shutdownGrace: '1s', heartbeatInterval: '0.2s' });
    const tracker = repo.tracker();
    for (let i = 1; i <= 3; i += 1) await tracker.createIssue({ title: `Issue ${i}`, labels: [Label.issue] });
    const daemon = startDaemon(repo.root);
    await until(() => readJournal(journal).starts.size === 3, 30_000, 'three builders running');
    const host = liveHost(repo.paths.host);
    expect(host).not.toBeNull();
    loom(repo.root, ['stop']);
    expect(await daemon.exited(60_000), daemon.output()).toBe(0);
    expect(isProcessAlive(host!.pid, host!.pid_start)).toBe(false);
    expect(processesIn(repo.root)).toEqual([]);
    for (const issue of await tracker.listIssues({ state: 'all' })) expect(issue.labels, `#${issue.number}`).toContain(Label.issue);
    expect(fs.readdirSync(path.join(repo.paths.host, 'tickets'))).toEqual([]);
  });

  it('a ticket written just as its host released the lock to exit is taken back and handed to a new host', async () => {
    repo = hostRepo('echo "$LOOM_ISSUE" > "issue-$LOOM_ISSUE.txt"');
    const tracker = repo.tracker();
    await tracker.createIssue({ title: 'one', labels: [Label.issue] });
    // A live process holding the host lock that will never take a ticket: a host on its way out.
    const exiting = spawn('sleep', ['60'], { stdio: 'ignore' });
    // The host this test's launcher starts is the built CLI's (as the daemon's is).
    const entry = process.env.LOOM_CLI_ENTRY;
    process.env.LOOM_CLI_ENTRY = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
    try {
      const lock = hostLockFile(repo.paths.host);
      fs.mkdirSync(path.dirname(lock), { recursive: true });
      fs.writeFileSync(lock, `${exiting.pid} ${processStart(exiting.pid!) ?? ''}`);
      const progress = new ProgressStore(repo.paths.progress);
      const output_file = path.join(repo.paths.logs, 'shepherd-issue-1-test.log');
      const claim = await claimIssue({ progress, tracker, issue: 1, task_id: 'feedc0ffee01', output_file, now: new Date() });
      if (!claim.ok) throw new Error(claim.message);
      const addressed: number[] = [];
      const host = await handToHost({
        root: repo.root,
        hostDir: repo.paths.host,
        hostLog: repo.paths.hostLog,
        ticket: { issue: 1, task_id: 'feedc0ffee01', output_file, force_merge: true },
        beforeTicket: (h, ticket) => {
          progress.write(progress.shepherdFile(1), { ...claim.record, pid: h.pid, pid_start: h.pid_start, host_ticket: ticket });
          // The exiting host lets its lock go after this launcher read it.
          if (addressed.push(h.pid) === 1) fs.rmSync(lock);
        },
      });
      if (host === null) throw new Error('a host of another session');
      expect(addressed[0]).toBe(exiting.pid);
      expect(host.pid).not.toBe(exiting.pid);
      expect(addressed).toEqual([exiting.pid, host.pid]);
      expect(listTickets(repo.paths.host).map((t) => t.host_pid)).toEqual([host.pid]);
      await until(() => progress.readShepherd(1)?.status === 'completed', 30_000, '#1 run by the new host');
      expect(progress.readShepherd(1)?.pid).toBe(host.pid);
    } finally {
      if (entry === undefined) delete process.env.LOOM_CLI_ENTRY;
      else process.env.LOOM_CLI_ENTRY = entry;
      exiting.kill('SIGKILL');
    }
  });

  it('loom logs -f of a hosted run ends when the run ends, while the host lives on', async () => {
    const release = path.join(fs.mkdtempSync('/tmp/loom-release-'), 'go');
    repo = hostRepo(`echo "building $LOOM_ISSUE"; while [ ! -e '${release}' ]; do sleep 0.05; done; echo "$LOOM_ISSUE" > "issue-$LOOM_ISSUE.txt"`);
    await repo.tracker().createIssue({ title: 'one', labels: [Label.issue] });
    expect(loom(repo.root, ['spawn', '1', '--force-merge']).code).toBe(0);
    const progress = new ProgressStore(repo.paths.progress);
    await until(() => progress.readShepherd(1)?.status === 'running', 30_000, '#1 running');
    const host = liveHost(repo.paths.host)!;
    const follow = loomAsync(repo.root, ['logs', '1', '-f'], {}, 30_000);
    fs.writeFileSync(release, '');
    const r = await follow;
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('building 1');
    expect(r.stdout).toMatch(/shepherd #1: completed: merged PR/);
    expect(isProcessAlive(host.pid, host.pid_start)).toBe(true);
  });

  it('exits by itself once idle, releasing its lock; its log rotates by size', async () => {
    repo = hostRepo('echo "$LOOM_ISSUE" > "issue-$LOOM_ISSUE.txt"');
    const tracker = repo.tracker();
    await tracker.createIssue({ title: 'one', labels: [Label.issue] });
    const spawned = loom(repo.root, ['spawn', '1', '--force-merge'], { LOOM_HOST_IDLE_MS: '500', LOOM_DAEMON_LOG_MAX_BYTES: '150' });
    expect(spawned.stdout).toMatch(/in the shepherd host, pid (\d+)/);
    const pid = Number(/pid (\d+)/.exec(spawned.stdout)![1]);
    await until(async () => (await tracker.getIssue(1))?.state === 'closed', 30_000, '#1 merged');
    await until(() => !isProcessAlive(pid), 15_000, 'the idle host exited');
    expect(fs.existsSync(hostLockFile(repo.paths.host))).toBe(false);
    expect(hostLog(repo)).toMatch(/shepherd host exits: idle/);
    // Past 150 bytes the log was copied to .1 (older parts to .2 and .3) and emptied in place: it never holds much more.
    expect(hostLog(repo, '.1')).toMatch(/ended, exit code 0|running task/);
    expect(hostLog(repo).length).toBeLessThan(400);
    expect(fs.existsSync(`${repo.paths.hostLog}.4`)).toBe(false);
  });

  it('an exception in one run ends that run only: it is dead to the daemon, the host and the other runs go on', async () => {
    const release = path.join(fs.mkdtempSync('/tmp/loom-release-'), 'go');
    repo = hostRepo(`while [ ! -e '${release}' ]; do sleep 0.05; done; echo "$LOOM_ISSUE" > "issue-$LOOM_ISSUE.txt"`);
    const tracker = repo.tracker();
    await tracker.createIssue({ title: 'one', labels: [Label.issue] });
    await tracker.createIssue({ title: 'two', labels: [Label.issue] });
    expect(loom(repo.root, ['spawn', '1', '--force-merge']).code).toBe(0);
    const progress = new ProgressStore(repo.paths.progress);
    await until(() => progress.readShepherd(1)?.status === 'running', 30_000, '#1 running');
    const host = liveHost(repo.paths.host)!;
    // The configuration breaks: the next run the host starts throws before its lifecycle begins.
    const config = fs.readFileSync(repo.paths.config, 'utf8');
    fs.writeFileSync(repo.paths.config, '{ not json');
    const started = await startShepherd({ paths: repo.paths, tracker, progress, issue: 2, forceMerge: true, now: new Date(), shepherds: 'host' });
    expect(started.ok && started.task.pid).toBe(host.pid);
    await until(() => !viewOf(progress.readShepherd(2), Date.now()).alive, 15_000, 'the failed run dead to the daemon');
    expect(hostLog(repo)).toMatch(/#2 \(task \w+\) failed/);
    fs.writeFileSync(repo.paths.config, config);
    expect(isProcessAlive(host.pid, host.pid_start)).toBe(true);
    fs.writeFileSync(release, '');
    await until(async () => (await tracker.getIssue(1))?.state === 'closed', 30_000, '#1 merged by the same host');
    expect(progress.readShepherd(1)?.pid).toBe(host.pid);
  });
});
