// Loom against a GitHub-shaped server that fails the way hosts do: a write carried out but
// answered 5xx, or not answered at all. A claim cut off part-way is put right by the next
// iteration; a merge that happened is recorded as a merge (the issue closed, never blocked).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Label } from '../../src/core/labels.js';
import type { AnswerChange, FakeGitHubServer, RoutedRequest } from '../fakes/github-server.js';
import { git, githubRepo, removeGitHubRepos } from '../helpers/github-repo.js';
import type { GitHubRepo } from '../helpers/github-repo.js';
import { loomAsync } from '../helpers/loom-repo.js';

afterEach(removeGitHubRepos);

const fence = '```';
const env = { GITHUB_TOKEN: 'tok-owner', GH_TOKEN: '' };

const off = { enabled: false };
/** A repository whose `origin` is a bare repository the fake GitHub merges in, with Loom set up on the fake (no labels made). */
const setUp = (heartbeatInterval = '0.5s'): Promise<GitHubRepo> =>
  githubRepo({
    server: { tokens: { 'tok-human': 'maintainer' }, permissions: { maintainer: 'maintain' } },
    labels: false,
    config: { runtime: 'script', pollInterval: '1s', heartbeatInterval, roles: { architect: off, hermit: off, guide: off, curator: off, judge: off, doctor: off, champion: off } },
  });

/** The first Loom request matching `match` is carried out, then answered with `change`. */
function once(fake: FakeGitHubServer, match: (r: RoutedRequest) => boolean, change: AnswerChange): () => number {
  let fired = 0;
  fake.beforeAnswer = (r) => {
    if (fired > 0 || !match(r)) return undefined;
    fired += 1;
    return change;
  };
  return () => fired;
}

const builds = (file: string) => `${fence}loom-script builder\nwrite ${file} <<EOF\n${file}\nEOF\n${fence}`;

describe('a GitHub claim cut off part-way', () => {
  it('is put right by the next iteration: the issue, left with no state label, is loom:issue again', async () => {
    const { root, server: fake, owner } = await setUp();
    const issue = await owner.createIssue({ title: 'Add one.txt', body: builds('one.txt'), labels: [Label.issue] });
    // loom:issue comes off; adding loom:building, and every attempt to put loom:issue back, fails.
    const labelsOf = (m: string) => (method: string, p: string) => method === m && p.endsWith(`/issues/${issue.number}/labels`);
    fake.failNext({ status: 502, times: 100, match: labelsOf('POST') });
    fake.failNext({ status: 502, times: 100, match: labelsOf('PUT') });
    const first = await loomAsync(root, ['iterate'], env);
    expect(first.code, first.stderr).toBe(0);
    expect((await owner.getIssue(issue.number))?.labels).toEqual([]);

    fake.clearFailures();
    // An outage, not the issue's fault: no failure counted.
    const second = await loomAsync(root, ['iterate'], env);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toMatch(new RegExp(`restored=#${issue.number}\\b`));
    expect((await owner.getIssue(issue.number))?.labels).toEqual([Label.issue]);
    const state = JSON.parse(fs.readFileSync(path.join(root, '.loom', 'daemon-state.json'), 'utf8')) as { spawn_retry_queue: Record<string, unknown>; warnings: { message: string }[] };
    expect(state.spawn_retry_queue[String(issue.number)]).toBeUndefined();
    expect(state.warnings.map((w) => w.message)).toContain(`#${issue.number} was left with no state label by an interrupted claim; returned to ${Label.issue}`);
    // And the next one builds it.
    const third = await loomAsync(root, ['iterate'], env);
    expect(third.stdout).toMatch(new RegExp(`\\+shepherd=#${issue.number}\\b`));
  });
});

describe('releasing the issue of a dead shepherd', () => {
  it("never overwrites a human's loom:blocked put on between Loom's look and its release", async () => {
    const { root, server: fake, owner } = await setUp();
    const issue = await owner.createIssue({ title: 'Add one.txt', body: builds('one.txt'), labels: [Label.issue] });
    expect(await owner.claim(issue.number)).toBe(true);
    // A shepherd that died: its record names a process that has exited.
    const gone = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout;
    const at = new Date().toISOString();
    const record = { kind: 'shepherd', task_id: 'dead0000task', issue: issue.number, role: null, status: 'running', phase: 'builder', pid: Number(gone), pid_start: null, launcher_pid: Number(gone), agent_pid: null, agent_pid_start: null, started: at, heartbeat: at, last_output: null, output_file: '(terminal)', message: null, exit_code: null, merged: false, pr_number: null };
    fs.mkdirSync(path.join(root, '.loom', 'progress'), { recursive: true });
    fs.writeFileSync(path.join(root, '.loom', 'progress', `shepherd-${issue.number}.json`), JSON.stringify(record));
    // The iteration reads the issue (still loom:building); before it acts, a maintainer blocks it.
    let blocked = false;
    fake.beforeAnswer = (r) => {
      if (!blocked && r.method === 'GET' && r.path === `/repos/acme/widgets/issues/${issue.number}`) {
        blocked = true;
        fake.applyLabel(issue.number, Label.blocked, 'maintainer');
      }
      return undefined;
    };
    const run = await loomAsync(root, ['iterate'], env);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(new RegExp(`died=#${issue.number}\\b`));
    expect(blocked).toBe(true);
    // As the maintainer left it (GitHub's UI adds a label without removing the others): no loom:issue.
    expect((await owner.getIssue(issue.number))?.labels).toEqual([Label.blocked, Label.building]);
  });
});

describe('a GitHub merge whose answer was lost', () => {
  for (const [what, change] of [
    ['answered 502 after it was carried out', { status: 502 }],
    ['never answered', { drop: true }],
  ] as const) {
    it(`is recorded as the merge when ${what}: the issue is closed, not blocked, and merged once`, async () => {
      const { root, bare, server: fake, owner } = await setUp();
      const issue = await owner.createIssue({ title: 'Add one.txt', body: builds('one.txt'), labels: [Label.issue] });
      const fired = once(fake, (r) => r.method === 'PUT' && r.path.endsWith('/merge'), change);
      const run = await loomAsync(root, ['shepherd', String(issue.number), '--force-merge'], env);
      expect(run.code, `${run.stdout}\n${run.stderr}`).toBe(0);
      expect(fired()).toBe(1);
      const after = await owner.getIssue(issue.number);
      expect(after).toMatchObject({ state: 'closed', labels: [] });
      const prs = await owner.listPullRequests({ state: 'all' });
      expect(prs.map((p) => [p.state, p.labels])).toEqual([['merged', []]]);
      expect((await owner.listComments(issue.number)).map((c) => c.body).join('\n')).not.toMatch(/could not be merged|loom:blocked/);
      expect(git(bare, 'log', '--first-parent', '--format=%s', 'main').split('\n')).toHaveLength(2);
      expect(git(bare, 'show', 'main:one.txt')).toBe('one.txt');
    });
  }
});

describe('a GitHub merge that closes its issue itself (the PR says `Closes #N`)', () => {
  it('is closed by one write after the merge: no read of the issue first, no comment, its workflow labels off and its own kept', async () => {
    // A heartbeat longer than the run: no follow read of the issue can fall between the merge and the close.
    const { root, bare, server: fake, owner } = await setUp('60s');
    const issue = await owner.createIssue({ title: 'Add one.txt', body: builds('one.txt'), labels: [Label.issue, 'bug'] });
    const run = await loomAsync(root, ['shepherd', String(issue.number), '--force-merge'], env);
    expect(run.code, `${run.stdout}\n${run.stderr}`).toBe(0);
    expect(await owner.getIssue(issue.number)).toMatchObject({ state: 'closed', closedAs: 'completed', labels: ['bug'] });
    const merge = fake.requests.findIndex((r) => r.method === 'PUT' && r.path.endsWith('/merge'));
    const issuePath = `/repos/acme/widgets/issues/${issue.number}`;
    const after = fake.requests.slice(merge + 1).filter((r) => r.login === 'acme' && (r.path.startsWith(issuePath) || r.path === '/graphql'));
    // The first request on the issue after the merge is the close (with the PR's labels, one GraphQL request), and the only write.
    expect(after.map((r) => `${r.method} ${r.path.startsWith(issuePath) ? r.path.slice(issuePath.length) || '/' : r.path} ${r.operation ?? ''} ${r.status}`)[0]).toBe('POST /graphql LoomCloseMerged 200');
    expect(after.filter((r) => r.method !== 'GET')).toHaveLength(1);
    expect((await owner.listComments(issue.number)).map((c) => c.body).join('\n')).not.toMatch(/merged PR/);
    expect(git(bare, 'log', '--first-parent', '--format=%s', 'main').split('\n')).toHaveLength(2);
  });

  it('killed right after the merge (GitHub closed the issue, loom:building still on it): the next iteration takes the label off and cleans up', async () => {
    const { root, bare, owner } = await setUp();
    const issue = await owner.createIssue({ title: 'Add one.txt', body: builds('one.txt'), labels: [Label.issue] });
    const killed = await loomAsync(root, ['shepherd', String(issue.number), '--force-merge'], { ...env, LOOM_TEST_CRASH_AT: 'merge:pr-marked' });
    expect(killed.code, `${killed.stdout}\n${killed.stderr}`).toBeNull();
    expect(await owner.getIssue(issue.number)).toMatchObject({ state: 'closed', labels: [Label.building] });
    const next = await loomAsync(root, ['iterate'], env);
    expect(next.code, `${next.stdout}\n${next.stderr}`).toBe(0);
    expect(next.stdout).toMatch(new RegExp(`cleaned=#${issue.number}\\b`));
    expect(await owner.getIssue(issue.number)).toMatchObject({ state: 'closed', labels: [] });
    // The merged PR's workflow labels, which the killed merger would have taken off with the close, go too.
    expect((await owner.listPullRequests({ state: 'all' })).map((p) => [p.state, p.labels])).toEqual([['merged', []]]);
    expect(fs.existsSync(path.join(root, '.loom', 'checkpoints', `issue-${issue.number}.json`))).toBe(false);
    // The merged branch goes too, though nothing fetched the host's main since the merge.
    expect(git(root, 'branch', '--list', `loom/issue-${issue.number}`)).toBe('');
    expect(git(bare, 'log', '--first-parent', '--format=%s', 'main').split('\n')).toHaveLength(2);
  });
});

describe('a GitHub merge killed before the close, its issue deleted since', () => {
  it('the next iteration still takes the workflow labels off the merged PR and cleans up', async () => {
    const { root, server: fake, owner } = await setUp();
    const issue = await owner.createIssue({ title: 'Add one.txt', body: builds('one.txt'), labels: [Label.issue] });
    const killed = await loomAsync(root, ['shepherd', String(issue.number), '--force-merge'], { ...env, LOOM_TEST_CRASH_AT: 'merge:pr-marked' });
    expect(killed.code, `${killed.stdout}\n${killed.stderr}`).toBeNull();
    expect((await owner.listPullRequests({ state: 'all' })).map((p) => [p.state, p.labels])).toEqual([['merged', [Label.reviewRequested]]]);
    fake.deleteIssue(issue.number);
    const next = await loomAsync(root, ['iterate'], env);
    expect(next.code, `${next.stdout}\n${next.stderr}`).toBe(0);
    expect((await owner.listPullRequests({ state: 'all' })).map((p) => [p.state, p.labels])).toEqual([['merged', []]]);
    expect(fs.existsSync(path.join(root, '.loom', 'checkpoints', `issue-${issue.number}.json`))).toBe(false);
  });
});

describe('a GitHub merge whose answer was lost and whose PR could not be read back', () => {
  it('is recorded by the next look, which finds the PR merged: the issue is closed, not blocked', async () => {
    const { root, bare, server: fake, owner } = await setUp();
    const issue = await owner.createIssue({ title: 'Add one.txt', body: builds('one.txt'), labels: [Label.issue] });
    let dropped = 0;
    fake.beforeAnswer = (r) => {
      if (dropped > 0 || r.method !== 'PUT' || !r.path.endsWith('/merge')) return undefined;
      dropped += 1;
      // Merged, never answered; and reading the PR back fails for a while (4 × 502: the transport's retries).
      const pull = r.path.replace(/\/merge$/, '');
      fake.failNext({ status: 502, times: 4, match: (m, p) => m === 'GET' && p === pull });
      return { drop: true };
    };
    const run = await loomAsync(root, ['shepherd', String(issue.number), '--force-merge'], env);
    expect(run.code, `${run.stdout}\n${run.stderr}`).toBe(0);
    expect(dropped).toBe(1);
    expect(await owner.getIssue(issue.number)).toMatchObject({ state: 'closed', labels: [] });
    expect((await owner.listPullRequests({ state: 'all' })).map((p) => p.state)).toEqual(['merged']);
    expect((await owner.listComments(issue.number)).map((c) => c.body).join('\n')).not.toMatch(/loom:blocked/);
    expect(git(bare, 'log', '--first-parent', '--format=%s', 'main').split('\n')).toHaveLength(2);
  });
});

describe('a GitHub merge request that failed before it was carried out', () => {
  it('is sent again only after a fresh look at the issue: closed by a human meanwhile, nothing is merged', async () => {
    const { root, bare, server: fake, owner, tracker } = await setUp();
    const issue = await owner.createIssue({ title: 'Add one.txt', body: builds('one.txt'), labels: [Label.issue] });
    const human = tracker('tok-human');
    // The merge request is answered 502 without being carried out; while it fails, a human closes the issue.
    fake.failNext({ status: 502, times: 1, match: (m, p) => m === 'PUT' && p.endsWith('/merge') });
    let closedAt = 0;
    fake.intercept = async ({ method, path: p, login }) => {
      if (closedAt > 0 || login !== 'acme' || method !== 'PUT' || !p.endsWith('/merge')) return;
      closedAt = Date.now();
      await human.close(issue.number, "Human: won't do.");
    };
    const run = await loomAsync(root, ['shepherd', String(issue.number), '--force-merge'], env);
    expect(closedAt).toBeGreaterThan(0);
    expect(run.stdout + run.stderr).not.toMatch(/merged PR/);
    expect((await owner.listPullRequests({ state: 'all' })).map((p) => p.state)).toEqual(['open']);
    expect(git(bare, 'log', '--first-parent', '--format=%s', 'main').split('\n')).toHaveLength(1);
    const merges = fake.requests.filter((r) => r.method === 'PUT' && r.path.endsWith('/merge'));
    expect(merges.map((r) => r.status)).toEqual([502]);
  });
});
