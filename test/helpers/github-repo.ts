/**
 * Test fixture for the GitHub end-to-end tests: a working clone whose `origin` is a real bare
 * repository, the GitHub fake (acme/widgets) merging into that origin, and `loom init` done with
 * `.loom/config.json` naming the GitHub tracker at the fake. Call `removeGitHubRepos()` in an
 * `afterEach`: it disposes the trackers, closes the fake and removes the directories.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'vitest';
import { loomPaths } from '../../src/config/paths.js';
import { GitHubTracker } from '../../src/tracker/github/github-tracker.js';
import { FakeGitHubServer } from '../fakes/github-server.js';
import type { FakeGitHubOptions } from '../fakes/github-server.js';
import { killLeftovers, loomAsync, removeTestDir } from './loom-repo.js';
import type { RunResult } from './loom-repo.js';

/** Runs git as the tests' committer in `cwd`; throws on failure, returns the trimmed stdout. */
export function git(cwd: string, ...args: string[]): string {
  const r = spawnSync('git', ['-c', 'user.name=Loom Tests', '-c', 'user.email=tests@localhost', ...args], { cwd, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`git ${args.join(' ')}: ${r.stderr}`);
  return r.stdout.trim();
}

export interface GitHubRepoOptions {
  /** `.loom/config.json` besides the tracker (which always points at the fake). */
  config?: Record<string, unknown>;
  /** The token of `acme`, the repository's owner: Loom's `GITHUB_TOKEN` and `owner`'s (default `tok-owner`). */
  token?: string;
  /** More for the fake: other people's tokens and permissions, a rate limit, a clock. */
  server?: Omit<FakeGitHubOptions, 'owner' | 'repo' | 'gitDir'>;
  /** The files of the first commit (default a README.md). */
  files?: Record<string, string>;
  /** Whether `loom init` runs again with the token once the config names GitHub, creating the labels (default true). */
  labels?: boolean;
}

export interface GitHubRepo {
  /** The temporary directory holding the rest. */
  base: string;
  /** The working clone Loom runs in. */
  root: string;
  /** Its `origin`, the bare repository the fake merges into. */
  bare: string;
  server: FakeGitHubServer;
  /** The environment for `loom`: the owner's token. */
  env: { GITHUB_TOKEN: string; GH_TOKEN: string };
  /** A tracker as the repository's owner, for setting up issues and for assertions. */
  owner: GitHubTracker;
  /** The last `loom init`: the one that created the labels (with `labels: false`, the one before the config). */
  init: RunResult;
  /** Another tracker on the fake, as `token`'s user (disposed with the rest). */
  tracker: (token: string) => GitHubTracker;
}

/** What `removeGitHubRepos` takes down, registered as soon as it exists (a set-up that fails part-way leaves nothing behind). */
const open: { base: string; server?: FakeGitHubServer; trackers: GitHubTracker[] }[] = [];

export async function githubRepo(options: GitHubRepoOptions = {}): Promise<GitHubRepo> {
  const token = options.token ?? 'tok-owner';
  const base = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'loom-gh-')));
  const entry: (typeof open)[number] = { base, trackers: [] };
  open.push(entry);
  const bare = path.join(base, 'widgets.git');
  const root = path.join(base, 'work');
  git(base, 'init', '-q', '--bare', '-b', 'main', bare);
  fs.mkdirSync(root);
  git(root, 'init', '-q', '-b', 'main');
  for (const [file, content] of Object.entries(options.files ?? { 'README.md': '# widgets\n' })) fs.writeFileSync(path.join(root, file), content);
  git(root, 'add', '.');
  git(root, 'commit', '-qm', 'initial');
  git(root, 'remote', 'add', 'origin', bare);
  git(root, 'push', '-q', 'origin', 'main');
  const server = await FakeGitHubServer.start({ owner: 'acme', repo: 'widgets', ...options.server, tokens: { [token]: 'acme', ...options.server?.tokens }, gitDir: bare });
  entry.server = server;
  const tracker = (t: string): GitHubTracker => {
    const made = new GitHubTracker({ owner: 'acme', repo: 'widgets', token: t, baseUrl: server.url });
    entry.trackers.push(made);
    return made;
  };
  const env = { GITHUB_TOKEN: token, GH_TOKEN: '' };
  let init = await loomAsync(root, ['init']);
  expect(init.code, init.stderr).toBe(0);
  fs.writeFileSync(path.join(root, '.loom', 'config.json'), JSON.stringify({ tracker: { type: 'github', owner: 'acme', repo: 'widgets', baseUrl: server.url }, ...options.config }));
  if (options.labels ?? true) {
    init = await loomAsync(root, ['init'], env);
    expect(init.code, init.stderr).toBe(0);
  }
  return { base, root, bare, server, env, owner: tracker(token), init, tracker };
}

/** Takes down every repository `githubRepo` made: its trackers, the fake, whatever still runs there, the files. */
export async function removeGitHubRepos(): Promise<void> {
  for (const { base, server, trackers } of open.splice(0)) {
    for (const t of trackers) t.dispose();
    await server?.close();
    killLeftovers(loomPaths(path.join(base, 'work')));
    removeTestDir(base);
  }
}

/**
 * CI on the fake: the first head Loom asks about stays in progress until the test says (a check
 * run it sets itself); every later head passes at once. Returns the heads in the order asked.
 */
export function holdFirstHeadChecks(server: FakeGitHubServer): string[] {
  const asked: string[] = [];
  server.intercept = ({ checksOf }) => {
    const sha = checksOf ?? undefined;
    if (sha === undefined || asked.includes(sha)) return;
    asked.push(sha);
    server.setCheckRun(sha, asked.length === 1 ? { name: 'unit', status: 'in_progress' } : { name: 'unit', status: 'completed', conclusion: 'success' });
  };
  return asked;
}

/** A human's commit (`human.txt`) pushed to `branch` on origin from a clone of their own; returns its sha. */
export function pushAsHuman(base: string, bare: string, branch: string): string {
  const human = path.join(base, 'human');
  git(base, 'clone', '-q', '-b', branch, bare, human);
  fs.writeFileSync(path.join(human, 'human.txt'), 'from a human\n');
  git(human, 'add', '.');
  git(human, '-c', 'user.name=Hu Man', '-c', 'user.email=hu@example.com', 'commit', '-qm', 'a human’s touch');
  git(human, 'push', '-q', 'origin', branch);
  return git(human, 'rev-parse', 'HEAD');
}
