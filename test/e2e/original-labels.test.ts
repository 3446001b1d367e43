// The original Loom's labels on a real repository with the built `loom`: a held PR is not merged
// by the Champion, held issues are not built by an iteration or `loom spawn`, and the Doctor
// takes a PR the original marked `loom:merge-conflict`.
import { spawnSync } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { Label } from '../../src/core/labels.js';
import type { TestRepo } from '../helpers/loom-repo.js';
import { loom, makeRepo } from '../helpers/loom-repo.js';

let repo: TestRepo | undefined;
afterEach(() => repo?.cleanup());

const fence = '```';
const script = (role: string, body: string) => `${fence}loom-script ${role}\n${body}\n${fence}`;
const git = (cwd: string, ...args: string[]) => spawnSync('git', args, { cwd, encoding: 'utf8' });

describe('labels of the original Loom', () => {
  it('the Champion leaves a PR held with loom:operator (on the PR or its issue) unmerged, and merges it once the hold is gone', async () => {
    repo = makeRepo({ runtime: 'script', heartbeatInterval: '0.2s' });
    const tracker = repo.tracker();
    await tracker.createIssue({ title: 'held change', body: script('builder', 'write held.txt <<EOF\nheld\nEOF'), labels: [Label.issue] });
    expect(loom(repo.root, ['shepherd', '1']).code).toBe(0);
    expect((await tracker.getPullRequest(2))!.labels).toEqual([Label.pr]);

    await tracker.updateLabels(2, { add: ['loom:operator'] });
    let champion = loom(repo.root, ['role', 'champion']);
    expect(champion.code, champion.stdout + champion.stderr).toBe(0);
    expect(champion.stdout).toMatch(/merged nothing/);
    expect((await tracker.getPullRequest(2))!.state).toBe('open');

    await tracker.updateLabels(2, { remove: ['loom:operator'] });
    await tracker.updateLabels(1, { add: ['loom:operator-only'] });
    champion = loom(repo.root, ['role', 'champion']);
    expect(champion.stdout).toMatch(/merged nothing/);
    expect((await tracker.getPullRequest(2))!.state).toBe('open');

    await tracker.updateLabels(1, { remove: ['loom:operator-only'] });
    champion = loom(repo.root, ['role', 'champion']);
    expect(champion.stdout).toMatch(/merged #2/);
    expect((await tracker.getPullRequest(2))!.state).toBe('merged');
  });

  it('an iteration does not build issues marked loom:operator-only or loom:needs-capability; `loom spawn` refuses them in one line', async () => {
    repo = makeRepo({ runtime: 'script', heartbeatInterval: '0.2s' });
    const tracker = repo.tracker();
    await tracker.createIssue({ title: 'operator only', labels: [Label.issue, 'loom:operator-only'] });
    await tracker.createIssue({ title: 'needs a tool', labels: [Label.issue, 'loom:needs-capability'] });
    const r = loom(repo.root, ['iterate']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).not.toMatch(/\+shepherd/);
    expect((await tracker.getIssue(1))!.labels).toEqual([Label.issue, 'loom:operator-only']);
    expect((await tracker.getIssue(2))!.labels).toEqual([Label.issue, 'loom:needs-capability']);

    const spawn = loom(repo.root, ['spawn', '1']);
    expect(spawn.code).toBe(2);
    expect(spawn.stderr.trim().split('\n')).toHaveLength(1);
    expect(spawn.stderr).toMatch(/loom:operator-only/);
    const why = loom(repo.root, ['why', '2']);
    expect(why.stdout).toMatch(/✗ not held .*loom:needs-capability/);
  });

  it('the Doctor takes a PR the original marked loom:merge-conflict and sends it back to review without that label', async () => {
    repo = makeRepo({ runtime: 'script', heartbeatInterval: '0.2s' });
    const tracker = repo.tracker();
    await tracker.createIssue({ title: 'conflicted', body: script('builder', 'write a.txt <<EOF\na\nEOF') + '\n' + script('doctor', 'write b.txt <<EOF\nb\nEOF'), labels: [Label.issue] });
    expect(loom(repo.root, ['shepherd', '1']).code).toBe(0);
    // As the original left it: its Champion found a conflict.
    await tracker.updateLabels(2, { remove: [Label.pr], add: ['loom:merge-conflict'] });
    const doctor = loom(repo.root, ['role', 'doctor']);
    expect(doctor.code, doctor.stdout + doctor.stderr).toBe(0);
    expect(doctor.stdout).toMatch(/updated #2/);
    expect((await tracker.getPullRequest(2))!.labels).toEqual([Label.reviewRequested]);
    expect(git(repo.root, 'log', '--format=%s', 'loom/issue-1').stdout).toMatch(/doctor round 1/);
  });
});
