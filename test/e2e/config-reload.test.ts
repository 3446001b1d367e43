// A config.json edited into an invalid state while the daemon runs: the daemon keeps reconciling
// on its last good configuration, says so once, shows it in `loom status`, and applies the fixed
// file at the next iteration.
import fs from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { Label } from '../../src/core/labels.js';
import type { TestRepo } from '../helpers/loom-repo.js';
import { loom, makeRepo, startDaemon, until } from '../helpers/loom-repo.js';

let repo: TestRepo | undefined;
afterEach(() => repo?.cleanup());

describe('last good configuration', () => {
  it('an invalid config.json does not stop the daemon: issues still get built, the problem is logged once and shown by status', async () => {
    const good = { maxShepherds: 3, pollInterval: '0.5s', heartbeatInterval: '0.2s', roles: { builder: { command: 'echo built > "built-$LOOM_ISSUE.txt"' }, judge: { command: 'echo "VERDICT: APPROVE"' } } };
    repo = makeRepo(good);
    const tracker = repo.tracker();
    const daemon = startDaemon(repo.root, ['start', '--force']);
    await until(() => JSON.parse(loom(repo!.root, ['status', '--json']).stdout).daemon.status === 'running', 15_000, 'the daemon running');

    fs.writeFileSync(repo.paths.config, JSON.stringify({ ...good, maxShepherds: 'lots' }));
    await tracker.createIssue({ title: 'built while the config is broken', labels: [Label.issue] });
    await until(async () => (await tracker.getIssue(1))?.state === 'closed', 30_000, '#1 closed');
    expect((await tracker.listPullRequests({ state: 'merged' })).map((pr) => pr.closesIssue)).toEqual([1]);
    // Several iterations ran on the broken file; the warning is there once.
    await until(() => (daemon.output().match(/^.*Iteration \d+: ready=/gm) ?? []).length >= 3, 15_000, 'three iterations');
    const warnings = daemon.output().match(/warning: .*maxShepherds: must be a whole number.*last good configuration/g) ?? [];
    expect(warnings, daemon.output()).toHaveLength(1);
    expect(daemon.output()).not.toMatch(/Iteration \d+: failed/);

    const status = JSON.parse(loom(repo.root, ['status', '--json']).stdout);
    expect(status.problems.join('\n')).toMatch(/config: .*maxShepherds: must be a whole number.*last good configuration/);

    // The fixed file applies at the next iteration.
    fs.writeFileSync(repo.paths.config, JSON.stringify({ ...good, maxShepherds: 2 }));
    await until(() => /configuration is valid again/.test(daemon.output()) && /shepherds=\d+\/2/.test(daemon.output()), 15_000, `the fixed config applied; output:\n${daemon.output()}`);

    expect(loom(repo.root, ['stop']).code).toBe(0);
    expect(await daemon.exited(30_000)).toBe(0);
  });

  it('outside a daemon an invalid config.json is still refused with exit 2, even when a last good one exists', () => {
    repo = makeRepo({ maxShepherds: 2 });
    fs.writeFileSync(repo.paths.lastGoodConfig, fs.readFileSync(repo.paths.config));
    fs.writeFileSync(repo.paths.config, JSON.stringify({ maxShepherds: 'lots' }));
    const r = loom(repo.root, ['iterate']);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/maxShepherds: must be a whole number/);
  });
});
