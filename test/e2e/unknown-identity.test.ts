// Records written by an older Loom carry pids without their start identity (no `pid_start` /
// `agent_pid_start` key at all). Such a pid may belong to anyone by now: it is never signalled,
// only reported.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Label } from '../../src/core/labels.js';
import { processStart } from '../../src/process/process-identity.js';
import type { TestRepo } from '../helpers/loom-repo.js';
import { loom, makeRepo, until } from '../helpers/loom-repo.js';
import { groupHasLiveMembers } from '../runtimes/process-group.js';
import { killGroups } from '../helpers/child-process.js';

let repo: TestRepo | undefined;
const groups: number[] = [];
afterEach(() => {
  killGroups(groups);
  repo?.cleanup();
});

describe('a pid recorded without its start identity key', () => {
  it('an unrelated process holding the pid of an older record’s shepherd and agent is never signalled; the issue is recovered and a warning says why', async () => {
    repo = makeRepo({ runtime: 'script', roles: { architect: { enabled: false }, hermit: { enabled: false }, guide: { enabled: false }, curator: { enabled: false } } });
    const tracker = repo.tracker();
    await tracker.createIssue({ title: 'was being built', labels: [Label.building] });
    const stranger = spawn('sleep', ['600'], { detached: true, stdio: 'ignore' });
    groups.push(stranger.pid!);
    await until(() => processStart(stranger.pid!) !== null, 5_000, 'the process to start');
    const pid = stranger.pid!;
    const long = new Date(Date.now() - 3_600_000).toISOString();
    // An older Loom's daemon died while #1's shepherd ran; its records name pids only.
    fs.writeFileSync(
      repo.paths.state,
      JSON.stringify({
        started_at: long,
        running: true,
        iteration: 3,
        force_mode: false,
        daemon_session_id: 'older',
        shepherds: { 'shepherd-1': { status: 'working', issue: 1, task_id: 'older0task01', pid, output_file: null, started: long, last_phase: 'builder', pr_number: null } },
        support_roles: {},
        warnings: [],
        completed_issues: [],
        total_prs_merged: 0,
      }),
    );
    fs.writeFileSync(
      path.join(repo.paths.progress, 'shepherd-1.json'),
      JSON.stringify({ kind: 'shepherd', task_id: 'older0task01', issue: 1, role: null, status: 'running', phase: 'builder', pid, launcher_pid: pid, agent_pid: pid, started: long, heartbeat: long, output_file: '(terminal)' }),
    );

    const r = loom(repo.root, ['iterate']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(groupHasLiveMembers(pid)).toBe(true);
    const warnings = fs
      .readFileSync(repo.paths.events, 'utf8')
      .split('\n')
      .filter((l) => l.includes('"warning"'))
      .join('\n');
    expect(warnings).toMatch(new RegExp(`pid ${pid} is not provably Loom's \\(its start identity is unknown\\); not signalled`));
    expect((await tracker.getIssue(1))!.labels).toEqual([Label.issue]);
  });
});
