// `loom start --detach`: the daemon in the background, its own session, its log under
// .loom/logs/ (rotated by size), `loom status` and `loom logs daemon` showing it, `loom stop`
// ending it and its shepherds; refused (exit 2, nothing started) when a daemon runs or the config
// is bad; after a kill -9 a second `--detach` adopts the shepherds the first one left.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Label } from '../../src/core/labels.js';
import { logParts } from '../../src/fs/log-rotation.js';
import { isProcessAlive } from '../../src/process/process-identity.js';
import type { TestRepo } from '../helpers/loom-repo.js';
import { fingerprint, journalBuilder, killLeftovers, loom, loomAsync, makeRepo, readJournal, until } from '../helpers/loom-repo.js';
import { killGroups } from '../helpers/child-process.js';

let repo: TestRepo | undefined;
/** Every daemon a test detached: killed (with its group) whatever the test's outcome. */
const daemons: number[] = [];
afterEach(() => {
  killGroups(daemons);
  if (repo) killLeftovers(repo.paths);
  repo?.cleanup();
  repo = undefined;
});

/** `loom start --detach`, remembering the daemon's pid for the cleanup. */
function detach(root: string, args: string[] = [], env: NodeJS.ProcessEnv = {}) {
  const r = loom(root, ['start', '--detach', ...args], env);
  const pid = Number(/\(pid (\d+)/.exec(r.stdout)?.[1] ?? 0);
  if (pid > 0) daemons.push(pid);
  return { ...r, pid };
}

const status = (root: string) => JSON.parse(loom(root, ['status', '--json']).stdout);
const sessionOf = (pid: number) => {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[3]);
};

describe('loom start --detach', () => {
  it('runs the daemon in the background: status shows it with its log, the log fills, loom stop ends it and its shepherds', async () => {
    repo = makeRepo({ pollInterval: '1s', shutdownGrace: '1s', roles: { builder: { command: 'sleep 60' } } });
    const tracker = repo.tracker();
    await tracker.createIssue({ title: 'slow', labels: [Label.issue] });

    const started = detach(repo.root);
    expect(started.code, started.stderr).toBe(0);
    expect(started.stdout).toMatch(/Loom daemon running in the background \(pid \d+\)/);
    expect(started.stdout).toContain(repo.paths.daemonLog);
    // Hints spell Loom as it can be typed here: `loom` when that is this Loom on the PATH, else its full path.
    expect(started.stdout).toMatch(/(loom|loom\.js) logs daemon -f[\s\S]*(loom|loom\.js) stop/);
    // Returned with the daemon ready: it holds the lock and has written its state.
    const running = status(repo.root);
    expect(running.daemon).toMatchObject({ status: 'running', pid: started.pid, log_file: repo.paths.daemonLog });
    expect(loom(repo.root, ['status']).stdout).toMatch(new RegExp(`Status: Running \\(pid ${started.pid}\\)[\\s\\S]*Log: ${repo.paths.daemonLog.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
    // Its own session: no terminal's hang-up or Ctrl+C reaches it.
    expect(sessionOf(started.pid)).toBe(started.pid);

    const shepherd = await until(() => status(repo!.root).shepherds.slots.find((s: { issue: number | null; pid: number | null }) => s.issue === 1 && s.pid), 30_000, 'a shepherd for #1');
    await until(() => /Iteration \d+: .*\+shepherd=#1/.test(fs.readFileSync(repo!.paths.daemonLog, 'utf8')), 10_000, 'the log shows the spawn');
    const log = fs.readFileSync(repo.paths.daemonLog, 'utf8');
    expect(log).toMatch(new RegExp(`^\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d Loom daemon started \\(pid ${started.pid}\\)`, 'm'));
    const shown = loom(repo.root, ['logs', 'daemon']);
    expect(shown.code, shown.stderr).toBe(0);
    expect(shown.stdout).toContain('Loom daemon started');

    // `logs daemon -f` follows until the daemon ends; `loom stop` ends it and stops its shepherd.
    const following = loomAsync(repo.root, ['logs', 'daemon', '-f'], {}, 60_000);
    expect(loom(repo.root, ['stop']).stdout).toMatch(new RegExp(`the daemon \\(pid ${started.pid}\\) finishes`));
    await until(() => !isProcessAlive(started.pid), 60_000, 'the detached daemon exited');
    await until(() => !isProcessAlive(shepherd.pid), 15_000, 'its shepherd stopped');
    const followed = await following;
    expect(followed.code, followed.stderr).toBe(0);
    expect(followed.stdout).toMatch(/Loom daemon started[\s\S]*Loom daemon stopped/);
    expect(status(repo.root).daemon).toMatchObject({ status: 'stopped', log_file: repo.paths.daemonLog });
    expect((await tracker.getIssue(1))!.labels).toContain(Label.issue);
  });

  it('a second --detach exits 2 naming the running daemon, and starts nothing', async () => {
    repo = makeRepo({ pollInterval: '1s' });
    const first = detach(repo.root);
    expect(first.code, first.stderr).toBe(0);
    const lock = fs.readFileSync(repo.paths.lock, 'utf8');
    const second = detach(repo.root);
    expect(second.code).toBe(2);
    expect(second.stderr.trim()).toBe(`loom: a Loom daemon is already running for this repository (pid ${first.pid}); stop it with \`loom stop\` or watch it with \`loom status\``);
    expect(second.stdout).toBe('');
    expect(fs.readFileSync(repo.paths.lock, 'utf8')).toBe(lock);
    expect(status(repo.root).daemon).toMatchObject({ status: 'running', pid: first.pid });
    loom(repo.root, ['stop']);
    await until(() => !isProcessAlive(first.pid), 60_000, 'the daemon exited');
  });

  it('a bad config exits 2 before detaching: one line, no daemon, nothing written', () => {
    repo = makeRepo({});
    fs.writeFileSync(repo.paths.config, JSON.stringify({ maxShepherds: 'three' }));
    const before = fingerprint(repo.paths.dir);
    const r = detach(repo.root);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^loom: .*maxShepherds/);
    expect(r.stdout).toBe('');
    expect(fingerprint(repo.paths.dir)).toEqual(before);
    expect(fs.existsSync(repo.paths.daemonLog)).toBe(false);
    const logs = loom(repo.root, ['logs', 'daemon']);
    expect(logs.code).toBe(2);
    expect(logs.stderr).toMatch(/^loom: no daemon log yet .*`loom start --detach`/);
  });

  it('after a kill -9, a new --detach carries on with the running shepherds: nothing is lost or built twice', async () => {
    const journal = path.join(fs.mkdtempSync('/tmp/loom-journal-'), 'journal');
    repo = makeRepo({ maxShepherds: 2, pollInterval: '1s', roles: { builder: { command: journalBuilder(journal, 2) } } });
    const tracker = repo.tracker();
    for (let i = 1; i <= 4; i += 1) await tracker.createIssue({ title: `Issue ${i}`, labels: [Label.issue] });
    const first = detach(repo.root);
    expect(first.code, first.stderr).toBe(0);
    await until(() => readJournal(journal).starts.size >= 2, 30_000, 'two builders running');
    process.kill(first.pid, 'SIGKILL');
    await until(() => !isProcessAlive(first.pid), 10_000, 'the first daemon is gone');
    expect(status(repo.root).daemon.status).toBe('crashed');

    const second = detach(repo.root);
    expect(second.code, second.stderr).toBe(0);
    await until(async () => (await tracker.listIssues({ state: 'all' })).every((i) => i.state === 'closed'), 90_000, 'every issue closed');
    // The new daemon carried on with the two running shepherds instead of starting #1 and #2 again.
    const afterRestart = fs.readFileSync(repo.paths.daemonLog, 'utf8').split(`Loom daemon started (pid ${second.pid})`)[1] ?? '';
    expect(afterRestart).toMatch(/^[^\n]*\n[^\n]*Iteration 1: [^\n]*shepherds=2\/2/);
    expect(afterRestart).not.toMatch(/\+shepherd=#[12]\b/);
    loom(repo.root, ['stop']);
    await until(() => !isProcessAlive(second.pid), 60_000, 'the second daemon exited');
    const j = readJournal(journal);
    expect(j.overlapping).toEqual([]);
    for (let n = 1; n <= 4; n += 1) expect(j.starts.get(n), `builds of #${n}`).toBe(1);
  });

  it('rotates its log by size, and `logs daemon --all` shows the parts oldest first', async () => {
    repo = makeRepo({ pollInterval: '0.2s' });
    const started = detach(repo.root, [], { LOOM_DAEMON_LOG_MAX_BYTES: '600' });
    expect(started.code, started.stderr).toBe(0);
    await until(() => fs.existsSync(`${repo!.paths.daemonLog}.2`), 60_000, 'the log rotated twice');
    loom(repo.root, ['stop']);
    await until(() => !isProcessAlive(started.pid), 60_000, 'the daemon exited');
    const files = logParts(repo.paths.daemonLog, 3);
    expect(files.length).toBeGreaterThanOrEqual(3);
    const parts = files.map((f) => fs.readFileSync(f, 'utf8'));
    // Each rotated part holds whole lines and was cut once it reached the limit (one line over at most).
    for (const part of parts.slice(0, -1)) {
      expect(part.endsWith('\n')).toBe(true);
      expect(part.length).toBeGreaterThanOrEqual(600);
      expect(part.length).toBeLessThan(600 + 250);
    }
    expect(parts.at(-1)).toMatch(/Loom daemon stopped/);
    const all = loom(repo.root, ['logs', 'daemon', '--all']);
    expect(all.stdout).toBe(parts.join(''));
    // No line lost across the rotations: the iterations follow one another.
    const iterations = [...all.stdout.matchAll(/Iteration (\d+):/g)].map((m) => Number(m[1]));
    expect(iterations.length).toBeGreaterThan(5);
    expect(iterations).toEqual(iterations.map((_, i) => iterations[0]! + i));
    if (files.length === 3) expect(parts[0]).toMatch(/Loom daemon started/);
  });
});
