// Run logs (`.loom/logs/<kind>-<name>-<time>.log`) past `logRetention` (30 days) are removed by
// the iterations' cleanup, looked for at most once an hour; the daemon's own log, the shepherd
// host's and a log still written to are kept; `logRetention: 0` keeps every log.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { logFileFor } from '../../src/process/launcher.js';
import type { TestRepo } from '../helpers/loom-repo.js';
import { loom, makeRepo } from '../helpers/loom-repo.js';

let repo: TestRepo | undefined;
afterEach(() => repo?.cleanup());

const DAY = 24 * 60 * 60_000;

/** A run log as launcher.ts names it, started `daysAgo` days ago and last written `writtenDaysAgo` days ago. */
function runLog(kind: string, name: string, daysAgo: number, writtenDaysAgo = daysAgo): string {
  const file = logFileFor(repo!.paths.logs, kind, name, new Date(Date.now() - daysAgo * DAY));
  fs.writeFileSync(file, `${kind} ${name}\n`);
  const at = new Date(Date.now() - writtenDaysAgo * DAY);
  fs.utimesSync(file, at, at);
  return path.basename(file);
}

const logs = () => fs.readdirSync(repo!.paths.logs).filter((name) => name !== '.pruned').sort();

describe('run log retention', () => {
  it('removes run logs older than logRetention once an hour, and keeps the daemon log, the host log and logs still written to', () => {
    repo = makeRepo();
    const old = [runLog('shepherd', 'issue-1', 45), runLog('role', 'judge', 31), runLog('dashboard', 'server', 40)];
    const kept = [runLog('shepherd', 'issue-2', 29), runLog('role', 'guide', 1), runLog('dashboard', 'server', 60, 0)];
    for (const name of ['daemon.log', 'daemon.log.1', 'shepherd-host.log']) {
      fs.writeFileSync(path.join(repo.paths.logs, name), 'x\n');
      const at = new Date(Date.now() - 90 * DAY);
      fs.utimesSync(path.join(repo.paths.logs, name), at, at);
    }
    const before = logs();
    expect(before).toEqual(expect.arrayContaining([...old, ...kept]));

    const r = loom(repo.root, ['iterate']);
    expect(r.code, r.stderr).toBe(0);
    expect(logs()).toEqual(before.filter((name) => !old.includes(name)));

    // Within the hour the logs are not looked at again.
    const later = runLog('shepherd', 'issue-3', 50);
    expect(loom(repo.root, ['iterate']).code).toBe(0);
    expect(logs()).toContain(later);
    // An hour on, they are.
    const hourAgo = new Date(Date.now() - 61 * 60_000);
    fs.utimesSync(path.join(repo.paths.logs, '.pruned'), hourAgo, hourAgo);
    expect(loom(repo.root, ['iterate']).code).toBe(0);
    expect(logs()).not.toContain(later);
    expect(logs()).toEqual(expect.arrayContaining([...kept, 'daemon.log', 'daemon.log.1', 'shepherd-host.log']));
  });

  it('keeps every log with logRetention 0; a bad value is refused in one line, exit 2, changing nothing', () => {
    repo = makeRepo({ logRetention: 0 });
    const old = runLog('shepherd', 'issue-1', 400);
    expect(loom(repo.root, ['iterate']).code).toBe(0);
    expect(logs()).toContain(old);

    repo.writeConfig({ logRetention: 'a month' });
    const bad = loom(repo.root, ['iterate']);
    expect(bad.code).toBe(2);
    expect(bad.stderr.trim().split('\n')).toEqual([expect.stringMatching(/logRetention: must be/)]);
    expect(logs()).toContain(old);
  });
});
