// Two issues editing the same line, shepherded in parallel against the GitHub fake and a bare
// origin: the first merges; the second no longer rebases onto the moved main, goes to the Doctor
// with main merged in and the file named, is pushed, judged and merged; main holds both changes.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Label } from '../../src/core/labels.js';
import { git, githubRepo, removeGitHubRepos } from '../helpers/github-repo.js';
import { loomAsync } from '../helpers/loom-repo.js';

afterEach(removeGitHubRepos);

const fence = '```';
const script = (role: string, body: string) => `${fence}loom-script ${role}\n${body}\n${fence}`;

describe('github: conflicts go to the Doctor', () => {
  it('the second of two parallel PRs editing the same line conflicts, is resolved by a doctor round, pushed and merged; main holds both', { timeout: 120_000 }, async () => {
    const { root, bare, env, owner } = await githubRepo({ files: { 'shared.txt': 'start\n' }, config: { runtime: 'script', heartbeatInterval: '0.5s' } });
    const initial = git(root, 'rev-parse', 'HEAD');

    // Issue 1's builder finishes only once origin's main has moved (issue 2 merged): a real race, ordered by a condition.
    const waitForMain = `run while [ "$(git ls-remote origin refs/heads/main | cut -f1)" = "${initial}" ]; do sleep 0.1; done`;
    await owner.createIssue({
      title: 'Say one',
      body: [script('builder', `write shared.txt <<EOF\none\nEOF\n${waitForMain}`), script('doctor', 'write shared.txt <<EOF\ntwo\none\nEOF')].join('\n\n'),
      labels: [Label.issue],
    });
    await owner.createIssue({ title: 'Say two', body: script('builder', 'write shared.txt <<EOF\ntwo\nEOF'), labels: [Label.issue] });

    const [one, two] = await Promise.all([loomAsync(root, ['shepherd', '1', '--force-merge'], env), loomAsync(root, ['shepherd', '2', '--force-merge'], env)]);

    expect(two.code, two.stdout + two.stderr).toBe(0);
    expect(one.code, one.stdout + one.stderr).toBe(0);
    expect(one.stdout).toMatch(/conflicts with main in shared\.txt; a doctor round resolves it/);
    expect(git(bare, 'show', 'main:shared.txt')).toBe('two\none');
    expect(git(bare, 'log', '--first-parent', '--format=%s', 'main').split('\n')).toHaveLength(3);
    const prs = await owner.listPullRequests({ state: 'all' });
    expect(prs.map((p) => p.state)).toEqual(['merged', 'merged']);
    const pr1 = prs.find((p) => p.title.startsWith('#1:'))!;
    expect((await owner.listComments(pr1.number)).map((c) => c.body)).toContainEqual(expect.stringMatching(/^\*\*Loom\*\* — `main` moved on .*conflicts in `shared\.txt`/s));
    expect((await owner.getIssue(1))?.state).toBe('closed');
  });

  it('the Champion path: a conflicting approved PR goes to the Doctor role, whose resolution is pushed to the PR branch; judged, then merged', { timeout: 120_000 }, async () => {
    // GitHub's timestamps have one-second resolution; a stopped clock puts every change in the
    // same second, so each role must see the labels the one before it set however fast it runs.
    const { base, root, bare, env, owner } = await githubRepo({ files: { 'shared.txt': 'start\n' }, server: { now: () => Date.parse('2026-01-05T10:00:00Z') }, config: { runtime: 'script', heartbeatInterval: '0.5s' } });
    await owner.createIssue({ title: 'Say one', body: [script('builder', 'write shared.txt <<EOF\none\nEOF'), script('doctor', 'write shared.txt <<EOF\ntwo\none\nEOF')].join('\n\n'), labels: [Label.issue] });
    expect((await loomAsync(root, ['shepherd', '1'], env)).code).toBe(0);
    // Someone else's change lands on origin's main meanwhile.
    const other = path.join(base, 'other');
    git(base, 'clone', '-q', bare, other);
    fs.writeFileSync(path.join(other, 'shared.txt'), 'two\n');
    git(other, 'commit', '-qam', 'main moves');
    git(other, 'push', '-q', 'origin', 'main');

    const first = await loomAsync(root, ['role', 'champion'], env);
    expect(first.stdout, first.stdout + first.stderr).toMatch(/skipped #2 \(conflict\)/);
    const doctor = await loomAsync(root, ['role', 'doctor'], env);
    expect(doctor.code, doctor.stdout + doctor.stderr).toBe(0);
    // The resolution is on the PR's branch on origin, with main merged in.
    expect(git(bare, 'show', 'loom/issue-1:shared.txt')).toBe('two\none');
    expect(git(bare, 'merge-base', '--is-ancestor', 'main', 'loom/issue-1')).toBe('');
    expect((await loomAsync(root, ['role', 'judge'], env)).code).toBe(0);
    const last = await loomAsync(root, ['role', 'champion'], env);
    expect(last.stdout, last.stdout + last.stderr).toMatch(/merged #2/);
    expect(git(bare, 'show', 'main:shared.txt')).toBe('two\none');
  });
});
