// `loom demo --dashboard`: the demo prints the dashboard's address, serves the run on it, and
// keeps it open after the backlog is done until Ctrl+C.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SAMPLE_ISSUES } from '../../src/demo/sample-repo.js';
import type { StatusReport } from '../../src/status/status-report.js';
import { processesIn, startLoom, until } from '../helpers/loom-repo.js';
import { parsePrometheus } from '../helpers/prometheus.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

describe('loom demo --dashboard', () => {
  it('serves the run live and keeps the dashboard open until Ctrl+C', async () => {
    const base = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'loom-demo-dash-')));
    dirs.push(base);
    const root = path.join(base, 'sample');
    const demo = startLoom(base, ['demo', '--dashboard', '--dir', root]);
    // Every wait is bounded and, when it runs out, says what the demo printed.
    const get = (url: string) => fetch(url, { signal: AbortSignal.timeout(20_000) }).catch((e: Error) => {
      throw new Error(`GET ${url}: ${e.message}\n${demo.out}`);
    });
    try {
      const url = await until(() => /Dashboard: (http:\/\/127\.0\.0\.1:\d+\/)/.exec(demo.out)?.[1], 30_000, () => `the dashboard address (the demo's exit: ${demo.code}):\n${demo.out}`);
      const during = await get(`${url}api/v1/board`);
      expect(during.status).toBe(200);

      await until(() => /press Ctrl\+C to quit/.test(demo.out), 240_000, () => `the demo done (its exit: ${demo.code}):\n${demo.out}`);
      expect(demo.out).toMatch(/Backlog done in/);
      expect(demo.out).toContain(`The dashboard stays open at ${url}`);
      const state = (await (await get(`${url}api/v1/state`)).json()) as StatusReport;
      expect(state.daemon.status).toBe('stopped');
      const metrics = parsePrometheus(await (await get(`${url}metrics`)).text());
      expect(metrics.value('loom_merges_total')).toBe(SAMPLE_ISSUES.filter((s) => s.expect === 'merged').length);
      expect(metrics.value('loom_failures_total', { kind: 'blocked' })).toBe(1);

      demo.process.kill('SIGINT');
      expect(await until(() => demo.code !== undefined, 30_000, () => `the demo's exit after Ctrl+C:\n${demo.out}`)).toBe(true);
      expect(demo.code, demo.out).toBe(0);
      await expect(fetch(`${url}api/v1/state`)).rejects.toThrow();
      expect(fs.existsSync(path.join(root, '.loom', 'dashboard.json'))).toBe(false);
      await until(() => processesIn(root).length === 0, 10_000, 'nothing left running');
    } finally {
      demo.process.kill('SIGKILL');
    }
    // The demo takes about 6 s on an idle machine and 30 s with three times as many busy
    // processes as cores; the waits above fail first, with the demo's output.
  }, 300_000);
});
