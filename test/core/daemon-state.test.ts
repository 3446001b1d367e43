/**
 * `.loom/daemon-state.json` (PRODUCT.md §7): `normalizeState` must load the state files earlier
 * Loom installations wrote (same field names), keep what it does not know, and turn anything
 * malformed into a valid state while reporting what it had to reset.
 */
import { describe, expect, it } from 'vitest';
import type { DaemonState } from '../../src/core/daemon-state.js';
import {
  MAX_COMPLETED,
  MAX_WARNINGS,
  activeShepherds,
  addCompleted,
  addWarning,
  emptyPipeline,
  emptyState,
  emptyUsage,
  foldUsage,
  idleRole,
  idleShepherd,
  normalizeState,
  USAGE_ISSUE_WINDOW,
} from '../../src/core/daemon-state.js';

const T = '2026-01-23T10:00:00Z';

/** A state file in the shape earlier Loom installations wrote. */
function legacyStateFile(): Record<string, unknown> {
  return {
    started_at: T,
    running: true,
    shepherds: {
      'shepherd-1': {
        status: 'working',
        issue: 123,
        task_id: 'abc123',
        output_file: '/tmp/x',
        started: '2026-01-23T10:05:00Z',
        last_phase: 'builder',
        pr_number: null,
        idle_since: null,
        idle_reason: null,
        execution_mode: 'direct',
      },
      'shepherd-2': { status: 'idle', issue: null },
    },
    support_roles: { guide: { status: 'running', task_id: 'g1', started: '2026-01-23T10:01:00Z', last_completed: null } },
    completed_issues: [100, 101],
    total_prs_merged: 3,
    last_architect_trigger: '2026-01-23T09:00:00Z',
    warnings: ['a plain string warning'],
  };
}

/** Parses like the state store does: from JSON text. */
const load = (value: unknown) => normalizeState(JSON.parse(JSON.stringify(value)));

describe('normalizeState: input that is not a state object', () => {
  it.each([
    ['null', null],
    ['a number', 42],
    ['a string', 'state'],
    ['an array', [1, 2]],
    ['a boolean', true],
    ['undefined', undefined],
  ])('%s gives the empty state and one problem', (_what, raw) => {
    const { state, problems } = normalizeState(raw);
    expect(state).toEqual(emptyState());
    expect(problems).toEqual(['state file is not a JSON object']);
  });

  it('an empty object is the empty state, without problems', () => {
    expect(normalizeState({})).toEqual({ state: emptyState(), problems: [] });
  });

  it('the empty state is a fixed point', () => {
    const { state, problems } = load(emptyState());
    expect(problems).toEqual([]);
    expect(state).toEqual(emptyState());
  });
});

describe('normalizeState: state files of earlier Loom installations', () => {
  it('loads the legacy shape without problems', () => {
    const { state, problems } = load(legacyStateFile());
    expect(problems).toEqual([]);
    expect(state.started_at).toBe(T);
    expect(state.running).toBe(true);
    expect(state.completed_issues).toEqual([100, 101]);
    expect(state.total_prs_merged).toBe(3);
    // Fields the old file did not have get their defaults.
    expect(state.iteration).toBe(0);
    expect(state.force_mode).toBe(false);
    expect(state.daemon_session_id).toBeNull();
    expect(state.spawn_retry_queue).toEqual({});
    expect(state.pipeline_state).toEqual(emptyPipeline());
  });

  it('maps a working shepherd and fills the fields the old file lacked', () => {
    const { state } = load(legacyStateFile());
    expect(state.shepherds['shepherd-1']).toEqual({
      status: 'working',
      issue: 123,
      task_id: 'abc123',
      pid: null,
      pid_start: null,
      output_file: '/tmp/x',
      started: '2026-01-23T10:05:00Z',
      last_phase: 'builder',
      pr_number: null,
      idle_since: null,
      last_issue: null,
      idle_reason: null,
      execution_mode: 'direct',
    });
    expect(state.shepherds['shepherd-2']).toEqual(idleShepherd());
    expect(activeShepherds(state)).toEqual([['shepherd-1', state.shepherds['shepherd-1']]]);
  });

  it('maps a running support role', () => {
    const { state } = load(legacyStateFile());
    expect(state.support_roles.guide).toEqual({ ...idleRole(), status: 'running', task_id: 'g1', started: '2026-01-23T10:01:00Z' });
  });

  it('turns plain-string warnings into warning records', () => {
    const { state } = load(legacyStateFile());
    expect(state.warnings).toEqual([{ time: '', message: 'a plain string warning' }]);
  });

  it('keeps unknown fields, top-level and nested, through a JSON round trip', () => {
    const raw = { ...legacyStateFile(), pipeline_state: { ready: [1], extra_counter: 7 }, custom: { nested: [1, 'two'] } };
    const { state } = load(raw);
    const again = JSON.parse(JSON.stringify(state)) as Record<string, unknown> & DaemonState;
    expect(again.last_architect_trigger).toBe('2026-01-23T09:00:00Z');
    expect(again.custom).toEqual({ nested: [1, 'two'] });
    expect(again.shepherds['shepherd-1']?.execution_mode).toBe('direct');
    expect(again.shepherds['shepherd-1']).toHaveProperty('idle_reason', null);
    expect((again.pipeline_state as unknown as Record<string, unknown>).extra_counter).toBe(7);
    expect(again.pipeline_state.ready).toEqual([1]);
  });

  it('is idempotent: normalizing a normalized state changes nothing', () => {
    const once = load(legacyStateFile()).state;
    const twice = load(once);
    expect(twice.problems).toEqual([]);
    expect(twice.state).toEqual(once);
  });

  it('the seed’s minimal example loads: a shepherd with only issue, task_id, output_file is working', () => {
    const { state, problems } = load({ started_at: T, running: true, shepherds: { 'shepherd-1': { issue: 123, task_id: 'abc123', output_file: '/path/to/output' } }, completed_issues: [100, 101, 102] });
    expect(problems).toEqual([]);
    expect(state.shepherds['shepherd-1']).toMatchObject({ status: 'working', issue: 123, task_id: 'abc123', output_file: '/path/to/output' });
    expect(state.completed_issues).toEqual([100, 101, 102]);
  });

  it.each(['working', 'running', 'active', 'busy'])('shepherd status %s with an issue is working', (status) => {
    const { state } = load({ shepherds: { s: { status, issue: 5 } } });
    expect(state.shepherds.s).toMatchObject({ status: 'working', issue: 5 });
  });

  it.each(['idle', 'done', 'stopped', 'whatever'])('shepherd status %s is idle; its issue is remembered as last_issue', (status) => {
    const { state } = load({ shepherds: { s: { status, issue: 5 } } });
    expect(state.shepherds.s).toMatchObject({ status: 'idle', issue: null, last_issue: 5 });
  });

  it('a working status without an issue is idle', () => {
    const { state } = load({ shepherds: { s: { status: 'working', issue: null, task_id: 't' } } });
    expect(state.shepherds.s).toMatchObject({ status: 'idle', issue: null });
    expect(activeShepherds(state)).toEqual([]);
  });

  it('an explicit last_issue is kept', () => {
    const { state } = load({ shepherds: { s: { status: 'idle', issue: null, last_issue: 77 } } });
    expect(state.shepherds.s?.last_issue).toBe(77);
  });

  it('accepts issue numbers written as digit strings', () => {
    const { state } = load({ shepherds: { s: { status: 'working', issue: '42', pid: '1234', pr_number: '9' } }, completed_issues: ['1', 2, 'x', 3.5, null], total_prs_merged: '4' });
    expect(state.shepherds.s).toMatchObject({ status: 'working', issue: 42, pid: 1234, pr_number: 9 });
    expect(state.completed_issues).toEqual([1, 2]);
    expect(state.total_prs_merged).toBe(4);
  });

  it.each(['running', 'working', 'active'])('role status %s is running', (status) => {
    expect(load({ support_roles: { judge: { status } } }).state.support_roles.judge?.status).toBe('running');
  });

  it.each(['idle', 'done', undefined, 3])('role status %s is idle', (status) => {
    expect(load({ support_roles: { judge: { status } } }).state.support_roles.judge?.status).toBe('idle');
  });

  it('keeps every entry field of the current schema', () => {
    const full = {
      ...emptyState(),
      started_at: T,
      running: true,
      iteration: 12,
      force_mode: true,
      daemon_session_id: 'sess',
      daemon_pid: 999,
      last_poll: T,
      stopped_at: null,
      last_summary: 'ready=1 building=0 shepherds=0/3',
      shepherds: { 'shepherd-1': { ...idleShepherd(), status: 'working' as const, issue: 4, task_id: 't4', pid: 44, pid_start: 'p', output_file: 'o', started: T, last_phase: 'judge', pr_number: 8, idle_since: null, last_issue: 3 } },
      support_roles: { judge: { ...idleRole(), status: 'running' as const, task_id: 'j', pid: 5, pid_start: 'q', output_file: 'oj', started: T, last_completed: T, last_outcome: 'completed' } },
      pipeline_state: { counts: { ready: 1, building: 1, blocked: 2, review_requested: 1, changes_requested: 0, ready_to_merge: 0, proposals: 1 }, ready: [1], building: [4], blocked: [2], review_requested: [8], changes_requested: [], ready_to_merge: [], proposals: [6], last_updated: T },
      warnings: [{ time: T, message: 'm' }],
      completed_issues: [1],
      total_prs_merged: 1,
      spawn_retry_queue: { '7': { failures: 2, last_failure: T, next_retry_at: T, last_error: 'e' } },
    };
    const { state, problems } = load(full);
    expect(problems).toEqual([]);
    expect(state).toEqual(full);
  });
});

describe('normalizeState: malformed fields', () => {
  it('a shepherds value that is not an object is reset and reported', () => {
    const { state, problems } = load({ shepherds: [1, 2] });
    expect(state.shepherds).toEqual({});
    expect(problems).toEqual(['shepherds is not an object; reset']);
  });

  it('a shepherd entry that is not an object is dropped and reported; the others survive', () => {
    const { state, problems } = load({ shepherds: { 'shepherd-1': 'busy', 'shepherd-2': { status: 'working', issue: 3 } } });
    expect(Object.keys(state.shepherds)).toEqual(['shepherd-2']);
    expect(problems).toEqual(['shepherds.shepherd-1 is not an object; dropped']);
  });

  it('support_roles that is not an object, or an entry that is not, is reset/dropped and reported', () => {
    expect(load({ support_roles: 'x' }).problems).toEqual(['support_roles is not an object; reset']);
    const { state, problems } = load({ support_roles: { guide: null, judge: { status: 'idle' } } });
    expect(Object.keys(state.support_roles)).toEqual(['judge']);
    expect(problems).toEqual(['support_roles.guide is not an object; dropped']);
  });

  it('reports every problem at once', () => {
    const { problems } = load({ shepherds: { a: 1, b: 2 }, support_roles: [] });
    expect(problems).toHaveLength(3);
  });

  it('wrong-typed fields inside entries are reset to null', () => {
    const { state } = load({ shepherds: { s: { status: 'working', issue: 1, task_id: 5, pid: 'abc', started: 0, output_file: {} } } });
    expect(state.shepherds.s).toMatchObject({ task_id: null, pid: null, started: null, output_file: null });
  });

  it('wrong-typed scalar fields get their defaults and never throw', () => {
    const { state } = load({ started_at: 5, running: 'yes', iteration: 'many', force_mode: 1, daemon_pid: 'x', completed_issues: 'abc', total_prs_merged: {}, warnings: 'w', pipeline_state: [], spawn_retry_queue: 'q' });
    expect(state).toEqual(emptyState());
  });

  it('missing and null fields are not problems', () => {
    expect(load({ started_at: null, shepherds: {}, support_roles: {}, warnings: [], daemon_session_id: null }).problems).toEqual([]);
  });

  it('reports a wrong-typed completed_issues', () => {
    const { state, problems } = load({ completed_issues: 'abc' });
    expect(state.completed_issues).toEqual([]);
    expect(problems.some((p) => p.includes('completed_issues'))).toBe(true);
  });

  it('reports a wrong-typed total_prs_merged', () => {
    const { problems } = load({ total_prs_merged: 'three' });
    expect(problems.some((p) => p.includes('total_prs_merged'))).toBe(true);
  });

  it('reports a wrong-typed spawn_retry_queue', () => {
    const { problems } = load({ spawn_retry_queue: 'q' });
    expect(problems.some((p) => p.includes('spawn_retry_queue'))).toBe(true);
  });

  it('reports a wrong-typed pipeline_state', () => {
    const { problems } = load({ pipeline_state: [1, 2] });
    expect(problems.some((p) => p.includes('pipeline_state'))).toBe(true);
  });

  it('reports a wrong-typed warnings', () => {
    const { problems } = load({ warnings: { a: 1 } });
    expect(problems.some((p) => p.includes('warnings'))).toBe(true);
  });

  it('drops warnings it cannot read, keeps the others', () => {
    const { state } = load({ warnings: ['old', { time: T, message: 'new' }, { message: 'no time' }, { time: T }, 5, null] });
    expect(state.warnings).toEqual([
      { time: '', message: 'old' },
      { time: T, message: 'new' },
      { time: '', message: 'no time' },
    ]);
  });

  it('pipeline_state lists keep only issue numbers', () => {
    const { state } = load({ pipeline_state: { ready: [1, 'x', 2], building: 'nope', last_updated: 3 } });
    expect(state.pipeline_state).toEqual({ ...emptyPipeline(), counts: { ...emptyPipeline().counts, ready: 2 }, ready: [1, 2] });
  });

  it('pipeline_state counts are kept as written, and taken from the lists in an older file', () => {
    const { state } = load({ pipeline_state: { counts: { ready: 5000, blocked: 'x' }, ready: [1, 2], blocked: [3] } });
    expect(state.pipeline_state.counts).toEqual({ ...emptyPipeline().counts, ready: 5000, blocked: 1 });
  });
});

describe('normalizeState: spawn_retry_queue', () => {
  it('the object form, keyed by issue number', () => {
    const { state } = load({
      spawn_retry_queue: {
        '12': { failures: 2, last_failure: T, next_retry_at: '2026-01-23T10:01:00Z', last_error: 'boom' },
        '13': { next_retry_at: T },
        nonsense: { failures: 1 },
        '14': 'not an entry',
      },
    });
    expect(state.spawn_retry_queue).toEqual({
      '12': { failures: 2, last_failure: T, next_retry_at: '2026-01-23T10:01:00Z', last_error: 'boom' },
      '13': { failures: 1, last_failure: '', next_retry_at: T, last_error: '' },
    });
  });

  it('the legacy array form: issue numbers or {issue, failures} objects', () => {
    const { state, problems } = load({ spawn_retry_queue: [12, '13', { issue: 14, failures: 2 }, { issue: 15 }, 'x', { failures: 3 }, null] });
    expect(problems).toEqual([]);
    expect(state.spawn_retry_queue).toEqual({
      '12': { failures: 1, last_failure: '', next_retry_at: '', last_error: '' },
      '13': { failures: 1, last_failure: '', next_retry_at: '', last_error: '' },
      '14': { failures: 2, last_failure: '', next_retry_at: '', last_error: '' },
      '15': { failures: 1, last_failure: '', next_retry_at: '', last_error: '' },
    });
  });
});

describe('addWarning / addCompleted', () => {
  it('addWarning appends with its time and keeps the newest MAX_WARNINGS', () => {
    const state = emptyState();
    addWarning(state, T, 'first');
    expect(state.warnings).toEqual([{ time: T, message: 'first' }]);
    for (let i = 1; i <= MAX_WARNINGS + 9; i++) addWarning(state, T, `w${i}`);
    expect(MAX_WARNINGS).toBe(50);
    expect(state.warnings).toHaveLength(MAX_WARNINGS);
    expect(state.warnings[0]?.message).toBe('w10');
    expect(state.warnings.at(-1)?.message).toBe(`w${MAX_WARNINGS + 9}`);
  });

  it('addCompleted appends once per issue', () => {
    const state = emptyState();
    addCompleted(state, 5);
    addCompleted(state, 6);
    addCompleted(state, 5);
    expect(state.completed_issues).toEqual([5, 6]);
  });

  it('addCompleted keeps the newest MAX_COMPLETED', () => {
    const state = emptyState();
    for (let i = 1; i <= MAX_COMPLETED + 5; i++) addCompleted(state, i);
    expect(state.completed_issues).toHaveLength(MAX_COMPLETED);
    expect(state.completed_issues[0]).toBe(6);
    expect(state.completed_issues.at(-1)).toBe(MAX_COMPLETED + 5);
  });

  it('a state over the caps (e.g. loaded from an old file) is trimmed on the next add', () => {
    const state = { ...emptyState(), warnings: Array.from({ length: 80 }, (_, i) => ({ time: T, message: `${i}` })) };
    addWarning(state, T, 'new');
    expect(state.warnings).toHaveLength(MAX_WARNINGS);
    expect(state.warnings.at(-1)?.message).toBe('new');
  });
});

describe('activeShepherds', () => {
  it('lists only working slots with an issue', () => {
    const state = emptyState();
    state.shepherds = {
      'shepherd-1': { ...idleShepherd(), status: 'working', issue: 1 },
      'shepherd-2': idleShepherd(),
      'shepherd-3': { ...idleShepherd(), status: 'working', issue: null },
    };
    expect(activeShepherds(state).map(([slot]) => slot)).toEqual(['shepherd-1']);
  });
});

describe('foldUsage', () => {
  const run = (issue: number, at: string) => ({ at, issue, role: 'builder', runtime: 'claude', model: null, session_id: null, outcome: 'success', input_tokens: 1, output_tokens: 1, cached_input_tokens: 0, cost_usd: 1, priced: false });

  it('keeps the issues with the most recent runs, so a low-numbered issue at work keeps its totals', () => {
    const at = (i: number) => new Date(Date.UTC(2026, 11, 1) + i * 1000).toISOString();
    // Issue 3 ran first and runs again last; 250 higher-numbered issues ran in between.
    const runs = [run(3, at(0)), ...Array.from({ length: 250 }, (_, i) => run(100 + i, at(1 + i))), run(3, at(300))];
    const usage = foldUsage(emptyUsage(), runs, 1);
    expect(Object.keys(usage.by_issue)).toHaveLength(USAGE_ISSUE_WINDOW);
    expect(usage.by_issue['3']).toMatchObject({ runs: 2, last_at: at(300) });
    // Dropped: the 51 issues whose last run is oldest (100 to 150), not the lowest numbers.
    expect(usage.by_issue['150']).toBeUndefined();
    expect(usage.by_issue['151']).toMatchObject({ runs: 1 });
    expect(usage.total.runs).toBe(252);
  });
});
