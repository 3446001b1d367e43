// The dashboard's board over a real local tracker: a lane carries at most 100 cards (urgent
// first) and says how many it has in all, so a large backlog does not make every update
// megabytes; the roles say what starts them.
import { afterEach, describe, expect, it } from 'vitest';
import { Label } from '../../src/core/labels.js';
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

  it('says what starts a generator role, and that nothing does when issueThreshold is 0', async () => {
    repo = makeRepo({ issueThreshold: 3, maxProposals: 5 });
    const trigger = async () => (await new BoardCollector(repo!.paths).board()).roles.find((r) => r.role === 'architect')?.trigger;
    expect(await trigger()).toBe('when fewer than 3 issues are ready and fewer than 5 proposals are open');
    repo.writeConfig({ issueThreshold: 0 });
    expect(await trigger()).toBe('never: issueThreshold is 0, so the backlog never counts as low');
  });
});
