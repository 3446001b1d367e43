/**
 * A thin, typed wrapper around the `git` executable. Every call is a real git process; failures
 * become `GitError` values carrying git's own message, so callers can say what went wrong.
 */
import { execFile } from 'node:child_process';
import { LoomError } from '../core/errors.js';
import { GitFiles } from './git-files.js';

export class GitError extends LoomError {
  constructor(
    readonly args: readonly string[],
    readonly exitCode: number | null,
    readonly stderr: string,
    /** What git printed on stdout before failing (some commands report there: `merge-tree`). */
    readonly stdout = '',
  ) {
    super('git_failed', `git ${args.join(' ')} failed${exitCode === null ? '' : ` (exit ${exitCode})`}: ${gist(stderr) || 'no message'}`, {});
  }
}

/** What git said, in short: its `fatal:`/`error:` lines when it printed any (its hints come after them), else its last three lines. */
function gist(stderr: string): string {
  const lines = stderr.trim().split('\n').filter((l) => l.trim() !== '');
  const said = lines.filter((l) => /^(fatal|error):/.test(l));
  return (said.length > 0 ? said.slice(0, 3) : lines.slice(-3)).join(' / ');
}

/** Identity used for commits Loom makes itself (WIP saves, leftover changes, merges). */
const LOOM_IDENTITY = ['-c', 'user.name=Loom', '-c', 'user.email=loom@localhost'];

export interface GitOptions {
  /** Commit as Loom when git has no identity configured. */
  asLoom?: boolean;
  env?: NodeJS.ProcessEnv;
  /** Git's messages in English (`LC_ALL=C`), for a caller that tells an outcome by its message. */
  english?: boolean;
}

/**
 * How long a git command that found the index locked by another git process is tried again,
 * ms, in growing steps: another process's `git status` or `git add` holds the lock for
 * milliseconds; a lock left by a crashed git stays, and the command fails with git's message.
 */
const INDEX_LOCK_RETRIES_MS = [50, 100, 200, 400, 800, 1_600, 3_200];

/**
 * Runs git in `cwd`; resolves with trimmed stdout, rejects with `GitError`. A command that could
 * not take the index lock because another git process held it is tried again (it changed
 * nothing): a shepherd's commit must not fail because someone looked at its worktree. So is one
 * that met another worktree being added: `git worktree add` writes a HEAD of zeros first and the
 * real one a moment later, and a fetch's connectivity check, which walks every worktree's HEAD,
 * fails on it ("bad object worktrees/<name>/HEAD") without updating any ref — two shepherds, one
 * starting while the other fetches before its merge.
 */
export async function git(cwd: string, args: readonly string[], options: GitOptions = {}): Promise<string> {
  for (let attempt = 0; ; attempt += 1) {
    try {
      return await gitOnce(cwd, args, options);
    } catch (error) {
      const wait = INDEX_LOCK_RETRIES_MS[attempt];
      if (wait === undefined || !(error instanceof GitError) || !(indexLocked(error.stderr) || worktreeBeingAdded(error.stderr))) throw error;
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
  }
}

/** Git's refusal to run because another git process holds the index lock (its message names the lock file in any language). */
function indexLocked(stderr: string): boolean {
  return /index\.lock/.test(stderr);
}

/**
 * Git's "bad object worktrees/<name>/HEAD": another worktree's HEAD is the placeholder `git
 * worktree add` writes before the real one. (Not a lock on a worktree's HEAD, which may come after
 * a command changed files; in a language other than English git's words differ and it fails as
 * before.)
 */
export function worktreeBeingAdded(stderr: string): boolean {
  return /\bbad object (?:\S*\/)?worktrees\/[^\s/]+\/HEAD(?![.\w/])/.test(stderr);
}

function gitOnce(cwd: string, args: readonly string[], options: GitOptions): Promise<string> {
  const full = options.asLoom ? [...LOOM_IDENTITY, ...args] : [...args];
  const env = options.env === undefined ? (options.english ? { ...gitEnv(), LC_ALL: 'C' } : gitEnv()) : { GIT_OPTIONAL_LOCKS: '0', ...options.env };
  return new Promise((resolve, reject) => {
    execFile('git', full, { cwd, env, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error) reject(new GitError(args, typeof error.code === 'number' ? error.code : null, stderr || error.message, stdout));
      else resolve(stdout.trimEnd());
    });
  });
}

/** Like `git` but resolves to null instead of rejecting (for probes such as `rev-parse --verify`). */
export async function gitMaybe(cwd: string, args: readonly string[]): Promise<string | null> {
  try {
    return await git(cwd, args);
  } catch (error) {
    if (error instanceof GitError) return null;
    throw error;
  }
}

/**
 * The process environment without variables that would redirect git to another repository, and
 * with git's optional locks off: Loom's looks into a worktree (`git status` of a running
 * shepherd's worktree, to compare the files it touches) must never take the index lock its
 * owner needs to commit.
 */
function gitEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, GIT_OPTIONAL_LOCKS: '0' };
  for (const key of ['GIT_DIR', 'GIT_WORK_TREE', 'GIT_INDEX_FILE', 'GIT_OBJECT_DIRECTORY']) delete env[key];
  return env;
}

/**
 * The problem with a configured default branch (`defaultBranch`, `LOOM_DEFAULT_BRANCH`) that is no
 * branch here — neither local nor on `origin` (a typo such as "mian") — in one line, or null when
 * it exists or none is configured. Every issue built from it would fail and end blocked.
 */
export async function missingDefaultBranch(root: string, configured: string | undefined): Promise<string | null> {
  if (configured === undefined) return null;
  for (const ref of [`refs/heads/${configured}`, `refs/remotes/origin/${configured}`]) {
    if ((await gitMaybe(root, ['rev-parse', '--verify', '-q', `${ref}^{commit}`])) !== null) return null;
  }
  return `defaultBranch "${configured}" (.loom/config.json or LOOM_DEFAULT_BRANCH) is not a branch of this repository: no shepherd starts until it names one (or is removed, to use the detected default branch)`;
}

/** The repository's default branch: `init.defaultBranch`-independent — the branch HEAD of the main worktree names, else main/master. */
export async function defaultBranch(root: string): Promise<string> {
  const files = GitFiles.of(root);
  const known = files === null ? undefined : defaultBranchFromFiles(files);
  if (known !== undefined) return known;
  // One git process for the three candidates: origin's HEAD (what it points to), then main, then master.
  const refs = new Map<string, string>();
  for (const line of ((await gitMaybe(root, ['for-each-ref', '--format=%(refname) %(symref)', 'refs/remotes/origin/HEAD', 'refs/heads/main', 'refs/heads/master'])) ?? '').split('\n')) {
    const [name = '', target = ''] = line.split(' ');
    refs.set(name, target);
  }
  const remoteHead = refs.get('refs/remotes/origin/HEAD');
  if (remoteHead?.startsWith('refs/remotes/origin/')) return remoteHead.slice('refs/remotes/origin/'.length);
  for (const name of ['main', 'master']) if (refs.has(`refs/heads/${name}`)) return name;
  const head = await gitMaybe(root, ['symbolic-ref', '--short', 'HEAD']);
  if (head) return head;
  throw new GitError(['symbolic-ref', 'HEAD'], null, 'cannot tell the default branch (no main/master branch and HEAD is detached); set "defaultBranch" in .loom/config.json');
}

/** `defaultBranch` read from the ref files, without git: undefined when they do not tell (then git is asked). */
function defaultBranchFromFiles(files: GitFiles): string | undefined {
  // A symbolic ref is never packed: origin's HEAD is a loose file or absent. One naming a missing branch does not count (git skips it too).
  const remoteHead = files.symref('refs/remotes/origin/HEAD');
  if (remoteHead === undefined) return undefined;
  if (remoteHead?.startsWith('refs/remotes/origin/')) {
    const target = files.ref(remoteHead);
    if (target === undefined) return undefined;
    if (target !== null) return remoteHead.slice('refs/remotes/origin/'.length);
  }
  for (const name of ['main', 'master']) {
    const sha = files.ref(`refs/heads/${name}`);
    if (sha === undefined) return undefined;
    if (sha !== null) return name;
  }
  // Neither: the branch HEAD has checked out, asked of git.
  return undefined;
}
