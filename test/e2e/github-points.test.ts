// What a force-merging shepherd sends GitHub for one issue, counted by route on the fake: the
// approval it merges at once is never labelled (the merge would take the label off again), and
// the approval of a PR that waits is labelled before the wait.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Label } from '../../src/core/labels.js';
import { branchFor } from '../../src/git/worktrees.js';
import { git, githubRepo, removeGitHubRepos } from '../helpers/github-repo.js';
import { loomAsync, until } from '../helpers/loom-repo.js';

afterEach(removeGitHubRepos);

const fence = '```';
const builder = (file: string) => `${fence}loom-script builder\nwrite ${file} <<EOF\n${file}\nEOF\n${fence}`;

describe('github: a force-merging shepherd’s requests', () => {
  it('merges an approved PR without writing loom:pr on it: one label write at creation, one after the merge', { timeout: 120_000 }, async () => {
    const { root, server, env, owner } = await githubRepo({ config: { runtime: 'script', heartbeatInterval: '0.5s' } });
    await owner.createIssue({ title: 'Add a.txt', body: builder('a.txt'), labels: [Label.issue] });
    const sent = server.requests.length;

    const run = await loomAsync(root, ['shepherd', '1', '--force-merge'], env);
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(run.stdout).toMatch(/merged PR #2/);
    const pr = '/repos/acme/widgets/issues/2';
    const mine = server.requests.slice(sent).filter((r) => r.login === 'acme');
    const onPr = mine.filter((r) => r.method !== 'GET' && r.path.replace(/\?.*/, '').startsWith(pr));
    // The label at creation and the review comment: no verdict label read or write.
    expect(onPr.map((r) => `${r.method} ${r.path.replace(/\?.*/, '').slice(pr.length)}`)).toEqual(['POST /labels', 'POST /comments']);
    // The labels come off the merged PR in the one GraphQL request that closes the issue, right after the merge: no REST write after it.
    const merged = mine.findIndex((r) => r.method === 'PUT' && r.path.endsWith('/pulls/2/merge'));
    expect(mine.slice(merged + 1).filter((r) => r.method !== 'GET').map((r) => `${r.method} ${r.path} ${r.operation ?? ''}`)).toEqual(['POST /graphql LoomCloseMerged']);
    // The PR is followed as an issue (one answer, then 304s), never read whole.
    const looks = mine.filter((r) => r.method === 'GET' && r.path === pr);
    expect(looks.map((r) => r.status)).toEqual([200, ...looks.slice(1).map(() => 304)]);
    expect(mine.filter((r) => r.method === 'GET' && r.path.replace(/\?.*/, '') === '/repos/acme/widgets/pulls/2')).toEqual([]);
    const events = await owner.listEvents(2);
    expect(events.filter((e) => e.type === 'labeled').map((e) => e.label)).toEqual([Label.reviewRequested]);
    expect(await owner.getPullRequest(2)).toMatchObject({ state: 'merged', labels: [] });
    expect((await owner.listComments(2)).map((c) => c.body)).toEqual([expect.stringMatching(/^\*\*Loom/)]);
    expect(await owner.getIssue(1)).toMatchObject({ state: 'closed', labels: [] });
  });

  it('merges in a row without CI: the guard reads nothing after a merge, the next merge nothing about the base head it left, no open-PR list (one clone); once GitHub\'s "none" is 15 min old the base head is read again, and CI added to main only is then waited for', { timeout: 180_000 }, async () => {
    const { root, bare, server, env, owner } = await githubRepo({ config: { runtime: 'script', heartbeatInterval: '0.5s', checksPollInterval: '0.1s' } });
    for (const f of ['a', 'b', 'c']) await owner.createIssue({ title: `Add ${f}.txt`, body: builder(`${f}.txt`), labels: [Label.issue] });
    const guardFile = path.join(root, '.loom', 'base-guard.json');
    const ci = () => (JSON.parse(fs.readFileSync(guardFile, 'utf8')) as { ci: { commit: string; checks: boolean; read_at: string } }).ci;
    const asked = (from: number) => server.requests.slice(from).filter((r) => r.login === 'acme').map((r) => `${r.method} ${r.path.replace(/\?.*/, '')}${r.operation === 'LoomCloseMerged' ? ' (close)' : ''}`);

    let sent = server.requests.length;
    const first = await loomAsync(root, ['shepherd', '1', '--force-merge'], env);
    expect(first.code, first.stdout + first.stderr).toBe(0);
    const m1 = git(bare, 'rev-parse', 'main');
    // One look (GraphQL) answers for the PR's reviews and checks and for the base head it merged
    // onto: no REST read of either; its own merge is not looked at.
    expect(asked(sent).filter((r) => r === 'POST /graphql')).toHaveLength(1);
    expect(asked(sent).filter((r) => r.includes('/commits/') || r.includes('/reviews'))).toEqual([]);
    expect(first.stdout).toMatch(/is green \(no CI checks expected\)/);
    expect(ci()).toMatchObject({ commit: m1, checks: false });

    sent = server.requests.length;
    const second = await loomAsync(root, ['shepherd', '2', '--force-merge'], env);
    expect(second.code, second.stdout + second.stderr).toBe(0);
    const m2 = git(bare, 'rev-parse', 'main');
    expect(asked(sent).filter((r) => r.includes(`/commits/${m1}/`) || r.includes(`/commits/${m2}/`))).toEqual([]);
    expect(asked(sent).filter((r) => r === 'POST /graphql')).toHaveLength(1);
    expect(asked(sent).filter((r) => r === 'GET /repos/acme/widgets/pulls')).toEqual([]);
    expect(await owner.getIssue(2)).toMatchObject({ state: 'closed' });

    // A quarter of an hour later main has CI that runs on main only (none on PRs): the next merge's
    // look finds it on main's head, and the guard waits for the checks on its own merge.
    const aged = { ...ci(), read_at: new Date(Date.now() - 16 * 60_000).toISOString() };
    fs.writeFileSync(guardFile, JSON.stringify({ ...JSON.parse(fs.readFileSync(guardFile, 'utf8')), ci: aged }));
    server.setCheckRun(m2, { name: 'deploy', status: 'completed', conclusion: 'success' });
    let looks = 0;
    server.intercept = ({ method, path: p }) => {
      const sha = /\/commits\/([0-9a-f]{40})\/check-runs/.exec(p)?.[1];
      if (method !== 'GET' || sha === undefined || sha === m2 || git(bare, 'rev-parse', 'main') !== sha) return;
      // No check on the new head at the first look (CI reports a moment after the push); then it passes.
      if ((looks += 1) > 1) server.setCheckRun(sha, { name: 'deploy', status: 'completed', conclusion: 'success' });
    };
    sent = server.requests.length;
    const third = await loomAsync(root, ['shepherd', '3', '--force-merge'], env);
    expect(third.code, third.stdout + third.stderr).toBe(0);
    const m3 = git(bare, 'rev-parse', 'main');
    expect(asked(sent).filter((r) => r.includes(`/commits/${m2}/`))).toEqual([]);
    expect(looks).toBeGreaterThan(1);
    expect(third.stdout).toMatch(new RegExp(`main at ${m3.slice(0, 12)} is green \\(checks passed\\)`));
    expect(ci()).toMatchObject({ commit: m3, checks: true });
  });

  it('a merge look GitHub does not answer changes nothing but the cost: the reviews and checks are read over REST, and the PR is merged', { timeout: 120_000 }, async () => {
    const { root, server, env, owner } = await githubRepo({ config: { runtime: 'script', heartbeatInterval: '0.5s' } });
    await owner.createIssue({ title: 'Add a.txt', body: builder('a.txt'), labels: [Label.issue] });
    server.failNext({ status: 502, times: 10, match: (_method, p) => p === '/graphql' });
    const sent = server.requests.length;
    const run = await loomAsync(root, ['shepherd', '1', '--force-merge'], env);
    expect(run.code, run.stdout + run.stderr).toBe(0);
    const asked = server.requests.slice(sent).filter((r) => r.login === 'acme').map((r) => `${r.method} ${r.path.replace(/\?.*/, '')} ${r.status}`);
    expect(asked.filter((r) => r.startsWith('POST /graphql')).length).toBeGreaterThan(0);
    expect(asked.filter((r) => r.startsWith('POST /graphql')).every((r) => r.endsWith(' 502'))).toBe(true);
    expect(asked).toContain('GET /repos/acme/widgets/pulls/2/reviews 200');
    expect(asked.filter((r) => /^GET \/repos\/acme\/widgets\/commits\/[0-9a-f]{40}\/(check-runs|status) 200$/.test(r)).length).toBeGreaterThanOrEqual(2);
    // The close after the merge went the REST way too: the PR's workflow labels off, the issue closed with its own.
    expect(asked).toContain('PUT /repos/acme/widgets/issues/2/labels 200');
    expect(await owner.getPullRequest(2)).toMatchObject({ state: 'merged', labels: [] });
    expect(await owner.getIssue(1)).toMatchObject({ state: 'closed', labels: [] });
  });

  it('labels the approval loom:pr once another merge has kept the merge lock for 5 s', { timeout: 120_000 }, async () => {
    const { root, env, owner } = await githubRepo({ config: { runtime: 'script', heartbeatInterval: '0.5s' } });
    await owner.createIssue({ title: 'Add c.txt', body: builder('c.txt'), labels: [Label.issue] });
    const mergeLock = path.join(root, '.loom', 'merge.lock');
    fs.writeFileSync(mergeLock, String(process.pid)); // another merge holds the lock
    const shepherd = loomAsync(root, ['shepherd', '1', '--force-merge'], env);
    // Approved (the review comment is on the PR), waiting for the lock: no label at first, loom:pr after 5 s.
    await until(async () => (await owner.listComments(2).catch(() => [])).length > 0, 60_000, 'the approval posted on the PR');
    const posted = Date.now();
    expect((await owner.getPullRequest(2))?.labels).toEqual([Label.reviewRequested]);
    await until(async () => (await owner.getPullRequest(2))?.labels.includes(Label.pr) === true, 30_000, 'loom:pr on the PR while it waits for the lock');
    expect(Date.now() - posted).toBeGreaterThanOrEqual(3_000);
    expect((await owner.getPullRequest(2))?.state).toBe('open');
    fs.rmSync(mergeLock);
    const run = await shepherd;
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(await owner.getPullRequest(2)).toMatchObject({ state: 'merged', labels: [] });
  });

  it('labels the approval loom:pr before the merge waits on pending checks', { timeout: 120_000 }, async () => {
    const { root, bare, server, env, owner } = await githubRepo({ config: { runtime: 'script', heartbeatInterval: '0.5s', checksPollInterval: '0.1s' } });
    const heads = new Set<string>();
    server.intercept = ({ method, path: p }) => {
      // CI starts on the PR's head as the PR opens, and on main's new head when first asked about.
      const sha = method === 'POST' && p === '/repos/acme/widgets/pulls' ? git(bare, 'rev-parse', branchFor(1)) : method === 'GET' ? /\/commits\/([0-9a-f]{40})\/check-runs/.exec(p)?.[1] : undefined;
      if (sha !== undefined && !heads.has(sha)) {
        heads.add(sha);
        server.setCheckRun(sha, { name: 'unit', status: 'in_progress' });
      }
    };
    await owner.createIssue({ title: 'Add b.txt', body: builder('b.txt'), labels: [Label.issue] });
    const shepherd = loomAsync(root, ['shepherd', '1', '--force-merge'], env);
    const head = await until(() => [...heads][0], 60_000, 'Loom to ask about the head’s checks');
    await until(async () => (await owner.getPullRequest(2))?.labels.includes(Label.pr) === true, 30_000, 'loom:pr on the PR while it waits on checks');
    expect((await owner.getPullRequest(2))?.state).toBe('open');
    server.setCheckRun(head, { name: 'unit', status: 'completed', conclusion: 'success' });
    // The post-merge guard's look at main's new head: its own run, passed.
    const merged = await until(() => [...heads][1], 60_000, 'Loom to ask about main’s new head');
    server.setCheckRun(merged, { name: 'unit', status: 'completed', conclusion: 'success' });
    const run = await shepherd;
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(await owner.getPullRequest(2)).toMatchObject({ state: 'merged', labels: [] });
  });
});
