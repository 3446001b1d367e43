/**
 * `Worktrees` (src/git/worktrees.ts) against a real repository with a real `origin`: shepherds of
 * different issues create their worktrees at the same moment.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Worktrees } from '../../src/git/worktrees.js';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

function sh(cwd: string, ...args: string[]): string {
  return execFileSync('git', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trimEnd();
}

describe('Worktrees', () => {
  it('creates the worktrees of many issues at once from origin/main: none fails on a git config lock', async () => {
    const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'loom-worktrees-')));
    dirs.push(dir);
    sh(dir, 'init', '-q', '--bare', 'origin.git');
    sh(dir, 'clone', '-q', 'origin.git', 'work');
    const root = path.join(dir, 'work');
    sh(root, '-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-q', '--allow-empty', '-m', 'initial');
    sh(root, 'push', '-q', 'origin', 'HEAD:main');
    sh(root, 'fetch', '-q', 'origin');
    const issues = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
    // One Worktrees per issue, as each shepherd is its own process: the git calls really overlap.
    const results = await Promise.allSettled(issues.map((n) => new Worktrees(root, path.join(root, '.loom', 'worktrees')).ensure(n, 'origin/main')));
    expect(results.filter((r) => r.status === 'rejected').map((r) => String((r).reason))).toEqual([]);
    // The branches exist and start at origin/main; no tracking was configured for them.
    const main = sh(root, 'rev-parse', 'origin/main');
    for (const n of issues) expect(sh(root, 'rev-parse', `loom/issue-${n}`)).toBe(main);
    expect(fs.readFileSync(path.join(root, '.git', 'config'), 'utf8')).not.toContain('[branch "loom/');
  });
});
