/**
 * Following the issue (core/follow-issue.ts): pure rules over the issue and PR as just read. The
 * Champion's use of them is in champion-policy.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { mergeHold, shepherdWithdrawal, supportHold } from '../../src/core/follow-issue.js';
import { Label } from '../../src/core/labels.js';
import type { Issue, PullRequest } from '../../src/core/tracker-model.js';

const at = '2026-01-01T00:00:00Z';
const issue = (labels: string[], state: Issue['state'] = 'open'): Issue => ({ number: 1, title: 't', body: '', state, labels, author: 'a', createdAt: at, updatedAt: at });
const pr = (labels: string[], state: PullRequest['state'] = 'open'): PullRequest => ({ number: 2, title: '#1: t', body: '', state, labels, head: 'loom/issue-1', base: 'main', closesIssue: 1, createdAt: at, updatedAt: at });

describe('shepherdWithdrawal', () => {
  it('lets the shepherd carry on while the issue is open and loom:building (flags like loom:urgent do not matter)', () => {
    expect(shepherdWithdrawal(1, issue([Label.building]))).toBeNull();
    expect(shepherdWithdrawal(1, issue([Label.building, Label.urgent]))).toBeNull();
  });

  it.each([
    ['gone', null, 'issue #1 no longer exists'],
    ['closed', issue([], 'closed'), 'issue #1 was closed'],
    ['closed', issue([Label.building], 'closed'), 'issue #1 was closed'],
    ['aborted', issue([Label.building, Label.abort]), 'issue #1 got `loom:abort`'],
    ['aborted', issue([Label.blocked, Label.abort]), 'issue #1 got `loom:abort`'],
    ['blocked', issue([Label.blocked]), 'issue #1 was marked `loom:blocked`'],
    ['unclaimed', issue([]), '`loom:building` was removed from issue #1'],
    ['unclaimed', issue([Label.issue]), '`loom:building` was removed from issue #1'],
  ] as const)('stops it when the issue is %s (%#)', (kind, read, message) => {
    expect(shepherdWithdrawal(1, read)).toEqual({ kind, message });
  });
});

describe('supportHold', () => {
  it('lets a support role act on a PR whose issue is open, unowned and not blocked', () => {
    expect(supportHold(1, issue([]))).toBeNull();
    expect(supportHold(1, issue([Label.urgent]))).toBeNull();
  });

  it.each([
    [null, 'issue #1 does not exist'],
    [issue([], 'closed'), 'issue #1 is closed'],
    [issue([Label.blocked]), 'issue #1 is `loom:blocked`'],
    [issue([Label.abort]), 'issue #1 has `loom:abort`'],
    [issue([Label.building]), 'a shepherd owns issue #1 (`loom:building`)'],
  ])('holds it back otherwise (%#)', (read, why) => {
    expect(supportHold(1, read)).toBe(why);
  });
});

describe('mergeHold', () => {
  it('the PR must still be open, for either merger', () => {
    for (const by of ['shepherd', 'champion'] as const) {
      expect(mergeHold({ by, issueNumber: 1, issue: issue([Label.building]), prNumber: 2, pr: pr([Label.pr], 'closed') })).toEqual({ on: 'pr', message: 'PR #2 is no longer open' });
      expect(mergeHold({ by, issueNumber: 1, issue: issue([Label.building]), prNumber: 2, pr: null })).toEqual({ on: 'pr', message: 'PR #2 is no longer open' });
    }
  });

  it('the shepherd merges only while it still owns the issue; the Champion only while no shepherd does', () => {
    const ask = (by: 'shepherd' | 'champion', labels: string[], state: Issue['state'] = 'open') => mergeHold({ by, issueNumber: 1, issue: issue(labels, state), prNumber: 2, pr: pr([Label.pr]) });
    expect(ask('shepherd', [Label.building])).toBeNull();
    expect(ask('champion', [])).toBeNull();
    expect(ask('shepherd', [])).toEqual({ on: 'issue', message: '`loom:building` was removed from issue #1' });
    expect(ask('champion', [Label.building])).toEqual({ on: 'issue', message: 'a shepherd owns issue #1 (`loom:building`)' });
    for (const by of ['shepherd', 'champion'] as const) {
      expect(ask(by, [], 'closed')?.on).toBe('issue');
      expect(ask(by, [Label.blocked])?.on).toBe('issue');
      expect(ask(by, [Label.abort])?.on).toBe('issue');
    }
  });
});
