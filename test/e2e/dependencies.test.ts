// Dependencies between issues with the real daemon over a real repository: a chain builds in
// order, a cycle is reported once and never built, and `loom why` / `loom status` say so.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Label } from '../../src/core/labels.js';
import type { TestRepo } from '../helpers/loom-repo.js';
import { journalBuilder, loom, makeRepo, startDaemon, until } from '../helpers/loom-repo.js';

let repo: TestRepo | undefined;
afterEach(() => repo?.cleanup());

describe('dependencies', () => {
  it('a chain of three dependent issues builds in order; a cycle is reported once and not built', async () => {
    const journal = path.join(fs.mkdtempSync('/tmp/loom-journal-'), 'journal');
    repo = makeRepo({ maxShepherds: 3, pollInterval: '0.5s', roles: { builder: { command: journalBuilder(journal, 0.3) } } });
    const tracker = repo.tracker();
    // Oldest first would build #1 first: its dependencies must hold it back.
    await tracker.createIssue({ title: 'top', body: 'Depends on #2', labels: [Label.issue] });
    await tracker.createIssue({ title: 'middle', body: 'Some context.\n\nBlocked by #3', labels: [Label.issue] });
    await tracker.createIssue({ title: 'base', body: 'No dependencies.', labels: [Label.issue] });
    await tracker.createIssue({ title: 'cycle a', body: 'Depends on #5', labels: [Label.issue] });
    await tracker.createIssue({ title: 'cycle b', body: 'Depends on #4', labels: [Label.issue] });

    // Before any daemon: why and status name the gate.
    const why = loom(repo.root, ['why', '1']);
    expect(why.stdout).toMatch(/✗ dependencies done\s+waits on #2 \(open\)/);
    const whyCycle = loom(repo.root, ['why', '4']);
    expect(whyCycle.stdout).toMatch(/✗ dependencies done\s+waits on #5: a cycle \(#4, #5\)/);
    const before = JSON.parse(loom(repo.root, ['status', '--json']).stdout);
    expect(before.issues.waiting_on_dependencies).toBe(4);
    expect(loom(repo.root, ['status']).stdout).toMatch(/Ready issues \(loom:issue\): 5, 4 waiting on dependencies/);

    const daemon = startDaemon(repo.root);
    await until(async () => (await tracker.getIssue(1))!.state === 'closed', 60_000, 'the chain built');
    const stop = loom(repo.root, ['stop']);
    expect(stop.code).toBe(0);
    expect(await daemon.exited(60_000)).toBe(0);

    const lines = fs.readFileSync(journal, 'utf8').trim().split('\n');
    expect(lines).toEqual(['start 3', 'end 3', 'start 2', 'end 2', 'start 1', 'end 1']);
    // The cycle: one comment on its smallest issue, one warning, never claimed.
    const comments = (await tracker.listComments(4)).map((c) => c.body);
    expect(comments.filter((b) => /form a cycle/.test(b))).toEqual([expect.stringMatching(/#4, #5 form a cycle/)]);
    expect(await tracker.listComments(5)).toEqual([]);
    const state = JSON.parse(fs.readFileSync(repo.paths.state, 'utf8'));
    expect(state.warnings.filter((w: { message: string }) => /dependency cycle: #4, #5/.test(w.message))).toHaveLength(1);
    for (const n of [4, 5]) {
      const issue = await tracker.getIssue(n);
      expect(issue!.labels).toEqual([Label.issue]);
      expect((await tracker.listEvents(n)).filter((e) => e.label === Label.building)).toEqual([]);
    }
    const after = JSON.parse(loom(repo.root, ['status', '--json']).stdout);
    expect(after.issues.waiting_on_dependencies).toBe(2);
  });

  it('a ready issue behind more waiting ones than one snapshot page holds is still built next', async () => {
    repo = makeRepo({ maxShepherds: 1, roles: { builder: { command: 'echo "NO CHANGES NEEDED: nothing to do"' } } });
    const tracker = repo.tracker();
    await tracker.createIssue({ title: 'not approved yet' });
    // Older than the one issue that may start: 60 waiting on #1 and 40 held for a human, more
    // than the iteration's first page of ready issues.
    for (let i = 0; i < 60; i++) await tracker.createIssue({ title: `waits ${i}`, body: 'Depends on #1', labels: [Label.issue] });
    for (let i = 0; i < 40; i++) await tracker.createIssue({ title: `held ${i}`, labels: [Label.issue, 'loom:operator'] });
    const free = await tracker.createIssue({ title: 'free to build', labels: [Label.issue] });
    const run = loom(repo.root, ['iterate']);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(new RegExp(`\\+shepherd=#${free.number}\\b`));
    expect(run.stdout).toMatch(/^ready=101 /);
    await until(async () => (await tracker.getIssue(free.number))!.state === 'closed', 60_000, 'the free issue done');
  });

  it("the Architect's proposals may declare dependencies: the line reaches the issue and holds it back once approved", async () => {
    const proposal = ['PROPOSAL: Build on the base work', '## Proposal', 'Extend what #1 adds.', '', 'Depends on #1', 'END PROPOSAL'].join('\n');
    repo = makeRepo({ roles: { architect: { command: `printf '%s\\n' '${proposal.replace(/\n/g, "' '")}'` } } });
    const tracker = repo.tracker();
    await tracker.createIssue({ title: 'base work', labels: [Label.issue] });
    const run = loom(repo.root, ['role', 'architect']);
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(run.stdout).toMatch(/proposed #2/);
    const proposed = await tracker.getIssue(2);
    expect(proposed).toMatchObject({ title: 'Build on the base work', labels: [Label.architect] });
    expect(proposed!.body).toMatch(/^Depends on #1$/m);
    expect(loom(repo.root, ['issue', 'label', '2', Label.issue]).code).toBe(0);
    expect(loom(repo.root, ['why', '2']).stdout).toMatch(/✗ dependencies done\s+waits on #1 \(open\)/);
  });

  it('a dependency closed as not planned (`loom issue close N --not-planned`) is reported once and no longer waited for', async () => {
    repo = makeRepo({ roles: { builder: { command: 'echo "NO CHANGES NEEDED: nothing to do"' } } });
    const tracker = repo.tracker();
    await tracker.createIssue({ title: 'hopeful', body: 'Depends on #2', labels: [Label.issue] });
    await tracker.createIssue({ title: 'dropped' });
    const close = loom(repo.root, ['issue', 'close', '2', '--not-planned']);
    expect(close.stdout, close.stderr).toMatch(/Closed #2 as not planned\./);
    expect((await tracker.getIssue(2))!.closedAs).toBe('not-planned');
    expect(loom(repo.root, ['why', '1']).stdout).toMatch(/✓ dependencies done\s+#2 closed as not planned \(not waited for\)$/m);
    const first = loom(repo.root, ['iterate']);
    expect(first.stdout, first.stderr).toMatch(/dependency-not-planned=#1.*\+shepherd=#1|\+shepherd=#1.*dependency-not-planned=#1/);
    loom(repo.root, ['iterate']);
    const comments = (await tracker.listComments(1)).map((c) => c.body).filter((b) => /not planned/.test(b));
    expect(comments).toEqual([expect.stringMatching(/depends on #2, closed without being done \(not planned\)/)]);
    await until(async () => (await tracker.getIssue(1))!.state === 'closed', 30_000, 'the issue built all the same');
  });

  it('a bare `Depends on:` line with a list under it holds the issue back; a code block does not; a number that does not exist is named as such', async () => {
    repo = makeRepo({ maxShepherds: 3, roles: { builder: { command: 'echo "NO CHANGES NEEDED: nothing to do"' } } });
    const tracker = repo.tracker();
    await tracker.createIssue({ title: 'first', labels: ['loom:operator'] });
    await tracker.createIssue({ title: 'second', labels: ['loom:operator'] });
    const listed = await tracker.createIssue({ title: 'listed', body: 'Needs both.\n\nDepends on:\n- #1\n- [ ] #2 (the parser)\n', labels: [Label.issue] });
    const quoted = await tracker.createIssue({ title: 'quoted', body: 'The template says:\n\n```\nDepends on #1\n```\n', labels: [Label.issue] });
    const missing = await tracker.createIssue({ title: 'missing', body: 'Depends on #1, #99', labels: [Label.issue] });

    expect(loom(repo.root, ['why', String(listed.number)]).stdout).toMatch(/✗ dependencies done\s+waits on #1, #2 \(open\); it is built once those are closed$/m);
    expect(loom(repo.root, ['why', String(quoted.number)]).stdout).not.toMatch(/dependencies done/);
    expect(loom(repo.root, ['why', String(missing.number)]).stdout).toMatch(/✗ dependencies done\s+waits on #1 \(open\); it is built once that is closed; #99 does not exist \(not waited for\)$/m);
    const run = loom(repo.root, ['iterate']);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(new RegExp(`\\+shepherd=#${quoted.number}\\b`));
    expect(run.stdout).not.toMatch(new RegExp(`\\+shepherd=#(${listed.number}|${missing.number})\\b`));
    expect(JSON.parse(loom(repo.root, ['status', '--json']).stdout).issues.waiting_on_dependencies).toBe(2);

    await tracker.close(1);
    expect(loom(repo.root, ['why', String(missing.number)]).stdout).toMatch(/✓ dependencies done\s+#1 closed; #99 does not exist \(not waited for\)$/m);
    expect(loom(repo.root, ['why', String(listed.number)]).stdout).toMatch(/✗ dependencies done\s+waits on #2 \(open\)/);
  });

  it('a dependency on a pull request waits until it is merged, and is never reported as missing', async () => {
    repo = makeRepo({ roles: { builder: { command: 'echo "NO CHANGES NEEDED: nothing to do"' } } });
    const tracker = repo.tracker();
    await tracker.createIssue({ title: 'the work', labels: ['loom:operator'] });
    const pr = await tracker.createPullRequest({ title: 'the change', head: 'feature', base: 'main' });
    const dependent = await tracker.createIssue({ title: 'after the PR', body: `Depends on #${pr.number}`, labels: [Label.issue] });

    expect(loom(repo.root, ['why', String(dependent.number)]).stdout).toMatch(new RegExp(`✗ dependencies done\\s+waits on PR #${pr.number} \\(open\\); it is built once that is merged$`, 'm'));
    const held = loom(repo.root, ['iterate']);
    expect(held.code, held.stderr).toBe(0);
    expect(held.stdout).not.toMatch(/\+shepherd|dependency-missing/);
    expect(await tracker.listComments(dependent.number)).toEqual([]);

    await tracker.markMerged(pr.number);
    expect(loom(repo.root, ['why', String(dependent.number)]).stdout).toMatch(new RegExp(`✓ dependencies done\\s+PR #${pr.number} merged$`, 'm'));
    const run = loom(repo.root, ['iterate']);
    expect(run.stdout, run.stderr).toMatch(new RegExp(`\\+shepherd=#${dependent.number}\\b`));
    expect(run.stdout).not.toMatch(/dependency-missing/);
  });
});
