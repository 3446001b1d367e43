// The chaos suite's own checks: one seed is one schedule, and each invariant catches the failure it
// names (on made-up evidence: a clean end, then one fault at a time).
import { describe, expect, it } from 'vitest';
import { Label } from '../../src/core/labels.js';
import type { Issue, PullRequest } from '../../src/core/tracker-model.js';
import type { Evidence, IssueEvidence } from './invariants.js';
import { checkInvariants } from './invariants.js';
import type { IssuePlan } from './scenario.js';
import { CRASH_POINTS, defaultOptions, makeScenario } from './scenario.js';

const T0 = Date.parse('2026-01-01T00:00:00Z');
const iso = (ms: number) => new Date(T0 + ms).toISOString();

function plan(index: number, builder: IssuePlan['builder']): IssuePlan {
  return { index, title: `Chaos ${index}`, builder, judge: 'approve', delay: 0.5, crash: null, reason: `reason-${index}` };
}

function issue(number: number, state: 'open' | 'closed', labels: string[] = []): Issue {
  return { number, title: `Chaos ${number}`, body: '', state, labels, author: 'human', createdAt: iso(0), updatedAt: iso(0) };
}

function pr(number: number, closes: number, state: PullRequest['state'], labels: string[] = []): PullRequest {
  return { number, title: `#${closes}`, body: `Closes #${closes}`, state, labels, head: `loom/issue-${closes}`, base: 'main', closesIssue: closes, createdAt: iso(0), updatedAt: iso(0) };
}

/** A clean end: #1 merged, #2 closed as no-change, #3 blocked by Loom, #4 back to loom:issue with its worktree. */
function clean(): Evidence {
  const issues: IssueEvidence[] = [
    { issue: issue(1, 'closed'), plan: plan(1, 'commit'), comments: [], events: [{ id: 1, type: 'closed', label: null, actor: 'loom', createdAt: iso(5_000) }] },
    { issue: issue(2, 'closed'), plan: plan(2, 'no-change'), comments: [{ id: 2, author: 'loom', body: 'Loom: no changes needed — reason-2.', createdAt: iso(3_000) }], events: [{ id: 3, type: 'closed', label: null, actor: 'loom', createdAt: iso(3_000) }] },
    { issue: issue(3, 'open', [Label.blocked]), plan: plan(3, 'silent'), comments: [{ id: 4, author: 'loom', body: 'Loom: the builder stalled; marking this issue `loom:blocked`.', createdAt: iso(9_000) }], events: [{ id: 5, type: 'labeled', label: Label.blocked, actor: 'loom', createdAt: iso(9_000) }] },
    { issue: issue(4, 'open', [Label.issue]), plan: plan(4, 'commit'), comments: [], events: [] },
  ];
  return {
    mode: 'local',
    loomActor: 'loom',
    issues,
    prs: [{ pr: pr(5, 1, 'merged'), events: [{ id: 6, type: 'labeled', label: Label.pr, actor: 'loom', createdAt: iso(4_000) }] }],
    merges: [{ sha: 'a'.repeat(40), time: T0 + 4_500, subject: 'Merge #1: Chaos 1 (PR #5)', issue: 1, empty: false }],
    files: new Map([
      [1, 'issue 1\n'],
      [2, null],
      [3, null],
      [4, null],
    ]),
    branches: new Map([[4, true]]),
    worktreeDirs: ['issue-4'],
    registered: [{ path: '/r/.loom/worktrees/issue-4', exists: true }],
    worktreesDir: '/r/.loom/worktrees',
    checkpoints: ['issue-4.json'],
    loomTemps: [],
    agentTemps: [],
    progress: [],
    tickets: [],
    locks: [],
    stateFile: null,
    status: null,
    leftovers: [],
    daemonProblems: [],
    humans: [],
    journal: [
      { word: 'start', role: 'builder', issue: 1, at: T0 + 1_000 },
      { word: 'end', role: 'builder', issue: 1, at: T0 + 2_000 },
      { word: 'start', role: 'builder', issue: 3, at: T0 + 1_000 },
    ],
  };
}

const names = (e: Evidence) => checkInvariants(e).map((v) => v.invariant);

describe('chaos invariants', () => {
  it('a clean end has no violation', () => {
    expect(checkInvariants(clean())).toEqual([]);
  });

  it('a second (empty) merge commit for one issue', () => {
    const e = clean();
    e.merges.push({ sha: 'b'.repeat(40), time: T0 + 8_000, subject: 'Merge #1: Chaos 1 (PR #5)', issue: 1, empty: true });
    expect(names(e)).toEqual(['merged-once']);
  });

  it('work on main for an issue that is still open and blocked', () => {
    const e = clean();
    e.issues[0]!.issue = issue(1, 'open', [Label.blocked]);
    e.issues[0]!.comments = [{ id: 9, author: 'loom', body: 'Loom: PR #5 could not be merged; marking this issue `loom:blocked`.', createdAt: iso(6_000) }];
    expect(names(e)).toContain('merge-recorded');
  });

  it('a merge after the human closed the issue, and an agent started after it', () => {
    const e = clean();
    e.humans.push({ kind: 'close', issue: 1, at: T0 + 2_500, requeuedAt: null });
    e.journal.push({ word: 'start', role: 'judge', issue: 3, at: T0 + 20_000 });
    expect(names(e)).toEqual(['merged-after-human', 'agent-after-stop']);
  });

  it('an issue closed as no-change without the builder saying so', () => {
    const e = clean();
    e.issues[1]!.plan = plan(2, 'nothing');
    expect(names(e)).toEqual(['closed-with-reason']);
  });

  it('a blocked issue without a comment, a PR approved after the block, and two open PRs', () => {
    const e = clean();
    e.issues[2]!.comments = [];
    e.prs.push({ pr: pr(6, 3, 'open', [Label.pr]), events: [{ id: 7, type: 'labeled', label: Label.pr, actor: 'loom', createdAt: iso(30_000) }] }, { pr: pr(7, 3, 'open', [Label.reviewRequested]), events: [] });
    expect(names(e)).toEqual(['blocked-with-comment', 'approved-after-stop', 'one-pr']);
  });

  it('leftovers: worktree, branch and checkpoint of a blocked issue, temp files, records, locks, processes', () => {
    const e = clean();
    e.worktreeDirs.push('issue-3');
    e.branches.set(1, false);
    e.checkpoints.push('issue-3.json');
    e.registered.push({ path: '/r/.loom/worktrees/issue-9', exists: false });
    e.loomTemps.push('checkpoints/issue-3.json.123.abc.tmp');
    e.agentTemps.push('loom-agent-x');
    e.progress.push('shepherd-3.json');
    e.tickets.push('0a1b2c3d4e5f.json');
    e.locks.push('merge.lock');
    e.leftovers.push('pid 42 (sleep 3600)');
    expect(names(e).sort()).toEqual(['orphan-agent-temp', 'orphan-branch', 'orphan-checkpoint', 'orphan-lock', 'orphan-process', 'orphan-progress', 'orphan-temp', 'orphan-ticket', 'orphan-worktree', 'orphan-worktree'].sort());
  });

  it('two agents in one worktree at once, an owner after the stop, and a status that does not read', () => {
    const e = clean();
    e.journal.push({ word: 'overlap', role: 'builder', issue: 4, at: T0 + 3_000 });
    e.issues[3]!.issue = issue(4, 'open', [Label.building]);
    e.status = 'daemon status is crashed';
    expect(names(e).sort()).toEqual(['concurrent-agents', 'no-owner-after-stop', 'orphan-checkpoint', 'orphan-worktree', 'status'].sort());
  });
});

describe('chaos scenario', () => {
  it('one seed is one schedule; another seed is another', () => {
    const options = defaultOptions('local', true);
    expect(makeScenario(5, 'local', options)).toEqual(makeScenario(5, 'local', options));
    expect(makeScenario(6, 'local', options)).not.toEqual(makeScenario(5, 'local', options));
  });

  it('in shepherd-host mode a seed gives the same schedule, its shepherd kills hitting the host', () => {
    for (const seed of [1, 2, 3]) {
      const inProcess = makeScenario(seed, 'local', defaultOptions('local', false));
      const host = makeScenario(seed, 'local', { ...defaultOptions('local', false), shepherds: 'host' });
      expect(inProcess.shepherds).toBe('process');
      expect(host.shepherds).toBe('host');
      expect(inProcess.kills.some((k) => k.target === 'shepherd')).toBe(true);
      expect(host.kills).toEqual(inProcess.kills.map((k) => (k.target === 'shepherd' ? { ...k, target: 'host' } : k)));
      expect({ ...host, shepherds: 'process', kills: [] }).toEqual({ ...inProcess, kills: [] });
    }
  });

  it('30+ issues with every troublesome builder, every local crash window, kills of every kind and every human action', () => {
    const s = makeScenario(1, 'local', defaultOptions('local', true));
    expect(s.issues.length).toBeGreaterThanOrEqual(30);
    for (const b of ['silent', 'chatty', 'fail', 'nothing', 'no-change', 'commit', 'uncommitted']) expect(s.issues.some((i) => i.builder === b)).toBe(true);
    const windows = s.issues.map((i) => i.crash).filter((c) => c !== null);
    expect(new Set(windows).size).toBe(windows.length);
    expect(windows.length).toBeGreaterThanOrEqual(10);
    for (const w of windows) expect(Object.keys(CRASH_POINTS)).toContain(w);
    expect(new Set(s.humans.map((h) => h.kind))).toEqual(new Set(['close', 'block', 'abort', 'unclaim', 'unready']));
    const github = makeScenario(2, 'github', defaultOptions('github', true));
    expect(new Set(github.faults.map((f) => f.kind))).toEqual(new Set(['5xx', '429', 'ambiguous-5xx', 'slow', 'drop', 'malformed']));
  });
});
