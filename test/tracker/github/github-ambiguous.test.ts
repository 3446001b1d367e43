/**
 * GitHubTracker under ambiguous failures: a write the host carried out but answered 5xx, or did
 * not answer at all. Every label transition either completes or is put back, and a merge that
 * happened is a merge, whatever its answer said.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Label } from '../../../src/core/labels.js';
import { GitHubTracker } from '../../../src/tracker/github/github-tracker.js';
import { TrackerUnavailableError } from '../../../src/tracker/tracker-errors.js';
import { FakeGitHubServer, type AnswerChange, type RoutedRequest } from '../../fakes/github-server.js';

const servers: FakeGitHubServer[] = [];
const trackers: GitHubTracker[] = [];

afterEach(async () => {
  for (const t of trackers.splice(0)) t.dispose();
  for (const s of servers.splice(0)) await s.close();
});

const TOKENS = { 'test-token': 'loom-bot', 'human-token': 'maintainer', 'rival-token': 'rival-bot' };

async function setUp(): Promise<{ server: FakeGitHubServer; tracker: GitHubTracker; human: GitHubTracker }> {
  const server = await FakeGitHubServer.start({ tokens: TOKENS, permissions: { maintainer: 'maintain' } });
  servers.push(server);
  const connect = (token: string) => {
    const t = new GitHubTracker({ owner: server.owner, repo: server.repo, token, baseUrl: server.url, retryDelayMs: 1 });
    trackers.push(t);
    return t;
  };
  return { server, tracker: connect('test-token'), human: connect('human-token') };
}

/** The first Loom request matching `match` is carried out and then answered with `change`. */
function once(server: FakeGitHubServer, match: (r: RoutedRequest) => boolean, change: AnswerChange): () => number {
  let fired = 0;
  server.beforeAnswer = (r) => {
    if (fired > 0 || r.login !== 'loom-bot' || !match(r)) return undefined;
    fired += 1;
    return change;
  };
  return () => fired;
}

const isRemoval = (r: RoutedRequest) => r.method === 'DELETE' && r.path.includes('/labels/');
const isMerge = (r: RoutedRequest) => r.method === 'PUT' && r.path.endsWith('/merge');
const stateLabels = (labels: readonly string[]) => labels.filter((l) => l.startsWith('loom:'));

describe('a GitHub claim under ambiguous failures', () => {
  it('claims the issue when its removal of loom:issue was carried out but answered 502 (the retry gets 404)', async () => {
    const { server, tracker } = await setUp();
    const [n] = server.seedIssues(1, [Label.issue], 'maintainer');
    const fired = once(server, isRemoval, { status: 502 });
    expect(await tracker.claim(n!)).toBe(true);
    expect(fired()).toBe(1);
    expect((await tracker.getIssue(n!))?.labels).toEqual([Label.building]);
  });

  it('claims the issue when the answer to its removal of loom:issue was lost (connection dropped)', async () => {
    const { server, tracker } = await setUp();
    const [n] = server.seedIssues(1, [Label.issue], 'maintainer');
    const fired = once(server, isRemoval, { drop: true });
    expect(await tracker.claim(n!)).toBe(true);
    expect(fired()).toBe(1);
    expect((await tracker.getIssue(n!))?.labels).toEqual([Label.building]);
  });

  it('sends the removal again when a 5xx means it was not carried out', async () => {
    const { server, tracker } = await setUp();
    const [n] = server.seedIssues(1, [Label.issue], 'maintainer');
    server.failNext({ status: 503, times: 2, match: (m, p) => m === 'DELETE' && p.includes('/labels/') });
    expect(await tracker.claim(n!)).toBe(true);
    expect((await tracker.getIssue(n!))?.labels).toEqual([Label.building]);
  });

  it('still loses to another claimer whose removal came first, after an ambiguous failure of its own', async () => {
    const { server, tracker } = await setUp();
    const rival = new GitHubTracker({ owner: server.owner, repo: server.repo, token: 'rival-token', baseUrl: server.url, retryDelayMs: 1 });
    trackers.push(rival);
    const [n] = server.seedIssues(1, [Label.issue], 'maintainer');
    // Our removal fails before it is carried out (503); meanwhile the rival claims the issue.
    let rivalWon: boolean | undefined;
    server.failNext({ status: 503, times: 1, match: (m, p, login) => login === 'loom-bot' && m === 'DELETE' && p.includes('/labels/') });
    server.intercept = async ({ method, login }) => {
      if (login !== 'loom-bot' || method !== 'DELETE' || rivalWon !== undefined) return;
      rivalWon = false;
      rivalWon = await rival.claim(n!);
    };
    expect(await tracker.claim(n!)).toBe(false);
    expect(rivalWon).toBe(true);
    expect((await tracker.getIssue(n!))?.labels).toEqual([Label.building]);
  });

  it('puts loom:issue back when loom:building cannot be added, and says the tracker is unavailable', async () => {
    const { server, tracker } = await setUp();
    const [n] = server.seedIssues(1, [Label.issue], 'maintainer');
    server.failNext({ status: 502, times: 10, match: (m, p) => m === 'POST' && p.endsWith(`/issues/${n}/labels`) });
    await expect(tracker.claim(n!)).rejects.toBeInstanceOf(TrackerUnavailableError);
    expect((await tracker.getIssue(n!))?.labels).toEqual([Label.issue]);
  });
});

describe('restoreInterruptedClaim', () => {
  it("puts loom:issue back on an issue a claim of ours left with no state label, and never undoes a human's removal", async () => {
    const { server, tracker, human } = await setUp();
    const [ours, theirs, approved] = server.seedIssues(3, [Label.issue], 'maintainer');
    // Our claim cut off after its first write: loom:issue taken off, loom:building never added.
    server.failNext({ status: 502, times: 20, match: (m, p) => m === 'POST' && p.endsWith(`/issues/${ours}/labels`) });
    server.failNext({ status: 502, times: 20, match: (m, p) => m === 'PUT' && p.endsWith(`/issues/${ours}/labels`) });
    await expect(tracker.claim(ours!)).rejects.toBeInstanceOf(TrackerUnavailableError);
    expect(stateLabels((await tracker.getIssue(ours!))?.labels ?? [])).toEqual([]);
    server.beforeAnswer = null;
    server.clearFailures();
    // A human took loom:issue off the other one; the third was approved, built, and left for the Champion.
    await human.updateLabels(theirs!, { remove: [Label.issue] });
    expect(await tracker.claim(approved!)).toBe(true);
    await tracker.updateLabels(approved!, { remove: [Label.building] });

    expect(await tracker.restoreInterruptedClaim(ours!)).toBe(true);
    expect(await tracker.restoreInterruptedClaim(theirs!)).toBe(false);
    expect(await tracker.restoreInterruptedClaim(approved!)).toBe(false);
    expect((await tracker.getIssue(ours!))?.labels).toEqual([Label.issue]);
    expect((await tracker.getIssue(theirs!))?.labels).toEqual([]);
    expect((await tracker.getIssue(approved!))?.labels).toEqual([]);
    // Done once: the issue is loom:issue again, nothing more to restore.
    expect(await tracker.restoreInterruptedClaim(ours!)).toBe(false);
  });
});

describe('a GitHub pull request created under an ambiguous failure', () => {
  it('is the one pull request, labelled, when its creation was carried out but answered 502 (the retry gets 422)', async () => {
    const { server, tracker } = await setUp();
    const fired = once(server, (r) => r.method === 'POST' && r.path.endsWith('/pulls'), { status: 502 });
    const pr = await tracker.createPullRequest({ title: '#1: x', head: 'loom/issue-1', base: 'main', labels: [Label.reviewRequested], closesIssue: 1 });
    expect(fired()).toBe(1);
    expect(pr).toMatchObject({ head: 'loom/issue-1', base: 'main', state: 'open', labels: [Label.reviewRequested] });
    expect((await tracker.listPullRequests({ state: 'all' })).map((p) => p.number)).toEqual([pr.number]);
  });
});

describe('a GitHub merge under ambiguous failures', () => {
  for (const [what, change] of [
    ['carried out but answered 502 (the retry gets 405 "not mergeable")', { status: 502 }],
    ['carried out but never answered (connection dropped)', { drop: true }],
  ] as const) {
    it(`records a merge ${what} as merged, once`, async () => {
      const { server, tracker } = await setUp();
      const pr = await tracker.createPullRequest({ title: 'x', head: 'loom/issue-1', base: 'main', labels: [Label.pr] });
      const fired = once(server, isMerge, change);
      await tracker.markMerged(pr.number);
      expect(fired()).toBe(1);
      expect(await tracker.getPullRequest(pr.number)).toMatchObject({ state: 'merged', labels: [] });
      const merges = server.requests.filter((r) => r.method === 'PUT' && r.path.endsWith('/merge'));
      expect(merges.filter((r) => r.status === 200 || r.status === 502 || r.status === 0)).toHaveLength(1);
    });
  }

  it('is not retried blindly: a merge request answered 5xx before it was carried out is a retryable error, the PR still open', async () => {
    const { server, tracker } = await setUp();
    const pr = await tracker.createPullRequest({ title: 'x', head: 'loom/issue-1', base: 'main', labels: [Label.pr] });
    server.failNext({ status: 502, times: 1, match: (m, p) => m === 'PUT' && p.endsWith('/merge') });
    await expect(tracker.markMerged(pr.number)).rejects.toMatchObject({ code: 'tracker_unavailable', retryable: true });
    expect((await tracker.getPullRequest(pr.number))?.state).toBe('open');
    expect(server.requests.filter((r) => r.method === 'PUT' && r.path.endsWith('/merge')).map((r) => r.status)).toEqual([502]);
  });

  it('still reports a real refusal (405, the PR not merged) as a refusal', async () => {
    const { server, tracker } = await setUp();
    const pr = await tracker.createPullRequest({ title: 'x', head: 'loom/issue-1', base: 'main', labels: [Label.pr] });
    server.mergeFailure = { status: 405, times: 1 };
    await expect(tracker.markMerged(pr.number)).rejects.toMatchObject({ code: 'merge_rejected', status: 405 });
    expect((await tracker.getPullRequest(pr.number))?.state).toBe('open');
  });
});
