/**
 * Where the GitHub token comes from. Invariant: the environment wins over `gh`, and a failing or
 * missing `gh` is "no token", never an error.
 */
import { spawnSync } from 'node:child_process';

/**
 * The GitHub token from the environment: `GITHUB_TOKEN`, `GH_TOKEN`, else what `gh auth token`
 * prints (failures of `gh` are ignored). Null when there is none.
 */
export function githubToken(env: NodeJS.ProcessEnv = process.env): string | null {
  for (const name of ['GITHUB_TOKEN', 'GH_TOKEN']) {
    const value = env[name]?.trim();
    if (value !== undefined && value !== '') return value;
  }
  try {
    const result = spawnSync('gh', ['auth', 'token'], { encoding: 'utf8', timeout: 10_000, env, stdio: ['ignore', 'pipe', 'ignore'] });
    const token = result.status === 0 ? result.stdout.trim() : '';
    return token === '' ? null : token;
  } catch {
    return null;
  }
}
