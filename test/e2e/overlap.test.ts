// Overlap avoidance with the real daemon over a real repository and script agents: two issues
// naming the same file never build at once (the second waits until the first is merged) and both
// merge without a conflict; `loom why` and `loom status` say what the waiting one overlaps.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Label } from '../../src/core/labels.js';
import type { TestRepo } from '../helpers/loom-repo.js';
import { loom, makeRepo, startDaemon, until } from '../helpers/loom-repo.js';

let repo: TestRepo | undefined;
afterEach(() => repo?.cleanup());

const fence = '```';
/** A builder script that journals its start and end, and writes `file` with `content`. */
const edit = (journal: string, n: number, file: string, content: string) =>
  [`${fence}loom-script builder`, `run echo "start ${n}" >> '${journal}'`, 'sleep 2', `write ${file} <<EOF`, content, 'EOF', `run echo "end ${n}" >> '${journal}'`, fence].join('\n');

describe('overlap avoidance', () => {
  it('two issues naming the same file never build at once and both merge without conflict; why and status say so', async () => {
    const journal = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'loom-journal-')), 'journal');
    const off = { enabled: false };
    repo = makeRepo({ runtime: 'script', maxShepherds: 3, pollInterval: '0.5s', heartbeatInterval: '0.2s', issueThreshold: 0, roles: { architect: off, hermit: off, guide: off, curator: off, champion: { interval: '1s' } } });
    const tracker = repo.tracker();
    await tracker.createIssue({ title: 'first edit of notes', body: `Write \`notes.md\`.\n\n${edit(journal, 1, 'notes.md', 'first')}`, labels: [Label.issue] });
    await tracker.createIssue({ title: 'second edit of notes', body: `Rewrite notes.md.\n\n${edit(journal, 2, 'notes.md', 'second')}`, labels: [Label.issue] });
    await tracker.createIssue({ title: 'something else', body: `Write docs/other.md.\n\n${edit(journal, 3, 'docs/other.md', 'other')}`, labels: [Label.issue] });

    const daemon = startDaemon(repo.root);
    // While #1 is in progress, #2 waits and says why; #3 (another file) runs beside #1.
    const [why, status] = await until(
      () => {
        const out = loom(repo!.root, ['why', '2']).stdout;
        const text = loom(repo!.root, ['status']).stdout;
        return /✗ no overlapping work\s+overlaps (#1|PR #\d+ \(#1\)) on notes\.md/.test(out) && /waiting on overlapping work/.test(text) ? [out, text] : null;
      },
      30_000,
      '`loom why 2` naming the overlap with #1, and `loom status` counting it',
    );
    expect(why).toMatch(/^#2 is ready \(loom:issue\), waiting: no overlapping work — overlaps/m);
    expect(status).toMatch(/Ready issues \(loom:issue\): \d+, 1 waiting on overlapping work/);
    await until(async () => (await tracker.listPullRequests({ state: 'merged' })).length === 3, 90_000, 'all three PRs merged');
    expect(loom(repo.root, ['stop']).code).toBe(0);
    expect(await daemon.exited(60_000)).toBe(0);
    expect(daemon.output()).toMatch(/overlap-wait=#2\b/);

    const lines = fs.readFileSync(journal, 'utf8').trim().split('\n');
    // #2 starts only after #1 ended (and was merged); #3 was not held back by either.
    expect(lines.indexOf('start 2')).toBeGreaterThan(lines.indexOf('end 1'));
    expect(lines.indexOf('start 3')).toBeLessThan(lines.indexOf('end 1'));
    const merged = await tracker.listPullRequests({ state: 'merged' });
    const mergedAt = (issue: number) => Date.parse(merged.find((p) => p.closesIssue === issue)!.updatedAt);
    const started2 = (await tracker.listEvents(2)).find((e) => e.label === Label.building)!.createdAt;
    expect(Date.parse(started2)).toBeGreaterThanOrEqual(mergedAt(1));
    // No conflict anywhere: no PR was sent back, and the file holds the second edit on top of the first.
    for (const pr of merged) expect((await tracker.listEvents(pr.number)).filter((e) => e.label === Label.changesRequested)).toEqual([]);
    const show = (await import('node:child_process')).spawnSync('git', ['show', 'main:notes.md'], { cwd: repo.root, encoding: 'utf8' });
    expect(show.stdout.trim()).toBe('second');
  });
});
