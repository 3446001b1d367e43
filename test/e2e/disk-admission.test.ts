// Disk-aware admission with real processes: with free space below a (test-set) minFreeDisk no
// shepherd starts and `loom iterate`, `loom why` and `loom status` say so; lowering it resumes.
import fs from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { Label } from '../../src/core/labels.js';
import type { TestRepo } from '../helpers/loom-repo.js';
import { loom, makeRepo, until } from '../helpers/loom-repo.js';

let repo: TestRepo | undefined;
afterEach(() => repo?.cleanup());

describe('disk-aware admission', () => {
  it('stops at the threshold and resumes when it is lowered', async () => {
    // More free space than any test machine has: admission stops.
    repo = makeRepo({ minFreeDisk: '1000000TB', roles: { builder: { command: 'echo "NO CHANGES NEEDED: nothing to do"' } } });
    const tracker = repo.tracker();
    await tracker.createIssue({ title: 'waits for space', labels: [Label.issue] });

    const first = loom(repo.root, ['iterate']);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toMatch(/^ready=1 building=0 shepherds=0\/3 .*low-disk=\d/m);
    expect(first.stdout).not.toMatch(/\+shepherd/);
    expect((await tracker.getIssue(1))!.labels).toEqual([Label.issue]);
    expect(loom(repo.root, ['why', '1']).stdout).toMatch(/✗ disk space\s+\S+ \w?B free, below minFreeDisk \(1000000 TB\): no new worktree starts/);
    const status = JSON.parse(loom(repo.root, ['status', '--json']).stdout);
    expect(status.disk).toMatchObject({ min_free_bytes: 1e18, low: true });
    expect(loom(repo.root, ['status']).stdout).toMatch(/Disk: .* free, below minFreeDisk \(1000000 TB\): no new worktree starts/);

    // Nor does a person's `loom spawn` (or the dashboard's spawn, which runs it): refused in one
    // line, exit 2, nothing changed.
    const spawn = loom(repo.root, ['spawn', '1']);
    expect(spawn.code).toBe(2);
    expect(spawn.stdout).toBe('');
    expect(spawn.stderr).toMatch(/^loom: no new worktree: \S+ \w?B free, below minFreeDisk \(1000000 TB\); free some space .* or lower minFreeDisk in \.loom\/config\.json\n$/);
    expect((await tracker.getIssue(1))!.labels).toEqual([Label.issue]);
    expect(fs.readdirSync(repo.paths.progress)).toEqual([]);

    // The environment overrides the file: a threshold the machine meets lets the issue start.
    const env = { LOOM_MIN_FREE_DISK: '1MB' };
    const second = loom(repo.root, ['iterate'], env);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toMatch(/\+shepherd=#1/);
    expect(second.stdout).not.toMatch(/low-disk/);
    await until(async () => (await tracker.getIssue(1))!.state === 'closed', 30_000, 'the issue built');
  });
});
