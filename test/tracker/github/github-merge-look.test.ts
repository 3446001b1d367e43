/**
 * `GitHubTracker.mergeLook`: one GraphQL query answers what a merge needs to know of a PR (its
 * state, labels and number of reviews, and the checks on a commit and on the base's head as a
 * whole), against the GitHub-shaped server over HTTP; anything it cannot have is null, never a
 * guess, and its own rate-limit budget leaves the REST one alone.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { GitHubTracker } from '../../../src/tracker/github/github-tracker.js';
import { FakeGitHubServer } from '../../fakes/github-server.js';

const servers: FakeGitHubServer[] = [];
const trackers: GitHubTracker[] = [];
const dirs: string[] = [];
const plain: http.Server[] = [];

afterEach(async () => {
  for (const t of trackers.splice(0)) t.dispose();
  for (const s of servers.splice(0)) await s.close();
  for (const s of plain.splice(0)) await new Promise((resolve) => s.close(resolve));
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

const git = (cwd: string, ...args: string[]): string => execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@t', ...args], { cwd, encoding: 'utf8' }).trim();

/** A bare repository with `main` and a branch `loom/issue-1` one commit ahead, behind the GitHub-shaped server. */
async function repoWithBranch(): Promise<{ server: FakeGitHubServer; tracker: GitHubTracker; main: string; head: string }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'loom-look-'));
  dirs.push(dir);
  const bare = path.join(dir, 'origin.git');
  const work = path.join(dir, 'work');
  execFileSync('git', ['init', '--bare', '-q', '-b', 'main', bare]);
  execFileSync('git', ['init', '-q', '-b', 'main', work]);
  fs.writeFileSync(path.join(work, 'a.txt'), 'a\n');
  git(work, 'add', '.');
  git(work, 'commit', '-qm', 'a');
  git(work, 'push', '-q', bare, 'main');
  git(work, 'checkout', '-qb', 'loom/issue-1');
  fs.writeFileSync(path.join(work, 'b.txt'), 'b\n');
  git(work, 'add', '.');
  git(work, 'commit', '-qm', 'b');
  git(work, 'push', '-q', bare, 'loom/issue-1');
  const server = await FakeGitHubServer.start({ gitDir: bare });
  servers.push(server);
  const tracker = new GitHubTracker({ owner: server.owner, repo: server.repo, token: 'test-token', baseUrl: server.url, retryDelayMs: 1 });
  trackers.push(tracker);
  return { server, tracker, main: git(work, 'rev-parse', 'main'), head: git(work, 'rev-parse', 'HEAD') };
}

describe('GitHubTracker.mergeLook', () => {
  it('answers state, labels, reviews and the checks on the head and the base in one GraphQL request', async () => {
    const { server, tracker, main, head } = await repoWithBranch();
    const pr = await tracker.createPullRequest({ title: 'b', head: 'loom/issue-1', base: 'main', labels: ['loom:review-requested'] });
    const sent = server.requests.length;
    const look = await tracker.mergeLook(pr.number, 'main', head);
    expect(server.requests.slice(sent).map((r) => `${r.method} ${r.path} ${r.status}`)).toEqual(['POST /graphql 200']);
    expect(look).toMatchObject({ state: 'open', head, labels: ['loom:review-requested'], reviews: 0, checks: 'none', base: { sha: main, checks: false } });

    // Checks: settled only when every one passed; pending, failed or an error status is "other".
    server.setCheckRun(head, { name: 'unit', status: 'in_progress' });
    expect((await tracker.mergeLook(pr.number, 'main', head))?.checks).toBe('other');
    server.setCheckRun(head, { name: 'unit', status: 'completed', conclusion: 'success' });
    server.setCheckRun(head, { name: 'lint', status: 'completed', conclusion: 'skipped' });
    expect((await tracker.mergeLook(pr.number, 'main', head))?.checks).toBe('success');
    server.setStatus(head, { context: 'ci/legacy', state: 'pending' });
    expect((await tracker.mergeLook(pr.number, 'main', head))?.checks).toBe('other');
    server.setStatus(head, { context: 'ci/legacy', state: 'success' });
    expect((await tracker.mergeLook(pr.number, 'main', head))?.checks).toBe('success');
    server.setCheckRun(head, { name: 'unit', status: 'completed', conclusion: 'failure' });
    expect((await tracker.mergeLook(pr.number, 'main', head))?.checks).toBe('other');

    // CI on the base, a review on the PR.
    server.setStatus(main, { context: 'deploy', state: 'success' });
    await fetch(`${server.url}/repos/${server.owner}/${server.repo}/pulls/${pr.number}/reviews`, { method: 'POST', headers: { authorization: 'token test-token', 'content-type': 'application/json' }, body: JSON.stringify({ event: 'COMMENT', body: 'looks odd' }) });
    expect(await tracker.mergeLook(pr.number, 'main', head)).toMatchObject({ reviews: 1, base: { sha: main, checks: true } });
  });

  it('a commit GitHub does not have settles nothing; a PR that is not there, or a refused query, is null', async () => {
    const { server, tracker, head } = await repoWithBranch();
    const pr = await tracker.createPullRequest({ title: 'b', head: 'loom/issue-1', base: 'main', labels: [] });
    expect((await tracker.mergeLook(pr.number, 'main', 'f'.repeat(40)))?.checks).toBe('other');
    expect(await tracker.mergeLook(999, 'main', head)).toBeNull();
    server.failNext({ status: 502, match: (_method, p) => p === '/graphql' });
    expect(await tracker.mergeLook(pr.number, 'main', head)).toBeNull();
    // GraphQL's budget is its own: a refused query opens no circuit for REST reads.
    server.failNext({ status: 403, retryAfter: 60, match: (_method, p) => p === '/graphql' });
    expect(await tracker.mergeLook(pr.number, 'main', head)).toBeNull();
    expect(tracker.health().state).toBe('ok');
    expect(await tracker.getPullRequest(pr.number)).toMatchObject({ state: 'open' });
  });

  it('keeps the REST budget it knows when a GraphQL answer reports its own', async () => {
    const { server, tracker, head } = await repoWithBranch();
    const pr = await tracker.createPullRequest({ title: 'b', head: 'loom/issue-1', base: 'main', labels: [] });
    const rest = tracker.rateLimit().remaining;
    server.graphqlRemaining = 7;
    await tracker.mergeLook(pr.number, 'main', head);
    expect(server.graphqlRemaining).toBe(6);
    expect(tracker.rateLimit().remaining).toBe(rest);
  });

  it('on GitHub Enterprise Server (REST under /api/v3) asks /api/graphql', async () => {
    const asked: string[] = [];
    const server = http.createServer((req, res) => {
      asked.push(`${req.method} ${req.url}`);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ data: { repository: { pullRequest: { state: 'MERGED', headRefOid: 'a'.repeat(40), labels: { nodes: [] }, reviews: { totalCount: 0 } }, ref: null, object: null } } }));
    });
    plain.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    const tracker = new GitHubTracker({ owner: 'acme', repo: 'widgets', token: 't', baseUrl: `http://127.0.0.1:${port}/api/v3` });
    trackers.push(tracker);
    expect(await tracker.mergeLook(3, 'main', 'a'.repeat(40))).toMatchObject({ state: 'merged', checks: 'other', base: null });
    expect(asked).toEqual(['POST /api/graphql']);
  });
});
