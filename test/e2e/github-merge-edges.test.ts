// The merge path on GitHub at its edges, as a maintainer meets them: a human pushes to the PR
// branch while its checks run; an approval given before a Doctor round does not approve what
// the Doctor pushed.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Label } from '../../src/core/labels.js';
import { git, githubRepo, removeGitHubRepos } from '../helpers/github-repo.js';
import { loomAsync, until } from '../helpers/loom-repo.js';

afterEach(removeGitHubRepos);

const fence = '```';
const script = (role: string, body: string) => `${fence}loom-script ${role}\n${body}\n${fence}`;

describe('github: the merge path at its edges', () => {
  it('a human pushes to the PR branch while its checks run: the old head is never merged, the human’s commit is kept, the new head’s checks are waited for, then merged', { timeout: 180_000 }, async () => {
    const { base, root, bare, server, env, owner } = await githubRepo({ config: { runtime: 'script', heartbeatInterval: '0.5s', checksPollInterval: '0.1s' } });
    const ci = server;
    // CI: the first head stays in progress until the test says; every later head passes at once.
    const asked: string[] = [];
    ci.intercept = ({ method, path: p }) => {
      const sha = /\/commits\/([0-9a-f]{40})\/check-runs/.exec(p)?.[1];
      if (method !== 'GET' || sha === undefined || asked.includes(sha)) return;
      asked.push(sha);
      ci.setCheckRun(sha, asked.length === 1 ? { name: 'unit', status: 'in_progress' } : { name: 'unit', status: 'completed', conclusion: 'success' });
    };
    await owner.createIssue({ title: 'Add a.txt', body: script('builder', 'write a.txt <<EOF\na\nEOF'), labels: [Label.issue] });
    const shepherd = loomAsync(root, ['shepherd', '1', '--force-merge'], env);
    const first = await until(() => asked[0], 60_000, 'the merge to wait on the first head’s checks');
    // A human adds a commit to the PR branch from their own clone.
    const human = path.join(base, 'human');
    git(base, 'clone', '-q', '-b', 'loom/issue-1', bare, human);
    fs.writeFileSync(path.join(human, 'human.txt'), 'from a human\n');
    git(human, 'add', '.');
    git(human, '-c', 'user.name=Hu Man', '-c', 'user.email=hu@example.com', 'commit', '-qm', 'a human’s touch');
    git(human, 'push', '-q', 'origin', 'loom/issue-1');
    const humanHead = git(human, 'rev-parse', 'HEAD');
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
