/**
 * One git worktree per issue: `.loom/worktrees/issue-N` on branch `loom/issue-N`.
 *
 * Invariants owned here:
 * - a worktree path is always inside `.loom/worktrees` (names come from issue numbers only);
 * - Loom works, commits and deletes only in a path that really is this repository's worktree on
 *   `loom/issue-N`, judged by the real path and by git, not by the name: a symbolic link, a file,
 *   a worktree on another branch or a checkout of another repository is refused and left as it is
 *   (except the original Loom's own worktree on `feature/issue-N`, adopted first:
 *   `original-worktree.ts`);
 * - uncommitted work is never thrown away: before a worktree is removed its changes are saved
 *   as a WIP commit on its branch;
 * - the branch outlives the worktree unless it was merged, so a resumed shepherd finds its work;
 * - a branch with nothing of its own (every commit already in the base) starts again from the
 *   current base, and one with work is brought up to date by a rebase or, failing that, a merge.
 */
import { listDir } from '../fs/list-dir.js';
import fs from 'node:fs';
import path from 'node:path';
import { LoomError } from '../core/errors.js';
import { git, gitMaybe, GitError } from './git.js';
import { processesUsing } from '../process/process-identity.js';
import { adoptOriginalWork } from './original-worktree.js';
import { GitFiles } from './git-files.js';

export function branchFor(issue: number): string {
  return `loom/issue-${issue}`;
}

/** `.loom/worktrees/issue-N` exists but is not Loom's worktree for the issue: Loom will not touch it. */
export class WorkspaceRefusedError extends LoomError {
  constructor(
    readonly issue: number,
    /** The path as the user knows it (relative to the repository). */
    readonly where: string,
    readonly reason: string,
  ) {
    super('workspace_refused', `${where} is not Loom's worktree for #${issue}: ${reason}`, { userFixable: true });
  }
}

/**
 * What is at an issue's worktree path:
 * - `absent`: nothing;
 * - `leftover`: an empty directory (a `git worktree add` killed before it wrote anything);
 * - `worktree`: this repository's worktree on the issue branch; `interrupted` names an operation
 *   a killed process left half-done there (a worktree add still checking out, a rebase, a merge);
 * - `half-removed`: a `git worktree remove` killed while deleting it (its registration still names it);
 * - `refused`: anything else, with the reason.
 */
export type Workspace =
  | { kind: 'absent' }
  | { kind: 'leftover' }
  | { kind: 'worktree'; interrupted: 'add' | 'rebase' | 'merge' | null }
  | { kind: 'half-removed'; registration: string }
  | { kind: 'refused'; reason: string };

/** How `updateFromBase` brought a branch up to date. */
export type BaseUpdate = 'current' | 'rebased' | 'merged' | 'conflict';

/** Called with a worktree's path: after it is created (throwing fails the creation), before it is removed. */
export interface WorktreeHooks {
  afterCreate?: (dir: string) => Promise<void>;
  beforeRemove?: (dir: string) => Promise<void>;
  /** What Loom repaired on its own (a stale `index.lock` removed); default: a `loom:` line on stdout. */
  log?: (line: string) => void;
}

export class Worktrees {
  private commonDirPromise: Promise<string> | null = null;

  constructor(
    /** The repository's main working tree. */
    readonly root: string,
    /** `.loom/worktrees`. */
    readonly dir: string,
    private readonly hooks: WorktreeHooks = {},
  ) {}

  pathFor(issue: number): string {
    if (!Number.isSafeInteger(issue) || issue < 1) throw new Error(`not an issue number: ${issue}`);
    const resolved = path.resolve(this.dir, `issue-${issue}`);
    if (path.dirname(resolved) !== path.resolve(this.dir)) throw new Error(`worktree path escapes ${this.dir}`);
    return resolved;
  }

  /** The worktree path as shown to people: relative to the repository. */
  displayPath(issue: number): string {
    return path.relative(this.root, this.pathFor(issue)) || this.pathFor(issue);
  }

  /**
   * A cheap check without git: a real directory (not a symbolic link) holding a `.git` file, as a
   * linked worktree does. Callers that have not made sure of the path first use `inspect`.
   */
  exists(issue: number): boolean {
    const dir = this.pathFor(issue);
    return lstatOrNull(dir)?.isDirectory() === true && lstatOrNull(path.join(dir, '.git'))?.isFile() === true;
  }

  /** This repository's common git directory (real path), asked once (of git only when the root has no `.git` directory of its own). */
  private commonDir(): Promise<string> {
    const own = path.join(this.root, '.git');
    this.commonDirPromise ??= lstatOrNull(own)?.isDirectory() === true ? Promise.resolve(fs.realpathSync(own)) : git(this.root, ['rev-parse', '--path-format=absolute', '--git-common-dir']).then((d) => fs.realpathSync(d));
    return this.commonDirPromise;
  }

  /** What is at the issue's worktree path, judged by its real path and by git. */
  async inspect(issue: number): Promise<Workspace> {
    const dir = this.pathFor(issue);
    const stat = lstatOrNull(dir);
    if (stat === null) return { kind: 'absent' };
    if (stat.isSymbolicLink()) return { kind: 'refused', reason: `it is a symbolic link (to ${readLinkOr(dir)})` };
    if (!stat.isDirectory()) return { kind: 'refused', reason: 'it is not a directory' };
    if (fs.readdirSync(dir).length === 0) return { kind: 'leftover' };
    const branch = branchFor(issue);
    const real = fs.realpathSync(dir);
    const common = await this.commonDir();
    // Git is asked only when the worktree's files do not tell plainly that it is one of ours on a branch.
    const out = lstatOrNull(path.join(dir, '.git')) === null ? null : (worktreeFromFiles(real, common) ?? (await gitMaybe(dir, ['rev-parse', '--path-format=absolute', '--show-toplevel', '--git-common-dir', '--git-dir', '--symbolic-full-name', 'HEAD'])));
    const [top = '', theirCommon = '', gitDir = '', head = ''] = out?.split('\n') ?? [];
    if (out === null || realOr(top) !== real) {
      // No git worktree of its own. A `git worktree remove` killed half-way leaves a directory
      // without its `.git` that is still registered here: then it is ours to finish removing.
      const registration = lstatOrNull(path.join(dir, '.git')) === null ? this.registrationOf(common, real) : null;
      if (registration !== null) return { kind: 'half-removed', registration };
      return { kind: 'refused', reason: 'it is not a git worktree' };
    }
    if (realOr(theirCommon) !== common) return { kind: 'refused', reason: 'it is not a worktree of this repository' };
    if (realOr(gitDir) === common) return { kind: 'refused', reason: 'it is a separate checkout, not a worktree Loom created' };
    const rebasing = ['rebase-merge', 'rebase-apply'].some((d) => readOr(path.join(gitDir, d, 'head-name')) === `refs/heads/${branch}`);
    if (!rebasing && head !== `refs/heads/${branch}`) {
      return { kind: 'refused', reason: head === 'HEAD' ? `its HEAD is detached, not on ${branch}` : `it has branch ${head.replace(/^refs\/heads\//, '')} checked out, not ${branch}` };
    }
    const interrupted = /initializ/i.test(readOr(path.join(gitDir, 'locked'))) ? 'add' : rebasing ? 'rebase' : fs.existsSync(path.join(gitDir, 'MERGE_HEAD')) ? 'merge' : null;
    return { kind: 'worktree', interrupted };
  }

  /** The registration (`<common>/worktrees/<id>`) whose `gitdir` names `<real>/.git`, if any. */
  private registrationOf(common: string, real: string): string | null {
    const admin = path.join(common, 'worktrees');
    let ids: string[];
    try {
      ids = fs.readdirSync(admin);
    } catch {
      return null;
    }
    for (const id of ids) {
      const gitdir = readOr(path.join(admin, id, 'gitdir'));
      if (gitdir !== '' && realOr(path.dirname(gitdir)) === real) return path.join(admin, id);
    }
    return null;
  }

  private refuse(issue: number, reason: string): never {
    throw new WorkspaceRefusedError(issue, this.displayPath(issue), reason);
  }

  /** Makes a `half-removed`, `leftover` or interrupted workspace usable (or gone); refuses a foreign one. */
  private async settle(issue: number): Promise<'absent' | 'worktree'> {
    const dir = this.pathFor(issue);
    const ws = await this.inspect(issue);
    switch (ws.kind) {
      case 'absent':
        return 'absent';
      case 'refused':
        return this.refuse(issue, ws.reason);
      case 'leftover':
        fs.rmdirSync(dir);
        return 'absent';
      case 'half-removed':
        fs.rmSync(dir, { recursive: true, force: true });
        fs.rmSync(ws.registration, { recursive: true, force: true });
        return 'absent';
      case 'worktree':
        this.removeStaleLocks(issue);
        if (ws.interrupted === 'add') {
          // Killed while checking out: nothing in it is work (a new worktree has none yet).
          await git(this.root, ['worktree', 'remove', '--force', '--force', dir]);
          return 'absent';
        }
        if (ws.interrupted === 'rebase') await git(dir, ['rebase', '--abort']);
        if (ws.interrupted === 'merge') await git(dir, ['merge', '--abort']);
        return 'worktree';
    }
  }

  /**
   * The issue's worktree, created if needed: on the existing branch `loom/issue-N` when it has
   * work of its own, else on a branch (re)started from `base`. `existed`: the worktree was there
   * already (it may hold work an interrupted run left uncommitted); `branchExisted`: the branch
   * was (an earlier run may have opened a PR for it). Throws `WorkspaceRefusedError` for a path
   * that is not Loom's worktree for the issue.
   */
  async prepare(issue: number, base: string): Promise<{ dir: string; existed: boolean; branchExisted: boolean }> {
    const dir = this.pathFor(issue);
    // The original Loom's worktree (feature/issue-N, marker files) or branch continues on ours.
    const adopted = await adoptOriginalWork(this.root, dir, issue, base);
    if (adopted !== null) {
      if (this.hooks.log !== undefined) this.hooks.log(adopted);
      else process.stdout.write(`loom: ${adopted}\n`);
    }
    if ((await this.settle(issue)) === 'worktree') return { dir, existed: true, branchExisted: true };
    fs.mkdirSync(this.dir, { recursive: true });
    const branch = branchFor(issue);
    let branchExisted = false;
    const add = async () => {
      // A new branch in one git process; git refuses `-b` for a branch that exists (touching
      // nothing), and only then is the branch looked at. Git's refusals are told by their
      // messages (here and below): asked for in English, whatever the locale.
      const english = { english: true };
      try {
        await git(this.root, ['worktree', 'add', '-q', '--no-track', '-b', branch, dir, base], english);
        branchExisted = false;
        return;
      } catch (error) {
        if (!(error instanceof GitError) || !/a branch named '.*' already exists/.test(error.stderr)) throw error;
      }
      const tip = await gitMaybe(this.root, ['rev-parse', '--verify', '--quiet', `refs/heads/${branch}^{commit}`]);
      branchExisted = tip !== null;
      if (tip === null) await git(this.root, ['worktree', 'add', '-q', '--no-track', '-b', branch, dir, base], english);
      else if ((await gitMaybe(this.root, ['merge-base', '--is-ancestor', tip, base])) !== null) await git(this.root, ['worktree', 'add', '-q', '--no-track', '-B', branch, dir, base], english);
      else await git(this.root, ['worktree', 'add', '-q', dir, branch], english);
    };
    // Git's own races between worktree adds running at once (another add's half-written admin
    // directory, a lock held for a moment): tried again, a few times, after a short pause.
    const addRetrying = async () => {
      for (let attempt = 1; ; attempt += 1) {
        try {
          return await add();
        } catch (error) {
          if (attempt >= 4 || !(error instanceof GitError) || !/failed to read .*commondir|could not lock|Unable to create .*\.lock/.test(error.stderr)) throw error;
          if (fs.existsSync(dir) && !fs.existsSync(path.join(dir, '.git'))) fs.rmSync(dir, { recursive: true, force: true });
          await new Promise((resolve) => setTimeout(resolve, 50 * attempt));
        }
      }
    };
    try {
      await addRetrying();
    } catch (error) {
      // A registration left by a crashed run blocks the add. Prune only then: a prune while other
      // shepherds are adding their worktrees can unregister theirs.
      if (!(error instanceof GitError) || !/already (registered|checked out|used by worktree)|missing but/.test(error.stderr)) throw error;
      await git(this.root, ['worktree', 'prune']);
      await addRetrying();
    }
    try {
      await this.hooks.afterCreate?.(dir);
    } catch (error) {
      // A new worktree holds no work: remove it, so that the next attempt creates it (and runs the hook) again.
      await gitMaybe(this.root, ['worktree', 'remove', '--force', dir]);
      throw error;
    }
    return { dir, existed: false, branchExisted };
  }

  /** `prepare`, for callers that need only the path. */
  async ensure(issue: number, base: string): Promise<string> {
    return (await this.prepare(issue, base)).dir;
  }

  /**
   * Brings the worktree's branch up to date with `base`: nothing to do when `base` is already in
   * it; else a rebase; when that conflicts, a merge of `base` into it; when that conflicts too,
   * nothing changes and the result is `conflict`. The worktree must be clean (save WIP first).
   */
  async updateFromBase(issue: number, base: string): Promise<BaseUpdate> {
    const dir = this.pathFor(issue);
    if ((await gitMaybe(dir, ['merge-base', '--is-ancestor', base, 'HEAD'])) !== null) return 'current';
    try {
      await git(dir, ['rebase', '-q', base], { asLoom: true });
      return 'rebased';
    } catch (error) {
      if (!(error instanceof GitError)) throw error;
      await gitMaybe(dir, ['rebase', '--abort']);
    }
    try {
      await git(dir, ['merge', '-q', '--no-edit', '-m', `Merge ${base} into ${branchFor(issue)}`, base], { asLoom: true });
      return 'merged';
    } catch (error) {
      if (!(error instanceof GitError)) throw error;
      await gitMaybe(dir, ['merge', '--abort']);
      return 'conflict';
    }
  }

  /** Whether the issue branch exists and has commits that `base` does not. */
  async hasWork(issue: number, base: string): Promise<boolean> {
    const count = await gitMaybe(this.root, ['rev-list', '--count', `${base}..refs/heads/${branchFor(issue)}`]);
    return count !== null && Number(count) > 0;
  }

  /**
   * Removes the locks a git command killed in the middle of a write left in the worktree when no
   * process holds them: its `index.lock` (an agent's `git add`, say), its `HEAD.lock` and the
   * branch's ref lock (a `git commit` killed while it moved the branch). Left there, every later
   * git write fails ("Unable to create … .lock: File exists"), every attempt at the issue fails and
   * the issue ends blocked. Held means some live process has its working directory in the worktree
   * or the lock file open; then it stays. Returns whether it removed one.
   */
  removeStaleLocks(issue: number): boolean {
    if (!this.exists(issue)) return false;
    const dir = fs.realpathSync(this.pathFor(issue));
    const gitdir = /^gitdir:\s*(.+)$/m.exec(readOr(path.join(dir, '.git')))?.[1]?.trim();
    if (gitdir === undefined) return false;
    const own = realOr(path.resolve(dir, gitdir));
    // The repository's own git directory (refs live there): the worktree's `commondir` names it.
    const common = realOr(path.resolve(own, readOr(path.join(own, 'commondir')).trim() || '../..'));
    const locks = [path.join(own, 'index.lock'), path.join(own, 'HEAD.lock'), path.join(common, 'refs', 'heads', `${branchFor(issue)}.lock`)];
    let removed = false;
    for (const lock of locks) {
      if (lstatOrNull(lock) === null) continue;
      if (processesUsing(dir, lock).length > 0) continue;
      fs.rmSync(lock, { force: true });
      removed = true;
      const line = `removed a stale ${path.relative(this.root, lock) || lock} in the worktree of #${issue} (left by a git command that was killed; no process holds it)`;
      if (this.hooks.log !== undefined) this.hooks.log(line);
      else process.stdout.write(`loom: ${line}\n`);
    }
    return removed;
  }

  /** Whether the worktree has uncommitted changes (tracked or untracked). */
  async isDirty(issue: number): Promise<boolean> {
    if (!this.exists(issue)) return false;
    return (await git(this.pathFor(issue), ['status', '--porcelain'])).length > 0;
  }

  /**
   * Commits every change in the worktree (if any) with `message`; returns whether it did. Two git
   * processes whether or not there is anything to commit: everything is staged, and a commit with
   * nothing staged fails saying so ("nothing to commit", exit 1) — no separate status check.
   */
  async commitAll(issue: number, message: string): Promise<boolean> {
    if (!this.exists(issue)) return false;
    const dir = this.pathFor(issue);
    this.removeStaleLocks(issue);
    await git(dir, ['add', '-A']);
    try {
      await git(dir, ['commit', '-q', '--no-verify', '-m', message], { asLoom: true, english: true });
      return true;
    } catch (error) {
      if (error instanceof GitError && error.exitCode === 1 && /^nothing (added )?to commit\b/m.test(error.stdout)) return false;
      throw error;
    }
  }

  /** Saves uncommitted work as a WIP commit on the issue's branch. */
  saveWip(issue: number, reason: string): Promise<boolean> {
    return this.commitAll(issue, `WIP #${issue}: ${reason}\n\nSaved by Loom so no work is lost.`);
  }

  /**
   * Saves WIP, then removes the worktree; the branch stays unless `deleteBranch` (`'if-no-work'`:
   * only when it has no commit `base` lacks). Returns whether it deleted the branch. Throws
   * `WorkspaceRefusedError`, touching nothing, when the path is not Loom's worktree for the issue.
   */
  async remove(issue: number, options: { deleteBranch?: boolean | 'if-no-work'; base?: string; reason?: string; discard?: boolean } = {}): Promise<{ branchDeleted: boolean }> {
    const dir = this.pathFor(issue);
    if ((await this.settle(issue)) === 'worktree') {
      await this.hooks.beforeRemove?.(dir).catch(() => undefined);
      // Without --force git removes only a clean worktree (nothing modified or untracked, as
      // `isDirty` judges it): the common case costs one git process. Anything it refuses (changes,
      // a lock, submodules) goes the long way: the changes saved as a WIP commit, then forced.
      // `discard`: what is uncommitted is not work (after an approval: what the test gate and the
      // judge left), and a commit of it would join the approved PR unreviewed.
      if ((await gitMaybe(this.root, ['worktree', 'remove', dir])) === null) {
        if (options.discard !== true) await this.saveWip(issue, options.reason ?? 'worktree removed');
        await git(this.root, ['worktree', 'remove', '--force', dir]);
      }
    }
    const branch = branchFor(issue);
    const drop = options.deleteBranch === true || (options.deleteBranch === 'if-no-work' && options.base !== undefined && !(await this.hasWork(issue, options.base)));
    if (drop) await gitMaybe(this.root, ['branch', '-D', branch]);
    return { branchDeleted: drop };
  }

  /** Issue numbers that have something at their worktree path. */
  list(): number[] {
    return listDir(this.dir)
      .map((n) => /^issue-(\d+)$/.exec(n)?.[1])
      .filter((n): n is string => n !== undefined)
      .map(Number)
      .sort((a, b) => a - b);
  }
}

/**
 * What `git rev-parse --show-toplevel --git-common-dir --git-dir --symbolic-full-name HEAD` says in
 * the linked worktree at `real`, read from its files: its `.git` file names its administrative
 * directory under `common`/worktrees, whose `commondir` leads back to `common`, whose `gitdir`
 * names this `.git` file, and whose `HEAD` names an existing branch. Null when anything there is
 * otherwise (another repository, a detached HEAD, a moved worktree, a setting that could change
 * git's answer): then git is asked.
 */
function worktreeFromFiles(real: string, common: string): string | null {
  const files = GitFiles.at(common);
  if (files === null) return null;
  const dotGit = path.join(real, '.git');
  if (lstatOrNull(dotGit)?.isFile() !== true) return null;
  const pointer = /^gitdir: (.+)$/.exec(readOr(dotGit))?.[1];
  if (pointer === undefined) return null;
  const gitDir = realOr(path.resolve(real, pointer));
  if (path.dirname(gitDir) !== path.join(common, 'worktrees') || lstatOrNull(gitDir)?.isDirectory() !== true) return null;
  const commondir = readOr(path.join(gitDir, 'commondir'));
  if (commondir === '' || realOr(path.resolve(gitDir, commondir)) !== common) return null;
  const backlink = readOr(path.join(gitDir, 'gitdir'));
  if (backlink === '' || realOr(path.resolve(gitDir, backlink)) !== dotGit) return null;
  // A worktree's own configuration, or `core.worktree` in the shared one, could put its top elsewhere.
  if (fs.existsSync(path.join(gitDir, 'config.worktree')) || /^\s*worktree\s*=/im.test(readOr(path.join(common, 'config')))) return null;
  const head = /^ref: (refs\/heads\/\S+)$/.exec(readOr(path.join(gitDir, 'HEAD')))?.[1];
  if (head === undefined || typeof files.ref(head) !== 'string') return null;
  return [real, common, gitDir, head].join('\n');
}

function lstatOrNull(file: string): fs.Stats | null {
  try {
    return fs.lstatSync(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT' || (error as NodeJS.ErrnoException).code === 'ENOTDIR') return null;
    throw error;
  }
}

function readOr(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8').trim();
  } catch {
    return '';
  }
}

function readLinkOr(file: string): string {
  try {
    return fs.readlinkSync(file);
  } catch {
    return '?';
  }
}

function realOr(file: string): string {
  try {
    return fs.realpathSync(file);
  } catch {
    return file;
  }
}
