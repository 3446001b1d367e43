// What `/metrics` and `/api/v1/board` answer includes every event written before the request,
// not only those the live loop's last tick saw: `loom demo --dashboard` read its metrics right
// after the last merge and counted one merge too few.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loomPaths } from '../../src/config/paths.js';
import type { RunningDashboard } from '../../src/dashboard/server.js';
import { startDashboard } from '../../src/dashboard/server.js';
import type { BoardView } from '../../src/dashboard/live.js';
import { LiveBoard } from '../../src/dashboard/live.js';
import { EventLog } from '../../src/process/event-log.js';
import { parsePrometheus } from '../helpers/prometheus.js';

let running: RunningDashboard | undefined;
let dir: string | undefined;
afterEach(async () => {
  await running?.close();
  if (dir !== undefined) fs.rmSync(dir, { recursive: true, force: true });
  running = dir = undefined;
});

interface TestBoard extends BoardView {
  builds: number;
}

describe('dashboard answers are fresh', () => {
  it('counts a merge written just before the scrape, and rebuilds the board a file change made stale, with the loop asleep', async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'loom-fresh-'));
    const paths = loomPaths(dir);
    fs.mkdirSync(paths.dir, { recursive: true });
    const log = new EventLog(paths.events);
    log.emit('pr.merged', { issue: 1, pr: 2, commit: 'a'.repeat(40) });
    let builds = 0;
    const sources = {
      board: () => {
        builds += 1;
        const active = fs.existsSync(paths.state) ? 1 : 0;
        return Promise.resolve<TestBoard>({ generated_at: new Date().toISOString(), builds, processes: [], gauges: { daemon_up: 0, shepherds_active: active, shepherds_max: 3, issues_by_label: {}, pull_requests_by_label: {} } });
      },
      status: () => Promise.resolve({}),
      issue: () => Promise.resolve(null),
    };
    // The loop would first look in ten minutes: only the request itself can see what follows.
    running = await startDashboard({ paths, host: '127.0.0.1', port: 0, token: null, sources, intervalMs: 600_000 });
    const scrape = async () => parsePrometheus(await (await fetch(`${running?.url}metrics`)).text());
    expect((await scrape()).value('loom_merges_total')).toBe(1);

    log.emit('pr.merged', { issue: 3, pr: 4, commit: 'b'.repeat(40) });
    log.emit('issue.blocked', { issue: 5 });
    const after = await scrape();
    expect(after.value('loom_merges_total')).toBe(2);
    expect(after.value('loom_failures_total', { kind: 'blocked' })).toBe(1);

    const before = (await (await fetch(`${running.url}api/v1/board`)).json()) as TestBoard;
    fs.writeFileSync(paths.state, '{}');
    const board = (await (await fetch(`${running.url}api/v1/board`)).json()) as TestBoard;
    expect(board.builds).toBeGreaterThan(before.builds);
    expect(board.gauges.shepherds_active).toBe(1);
    // Nothing changed: the board is not rebuilt for every request.
    const again = (await (await fetch(`${running.url}api/v1/board`)).json()) as TestBoard;
    expect(again.builds).toBe(board.builds);
  });

  it('a change made while a build is under way is shown by the next answer, not hidden until the next periodic rebuild', async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'loom-fresh-'));
    const paths = loomPaths(dir);
    fs.mkdirSync(paths.dir, { recursive: true });
    fs.writeFileSync(paths.state, 'A');
    let gate: Promise<void> | null = null;
    let open = () => {};
    const board = new LiveBoard<TestBoard & { seen: string }>(
      paths,
      async () => {
        const seen = fs.readFileSync(paths.state, 'utf8');
        if (gate !== null) await gate;
        return { generated_at: new Date().toISOString(), builds: 0, seen, processes: [], gauges: { daemon_up: 0, shepherds_active: 0, shepherds_max: 1, issues_by_label: {}, pull_requests_by_label: {} } };
      },
      600_000,
    );
    await board.start();
    try {
      expect((await board.fresh()).seen).toBe('A');
      gate = new Promise((resolve) => (open = resolve));
      fs.writeFileSync(paths.state, 'BB');
      const first = board.fresh(); // reads BB, then waits
      fs.writeFileSync(paths.state, 'CCC'); // while that build is under way (a daemon killed, a state write)
      const second = board.fresh();
      open();
      gate = null;
      const [, answer] = await Promise.all([first, second]);
      // The answer asked for after the change shows it, though a build under way had read the file before.
      expect(answer.seen).toBe('CCC');
      expect((await board.fresh()).seen).toBe('CCC');
    } finally {
      board.stop();
    }
  });
});
