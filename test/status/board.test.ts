// The dashboard's board over a real local tracker: a lane carries at most 100 cards (urgent
// first) and says how many it has in all, so a large backlog does not make every update
// megabytes; the roles say what starts them.
import { afterEach, describe, expect, it } from 'vitest';
import { emptyState } from '../../src/core/daemon-state.js';
import { Label } from '../../src/core/labels.js';
import type { Progress } from '../../src/core/progress.js';
import { ProgressStore } from '../../src/process/progress-store.js';
import { FileStateStore } from '../../src/state/state-store.js';
import { BoardCollector } from '../../src/status/board.js';
import type { TestRepo } from '../helpers/loom-repo.js';
import { makeRepo } from '../helpers/loom-repo.js';

let repo: TestRepo | undefined;
afterEach(() => repo?.cleanup());

describe('board lanes', () => {
  it('carry the first 100 cards, urgent first, with the lane totals', async () => {
    repo = makeRepo({});
    const tracker = repo.tracker();
    for (let i = 1; i <= 130; i += 1) await tracker.createIssue({ title: `Ready ${i}`, labels: i === 120 ? [Label.issue, Label.urgent] : [Label.issue] });
    await tracker.createIssue({ title: 'Stuck', labels: [Label.blocked] });
    const board = await new BoardCollector(repo.paths).board();
    expect(board.lane_totals).toMatchObject({ ready: 130, blocked: 1, building: 0 });
    expect(board.lanes.ready).toHaveLength(100);
    expect(board.lanes.ready.map((c) => c.number).slice(0, 3)).toEqual([120, 1, 2]);
    expect(board.lanes.blocked.map((c) => c.title)).toEqual(['Stuck']);
    expect(board.gauges.issues_by_label[Label.issue]).toBe(130);
    expect(board.status.issues.ready).toBe(130);
  });

  it('reads a bounded part of a large backlog: the blocked and proposal lanes keep their first 100 cards with titles, the totals are the counts', async () => {
    repo = makeRepo({});
    const tracker = repo.tracker();
    for (let i = 1; i <= 130; i += 1) await tracker.createIssue({ title: `Stuck ${i}`, labels: [Label.blocked] });
    for (let i = 1; i <= 120; i += 1) await tracker.createIssue({ title: `Idea ${i}`, labels: [Label.architect] });
    for (let i = 1; i <= 3; i += 1) await tracker.createIssue({ title: `Ready ${i}`, labels: [Label.issue] });
    const board = await new BoardCollector(repo.paths).board();
    expect(board.lane_totals).toMatchObject({ ready: 3, blocked: 130, proposals: 120, building: 0 });
    expect(board.lanes.blocked).toHaveLength(100);
    expect(board.lanes.blocked.slice(0, 2).map((c) => c.title)).toEqual(['Stuck 1', 'Stuck 2']);
    expect(board.lanes.proposals).toHaveLength(100);
    expect(board.lanes.proposals[0]?.title).toBe('Idea 1');
    expect(board.gauges.issues_by_label).toMatchObject({ [Label.blocked]: 130, [Label.architect]: 120, [Label.issue]: 3 });
    expect(board.status.issues.blocked).toBe(130);
  });

  it('says what starts a generator role, and that nothing does when issueThreshold is 0', async () => {
    repo = makeRepo({ issueThreshold: 3, maxProposals: 5 });
    const trigger = async () => (await new BoardCollector(repo!.paths).board()).roles.find((r) => r.role === 'architect')?.trigger;
    expect(await trigger()).toBe('when fewer than 3 issues are ready and fewer than 5 proposals are open');
    repo.writeConfig({ issueThreshold: 0 });
    expect(await trigger()).toBe('never: issueThreshold is 0, so the backlog never counts as low');
  });

  it('shows a shepherd whose run ended before the daemon recorded it as finished, not as a vanished process', async () => {
    repo = makeRepo({ maxShepherds: 1 });
    const issue = await repo.tracker().createIssue({ title: 'Done already', labels: [Label.building] });
    const at = new Date().toISOString();
    const state = emptyState();
    // A pid no process has (above the kernel's pid_max), as after the shepherd exited.
    state.shepherds['shepherd-1'] = { status: 'working', issue: issue.number, task_id: 'task-1', pid: 4_194_305, pid_start: null, output_file: null, started: at, last_phase: 'merge', pr_number: null, idle_since: null, last_issue: null };
    new FileStateStore(repo.paths.state).save(state);
    const progress = new ProgressStore(repo.paths.progress);
    const record: Progress = { kind: 'shepherd', task_id: 'task-1', issue: issue.number, role: null, status: 'running', phase: 'merge', pid: 4_194_305, pid_start: null, launcher_pid: null, agent_pid: null, agent_pid_start: null, started: at, heartbeat: at, last_output: null, output_file: '/dev/null', message: null, exit_code: null, merged: false, pr_number: null };
    progress.write(progress.shepherdFile(issue.number), record);
    const shepherd = async () => (await new BoardCollector(repo!.paths).board()).shepherds.find((sh) => sh.issue === issue.number);
    expect(await shepherd()).toMatchObject({ alive: false, finished: null });
    progress.write(progress.shepherdFile(issue.number), { ...record, status: 'completed', message: 'merged PR #2', merged: true });
    expect(await shepherd()).toMatchObject({ alive: false, finished: 'completed' });
  });
});
