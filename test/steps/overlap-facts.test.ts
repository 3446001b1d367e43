/**
 * `gatherOverlap` (src/steps/overlap-facts.ts) over a real repository with real branches and
 * worktrees: predicted files of a ready issue (named paths + an earlier attempt's branch), a
 * running shepherd's actual changes (committed and not), an open PR's branch; and the diff cache
 * keyed by branch head (a head that did not move costs no diff; one that moved is diffed again).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loomPaths } from '../../src/config/paths.js';
import { defaultConfig } from '../../src/core/config-model.js';
import { Label } from '../../src/core/labels.js';
import type { Issue, PullRequest } from '../../src/core/tracker-model.js';
import { gatherOverlap } from '../../src/steps/overlap-facts.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

const git = (cwd: string, ...args: string[]) => execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@t', ...args], { cwd, encoding: 'utf8' }).trim();
const write = (dir: string, file: string, text: string) => {
  fs.mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
  fs.writeFileSync(path.join(dir, file), text);
};
const at = '2026-01-01T00:00:00Z';
const issue = (number: number, body: string, labels: string[] = [Label.issue]): Issue => ({ number, title: `Issue ${number}`, body, state: 'open', labels, author: 'a', createdAt: at, updatedAt: at });
const pr = (number: number, closes: number, labels: string[]): PullRequest => ({ number, title: 'pr', body: `Closes #${closes}`, state: 'open', labels, head: `loom/issue-${closes}`, base: 'main', closesIssue: closes, createdAt: at, updatedAt: at });

describe('gatherOverlap', () => {
  it('predicts, observes running work and open PRs, and diffs each branch head once', async () => {
    const root = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'loom-overlap-')));
    dirs.push(root);
    git(root, 'init', '-q', '-b', 'main');
    write(root, 'src/a.ts', 'a\n');
    write(root, 'src/b.ts', 'b\n');
    write(root, '.gitignore', '.loom/\n');
    git(root, 'add', '.');
    git(root, 'commit', '-qm', 'initial');
    const paths = loomPaths(root);
    fs.mkdirSync(paths.worktrees, { recursive: true });
    // #1: an earlier attempt left a branch changing src/b.ts.
    git(root, 'branch', 'loom/issue-1');
    const w1 = path.join(paths.worktrees, 'issue-1');
    git(root, 'worktree', 'add', '-q', w1, 'loom/issue-1');
    write(w1, 'src/b.ts', 'b1\n');
    git(w1, 'commit', '-qam', 'attempt');
    git(root, 'worktree', 'remove', w1);
    // #2: running; committed src/c.ts, uncommitted change to src/a.ts and a new untracked file.
    const w2 = path.join(paths.worktrees, 'issue-2');
    git(root, 'worktree', 'add', '-q', '-b', 'loom/issue-2', w2, 'main');
    write(w2, 'src/c.ts', 'c\n');
    git(w2, 'add', '.');
    git(w2, 'commit', '-qm', 'c');
    write(w2, 'src/a.ts', 'a2\n');
    write(w2, 'docs/new.md', 'new\n');
    // #3: its PR is open and approved; the branch changed README.md.
    git(root, 'branch', 'loom/issue-3', 'main');
    const w3 = path.join(paths.worktrees, 'issue-3');
    git(root, 'worktree', 'add', '-q', w3, 'loom/issue-3');
    write(w3, 'README.md', 'readme\n');
    git(w3, 'add', '.');
    git(w3, 'commit', '-qm', 'readme');
    git(root, 'worktree', 'remove', w3);
    // The base moves on after the branches left it: its own changes are no branch's.
    write(root, 'src/base-only.ts', 'x\n');
    git(root, 'add', '.');
    git(root, 'commit', '-qm', 'base moves');

    const config = defaultConfig();
    // Bare names: `notes.md` is surely a file; `console.log` is code (no such file); `b.cfgx` is
    // not a known kind of file but the repository has one.
    write(root, 'lib/b.cfgx', 'x\n');
    git(root, 'add', '.');
    git(root, 'commit', '-qm', 'b.cfgx');
    const snapshot = { issues: [issue(1, 'Fix `src/a.ts`; see notes.md, console.log and b.cfgx.'), issue(2, 'Touch src/c.ts', [Label.building]), issue(3, 'Docs', [])], pullRequests: [pr(10, 3, [Label.pr])] };
    const input = { paths, config, base: 'main', remote: false, snapshot, candidates: [snapshot.issues[0]!], running: [2], saveCache: true };
    const facts = await gatherOverlap(input);
    expect(facts.predicted).toEqual({ '1': ['src/a.ts', 'notes.md', 'b.cfgx', 'src/b.ts'] });
    expect(facts.work.map((w) => ({ ...w, files: [...w.files].sort() }))).toEqual([
      { issue: 2, pr: null, running: true, awaitsPerson: false, files: ['docs/new.md', 'src/a.ts', 'src/c.ts'] },
      { issue: 3, pr: 10, running: false, awaitsPerson: false, files: ['README.md'] },
    ]);

    // The cache holds one entry per branch head; reading again adds none, a moved head adds one.
    const cache = () => Object.keys(JSON.parse(fs.readFileSync(paths.diffCache, 'utf8')) as object);
    expect(cache()).toHaveLength(3);
    await gatherOverlap(input);
    expect(cache()).toHaveLength(3);
    write(w2, 'src/d.ts', 'd\n');
    git(w2, 'add', '.');
    git(w2, 'commit', '-qm', 'd');
    const moved = await gatherOverlap(input);
    expect(cache()).toHaveLength(4);
    expect([...moved.work[0]!.files].sort()).toEqual(['docs/new.md', 'src/a.ts', 'src/c.ts', 'src/d.ts']);
  });
});
