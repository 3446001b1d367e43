// `loom worker` in a clone whose `origin` is missing or unreachable: every job's shepherd fetches
// and pushes there, so such a worker would take jobs only to fail them. It refuses in one line.
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { until } from '../helpers/loom-repo.js';
import { Fleet, git } from './fleet.js';

let fleet: Fleet | undefined;
afterEach(async () => {
  await fleet?.close();
  fleet = undefined;
});

async function exitOf(worker: { exited: Promise<number | null> }): Promise<unknown> {
  return Promise.race([worker.exited, until(() => false, 30_000, 'the worker to exit').catch(() => 'still running')]);
}

describe('loom worker and origin', () => {
  it('a clone without an origin remote, and one whose origin is unreachable: one line each, exit 2', async () => {
    fleet = await Fleet.create();
    const f = fleet;
    const none = path.join(f.base, 'w-none');
    git(f.base, 'clone', '-q', f.bare, none);
    git(none, 'remote', 'remove', 'origin');
    const first = f.startWorker('w-none', 1);
    expect(await exitOf(first), first.output()).toBe(2);
    expect(first.output().trim().split('\n'), first.output()).toEqual([expect.stringMatching(/^loom: this clone has no `origin` remote; a worker fetches and pushes the issue branches there: git remote add origin <the repository's URL>$/)]);

    const gone = path.join(f.base, 'w-gone');
    git(f.base, 'clone', '-q', f.bare, gone);
    git(gone, 'remote', 'set-url', 'origin', path.join(f.base, 'no-such-repo.git'));
    const second = f.startWorker('w-gone', 1);
    expect(await exitOf(second), second.output()).toBe(2);
    expect(second.output().trim().split('\n'), second.output()).toEqual([expect.stringMatching(/^loom: origin \(.*no-such-repo\.git\) is unreachable: .+; a worker fetches and pushes the issue branches there$/)]);
  }, 90_000);
});
