// Workspace hooks around a real shepherd in a real repository: the order they run in, and a
// failing afterCreate failing the attempt.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Label } from '../../src/core/labels.js';
import type { TestRepo } from '../helpers/loom-repo.js';
import { loom, makeRepo, until } from '../helpers/loom-repo.js';

let repo: TestRepo | undefined;
afterEach(() => repo?.cleanup());

const journalHook = (journal: string, name: string) => `echo "${name} $LOOM_ISSUE $(basename "$PWD")" >> '${journal}'`;

describe('workspace hooks', () => {
  it('run in order in the worktree: afterCreate, beforeRun, afterRun, beforeRemove', async () => {
    const journal = path.join(fs.mkdtempSync('/tmp/loom-hooks-'), 'journal');
    const hooks = Object.fromEntries(['afterCreate', 'beforeRun', 'afterRun', 'beforeRemove'].map((h) => [h, journalHook(journal, h)]));
    repo = makeRepo({ hooks, roles: { builder: { command: `echo "builder $LOOM_ISSUE" >> '${journal}'; echo "NO CHANGES NEEDED: nothing to do"` } } });
    const tracker = repo.tracker();
    await tracker.createIssue({ title: 'hooked', labels: [Label.issue] });
    const r = loom(repo.root, ['iterate']);
    expect(r.stdout, r.stderr).toMatch(/\+shepherd=#1/);
    await until(async () => (await tracker.getIssue(1))!.state === 'closed', 30_000, 'the issue closed');
    // The worktree is removed right after the close.
    await until(() => !fs.existsSync(path.join(repo!.paths.worktrees, 'issue-1')), 30_000, 'the worktree removed');
    expect(fs.readFileSync(journal, 'utf8').trim().split('\n')).toEqual(['afterCreate 1 issue-1', 'beforeRun 1 issue-1', 'builder 1', 'afterRun 1 issue-1', 'beforeRemove 1 issue-1']);
  });

  it('a failing afterCreate fails the attempt before any agent runs, and leaves no worktree', async () => {
    const journal = path.join(fs.mkdtempSync('/tmp/loom-hooks-'), 'journal');
    repo = makeRepo({ spawnFailureLimit: 1, hooks: { afterCreate: 'echo "no lock file"; exit 4' }, roles: { builder: { command: `echo "builder $LOOM_ISSUE" >> '${journal}'; echo "NO CHANGES NEEDED: x"` } } });
    const tracker = repo.tracker();
    await tracker.createIssue({ title: 'setup fails', labels: [Label.issue] });
    loom(repo.root, ['iterate']);
    await until(async () => !(await tracker.getIssue(1))!.labels.includes(Label.building) && fs.readdirSync(repo!.paths.progress).length === 0 ? true : (loom(repo!.root, ['iterate']), false), 30_000, 'the attempt over');
    expect(fs.existsSync(journal)).toBe(false);
    expect(fs.existsSync(path.join(repo.paths.worktrees, 'issue-1'))).toBe(false);
    const issue = await tracker.getIssue(1);
    const comments = (await tracker.listComments(1)).map((c) => c.body).join('\n');
    // A failed attempt like any other: counted, retried with backoff, blocked at spawnFailureLimit (1 here).
    expect(issue!.labels).toEqual([Label.blocked]);
    expect(comments).toMatch(/exited without finishing \(attempt 1 of 1\)/);
    expect(comments + fs.readdirSync(repo.paths.logs).map((f) => fs.readFileSync(path.join(repo!.paths.logs, f), 'utf8')).join('\n')).toMatch(/hooks\.afterCreate failed: exit 4: no lock file/);
  });
});
