// `loom init` picks the github tracker from an origin on github.com (https or ssh).
import { describe, expect, it } from 'vitest';
import { githubRepoOf } from '../../src/setup/init-repo.js';

describe('githubRepoOf', () => {
  it('reads owner and repo from GitHub remotes and ignores others', () => {
    expect(githubRepoOf('https://github.com/acme/widgets.git\n')).toEqual({ owner: 'acme', repo: 'widgets' });
    expect(githubRepoOf('git@github.com:acme/widgets.git')).toEqual({ owner: 'acme', repo: 'widgets' });
    expect(githubRepoOf('https://github.com/acme/widgets')).toEqual({ owner: 'acme', repo: 'widgets' });
    expect(githubRepoOf('ssh://git@github.com/acme/widgets/')).toEqual({ owner: 'acme', repo: 'widgets' });
    expect(githubRepoOf('https://gitlab.com/acme/widgets.git')).toBeNull();
    expect(githubRepoOf('/srv/git/widgets.git')).toBeNull();
    expect(githubRepoOf('')).toBeNull();
  });
});
