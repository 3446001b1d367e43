// Dependencies on the GitHub tracker, with the daemon against the GitHub fake backed by a real
// bare repository: a chain of three dependent issues — one link a `Depends on` line, the other
// GitHub's own issue dependency — builds in order; a parent waits for its sub-issue; a dependency
// closed as not planned is reported once (comment + warning) and no longer waited for; two issues
// naming the same file never build at once.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Label } from '../../src/core/labels.js';
import { git, githubRepo, removeGitHubRepos } from '../helpers/github-repo.js';
import type { GitHubRepo } from '../helpers/github-repo.js';
import { loomAsync, processesIn, startDaemon, until } from '../helpers/loom-repo.js';

afterEach(removeGitHubRepos);
const fence = '```';
const writes = (file: string) => `${fence}loom-script builder\nwrite ${file} <<EOF\n${file}\nEOF\n${fence}`;

const off = { enabled: false };
/** The GitHub repository of these tests: the daemon polls often, and builds only. */
const depsRepo = (config: Record<string, unknown>): Promise<GitHubRepo> =>
  githubRepo({ config: { runtime: 'script', pollInterval: '0.5s', heartbeatInterval: '0.5s', roles: { architect: off, hermit: off, guide: off, curator: off }, ...config } });

describe('dependencies and overlap on the GitHub tracker', () => {
  it('a chain of three builds in order, a parent waits for its sub-issue, a not-planned dependency is reported', async () => {
    const { root, bare, server, env, owner } = await depsRepo({ maxShepherds: 3 });
    // Oldest first would build #1 first: the chain must hold it back.
    const top = await owner.createIssue({ title: 'top', body: `Depends on #2\n\n${writes('top.txt')}`, labels: [Label.issue] });
    const middle = await owner.createIssue({ title: 'middle', body: writes('middle.txt'), labels: [Label.issue] });
    const bottom = await owner.createIssue({ title: 'bottom', body: writes('bottom.txt'), labels: [Label.issue] });
    server.addBlockedBy(middle.number, bottom.number); // GitHub's own dependency, set in the web UI
    const parent = await owner.createIssue({ title: 'parent', body: writes('parent.txt'), labels: [Label.issue] });
    const child = await owner.createIssue({ title: 'child', body: writes('child.txt'), labels: [Label.issue] });
    server.addSubIssue(parent.number, child.number);
    const hopeful = await owner.createIssue({ title: 'hopeful', body: writes('hopeful.txt'), labels: [Label.issue] });
    const dropped = await owner.createIssue({ title: 'dropped' });
    server.addBlockedBy(hopeful.number, dropped.number);
    server.closeAs(dropped.number, 'not_planned', 'acme');

    // Before any daemon: why names GitHub's links.
    expect((await loomAsync(root, ['why', String(middle.number)], env)).stdout).toMatch(new RegExp(`✗ dependencies done\\s+waits on #${bottom.number} \\(open\\)`));
    expect((await loomAsync(root, ['why', String(parent.number)], env)).stdout).toMatch(new RegExp(`✗ dependencies done\\s+waits on sub-issue #${child.number} \\(open\\)`));
    const status = JSON.parse((await loomAsync(root, ['status', '--json'], env)).stdout);
    expect(status.issues.waiting_on_dependencies).toBe(3);

    const daemon = startDaemon(root, ['start', '--force'], env);
    const closed = async (n: number) => (await owner.getIssue(n))?.state === 'closed';
    await until(async () => (await closed(top.number)) && (await closed(parent.number)) && (await closed(hopeful.number)), 120_000, `all built; output:\n${daemon.output()}`);
    await loomAsync(root, ['stop'], env);
    expect(await daemon.exited(60_000)).toBe(0);

    // Each PR of the chain was opened only after the one before it was merged.
    const prs = await owner.listPullRequests({ state: 'all' });
    const prOf = (issue: number) => prs.find((p) => p.closesIssue === issue)!;
    expect(prs.every((p) => p.state === 'merged')).toBe(true);
    const after = (later: number, earlier: number) => expect(Date.parse(prOf(later).createdAt)).toBeGreaterThanOrEqual(Date.parse(prOf(earlier).updatedAt));
    after(middle.number, bottom.number);
    after(top.number, middle.number);
    after(parent.number, child.number);
    for (const file of ['top', 'middle', 'bottom', 'parent', 'child', 'hopeful']) expect(git(bare, 'show', `main:${file}.txt`)).toBe(`${file}.txt`);
    // The not-planned dependency: one comment, one warning, and the issue was built all the same.
    const comments = (await owner.listComments(hopeful.number)).map((c) => c.body).filter((b) => /not planned/.test(b));
    expect(comments).toEqual([expect.stringMatching(new RegExp(`depends on #${dropped.number}, closed without being done`))]);
    const state = JSON.parse(fs.readFileSync(path.join(root, '.loom', 'daemon-state.json'), 'utf8'));
    expect(state.warnings.filter((w: { message: string }) => new RegExp(`#${dropped.number}`).test(w.message))).toHaveLength(1);
    await until(() => processesIn(root).length === 0, 10_000, 'nothing left running');
  });

  it('a dependency on a pull request waits until it is merged, and is not reported as missing', async () => {
    const { root, env, owner } = await depsRepo({ maxShepherds: 1 });
    git(root, 'checkout', '-q', '-b', 'feature');
    fs.writeFileSync(path.join(root, 'feature.txt'), 'feature\n');
    git(root, 'add', 'feature.txt');
    git(root, '-c', 'user.name=t', '-c', 'user.email=t@localhost', 'commit', '-qm', 'feature');
    git(root, 'push', '-q', 'origin', 'feature');
    git(root, 'checkout', '-q', 'main');
    const pr = await owner.createPullRequest({ title: 'the feature', head: 'feature', base: 'main' });
    const dependent = await owner.createIssue({ title: 'after the PR', body: `Depends on #${pr.number}\n\n${writes('after.txt')}`, labels: [Label.issue] });
    expect((await loomAsync(root, ['why', String(dependent.number)], env)).stdout).toMatch(new RegExp(`✗ dependencies done\\s+waits on PR #${pr.number} \\(open\\); it is built once that is merged$`, 'm'));
    const held = await loomAsync(root, ['iterate'], env);
    expect(held.stdout, held.stderr).not.toMatch(/\+shepherd|dependency-missing/);
    await owner.markMerged(pr.number);
    expect((await loomAsync(root, ['why', String(dependent.number)], env)).stdout).toMatch(new RegExp(`✓ dependencies done\\s+PR #${pr.number} merged$`, 'm'));
    expect(await owner.listComments(dependent.number)).toEqual([]);
  });

  it('overlap: two issues naming the same file never build at once and both merge without conflict', async () => {
    const { root, bare, env, owner } = await depsRepo({ maxShepherds: 3 });
    const edit = (content: string) => `Rewrite \`notes.md\`.\n\n${fence}loom-script builder\nsleep 2\nwrite notes.md <<EOF\n${content}\nEOF\n${fence}`;
    const first = await owner.createIssue({ title: 'first', body: edit('first'), labels: [Label.issue] });
    const second = await owner.createIssue({ title: 'second', body: edit('second'), labels: [Label.issue] });
    const other = await owner.createIssue({ title: 'other', body: writes('other.txt'), labels: [Label.issue] });
    const daemon = startDaemon(root, ['start', '--force'], env);
    await until(() => /overlap-wait=#2\b/.test(daemon.output()), 30_000, `#2 held back; output:\n${daemon.output()}`);
    const why = await loomAsync(root, ['why', String(second.number)], env);
    expect(why.stdout).toMatch(new RegExp(`✗ no overlapping work\\s+overlaps #${first.number} on notes\\.md`));
    const closed = async (n: number) => (await owner.getIssue(n))?.state === 'closed';
    await until(async () => (await closed(first.number)) && (await closed(second.number)) && (await closed(other.number)), 120_000, `all merged; output:\n${daemon.output()}`);
    await loomAsync(root, ['stop'], env);
    expect(await daemon.exited(60_000)).toBe(0);
    const prs = await owner.listPullRequests({ state: 'all' });
    expect(prs.map((p) => p.state)).toEqual(['merged', 'merged', 'merged']);
    const prOf = (issue: number) => prs.find((p) => p.closesIssue === issue)!;
    // #2's shepherd was claimed only after #1's PR was merged: its PR came after, on top of it.
    const claimed = (await owner.listEvents(second.number)).find((e) => e.label === Label.building)!;
    expect(Date.parse(claimed.createdAt)).toBeGreaterThanOrEqual(Date.parse(prOf(first.number).updatedAt));
    expect(git(bare, 'show', 'main:notes.md')).toBe('second');
    await until(() => processesIn(root).length === 0, 10_000, 'nothing left running');
  });
});
