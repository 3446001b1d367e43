/**
 * The post-merge guard's crash windows, in a real repository with the local tracker: a merge is
 * reverted once, even when the run that reverted it was killed before recording so; a merge a
 * killed merger left `verifying` is verified by the next merge attempt.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loomPaths } from '../../src/config/paths.js';
import { defaultConfig } from '../../src/core/config-model.js';
import { Label } from '../../src/core/labels.js';
import { BaseGuardStore } from '../../src/state/base-guard-store.js';
import { guardAfterMerge, guardBeforeMerge } from '../../src/steps/base-guard.js';
import { LocalTracker } from '../../src/tracker/local/local-tracker.js';

const dirs: string[] = [];
const trackers: LocalTracker[] = [];
afterEach(() => {
  for (const t of trackers.splice(0)) t.dispose();
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

const git = (cwd: string, ...args: string[]) => {
  const r = spawnSync('git', ['-c', 'user.name=Tests', '-c', 'user.email=tests@localhost', ...args], { cwd, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`git ${args.join(' ')}: ${r.stderr}`);
  return r.stdout.trim();
};

/** A repository whose main has just merged a branch adding `bad.txt`, with a closed issue #1 and its merged PR. */
async function merged() {
  const root = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'loom-guard-')));
  dirs.push(root);
  git(root, 'init', '-q', '-b', 'main');
  fs.writeFileSync(path.join(root, 'README.md'), '# r\n');
  git(root, 'add', '.');
  git(root, 'commit', '-qm', 'initial');
  git(root, 'checkout', '-qb', 'loom/issue-1');
  fs.writeFileSync(path.join(root, 'bad.txt'), 'bad\n');
  git(root, 'add', '.');
  git(root, 'commit', '-qm', 'add bad.txt');
  git(root, 'checkout', '-q', 'main');
  git(root, 'merge', '-q', '--no-ff', '-m', 'Merge #1: bad (PR #2)', 'loom/issue-1');
  const paths = loomPaths(root);
  fs.mkdirSync(paths.worktrees, { recursive: true });
  fs.writeFileSync(path.join(paths.dir, '.gitignore'), '*\n');
  const tracker = new LocalTracker({ path: paths.trackerDb });
  trackers.push(tracker);
  await tracker.createIssue({ title: 'bad', labels: [Label.building] });
  await tracker.createPullRequest({ title: '#1: bad', head: 'loom/issue-1', base: 'main', closesIssue: 1 });
  await tracker.close(1, 'merged');
  const config = { ...defaultConfig(), testCommand: 'test ! -e bad.txt' };
  const commit = git(root, 'rev-parse', 'main');
  const merge = { base: 'main', commit, pr: 2, issue: 1, title: '#1: bad', had_checks: false, since: new Date().toISOString() };
  return { root, paths, tracker, config, merge, ctx: { paths, config, tracker, base: 'main' } };
}

const reverts = (root: string) => git(root, 'log', '--format=%s', 'main').split('\n').filter((s) => s.startsWith('Revert'));

describe('post-merge guard', () => {
  it('never reverts one merge twice, even when the run that reverted it was killed before recording it', async () => {
    const { root, paths, tracker, merge, ctx } = await merged();
    const first = await guardAfterMerge(ctx, merge);
    expect(first).toMatchObject({ result: 'red', paused: false });
    expect(reverts(root)).toHaveLength(1);
    expect(fs.existsSync(path.join(root, 'bad.txt'))).toBe(false);

    // A kill between the revert and the state write: the state forgets, the history does not.
    const store = new BaseGuardStore(paths.baseGuard);
    store.update(() => ({ reverted: [], verifying: merge }));
    const second = await guardAfterMerge(ctx, merge);
    expect(second.result).toBe('red');
    expect(reverts(root)).toHaveLength(1);
    expect(store.read().reverted).toEqual([merge.commit]);
    // The issue was reopened and blocked once, with one comment.
    expect((await tracker.getIssue(1))?.labels).toEqual([Label.blocked]);
    expect((await tracker.listComments(1)).filter((c) => c.body.includes('went red'))).toHaveLength(1);
  });

  it('a merge left `verifying` by a killed merger is verified (and reverted) by the next merge attempt, which then goes on', async () => {
    const { root, paths, merge, ctx } = await merged();
    new BaseGuardStore(paths.baseGuard).update(() => ({ verifying: merge }));
    expect(await guardBeforeMerge(ctx)).toBeNull();
    expect(reverts(root)).toHaveLength(1);
    expect(new BaseGuardStore(paths.baseGuard).read()).toMatchObject({ verifying: null, paused: null, reverted: [merge.commit] });
  });

  it('a green base after the merge changes nothing and records the verdict', async () => {
    const { root, paths, merge, ctx } = await merged();
    const head = git(root, 'rev-parse', 'main');
    const verdict = await guardAfterMerge({ ...ctx, config: { ...ctx.config, testCommand: 'test -e bad.txt' } }, merge);
    expect(verdict).toEqual({ result: 'green', detail: '`test -e bad.txt` passes' });
    expect(git(root, 'rev-parse', 'main')).toBe(head);
    expect(new BaseGuardStore(paths.baseGuard).read()).toMatchObject({ verifying: null, paused: null, reverted: [], last: { result: 'green', commit: merge.commit } });
  });
});
