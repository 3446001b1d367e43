// Human reviews on GitHub, against the fake and a bare origin: with requireApproval the approved
// PR waits for a writer's review; a writer's "changes requested" (with an inline comment) sends it
// to the Doctor with that review, a reader's review is ignored; after the doctor round the PR
// still waits until the writer approves, then the Champion merges it.
import { afterEach, describe, expect, it } from 'vitest';
import { Label } from '../../src/core/labels.js';
import { git, githubRepo, holdFirstHeadChecks, removeGitHubRepos } from '../helpers/github-repo.js';
import { loomAsync, until } from '../helpers/loom-repo.js';

afterEach(removeGitHubRepos);

const fence = '```';
const script = (role: string, body: string) => `${fence}loom-script ${role}\n${body}\n${fence}`;

/** Submits a review as the token's user, as the web UI does (`POST /pulls/{n}/reviews`). */
async function review(url: string, token: string, pr: number, body: Record<string, unknown>): Promise<void> {
  const res = await fetch(`${url}/repos/acme/widgets/pulls/${pr}/reviews`, { method: 'POST', headers: { authorization: `token ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  if (!res.ok) throw new Error(`review: ${res.status} ${await res.text()}`);
}

describe('github: human reviews', () => {
  it('requireApproval: a writer’s changes requested → Doctor with the review → still waits → the writer approves → merged; a reader’s review is ignored', { timeout: 180_000 }, async () => {
    const { root, bare, server, env, owner } = await githubRepo({ server: { tokens: { 'tok-alice': 'alice', 'tok-bob': 'bob' }, permissions: { alice: 'write', bob: 'read' } }, config: { runtime: 'script', heartbeatInterval: '0.5s', requireApproval: true } });
    await owner.createIssue({ title: 'Add a.txt', body: [script('builder', 'write a.txt <<EOF\na\nEOF'), script('doctor', 'write a.txt <<EOF\na, with the reason alice asked for\nEOF')].join('\n\n'), labels: [Label.issue] });

    // Approved by the Judge, but no writer has approved: the shepherd leaves it for the Champion.
    const shepherd = await loomAsync(root, ['shepherd', '1', '--force-merge'], env);
    expect(shepherd.code, shepherd.stdout + shepherd.stderr).toBe(0);
    expect(shepherd.stdout).toMatch(/PR #2 approved, not merged: waiting for an approving review from someone with write access \(requireApproval\)/);
    expect(await owner.getPullRequest(2)).toMatchObject({ state: 'open', labels: [Label.pr] });

    // A reader's review changes nothing; a writer's changes requested goes to the Doctor.
    await review(server.url, 'tok-bob', 2, { event: 'REQUEST_CHANGES', body: 'bob says: rewrite it all' });
    await review(server.url, 'tok-alice', 2, { event: 'REQUEST_CHANGES', body: 'Say why a.txt exists.', comments: [{ path: 'a.txt', line: 1, body: 'a reason here, please' }] });
    expect((await loomAsync(root, ['why', '1'], env)).stdout).toMatch(/waiting: human review — @alice asked for changes: the next merge attempt hands the review to the Doctor/);
    const first = await loomAsync(root, ['role', 'champion'], env);
    expect(first.stdout, first.stdout + first.stderr).toMatch(/merged nothing; skipped #2 \(review\)/);
    const handedOver = (await owner.listComments(2)).at(-1)?.body ?? '';
    expect(handedOver).toMatch(/^\*\*Loom Champion\*\* — not merged: Human review on this PR/);
    expect(handedOver).toContain('### @alice requested changes\n\nSay why a.txt exists.\n\n- `a.txt:1`: a reason here, please');
    expect(handedOver).not.toContain('bob says');
    expect((await owner.getPullRequest(2))?.labels).toEqual([Label.changesRequested]);

    const doctor = await loomAsync(root, ['role', 'doctor'], env);
    expect(doctor.stdout, doctor.stdout + doctor.stderr).toMatch(/updated #2/);
    expect(git(bare, 'show', 'loom/issue-1:a.txt')).toBe('a, with the reason alice asked for');
    expect((await loomAsync(root, ['role', 'judge'], env)).stdout).toMatch(/judged #2 approve/);

    // Handled once: alice's review is not handed over again, but her latest verdict still requests changes.
    const waiting = await loomAsync(root, ['role', 'champion'], env);
    expect(waiting.stdout, waiting.stdout + waiting.stderr).toMatch(/merged nothing; skipped #2 \(approval\)/);
    expect((await owner.listComments(2)).filter((c) => c.body.includes('<!-- loom:review '))).toHaveLength(1);
    const why = await loomAsync(root, ['why', '1'], env);
    expect(why.stdout).toMatch(/#1 is in review: PR #2 is approved \(loom:pr\); the Champion merges it; waiting: approving review — changes requested by @alice; waiting for an approving review from a writer \(requireApproval\)/);

    await review(server.url, 'tok-alice', 2, { event: 'APPROVE', body: 'Thanks.' });
    const last = await loomAsync(root, ['role', 'champion'], env);
    expect(last.stdout, last.stdout + last.stderr).toMatch(/merged #2/);
    expect(git(bare, 'show', 'main:a.txt')).toBe('a, with the reason alice asked for');
    expect((await owner.getIssue(1))?.state).toBe('closed');
  });

  it('the shepherd path: a writer’s inline review comment arrives while the merge waits on checks → a doctor round with the review → judged, its own checks → merged', { timeout: 180_000 }, async () => {
    const { root, bare, server, env, owner } = await githubRepo({ server: { tokens: { 'tok-alice': 'alice' }, permissions: { alice: 'admin' } }, config: { runtime: 'script', heartbeatInterval: '0.5s', checksPollInterval: '0.1s' } });
    // CI: the first head Loom asks about stays in progress until the test says; every later head passes at once.
    const asked = holdFirstHeadChecks(server);
    await owner.createIssue({ title: 'Add a.txt', body: [script('builder', 'write a.txt <<EOF\na\nEOF'), script('doctor', 'write a.txt <<EOF\na, renamed as alice asked\nEOF')].join('\n\n'), labels: [Label.issue] });

    const shepherd = loomAsync(root, ['shepherd', '1', '--force-merge'], env);
    const first = await until(() => asked[0], 60_000, 'the merge to wait on the first head’s checks');
    await review(server.url, 'tok-alice', 2, { event: 'COMMENT', body: '', comments: [{ path: 'a.txt', line: 1, body: 'rename this, please' }] });
    server.setCheckRun(first, { name: 'unit', status: 'completed', conclusion: 'success' });

    const r = await shepherd;
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/PR #2: review by @alice asks for changes; a doctor round addresses it/);
    expect(r.stdout).toMatch(/merged PR #2/);
    expect(git(bare, 'show', 'main:a.txt')).toBe('a, renamed as alice asked');
    const handedOver = (await owner.listComments(2)).map((c) => c.body).filter((b) => b.includes('<!-- loom:review '));
    expect(handedOver).toEqual([expect.stringMatching(/^\*\*Loom\*\* — Human review on this PR.*### @alice commented\n\n- `a\.txt:1`: rename this, please/s)]);
    expect((await owner.getPullRequest(2))?.state).toBe('merged');
  });
});
