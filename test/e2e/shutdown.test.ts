// Graceful shutdown: `loom stop`, SIGTERM and SIGINT all stop new work, give active shepherds the
// grace period, then stop the rest and return their issues; nothing is left running.
import fs from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { Label } from '../../src/core/labels.js';
import type { TestRepo } from '../helpers/loom-repo.js';
import { loom, makeRepo, processesIn, startDaemon, until } from '../helpers/loom-repo.js';

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
