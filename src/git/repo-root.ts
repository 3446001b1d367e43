import { execFileSync } from 'node:child_process';
import path from 'node:path';

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
