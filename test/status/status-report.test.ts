// `loom status` over a real local tracker: what it says does not grow with the backlog — the
// interventions name the first issues of a long list and how many there are in all.
import fs from 'node:fs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { defaultConfig } from '../../src/core/config-model.js';
import { Label } from '../../src/core/labels.js';
import { STATUS_PAGE, collectStatus, readTracker } from '../../src/status/collect-status.js';
import { buildStatus, renderStatus } from '../../src/status/status-report.js';
import { LocalTracker } from '../../src/tracker/local/local-tracker.js';
import type { TestRepo } from '../helpers/loom-repo.js';
import { countBytesRead } from '../helpers/bytes-read.js';
import { loom, makeRepo } from '../helpers/loom-repo.js';

let repo: TestRepo | undefined;
afterEach(() => {
  vi.restoreAllMocks();
  repo?.cleanup();
});

describe('status report', () => {
  it('is the same size for 20 and 200 blocked issues and proposals', async () => {
    repo = makeRepo({});
    const tracker = repo.tracker();
    const sizes: number[] = [];
    for (const total of [20, 200]) {
      while ((await tracker.listIssues({ labels: [Label.blocked] })).length < total) {
        await tracker.createIssue({ title: 'stuck', labels: [Label.blocked] });
        await tracker.createIssue({ title: 'idea', labels: [Label.architect] });
      }
      const report = await collectStatus(repo.paths);
      const text = renderStatus(report);
      expect(text).toContain(`${total} blocked issues need a human: #1, #3, #5,`);
      expect(text).toMatch(new RegExp(`${total} proposal\\(s\\) await approval \\(#2, #4, #6, .* and ${total - 10} more\\)`));
      sizes.push(text.length + JSON.stringify(report).length);
    }
    expect(sizes[1]! - sizes[0]!).toBeLessThanOrEqual(16); // a digit more in each count, text and JSON
  });

  it('reads a page of the ready issues with the counts, and says the waits are counted over that page', async () => {
    repo = makeRepo({});
    const tracker = repo.tracker();
    const blocker = await tracker.createIssue({ title: 'not ready', labels: [Label.blocked] });
    await tracker.createIssue({ title: 'held', labels: [Label.blocked, 'loom:operator'] });
    await tracker.createIssue({ title: 'marked failed', labels: ['loom:failed:build', Label.architect] });
    // Every fourth ready issue waits on the blocked one, beyond the page as well as within it.
    const ready = STATUS_PAGE + 30;
    for (let i = 0; i < ready; i += 1) await tracker.createIssue({ title: `ready ${i}`, body: i % 4 === 0 ? `Depends on #${blocker.number}` : '', labels: [Label.issue] });
    const snapshot = vi.spyOn(LocalTracker.prototype, 'snapshot');
    const report = await collectStatus(repo.paths);
    expect(snapshot.mock.calls.map(([options]) => options)).toEqual([{ page: STATUS_PAGE }]);
    expect(report.issues).toMatchObject({ ready, blocked: 3, held: 1, waiting_on_dependencies: Math.ceil(STATUS_PAGE / 4), waiting_counted_over_first: STATUS_PAGE, original_labels: { 'loom:operator': 1, 'loom:failed:build': 1 }, proposals: { architect: 1, hermit: 0, curated: 0 } });
    expect(renderStatus(report)).toContain(`Ready issues (loom:issue): ${ready}, ${Math.ceil(STATUS_PAGE / 4)} waiting on dependencies (of the first ${STATUS_PAGE} ready)`);

    // Every other count, and every intervention, is what the full snapshot (the dashboard board's) says.
    const full = await readTracker(repo.paths, defaultConfig());
    expect(full.snapshot).not.toBeInstanceOf(Error);
    const whole = buildStatus({ paths: repo.paths, config: defaultConfig(), snapshot: full.snapshot, trackerHealth: null, problems: [], now: new Date(), ...(full.dependencies ? { dependencies: full.dependencies } : {}) });
    expect(whole.issues).toEqual({ ...report.issues, waiting_on_dependencies: Math.ceil(ready / 4), waiting_counted_over_first: null });
    expect(whole.interventions).toEqual(report.interventions);
  });

  it('counts the waits over every ready issue, and says nothing of a page, when they all fit in it', async () => {
    repo = makeRepo({});
    const tracker = repo.tracker();
    const blocker = await tracker.createIssue({ title: 'not ready', labels: [Label.blocked] });
    for (let i = 0; i < 8; i += 1) await tracker.createIssue({ title: `ready ${i}`, body: i % 2 === 0 ? `Depends on #${blocker.number}` : '', labels: [Label.issue] });
    const report = await collectStatus(repo.paths);
    expect(report.issues).toMatchObject({ ready: 8, waiting_on_dependencies: 4, waiting_counted_over_first: null });
    expect(renderStatus(report)).toContain('Ready issues (loom:issue): 8, 4 waiting on dependencies\n');
  });
});

describe('status usage', () => {
  it('reads only the usage ledger lines written after the last iteration folded it', async () => {
    repo = makeRepo({});
    const line = (issue: number | null, cost: number) => `${JSON.stringify({ at: new Date().toISOString(), issue, role: 'builder', runtime: 'claude', model: null, session_id: 's', outcome: 'success', input_tokens: 100, output_tokens: 10, cached_input_tokens: 0, cost_usd: cost, priced: false })}\n`;
    fs.writeFileSync(repo.paths.usage, Array.from({ length: 3000 }, (_, i) => line(i % 50, 1)).join(''));
    expect(loom(repo.root, ['iterate']).code).toBe(0); // folds the ledger into the state file
    const tail = line(null, 0.5);
    fs.appendFileSync(repo.paths.usage, tail);

    // Bytes read from the ledger while the report is built.
    const counting = countBytesRead(repo.paths.usage);
    const report = await collectStatus(repo.paths);
    const bytes = counting.stop();

    expect(bytes).toBe(Buffer.byteLength(tail));
    expect(report.usage.total).toMatchObject({ runs: 3001, cost_usd: 3000.5 });
    expect(report.usage.today).toMatchObject({ runs: 3001 });
  });
});
