/**
 * What every command needs: the repository root, the `.loom/` paths, the validated config and a
 * tracker. Finding them is where most user errors surface, so every failure here is a
 * `UserError` with the command that fixes it.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { LoomConfig } from '../config/config.js';
import { ConfigError, loadConfig } from '../config/config.js';
import type { LoomPaths } from '../config/paths.js';
import { loomPaths } from '../config/paths.js';
import { touchWake } from '../daemon/wake.js';
import { LocalTracker } from '../tracker/local-tracker.js';
import { GitHubTracker, githubToken } from '../tracker/github-tracker.js';
import type { Tracker } from '../tracker/tracker.js';
import { UserError } from './user-error.js';

/**
 * The main working tree of the git repository containing `cwd` (a linked worktree resolves to
 * its main repository, so shepherds in `.loom/worktrees/` share the daemon's `.loom/`), or null.
 */
export function findRepoRoot(cwd: string): string | null {
  try {
    const common = execFileSync('git', ['rev-parse', '--path-format=absolute', '--git-common-dir'], { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    if (path.basename(common) === '.git') return path.dirname(common);
    return execFileSync('git', ['rev-parse', '--show-toplevel'], { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return null;
  }
}

export function requirePaths(cwd: string = process.cwd()): LoomPaths {
  const root = findRepoRoot(cwd);
  if (root === null) throw new UserError(`${cwd} is not inside a git repository; run Loom from your repository (or \`git init\` first, then \`loom init\`)`);
  const paths = loomPaths(root);
  if (!fs.existsSync(paths.dir)) throw new UserError(`${root} is not set up for Loom (no .loom/); run \`loom init\` first`);
  return paths;
}

export function requireConfig(paths: LoomPaths): LoomConfig {
  try {
    return loadConfig(paths.config);
  } catch (error) {
    if (error instanceof ConfigError) throw new UserError(`${path.relative(process.cwd(), error.file) || error.file}: ${error.problems.join('; ')}`);
    throw error;
  }
}

export function openTracker(paths: LoomPaths, options: { readonly?: boolean; actor?: string } = {}): Tracker {
  let trackerConfig: LoomConfig['tracker'] = { type: 'local' };
  try {
    trackerConfig = loadConfig(paths.config).tracker;
  } catch {
    // an invalid config is reported by the command itself; the tracker choice falls back to local
  }
  if (trackerConfig.type === 'github') {
    const token = githubToken(process.env);
    if (token === null) throw new UserError('the github tracker needs a token: set GITHUB_TOKEN (or GH_TOKEN), or log in with `gh auth login`');
    return new GitHubTracker({
      owner: trackerConfig.owner,
      repo: trackerConfig.repo,
      token,
      trust: { allow: trackerConfig.trustedUsers },
      cacheFile: path.join(paths.dir, 'github-cache.json'),
      ...(trackerConfig.baseUrl ? { baseUrl: trackerConfig.baseUrl } : {}),
    });
  }
  if (!fs.existsSync(paths.trackerDb)) throw new UserError(`the local tracker (${paths.trackerDb}) is missing; run \`loom init\` to create it`);
  return new LocalTracker({ path: paths.trackerDb, actor: options.actor ?? 'loom', readonly: options.readonly ?? false, onWrite: () => touchWake(paths.wake) });
}

/** Parses a positive issue number argument or throws a `UserError`. */
export function parseIssueNumber(value: string): number {
  const text = value.replace(/^#/, '');
  if (!/^\d+$/.test(text) || Number(text) < 1) throw new UserError(`"${value}" is not an issue number; use a positive number like 12`);
  return Number(text);
}
