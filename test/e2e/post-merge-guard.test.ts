// The post-merge guard on the local tracker, in a real repository: after a merge the base's
// testCommand runs on the new base; red → a revert commit on main, the issue reopened as
// loom:blocked with the failure quoted, merging paused while main stays red (shown by `loom
// status` and `loom why`), resumed once main is green again; one merge is never reverted twice.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Label } from '../../src/core/labels.js';
import { BaseGuardStore } from '../../src/state/base-guard-store.js';
import { MergeQueue } from '../../src/process/merge-queue.js';
import { EventLog } from '../../src/process/event-log.js';
import type { TestRepo } from '../helpers/loom-repo.js';
import { loom, makeRepo } from '../helpers/loom-repo.js';

let repo: TestRepo | undefined;
const dirs: string[] = [];
afterEach(() => {
  repo?.cleanup();
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

const fence = '```';
const git = (cwd: string, ...args: string[]) => spawnSync('git', ['-c', 'user.name=Someone', '-c', 'user.email=someone@localhost', ...args], { cwd, encoding: 'utf8' }).stdout.trim();
const script = (role: string, body: string) => `${fence}loom-script ${role}\n${body}\n${fence}`;
/** A directory outside the repository standing for the environment the tests run in. */
function environment(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'loom-env-'));
  dirs.push(dir);
  return dir;
}

describe('post-merge guard (local tracker)', () => {
  it('a merge that turns main red is reverted by a commit on main, the issue reopened as loom:blocked quoting the failure; main is green again, so merging goes on', async () => {
    const env = environment();
    const flag = path.join(env, 'feature-broken');
    // feature.txt works until the environment changes (an upstream release, say): only main's own run sees it.
    repo = makeRepo({ runtime: 'script', testCommand: `test ! -e feature.txt || { echo "feature.txt: upstream API changed"; test ! -e '${flag}'; }`, heartbeatInterval: '0.2s' });
    const tracker = repo.tracker();
    await tracker.createIssue({ title: 'Add the feature', body: script('builder', 'write feature.txt <<EOF\nfeature\nEOF'), labels: [Label.issue] });
    expect(loom(repo.root, ['shepherd', '1']).code).toBe(0);
    fs.writeFileSync(flag, '');

    const champion = loom(repo.root, ['role', 'champion']);

    expect(champion.code, champion.stdout + champion.stderr).toBe(0);
    expect(champion.stdout).toMatch(/merged #2; post-merge guard: PR #2 turned main red; reverted in commit [0-9a-f]{12}; issue #1 reopened as loom:blocked; main is green again/);
    expect(git(repo.root, 'log', '--first-parent', '--format=%s', 'main').split('\n').slice(0, 2)).toEqual(['Revert "Merge #1: Add the feature (PR #2)"', 'Merge #1: Add the feature (PR #2)']);
    expect(fs.existsSync(path.join(repo.root, 'feature.txt'))).toBe(false);
    const issue = await tracker.getIssue(1);
    expect(issue?.state).toBe('open');
    expect(issue?.labels).toEqual([Label.blocked]);
    const comment = (await tracker.listComments(1)).at(-1)?.body ?? '';
    expect(comment).toMatch(/^Loom: `main` went red after PR #2 was merged \([0-9a-f]{12}\) and Loom reverted it in commit [0-9a-f]{12}; .*marking this issue `loom:blocked`/);
    expect(comment).toContain('feature.txt: upstream API changed');
    const state = new BaseGuardStore(repo.paths.baseGuard).read();
    expect(state).toMatchObject({ verifying: null, paused: null, last: { result: 'red', pr: 2 } });
    expect(state.reverted).toHaveLength(1);
    expect(loom(repo.root, ['why', '1']).stdout).toMatch(/#1 is blocked \(loom:blocked\): `main` went red after PR #2/);
    // No guard worktree left behind.
    expect(fs.existsSync(path.join(repo.paths.worktrees, 'base-guard'))).toBe(false);
    // One guard event in the log (what the notifier sends on): the issue, the PR and the revert.
    const guardEvents = new EventLog(repo.paths.events).readAll().events.filter((e) => e.type === 'guard.reverted');
    expect(guardEvents).toHaveLength(1);
    expect(guardEvents[0]).toMatchObject({ issue: 1, pr: 2, paused: false, revert: expect.stringMatching(/^commit [0-9a-f]{12}$/) as unknown });
  });

  it('main still red after the revert: merging pauses (status and why say so), then resumes once a fix makes main green', async () => {
    const env = environment();
    const flag = path.join(env, 'ci-broken');
    repo = makeRepo({ runtime: 'script', testCommand: `if [ -e '${flag}' ]; then echo 'the toolchain is broken'; exit 1; fi`, heartbeatInterval: '0.2s' });
    const tracker = repo.tracker();
    await tracker.createIssue({ title: 'One', body: script('builder', 'write one.txt <<EOF\none\nEOF'), labels: [Label.issue] });
    await tracker.createIssue({ title: 'Two', body: script('builder', 'write two.txt <<EOF\ntwo\nEOF'), labels: [Label.issue] });
    expect(loom(repo.root, ['shepherd', '1']).code).toBe(0);
    expect(loom(repo.root, ['shepherd', '2']).code).toBe(0);
    const prs = await tracker.listPullRequests();
    const [first, second] = prs;
    expect(prs.map((p) => p.labels)).toEqual([[Label.pr], [Label.pr]]);
    fs.writeFileSync(flag, '');

    const champion = loom(repo.root, ['role', 'champion']);
    expect(champion.stdout, champion.stdout + champion.stderr).toMatch(new RegExp(`merged #${first!.number}; post-merge guard: PR #${first!.number} turned main red; reverted in commit [0-9a-f]{12}; issue #1 reopened as loom:blocked; merging paused`));
    expect((await tracker.getPullRequest(second!.number))?.state).toBe('open');
    const status = loom(repo.root, ['status']);
    expect(status.stdout).toMatch(new RegExp(`PAUSED since .*: merging is paused: main went red after PR #${first!.number} \\(issue #1, reverted in commit [0-9a-f]{12}\\)`));
    expect(status.stdout).toMatch(/Merging is paused: the base went red after PR #\d+ \(issue #1\)/);
    expect(loom(repo.root, ['why', '2']).stdout).toMatch(/is in review: PR #\d+ is approved \(loom:pr\); the Champion merges it; waiting: base green — merging is paused/);

    // Still red, same head: nothing merges, nothing is reverted again.
    const again = loom(repo.root, ['role', 'champion']);
    expect(again.stdout).toMatch(new RegExp(`merged nothing; skipped #${second!.number} \\(paused\\); merging is paused`));
    expect(new BaseGuardStore(repo.paths.baseGuard).read().reverted).toHaveLength(1);

    // Someone fixes the toolchain and commits to main: the next attempt verifies the new head, resumes, merges.
    fs.rmSync(flag);
    fs.writeFileSync(path.join(repo.root, 'FIX.md'), 'fixed\n');
    git(repo.root, 'add', 'FIX.md');
    git(repo.root, 'commit', '-qm', 'fix the toolchain');
    const resumed = loom(repo.root, ['role', 'champion']);
    expect(resumed.stdout, resumed.stdout + resumed.stderr).toMatch(new RegExp(`merged #${second!.number}`));
    expect(resumed.stdout).toMatch(/main is green again at [0-9a-f]{12}; merging resumed/);
    expect(git(repo.root, 'log', '--first-parent', '--format=%s', 'main').split('\n')[0]).toBe('Merge #2: Two (PR #' + String(second!.number) + ')');
    const state = new BaseGuardStore(repo.paths.baseGuard).read();
    expect(state.paused).toBeNull();
    expect(state.last).toMatchObject({ result: 'green', pr: second!.number });
    expect(loom(repo.root, ['status']).stdout).not.toMatch(/PAUSED/);
  });

  it('loom status and loom why show the merge queue: who holds the lock and what it waits on, who waits behind it, in order', async () => {
    repo = makeRepo({ runtime: 'script', heartbeatInterval: '0.2s' });
    const tracker = repo.tracker();
    await tracker.createIssue({ title: 'One', body: script('builder', 'write one.txt <<EOF\none\nEOF'), labels: [Label.issue] });
    await tracker.createIssue({ title: 'Two', body: script('builder', 'write two.txt <<EOF\ntwo\nEOF'), labels: [Label.issue] });
    expect(loom(repo.root, ['shepherd', '1']).code).toBe(0);
    expect(loom(repo.root, ['shepherd', '2']).code).toBe(0);
    const [first, second] = await tracker.listPullRequests();
    // Two mergers of this (live) process: the first holds the lock and waits on checks, the second waits for the lock.
    const queue = new MergeQueue(repo.paths.mergeQueue);
    const holder = queue.join({ pr: first!.number, issue: 1, by: 'shepherd' });
    queue.update(holder, 'waiting on checks', 'unit');
    queue.join({ pr: second!.number, issue: 2, by: 'champion' });

    const status = loom(repo.root, ['status']);
    expect(status.stdout).toContain(`Queue for the merge lock: 1. PR #${first!.number} (issue #1, shepherd) waiting on checks: unit; 2. PR #${second!.number} (issue #2, champion) waiting`);
    const why = loom(repo.root, ['why', '2']).stdout;
    expect(why).toMatch(new RegExp(`waiting: merge queue — position 2 of 2: behind PR #${first!.number} \\(waiting on checks: unit\\)`));
    expect(loom(repo.root, ['why', '1']).stdout).toMatch(/✗ CI checks\s+waiting on unit/);
  });
});
