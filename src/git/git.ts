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
    super('git_failed', `git ${args.join(' ')} failed${exitCode === null ? '' : ` (exit ${exitCode})`}: ${stderr.trim().split('\n').slice(-3).join(' / ') || 'no message'}`, {});
  }
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

/** Runs git in `cwd`; resolves with trimmed stdout, rejects with `GitError`. */
export function git(cwd: string, args: readonly string[], options: GitOptions = {}): Promise<string> {
  const full = options.asLoom ? [...LOOM_IDENTITY, ...args] : [...args];
  return new Promise((resolve, reject) => {
    execFile('git', full, { cwd, env: options.env ?? (options.english ? { ...gitEnv(), LC_ALL: 'C' } : gitEnv()), maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
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

/** The process environment without variables that would redirect git to another repository. */
function gitEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const key of ['GIT_DIR', 'GIT_WORK_TREE', 'GIT_INDEX_FILE', 'GIT_OBJECT_DIRECTORY']) delete env[key];
  return env;
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
