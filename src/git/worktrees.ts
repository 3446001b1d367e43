/**
 * One git worktree per issue: `.loom/worktrees/issue-N` on branch `loom/issue-N`.
 *
 * Invariants owned here:
 * - a worktree path is always inside `.loom/worktrees` (names come from issue numbers only);
 * - uncommitted work is never thrown away: before a worktree is removed its changes are saved
 *   as a WIP commit on its branch;
 * - the branch outlives the worktree unless it was merged, so a resumed shepherd finds its work.
 */
import fs from 'node:fs';
import path from 'node:path';
import { git, gitMaybe, GitError } from './git.js';
import { adoptOriginalWork } from './original-worktree.js';

export function branchFor(issue: number): string {
  return `loom/issue-${issue}`;
}

export class Worktrees {
  constructor(
    /** The repository's main working tree. */
    readonly root: string,
    /** `.loom/worktrees`. */
    readonly dir: string,
  ) {}

  pathFor(issue: number): string {
    if (!Number.isSafeInteger(issue) || issue < 1) throw new Error(`not an issue number: ${issue}`);
    const resolved = path.resolve(this.dir, `issue-${issue}`);
    if (path.dirname(resolved) !== path.resolve(this.dir)) throw new Error(`worktree path escapes ${this.dir}`);
    return resolved;
  }

  exists(issue: number): boolean {
    return fs.existsSync(path.join(this.pathFor(issue), '.git'));
  }

  /**
   * The issue's worktree, created if needed: on the existing branch `loom/issue-N` (a resumed
   * shepherd) or on a new one from `base`.
   */
  async ensure(issue: number, base: string): Promise<string> {
    const dir = this.pathFor(issue);
    // The original Loom's worktree (feature/issue-N, marker files) or branch continues on ours.
    const adopted = await adoptOriginalWork(this.root, dir, issue, base);
    if (adopted !== null) process.stdout.write(`loom: ${adopted}\n`);
    if (this.exists(issue)) return dir;
    fs.mkdirSync(this.dir, { recursive: true });
    if (fs.existsSync(dir)) fs.rmSync(dir, { recursive: true, force: true }); // a half-created leftover
    const branch = branchFor(issue);
    const add = async () => {
      const hasBranch = await gitMaybe(this.root, ['rev-parse', '--verify', '--quiet', `refs/heads/${branch}`]);
      if (hasBranch) await git(this.root, ['worktree', 'add', dir, branch]);
      else await git(this.root, ['worktree', 'add', '-b', branch, dir, base]);
    };
    try {
      await add();
    } catch (error) {
      // A registration left by a crashed run blocks the add. Prune only then: a prune while other
      // shepherds are adding their worktrees can unregister theirs.
      if (!(error instanceof GitError) || !/already (registered|checked out|used by worktree)|missing but/.test(error.stderr)) throw error;
      await git(this.root, ['worktree', 'prune']);
      await add();
    }
    return dir;
  }

  /** Whether the worktree has uncommitted changes (tracked or untracked). */
  async isDirty(issue: number): Promise<boolean> {
    if (!this.exists(issue)) return false;
    return (await git(this.pathFor(issue), ['status', '--porcelain'])).length > 0;
  }

  /** Commits every change in the worktree (if any) with `message`; returns whether it did. */
  async commitAll(issue: number, message: string): Promise<boolean> {
    if (!(await this.isDirty(issue))) return false;
    const dir = this.pathFor(issue);
    await git(dir, ['add', '-A']);
    await git(dir, ['commit', '-q', '--no-verify', '-m', message], { asLoom: true });
    return true;
  }

  /** Saves uncommitted work as a WIP commit on the issue's branch. */
  saveWip(issue: number, reason: string): Promise<boolean> {
    return this.commitAll(issue, `WIP #${issue}: ${reason}\n\nSaved by Loom so no work is lost.`);
  }

  /** Saves WIP, then removes the worktree (the branch stays unless `deleteBranch`). */
  async remove(issue: number, options: { deleteBranch?: boolean; reason?: string } = {}): Promise<void> {
    const dir = this.pathFor(issue);
    if (this.exists(issue)) {
      await this.saveWip(issue, options.reason ?? 'worktree removed');
      await git(this.root, ['worktree', 'remove', '--force', dir]);
    } else if (fs.existsSync(dir)) {
      fs.rmSync(dir, { recursive: true, force: true });
    }
    if (options.deleteBranch) await gitMaybe(this.root, ['branch', '-D', branchFor(issue)]);
  }

  /** Issue numbers that have a worktree directory. */
  list(): number[] {
    let names: string[];
    try {
      names = fs.readdirSync(this.dir);
    } catch {
      return [];
    }
    return names
      .map((n) => /^issue-(\d+)$/.exec(n)?.[1])
      .filter((n): n is string => n !== undefined)
      .map(Number)
      .sort((a, b) => a - b);
  }
}
