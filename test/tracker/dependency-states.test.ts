// Reading dependency states from a real (local, SQLite) tracker and from the GitHub fake (its own
// issue dependencies and sub-issues), and GitHub's close reason.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Label } from '../../src/core/labels.js';
import { readDependencies } from '../../src/tracker/dependency-states.js';
import { toIssue } from '../../src/tracker/github/github-wire.js';
import { LOCAL_TRACKER_FILE } from '../../src/tracker/local/local-database.js';
import { LocalTracker } from '../../src/tracker/local/local-tracker.js';
import { GitHubTracker } from '../../src/tracker/github/github-tracker.js';
import { FakeGitHubServer } from '../fakes/github-server.js';

describe('readDependencies', () => {
  it('reads open, closed and missing dependencies, and follows open ones outside the list (for cycles)', async () => {
    const tracker = new LocalTracker({ path: path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'loom-deps-')), LOCAL_TRACKER_FILE) });
    try {
      const a = await tracker.createIssue({ title: 'a', body: 'Depends on #2, #3\nBlocked by #99', labels: [Label.issue] });
      await tracker.createIssue({ title: 'b (not labelled, open)', body: 'Depends on #1' });
      await tracker.createIssue({ title: 'c', body: '' });
      await tracker.close(3);
      const map = await readDependencies(tracker, [a]);
      expect(map).toEqual({
        '1': [{ number: 2, state: 'open' }, { number: 3, state: 'done' }, { number: 99, state: 'missing' }],
        '2': [{ number: 1, state: 'open' }],
      });
    } finally {
      tracker.dispose();
    }
  });
});

describe('readDependencies: which issues were read in full', () => {
  it('an issue with no dependency, or all read, is complete; one whose dependency read failed (guessed open) is not', async () => {
    const tracker = new LocalTracker({ path: path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'loom-deps-')), LOCAL_TRACKER_FILE) });
    try {
      const none = await tracker.createIssue({ title: 'no dependency', labels: [Label.issue] });
      const done = await tracker.createIssue({ title: 'done' });
      await tracker.close(done.number);
      const fine = await tracker.createIssue({ title: 'waits on a closed one', body: `Depends on #${done.number}`, labels: [Label.issue] });
      const flaky = await tracker.createIssue({ title: 'unreadable' });
      const guessed = await tracker.createIssue({ title: 'waits on an unreadable one', body: `Depends on #${flaky.number}`, labels: [Label.issue] });
      // The tracker fails to read one issue, as a GitHub answering 502 would.
      const failing = Object.create(tracker) as LocalTracker;
      failing.getIssue = async (n: number) => {
        if (n === flaky.number) throw new Error('502');
        return tracker.getIssue(n);
      };
      const complete = new Set<number>();
      const map = await readDependencies(failing, [none, fine, guessed], complete);
      expect(map[String(guessed.number)]).toEqual([{ number: flaky.number, state: 'open' }]);
      expect([...complete].sort((a, b) => a - b)).toEqual([none.number, fine.number]);
    } finally {
      tracker.dispose();
    }
  });
});

describe('readDependencies with many ready issues', () => {
  it('reads a dependency outside the list even after more ready issues than the lookup budget (link reads have their own)', async () => {
    const tracker = new LocalTracker({ path: path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'loom-deps-')), LOCAL_TRACKER_FILE) });
    try {
      const ready = [];
      for (let i = 0; i < 60; i += 1) ready.push(await tracker.createIssue({ title: `ready ${i}`, labels: [Label.issue] }));
      const done = await tracker.createIssue({ title: 'done, not in the list' });
      await tracker.close(done.number);
      ready.push(await tracker.createIssue({ title: 'last', body: `Depends on #${done.number}`, labels: [Label.issue] }));
      const map = await readDependencies(tracker, ready);
      expect(map).toEqual({ [String(ready.at(-1)!.number)]: [{ number: done.number, state: 'done' }] });
    } finally {
      tracker.dispose();
    }
  });
});

describe("GitHub's close reason", () => {
  it('not_planned and duplicate read as not planned, completed as completed; open issues have none', () => {
    const base = { number: 1, title: 't', body: '', labels: [], user: { login: 'a' }, created_at: '2026-01-01T00:00:00Z', updated_at: '2026-01-01T00:00:00Z' };
    expect(toIssue({ ...base, state: 'closed', state_reason: 'not_planned' }).closedAs).toBe('not-planned');
    expect(toIssue({ ...base, state: 'closed', state_reason: 'duplicate' }).closedAs).toBe('not-planned');
    expect(toIssue({ ...base, state: 'closed', state_reason: 'completed' }).closedAs).toBe('completed');
    expect(toIssue({ ...base, state: 'open', state_reason: 'reopened' }).closedAs).toBeUndefined();
  });
});

describe("GitHub's own issue dependencies and sub-issues", () => {
  it('are read for ready issues only, with conditional requests, and none for an issue whose summaries say it has no links', async () => {
    const server = await FakeGitHubServer.start();
    const tracker = new GitHubTracker({ owner: server.owner, repo: server.repo, token: 'test-token', baseUrl: server.url, retryDelayMs: 1 });
    try {
      const [blocked, blocker, dropped, parent, child, cut, plain, building] = server.seedIssues(8);
      for (const n of [blocked, parent, plain]) server.applyLabel(n!, Label.issue, server.owner);
      server.applyLabel(building!, Label.building, server.owner);
      server.addBlockedBy(blocked!, blocker!);
      server.addBlockedBy(blocked!, dropped!);
      server.closeAs(dropped!, 'not_planned', server.owner);
      server.addSubIssue(parent!, child!);
      server.addSubIssue(parent!, cut!);
      server.closeAs(cut!, 'not_planned', server.owner);
      server.addBlockedBy(building!, blocker!);

      const read = async () => readDependencies(tracker, (await tracker.snapshot()).issues);
      const map = await read();
      expect(map).toEqual({
        [String(blocked)]: [
          { number: blocker, state: 'open', via: 'blocked-by' },
          { number: dropped, state: 'not-planned', via: 'blocked-by' },
        ],
        // A sub-issue closed as not planned was cut from the parent's scope: done, not reported.
        [String(parent)]: [
          { number: child, state: 'open', via: 'sub-issue' },
          { number: cut, state: 'done', via: 'sub-issue' },
        ],
      });
      const linkRequests = () => server.requests.filter((r) => /\/(dependencies\/blocked_by|sub_issues)/.test(r.path));
      // Ready issues with links: one request per kind they have; none for the plain issue, none for one being built.
      expect(linkRequests().map((r) => r.path.replace(/\?.*/, '').replace(/.*\/issues\//, ''))).toEqual([`${blocked}/dependencies/blocked_by`, `${parent}/sub_issues`]);
      expect(linkRequests().every((r) => r.status === 200)).toBe(true);

      // The next read asks again, conditionally: nothing changed, so 304s that cost no rate limit.
      const before = linkRequests().length;
      const remaining = server.remaining;
      expect(await read()).toEqual(map);
      const again = linkRequests().slice(before);
      expect(again.map((r) => [r.status, r.conditional])).toEqual([
        [304, true],
        [304, true],
      ]);
      expect(server.remaining).toBeGreaterThanOrEqual(remaining - 1); // the snapshot's own probe at most
    } finally {
      tracker.dispose();
      await server.close();
    }
  });
});
