import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

/**
 * The main working tree of the git repository containing `cwd` (a linked worktree resolves to
 * its main repository, so shepherds in `.loom/worktrees/` share the daemon's `.loom/`), or null.
 */
export function findRepoRoot(cwd: string): string | null {
  // A `.git` directory makes `cwd` a main working tree: no git process needed (a linked
  // worktree or a submodule has a `.git` file instead, and goes through git).
  if (isDirectory(path.join(cwd, '.git'))) return fs.realpathSync(cwd);
  try {
    const common = execFileSync('git', ['rev-parse', '--path-format=absolute', '--git-common-dir'], { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    if (path.basename(common) === '.git') return path.dirname(common);
    return execFileSync('git', ['rev-parse', '--show-toplevel'], { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return null;
  }
}

function isDirectory(p: string): boolean {
  try {
    return fs.lstatSync(p).isDirectory();
  } catch {
    return false;
  }
}
