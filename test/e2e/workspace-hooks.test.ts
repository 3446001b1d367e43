// Workspace hooks around a real shepherd in a real repository: the order they run in, and a
// failing afterCreate failing the attempt; and around the worktrees the Judge, Doctor and
// Champion create, work in and remove.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Label } from '../../src/core/labels.js';
import type { TestRepo } from '../helpers/loom-repo.js';
import { loom, loomAsync, makeRepo, until } from '../helpers/loom-repo.js';
import { ShepherdExit } from '../../src/shepherd/shepherd-exit.js';

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

  it('around a shepherd that builds, judges and merges: the judge round too, and beforeRemove at the merge', async () => {
    const journal = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'loom-hooks-')), 'journal');
    const line = (name: string) => `echo "${name} \${LOOM_ROLE:-} $(basename "$PWD")" >> '${journal}'`;
    repo = makeRepo({ runtime: 'script', hooks: Object.fromEntries(['afterCreate', 'beforeRun', 'afterRun', 'beforeRemove'].map((h) => [h, line(h)])) });
    const tracker = repo.tracker();
    await tracker.createIssue({ title: 'merged', labels: [Label.issue], body: '```loom-script builder\nwrite a.txt <<EOF\na\nEOF\n```' });
    const r = loom(repo.root, ['shepherd', '1', '--force-merge']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect((await tracker.listPullRequests({ state: 'merged' })).length).toBe(1);
    expect(fs.readFileSync(journal, 'utf8').trim().split('\n')).toEqual(['afterCreate  issue-1', 'beforeRun builder issue-1', 'afterRun builder issue-1', 'beforeRun judge issue-1', 'afterRun judge issue-1', 'beforeRemove  issue-1']);
  });

  it('beforeRemove runs when a person closes or blocks the issue while its shepherd builds', async () => {
    const journal = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'loom-hooks-')), 'journal');
    repo = makeRepo({ runtime: 'script', heartbeatInterval: '0.3s', hooks: { beforeRun: journalHook(journal, 'beforeRun'), beforeRemove: journalHook(journal, 'beforeRemove') } });
    const tracker = repo.tracker();
    const slow = '```loom-script builder\nwrite a.txt <<EOF\na\nEOF\nsleep 60\n```';
    const closed = await tracker.createIssue({ title: 'closed by a person', labels: [Label.issue], body: slow });
    const blocked = await tracker.createIssue({ title: 'blocked by a person', labels: [Label.issue], body: slow });
    const runs = [closed, blocked].map((i) => loomAsync(repo!.root, ['shepherd', String(i.number)]));
    const lines = () => (fs.existsSync(journal) ? fs.readFileSync(journal, 'utf8').trim().split('\n') : []);
    await until(() => lines().filter((l) => l.startsWith('beforeRun')).length === 2, 30_000, 'both builders running');
    await tracker.close(closed.number);
    await tracker.updateLabels(blocked.number, { add: [Label.blocked], remove: [Label.building] });
    for (const run of runs) expect((await run).code).toBe(ShepherdExit.withdrawn);
    for (const issue of [closed, blocked]) expect(fs.existsSync(path.join(repo.paths.worktrees, `issue-${issue.number}`))).toBe(false);
    expect(lines().filter((l) => l.startsWith('beforeRemove')).sort()).toEqual([`beforeRemove ${closed.number} issue-${closed.number}`, `beforeRemove ${blocked.number} issue-${blocked.number}`]);
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
    expect(comments).toMatch(/exited without finishing: hooks\.afterCreate failed: exit 4: no lock file \(attempt 1 of 1\)/);
    expect(comments + fs.readdirSync(repo.paths.logs).map((f) => fs.readFileSync(path.join(repo!.paths.logs, f), 'utf8')).join('\n')).toMatch(/hooks\.afterCreate failed: exit 4: no lock file/);
  });

  it('a beforeRun that times out is killed with what it started, and the blocked comment, the warning and the event say which hook failed', async () => {
    const marker = `loom-hook-child-${process.pid}-${Date.now()}`;
    repo = makeRepo({ spawnFailureLimit: 1, hooks: { timeout: '1s', beforeRun: `(sleep 300; echo ${marker}) & sleep 300` }, roles: { builder: { command: 'echo "NO CHANGES NEEDED: x"' } } });
    const tracker = repo.tracker();
    await tracker.createIssue({ title: 'slow setup', labels: [Label.issue] });
    loom(repo.root, ['iterate']);
    await until(async () => ((await tracker.getIssue(1))!.labels.includes(Label.blocked) ? true : (loom(repo!.root, ['iterate']), false)), 30_000, 'the issue blocked');
    const comments = (await tracker.listComments(1)).map((c) => c.body).join('\n');
    expect(comments).toMatch(/exited without finishing: hooks\.beforeRun failed: timed out after 1000 ms \(attempt 1 of 1\)/);
    const state = JSON.parse(fs.readFileSync(repo.paths.state, 'utf8'));
    expect(state.warnings.map((w: { message: string }) => w.message).join('\n')).toMatch(/shepherd for #1 exited without finishing: hooks\.beforeRun failed: timed out/);
    expect(loom(repo.root, ['events', '--issue', '1']).stdout).toMatch(/#1 blocked — its shepherd failed 1 time\(s\); the last time: shepherd exited without finishing: hooks\.beforeRun failed: timed out after 1000 ms/);
    // Nothing the hook started is left running.
    const ps = spawnSync('ps', ['-eo', 'args'], { encoding: 'utf8' }).stdout;
    expect(ps).not.toContain(marker);
  });

  it('run in the worktrees the support roles create, work in and remove: Judge, Doctor, Champion', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'loom-hooks-'));
    const journal = path.join(dir, 'journal');
    const flag = path.join(dir, 'killed-once');
    const line = (name: string) => `echo "${name} $LOOM_ISSUE \${LOOM_ROLE:-} $(basename "$PWD")" >> '${journal}'`;
    const hooks = Object.fromEntries(['afterCreate', 'beforeRun', 'afterRun', 'beforeRemove'].map((h) => [h, line(h)]));
    repo = makeRepo({ runtime: 'script', hooks });
    const tracker = repo.tracker();
    const fence = '```';
    // The shepherd's judge dies once: the issue is blocked with its PR waiting for review, and no worktree.
    const judge = `run test -f ${flag} || (touch ${flag} && kill -9 $PPID)\nsay VERDICT: APPROVE`;
    await tracker.createIssue({ title: 'judged later', labels: [Label.issue], body: `${fence}loom-script builder\nwrite b.txt <<EOF\nb\nEOF\n${fence}\n\n${fence}loom-script judge\n${judge}\n${fence}` });
    expect(loom(repo.root, ['shepherd', '1', '--force-merge']).code).toBe(5);
    expect(fs.existsSync(path.join(repo.paths.worktrees, 'issue-1'))).toBe(false);
    await tracker.updateLabels(1, { remove: [Label.blocked] });
    const seen = fs.readFileSync(journal, 'utf8').trim().split('\n').length;
    const since = () => fs.readFileSync(journal, 'utf8').trim().split('\n').slice(seen);

    const judged = loom(repo.root, ['role', 'judge']);
    expect(judged.stdout, judged.stderr).toMatch(/judged #2 approve/);
    expect(since()).toEqual(['afterCreate 1  issue-1', 'beforeRun 1 judge issue-1', 'afterRun 1 judge issue-1']);

    await tracker.updateLabels(2, { add: [Label.changesRequested] });
    const doctor = loom(repo.root, ['role', 'doctor']);
    expect(doctor.stdout, doctor.stderr).toMatch(/updated #2/);
    expect(since().slice(3)).toEqual(['beforeRun 1 doctor issue-1', 'afterRun 1 doctor issue-1']);

    await tracker.updateLabels(2, { add: [Label.pr] });
    const champion = loom(repo.root, ['role', 'champion']);
    expect(champion.stdout, champion.stderr).toMatch(/merged #2/);
    expect(since().slice(5)).toEqual(['beforeRemove 1  issue-1']);
    expect(fs.existsSync(path.join(repo.paths.worktrees, 'issue-1'))).toBe(false);
  });
});
