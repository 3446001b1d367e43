/**
 * GitHubTracker: the shared Tracker contract against a GitHub-shaped fake server, plus what only
 * GitHub has to prove — pagination, free idle polls (304), the claim race over HTTP, rate-limit
 * circuit breaking, retries and typed errors, merging, the trust rule and idempotent label setup.
 */

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LoomError } from '../../../src/core/errors.js';
import { LABEL_INFO } from '../../../src/core/labels.js';
import { GitHubTracker, type GitHubTrackerOptions } from '../../../src/tracker/github/github-tracker.js';
import { githubToken } from '../../../src/tracker/github/github-token.js';
import { MergeRejectedError, RateLimitedError, TrackerAuthError, TrackerUnavailableError } from '../../../src/tracker/tracker-errors.js';
import { FakeGitHubServer, type FakeGitHubOptions } from '../../fakes/github-server.js';
import { describeTrackerContract } from '../tracker-contract.js';

describeTrackerContract('GitHubTracker', async () => {
  const server = await FakeGitHubServer.start();
  const tracker = new GitHubTracker({ owner: server.owner, repo: server.repo, token: 'test-token', baseUrl: server.url });
  return { tracker, cleanup: () => server.close() };
});

const servers: FakeGitHubServer[] = [];
const trackers: GitHubTracker[] = [];
const dirs: string[] = [];

afterEach(async () => {
  for (const t of trackers.splice(0)) t.dispose();
  for (const s of servers.splice(0)) await s.close();
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

async function start(options: FakeGitHubOptions = {}): Promise<FakeGitHubServer> {
  const server = await FakeGitHubServer.start(options);
  servers.push(server);
  return server;
}

/** `github-cache.json` in a fresh directory (removed after the test). */
function tempCacheFile(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  dirs.push(dir);
  return path.join(dir, 'github-cache.json');
}

function connect(server: FakeGitHubServer, options: Partial<GitHubTrackerOptions> = {}): GitHubTracker {
  const tracker = new GitHubTracker({
    owner: server.owner,
    repo: server.repo,
    token: 'test-token',
    baseUrl: server.url,
    retryDelayMs: 1,
    ...options,
  });
  trackers.push(tracker);
  return tracker;
}

describe('GitHubTracker on GitHub', () => {
  it('follows link pagination over more than 100 issues', async () => {
    const server = await start();
    server.seedIssues(130, ['loom:issue']);
    server.seedIssues(120, ['bug']);
    const tracker = connect(server);

    const snapshot = await tracker.snapshot();
    expect(snapshot.issues).toHaveLength(130);
    expect(snapshot.issues.map((i) => i.number)).toEqual(Array.from({ length: 130 }, (_, i) => i + 1));
    const lists = server.requests.filter((r) => r.method === 'GET' && /\/issues\?|\/repositories\/\d+\/issues/.test(r.path));
    // First the change probe (one page of the most recently updated, open or closed), then the listing.
    expect(lists[0]!.path).toMatch(/state=all&sort=updated&direction=desc/);
    const pages = lists.slice(1);
    expect(pages).toHaveLength(3);
    expect(pages[0]!.path).toContain('per_page=100');
    // The later pages are fetched from GitHub's own `link` URLs.
    expect(pages[1]!.path).toMatch(/^\/repositories\/1000\/issues\?.*page=2/);
    expect((await tracker.listIssues({ labels: ['bug'] })).length).toBe(120);
  });

  it('skips a malformed record (labels: null) with a warning instead of failing the whole snapshot', async () => {
    const server = await start();
    server.seedIssues(3, ['loom:issue']);
    server.malformed.add(2);
    const snapshot = await connect(server).snapshot();
    expect(snapshot.issues.map((i) => i.number)).toEqual([1, 3]);
    expect(snapshot.warnings).toEqual(['GitHub returned a malformed record for #2; skipped it this time']);
  });

  it("compares Loom's labels case-insensitively, as GitHub does: LOOM:Issue is loom:issue", async () => {
    const server = await start();
    const [n] = server.seedIssues(1, ['LOOM:Issue', 'Bug']);
    const tracker = connect(server);
    const snapshot = await tracker.snapshot();
    expect(snapshot.issues.map((i) => [i.number, i.labels])).toEqual([[n, ['Bug', 'loom:issue']]]);
    expect(await tracker.claim(n!)).toBe(true);
  });

  it("claims right after the trust check without reading the issue (its timeline says open and loom:issue); a timeline that says otherwise is read as before and nothing changes", async () => {
    const server = await start();
    const tracker = connect(server, { trust: { allow: ['loom-bot'] } });
    const ready = await tracker.createIssue({ title: 'ready', labels: ['loom:issue'] });
    expect(await tracker.isTrusted(ready.number)).toBe(true);
    const sent = server.requests.length;
    expect(await tracker.claim(ready.number)).toBe(true);
    const issuePath = `/repos/${server.owner}/${server.repo}/issues/${ready.number}`;
    const onIssue = server.requests.slice(sent).filter((r) => r.path.startsWith(issuePath));
    // GitHub answered the removal 200 (a concurrent one is answered 404): the claim is ours, no timeline read to verify it.
    expect(onIssue.map((r) => `${r.method} ${r.path.replace(/\?.*/, '').slice(issuePath.length) || '/'}`)).toEqual(['DELETE /labels/loom%3Aissue', 'POST /labels']);
    expect((await tracker.getIssue(ready.number))?.labels).toEqual(['loom:building']);

    // Closed (then labelled loom:issue again by hand): the timeline says closed, so the issue is read, and nothing is written.
    const closed = await tracker.createIssue({ title: 'closed', labels: ['loom:issue'] });
    await tracker.close(closed.number);
    await tracker.updateLabels(closed.number, { add: ['loom:issue'] });
    expect(await tracker.isTrusted(closed.number)).toBe(true);
    const events = await tracker.listEvents(closed.number);
    expect(await tracker.claim(closed.number)).toBe(false);
    expect(await tracker.listEvents(closed.number)).toEqual(events);
    expect(await tracker.getIssue(closed.number)).toMatchObject({ state: 'closed', labels: ['loom:issue'] });
  });

  it('makes an idle second snapshot with one conditional request, answered 304 at no rate-limit cost', async () => {
    let clock = Date.parse('2026-01-05T10:00:00Z');
    const server = await start({ now: () => clock });
    server.seedIssues(150, ['loom:issue']);
    const tracker = connect(server);
    await tracker.createPullRequest({ title: 'pr', head: 'loom/x', base: 'main', labels: ['loom:review-requested'] });

    const first = await tracker.snapshot();
    expect(first.pullRequests.map((p) => p.head)).toEqual(['loom/x']);
    const remaining = server.remaining;
    const used = server.requests.length;
    const hits = tracker.conditionalHits;

    const second = await tracker.snapshot();
    expect(second).toEqual(first);
    const idle = server.requests.slice(used);
    // The change probe alone: 150 open issues are two pages, read from the cache the first snapshot left.
    expect(idle).toHaveLength(1);
    expect(idle.every((r) => r.conditional && r.status === 304)).toBe(true);
    expect(server.remaining).toBe(remaining);
    expect(tracker.conditionalHits - hits).toBe(idle.length);
    expect(tracker.rateLimit()).toMatchObject({ remaining, limit: 5000 });

    // A change is seen on the next poll.
    clock += 1_000;
    server.applyLabel(3, 'loom:urgent', 'someone');
    const third = await tracker.snapshot();
    expect(third.issues.find((i) => i.number === 3)?.labels).toEqual(['loom:issue', 'loom:urgent']);
  });

  it('reads the listing again every 10 minutes: a change the probe cannot show is seen by then', async () => {
    // 150 issues created and one relabelled within the same second: with one-second timestamps
    // the relabelled issue stays out of the probe's 100 most recent, so the probe answers 304.
    const server = await start({ now: () => Date.parse('2026-01-05T10:00:00Z') });
    server.seedIssues(150, ['loom:issue']);
    let clock = Date.parse('2026-01-05T10:00:00Z');
    const tracker = connect(server, { now: () => clock });
    await tracker.snapshot();
    server.applyLabel(3, 'loom:urgent', 'someone');
    const hidden = await tracker.snapshot();
    expect(hidden.issues.find((i) => i.number === 3)?.labels).toEqual(['loom:issue']);
    clock += 10 * 60_000;
    const used = server.requests.length;
    const later = await tracker.snapshot();
    expect(later.issues.find((i) => i.number === 3)?.labels).toEqual(['loom:issue', 'loom:urgent']);
    // Still conditional: the unchanged page is a 304.
    expect(server.requests.slice(used).some((r) => r.conditional && r.status === 304)).toBe(true);
  });

  it('costs one conditional request per idle poll (per 100 open issues), loom PRs included', async () => {
    const server = await start();
    server.seedIssues(5, ['loom:issue']);
    const tracker = connect(server);
    await tracker.createPullRequest({ title: 'pr', head: 'loom/y', base: 'main', labels: ['loom:pr'] });
    await tracker.snapshot();
    const used = server.requests.length;
    await tracker.snapshot();
    expect(server.requests.slice(used)).toEqual([expect.objectContaining({ method: 'GET', status: 304, conditional: true })]);
  });

  it("a PR's labels changed within the second of the last snapshot are seen by the next one, in this process and the next", async () => {
    // GitHub's updated_at has one-second resolution: a relabel in the same second as the snapshot
    // that kept the pull leaves updated_at as it was. The labels must come from the listing read now.
    const cacheFile = tempCacheFile('loom-gh-pr-labels-');
    const server = await start({ now: () => Date.parse('2026-01-05T10:00:00Z') });
    const tracker = connect(server, { cacheFile });
    const pr = await tracker.createPullRequest({ title: 'pr', head: 'loom/issue-1', base: 'main', labels: ['loom:pr'] });
    expect((await tracker.snapshot()).pullRequests.map((p) => p.labels)).toEqual([['loom:pr']]);
    await tracker.updateLabels(pr.number, { add: ['loom:changes-requested'] });
    expect((await tracker.snapshot()).pullRequests.map((p) => p.labels)).toEqual([['loom:changes-requested']]);
    tracker.dispose();
    // The next process (a support role) reads the cache file the last one left.
    const writer = connect(server);
    await writer.updateLabels(pr.number, { add: ['loom:review-requested'] });
    const next = connect(server, { cacheFile });
    expect((await next.snapshot()).pullRequests.map((p) => p.labels)).toEqual([['loom:review-requested']]);
  });

  it("reads branch protection's required checks; an unprotected branch or a token that may not read it is null", async () => {
    const server = await start();
    const tracker = connect(server);
    expect(await tracker.requiredChecks('main')).toBeNull();
    server.setRequiredChecks('main', ['unit', 'lint']);
    expect(await tracker.requiredChecks('main')).toEqual(['unit', 'lint']);
    server.setRequiredChecks('main', 'forbidden');
    expect(await tracker.requiredChecks('main')).toBeNull();
  });

  it("a failing check run's annotations come with its details; a passing run's are not read", async () => {
    const server = await start();
    const tracker = connect(server);
    const sha = 'a'.repeat(40);
    server.setCheckRun(sha, { name: 'lint', status: 'completed', conclusion: 'failure', output: { title: '2 problems' }, annotations: [{ path: 'src/x.ts', start_line: 3, end_line: 4, annotation_level: 'failure', title: 'no-unused-vars', message: "'y' is never used" }] });
    server.setCheckRun(sha, { name: 'unit', status: 'completed', conclusion: 'success', annotations: [{ path: 'src/y.ts', start_line: 1, end_line: 1, annotation_level: 'notice', message: 'slow test' }] });
    const checks = await tracker.checks(sha);
    expect(checks.find((c) => c.name === 'lint')?.details).toMatch(/^2 problems\n\nAnnotations:\n- `src\/x\.ts:3-4` failure — no-unused-vars: 'y' is never used\n\nDetails: /);
    expect(server.requests.filter((r) => r.path.includes('/annotations'))).toHaveLength(1);
  });

  it('lets exactly one of two concurrent claimers win', async () => {
    const server = await start({ tokens: { 'token-a': 'shepherd-a', 'token-b': 'shepherd-b', 'test-token': 'loom-bot' } });
    const [number] = server.seedIssues(1, ['loom:issue']);
    for (let round = 0; round < 5; round++) {
      const n = round === 0 ? number! : server.seedIssues(1, ['loom:issue'])[0]!;
      const a = connect(server, { token: 'token-a' });
      const b = connect(server, { token: 'token-b' });
      const results = await Promise.all([a.claim(n), b.claim(n)]);
      expect(results.filter(Boolean)).toHaveLength(1);
      expect((await a.getIssue(n))?.labels).toEqual(['loom:building']);
    }
  });

  it('lets exactly one claimer win when both share one token', async () => {
    const server = await start();
    const [n] = server.seedIssues(1, ['loom:issue']);
    const results = await Promise.all([connect(server).claim(n!), connect(server).claim(n!), connect(server).claim(n!)]);
    expect(results.filter(Boolean)).toHaveLength(1);
  });

  it('gives up a claim whose verification (after a removal whose answer was lost) shows another actor claimed first', async () => {
    const server = await start({ tokens: { 'token-a': 'shepherd-a', 'token-b': 'shepherd-b' } });
    const [n] = server.seedIssues(1, ['loom:issue']);
    const a = connect(server, { token: 'token-a', retryDelayMs: 1 });
    const b = connect(server, { token: 'token-b' });
    let bWon: boolean | undefined;
    // A's removal is carried out but answered 502: only then is the claim verified from the timeline.
    let dropped = false;
    server.beforeAnswer = (r) => {
      if (dropped || r.login !== 'shepherd-a' || r.method !== 'DELETE') return undefined;
      dropped = true;
      return { status: 502 };
    };
    // A removed loom:issue; before it adds loom:building a human re-approves and B claims fully.
    server.intercept = async ({ method, path: p, login }) => {
      if (login !== 'shepherd-a' || method !== 'POST' || !p.endsWith(`/issues/${n}/labels`) || bWon !== undefined) return;
      server.applyLabel(n!, 'loom:issue', 'human');
      bWon = false;
      bWon = await b.claim(n!);
    };
    expect(await a.claim(n!)).toBe(false);
    expect(dropped).toBe(true);
    expect(bWon).toBe(true);
    expect(server.requests.filter((r) => r.login === 'shepherd-a' && r.method === 'GET' && r.path.includes(`/issues/${n}/events`)).length).toBeGreaterThan(0);
    expect((await a.getIssue(n!))?.labels).toEqual(['loom:building']);
  });

  it('opens the circuit on a secondary rate limit without retry-after for a minute', async () => {
    const server = await start();
    const clock = 5_000_000;
    const tracker = connect(server, { now: () => clock });
    server.failNext({ status: 403 });
    await expect(tracker.listIssues()).rejects.toMatchObject({ code: 'rate_limited', until: clock + 60_000 });
  });

  it('opens the circuit on 403 with retry-after: fast rejections until the reset', async () => {
    const server = await start();
    server.seedIssues(2, ['loom:issue']);
    let clock = 1_000_000;
    const tracker = connect(server, { now: () => clock });
    server.failNext({ status: 403, retryAfter: 60 });

    const error = await tracker.snapshot().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RateLimitedError);
    expect(error).toMatchObject({ code: 'rate_limited', retryable: true, until: clock + 60_000 });
    expect(tracker.circuitOpenUntil()).toBe(clock + 60_000);

    const sent = server.requests.length;
    await expect(tracker.getIssue(1)).rejects.toBeInstanceOf(RateLimitedError);
    await expect(tracker.snapshot()).rejects.toBeInstanceOf(RateLimitedError);
    expect(server.requests.length).toBe(sent); // nothing reached the server

    clock += 59_000;
    await expect(tracker.snapshot()).rejects.toBeInstanceOf(RateLimitedError);
    clock += 1_000;
    expect(tracker.circuitOpenUntil()).toBeNull();
    expect((await tracker.snapshot()).issues).toHaveLength(2);
  });

  it('opens the circuit on 429 and on an exhausted budget, until the reset', async () => {
    const server = await start({ rateLimit: 3 });
    const clock = 1_000_000;
    const tracker = connect(server, { now: () => clock });
    server.failNext({ status: 429, retryAfter: 5 });
    await expect(tracker.listIssues()).rejects.toMatchObject({ code: 'rate_limited', until: clock + 5_000 });

    const other = connect(server, { now: () => Date.now() });
    await other.listIssues({ state: 'all' });
    await other.listIssues({ state: 'closed' });
    expect(other.rateLimit().remaining).toBe(0);
    expect(other.circuitOpenUntil()).toBe(server.resetAt * 1000);
    const sent = server.requests.length;
    await expect(other.listIssues()).rejects.toMatchObject({ code: 'rate_limited', until: server.resetAt * 1000 });
    expect(server.requests.length).toBe(sent);
  });

  it('reports its health from what it knows: slow-down below a tenth of the budget, unavailable while the circuit is open, in a fresh process too', async () => {
    const cacheFile = tempCacheFile('loom-gh-health-');
    const server = await start({ rateLimit: 20 });
    const tracker = connect(server, { cacheFile });
    expect(tracker.health()).toEqual({ state: 'ok' }); // nothing known yet
    const issue = await tracker.createIssue({ title: 'spend' });
    expect(tracker.health()).toEqual({ state: 'ok' });
    while ((tracker.rateLimit().remaining ?? 0) > 1) await tracker.comment(issue.number, 'spending');
    expect(tracker.health()).toEqual({ state: 'slow-down', remaining: 1, limit: 20 });

    await tracker.comment(issue.number, 'the last point');
    const until = new Date(server.resetAt * 1000).toISOString();
    expect(tracker.health()).toEqual({ state: 'unavailable', until, lowBudget: { remaining: 0, limit: 20 } });
    tracker.dispose();

    // Another process (`loom status`) that has sent nothing learns the pause from the cache file.
    const sent = server.requests.length;
    const fresh = connect(server, { cacheFile });
    expect(fresh.health()).toEqual({ state: 'unavailable', until, lowBudget: null });
    expect(server.requests.length).toBe(sent);
  });

  it('retries 5xx with backoff, then throws a typed, retryable error', async () => {
    const server = await start();
    const tracker = connect(server);
    server.failNext({ status: 502, times: 2 });
    expect(await tracker.listIssues()).toEqual([]);
    expect(server.requests.map((r) => r.status)).toEqual([502, 502, 200]);

    server.failNext({ status: 500, times: 10 });
    const before = server.requests.length;
    const error = await tracker.listIssues().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TrackerUnavailableError);
    expect(error).toMatchObject({ code: 'tracker_unavailable', retryable: true, userFixable: false, status: 500 });
    expect(error).toBeInstanceOf(LoomError);
    expect(server.requests.length - before).toBe(4);
  });

  it('turns 401 into a typed auth error naming GITHUB_TOKEN', async () => {
    const server = await start();
    const tracker = connect(server, { token: 'wrong' });
    const error = await tracker.snapshot().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TrackerAuthError);
    expect(error).toMatchObject({ code: 'tracker_auth', retryable: false, userFixable: true });
    expect(error).toBeInstanceOf(LoomError);
    expect((error as Error).message).toMatch(/check GITHUB_TOKEN/);
  });

  it('merges through the API and types 405/409 refusals', async () => {
    const server = await start();
    const tracker = connect(server);
    const pr = await tracker.createPullRequest({ title: 'x', head: 'loom/x', base: 'main', labels: ['loom:pr'] });

    server.mergeFailure = { status: 405, times: 1 };
    const notMergeable = await tracker.markMerged(pr.number).catch((e: unknown) => e);
    expect(notMergeable).toBeInstanceOf(MergeRejectedError);
    expect(notMergeable).toMatchObject({ code: 'merge_rejected', status: 405, retryable: false, number: pr.number });
    expect((notMergeable as Error).message).toMatch(/not mergeable/);

    server.mergeFailure = { status: 409, times: 1 };
    await expect(tracker.markMerged(pr.number)).rejects.toMatchObject({ code: 'merge_rejected', status: 409, retryable: true });
    expect((await tracker.getPullRequest(pr.number))?.state).toBe('open');

    await tracker.markMerged(pr.number);
    expect(await tracker.getPullRequest(pr.number)).toMatchObject({ state: 'merged', labels: [] });
    const merge = server.requests.filter((r) => r.method === 'PUT' && r.path.endsWith('/merge'));
    expect(merge.map((r) => r.status)).toEqual([405, 409, 200]);
  });

  it('merges pinned to the head the caller judged, with no read of the PR before the request: a head that moved is refused (409) and stays open; a closed PR is no merge', async () => {
    const server = await start();
    const tracker = connect(server);
    const pr = await tracker.createPullRequest({ title: 'x', head: 'loom/x', base: 'main', labels: ['loom:review-requested'] });
    const res = await fetch(`${server.url}/repos/${server.owner}/${server.repo}/pulls/${pr.number}`, { headers: { authorization: 'token test-token' } });
    const head = ((await res.json()) as { head: { sha: string } }).head.sha;
    expect(head).toMatch(/^[0-9a-f]{40}$/);

    const moved = await tracker.markMerged(pr.number, { sha: 'f'.repeat(40), labels: pr.labels }).catch((e: unknown) => e);
    expect(moved).toBeInstanceOf(MergeRejectedError);
    expect(moved).toMatchObject({ status: 409, retryable: true });
    expect((await tracker.getPullRequest(pr.number))?.state).toBe('open');

    const sent = server.requests.length;
    await tracker.markMerged(pr.number, { sha: head, labels: pr.labels });
    // The merge, then the labels it saw taken off: nothing read.
    expect(server.requests.slice(sent).map((r) => `${r.method} ${r.path.replace(/^.*\/(pulls|issues)\//, '')} ${r.status}`)).toEqual([`PUT ${pr.number}/merge 200`, `PUT ${pr.number}/labels 200`]);
    expect(await tracker.getPullRequest(pr.number)).toMatchObject({ state: 'merged', labels: [] });

    const closed = await tracker.createPullRequest({ title: 'y', head: 'loom/y', base: 'main' });
    await tracker.close(closed.number);
    await expect(tracker.markMerged(closed.number, { sha: head, labels: [] })).rejects.toThrow(/is closed; only an open pull request can be merged/);
  });

  it('follows a PR as an issue: its state and labels, still a 304 after another merge moved the base', async () => {
    const server = await start();
    const tracker = connect(server);
    const pr = await tracker.createPullRequest({ title: 'x', head: 'loom/x', base: 'main', labels: ['loom:pr'] });
    const other = await tracker.createPullRequest({ title: 'y', head: 'loom/y', base: 'main' });
    expect(await tracker.pullRequestState(pr.number)).toEqual({ number: pr.number, state: 'open', labels: ['loom:pr'] });
    await tracker.getPullRequest(pr.number);
    await tracker.markMerged(other.number);
    const sent = server.requests.length;
    expect(await tracker.pullRequestState(pr.number)).toEqual({ number: pr.number, state: 'open', labels: ['loom:pr'] });
    expect(server.requests.slice(sent).map((r) => r.status)).toEqual([304]);
    expect(await tracker.pullRequestState((await tracker.createIssue({ title: 'an issue' })).number)).toBeNull();
    await tracker.markMerged(pr.number);
    expect(await tracker.pullRequestState(pr.number)).toEqual({ number: pr.number, state: 'merged', labels: [] });
  });

  it("closes, as GitHub does, the issues a PR's description names with a closing keyword when it merges into the default branch — labels kept; into another branch nothing", async () => {
    const server = await start();
    const tracker = connect(server);
    const one = await tracker.createIssue({ title: 'one', labels: ['loom:building', 'bug'] });
    const two = await tracker.createIssue({ title: 'two', labels: ['loom:building'] });
    const three = await tracker.createIssue({ title: 'three', labels: ['loom:building'] });
    const toMain = await tracker.createPullRequest({ title: 'to main', head: 'loom/issue-1', base: 'main', body: `Fixes #${two.number}`, closesIssue: one.number });
    const toRelease = await tracker.createPullRequest({ title: 'to release', head: 'loom/issue-3', base: 'release', closesIssue: three.number });
    await tracker.markMerged(toMain.number);
    await tracker.markMerged(toRelease.number);
    expect(await tracker.getIssue(one.number)).toMatchObject({ state: 'closed', closedAs: 'completed', labels: ['bug', 'loom:building'] });
    expect(await tracker.getIssue(two.number)).toMatchObject({ state: 'closed', labels: ['loom:building'] });
    expect(await tracker.getIssue(three.number)).toMatchObject({ state: 'open', labels: ['loom:building'] });
    expect((await tracker.listEvents(one.number)).at(-1)).toMatchObject({ type: 'closed', actor: 'loom-bot' });

    // A close with the labels the caller just read: one PATCH, no read.
    const sent = server.requests.length;
    await tracker.close(three.number, undefined, 'completed', { labels: ['loom:building'] });
    expect(server.requests.slice(sent).map((r) => `${r.method} ${r.status}`)).toEqual(['PATCH 200']);
    expect(await tracker.getIssue(three.number)).toMatchObject({ state: 'closed', closedAs: 'completed', labels: [] });
  });

  it('reads a PR with no reviews at one request (no review, no inline comments), and markMerged right after a look at the PR reads it at no cost', async () => {
    const server = await start();
    const tracker = connect(server);
    const pr = await tracker.createPullRequest({ title: 'x', head: 'loom/x', base: 'main', labels: ['loom:pr'] });
    let sent = server.requests.length;
    expect(await tracker.reviews(pr.number)).toEqual([]);
    expect(server.requests.slice(sent).map((r) => r.path.replace(/\?.*/, ''))).toEqual([`/repos/${server.owner}/${server.repo}/pulls/${pr.number}/reviews`]);
    await tracker.getPullRequest(pr.number);
    sent = server.requests.length;
    await tracker.markMerged(pr.number);
    expect(server.requests.slice(sent).map((r) => `${r.method} ${r.status}`)).toEqual(['GET 304', 'PUT 200', 'PUT 200']);
  });

  it('really merges the head branch of a bare repository', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'loom-gh-'));
    dirs.push(dir);
    const bare = path.join(dir, 'origin.git');
    const work = path.join(dir, 'work');
    const git = (cwd: string, ...args: string[]): string =>
      execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@t', ...args], { cwd, encoding: 'utf8' }).trim();
    execFileSync('git', ['init', '--bare', '-q', '-b', 'main', bare]);
    execFileSync('git', ['init', '-q', '-b', 'main', work]);
    fs.writeFileSync(path.join(work, 'a.txt'), 'a\n');
    git(work, 'add', '.');
    git(work, 'commit', '-qm', 'base');
    git(work, 'checkout', '-qb', 'loom/issue-1');
    fs.writeFileSync(path.join(work, 'b.txt'), 'b\n');
    git(work, 'add', '.');
    git(work, 'commit', '-qm', 'feature');
    git(work, 'push', '-q', bare, 'main', 'loom/issue-1');

    const server = await start({ gitDir: bare });
    const tracker = connect(server);
    await expect(tracker.createPullRequest({ title: 'bad', head: 'no-such-branch', base: 'main' })).rejects.toMatchObject({ status: 422 });
    const pr = await tracker.createPullRequest({ title: 'feature', head: 'loom/issue-1', base: 'main', closesIssue: 1 });
    expect(pr).toMatchObject({ body: 'Closes #1', closesIssue: 1 });
    await tracker.markMerged(pr.number);

    const mainTip = git(bare, 'rev-parse', 'main');
    expect(git(bare, 'rev-parse', `${mainTip}^2`)).toBe(git(bare, 'rev-parse', 'loom/issue-1'));
    expect(git(bare, 'show', `${mainTip}:b.txt`)).toBe('b');
    const events = await tracker.listEvents(pr.number);
    expect(events.map((e) => e.type)).toEqual(expect.arrayContaining(['merged', 'closed']));
  });

  it('trusts loom:issue only when applied by a writer or an allow-listed user', async () => {
    const server = await start({ permissions: { maintainer: 'maintain', reader: 'read', writer: 'write' } });
    const tracker = connect(server, { trust: { allow: ['friend'] } });
    const [byReader, byWriter, byMaintainer, byFriend, unlabelled, laundered] = server.seedIssues(6, [], 'author');
    server.applyLabel(byReader!, 'loom:issue', 'reader');
    server.applyLabel(byWriter!, 'loom:issue', 'writer');
    server.applyLabel(byMaintainer!, 'loom:issue', 'maintainer');
    server.applyLabel(byFriend!, 'loom:issue', 'friend');
    // A writer approved, then a reader removed and re-applied it: the latest application counts.
    server.applyLabel(laundered!, 'loom:issue', 'writer');
    await tracker.updateLabels(laundered!, { remove: ['loom:issue'] });
    server.applyLabel(laundered!, 'loom:issue', 'reader');

    expect(await tracker.isTrusted(byReader!)).toBe(false);
    expect(await tracker.isTrusted(byWriter!)).toBe(true);
    expect(await tracker.isTrusted(byMaintainer!)).toBe(true);
    expect(await tracker.isTrusted(byFriend!)).toBe(true);
    expect(await tracker.isTrusted(unlabelled!)).toBe(false);
    expect(await tracker.isTrusted(laundered!)).toBe(false);
    // Permissions are cached per user: one lookup each for reader, writer, maintainer.
    expect(server.requests.filter((r) => r.path.includes('/collaborators/')).length).toBe(3);
  });

  it('creates every missing loom label once and never changes an existing one; a second ensureLabels changes nothing', async () => {
    const server = await start();
    const tracker = connect(server);
    await tracker.createIssue({ title: 'pre-existing', labels: ['loom:urgent'] }); // auto-created, grey, no description
    const first = await tracker.ensureLabels();
    expect(first.created).toHaveLength(Object.keys(LABEL_INFO).length - 1);
    expect(first.differing).toEqual(['loom:urgent']);
    expect(server.requests.filter((r) => r.method === 'PATCH')).toEqual([]);

    const sent = server.requests.length;
    expect(await tracker.ensureLabels()).toEqual({ created: [], differing: ['loom:urgent'] });
    const second = server.requests.slice(sent);
    expect(second.every((r) => r.method === 'GET')).toBe(true);
  });

  it('finds the token in GITHUB_TOKEN, then GH_TOKEN, else gh (failure tolerated)', () => {
    expect(githubToken({ GITHUB_TOKEN: 'a', GH_TOKEN: 'b' })).toBe('a');
    expect(githubToken({ GH_TOKEN: 'b' })).toBe('b');
    expect(githubToken({ PATH: '/nonexistent' })).toBeNull();
  });
});

describe('GitHubTracker snapshot as a delta', () => {
  /** A backlog made over time (one issue a second), then a clock that moves one second per change. */
  async function backlog(size: number, options: FakeGitHubOptions = {}): Promise<{ server: FakeGitHubServer; tick: () => void; clock: () => number }> {
    let clock = Date.parse('2026-01-05T10:00:00Z');
    const server = await start({ now: () => clock, ...options });
    for (let i = 0; i < size; i += 1) {
      clock += 1_000;
      server.seedIssues(1, i % 3 === 2 ? ['bug'] : ['loom:blocked']);
    }
    return { server, tick: () => (clock += 1_000), clock: () => clock };
  }
  const listings = (server: FakeGitHubServer, from: number) => server.requests.slice(from).filter((r) => /\/issues\?(?!.*sort=updated)/.test(r.path) || /\/repositories\/\d+\/issues\?(?!.*sort=updated)/.test(r.path));

  it("applies the probe's changed items to the listing: a change costs the probe alone, however long the backlog", async () => {
    const { server, tick } = await backlog(450);
    const cacheFile = tempCacheFile('loom-gh-delta-');
    const first = connect(server, { cacheFile });
    expect((await first.snapshot()).issues).toHaveLength(300);
    first.dispose();

    // A relabel, a close, a new loom issue, a loom label removed, a bug becoming loom work.
    const other = connect(server, { token: 'test-token' });
    tick();
    await other.updateLabels(1, { add: ['loom:urgent'] });
    tick();
    await other.close(2);
    tick();
    const created = await other.createIssue({ title: 'new', labels: ['loom:issue'] });
    tick();
    await other.updateLabels(4, { remove: ['loom:blocked'] });
    tick();
    await other.updateLabels(3, { add: ['loom:issue'] });

    // A fresh process builds on the listing the first one left.
    const used = server.requests.length;
    const fresh = connect(server, { cacheFile });
    const snapshot = await fresh.snapshot();
    expect(server.requests.slice(used).map((r) => `${r.method} ${r.status}`)).toEqual(['GET 200']);
    expect(listings(server, used)).toEqual([]);
    const numbers = snapshot.issues.map((i) => i.number);
    expect(numbers).toHaveLength(300);
    expect(numbers).not.toContain(2);
    expect(numbers).not.toContain(4);
    expect(numbers).toContain(created.number);
    expect(snapshot.issues.find((i) => i.number === 1)?.labels).toEqual(['loom:blocked', 'loom:urgent']);
    expect(snapshot.issues.find((i) => i.number === 3)?.labels).toEqual(['bug', 'loom:issue']);
    // It equals what a full read sees.
    const cold = await connect(server).snapshot();
    expect(snapshot.issues).toEqual(cold.issues);
    fresh.dispose();

    // And the poll after is one 304 again.
    const idle = server.requests.length;
    await connect(server, { cacheFile }).snapshot();
    expect(server.requests.slice(idle).map((r) => r.status)).toEqual([304]);
  });

  it('follows the probe past its first page when more than 100 items changed, and still reads no listing', async () => {
    const { server, tick } = await backlog(400);
    const tracker = connect(server);
    await tracker.snapshot();
    const other = connect(server);
    for (let n = 1; n <= 150; n += 1) {
      tick();
      await other.updateLabels(n, { add: ['loom:urgent'] });
    }
    const used = server.requests.length;
    const snapshot = await tracker.snapshot();
    expect(listings(server, used)).toEqual([]);
    expect(server.requests.length - used).toBe(2);
    expect(snapshot.issues.filter((i) => i.labels.includes('loom:urgent')).length).toBe(150); // the 50 'bug' issues among them became loom work
    expect(snapshot.issues).toEqual((await connect(server).snapshot()).issues);
  });

  it('keeps a read-only tracker (loom status) to one request and writes nothing', async () => {
    const { server, tick } = await backlog(250);
    const cacheFile = tempCacheFile('loom-gh-status-');
    const dir = path.dirname(cacheFile);
    const iteration = connect(server, { cacheFile });
    await iteration.snapshot();
    iteration.dispose();
    const before = Object.fromEntries(fs.readdirSync(dir).map((f) => [f, fs.readFileSync(path.join(dir, f), 'utf8')]));
    expect(Object.keys(before).sort()).toEqual(['github-cache.json', 'github-listing.json']);

    tick();
    await connect(server).updateLabels(5, { add: ['loom:urgent'] });
    for (const expected of [200, 200]) {
      const used = server.requests.length;
      const status = connect(server, { cacheFile, readonly: true });
      const snapshot = await status.snapshot();
      status.dispose();
      expect(snapshot.issues.find((i) => i.number === 5)?.labels).toEqual(['loom:blocked', 'loom:urgent']);
      expect(server.requests.slice(used).map((r) => r.status)).toEqual([expected]);
      expect(Object.fromEntries(fs.readdirSync(dir).map((f) => [f, fs.readFileSync(path.join(dir, f), 'utf8')]))).toEqual(before);
    }
  });

  it('reads an item before a label write or a close conditionally: unchanged since this process read it, the read costs nothing', async () => {
    const server = await start();
    const [n, m] = server.seedIssues(2, ['loom:building']);
    const tracker = connect(server);
    await tracker.getIssue(n!);
    await tracker.getIssue(m!);
    let used = server.requests.length;
    await tracker.updateLabels(n!, { add: ['loom:issue'] });
    expect(server.requests.slice(used).map((r) => `${r.method} ${r.status}`)).toEqual(['GET 304', 'PUT 200']);
    expect((await connect(server).getIssue(n!))?.labels).toEqual(['loom:issue']);
    // Changed by someone else meanwhile: the read sees it, and the write builds on it.
    server.applyLabel(m!, 'loom:urgent', 'someone');
    used = server.requests.length;
    await tracker.close(m!);
    expect(server.requests.slice(used).map((r) => `${r.method} ${r.status}`)).toEqual(['GET 200', 'PATCH 200']);
    expect(await connect(server).getIssue(m!)).toMatchObject({ state: 'closed', labels: ['loom:urgent'] });
  });

  it('carries collaborator permissions from one process to the next for 15 minutes, then asks again', async () => {
    let clock = Date.parse('2026-01-05T10:00:00Z');
    const server = await start({ permissions: { writer: 'write' }, now: () => clock });
    const cacheFile = tempCacheFile('loom-gh-trust-');
    const [n] = server.seedIssues(1, [], 'author');
    server.applyLabel(n!, 'loom:issue', 'writer');
    const asked = () => server.requests.filter((r) => r.path.includes('/collaborators/')).length;
    const first = connect(server, { cacheFile, now: () => clock });
    expect(await first.isTrusted(n!)).toBe(true);
    first.dispose();
    expect(asked()).toBe(1);

    clock += 14 * 60_000;
    const second = connect(server, { cacheFile, now: () => clock });
    expect(await second.isTrusted(n!)).toBe(true);
    second.dispose();
    expect(asked()).toBe(1);

    // Revoked meanwhile: seen once the answer is older than 15 minutes.
    server.setPermission('writer', 'read');
    clock += 2 * 60_000;
    const third = connect(server, { cacheFile, now: () => clock });
    expect(await third.isTrusted(n!)).toBe(false);
    expect(asked()).toBe(2);
  });

  it('a process that ends after others keeps what they left in the shared cache file: the next poll is a 304, and neither the PRs nor the permission are read again', async () => {
    let clock = Date.parse('2026-01-05T10:00:00Z');
    const server = await start({ permissions: { writer: 'write' }, now: () => clock });
    const cacheFile = tempCacheFile('loom-gh-shared-cache-');
    const [n] = server.seedIssues(1, [], 'author');
    server.applyLabel(n!, 'loom:issue', 'writer');
    const pr = await connect(server).createPullRequest({ title: 'pr', head: 'loom/issue-1', base: 'main', labels: ['loom:pr'] });
    // A shepherd starts (the cache file is empty then) and runs while an iteration comes and goes.
    const shepherd = connect(server, { cacheFile, now: () => clock });
    await shepherd.getIssue(n!);
    const iteration = connect(server, { cacheFile, now: () => clock });
    expect((await iteration.snapshot()).pullRequests.map((p) => p.number)).toEqual([pr.number]);
    expect(await iteration.isTrusted(n!)).toBe(true);
    iteration.dispose();
    clock += 1_000;
    shepherd.dispose();

    const used = server.requests.length;
    const next = connect(server, { cacheFile, now: () => clock });
    expect((await next.snapshot()).pullRequests.map((p) => p.number)).toEqual([pr.number]);
    expect(await next.isTrusted(n!)).toBe(true);
    const sent = server.requests.slice(used);
    expect(sent.filter((r) => r.path.includes('sort=updated')).map((r) => r.status)).toEqual([304]);
    expect(sent.filter((r) => r.path.includes('/pulls') || r.path.includes('/collaborators/')).map((r) => `${r.method} ${r.path}`)).toEqual([]);
    expect(sent.filter((r) => r.status !== 304)).toEqual([]);
    next.dispose();

    // A support role takes a snapshot when it starts and ends long after: an iteration in between
    // saw a new PR. The role's older probe answer and PR list do not come back.
    const role = connect(server, { cacheFile, now: () => clock });
    await role.snapshot();
    clock += 60_000;
    const second = await connect(server).createPullRequest({ title: 'pr 2', head: 'loom/issue-2', base: 'main', labels: ['loom:review-requested'] });
    clock += 1_000;
    const later = connect(server, { cacheFile, now: () => clock });
    expect((await later.snapshot()).pullRequests.map((p) => p.number)).toEqual([pr.number, second.number]);
    later.dispose();
    clock += 60_000;
    role.dispose();
    const after = server.requests.length;
    const last = connect(server, { cacheFile, now: () => clock });
    expect((await last.snapshot()).pullRequests.map((p) => p.number)).toEqual([pr.number, second.number]);
    expect(server.requests.slice(after).map((r) => `${r.method} ${r.status}`)).toEqual(['GET 304']);
  });
});

describe('GitHubTracker after a merge, and the PRs a snapshot knows', () => {
  it("closes the issue and takes the merged PR's workflow labels off in one GraphQL request; a label a person added since the look stays", async () => {
    const server = await start();
    const tracker = connect(server);
    const issue = await tracker.createIssue({ title: 'one', body: '', labels: ['loom:building', 'bug'] });
    const pr = await tracker.createPullRequest({ title: 'pr', head: 'loom/issue-1', base: 'main', labels: ['loom:review-requested'], closesIssue: issue.number });
    // The caller's look right before the merge (the ids come with it).
    const [prLook, issueLook] = await Promise.all([tracker.pullRequestState(pr.number), tracker.getIssue(issue.number)]);
    const res = await fetch(`${server.url}/repos/${server.owner}/${server.repo}/pulls/${pr.number}`, { headers: { authorization: 'token test-token' } });
    // Without labels: they come off with the close.
    let sent = server.requests.length;
    await tracker.markMerged(pr.number, { sha: ((await res.json()) as { head: { sha: string } }).head.sha });
    expect(server.requests.slice(sent).map((r) => `${r.method} ${r.path}`)).toEqual([`PUT /repos/${server.owner}/${server.repo}/pulls/${pr.number}/merge`]);
    server.applyLabel(issue.number, 'needs-docs', 'someone');
    sent = server.requests.length;
    await tracker.close(issue.number, undefined, 'completed', { labels: issueLook!.labels, pr: { number: pr.number, labels: prLook!.labels } });
    expect(server.requests.slice(sent).map((r) => `${r.method} ${r.path} ${r.operation ?? ''}`)).toEqual(['POST /graphql LoomCloseMerged']);
    const owner = connect(server);
    expect(await owner.getIssue(issue.number)).toMatchObject({ state: 'closed', closedAs: 'completed', labels: ['bug', 'needs-docs'] });
    expect(await owner.getPullRequest(pr.number)).toMatchObject({ state: 'merged', labels: [] });
  });

  it('does the same over REST when GraphQL fails, and when this process never read the ids', async () => {
    const server = await start();
    const tracker = connect(server);
    const issue = await tracker.createIssue({ title: 'one', body: '', labels: ['loom:building'] });
    const pr = await tracker.createPullRequest({ title: 'pr', head: 'loom/issue-1', base: 'main', labels: ['loom:review-requested'] });
    const [prLook, issueLook] = await Promise.all([tracker.pullRequestState(pr.number), tracker.getIssue(issue.number)]);
    server.failNext({ status: 502, times: 1, match: (_method, p) => p === '/graphql' });
    let sent = server.requests.length;
    await tracker.close(issue.number, undefined, 'completed', { labels: issueLook!.labels, pr: { number: pr.number, labels: prLook!.labels } });
    expect(server.requests.slice(sent).map((r) => `${r.method} ${r.path} ${r.status}`)).toEqual(['POST /graphql 502', `PUT /repos/${server.owner}/${server.repo}/issues/${pr.number}/labels 200`, `PATCH /repos/${server.owner}/${server.repo}/issues/${issue.number} 200`]);
    expect(await connect(server).getIssue(issue.number)).toMatchObject({ state: 'closed', labels: [] });
    expect((await connect(server).pullRequestState(pr.number))?.labels).toEqual([]);

    // A process that did not read the two items has no ids: REST at once, no GraphQL request.
    const other = await tracker.createIssue({ title: 'two', body: '', labels: ['loom:building'] });
    const pr2 = await tracker.createPullRequest({ title: 'pr 2', head: 'loom/issue-2', base: 'main', labels: ['loom:review-requested'] });
    sent = server.requests.length;
    await connect(server).close(other.number, undefined, 'completed', { labels: ['loom:building'], pr: { number: pr2.number, labels: ['loom:review-requested'] } });
    expect(server.requests.slice(sent).map((r) => `${r.method} ${r.path}`)).toEqual([`PUT /repos/${server.owner}/${server.repo}/issues/${pr2.number}/labels`, `PATCH /repos/${server.owner}/${server.repo}/issues/${other.number}`]);
    expect(await connect(server).getIssue(other.number)).toMatchObject({ state: 'closed', labels: [] });
  });

  it('reads the pulls list only for a loom PR no snapshot knows: one a process of this clone created is known to the next snapshot at once, and a relabel reads nothing', async () => {
    let clock = Date.parse('2026-01-05T10:00:00Z');
    const server = await start({ now: () => clock });
    const cacheFile = tempCacheFile('loom-gh-created-');
    // A shepherd creates its PR and goes on running (its cache file is written when it ends).
    const shepherd = connect(server, { cacheFile, now: () => clock });
    const pr = await shepherd.createPullRequest({ title: 'pr', head: 'loom/issue-1', base: 'main', labels: ['loom:review-requested'] });
    clock += 1_000;
    const pulls = (from: number) => server.requests.slice(from).filter((r) => r.path.includes('/pulls')).map((r) => `${r.method} ${r.path.replace(/\?.*/, '')}`);
    let sent = server.requests.length;
    const iteration = connect(server, { cacheFile, now: () => clock });
    expect((await iteration.snapshot()).pullRequests.map((p) => [p.number, p.head, p.base])).toEqual([[pr.number, 'loom/issue-1', 'main']]);
    expect(pulls(sent)).toEqual([]);
    iteration.dispose();

    // A PR a person made and labelled: read once; relabelled later, not again.
    clock += 1_000;
    const theirs = await connect(server).createPullRequest({ title: 'theirs', head: 'feature', base: 'main', labels: ['loom:review-requested'] });
    sent = server.requests.length;
    const second = connect(server, { cacheFile, now: () => clock });
    expect((await second.snapshot()).pullRequests.map((p) => p.head)).toEqual(['loom/issue-1', 'feature']);
    expect(pulls(sent)).toEqual([`GET /repos/${server.owner}/${server.repo}/pulls`]);
    second.dispose();
    clock += 1_000;
    await connect(server).updateLabels(theirs.number, { add: ['loom:changes-requested'] });
    sent = server.requests.length;
    const third = connect(server, { cacheFile, now: () => clock });
    expect((await third.snapshot()).pullRequests.map((p) => [p.head, p.labels])).toEqual([['loom/issue-1', ['loom:review-requested']], ['feature', ['loom:changes-requested']]]);
    expect(pulls(sent)).toEqual([]);
    third.dispose();
    shepherd.dispose();
  });

  it('a cache file whose created PRs are not of the shape written is read without them, not a failure', async () => {
    const server = await start();
    const cacheFile = tempCacheFile('loom-gh-created-bad-');
    const pr = await connect(server).createPullRequest({ title: 'pr', head: 'loom/issue-1', base: 'main', labels: ['loom:review-requested'] });
    for (const created of [{}, [[pr.number, null, 1]], [['x', {}, 'y']], 'no']) {
      fs.writeFileSync(cacheFile, JSON.stringify({ entries: [], openUntil: null, pulls: [], actor: null, created }));
      const tracker = connect(server, { cacheFile });
      expect((await tracker.snapshot()).pullRequests.map((p) => p.head)).toEqual(['loom/issue-1']);
      tracker.dispose();
    }
  });

  it('a PR created while a snapshot was under way (after its probe was answered) is still known to the next one', async () => {
    let clock = Date.parse('2026-01-05T10:00:00Z');
    const server = await start({ now: () => clock });
    const cacheFile = tempCacheFile('loom-gh-created-during-');
    const warm = connect(server, { cacheFile, now: () => clock });
    await warm.snapshot();
    warm.dispose();
    const shepherd = connect(server, { cacheFile, now: () => clock });
    // The iteration's probe is answered as it was before the PR; the PR is made (and labelled) before the snapshot ends.
    server.beforeAnswer = async (request) => {
      if (!request.path.includes('sort=updated')) return undefined;
      server.beforeAnswer = null;
      clock += 1_000;
      await shepherd.createPullRequest({ title: 'pr', head: 'loom/issue-1', base: 'main', labels: ['loom:review-requested'] });
      clock += 1_000;
      return undefined;
    };
    const iteration = connect(server, { cacheFile, now: () => clock });
    expect((await iteration.snapshot()).pullRequests).toEqual([]);
    iteration.dispose();
    clock += 1_000;
    const sent = server.requests.length;
    const next = connect(server, { cacheFile, now: () => clock });
    expect((await next.snapshot()).pullRequests.map((p) => p.head)).toEqual(['loom/issue-1']);
    expect(server.requests.slice(sent).filter((r) => r.path.includes('/pulls')).map((r) => r.path)).toEqual([]);
    next.dispose();
    shepherd.dispose();
  });
});
