// The merge path on GitHub at its edges, as a maintainer meets them: a human pushes to the PR
// branch while its checks run; an approval given before a Doctor round does not approve what
// the Doctor pushed.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Label } from '../../src/core/labels.js';
import { git, githubRepo, holdFirstHeadChecks, pushAsHuman, removeGitHubRepos } from '../helpers/github-repo.js';
import { loomAsync, until } from '../helpers/loom-repo.js';

afterEach(removeGitHubRepos);

const fence = '```';
const script = (role: string, body: string) => `${fence}loom-script ${role}\n${body}\n${fence}`;

describe('github: the merge path at its edges', () => {
  it('a human pushes to the PR branch while its checks run: the old head is never merged, the human’s commit is kept, the new head’s checks are waited for, then merged', { timeout: 180_000 }, async () => {
    const { base, root, bare, server, env, owner } = await githubRepo({ config: { runtime: 'script', heartbeatInterval: '0.5s', checksPollInterval: '0.1s' } });
    // CI: the first head Loom asks about stays in progress until the test says; every later head passes at once.
    const asked = holdFirstHeadChecks(server);
    await owner.createIssue({ title: 'Add a.txt', body: script('builder', 'write a.txt <<EOF\na\nEOF'), labels: [Label.issue] });
    const shepherd = loomAsync(root, ['shepherd', '1', '--force-merge'], env);
    // Waiting: its check runs read over REST (the look before the merge found them in progress).
    const first = await until(() => server.requests.find((r) => r.method === 'GET' && asked[0] !== undefined && r.path.includes(`/commits/${asked[0]}/check-runs`)) && asked[0], 60_000, 'the merge to wait on the first head’s checks');
    // A human adds a commit to the PR branch from their own clone.
    const humanHead = pushAsHuman(base, bare, 'loom/issue-1');
    // The old head's checks pass: that result is not the new head's.
    server.setCheckRun(first, { name: 'unit', status: 'completed', conclusion: 'success' });

    const r = await shepherd;
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/PR #2: loom\/issue-1 moved on \(to [0-9a-f]{12}\) while the checks of [0-9a-f]{12} ran; the new head's checks are waited for/);
    expect(r.stdout).toMatch(/merged PR #2/);
    expect(asked).toContain(humanHead);
    expect(git(bare, 'show', 'main:human.txt')).toBe('from a human');
    expect(git(bare, 'show', 'main:a.txt')).toBe('a');
    expect((await owner.getPullRequest(2))?.state).toBe('merged');
  });
});

/** Submits a review as the token's user, as the web UI does (`POST /pulls/{n}/reviews`). */
async function review(url: string, token: string, pr: number, body: Record<string, unknown>): Promise<void> {
  const res = await fetch(`${url}/repos/acme/widgets/pulls/${pr}/reviews`, { method: 'POST', headers: { authorization: `token ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  if (!res.ok) throw new Error(`review: ${res.status} ${await res.text()}`);
}

describe('github: a human pushes while the Doctor works', () => {
  it('the Doctor’s commit goes on top of the human’s (the branch on origin is merged in, never pushed over); judged again; merged with both', { timeout: 180_000 }, async () => {
    const { base, root, bare, env, owner } = await githubRepo({ config: { runtime: 'script', heartbeatInterval: '0.5s', checksPollInterval: '0.1s' } });
    const body = [script('builder', 'write a.txt <<EOF\na\nEOF'), script('judge 1', 'say VERDICT: REQUEST_CHANGES'), script('doctor', `run touch "$LOOM_REPO_ROOT/../doctor-started"; for n in $(seq 1 300); do [ -e "$LOOM_REPO_ROOT/../human-pushed" ] && break; sleep 0.1; done\nwrite a.txt <<EOF\nb\nEOF`)].join('\n\n');
    await owner.createIssue({ title: 'Add a.txt', body, labels: [Label.issue] });
    const shepherd = loomAsync(root, ['shepherd', '1', '--force-merge'], env);
    await until(() => fs.existsSync(path.join(base, 'doctor-started')), 60_000, 'the doctor round');
    pushAsHuman(base, bare, 'loom/issue-1');
    fs.writeFileSync(path.join(base, 'human-pushed'), '');
    const r = await shepherd;
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/merged the commits pushed to loom\/issue-1 meanwhile/);
    expect(r.stdout).toMatch(/judge round 2: approved/);
    expect(r.stdout).toMatch(/merged PR #2/);
    expect(git(bare, 'show', 'main:human.txt')).toBe('from a human');
    expect(git(bare, 'show', 'main:a.txt')).toBe('b');
  });
});

describe('github: requireApproval and the change approved', () => {
  it('a reader’s approval is not enough; a writer’s approval goes stale when a Doctor round changes the PR, is needed again, and survives a clean rebase onto a moved main', { timeout: 180_000 }, async () => {
    const { base, root, bare, server, env, owner } = await githubRepo({ server: { tokens: { 'tok-alice': 'alice', 'tok-bob': 'bob' }, permissions: { alice: 'write', bob: 'read' } }, config: { runtime: 'script', heartbeatInterval: '0.5s', checksPollInterval: '0.1s', requireApproval: true } });
    // CI: the PR's first head fails; every later commit passes.
    const asked: string[] = [];
    server.intercept = ({ checksOf }) => {
      const sha = checksOf ?? undefined;
      if (sha === undefined || asked.includes(sha)) return;
      asked.push(sha);
      server.setCheckRun(sha, asked.length === 1 ? { name: 'unit', status: 'completed', conclusion: 'failure', output: { summary: 'a.txt must say b' } } : { name: 'unit', status: 'completed', conclusion: 'success' });
    };
    await owner.createIssue({ title: 'Add a.txt', body: [script('builder', 'write a.txt <<EOF\na\nEOF'), script('doctor', 'write a.txt <<EOF\nb\nEOF')].join('\n\n'), labels: [Label.issue] });
    const shepherd = await loomAsync(root, ['shepherd', '1', '--force-merge'], env);
    expect(shepherd.stdout, shepherd.stdout + shepherd.stderr).toMatch(/PR #2 approved, not merged: waiting for an approving review from someone with write access \(requireApproval\)/);

    // A reader's approval does not approve.
    await review(server.url, 'tok-bob', 2, { event: 'APPROVE' });
    expect((await loomAsync(root, ['role', 'champion'], env)).stdout).toMatch(/merged nothing; skipped #2 \(approval\)/);
    expect(asked).toEqual([]);

    // A writer approves head A; its CI fails; the Doctor changes the PR (head B).
    await review(server.url, 'tok-alice', 2, { event: 'APPROVE', body: 'fine as it is' });
    const red = await loomAsync(root, ['role', 'champion'], env);
    expect(red.stdout, red.stdout + red.stderr).toMatch(/merged nothing; skipped #2 \(checks\)/);
    expect((await loomAsync(root, ['role', 'doctor'], env)).stdout).toMatch(/updated #2/);
    expect((await loomAsync(root, ['role', 'judge'], env)).stdout).toMatch(/judged #2 approve/);
    expect(git(bare, 'show', 'loom/issue-1:a.txt')).toBe('b');

    // alice approved a, not b: not merged on her approval of the older change.
    const stale = await loomAsync(root, ['role', 'champion'], env);
    expect(stale.stdout, stale.stdout + stale.stderr).toMatch(/merged nothing; skipped #2 \(approval\)/);
    expect((await owner.getPullRequest(2))?.state).toBe('open');
    const why = await loomAsync(root, ['why', '1'], env);
    expect(why.stdout).toMatch(/waiting: approving review — the approval by @alice is for an older change; waiting for an approving review of this one \(requireApproval\)/);

    // She approves b; meanwhile main moves on elsewhere: the branch is rebased (the same change), and her approval still holds.
    await review(server.url, 'tok-alice', 2, { event: 'APPROVE', body: 'b it is' });
    const other = path.join(base, 'other');
    git(base, 'clone', '-q', bare, other);
    fs.writeFileSync(path.join(other, 'other.txt'), 'other\n');
    git(other, 'add', '.');
    git(other, '-c', 'user.name=O', '-c', 'user.email=o@example.com', 'commit', '-qm', 'other');
    git(other, 'push', '-q', 'origin', 'main');
    const last = await loomAsync(root, ['role', 'champion'], env);
    expect(last.stdout, last.stdout + last.stderr).toMatch(/merged #2/);
    expect(git(bare, 'show', 'main:a.txt')).toBe('b');
    expect(git(bare, 'show', 'main:other.txt')).toBe('other');
  });
});

describe('github: what the Doctor receives for a failing check', () => {
  it('a failing GitHub Actions job: its name, conclusion, output, annotations and the end of its job log (timestamps off) are in the Doctor’s prompt', { timeout: 180_000 }, async () => {
    // The Doctor is a command agent that commits the prompt it was given.
    const { root, bare, server, env, owner } = await githubRepo({ config: { runtime: 'script', heartbeatInterval: '0.5s', checksPollInterval: '0.1s', roles: { doctor: { command: 'cp "$LOOM_PROMPT_FILE" doctor-prompt.md' } } } });
    const asked: string[] = [];
    const log = [...Array.from({ length: 100 }, (_, i) => `2026-01-02T03:04:05.1234567Z step output line ${i + 1}`), '2026-01-02T03:04:06.0000000Z ##[error]Process completed with exit code 1.', ''].join('\r\n');
    server.intercept = ({ checksOf }) => {
      const sha = checksOf ?? undefined;
      if (sha === undefined || asked.includes(sha)) return;
      asked.push(sha);
      server.setCheckRun(sha, asked.length === 1 ? { name: 'build / test (20.x)', status: 'completed', conclusion: 'failure', output: { title: 'Process completed with exit code 1.', summary: '1 failing test' }, annotations: [{ path: 'a.txt', start_line: 1, end_line: 1, annotation_level: 'failure', message: 'expected b' }], log } : { name: 'build / test (20.x)', status: 'completed', conclusion: 'success' });
    };
    await owner.createIssue({ title: 'Add a.txt', body: script('builder', 'write a.txt <<EOF\na\nEOF'), labels: [Label.issue] });
    const r = await loomAsync(root, ['shepherd', '1', '--force-merge'], env);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/checks failed: build \/ test \(20\.x\) \(failure\); a doctor round fixes it/);
    const prompt = git(bare, 'show', 'main:doctor-prompt.md');
    expect(prompt).toMatch(/CI checks failed on [0-9a-f]{12}: `build \/ test \(20\.x\)` \(failure\)/);
    expect(prompt).toContain('### build / test (20.x): failure\n\nProcess completed with exit code 1.\n\n1 failing test\n\nAnnotations:\n- `a.txt:1` failure: expected b');
    const excerpt = ['Job log (its last lines):', '', '```', ...Array.from({ length: 59 }, (_, i) => `step output line ${i + 42}`), '##[error]Process completed with exit code 1.', '```'].join('\n');
    expect(prompt).toContain(excerpt);
    expect(prompt).not.toContain('step output line 41\n');
    expect(prompt).not.toContain('2026-01-02T');
    // One read of the job's log, through GitHub's redirect to the download URL.
    expect(server.requests.filter((q) => /\/actions\/jobs\/\d+\/logs$/.test(q.path)).map((q) => q.status)).toEqual([302]);
    expect(server.requests.filter((q) => q.path.startsWith('/_job-logs/')).map((q) => q.status)).toEqual([200]);
  });
});

describe('github: the merge queue as loom status and loom why show it', () => {
  it('three PRs wait for the merge lock: status and why give the order they came in; once the first merges, the next holds the lock and the rest move up', { timeout: 180_000 }, async () => {
    const { root, bare, server, env, owner } = await githubRepo({ config: { runtime: 'script', heartbeatInterval: '0.5s', checksPollInterval: '0.1s' } });
    // CI: every PR head is in progress until the test says; main's heads pass at once.
    const asked: string[] = [];
    server.intercept = ({ checksOf }) => {
      const sha = checksOf ?? undefined;
      if (sha === undefined || asked.includes(sha)) return;
      if (sha === git(bare, 'rev-parse', 'main')) return server.setCheckRun(sha, { name: 'unit', status: 'completed', conclusion: 'success' });
      asked.push(sha);
      server.setCheckRun(sha, { name: 'unit', status: 'in_progress' });
    };
    for (const f of ['a', 'b', 'c']) await owner.createIssue({ title: `Add ${f}.txt`, body: script('builder', `write ${f}.txt <<EOF\n${f}\nEOF`), labels: [Label.issue] });
    const queueLine = async () => /Queue for the merge lock: (.*)/.exec((await loomAsync(root, ['status'], env)).stdout)?.[1] ?? '';
    // One at a time into the queue, so that the order is known: #1 (PR #4) holds the lock and waits on its checks.
    const first = loomAsync(root, ['shepherd', '1', '--force-merge'], env);
    await until(() => asked.length === 1, 60_000, 'the first PR to wait on its checks');
    const second = loomAsync(root, ['shepherd', '2', '--force-merge'], env);
    await until(async () => (await queueLine()).includes('2. PR #'), 60_000, 'the second PR in the queue');
    const third = loomAsync(root, ['shepherd', '3', '--force-merge'], env);
    await until(async () => (await queueLine()).includes('3. PR #'), 60_000, 'the third PR in the queue');
    const pr = async (issue: number) => (await owner.listPullRequests({ state: 'all' })).find((p) => p.closesIssue === issue)!.number;
    const [p1, p2, p3] = [await pr(1), await pr(2), await pr(3)];
    expect(await queueLine()).toBe(`1. PR #${p1} (issue #1, shepherd) waiting on checks: unit; 2. PR #${p2} (issue #2, shepherd) waiting; 3. PR #${p3} (issue #3, shepherd) waiting`);
    expect((await loomAsync(root, ['why', '3'], env)).stdout).toContain(`waiting: merge queue — position 3 of 3: behind PR #${p1} (waiting on checks: unit), PR #${p2} (waiting)`);

    // The first is green and merges; the second takes the lock and waits on its own checks.
    server.setCheckRun(asked[0]!, { name: 'unit', status: 'completed', conclusion: 'success' });
    const r1 = await first;
    expect(r1.code, r1.stdout + r1.stderr).toBe(0);
    await until(() => asked.length >= 2, 60_000, 'the second PR to wait on its checks');
    await until(async () => (await queueLine()).startsWith(`1. PR #${p2} (issue #2, shepherd) waiting on checks: unit`), 60_000, 'the second PR at the head of the queue');
    expect(await queueLine()).toBe(`1. PR #${p2} (issue #2, shepherd) waiting on checks: unit; 2. PR #${p3} (issue #3, shepherd) waiting`);
    expect((await loomAsync(root, ['why', '3'], env)).stdout).toContain(`waiting: merge queue — position 2 of 2: behind PR #${p2} (waiting on checks: unit)`);

    for (const sha of asked) server.setCheckRun(sha, { name: 'unit', status: 'completed', conclusion: 'success' });
    server.intercept = ({ checksOf }) => {
      const sha = checksOf ?? undefined;
      if (sha !== undefined) server.setCheckRun(sha, { name: 'unit', status: 'completed', conclusion: 'success' });
    };
    for (const r of [await second, await third]) expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(git(bare, 'show', 'main:c.txt')).toBe('c');
    expect(await queueLine()).toBe('');
  });
});

describe('github: a required check that never reports', () => {
  it('the wait ends at checksTimeout with a message naming the check that never reported (and the one still running), and the issue is blocked with it', { timeout: 120_000 }, async () => {
    const { root, server, env, owner } = await githubRepo({ config: { runtime: 'script', heartbeatInterval: '0.5s', checksPollInterval: '0.1s', checksTimeout: '2s' } });
    server.setRequiredChecks('main', ['unit', 'lint', 'deploy-preview']);
    server.intercept = ({ checksOf }) => {
      const sha = checksOf ?? undefined;
      if (sha === undefined) return;
      server.setCheckRun(sha, { name: 'unit', status: 'completed', conclusion: 'success' });
      server.setCheckRun(sha, { name: 'lint', status: 'in_progress' });
    };
    await owner.createIssue({ title: 'Add a.txt', body: script('builder', 'write a.txt <<EOF\na\nEOF'), labels: [Label.issue] });
    const r = await loomAsync(root, ['shepherd', '1', '--force-merge'], env);
    expect(r.stdout, r.stdout + r.stderr).toMatch(/blocked: PR #2 could not be merged: checks still pending after 2s \(checksTimeout\): still running: lint; never reported: deploy-preview \(required by branch protection: is a CI set up to report it on this branch\?\)/);
    expect((await owner.getIssue(1))?.labels).toContain(Label.blocked);
    expect((await owner.getPullRequest(2))?.state).toBe('open');
  });
});
