// CI checks on GitHub: a merge waits on the pushed head's checks with conditional polls (free
// while nothing changed), a red check sends the PR to the Doctor with the check's output, and the
// new head is merged only once its own checks are green.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Label } from '../../src/core/labels.js';
import { branchFor } from '../../src/git/worktrees.js';
import { git, githubRepo, pushAsHuman, removeGitHubRepos } from '../helpers/github-repo.js';
import { loomAsync, until } from '../helpers/loom-repo.js';

afterEach(removeGitHubRepos);

const fence = '```';
const script = (role: string, body: string) => `${fence}loom-script ${role}\n${body}\n${fence}`;

describe('github: CI checks gate the merge', () => {
  it('red check → Doctor with its output → the new head waits for its own checks → green → merged; idle polls are 304s at zero cost', { timeout: 120_000 }, async () => {
    const { root, bare, server, env, owner } = await githubRepo({ config: { runtime: 'script', heartbeatInterval: '0.5s', checksPollInterval: '0.1s' } });
    const ci = server;
    // A CI app: every commit Loom asks about has a check run `unit` in progress from the start.
    ci.intercept = ({ checksOf }) => {
      const sha = checksOf ?? undefined;
      if (sha !== undefined && !started.has(sha)) {
        started.add(sha);
        ci.setCheckRun(sha, { name: 'unit', status: 'in_progress' });
      }
    };
    const started = new Set<string>();
    server.setRequiredChecks('main', ['unit', 'lint']);
    await owner.createIssue({ title: 'Add a.txt', body: [script('builder', 'write a.txt <<EOF\na\nEOF'), script('doctor', 'write a.txt <<EOF\na, fixed\nEOF')].join('\n\n'), labels: [Label.issue] });

    const shepherd = loomAsync(root, ['shepherd', '1', '--force-merge'], env);
    const checkPolls = (sha: string) => server.requests.filter((r) => r.path.includes(`/commits/${sha}/`));
    const branchSha = () => spawnSync('git', ['rev-parse', 'refs/heads/loom/issue-1'], { cwd: bare, encoding: 'utf8' }).stdout.trim();

    // First head: let Loom poll a while with nothing changing, then the check fails.
    const first = await until(() => [...started][0], 60_000, 'Loom to ask about the first head’s checks');
    expect(branchSha()).toBe(first);
    await until(() => checkPolls(first).length >= 8, 30_000, 'several polls of the first head');
    const idle = checkPolls(first).slice(2); // after the first answer of each endpoint
    expect(idle.every((r) => r.method === 'GET' && r.conditional && r.status === 304), JSON.stringify(idle)).toBe(true);
    const remaining = server.remaining;
    await until(() => checkPolls(first).length >= 12, 30_000, 'more idle polls');
    expect(server.remaining).toBe(remaining); // idle polls cost no rate limit
    // The queue and the gate are visible while it waits.
    const status = await loomAsync(root, ['status'], env);
    expect(status.stdout).toMatch(/Queue for the merge lock: 1\. PR #2 \(issue #1, shepherd\) waiting on checks: unit, lint/);
    const why = await loomAsync(root, ['why', '1'], env);
    expect(why.stdout).toMatch(/✗ CI checks\s+waiting on unit, lint/);
    expect(fs.readFileSync(path.join(root, '.loom', 'worktrees', 'issue-1', 'a.txt'), 'utf8')).toBe('a\n');
    server.setCheckRun(first, { name: 'unit', status: 'completed', conclusion: 'failure', output: { title: '1 test failed', summary: 'a.txt is not fixed', text: 'expected "a, fixed"' }, annotations: [{ path: 'a.txt', start_line: 1, end_line: 1, annotation_level: 'failure', title: 'content', message: 'expected "a, fixed", got "a"' }] });

    // The Doctor fixes it; the new head gets its own run, and only its success merges.
    const second = await until(() => [...started][1], 60_000, 'Loom to ask about the doctored head’s checks');
    expect(second).not.toBe(first);
    await until(() => checkPolls(second).length >= 4, 30_000, 'polls of the second head');
    expect((await owner.getPullRequest(2))?.state).toBe('open');
    server.setCheckRun(second, { name: 'unit', status: 'completed', conclusion: 'success' });
    server.setStatus(second, { context: 'lint', state: 'success' });
    // Not required by branch protection (only `unit` and `lint` are): its failure does not hold the merge.
    server.setStatus(second, { context: 'coverage', state: 'failure', description: 'coverage dropped' });
    // The post-merge guard waits on the checks of main's new head too.
    const merged = await until(() => [...started][2], 60_000, 'Loom to ask about the checks of main’s new head');
    expect(git(bare, 'rev-parse', 'main')).toBe(merged);
    server.setCheckRun(merged, { name: 'unit', status: 'completed', conclusion: 'success' });

    const r = await shepherd;
    expect(r.stdout).toMatch(/post-merge guard: main at [0-9a-f]{12} is green \(checks passed\)/);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/PR #2: waiting on checks unit/);
    expect(r.stdout).toMatch(/checks failed: unit \(failure\); a doctor round fixes it/);
    expect(git(bare, 'show', 'main:a.txt')).toBe('a, fixed');
    const comments = (await owner.listComments(2)).map((c) => c.body);
    expect(comments).toContainEqual(expect.stringMatching(/^\*\*Loom\*\* — CI checks failed on [0-9a-f]{12}: `unit` \(failure\).*### unit: failure\n\n1 test failed\n\na\.txt is not fixed\n\nexpected "a, fixed"\n\nAnnotations:\n- `a\.txt:1` failure — content: expected "a, fixed", got "a"/s));
    expect((await owner.getPullRequest(2))?.state).toBe('merged');
  });

  it('commit statuses only, red on every head: one doctor round (maxDoctorRounds 1), then blocked for the failing checks, by name — not for a judge that approved', { timeout: 120_000 }, async () => {
    const { root, server, env, owner } = await githubRepo({ config: { runtime: 'script', heartbeatInterval: '0.5s', checksPollInterval: '0.1s', maxDoctorRounds: 1 } });
    // A CI that reports through the commit status API only, and fails every commit it sees.
    const seen = new Set<string>();
    server.intercept = ({ checksOf }) => {
      const sha = checksOf ?? undefined;
      if (sha === undefined || seen.has(sha)) return;
      seen.add(sha);
      server.setStatus(sha, { context: 'ci/build', state: 'failure', description: 'the build broke' });
    };
    await owner.createIssue({ title: 'Add a.txt', body: [script('builder', 'write a.txt <<EOF\na\nEOF'), script('doctor', 'write a.txt <<EOF\nb\nEOF')].join('\n\n'), labels: [Label.issue] });
    const r = await loomAsync(root, ['shepherd', '1', '--force-merge'], env);
    expect(r.code, r.stdout + r.stderr).not.toBe(0);
    expect(r.stdout.match(/checks failed: ci\/build \(failure\); a doctor round fixes it/g)).toHaveLength(1);
    expect(r.stdout).toMatch(/doctor round 1/);
    expect(r.stdout).toMatch(/blocked: CI checks still fail after 1 doctor round\(s\): ci\/build \(failure\) \(their output is on PR #2\)/);
    expect(r.stdout).not.toMatch(/the judge still requests changes/);
    expect(seen.size).toBe(2);
    expect(await owner.getIssue(1)).toMatchObject({ state: 'open', labels: [Label.blocked] });
    expect((await owner.listComments(1)).at(-1)?.body).toMatch(/^Loom: CI checks still fail after 1 doctor round\(s\): ci\/build \(failure\)/);
    // Both failures are on the PR with the status's description, for whoever picks it up.
    expect((await owner.listComments(2)).filter((c) => /CI checks failed on [0-9a-f]{12}: `ci\/build` \(failure\).*the build broke/s.test(c.body))).toHaveLength(2);
    expect((await owner.getPullRequest(2))?.state).toBe('open');
  });

  it('CI that runs on main only (none on the PR) and reports a moment after the push: the guard waits for it, finds main red and reverts', { timeout: 120_000 }, async () => {
    const { root, bare, server, env, owner } = await githubRepo({ config: { runtime: 'script', heartbeatInterval: '0.5s', checksPollInterval: '0.1s' } });
    // Main's CI: it ran on the first commit; on a later head of main it has not reported at the
    // first look, then fails when main holds feature.txt. PR heads get no checks at all.
    server.setCheckRun(git(bare, 'rev-parse', 'main'), { name: 'deploy', status: 'completed', conclusion: 'success' });
    const looked = new Set<string>();
    server.intercept = ({ checksOf }) => {
      const sha = checksOf ?? undefined;
      if (sha === undefined || git(bare, 'rev-parse', 'main') !== sha) return;
      if (!looked.has(sha)) {
        looked.add(sha);
        return;
      }
      const red = spawnSync('git', ['cat-file', '-e', `${sha}:feature.txt`], { cwd: bare }).status === 0;
      server.setCheckRun(sha, { name: 'deploy', status: 'completed', conclusion: red ? 'failure' : 'success', output: red ? { title: 'deploy failed', summary: 'feature.txt breaks the deploy' } : {} });
    };
    await owner.createIssue({ title: 'Add the feature', body: script('builder', 'write feature.txt <<EOF\nfeature\nEOF'), labels: [Label.issue] });
    const r = await loomAsync(root, ['shepherd', '1', '--force-merge'], env);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    // It once took the first, empty look for 'no CI checks' and called main green.
    expect(r.stdout).not.toMatch(/is green \(no CI checks\)/);
    expect(r.stdout).toMatch(/post-merge guard: PR #2 turned main red; reverted in PR #3; issue #1 reopened as loom:blocked; merging paused/);
    expect(await owner.getIssue(1)).toMatchObject({ state: 'open', labels: [Label.blocked] });
  });

  it('a merge that turns main red: a revert PR, the issue reopened as loom:blocked, merging paused (the next shepherd leaves its PR), resumed once main is green; main holds the second change only', { timeout: 180_000 }, async () => {
    const { root, bare, server, env, owner } = await githubRepo({ config: { runtime: 'script', heartbeatInterval: '0.5s', checksPollInterval: '0.1s' } });
    const ci = server;
    // A CI app whose integration job runs on main only: a commit on main that holds feature.txt fails it.
    ci.intercept = ({ checksOf }) => {
      const sha = checksOf ?? undefined;
      if (sha === undefined || ran.has(sha)) return;
      ran.add(sha);
      const onMain = spawnSync('git', ['rev-parse', 'main'], { cwd: bare, encoding: 'utf8' }).stdout.trim() === sha;
      const hasFeature = spawnSync('git', ['cat-file', '-e', `${sha}:feature.txt`], { cwd: bare }).status === 0;
      const red = onMain && hasFeature;
      ci.setCheckRun(sha, { name: 'integration', status: 'completed', conclusion: red ? 'failure' : 'success', output: red ? { title: 'integration failed', summary: 'feature.txt breaks the deploy' } : {} });
    };
    const ran = new Set<string>();
    await owner.createIssue({ title: 'Add the feature', body: script('builder', 'write feature.txt <<EOF\nfeature\nEOF'), labels: [Label.issue] });
    await owner.createIssue({ title: 'Add two', body: script('builder', 'write two.txt <<EOF\ntwo\nEOF'), labels: [Label.issue] });

    const one = await loomAsync(root, ['shepherd', '1', '--force-merge'], env);
    expect(one.code, one.stdout + one.stderr).toBe(0);
    expect(one.stdout).toMatch(/merged PR #3 as [0-9a-f]{12}/);
    expect(one.stdout).toMatch(/post-merge guard: PR #3 turned main red; reverted in PR #4; issue #1 reopened as loom:blocked; merging paused/);
    const revert = await owner.getPullRequest(4);
    expect(revert).toMatchObject({ state: 'open', base: 'main', title: 'Revert #1: Add the feature' });
    expect(revert?.body).toMatch(/Reverts PR #3 .*integration: failure.*feature\.txt breaks the deploy/s);
    expect(git(bare, 'show', `${revert!.head}:README.md`)).toBe('# widgets');
    expect(spawnSync('git', ['cat-file', '-e', `${revert!.head}:feature.txt`], { cwd: bare }).status).not.toBe(0);
    const issue = await owner.getIssue(1);
    expect(issue).toMatchObject({ state: 'open', labels: [Label.blocked] });
    expect((await owner.listComments(1)).at(-1)?.body).toMatch(/^Loom: `main` went red after PR #3 was merged .* reverted it in PR #4 .*marking this issue `loom:blocked`.*integration failed/s);

    // Paused: the next approved PR is not merged; its shepherd leaves it for the Champion.
    const two = await loomAsync(root, ['shepherd', '2', '--force-merge'], env);
    expect(two.code, two.stdout + two.stderr).toBe(0);
    expect(two.stdout).toMatch(/PR #5 approved, not merged: merging is paused: main went red after PR #3/);
    expect((await owner.getPullRequest(5))).toMatchObject({ state: 'open', labels: [Label.pr] });
    const status = await loomAsync(root, ['status'], env);
    expect(status.stdout).toMatch(/PAUSED since .*: merging is paused: main went red after PR #3 \(issue #1, reverted in PR #4\)/);
    expect(status.stdout).toMatch(/merge the revert PR #4, or commit a fix to it/);
    const stillRed = await loomAsync(root, ['role', 'champion'], env);
    expect(stillRed.stdout).toMatch(/merged nothing; skipped #5 \(paused\)/);

    // A maintainer merges the revert PR: main's new head passes, merging resumes, #5 goes in.
    await owner.markMerged(4);
    const resumed = await loomAsync(root, ['role', 'champion'], env);
    expect(resumed.stdout, resumed.stdout + resumed.stderr).toMatch(/main is green again at [0-9a-f]{12}; merging resumed/);
    expect(resumed.stdout).toMatch(/merged #5/);
    expect(git(bare, 'show', 'main:two.txt')).toBe('two');
    expect(spawnSync('git', ['cat-file', '-e', 'main:feature.txt'], { cwd: bare }).status).not.toBe(0);
    expect((await owner.getIssue(2))?.state).toBe('closed');
    const final = await loomAsync(root, ['status'], env);
    expect(final.stdout).not.toMatch(/PAUSED/);
    expect(final.stdout).toMatch(/Last post-merge check .*: green/);
  });
  it('a revert PR a person closes without merging: status no longer calls the merge reverted nor says to merge that PR; the pause holds until main is green', { timeout: 180_000 }, async () => {
    const { root, bare, server, env, owner } = await githubRepo({ config: { runtime: 'script', heartbeatInterval: '0.5s', checksPollInterval: '0.1s' } });
    // CI on main only: a head of main that holds feature.txt fails.
    server.intercept = ({ checksOf }) => {
      const sha = checksOf ?? undefined;
      if (sha === undefined) return;
      const onMain = spawnSync('git', ['rev-parse', 'main'], { cwd: bare, encoding: 'utf8' }).stdout.trim() === sha;
      const red = onMain && spawnSync('git', ['cat-file', '-e', `${sha}:feature.txt`], { cwd: bare }).status === 0;
      server.setCheckRun(sha, { name: 'integration', status: 'completed', conclusion: red ? 'failure' : 'success' });
    };
    await owner.createIssue({ title: 'Add the feature', body: script('builder', 'write feature.txt <<EOF\nfeature\nEOF'), labels: [Label.issue] });
    await owner.createIssue({ title: 'Add two', body: script('builder', 'write two.txt <<EOF\ntwo\nEOF'), labels: [Label.issue] });
    const one = await loomAsync(root, ['shepherd', '1', '--force-merge'], env);
    expect(one.stdout, one.stdout + one.stderr).toMatch(/reverted in PR #4; issue #1 reopened as loom:blocked; merging paused/);
    const two = await loomAsync(root, ['shepherd', '2', '--force-merge'], env);
    expect(two.stdout, two.stdout + two.stderr).toMatch(/PR #5 approved, not merged: merging is paused/);

    // The maintainer closes the revert PR: they will fix main another way.
    await owner.close(4);
    const champion = await loomAsync(root, ['role', 'champion'], env);
    expect(champion.stdout, champion.stdout + champion.stderr).toMatch(/the revert PR #4 was closed without merging; merging stays paused until main is green/);
    expect(champion.stdout).toMatch(/skipped #5 \(paused\)/);
    const status = await loomAsync(root, ['status'], env);
    expect(status.stdout).toMatch(/merging is paused: main went red after PR #3 \(issue #1, not reverted: its revert PR #4 was closed without merging\)/);
    expect(status.stdout).not.toMatch(/merge the revert PR #4/);
    expect(status.stdout).toMatch(/Make it green again \(commit a fix to it\)/);

    // A fix on main (feature.txt removed by hand): green, merging resumes.
    const fix = path.join(root, '..', 'fix');
    git(root, 'clone', '-q', bare, fix);
    git(fix, 'rm', '-q', 'feature.txt');
    git(fix, '-c', 'user.name=Maintainer', '-c', 'user.email=m@localhost', 'commit', '-qm', 'fix main another way');
    git(fix, 'push', '-q', 'origin', 'main');
    const resumed = await loomAsync(root, ['role', 'champion'], env);
    expect(resumed.stdout, resumed.stdout + resumed.stderr).toMatch(/main is green again at [0-9a-f]{12}; merging resumed/);
    expect(resumed.stdout).toMatch(/merged #5/);
  });

  for (const look of ['answered', 'refused'] as const) {
  it(`a branch rebased onto a moved main is merged only once its new head passed: CI that reported on the PR reports on the new head a moment after the push, and is waited for (merge look ${look})`, { timeout: 120_000 }, async () => {
    const { root, bare, server, env, owner } = await githubRepo({ config: { runtime: 'script', heartbeatInterval: '0.5s', checksPollInterval: '0.1s' } });
    // Refused: every GraphQL query answered 502, so the REST reads decide alone.
    if (look === 'refused') server.failNext({ status: 502, times: 10_000, match: (_method, p) => p === '/graphql' });
    // CI on every branch head (the PRs' and main's): it reports (passed) 400 ms after the head appears on origin.
    const seenAt = new Map<string, number>();
    const reportedAt = new Map<string, number>();
    const mergeRequestedAt: number[] = [];
    server.intercept = ({ method, path: p }) => {
      for (const sha of git(bare, 'for-each-ref', '--format=%(objectname)', 'refs/heads/').split('\n').filter(Boolean)) {
        if (!seenAt.has(sha)) seenAt.set(sha, Date.now());
        if (!reportedAt.has(sha) && Date.now() - (seenAt.get(sha) ?? 0) >= 400) {
          reportedAt.set(sha, Date.now());
          server.setCheckRun(sha, { name: 'unit', status: 'completed', conclusion: 'success' });
        }
      }
      if (method === 'PUT' && /\/pulls\/\d+\/merge$/.test(p)) mergeRequestedAt.push(Date.now());
    };
    // Two issues built side by side: the second to merge has to be rebased onto the first's merge.
    const judge = script('judge', 'sleep 1\nsay VERDICT: APPROVE');
    await owner.createIssue({ title: 'Add a.txt', body: [script('builder', 'write a.txt <<EOF\na\nEOF'), judge].join('\n\n'), labels: [Label.issue] });
    await owner.createIssue({ title: 'Add b.txt', body: [script('builder', 'write b.txt <<EOF\nb\nEOF'), judge].join('\n\n'), labels: [Label.issue] });
    const [one, two] = await Promise.all([loomAsync(root, ['shepherd', '1', '--force-merge'], env), loomAsync(root, ['shepherd', '2', '--force-merge'], env)]);
    for (const r of [one, two]) expect(r.code, r.stdout + r.stderr).toBe(0);
    const rebased = [one, two].find((r) => /waiting on checks \(none reported yet\)/.test(r.stdout));
    expect(rebased?.stdout, one.stdout + two.stdout).toMatch(/merged PR #\d+/);
    // Each merge's PR head (the merge commit's second parent) had passed before its merge was asked for.
    const merged = git(bare, 'log', '--merges', '--reverse', '--format=%P', 'main').split('\n').map((parents) => parents.split(' ')[1] ?? '');
    expect(merged).toHaveLength(2);
    expect(mergeRequestedAt).toHaveLength(2);
    merged.forEach((head, i) => expect(reportedAt.get(head) ?? Infinity, `the head of merge ${i + 1} (${head}) passed CI before its merge`).toBeLessThan(mergeRequestedAt[i]!));
    expect(git(bare, 'show', 'main:a.txt')).toBe('a');
    expect(git(bare, 'show', 'main:b.txt')).toBe('b');
  });
  }

  it('a human’s push to the PR while it is judged, its CI still running: the merge looks at the head it merges, not the one it was built on, and waits for that CI', { timeout: 120_000 }, async () => {
    const { base, root, bare, server, env, owner } = await githubRepo({ config: { runtime: 'script', heartbeatInterval: '0.5s', checksPollInterval: '0.1s' } });
    // No CI on Loom's commit nor on main before the merge; the human's commit gets a check that
    // runs for a while; main's new head (the merge) passes when asked about.
    let humanHead: string | null = null;
    let checkDoneAt = Infinity;
    let mergeRequestedAt = 0;
    const before = git(bare, 'rev-parse', 'main');
    server.intercept = ({ method, path: p, checksOf }) => {
      if (method === 'PUT' && /\/pulls\/\d+\/merge$/.test(p)) mergeRequestedAt = Date.now();
      if (checksOf !== null && checksOf !== before && checksOf === git(bare, 'rev-parse', 'main')) server.setCheckRun(checksOf, { name: 'unit', status: 'completed', conclusion: 'success' });
    };
    await owner.createIssue({ title: 'Add a.txt', body: [script('builder', 'write a.txt <<EOF\na\nEOF'), script('judge', 'sleep 2\nsay VERDICT: APPROVE')].join('\n\n'), labels: [Label.issue] });
    const shepherd = loomAsync(root, ['shepherd', '1', '--force-merge'], env);
    await until(async () => (await owner.getPullRequest(2))?.state === 'open', 60_000, 'the PR');
    humanHead = pushAsHuman(base, bare, branchFor(1));
    server.setCheckRun(humanHead, { name: 'unit', status: 'in_progress' });
    await until(() => server.requests.some((r) => r.method === 'GET' && r.path.includes(`/commits/${humanHead}/check-runs`)), 60_000, 'the merge to wait on the human head’s checks');
    checkDoneAt = Date.now();
    server.setCheckRun(humanHead, { name: 'unit', status: 'completed', conclusion: 'success' });
    const r = await shepherd;
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/PR #2: waiting on checks unit/);
    expect(mergeRequestedAt).toBeGreaterThan(checkDoneAt);
    expect(git(bare, 'show', 'main:human.txt')).toBe('from a human');
  });
});
