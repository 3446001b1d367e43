// Graceful shutdown: `loom stop`, SIGTERM and SIGINT all stop new work, give active shepherds the
// grace period, then stop the rest and return their issues; nothing is left running.
import fs from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { Label } from '../../src/core/labels.js';
import type { TestRepo } from '../helpers/loom-repo.js';
import { loom, makeRepo, processesIn, startDaemon, until } from '../helpers/loom-repo.js';
import { processStart } from '../../src/process/process-identity.js';

let repo: TestRepo | undefined;
afterEach(() => repo?.cleanup());

describe('shutdown', () => {
  for (const how of ['loom stop', 'SIGTERM', 'SIGINT'] as const) {
    it(`${how}: waits out the grace, stops the rest, returns their issues, leaves nothing running`, async () => {
      repo = makeRepo({ maxShepherds: 2, shutdownGrace: '1s', heartbeatInterval: '0.2s', roles: { builder: { command: 'while true; do echo busy; sleep 0.1; done' } } });
      const tracker = repo.tracker();
      for (let i = 1; i <= 3; i += 1) await tracker.createIssue({ title: `endless ${i}`, labels: [Label.issue] });
      const daemon = startDaemon(repo.root);
      await until(async () => (await tracker.listIssues({ labels: [Label.building] })).length === 2, 20_000, 'two shepherds building');
      await until(() => fs.readdirSync(repo!.paths.progress).length === 2 && /Iteration 2:/.test(daemon.output()), 20_000, 'shepherds recorded');
      if (how === 'loom stop') expect(loom(repo.root, ['stop']).code).toBe(0);
      else daemon.child.kill(how);
      expect(await daemon.exited(60_000)).toBe(0);
      expect(daemon.output()).toMatch(/Shutting down: waiting up to 1s for 2 active task\(s\)/);
      expect(daemon.output()).toMatch(/Stopped the rest: .*stopped=#\d+ stopped=#\d+/);
      const issues = await tracker.listIssues();
      expect(issues.map((i) => i.labels)).toEqual([[Label.issue], [Label.issue], [Label.issue]]);
      const state = JSON.parse(fs.readFileSync(repo.paths.state, 'utf8'));
      expect(state.running).toBe(false);
      expect(fs.existsSync(repo.paths.stopSignal)).toBe(false);
      expect(fs.existsSync(repo.paths.lock)).toBe(false);
      await until(() => processesIn(repo!.root).length === 0, 10_000, 'no process left in the repository');
    });
  }

  it('a daemon whose lock another daemon took while it drained exits at once: it neither waits out the grace nor marks the state stopped', async () => {
    repo = makeRepo({ maxShepherds: 1, shutdownGrace: '120s', heartbeatInterval: '0.2s', roles: { builder: { command: 'while true; do echo busy; sleep 0.1; done' } } });
    const tracker = repo.tracker();
    await tracker.createIssue({ title: 'endless', labels: [Label.issue] });
    const daemon = startDaemon(repo.root);
    await until(() => fs.readdirSync(repo!.paths.progress).length === 1 && /Iteration 2:/.test(daemon.output()), 20_000, 'a shepherd recorded');
    daemon.child.kill('SIGTERM');
    await until(() => /Shutting down: waiting up to 2m for 1 active task/.test(daemon.output()), 20_000, 'the drain started');
    // Another daemon (here: this test process) now holds the lock, as after a takeover of a lock thought stale.
    const other = { pid: process.pid, pid_start: processStart(process.pid), session_id: 'other-daemon', started_at: new Date().toISOString(), holder: 'daemon' };
    fs.writeFileSync(repo.paths.lock, JSON.stringify(other));
    const stateBefore = fs.readFileSync(repo.paths.state, 'utf8');
    expect(await daemon.exited(30_000)).toBe(1);
    expect(daemon.output()).toMatch(/Drain: .*another daemon|no longer holds the lock.*exiting/);
    expect(daemon.output()).not.toMatch(/Loom daemon stopped/);
    // The lock and the state stay the other daemon's: nothing written over them.
    expect(JSON.parse(fs.readFileSync(repo.paths.lock, 'utf8'))).toMatchObject({ session_id: 'other-daemon' });
    expect(JSON.parse(fs.readFileSync(repo.paths.state, 'utf8')).running).toBe(JSON.parse(stateBefore).running);
    fs.rmSync(repo.paths.lock, { force: true });
  });

  it('a SIGTERM that comes as the daemon exits after loom stop (systemd sends one right after ExecStop) does not kill it: exit 0', async () => {
    repo = makeRepo({ pollInterval: '1s' });
    const daemon = startDaemon(repo.root);
    await until(() => /Iteration 1:/.test(daemon.output()), 20_000, 'the daemon running');
    expect(loom(repo.root, ['stop']).code).toBe(0);
    await until(() => /Loom daemon stopped/.test(daemon.output()), 20_000, 'the daemon stopped');
    // From its last line on, SIGTERM after SIGTERM until the process is gone: each must find it
    // still ignoring the signal, never with the default action (death by the signal).
    let exited = false;
    const code = daemon.exited(20_000).finally(() => (exited = true));
    while (!exited) {
      try {
        daemon.child.kill('SIGTERM');
      } catch {
        break;
      }
      await new Promise((r) => setImmediate(r));
    }
    expect(await code).toBe(0);
  });
});
