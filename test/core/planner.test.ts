/**
 * The planner `(state, observation, config, now) → actions`, with a fake clock: `now` is a plain
 * number and every time in a state, snapshot or progress record is derived from it.
 *
 * Factories below build the smallest state/snapshot/progress each case needs; the config starts
 * from the defaults of PRODUCT.md §9 with the builder enabled and every daemon role disabled, so a
 * test only sees the actions it is about unless it switches roles on.
 */
import { describe, expect, it } from 'vitest';
import type { LoomConfig } from '../../src/core/config-model.js';
import type { DaemonRole } from '../../src/core/vocabulary.js';
import { defaultConfig } from '../../src/core/config-model.js';
import type { DaemonState, RetryEntry, RoleEntry, ShepherdEntry } from '../../src/core/daemon-state.js';
import { emptyState, idleRole, idleShepherd } from '../../src/core/daemon-state.js';
import { Label } from '../../src/core/labels.js';
import type { Action, Mode, ProcessView } from '../../src/core/planner.js';
import { DEMAND_COOLDOWN_MS, MAX_RETRY_BACKOFF_MS, buildOrder, plan, planPage, retryBackoff, shepherdSlotNames } from '../../src/core/planner.js';
import type { Progress, ProgressStatus } from '../../src/core/progress.js';
import { TERMINAL_STATUSES } from '../../src/core/progress.js';
import type { Issue, PullRequest, SnapshotPage } from '../../src/core/tracker-model.js';
import type { DependencyMap } from '../../src/core/dependencies.js';
import type { OverlapFacts } from '../../src/core/overlap.js';

// ---------------------------------------------------------------------------------------------
// Fake clock and factories
// ---------------------------------------------------------------------------------------------

const SEC = 1000;
const MIN = 60 * SEC;
/** The fake "now" of every plan. */
const NOW = Date.parse('2026-01-23T12:00:00.000Z');
const iso = (ms: number): string => new Date(ms).toISOString();
const ago = (ms: number): string => iso(NOW - ms);

/** Issues are created one minute apart in number order unless a test says otherwise. */
function issue(number: number, labels: string[] = [Label.issue], createdAt: string = iso(Date.parse('2026-01-01T00:00:00.000Z') + number * MIN)): Issue {
  return { number, title: `Issue ${number}`, body: '', state: 'open', labels, author: 'alice', createdAt, updatedAt: createdAt };
}

function pr(number: number, labels: string[], closesIssue: number | null = null): PullRequest {
  const at = ago(60 * MIN);
  return { number, title: `PR ${number}`, body: '', state: 'open', labels, head: `loom/issue-${closesIssue ?? number}`, base: 'main', closesIssue, createdAt: at, updatedAt: at };
}

function progress(over: Partial<Progress> = {}): Progress {
  const issueNo = over.issue === undefined ? 1 : over.issue;
  return {
    kind: 'shepherd',
    task_id: `task-${issueNo ?? 'x'}`,
    issue: issueNo,
    role: null,
    status: 'running',
    phase: 'builder',
    pid: 4000 + (issueNo ?? 0),
    pid_start: 'start-1',
    launcher_pid: 99,
    agent_pid: null,
    agent_pid_start: null,
    started: ago(5 * MIN),
    heartbeat: ago(5 * SEC),
    last_output: ago(5 * SEC),
    output_file: `/repo/.loom/logs/shepherd-${issueNo ?? 'x'}.log`,
    message: null,
    exit_code: null,
    merged: false,
    pr_number: null,
    ...over,
  };
}

function roleProgress(role: DaemonRole, over: Partial<Progress> = {}): Progress {
  return progress({ kind: 'role', task_id: `role-${role}`, issue: null, role, phase: role, output_file: `/repo/.loom/logs/role-${role}.log`, ...over });
}

/** A busy shepherd slot for `issue`, task id `task-<issue>`, started five minutes ago. */
function working(issueNo: number, over: Partial<ShepherdEntry> = {}): ShepherdEntry {
  return {
    ...idleShepherd(),
    status: 'working',
    issue: issueNo,
    task_id: `task-${issueNo}`,
    pid: 4000 + issueNo,
    pid_start: 'start-1',
    output_file: `/repo/.loom/logs/shepherd-${issueNo}.log`,
    started: ago(5 * MIN),
    last_phase: 'builder',
    ...over,
  };
}

function runningRole(role: DaemonRole, over: Partial<RoleEntry> = {}): RoleEntry {
  return { ...idleRole(), status: 'running', task_id: `role-${role}`, pid: 7000, pid_start: 's', output_file: `/repo/.loom/logs/role-${role}.log`, started: ago(2 * MIN), ...over };
}

function idleRoleEntry(over: Partial<RoleEntry> = {}): RoleEntry {
  return { ...idleRole(), ...over };
}

function state(over: Partial<DaemonState> = {}): DaemonState {
  return { ...emptyState(), running: true, started_at: ago(60 * MIN), ...over };
}

const alive = (p: Progress | null = null): ProcessView => ({ alive: true, progress: p });
const dead = (p: Progress | null = null): ProcessView => ({ alive: false, progress: p });

/** Live, healthy process views for the given shepherd issues (task ids `task-<issue>`). */
function liveShepherds(...issues: number[]): Record<string, ProcessView> {
  return Object.fromEntries(issues.map((n) => [`task-${n}`, alive(progress({ issue: n }))]));
}

function config(mutate: (c: LoomConfig) => void = () => {}): LoomConfig {
  const c = defaultConfig();
  for (const role of Object.values(c.roles)) role.enabled = false;
  c.roles.builder.enabled = true;
  mutate(c);
  return c;
}

function enable(...roles: DaemonRole[]): (c: LoomConfig) => void {
  return (c) => {
    for (const r of roles) c.roles[r].enabled = true;
  };
}

interface Scenario {
  state?: DaemonState;
  issues?: Issue[];
  prs?: PullRequest[];
  processes?: Record<string, ProcessView>;
  strays?: ProcessView[];
  config?: LoomConfig;
  now?: number;
  force?: boolean;
  mode?: Mode;
  dependencies?: DependencyMap;
  dependenciesRead?: number[];
  freeDisk?: number | null;
  overlap?: OverlapFacts;
}

function run(s: Scenario = {}): Action[] {
  return plan({
    state: s.state ?? state(),
    observation: { snapshot: { issues: s.issues ?? [], pullRequests: s.prs ?? [] }, processes: s.processes ?? {}, strays: s.strays ?? [], ...(s.dependencies ? { dependencies: s.dependencies } : {}), ...(s.dependenciesRead ? { dependenciesRead: s.dependenciesRead } : {}), ...(s.freeDisk !== undefined ? { freeDisk: s.freeDisk } : {}), ...(s.overlap ? { overlap: s.overlap } : {}) },
    config: s.config ?? config(),
    now: s.now ?? NOW,
    force: s.force ?? false,
    mode: s.mode ?? 'normal',
  });
}

function ofType<T extends Action['type']>(actions: readonly Action[], type: T): Extract<Action, { type: T }>[] {
  return actions.filter((a): a is Extract<Action, { type: T }> => a.type === type);
}

const spawnedIssues = (actions: readonly Action[]): number[] => ofType(actions, 'spawn-shepherd').map((a) => a.issue);
const roleSpawns = (actions: readonly Action[]): [DaemonRole, string][] => ofType(actions, 'spawn-role').map((a) => [a.role, a.reason]);

// ---------------------------------------------------------------------------------------------
// Step 1: completions of shepherds the state knows
// ---------------------------------------------------------------------------------------------

describe('plan: shepherd completions', () => {
  it.each(TERMINAL_STATUSES.map((s): [ProgressStatus] => [s]))('a terminal %s record finishes the shepherd and its slot is reused in the same plan', (status) => {
    const record = progress({ issue: 1, status, message: 'done' });
    const actions = run({
      config: config((c) => (c.maxShepherds = 1)),
      state: state({ shepherds: { 'shepherd-1': working(1) } }),
      processes: { 'task-1': dead(record) },
      issues: [issue(1, [Label.building]), issue(2)],
    });
    expect(actions).toEqual([
      { type: 'finish-shepherd', slot: 'shepherd-1', issue: 1, progress: record },
      { type: 'spawn-shepherd', slot: 'shepherd-1', issue: 2 },
    ]);
  });

  it('a terminal record wins even when the process is still reported alive (it is exiting)', () => {
    const record = progress({ issue: 1, status: 'completed', merged: true });
    const actions = run({ state: state({ shepherds: { 'shepherd-1': working(1) } }), processes: { 'task-1': alive(record) } });
    expect(actions).toEqual([{ type: 'finish-shepherd', slot: 'shepherd-1', issue: 1, progress: record }]);
  });

  it('a live shepherd with a fresh heartbeat produces no action and keeps its slot busy', () => {
    const actions = run({
      config: config((c) => (c.maxShepherds = 1)),
      state: state({ shepherds: { 'shepherd-1': working(1) } }),
      processes: liveShepherds(1),
      issues: [issue(1, [Label.building]), issue(2)],
    });
    expect(actions).toEqual([]);
  });

  it('idle slots are not completions', () => {
    const actions = run({ state: state({ shepherds: { 'shepherd-1': idleShepherd(), 'shepherd-2': { ...idleShepherd(), last_issue: 9 } } }) });
    expect(actions).toEqual([]);
  });

  it.each([
    ['a running record', dead(progress({ issue: 1, status: 'running' }))],
    ['a starting record', dead(progress({ issue: 1, status: 'starting', pid: null }))],
    ['no record', dead(null)],
  ])('a dead process with %s is recovered as dead (failures 1, not blocked)', (_what, view) => {
    const actions = run({ state: state({ shepherds: { 'shepherd-1': working(1) } }), processes: { 'task-1': view }, issues: [issue(1, [Label.building])] });
    expect(actions).toEqual([{ type: 'recover-shepherd', slot: 'shepherd-1', issue: 1, reason: 'dead', failures: 1, block: false, taskId: 'task-1', pid: 4001 }]);
  });

  it('a shepherd whose task has no observed process at all is dead', () => {
    const actions = run({ state: state({ shepherds: { 'shepherd-1': working(1) } }), processes: {} });
    expect(ofType(actions, 'recover-shepherd')).toMatchObject([{ slot: 'shepherd-1', issue: 1, reason: 'dead' }]);
  });

  it('a shepherd entry without task id is dead (nothing to observe)', () => {
    const actions = run({ state: state({ shepherds: { 'shepherd-1': working(1, { task_id: null, pid: null }) } }), processes: liveShepherds(1) });
    expect(actions).toEqual([{ type: 'recover-shepherd', slot: 'shepherd-1', issue: 1, reason: 'dead', failures: 1, block: false, taskId: null, pid: null }]);
  });

  it.each([
    [undefined, 1, false],
    [1, 2, false],
    [2, 3, true],
    [5, 6, true],
  ])('failures come from spawn_retry_queue (previous %s → %i, block %s at the limit 3)', (previous, failures, block) => {
    const queue: Record<string, RetryEntry> = previous === undefined ? {} : { '1': { failures: previous, last_failure: ago(10 * MIN), next_retry_at: ago(9 * MIN), last_error: 'x' } };
    const actions = run({ state: state({ shepherds: { 'shepherd-1': working(1) }, spawn_retry_queue: queue }), processes: { 'task-1': dead() } });
    expect(ofType(actions, 'recover-shepherd')).toEqual([expect.objectContaining({ issue: 1, failures, block })]);
  });

  it('block follows the configured spawnFailureLimit', () => {
    const actions = run({ config: config((c) => (c.spawnFailureLimit = 1)), state: state({ shepherds: { 'shepherd-1': working(1) } }), processes: { 'task-1': dead() } });
    expect(ofType(actions, 'recover-shepherd')).toEqual([expect.objectContaining({ failures: 1, block: true })]);
  });

  it('the retry queue of another issue does not count', () => {
    const queue = { '2': { failures: 2, last_failure: '', next_retry_at: '', last_error: '' } };
    const actions = run({ state: state({ shepherds: { 'shepherd-1': working(1) }, spawn_retry_queue: queue }), processes: { 'task-1': dead() } });
    expect(ofType(actions, 'recover-shepherd')).toEqual([expect.objectContaining({ issue: 1, failures: 1, block: false })]);
  });

  it('a dead shepherd frees its slot for another issue, and its own (still building) issue is neither respawned nor released', () => {
    const actions = run({
      config: config((c) => (c.maxShepherds = 1)),
      state: state({ shepherds: { 'shepherd-1': working(1) } }),
      processes: { 'task-1': dead() },
      issues: [issue(1, [Label.building]), issue(2)],
    });
    expect(actions.map((a) => a.type)).toEqual(['recover-shepherd', 'spawn-shepherd']);
    expect(spawnedIssues(actions)).toEqual([2]);
    expect(ofType(actions, 'spawn-shepherd')[0]?.slot).toBe('shepherd-1');
    expect(ofType(actions, 'release-orphan')).toEqual([]);
  });

  it('several completions in one plan free several slots', () => {
    const actions = run({
      state: state({ shepherds: { 'shepherd-1': working(1), 'shepherd-2': working(2), 'shepherd-3': working(3) } }),
      processes: { 'task-1': dead(progress({ issue: 1, status: 'completed' })), 'task-2': dead(), 'task-3': alive(progress({ issue: 3 })) },
      issues: [issue(1, [Label.building]), issue(2, [Label.building]), issue(3, [Label.building]), issue(4), issue(5), issue(6)],
    });
    expect(ofType(actions, 'spawn-shepherd')).toEqual([
      { type: 'spawn-shepherd', slot: 'shepherd-1', issue: 4 },
      { type: 'spawn-shepherd', slot: 'shepherd-2', issue: 5 },
    ]);
  });
});

// ---------------------------------------------------------------------------------------------
// Stuck shepherds (step "check stuck agents", last in the seed's order)
// ---------------------------------------------------------------------------------------------

describe('plan: stalled shepherds', () => {
  const stallScenario = (heartbeatAge: number, extra: Partial<Scenario> = {}): Action[] =>
    run({
      state: state({ shepherds: { 'shepherd-1': working(1, { started: ago(60 * MIN) }) } }),
      processes: { 'task-1': alive(progress({ issue: 1, heartbeat: ago(heartbeatAge) })) },
      issues: [issue(1, [Label.building])],
      ...extra,
    });

  it('a heartbeat older than stallTimeout is recovered with reason stalled', () => {
    expect(stallScenario(10 * MIN + 1)).toEqual([
      { type: 'recover-shepherd', slot: 'shepherd-1', issue: 1, reason: 'stalled', failures: 1, block: false, taskId: 'task-1', pid: 4001 },
    ]);
  });

  it('a heartbeat exactly stallTimeout old, or fresher, is not stalled', () => {
    expect(stallScenario(10 * MIN)).toEqual([]);
    expect(stallScenario(9 * MIN)).toEqual([]);
  });

  it('uses the configured stallTimeout', () => {
    expect(ofType(stallScenario(2 * MIN, { config: config((c) => (c.stallTimeout = 1 * MIN)) }), 'recover-shepherd')).toHaveLength(1);
    expect(stallScenario(2 * MIN, { config: config((c) => (c.stallTimeout = 3 * MIN)) })).toEqual([]);
  });

  it('without a progress record the start time stands in for the heartbeat', () => {
    const base = { state: state({ shepherds: { 'shepherd-1': working(1, { started: ago(11 * MIN) }) } }), processes: { 'task-1': alive(null) } };
    expect(ofType(run(base), 'recover-shepherd')).toEqual([expect.objectContaining({ reason: 'stalled' })]);
    const young = { state: state({ shepherds: { 'shepherd-1': working(1, { started: ago(1 * MIN) }) } }), processes: { 'task-1': alive(null) } };
    expect(run(young)).toEqual([]);
  });

  it('counts failures and blocks at the limit like a dead shepherd', () => {
    const queue = { '1': { failures: 2, last_failure: '', next_retry_at: '', last_error: '' } };
    expect(ofType(stallScenario(30 * MIN), 'recover-shepherd')[0]).toMatchObject({ failures: 1, block: false });
    const blocked = run({
      state: state({ shepherds: { 'shepherd-1': working(1) }, spawn_retry_queue: queue }),
      processes: { 'task-1': alive(progress({ issue: 1, heartbeat: ago(30 * MIN) })) },
    });
    expect(ofType(blocked, 'recover-shepherd')[0]).toMatchObject({ reason: 'stalled', failures: 3, block: true });
  });

  it('is emitted after the spawns (stuck checks come last), and the stalled slot is not reused in this plan', () => {
    const actions = run({
      config: config((c) => (c.maxShepherds = 2)),
      state: state({ shepherds: { 'shepherd-1': working(1) } }),
      processes: { 'task-1': alive(progress({ issue: 1, heartbeat: ago(20 * MIN) })) },
      issues: [issue(1, [Label.building]), issue(2), issue(3)],
    });
    expect(actions.map((a) => a.type)).toEqual(['spawn-shepherd', 'recover-shepherd']);
    expect(ofType(actions, 'spawn-shepherd')).toEqual([{ type: 'spawn-shepherd', slot: 'shepherd-2', issue: 2 }]);
  });

  it('a stalled shepherd’s issue is not released as an orphan nor spawned again, even if it still carries loom:issue', () => {
    const actions = run({
      state: state({ shepherds: { 'shepherd-1': working(1) } }),
      processes: { 'task-1': alive(progress({ issue: 1, heartbeat: ago(20 * MIN) })) },
      issues: [issue(1, [Label.issue])],
    });
    expect(actions.map((a) => a.type)).toEqual(['recover-shepherd']);
  });
});

// ---------------------------------------------------------------------------------------------
// Capacity and the single-claim rule
// ---------------------------------------------------------------------------------------------

describe('plan: shepherd capacity', () => {
  it('fills every free slot, one issue each, and never more than maxShepherds', () => {
    const actions = run({ issues: [1, 2, 3, 4, 5].map((n) => issue(n)) });
    expect(ofType(actions, 'spawn-shepherd')).toEqual([
      { type: 'spawn-shepherd', slot: 'shepherd-1', issue: 1 },
      { type: 'spawn-shepherd', slot: 'shepherd-2', issue: 2 },
      { type: 'spawn-shepherd', slot: 'shepherd-3', issue: 3 },
    ]);
  });

  it('spawns only into the free slots when some are busy', () => {
    const actions = run({
      state: state({ shepherds: { 'shepherd-2': working(10) } }),
      processes: liveShepherds(10),
      issues: [issue(10, [Label.building]), issue(1), issue(2), issue(3)],
    });
    expect(ofType(actions, 'spawn-shepherd')).toEqual([
      { type: 'spawn-shepherd', slot: 'shepherd-1', issue: 1 },
      { type: 'spawn-shepherd', slot: 'shepherd-3', issue: 2 },
    ]);
  });

  it('spawns nothing when every slot is busy', () => {
    const actions = run({
      state: state({ shepherds: { 'shepherd-1': working(10), 'shepherd-2': working(11), 'shepherd-3': working(12) } }),
      processes: liveShepherds(10, 11, 12),
      issues: [issue(1), issue(2)],
    });
    expect(actions).toEqual([]);
  });

  it('counts extra slots (manual spawns beyond maxShepherds) against the limit', () => {
    const actions = run({
      config: config((c) => (c.maxShepherds = 2)),
      state: state({ shepherds: { 'shepherd-1': working(10), 'shepherd-4': working(11) } }),
      processes: liveShepherds(10, 11),
      issues: [issue(1), issue(2)],
    });
    expect(spawnedIssues(actions)).toEqual([]);
  });

  it('respects a lowered maxShepherds when more shepherds are still running', () => {
    const actions = run({
      config: config((c) => (c.maxShepherds = 1)),
      state: state({ shepherds: { 'shepherd-2': working(10), 'shepherd-3': working(11) } }),
      processes: liveShepherds(10, 11),
      issues: [issue(1)],
    });
    expect(spawnedIssues(actions)).toEqual([]);
  });

  it('holds for many combinations of pool size, busy slots and backlog', () => {
    for (let max = 1; max <= 5; max++) {
      for (let busy = 0; busy <= max + 1; busy++) {
        for (let ready = 0; ready <= 7; ready++) {
          const shepherds: Record<string, ShepherdEntry> = {};
          const busyIssues = Array.from({ length: busy }, (_, i) => 100 + i);
          busyIssues.forEach((n, i) => (shepherds[`shepherd-${i + 1}`] = working(n)));
          const readyIssues = Array.from({ length: ready }, (_, i) => issue(i + 1));
          const actions = run({
            config: config((c) => (c.maxShepherds = max)),
            state: state({ shepherds }),
            processes: liveShepherds(...busyIssues),
            issues: [...busyIssues.map((n) => issue(n, [Label.building])), ...readyIssues],
          });
          const spawns = ofType(actions, 'spawn-shepherd');
          const label = `max=${max} busy=${busy} ready=${ready}`;
          expect(spawns.length, label).toBe(Math.max(0, Math.min(max - busy, ready)));
          expect(new Set(spawns.map((s) => s.issue)).size, label).toBe(spawns.length);
          expect(new Set(spawns.map((s) => s.slot)).size, label).toBe(spawns.length);
          for (const s of spawns) expect(Object.keys(shepherds), label).not.toContain(s.slot);
        }
      }
    }
  });

  it('never spawns an issue a live shepherd already owns, even if it still carries loom:issue', () => {
    const actions = run({ state: state({ shepherds: { 'shepherd-1': working(1) } }), processes: liveShepherds(1), issues: [issue(1), issue(2)] });
    expect(spawnedIssues(actions)).toEqual([2]);
  });

  it('never spawns an issue labelled loom:building, nor issues without loom:issue', () => {
    const actions = run({
      issues: [issue(1, [Label.issue, Label.building]), issue(2, [Label.blocked]), issue(3, []), issue(4, [Label.architect]), issue(5, ['bug']), issue(6, [Label.issue, 'bug'])],
    });
    expect(spawnedIssues(actions)).toEqual([6]);
  });

  it('never plans two spawns for one issue when slots outnumber ready issues', () => {
    const actions = run({ issues: [issue(1), issue(2)], config: config((c) => (c.maxShepherds = 5)) });
    expect(spawnedIssues(actions)).toEqual([1, 2]);
  });

  it('never plans two spawns for one issue, even when the snapshot lists it twice', () => {
    const actions = run({ issues: [issue(1), issue(2), issue(1)], config: config((c) => (c.maxShepherds = 5)) });
    expect(spawnedIssues(actions)).toEqual([1, 2]);
  });

  it('spawns nothing when the builder role is disabled, but still records completions', () => {
    const record = progress({ issue: 1, status: 'completed' });
    const actions = run({
      config: config((c) => (c.roles.builder.enabled = false)),
      state: state({ shepherds: { 'shepherd-1': working(1) } }),
      processes: { 'task-1': dead(record) },
      issues: [issue(2), issue(3)],
    });
    expect(actions).toEqual([{ type: 'finish-shepherd', slot: 'shepherd-1', issue: 1, progress: record }]);
  });
});

// ---------------------------------------------------------------------------------------------
// Strays: progress records the state does not know
// ---------------------------------------------------------------------------------------------

describe('plan: stray progress records', () => {
  it('adopts a live stray (manual spawn) into the first free slot; its issue is neither spawned again nor released', () => {
    const record = progress({ issue: 5, task_id: 'manual-5' });
    const actions = run({
      config: config((c) => (c.maxShepherds = 2)),
      state: state({ shepherds: { 'shepherd-1': working(1) } }),
      processes: liveShepherds(1),
      strays: [alive(record)],
      issues: [issue(1, [Label.building]), issue(5, [Label.building]), issue(6)],
    });
    expect(actions).toEqual([{ type: 'adopt-shepherd', slot: 'shepherd-2', issue: 5, progress: record }]);
  });

  it('adopts a live stray whose claim has not happened yet (issue still loom:issue) instead of spawning it', () => {
    const record = progress({ issue: 5, task_id: 'manual-5', status: 'starting', pid: null });
    const actions = run({ strays: [alive(record)], issues: [issue(5), issue(6)] });
    expect(ofType(actions, 'adopt-shepherd')).toEqual([{ type: 'adopt-shepherd', slot: 'shepherd-1', issue: 5, progress: record }]);
    expect(ofType(actions, 'spawn-shepherd')).toEqual([
      { type: 'spawn-shepherd', slot: 'shepherd-2', issue: 6 },
    ]);
  });

  it('an adopted stray takes a slot: fewer spawns follow', () => {
    const actions = run({ strays: [alive(progress({ issue: 5 }))], issues: [issue(5, [Label.building]), issue(1), issue(2), issue(3)] });
    expect(ofType(actions, 'adopt-shepherd').map((a) => a.slot)).toEqual(['shepherd-1']);
    expect(ofType(actions, 'spawn-shepherd')).toEqual([
      { type: 'spawn-shepherd', slot: 'shepherd-2', issue: 1 },
      { type: 'spawn-shepherd', slot: 'shepherd-3', issue: 2 },
    ]);
  });

  it('adopts into a new extra slot when the pool is full, and spawns nothing more', () => {
    const actions = run({
      config: config((c) => (c.maxShepherds = 1)),
      state: state({ shepherds: { 'shepherd-1': working(1) } }),
      processes: liveShepherds(1),
      strays: [alive(progress({ issue: 5 })), alive(progress({ issue: 6 }))],
      issues: [issue(1, [Label.building]), issue(5, [Label.building]), issue(6, [Label.building]), issue(7)],
    });
    expect(ofType(actions, 'adopt-shepherd').map((a) => [a.slot, a.issue])).toEqual([
      ['shepherd-2', 5],
      ['shepherd-3', 6],
    ]);
    expect(spawnedIssues(actions)).toEqual([]);
  });

  it('adopts only one of two live records for the same issue', () => {
    const actions = run({ strays: [alive(progress({ issue: 5, task_id: 'a' })), alive(progress({ issue: 5, task_id: 'b' }))], issues: [issue(5, [Label.building])] });
    expect(ofType(actions, 'adopt-shepherd')).toHaveLength(1);
    expect(ofType(actions, 'adopt-shepherd')[0]?.progress.task_id).toBe('a');
  });

  it('ignores a stray for an issue a live state shepherd owns', () => {
    const actions = run({
      state: state({ shepherds: { 'shepherd-1': working(5) } }),
      processes: liveShepherds(5),
      strays: [alive(progress({ issue: 5, task_id: 'old' })), dead(progress({ issue: 5, task_id: 'older' }))],
      issues: [issue(5, [Label.building])],
    });
    expect(actions).toEqual([]);
  });

  it.each(TERMINAL_STATUSES.map((s): [ProgressStatus] => [s]))('finishes a terminal (%s) stray without a slot, and does not release its issue', (status) => {
    const record = progress({ issue: 5, status });
    const actions = run({ strays: [dead(record)], issues: [issue(5, [Label.building])] });
    expect(actions).toEqual([{ type: 'finish-shepherd', slot: null, issue: 5, progress: record }]);
  });

  it('recovers a dead stray without a slot, with its task id and pid and the counted failures', () => {
    const record = progress({ issue: 5, task_id: 'manual-5', pid: 555 });
    const queue = { '5': { failures: 1, last_failure: '', next_retry_at: '', last_error: '' } };
    const actions = run({ state: state({ spawn_retry_queue: queue }), strays: [dead(record)], issues: [issue(5, [Label.building])] });
    expect(actions).toEqual([{ type: 'recover-shepherd', slot: null, issue: 5, reason: 'dead', failures: 2, block: false, taskId: 'manual-5', pid: 555 }]);
  });

  it('ignores strays without a record or without an issue', () => {
    const actions = run({ strays: [alive(null), dead(null), alive(progress({ issue: null })), dead(progress({ issue: null }))] });
    expect(actions).toEqual([]);
  });

  it('adopts live strays in drain mode too (they must be stopped at the end of the grace)', () => {
    const actions = run({ mode: 'drain', strays: [alive(progress({ issue: 5 }))], issues: [issue(5, [Label.building])] });
    expect(actions.map((a) => a.type)).toEqual(['adopt-shepherd']);
  });

  it('does not recover an issue whose dead state entry is superseded by a live stray', () => {
    const record = progress({ issue: 5, task_id: 'manual-5' });
    const actions = run({
      state: state({ shepherds: { 'shepherd-1': working(5, { task_id: 'task-old' }) } }),
      processes: { 'task-old': dead(null) },
      strays: [alive(record)],
      issues: [issue(5, [Label.building])],
    });
    expect(ofType(actions, 'adopt-shepherd').map((a) => a.issue)).toEqual([5]);
    expect(ofType(actions, 'recover-shepherd')).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------
// Orphans
// ---------------------------------------------------------------------------------------------

describe('plan: orphaned loom:building issues', () => {
  it('releases a loom:building issue no shepherd owns', () => {
    const actions = run({ issues: [issue(1, [Label.building]), issue(2, [Label.building, Label.urgent])], config: config((c) => (c.roles.builder.enabled = false)) });
    expect(actions).toEqual([
      { type: 'release-orphan', issue: 1 },
      { type: 'release-orphan', issue: 2 },
    ]);
  });

  it('does not release an issue owned by a live state shepherd', () => {
    expect(run({ state: state({ shepherds: { 'shepherd-1': working(1) } }), processes: liveShepherds(1), issues: [issue(1, [Label.building])] })).toEqual([]);
  });

  it('does not release an issue this plan already recovers or finishes', () => {
    const actions = run({
      state: state({ shepherds: { 'shepherd-1': working(1), 'shepherd-2': working(2) } }),
      processes: { 'task-1': dead(), 'task-2': dead(progress({ issue: 2, status: 'blocked' })) },
      strays: [dead(progress({ issue: 3 })), dead(progress({ issue: 4, status: 'completed' }))],
      issues: [1, 2, 3, 4].map((n) => issue(n, [Label.building])),
      config: config((c) => (c.roles.builder.enabled = false)),
    });
    expect(ofType(actions, 'release-orphan')).toEqual([]);
    expect(actions.map((a) => [a.type, 'issue' in a ? a.issue : null])).toEqual([
      ['recover-shepherd', 1],
      ['finish-shepherd', 2],
      ['recover-shepherd', 3],
      ['finish-shepherd', 4],
    ]);
  });

  it('an idle slot’s last_issue is not ownership: that loom:building issue is released', () => {
    const actions = run({ state: state({ shepherds: { 'shepherd-1': { ...idleShepherd(), last_issue: 1 } } }), issues: [issue(1, [Label.building])] });
    expect(actions).toEqual([{ type: 'release-orphan', issue: 1 }]);
  });
});

// ---------------------------------------------------------------------------------------------
// Build order and retry backoff
// ---------------------------------------------------------------------------------------------

describe('buildOrder', () => {
  it('puts loom:urgent first, then the oldest, then the lowest number', () => {
    const issues = [
      issue(7, [Label.issue], '2026-01-03T00:00:00.000Z'),
      issue(3, [Label.issue], '2026-01-02T00:00:00.000Z'),
      issue(9, [Label.issue, Label.urgent], '2026-01-05T00:00:00.000Z'),
      issue(2, [Label.issue], '2026-01-02T00:00:00.000Z'),
      issue(8, [Label.issue, Label.urgent], '2026-01-04T00:00:00.000Z'),
      issue(1, [Label.issue], '2026-01-06T00:00:00.000Z'),
    ];
    expect(buildOrder(issues).map((i) => i.number)).toEqual([8, 9, 2, 3, 7, 1]);
  });

  it('does not reorder its input', () => {
    const issues = [issue(2, [Label.issue], '2026-01-02T00:00:00.000Z'), issue(1, [Label.issue], '2026-01-01T00:00:00.000Z')];
    buildOrder(issues);
    expect(issues.map((i) => i.number)).toEqual([2, 1]);
  });

  it('is the order in which the planner spawns', () => {
    const actions = run({
      config: config((c) => (c.maxShepherds = 2)),
      issues: [issue(1, [Label.issue], '2026-01-01T00:00:00.000Z'), issue(2, [Label.issue], '2025-12-01T00:00:00.000Z'), issue(3, [Label.issue, Label.urgent], '2026-01-09T00:00:00.000Z')],
    });
    expect(spawnedIssues(actions)).toEqual([3, 2]);
  });
});

describe('plan: spawn retry backoff', () => {
  const queued = (issueNo: number, nextRetryAt: string, failures = 1) => ({ [String(issueNo)]: { failures, last_failure: ago(1 * MIN), next_retry_at: nextRetryAt, last_error: 'boom' } });

  it('skips an issue whose next_retry_at is in the future and takes the next one', () => {
    const actions = run({ config: config((c) => (c.maxShepherds = 1)), state: state({ spawn_retry_queue: queued(1, iso(NOW + 1)) }), issues: [issue(1), issue(2)] });
    expect(spawnedIssues(actions)).toEqual([2]);
  });

  it('spawns an issue whose next_retry_at has passed (or is now)', () => {
    expect(spawnedIssues(run({ state: state({ spawn_retry_queue: queued(1, iso(NOW - 1)) }), issues: [issue(1)] }))).toEqual([1]);
    expect(spawnedIssues(run({ state: state({ spawn_retry_queue: queued(1, iso(NOW)) }), issues: [issue(1)] }))).toEqual([1]);
  });

  it('treats a missing or unreadable next_retry_at (legacy queue) as due', () => {
    expect(spawnedIssues(run({ state: state({ spawn_retry_queue: queued(1, '') }), issues: [issue(1)] }))).toEqual([1]);
    expect(spawnedIssues(run({ state: state({ spawn_retry_queue: queued(1, 'not a time') }), issues: [issue(1)] }))).toEqual([1]);
  });

  it('backoff applies even to urgent issues', () => {
    const actions = run({ state: state({ spawn_retry_queue: queued(1, iso(NOW + 10 * MIN)) }), issues: [issue(1, [Label.issue, Label.urgent])] });
    expect(spawnedIssues(actions)).toEqual([]);
  });
});

describe('retryBackoff', () => {
  it('starts at the poll interval and doubles with every failure', () => {
    expect(retryBackoff(1, 30 * SEC)).toBe(30 * SEC);
    expect(retryBackoff(2, 30 * SEC)).toBe(60 * SEC);
    expect(retryBackoff(3, 30 * SEC)).toBe(120 * SEC);
    expect(retryBackoff(6, 30 * SEC)).toBe(960 * SEC);
  });

  it('treats zero or negative failures like the first', () => {
    expect(retryBackoff(0, 30 * SEC)).toBe(30 * SEC);
    expect(retryBackoff(-3, 30 * SEC)).toBe(30 * SEC);
  });

  it('is capped at MAX_RETRY_BACKOFF_MS (30 min)', () => {
    expect(MAX_RETRY_BACKOFF_MS).toBe(30 * MIN);
    expect(retryBackoff(7, 30 * SEC)).toBe(30 * MIN);
    expect(retryBackoff(100, 30 * SEC)).toBe(30 * MIN);
    expect(retryBackoff(1, 60 * MIN)).toBe(30 * MIN);
  });

  it('takes the cap from the config (maxRetryBackoff)', () => {
    expect(retryBackoff(7, 30 * SEC, 5 * MIN)).toBe(5 * MIN);
    expect(retryBackoff(2, 30 * SEC, 5 * MIN)).toBe(60 * SEC);
    expect(retryBackoff(20, 30 * SEC, 2 * 60 * MIN)).toBe(2 * 60 * MIN);
  });
});

// ---------------------------------------------------------------------------------------------
// Force mode
// ---------------------------------------------------------------------------------------------

describe('plan: force-mode promotion', () => {
  it('promotes loom:architect, loom:hermit and loom:curated issues, naming the label it promotes from', () => {
    const actions = run({
      force: true,
      config: config((c) => (c.roles.builder.enabled = false)),
      issues: [issue(1, [Label.architect]), issue(2, [Label.hermit]), issue(3, [Label.curated]), issue(4, [Label.issue]), issue(5, ['enhancement'])],
    });
    expect(ofType(actions, 'promote')).toEqual([
      { type: 'promote', issue: 1, from: Label.architect },
      { type: 'promote', issue: 2, from: Label.hermit },
      { type: 'promote', issue: 3, from: Label.curated },
    ]);
  });

  it('does not promote a proposal that is already loom:building', () => {
    const actions = run({ force: true, state: state({ shepherds: { 'shepherd-1': working(1) } }), processes: liveShepherds(1), issues: [issue(1, [Label.architect, Label.building])] });
    expect(ofType(actions, 'promote')).toEqual([]);
  });

  it('makes the promoted issues spawn candidates in the same plan, after the promotion', () => {
    const actions = run({ force: true, config: config((c) => (c.maxShepherds = 2)), issues: [issue(1, [Label.architect]), issue(2, [Label.hermit, Label.urgent])] });
    expect(actions).toEqual([
      { type: 'promote', issue: 1, from: Label.architect },
      { type: 'promote', issue: 2, from: Label.hermit },
      { type: 'spawn-shepherd', slot: 'shepherd-1', issue: 2 },
      { type: 'spawn-shepherd', slot: 'shepherd-2', issue: 1 },
    ]);
  });

  it('promotes nothing and spawns no proposal without force', () => {
    const actions = run({ issues: [issue(1, [Label.architect]), issue(2, [Label.hermit]), issue(3, [Label.curated])] });
    expect(actions).toEqual([]);
  });

  it('promoted issues no longer count as open proposals for work generation', () => {
    const proposals = [1, 2, 3, 4, 5].map((n) => issue(n, [Label.architect]));
    const cfg = config((c) => {
      enable('architect')(c);
      c.issueThreshold = 10;
      c.roles.builder.enabled = false;
    });
    expect(roleSpawns(run({ config: cfg, issues: proposals }))).toEqual([]);
    expect(roleSpawns(run({ config: cfg, issues: proposals, force: true }))).toEqual([['architect', 'low-backlog']]);
  });
});

// ---------------------------------------------------------------------------------------------
// Work generation
// ---------------------------------------------------------------------------------------------

describe('plan: work generation (Architect, Hermit)', () => {
  const gen = (over: Partial<Scenario> & { cfg?: (c: LoomConfig) => void } = {}) => {
    const { cfg, ...rest } = over;
    return roleSpawns(
      run({
        config: config((c) => {
          enable('architect', 'hermit')(c);
          c.roles.builder.enabled = false;
          cfg?.(c);
        }),
        ...rest,
      }),
    );
  };

  it('triggers both when the backlog is empty and they never ran', () => {
    expect(gen()).toEqual([
      ['architect', 'low-backlog'],
      ['hermit', 'low-backlog'],
    ]);
  });

  it('gate: ready issues must be below issueThreshold', () => {
    expect(gen({ issues: [issue(1), issue(2)] })).toHaveLength(2);
    expect(gen({ issues: [issue(1), issue(2), issue(3)] })).toEqual([]);
    expect(gen({ issues: [issue(1)], cfg: (c) => (c.issueThreshold = 1) })).toEqual([]);
  });

  it('building and blocked issues do not count as ready', () => {
    expect(gen({ issues: [issue(1, [Label.building]), issue(2, [Label.blocked]), issue(3, [Label.building]), issue(4)] })).toHaveLength(2);
  });

  it('gate: open proposals must be below maxProposals', () => {
    const proposals = (n: number) => Array.from({ length: n }, (_, i) => issue(i + 1, [i % 2 === 0 ? Label.architect : Label.hermit]));
    expect(gen({ issues: proposals(4) })).toHaveLength(2);
    expect(gen({ issues: proposals(5) })).toEqual([]);
    expect(gen({ issues: proposals(1), cfg: (c) => (c.maxProposals = 1) })).toEqual([]);
  });

  it('gate: the cooldown since the last start must have elapsed', () => {
    const roles = (architectStarted: number, hermitStarted: number) => ({
      architect: idleRoleEntry({ started: ago(architectStarted), last_completed: ago(1 * MIN) }),
      hermit: idleRoleEntry({ started: ago(hermitStarted), last_completed: ago(1 * MIN) }),
    });
    expect(gen({ state: state({ support_roles: roles(29 * MIN, 31 * MIN) }) })).toEqual([['hermit', 'low-backlog']]);
    expect(gen({ state: state({ support_roles: roles(30 * MIN, 10 * MIN) }) })).toEqual([['architect', 'low-backlog']]);
    expect(gen({ state: state({ support_roles: roles(5 * MIN, 5 * MIN) }), cfg: (c) => (c.roles.architect.interval = 2 * MIN) })).toEqual([['architect', 'low-backlog']]);
  });

  it('gate: a generator that is still running is not triggered again', () => {
    const actions = run({
      config: config((c) => {
        enable('architect', 'hermit')(c);
        c.roles.builder.enabled = false;
      }),
      state: state({ support_roles: { architect: runningRole('architect', { started: ago(40 * MIN) }) } }),
      processes: { 'role-architect': alive(roleProgress('architect')) },
    });
    expect(roleSpawns(actions)).toEqual([['hermit', 'low-backlog']]);
  });

  it('gate: a disabled generator is never triggered', () => {
    expect(gen({ cfg: (c) => (c.roles.architect.enabled = false) })).toEqual([['hermit', 'low-backlog']]);
    expect(gen({ cfg: (c) => (c.roles.hermit.enabled = false) })).toEqual([['architect', 'low-backlog']]);
  });
});

// ---------------------------------------------------------------------------------------------
// Support roles
// ---------------------------------------------------------------------------------------------

describe('plan: support roles (Guide, Champion, Doctor, Judge)', () => {
  const support = (over: Partial<Scenario> & { cfg?: (c: LoomConfig) => void } = {}) => {
    const { cfg, ...rest } = over;
    return roleSpawns(
      run({
        config: config((c) => {
          enable('guide', 'champion', 'doctor', 'judge')(c);
          cfg?.(c);
        }),
        ...rest,
      }),
    );
  };
  const completed = (ages: Partial<Record<DaemonRole, number>>): Record<string, RoleEntry> =>
    Object.fromEntries(Object.entries(ages).map(([role, age]) => [role, idleRoleEntry({ started: ago((age ?? 0) + MIN), last_completed: ago(age ?? 0), last_outcome: 'completed' })]));

  /** One PR waiting for each of Champion, Doctor and Judge. */
  const work = [pr(50, [Label.pr]), pr(51, [Label.changesRequested]), pr(52, [Label.reviewRequested])];

  it('a role that never ran is due', () => {
    expect(support({ prs: work })).toEqual([
      ['guide', 'interval'],
      ['champion', 'interval'],
      ['doctor', 'interval'],
      ['judge', 'interval'],
    ]);
  });

  it('Champion, Doctor and Judge never start while no PR waits for them, however long since their last run', () => {
    expect(support()).toEqual([['guide', 'interval']]);
    expect(support({ state: state({ support_roles: completed({ guide: 0, champion: 600 * MIN, doctor: 600 * MIN, judge: 600 * MIN }) }), prs: [pr(50, ['documentation']), pr(51, [Label.pr], 7)], issues: [issue(7, [Label.blocked])] })).toEqual([]);
    // Only the role a PR waits for.
    expect(support({ state: state({ support_roles: completed({ guide: 0 }) }), prs: [pr(52, [Label.reviewRequested])] })).toEqual([['judge', 'interval']]);
  });

  it('is due again last_completed + interval (guide 15, champion 10, doctor 5, judge 5 min)', () => {
    // Before the interval a waiting PR still calls its role, on demand.
    expect(support({ prs: work, state: state({ support_roles: completed({ guide: 14 * MIN, champion: 9 * MIN, doctor: 4 * MIN, judge: 4 * MIN }) }) })).toEqual([
      ['champion', 'demand'],
      ['doctor', 'demand'],
      ['judge', 'demand'],
    ]);
    expect(support({ prs: work, state: state({ support_roles: completed({ guide: 15 * MIN, champion: 10 * MIN, doctor: 5 * MIN, judge: 5 * MIN }) }) })).toEqual([
      ['guide', 'interval'],
      ['champion', 'interval'],
      ['doctor', 'interval'],
      ['judge', 'interval'],
    ]);
  });

  it('the Curator is a support role too: when enabled it runs on its interval (30 min)', () => {
    const curator = (age: number | null) =>
      support({ cfg: enable('curator'), state: state({ support_roles: completed({ guide: 0, champion: 0, doctor: 0, judge: 0, ...(age === null ? {} : { curator: age }) }) }) });
    expect(curator(null)).toEqual([['curator', 'interval']]);
    expect(curator(29 * MIN)).toEqual([]);
    expect(curator(30 * MIN)).toEqual([['curator', 'interval']]);
  });

  it('uses the configured interval', () => {
    expect(support({ cfg: (c) => (c.roles.guide.interval = 1 * MIN), state: state({ support_roles: completed({ guide: 2 * MIN, champion: 0, doctor: 0, judge: 0 }) }) })).toEqual([['guide', 'interval']]);
  });

  it('a disabled role is never started', () => {
    expect(support({ cfg: (c) => (c.roles.guide.enabled = false), state: state({ support_roles: completed({ champion: 0, doctor: 0, judge: 0 }) }) })).toEqual([]);
  });

  it('a running role is not started again', () => {
    const actions = support({
      state: state({ support_roles: { ...completed({ champion: 0, doctor: 0, judge: 0 }), guide: runningRole('guide') } }),
      processes: { 'role-guide': alive(roleProgress('guide')) },
    });
    expect(actions).toEqual([]);
  });

  it.each([
    ['champion', Label.pr],
    ['doctor', Label.changesRequested],
    ['judge', Label.reviewRequested],
  ] as const)('%s runs on demand for a PR labelled %s, after DEMAND_COOLDOWN_MS', (role, label) => {
    const roles = completed({ guide: 0, champion: 2 * MIN, doctor: 2 * MIN, judge: 2 * MIN });
    expect(support({ state: state({ support_roles: roles }), prs: [pr(50, [label])], cfg: (c) => (c.roles[role].interval = 30 * MIN) })).toEqual([[role, 'demand']]);
    // Within the demand cooldown: not yet.
    const recent = completed({ guide: 0, champion: DEMAND_COOLDOWN_MS - 1, doctor: DEMAND_COOLDOWN_MS - 1, judge: DEMAND_COOLDOWN_MS - 1 });
    expect(support({ state: state({ support_roles: recent }), prs: [pr(50, [label])] })).toEqual([]);
    const exactly = completed({ guide: 0, champion: DEMAND_COOLDOWN_MS, doctor: DEMAND_COOLDOWN_MS, judge: DEMAND_COOLDOWN_MS });
    expect(support({ state: state({ support_roles: exactly }), prs: [pr(50, [label])] })).toEqual([[role, 'demand']]);
  });

  it('without a waiting PR nothing runs before its interval', () => {
    const roles = completed({ guide: 2 * MIN, champion: 2 * MIN, doctor: 2 * MIN, judge: 2 * MIN });
    expect(support({ state: state({ support_roles: roles }), prs: [pr(50, ['documentation'])] })).toEqual([]);
  });

  it('a disabled role is not started on demand either', () => {
    const roles = completed({ guide: 0, champion: 2 * MIN, doctor: 2 * MIN, judge: 2 * MIN });
    expect(support({ state: state({ support_roles: roles }), prs: [pr(50, [Label.reviewRequested])], cfg: (c) => (c.roles.judge.enabled = false) })).toEqual([]);
  });

  it('ignores demand from PRs whose issue an active shepherd owns (that shepherd handles its own PR)', () => {
    const roles = completed({ guide: 0, champion: 2 * MIN, doctor: 2 * MIN, judge: 2 * MIN });
    const prs = [pr(50, [Label.reviewRequested], 7), pr(51, [Label.changesRequested], 7), pr(52, [Label.pr], 7)];
    const owned = support({ state: state({ support_roles: roles, shepherds: { 'shepherd-1': working(7) } }), processes: liveShepherds(7), issues: [issue(7, [Label.building])], prs });
    expect(owned).toEqual([]);
    // The same PRs with no shepherd behind them create demand.
    const unowned = support({ state: state({ support_roles: roles }), prs: prs.map((p) => ({ ...p, closesIssue: null })) });
    expect(unowned).toEqual([
      ['champion', 'demand'],
      ['doctor', 'demand'],
      ['judge', 'demand'],
    ]);
  });

  it('ignores demand from PRs whose issue is blocked or aborted: the support roles leave those alone', () => {
    const roles = completed({ guide: 0, champion: 2 * MIN, doctor: 2 * MIN, judge: 2 * MIN });
    const prs = [pr(50, [Label.reviewRequested], 7), pr(51, [Label.changesRequested], 8), pr(52, [Label.pr], 7)];
    expect(support({ state: state({ support_roles: roles }), issues: [issue(7, [Label.blocked]), issue(8, [Label.abort])], prs })).toEqual([]);
    // Unblocked, the same PRs create demand again.
    expect(support({ state: state({ support_roles: roles }), issues: [issue(7, [Label.urgent]), issue(8, [])], prs })).toEqual([
      ['champion', 'demand'],
      ['doctor', 'demand'],
      ['judge', 'demand'],
    ]);
  });

  it('a PR of an issue whose shepherd finishes in this plan creates demand again', () => {
    const roles = completed({ guide: 0, champion: 2 * MIN, doctor: 2 * MIN, judge: 2 * MIN });
    const actions = support({
      state: state({ support_roles: roles, shepherds: { 'shepherd-1': working(7) } }),
      processes: { 'task-7': dead(progress({ issue: 7, status: 'blocked' })) },
      prs: [pr(50, [Label.reviewRequested], 7)],
    });
    expect(actions).toEqual([['judge', 'demand']]);
  });

  it('a PR that closes an issue nobody owns counts, even when other issues are owned', () => {
    const roles = completed({ guide: 0, champion: 2 * MIN, doctor: 2 * MIN, judge: 2 * MIN });
    const actions = support({
      state: state({ support_roles: roles, shepherds: { 'shepherd-1': working(7) } }),
      processes: liveShepherds(7),
      issues: [issue(7, [Label.building])],
      prs: [pr(50, [Label.reviewRequested], 7), pr(51, [Label.reviewRequested], 8)],
    });
    expect(actions).toEqual([['judge', 'demand']]);
  });

  it('a role finishing in this plan is not started again in the same plan', () => {
    const actions = run({
      config: config(enable('guide')),
      state: state({ support_roles: { guide: runningRole('guide', { started: ago(20 * MIN), last_completed: ago(40 * MIN) }) } }),
      processes: { 'role-guide': dead(roleProgress('guide', { status: 'completed' })) },
    });
    expect(ofType(actions, 'finish-role')).toEqual([{ type: 'finish-role', role: 'guide', outcome: 'completed' }]);
    expect(roleSpawns(actions)).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------
// Role completions and stuck roles
// ---------------------------------------------------------------------------------------------

describe('plan: role completions and stuck roles', () => {
  const roleScenario = (entry: RoleEntry, view: ProcessView | undefined, cfg: (c: LoomConfig) => void = () => {}) =>
    run({
      config: config((c) => {
        c.roles.builder.enabled = false;
        cfg(c);
      }),
      state: state({ support_roles: { judge: entry } }),
      processes: view ? { 'role-judge': view } : {},
    });

  it.each(['completed', 'failed', 'stopped'] as const)('a terminal %s record finishes the role with that outcome', (status) => {
    expect(roleScenario(runningRole('judge'), dead(roleProgress('judge', { status })))).toEqual([{ type: 'finish-role', role: 'judge', outcome: status }]);
  });

  it('a finished run that merged PRs (the Champion) says how many, so the merges are counted', () => {
    expect(roleScenario(runningRole('judge'), dead(roleProgress('judge', { status: 'completed', merged_prs: [4, 6] })))).toEqual([{ type: 'finish-role', role: 'judge', outcome: 'completed', merged: 2 }]);
    expect(roleScenario(runningRole('judge'), dead(roleProgress('judge', { status: 'completed', merged_prs: [] })))).toEqual([{ type: 'finish-role', role: 'judge', outcome: 'completed' }]);
  });

  it('a dead role process without a terminal record finished as crashed', () => {
    expect(roleScenario(runningRole('judge'), dead(null))).toEqual([{ type: 'finish-role', role: 'judge', outcome: 'crashed' }]);
    expect(roleScenario(runningRole('judge'), dead(roleProgress('judge', { status: 'running' })))).toEqual([{ type: 'finish-role', role: 'judge', outcome: 'crashed' }]);
    expect(roleScenario(runningRole('judge'), undefined)).toEqual([{ type: 'finish-role', role: 'judge', outcome: 'crashed' }]);
    expect(roleScenario(runningRole('judge', { task_id: null }), alive(roleProgress('judge')))).toEqual([{ type: 'finish-role', role: 'judge', outcome: 'crashed' }]);
  });

  it('finishes roles even while disabled (a role switched off while running)', () => {
    expect(roleScenario(runningRole('judge'), dead(roleProgress('judge', { status: 'completed' })), (c) => (c.roles.judge.enabled = false))).toEqual([
      { type: 'finish-role', role: 'judge', outcome: 'completed' },
    ]);
  });

  it('a healthy running role produces nothing', () => {
    expect(roleScenario(runningRole('judge', { started: ago(5 * MIN) }), alive(roleProgress('judge')))).toEqual([]);
  });

  it('kills a role running past its timeout', () => {
    const cfg = (c: LoomConfig) => (c.roles.judge.timeout = 20 * MIN);
    expect(roleScenario(runningRole('judge', { started: ago(20 * MIN + 1) }), alive(roleProgress('judge')), cfg)).toEqual([{ type: 'kill-role', role: 'judge', reason: 'timeout' }]);
    expect(roleScenario(runningRole('judge', { started: ago(20 * MIN) }), alive(roleProgress('judge')), cfg)).toEqual([]);
  });

  it('kills a role whose heartbeat is older than stallTimeout', () => {
    expect(roleScenario(runningRole('judge'), alive(roleProgress('judge', { heartbeat: ago(10 * MIN + 1) })))).toEqual([{ type: 'kill-role', role: 'judge', reason: 'stalled' }]);
    expect(roleScenario(runningRole('judge'), alive(roleProgress('judge', { heartbeat: ago(10 * MIN) })))).toEqual([]);
  });

  it('timeout wins over a stale heartbeat (one kill per role)', () => {
    const actions = roleScenario(runningRole('judge', { started: ago(2 * 60 * MIN) }), alive(roleProgress('judge', { heartbeat: ago(60 * MIN) })));
    expect(actions).toEqual([{ type: 'kill-role', role: 'judge', reason: 'timeout' }]);
  });

  it('stuck-role kills come last, after spawns and role starts', () => {
    const actions = run({
      config: config(enable('guide', 'judge')),
      state: state({ support_roles: { judge: runningRole('judge', { started: ago(2 * 60 * MIN) }) } }),
      processes: { 'role-judge': alive(roleProgress('judge')) },
      issues: [issue(1)],
    });
    expect(actions).toEqual([
      { type: 'spawn-shepherd', slot: 'shepherd-1', issue: 1 },
      { type: 'spawn-role', role: 'guide', reason: 'interval' },
      { type: 'kill-role', role: 'judge', reason: 'timeout' },
    ]);
  });

  it('ignores idle roles and roles that are not daemon roles', () => {
    const actions = run({
      config: config((c) => (c.roles.builder.enabled = false)),
      state: state({ support_roles: { judge: idleRoleEntry({ last_completed: ago(MIN) }), builder: runningRole('judge', { task_id: 'bld' }) } }),
      processes: {},
    });
    expect(actions).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------
// Modes: drain and stop
// ---------------------------------------------------------------------------------------------

describe('plan: modes', () => {
  /** Everything at once: completions, deaths, a stall, strays, ready work, proposals, due roles, demand. */
  const busyWorld = (mode: Mode): Action[] =>
    run({
      mode,
      force: true,
      config: config(enable('architect', 'hermit', 'guide', 'champion', 'doctor', 'judge')),
      state: state({
        shepherds: { 'shepherd-1': working(1), 'shepherd-2': working(2), 'shepherd-3': working(3), 'shepherd-4': working(4) },
        support_roles: {
          judge: runningRole('judge', { started: ago(2 * 60 * MIN) }),
          doctor: runningRole('doctor'),
          champion: runningRole('champion'),
        },
      }),
      processes: {
        'task-1': dead(progress({ issue: 1, status: 'completed' })),
        'task-2': dead(),
        'task-3': alive(progress({ issue: 3, heartbeat: ago(30 * MIN) })),
        'task-4': alive(progress({ issue: 4 })),
        'role-judge': alive(roleProgress('judge')),
        'role-doctor': dead(roleProgress('doctor', { status: 'completed' })),
        'role-champion': alive(roleProgress('champion')),
      },
      strays: [alive(progress({ issue: 9, task_id: 'manual-9' }))],
      issues: [issue(1, [Label.building]), issue(2, [Label.building]), issue(3, [Label.building]), issue(4, [Label.building]), issue(9, [Label.building]), issue(10), issue(11, [Label.architect])],
      prs: [pr(60, [Label.pr]), pr(61, [Label.reviewRequested])],
    });

  it('normal mode, for reference, starts work', () => {
    const types = new Set(busyWorld('normal').map((a) => a.type));
    expect(types).toContain('promote');
    expect(types).toContain('spawn-role');
  });

  it('drain: no spawns, promotions or role starts; completions, adoption and stuck checks still happen', () => {
    const actions = busyWorld('drain');
    const types = actions.map((a) => a.type);
    expect(types).not.toContain('spawn-shepherd');
    expect(types).not.toContain('promote');
    expect(types).not.toContain('spawn-role');
    expect(types).not.toContain('stop-shepherd');
    expect(types).not.toContain('stop-role');
    expect(actions).toContainEqual(expect.objectContaining({ type: 'finish-shepherd', slot: 'shepherd-1', issue: 1 }));
    expect(actions).toContainEqual(expect.objectContaining({ type: 'recover-shepherd', slot: 'shepherd-2', issue: 2, reason: 'dead' }));
    expect(actions).toContainEqual(expect.objectContaining({ type: 'adopt-shepherd', issue: 9 }));
    expect(actions).toContainEqual({ type: 'finish-role', role: 'doctor', outcome: 'completed' });
    // Stuck checks are still made, and still last.
    expect(actions.slice(-2)).toEqual([
      expect.objectContaining({ type: 'recover-shepherd', slot: 'shepherd-3', issue: 3, reason: 'stalled' }),
      { type: 'kill-role', role: 'judge', reason: 'timeout' },
    ]);
  });

  it('drain with ready issues and free slots spawns nothing', () => {
    expect(run({ mode: 'drain', issues: [issue(1), issue(2)], config: config(enable('guide', 'architect')) })).toEqual([]);
  });

  it('stop: stops every live shepherd (including stalled and adopted ones) and every running role, and starts nothing', () => {
    const actions = busyWorld('stop');
    const types = actions.map((a) => a.type);
    expect(types).not.toContain('spawn-shepherd');
    expect(types).not.toContain('promote');
    expect(types).not.toContain('spawn-role');
    const stops = ofType(actions, 'stop-shepherd').map((a) => [a.slot, a.issue]);
    expect(stops).toHaveLength(3);
    expect(stops).toEqual(expect.arrayContaining([['shepherd-3', 3], ['shepherd-4', 4]]));
    const adopted = ofType(actions, 'adopt-shepherd')[0];
    expect(adopted?.issue).toBe(9);
    expect(stops).toContainEqual([adopted?.slot, 9]);
    // Finished and dead shepherds are recorded, not stopped.
    expect(actions).toContainEqual(expect.objectContaining({ type: 'finish-shepherd', issue: 1 }));
    expect(actions).toContainEqual(expect.objectContaining({ type: 'recover-shepherd', issue: 2, reason: 'dead' }));
    expect(ofType(actions, 'stop-role').map((a) => a.role).sort()).toEqual(['champion', 'judge']);
    // Each running role is ended once: stopped, not also killed as stuck.
    expect(ofType(actions, 'kill-role')).toEqual([]);
    expect(actions).toContainEqual({ type: 'finish-role', role: 'doctor', outcome: 'completed' });
  });

  it('stop with nothing running plans nothing', () => {
    expect(run({ mode: 'stop', issues: [issue(1)], config: config(enable('guide')) })).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------
// Purity and slot names
// ---------------------------------------------------------------------------------------------

describe('plan: purity', () => {
  it('does not modify its input and gives the same plan twice', () => {
    const s = state({ shepherds: { 'shepherd-1': working(1), 'shepherd-2': working(2) }, support_roles: { guide: runningRole('guide') } });
    const scenario: Scenario = {
      state: s,
      force: true,
      config: config(enable('guide', 'architect')),
      processes: { 'task-1': dead(progress({ issue: 1, status: 'completed' })), 'task-2': alive(progress({ issue: 2 })), 'role-guide': dead(null) },
      strays: [alive(progress({ issue: 5 }))],
      issues: [issue(1, [Label.building]), issue(2, [Label.building]), issue(3), issue(4, [Label.hermit]), issue(5, [Label.building])],
    };
    const before = structuredClone(scenario);
    const first = run(scenario);
    expect(scenario).toEqual(before);
    expect(run(scenario)).toEqual(first);
  });
});

describe('shepherdSlotNames', () => {
  it('is shepherd-1 … shepherd-N', () => {
    expect(shepherdSlotNames(state(), 3)).toEqual(['shepherd-1', 'shepherd-2', 'shepherd-3']);
  });

  it('adds extra slots that are working, not idle ones', () => {
    const s = state({ shepherds: { 'shepherd-5': working(5), 'shepherd-7': idleShepherd(), 'shepherd-2': working(2) } });
    expect(shepherdSlotNames(s, 2)).toEqual(['shepherd-1', 'shepherd-2', 'shepherd-5']);
  });
});

// ---------------------------------------------------------------------------------------------
// Dependencies between issues
// ---------------------------------------------------------------------------------------------

describe('plan: dependencies', () => {
  it('an issue with an open dependency is not built; the next one in line takes the slot', () => {
    const actions = run({ issues: [issue(1), issue(2), issue(3)], config: config((c) => (c.maxShepherds = 2)), dependencies: { '1': [{ number: 2, state: 'open' }], '3': [{ number: 9, state: 'done' }] } });
    expect(spawnedIssues(actions)).toEqual([2, 3]);
  });

  it('a chain builds one link at a time as dependencies close', () => {
    const chain = (s1: 'open' | 'done', s2: 'open' | 'done'): DependencyMap => ({ '2': [{ number: 1, state: s1 }], '3': [{ number: 2, state: s2 }] });
    expect(spawnedIssues(run({ issues: [issue(1), issue(2), issue(3)], dependencies: chain('open', 'open') }))).toEqual([1]);
    expect(spawnedIssues(run({ issues: [issue(2), issue(3)], dependencies: chain('done', 'open') }))).toEqual([2]);
    expect(spawnedIssues(run({ issues: [issue(3)], dependencies: chain('done', 'done') }))).toEqual([3]);
  });

  it('a cycle is reported once, on its smallest issue, and its issues are not built', () => {
    const dependencies: DependencyMap = { '4': [{ number: 5, state: 'open' }], '5': [{ number: 4, state: 'open' }] };
    const actions = run({ issues: [issue(4), issue(5)], dependencies });
    expect(spawnedIssues(actions)).toEqual([]);
    expect(ofType(actions, 'report-dependency')).toEqual([{ type: 'report-dependency', issue: 4, kind: 'cycle', numbers: [4, 5], key: 'cycle:4,5' }]);
    expect(ofType(run({ issues: [issue(4), issue(5)], dependencies, state: state({ dependency_reports: ['cycle:4,5'] }) }), 'report-dependency')).toEqual([]);
  });

  it('a cycle broken and formed again is reported again; one whose issues were not all read is not taken as broken', () => {
    const reported = state({ dependency_reports: ['cycle:4,5'] });
    // #5's line taken out: it has no entry (readDependencies keeps none for an issue without dependencies), read in full.
    const broken: DependencyMap = { '4': [{ number: 5, state: 'open' }] };
    const forgotten = run({ issues: [issue(4), issue(5)], dependencies: broken, dependenciesRead: [4, 5], state: reported });
    expect(ofType(forgotten, 'forget-dependency-reports')).toEqual([{ type: 'forget-dependency-reports', keys: ['cycle:4,5'] }]);
    // The same, but #5's read failed this time (guessed): not known to be broken.
    expect(ofType(run({ issues: [issue(4), issue(5)], dependencies: broken, dependenciesRead: [4], state: reported }), 'forget-dependency-reports')).toEqual([]);
    // Formed again, once forgotten: reported again.
    const cycle: DependencyMap = { '4': [{ number: 5, state: 'open' }], '5': [{ number: 4, state: 'open' }] };
    expect(ofType(run({ issues: [issue(4), issue(5)], dependencies: cycle, state: state({ dependency_reports: [] }) }), 'report-dependency').map((a) => a.key)).toEqual(['cycle:4,5']);
    // Still there: neither forgotten nor reported again.
    const still = run({ issues: [issue(4), issue(5)], dependencies: cycle, dependenciesRead: [4, 5], state: reported });
    expect(ofType(still, 'forget-dependency-reports')).toEqual([]);
    expect(ofType(still, 'report-dependency')).toEqual([]);
    // Issue 5 not read at all this time: not known to be broken.
    expect(ofType(run({ issues: [issue(4)], dependencies: { '4': [{ number: 5, state: 'open' }] }, dependenciesRead: [4], state: reported }), 'forget-dependency-reports')).toEqual([]);
    // A not-planned dependency taken out of the issue is forgotten too; one whose read failed (guessed open) is not.
    const notPlanned = state({ dependency_reports: ['not-planned:6:2'] });
    expect(ofType(run({ issues: [issue(6)], dependencies: {}, dependenciesRead: [6], state: notPlanned }), 'forget-dependency-reports')).toEqual([{ type: 'forget-dependency-reports', keys: ['not-planned:6:2'] }]);
    expect(ofType(run({ issues: [issue(6)], dependencies: { '6': [{ number: 2, state: 'open' }] }, dependenciesRead: [], state: notPlanned }), 'forget-dependency-reports')).toEqual([]);
  });

  it('a dependency closed as not planned is reported and no longer waited for', () => {
    const actions = run({ issues: [issue(6)], dependencies: { '6': [{ number: 2, state: 'not-planned' }] } });
    expect(spawnedIssues(actions)).toEqual([6]);
    expect(ofType(actions, 'report-dependency').map((a) => a.key)).toEqual(['not-planned:6:2']);
  });

  it('nothing is reported while draining', () => {
    expect(run({ issues: [issue(4), issue(5)], mode: 'drain', dependencies: { '4': [{ number: 5, state: 'open' }], '5': [{ number: 4, state: 'open' }] } })).toEqual([]);
  });
});

describe('plan: overlap avoidance', () => {
  const busy = (n: number) => ({ state: state({ shepherds: { 'shepherd-1': working(n) } }), processes: { [`task-${n}`]: { alive: true, progress: progress({ issue: n }) } } });
  const shepherd = (issueNo: number, files: string[]) => ({ issue: issueNo, pr: null, running: true, awaitsPerson: false, files });
  const openPr = (issueNo: number, prNo: number, files: string[], awaitsPerson: boolean) => ({ issue: issueNo, pr: prNo, running: false, awaitsPerson, files });

  it('an issue whose files overlap a running shepherd waits; the next one in line takes the slot', () => {
    const overlap: OverlapFacts = { predicted: { '2': ['src/x.ts'], '3': ['src/y.ts'] }, work: [shepherd(1, ['src/x.ts', 'README.md'])] };
    expect(spawnedIssues(run({ ...busy(1), issues: [issue(1, [Label.building]), issue(2), issue(3)], overlap }))).toEqual([3]);
  });

  it('two ready issues naming the same file never start in the same iteration', () => {
    const overlap: OverlapFacts = { predicted: { '1': ['src/x.ts'], '2': ['x.ts', 'src/z.ts'], '3': [] }, work: [] };
    expect(spawnedIssues(run({ issues: [issue(1), issue(2), issue(3)], overlap }))).toEqual([1, 3]);
  });

  it('an issue overlapping a running shepherd or a PR Loom moves on never starts, even with nothing else ready', () => {
    expect(spawnedIssues(run({ ...busy(1), issues: [issue(1, [Label.building]), issue(2)], overlap: { predicted: { '2': ['src/x.ts'] }, work: [shepherd(1, ['src/x.ts'])] } }))).toEqual([]);
    expect(spawnedIssues(run({ issues: [issue(2)], overlap: { predicted: { '2': ['src/x.ts'] }, work: [openPr(1, 7, ['src/x.ts'], false)] } }))).toEqual([]);
  });

  it('an issue in the way only of PRs waiting for a person starts when nothing else does', () => {
    const overlap: OverlapFacts = { predicted: { '2': ['src/x.ts'], '3': ['src/x.ts'], '4': ['docs/a.md'] }, work: [openPr(1, 7, ['src/x.ts'], true)] };
    expect(spawnedIssues(run({ issues: [issue(2), issue(3)], overlap }))).toEqual([2]);
    // Something else starts: it waits.
    expect(spawnedIssues(run({ issues: [issue(2), issue(4)], overlap }))).toEqual([4]);
  });

  it('its own earlier PR is no overlap; overlap: allow ignores the files', () => {
    expect(spawnedIssues(run({ issues: [issue(2)], overlap: { predicted: { '2': ['src/x.ts'] }, work: [openPr(2, 8, ['src/x.ts'], false)] } }))).toEqual([2]);
    const overlap: OverlapFacts = { predicted: { '2': ['src/x.ts'] }, work: [shepherd(1, ['src/x.ts'])] };
    expect(spawnedIssues(run({ ...busy(1), issues: [issue(1, [Label.building]), issue(2)], overlap, config: config((c) => (c.overlap = 'allow')) }))).toEqual([2]);
  });
});

describe('plan: disk-aware admission', () => {
  it('starts no shepherd while free disk space is below minFreeDisk; resumes at or above it; unknown space does not stop it', () => {
    const c = config((x) => (x.minFreeDisk = 2e9));
    expect(spawnedIssues(run({ issues: [issue(1)], config: c, freeDisk: 2e9 - 1 }))).toEqual([]);
    expect(spawnedIssues(run({ issues: [issue(1)], config: c, freeDisk: 2e9 }))).toEqual([1]);
    expect(spawnedIssues(run({ issues: [issue(1)], config: c, freeDisk: null }))).toEqual([1]);
  });

  it('low disk still lets support roles run (merging frees worktrees)', () => {
    const actions = run({ issues: [issue(1)], prs: [pr(50, [Label.pr], 9)], config: config((x) => (enable('champion')(x), (x.minFreeDisk = 2e9))), freeDisk: 1e6 });
    expect(spawnedIssues(actions)).toEqual([]);
    expect(roleSpawns(actions).map(([r]) => r)).toContain('champion');
  });
});

// ---------------------------------------------------------------------------------------------
// A bounded snapshot (`TrackerSnapshot.page`): a page of the ready issues plus counts
// ---------------------------------------------------------------------------------------------

describe('plan: a bounded snapshot', () => {
  const page = (counts: Record<string, number>, moreReady: boolean): SnapshotPage => ({ size: 3, counts, lowest: {}, moreReady });
  const paged = (issues: Issue[], p: SnapshotPage, over: { config?: LoomConfig; dependencies?: DependencyMap; state?: DaemonState } = {}) =>
    planPage({
      state: over.state ?? state(),
      observation: { snapshot: { issues, pullRequests: [], page: p }, processes: {}, strays: [], ...(over.dependencies ? { dependencies: over.dependencies } : {}) },
      config: over.config ?? config(),
      now: NOW,
      force: false,
      mode: 'normal',
    });

  it('asks for more ready issues when every one of the page was passed over with a slot free', () => {
    const gated: DependencyMap = { '1': [{ number: 99, state: 'open' }], '2': [{ number: 99, state: 'open' }], '3': [{ number: 99, state: 'open' }] };
    const issues = [issue(1), issue(2), issue(3, [Label.issue, 'loom:operator'])];
    expect(paged(issues, page({ [Label.issue]: 10 }, true), { dependencies: gated })).toEqual({ actions: [], readMore: true });
    // The whole backlog was read: nothing more to ask for.
    expect(paged(issues, page({ [Label.issue]: 3 }, false), { dependencies: gated }).readMore).toBe(false);
  });

  it('does not ask for more once the slots are full, or when no shepherd may start', () => {
    const p = page({ [Label.issue]: 10 }, true);
    const full = paged([issue(1), issue(2), issue(3), issue(4)], p);
    expect(spawnedIssues(full.actions)).toEqual([1, 2, 3]);
    expect(full.readMore).toBe(false);
    const partly = paged([issue(1), issue(2)], p, { dependencies: { '2': [{ number: 99, state: 'open' }] } });
    expect(spawnedIssues(partly.actions)).toEqual([1]);
    expect(partly.readMore).toBe(true);
    expect(paged([], p, { config: config((c) => (c.roles.builder.enabled = false)) }).readMore).toBe(false);
  });

  it('decides work generation from the counts, not from the issues it read', () => {
    const cfg = config((c) => {
      enable('architect', 'hermit')(c);
      c.roles.builder.enabled = false;
    });
    // Only one ready issue read, ten counted: the backlog is not low.
    expect(roleSpawns(paged([issue(1)], page({ [Label.issue]: 10 }, true), { config: cfg }).actions)).toEqual([]);
    // Two ready, but proposals (counted) at the limit.
    expect(roleSpawns(paged([issue(1)], page({ [Label.issue]: 2, [Label.architect]: 3, [Label.hermit]: 2 }, true), { config: cfg }).actions)).toEqual([]);
    expect(roleSpawns(paged([issue(1)], page({ [Label.issue]: 2, [Label.architect]: 3 }, true), { config: cfg }).actions)).toHaveLength(2);
  });
});
