/**
 * `defaultBranch` (src/git/git.ts) against real temporary repositories: the branch origin's HEAD
 * names first, then main, then master, then whatever HEAD has checked out — asked of git once.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { defaultBranch } from '../../src/git/git.js';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

function repo(branch: string): string {
  const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'loom-default-branch-')));
  dirs.push(dir);
  sh(dir, 'init', '-q', '-b', branch);
  sh(dir, '-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-q', '--allow-empty', '-m', 'initial');
  return dir;
}

function sh(cwd: string, ...args: string[]): string {
  return execFileSync('git', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trimEnd();
}

describe('defaultBranch', () => {
  it("is the branch origin's HEAD points to, over main and master", async () => {
    const dir = repo('main');
    sh(dir, 'branch', 'master');
    sh(dir, 'update-ref', 'refs/remotes/origin/trunk', 'HEAD');
    sh(dir, 'symbolic-ref', 'refs/remotes/origin/HEAD', 'refs/remotes/origin/trunk');
    expect(await defaultBranch(dir)).toBe('trunk');
  });

  it('is main, then master, without an origin; a branch under main/ does not count as main', async () => {
    const dir = repo('work');
    sh(dir, 'branch', 'main/feature');
    expect(await defaultBranch(dir)).toBe('work');
    sh(dir, 'branch', 'master');
    expect(await defaultBranch(dir)).toBe('master');
    sh(dir, 'branch', '-D', 'main/feature');
    sh(dir, 'branch', 'main');
    expect(await defaultBranch(dir)).toBe('main');
  });

  it('is the branch HEAD has checked out when there is neither main nor master', async () => {
    expect(await defaultBranch(repo('trunk'))).toBe('trunk');
  });
});
