// A worker's shepherd (run with a fence) whose issue is closed while it works: nothing of it is
// left on origin — its checkpoint ref goes, so no later run resumes a closed issue's work and
// origin does not keep refs for ever.
import { afterEach, describe, expect, it } from 'vitest';
import { Label } from '../../src/core/labels.js';
import { checkpointRef } from '../../src/steps/remote-checkpoint.js';
import { git, githubRepo, removeGitHubRepos } from '../helpers/github-repo.js';
import { startLoom, until } from '../helpers/loom-repo.js';

afterEach(removeGitHubRepos);

const fence = '```';

describe('a worker’s shepherd whose issue is closed while it works', () => {
  it('stops, and its checkpoint ref on origin goes with it', { timeout: 120_000 }, async () => {
    const { root, bare, env, owner } = await githubRepo({ config: { runtime: 'script', heartbeatInterval: '0.3s' } });
    // The builder waits until the test lets it go (a file), then writes.
    const gate = `${root}/.loom/go`;
    await owner.createIssue({ title: 'Add a.txt', body: `${fence}loom-script builder\nrun sh -c 'while [ ! -e ${gate} ]; do sleep 0.1; done'\nwrite a.txt <<EOF\na\nEOF\n${fence}`, labels: [Label.issue] });
    const loom = startLoom(root, ['shepherd', '1', '--fence', '100.1', '--force-merge'], env, 'pipe');
    try {
      // Taken over: the fence is on origin.
      await until(() => loom.code !== undefined || git(bare, 'for-each-ref', '--format=%(refname)', 'refs/loom/').includes(checkpointRef(1)), 60_000, () => `the takeover on origin:\n${loom.out}`);
      expect(loom.code, loom.out).toBeUndefined();
      await owner.close(1, 'Done by hand.');
      await until(() => loom.code !== undefined, 60_000, () => `the shepherd to stop:\n${loom.out}`);
      expect(loom.out).toMatch(/stopped: /);
      expect(git(bare, 'for-each-ref', '--format=%(refname)', 'refs/loom/')).toBe('');
      expect(await owner.getIssue(1)).toMatchObject({ state: 'closed' });
    } finally {
      loom.process.kill('SIGKILL');
    }
  });
});
