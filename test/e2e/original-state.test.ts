// State and progress files an earlier Loom left, read for what they are: placeholder times are
// unknown (never NaN), `errored` and `paused` shepherd slots are shown, and the Python daemon's
// progress records (`shepherd-<task id>.json`) are never taken for Loom's own.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Label } from '../../src/core/labels.js';
import type { TestRepo } from '../helpers/loom-repo.js';
import { fingerprint, loom, makeRepo } from '../helpers/loom-repo.js';

let repo: TestRepo | undefined;
afterEach(() => repo?.cleanup());

describe('state and progress files of earlier Loom installations', () => {
  it('loom status shows placeholder times as unknown (no NaN) and errored/paused shepherds as such, and changes nothing', () => {
    repo = makeRepo({ maxShepherds: 3 });
    fs.writeFileSync(
      repo.paths.state,
      JSON.stringify({
        started_at: '<timestamp>',
        running: true,
        shepherds: {
          'shepherd-1': { status: 'working', issue: 3, task_id: 'abc123', output_file: '/tmp/claude/.../abc123.output', started: '...' },
          'shepherd-2': { status: 'errored', issue: 4, task_id: 'def4567', started: '2026-05-30T10:00:00Z', last_phase: 'judge' },
          'shepherd-3': { status: 'paused', issue: 5, task_id: 'aa11bb2', started: 'unknown' },
        },
        support_roles: { guide: { status: 'running', task_id: 'jkl012', started: '...' } },
      }),
    );
    const before = fingerprint(repo.paths.dir);
    const r = loom(repo.root, ['status']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).not.toMatch(/NaN/);
    expect(r.stdout).toMatch(/shepherd-1: Issue #3 \(.*running time unknown/);
    expect(r.stdout).toMatch(/shepherd-2: errored on issue #4/);
    expect(r.stdout).toMatch(/shepherd-3: paused on issue #5/);
    const json = JSON.parse(loom(repo.root, ['status', '--json']).stdout) as { shepherds: { slots: { name: string; status: string; issue: number | null; running_ms: number | null }[] } };
    expect(json.shepherds.slots).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ name: 'shepherd-1', status: 'working', issue: 3, running_ms: null }),
        expect.objectContaining({ name: 'shepherd-2', status: 'errored', issue: 4 }),
        expect.objectContaining({ name: 'shepherd-3', status: 'paused', issue: 5, running_ms: null }),
      ]),
    );
    expect(fingerprint(repo.paths.dir)).toEqual(before);
  });

  it('a progress file of the Python daemon is not a dead shepherd: three iterations do not block its issue, and the file is left alone', async () => {
    repo = makeRepo({});
    const tracker = repo.tracker();
    await tracker.createIssue({ title: 'claimed by the original', labels: [Label.building] });
    const original = path.join(repo.paths.progress, 'shepherd-4821937.json');
    const text = `${JSON.stringify({ task_id: '4821937', issue: 1, mode: 'default', started_at: '2026-06-01T09:00:00Z', current_phase: 'builder', last_heartbeat: '2026-06-01T09:05:00Z', status: 'working', milestones: [{ event: 'started', timestamp: '2026-06-01T09:00:00Z', data: {} }] }, null, 2)}\n`;
    fs.writeFileSync(original, text);
    for (let i = 0; i < 3; i++) {
      const r = loom(repo.root, ['iterate']);
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(r.stdout).not.toMatch(/died=#1|blocked=#1/);
    }
    // No live owner: returned to the queue once, as any orphan; never blocked.
    expect((await tracker.getIssue(1))!.labels).toEqual([Label.issue]);
    expect(fs.readFileSync(original, 'utf8')).toBe(text);
    const status = loom(repo.root, ['status']);
    expect(status.stdout).toMatch(/Progress files of the original Loom .*shepherd-4821937\.json \(#1, working\)/);
    expect(status.stdout).not.toMatch(/\(manual\) Issue #1/);
  });
});
