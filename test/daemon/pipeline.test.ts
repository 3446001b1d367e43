// The state file's pipeline: counts of every label, and bounded lists of the lowest numbers, so
// the file written on every iteration does not grow with the backlog.
import { describe, expect, it } from 'vitest';
import { PIPELINE_LIST_LIMIT } from '../../src/core/daemon-state.js';
import { Label } from '../../src/core/labels.js';
import type { Issue, PullRequest } from '../../src/core/tracker-model.js';
import { pipeline } from '../../src/daemon/observe.js';

const T = '2026-01-23T10:00:00Z';
const issue = (number: number, labels: string[]): Issue => ({ number, title: `#${number}`, body: '', state: 'open', labels, author: 'a', createdAt: T, updatedAt: T });
const pr = (number: number, labels: string[]): PullRequest => ({ number, title: `PR ${number}`, body: '', state: 'open', labels, head: `loom/issue-${number}`, base: 'main', closesIssue: null, createdAt: T, updatedAt: T });

describe('pipeline', () => {
  it('counts every issue per label but lists only the lowest numbers', () => {
    const issues = [...Array.from({ length: 5000 }, (_, i) => issue(5000 - i, [Label.issue])), ...Array.from({ length: 30 }, (_, i) => issue(6000 + i, [Label.blocked]))];
    const p = pipeline({ issues, pullRequests: [pr(7000, [Label.pr])] }, T);
    expect(p.counts).toEqual({ ready: 5000, building: 0, blocked: 30, review_requested: 0, changes_requested: 0, ready_to_merge: 1, proposals: 0 });
    expect(p.ready).toEqual(Array.from({ length: PIPELINE_LIST_LIMIT }, (_, i) => i + 1));
    expect(p.blocked).toHaveLength(30);
    expect(p.ready_to_merge).toEqual([7000]);
  });

  it('is the same size for 1,000 and 100,000 ready issues', () => {
    const size = (n: number) => JSON.stringify(pipeline({ issues: Array.from({ length: n }, (_, i) => issue(i + 1, [Label.issue])), pullRequests: [] }, T)).length;
    expect(size(100_000) - size(1_000)).toBeLessThanOrEqual(3); // the count's digits
  });

  it('takes issue counts and lowest numbers from a bounded snapshot, PRs from the PRs read', () => {
    const page = { size: 2, counts: { [Label.issue]: 40_000, [Label.blocked]: 20_000, [Label.architect]: 5, [Label.curated]: 7, bug: 3 }, lowest: { [Label.issue]: [1, 4], [Label.blocked]: [2], [Label.architect]: [9, 3], [Label.curated]: [5] }, moreReady: true };
    const p = pipeline({ issues: [issue(1, [Label.issue]), issue(4, [Label.issue])], pullRequests: [pr(7000, [Label.pr])], page }, T);
    expect(p.counts).toEqual({ ready: 40_000, building: 0, blocked: 20_000, review_requested: 0, changes_requested: 0, ready_to_merge: 1, proposals: 12 });
    expect(p.ready).toEqual([1, 4]);
    expect(p.blocked).toEqual([2]);
    expect(p.building).toEqual([]);
    expect(p.proposals).toEqual([3, 5, 9]);
    expect(p.ready_to_merge).toEqual([7000]);
  });
});
