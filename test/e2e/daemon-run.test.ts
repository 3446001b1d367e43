// The real daemon over a real repository: pool limit, single claims, status consistent with the
// tracker while it runs, and `loom stop` ending it cleanly.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Label } from '../../src/core/labels.js';
import { isProcessAlive } from '../../src/process/process-identity.js';
import type { TestRepo } from '../helpers/loom-repo.js';
import { journalBuilder, loom, makeRepo, readJournal, startDaemon, until } from '../helpers/loom-repo.js';

let repo: TestRepo | undefined;
afterEach(() => repo?.cleanup());

describe('loom start', () => {
  it('runs 10 issues with at most maxShepherds at once, each claimed once, and stops cleanly', async () => {
    const journal = path.join(fs.mkdtempSync('/tmp/loom-journal-'), 'journal');
    repo = makeRepo({ maxShepherds: 3, pollInterval: '1s', roles: { builder: { command: journalBuilder(journal, 0.6) } } });
    const tracker = repo.tracker();
    for (let i = 1; i <= 10; i += 1) await tracker.createIssue({ title: `Issue ${i}`, labels: [Label.issue] });

    const daemon = startDaemon(repo.root);
    // The daemon is a separate process: its first state write comes a moment after the spawn.
    await until(() => JSON.parse(loom(repo!.root, ['status', '--json']).stdout).daemon.status === 'running', 15_000, 'the daemon running');
    const observations: { active: number; slots: number[] }[] = [];
    // Watch while it runs: the status report against the tracker.
    await until(
      async () => {
        const r = loom(repo!.root, ['status', '--json']);
        expect(r.code, r.stderr).toBe(0);
        const status = JSON.parse(r.stdout);
        const slots: number[] = status.shepherds.slots.filter((s: { status: string }) => s.status === 'working').map((s: { issue: number }) => s.issue);
        observations.push({ active: status.shepherds.active, slots });
        expect(status.daemon.status).toBe('running');
        expect(status.shepherds.active).toBeLessThanOrEqual(3);
        expect(new Set(slots).size).toBe(slots.length);
        // Every issue the status shows as owned is claimed (or already finished) in the tracker.
        for (const n of slots) {
          const issue = await tracker.getIssue(n);
          expect(issue!.state === 'closed' || issue!.labels.includes(Label.building)).toBe(true);
        }
        const all = await tracker.listIssues({ state: 'all' });
        expect(all).toHaveLength(10);
        const closed = all.filter((i) => i.state === 'closed').length;
        return closed >= 4;
      },
      60_000,
      'four issues closed',
    );
    expect(observations.some((o) => o.active > 0)).toBe(true);

    const stop = loom(repo.root, ['stop']);
    expect(stop.code).toBe(0);
    expect(await daemon.exited(60_000)).toBe(0);

    const issues = await tracker.listIssues({ state: 'all' });
    expect(issues.filter((i) => i.labels.includes(Label.building))).toEqual([]);
    for (const issue of issues) expect(issue.state === 'closed' || issue.labels.includes(Label.issue)).toBe(true);
    // Each issue was claimed at most once (no issue was stopped mid-build: the grace let them finish).
    for (const issue of issues) {
      const claims = (await tracker.listEvents(issue.number)).filter((e) => e.type === 'labeled' && e.label === Label.building);
      // A second claim means an attempt failed and was retried: say why, from the issue's comments and the daemon's output.
      const why = claims.length > 1 ? `\n${(await tracker.listComments(issue.number)).map((c) => c.body).join('\n---\n')}\n${daemon.output().split('\n').slice(-60).join('\n')}` : '';
      expect(claims.length, `claims of #${issue.number}${why}`).toBe(issue.state === 'closed' ? 1 : 0);
    }
    const j = readJournal(journal);
    expect(j.peak).toBeLessThanOrEqual(3);
    expect(j.peak).toBeGreaterThan(1);
    expect(j.overlapping).toEqual([]);
    for (const issue of issues.filter((i) => i.state === 'closed')) {
      expect(j.starts.get(issue.number)).toBe(1);
      expect(j.ends.get(issue.number)).toBe(1);
    }

    const state = JSON.parse(fs.readFileSync(repo.paths.state, 'utf8'));
    expect(state.running).toBe(false);
    expect(Object.values(state.shepherds).filter((s) => (s as { status: string }).status === 'working')).toEqual([]);
    expect(state.completed_issues.sort((a: number, b: number) => a - b)).toEqual(issues.filter((i) => i.state === 'closed').map((i) => i.number));
    expect(fs.existsSync(repo.paths.stopSignal)).toBe(false);
    expect(fs.existsSync(repo.paths.lock)).toBe(false);
    expect(fs.readdirSync(repo.paths.progress)).toEqual([]);
    for (const pid of Object.values(state.shepherds).map((s) => (s as { pid: number | null }).pid)) expect(isProcessAlive(pid)).toBe(false);
    const status = JSON.parse(loom(repo.root, ['status', '--json']).stdout);
    expect(status.daemon.status).toBe('stopped');
    expect(status.issues.building).toBe(0);
    expect(daemon.output()).toMatch(/Iteration 1: ready=10 building=0 shepherds=3\/3 \+shepherd=#1 \+shepherd=#2 \+shepherd=#3/);
  });

  it('picks up a new ready issue in well under the poll interval when a slot is free', async () => {
    repo = makeRepo({ maxShepherds: 1, pollInterval: '30s', roles: { builder: { command: 'true' } } });
    const daemon = startDaemon(repo.root);
    await until(() => /Iteration 1:/.test(daemon.output()), 20_000, 'first iteration');
    const tracker = repo.tracker();
    const created = Date.now();
    const created_ = loom(repo.root, ['issue', 'create', 'late arrival', '--label', Label.issue, '--json']);
    const issue = JSON.parse(created_.stdout) as { number: number };
    await until(async () => (await tracker.listEvents(issue.number)).some((e) => e.label === Label.building), 10_000, 'claimed');
    // The poll interval is 30 s; the wake file brought the claim forward.
    expect(Date.now() - created).toBeLessThan(15_000);
    loom(repo.root, ['stop']);
    expect(await daemon.exited(30_000)).toBe(0);
  });

  it('counts the merges the Champion makes (not force mode) in the state file, loom status and the daemon\'s last line', async () => {
    const fence = '```';
    const off = { enabled: false };
    repo = makeRepo({ runtime: 'script', pollInterval: '1s', heartbeatInterval: '0.2s', issueThreshold: 0, roles: { architect: off, hermit: off, guide: off, curator: off, champion: { interval: '1s' } } });
    const tracker = repo.tracker();
    for (const name of ['a', 'b']) await tracker.createIssue({ title: `add ${name}`, body: `${fence}loom-script builder\nwrite ${name}.txt <<EOF\n${name}\nEOF\n${fence}`, labels: [Label.issue] });
    const daemon = startDaemon(repo.root);
    const merged = async () => (await tracker.listPullRequests({ state: 'merged' })).length;
    await until(async () => (await merged()) === 2, 60_000, 'the Champion merged both PRs');
    // Shepherds left both approved PRs to the Champion: none of them merged one.
    await until(() => JSON.parse(loom(repo!.root, ['status', '--json']).stdout).session.prs_merged === 2, 30_000, 'status counts both merges');
    loom(repo.root, ['stop']);
    expect(await daemon.exited(30_000)).toBe(0);
    expect(JSON.parse(fs.readFileSync(repo.paths.state, 'utf8')).total_prs_merged).toBe(2);
    expect(loom(repo.root, ['status']).stdout).toMatch(/PRs merged: 2\n/);
    expect(daemon.output()).toMatch(/Loom daemon stopped \(2 issues completed, 2 PRs merged\)/);
  });
});
