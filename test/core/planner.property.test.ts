/**
 * Properties of the planner (src/core/planner.ts) over random daemon states, tracker snapshots
 * and process observations — the invariants its header promises, checked against what the input
 * says rather than against the planner's own bookkeeping:
 *
 * - never more than `maxShepherds` shepherds once the daemon's spawns start;
 * - never two shepherds for one issue;
 * - ready issues are spawned in build order (`loom:urgent` first, then oldest), and no slot is
 *   left idle while an issue could be built;
 * - a shepherd's failures are counted, the one reaching `spawnFailureLimit` blocks the issue, and
 *   an issue whose failure this plan records is not spawned again in the same plan;
 * - nothing new starts in drain or stop mode; stop stops every live shepherd and role;
 * - every known shepherd and role is accounted for exactly once; orphans are exactly the
 *   `loom:building` issues nobody holds; steps come in the documented order; the plan is pure.
 *
 * The world generator keeps issue numbers, slot names and times in small ranges so that the
 * interesting collisions (two records for one issue, a stray on a dead slot's issue, equal
 * creation times, heartbeats either side of the stall limit) happen often.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { LoomConfig } from '../../src/core/config-model.js';
import { defaultConfig } from '../../src/core/config-model.js';
import type { DaemonState, RoleEntry, ShepherdEntry } from '../../src/core/daemon-state.js';
import { emptyState, idleRole, idleShepherd } from '../../src/core/daemon-state.js';
import { Label, PROPOSAL_LABELS } from '../../src/core/labels.js';
import type { Action, Mode, Observation, PlanInput, ProcessView } from '../../src/core/planner.js';
import { TRUST_RECHECK_MS, plan } from '../../src/core/planner.js';
import type { Progress, ProgressStatus } from '../../src/core/progress.js';
import { TERMINAL_STATUSES } from '../../src/core/progress.js';
import type { Issue, PullRequest } from '../../src/core/tracker-model.js';
import type { DaemonRole, RuntimeChoice } from '../../src/core/vocabulary.js';
import type { DependencyMap, DependencyState } from '../../src/core/dependencies.js';
import { openDependencies } from '../../src/core/dependencies.js';
import type { WorkInProgress } from '../../src/core/overlap.js';
import { overlapsOf, sharedFiles } from '../../src/core/overlap.js';
import { DAEMON_ROLES, GENERATOR_ROLES } from '../../src/core/vocabulary.js';

// ---------------------------------------------------------------------------------------------
// The random world
// ---------------------------------------------------------------------------------------------

const SEC = 1000;
const MIN = 60 * SEC;
const NOW = Date.parse('2026-01-23T12:00:00.000Z');
const iso = (ms: number): string => new Date(ms).toISOString();
const ago = (ms: number): string => iso(NOW - ms);
const STALL = 10 * MIN;
const ALL_STATUSES: readonly ProgressStatus[] = ['starting', 'running', ...TERMINAL_STATUSES];
const RUN_OPTIONS = { numRuns: 500, seed: 0x10011 } as const;

/** Ages either side of every limit in play: stall (10 min), demand cooldown (1 min), intervals, timeouts. */
const age = fc.constantFrom(0, 30 * SEC, 2 * MIN, 9 * MIN, 11 * MIN, 40 * MIN, 3 * 60 * MIN);
const issueNo = fc.integer({ min: 1, max: 9 });
/** Mostly unfinished records, so that slots stay busy as often as they free up. */
const status = fc.oneof({ weight: 3, arbitrary: fc.constantFrom<ProgressStatus>('running', 'starting') }, { weight: 2, arbitrary: fc.constantFrom(...ALL_STATUSES) });
const runtime = fc.constantFrom<RuntimeChoice | undefined>(undefined, 'claude', 'codex');

const issueArb = fc.record({
  number: issueNo,
  state: fc.constantFrom<string | null>(Label.issue, Label.issue, Label.issue, Label.building, Label.building, Label.blocked, Label.architect, Label.hermit, Label.curated, null),
  urgent: fc.boolean(),
  createdMinute: fc.integer({ min: 0, max: 4 }),
  /** Declared dependencies: numbers past 9 are issues outside the snapshot. */
  deps: fc.array(fc.record({ number: fc.integer({ min: 1, max: 12 }), state: fc.constantFrom<DependencyState>('open', 'open', 'done', 'not-planned', 'missing') }), { maxLength: 2 }),
});

const viewArb = fc.record({
  kind: fc.constantFrom('alive', 'alive', 'dead', 'none'),
  progress: fc.option(fc.record({ status, heartbeatAge: age }), { nil: null }),
});

const slotArb = fc.record({
  slot: fc.integer({ min: 1, max: 6 }),
  working: fc.constantFrom(true, true, true, false),
  issue: issueNo,
  hasTask: fc.constantFrom(true, true, true, true, false),
  startedAge: age,
  view: viewArb,
});

const strayArb = fc.record({
  issue: fc.option(issueNo, { nil: null, freq: 8 }),
  alive: fc.boolean(),
  status,
  heartbeatAge: age,
});

const roleArb = fc.record({
  enabled: fc.boolean(),
  runtime,
  fallback: runtime,
  interval: fc.constantFrom(1 * MIN, 5 * MIN, 30 * MIN),
  timeout: fc.constantFrom(20 * MIN, 60 * MIN),
  entry: fc.option(
    fc.record({ running: fc.boolean(), hasTask: fc.constantFrom(true, true, false), startedAge: fc.option(age, { nil: null }), lastCompletedAge: fc.option(age, { nil: null }), view: viewArb }),
    { nil: null },
  ),
});

const worldArb = fc.record({
  maxShepherds: fc.integer({ min: 1, max: 5 }),
  spawnFailureLimit: fc.integer({ min: 1, max: 4 }),
  issueThreshold: fc.integer({ min: 0, max: 4 }),
  maxProposals: fc.integer({ min: 0, max: 4 }),
  builder: fc.record({ enabled: fc.constantFrom(true, true, true, true, true, false), runtime, fallback: runtime }),
  roles: fc.record(Object.fromEntries(DAEMON_ROLES.map((r) => [r, roleArb])) as Record<DaemonRole, typeof roleArb>),
  issues: fc.uniqueArray(issueArb, { selector: (i) => i.number, maxLength: 9 }),
  prs: fc.array(fc.record({ verdict: fc.constantFrom(Label.pr, Label.reviewRequested, Label.changesRequested, 'documentation'), closes: fc.option(issueNo, { nil: null }) }), { maxLength: 3 }),
  slots: fc.uniqueArray(slotArb, { selector: (s) => s.slot, maxLength: 4 }),
  strays: fc.array(strayArb, { maxLength: 2 }),
  /** Role records the state does not know (a launch whose iteration lost its daemon, a manual `loom role`). */
  roleStrays: fc.array(fc.record({ role: fc.constantFrom(...DAEMON_ROLES), alive: fc.boolean(), status, heartbeatAge: age }), { maxLength: 2 }),
  retry: fc.dictionary(
    issueNo.map(String),
    fc.record({ failures: fc.integer({ min: 1, max: 5 }), next: fc.constantFrom<number | string>(-5 * MIN, -1, 0, 1, 5 * MIN, '', 'not a time') }),
    { maxKeys: 4 },
  ),
  untrusted: fc.dictionary(issueNo.map(String), fc.constantFrom(1 * MIN, TRUST_RECHECK_MS - 1, TRUST_RECHECK_MS, 20 * MIN), { maxKeys: 2 }),
  limited: fc.oneof(fc.constant<RuntimeChoice[]>([]), fc.subarray<RuntimeChoice>(['claude', 'codex'])),
  budgetSpent: fc.constantFrom<string | null>(null, null, null, null, null, 'perDayUsd'),
  /** Free disk space against the default 2 GB minimum: unknown, plenty, exactly enough, too little. */
  freeDisk: fc.constantFrom<number | null | undefined>(undefined, null, 50e9, 50e9, 2e9, 1e9),
  force: fc.boolean(),
  mode: fc.constantFrom<Mode>('normal', 'normal', 'normal', 'normal', 'drain', 'stop'),
});

type World = typeof worldArb extends fc.Arbitrary<infer W> ? W : never;

function progressRecord(over: Partial<Progress> & { task_id: string }): Progress {
  return {
    kind: 'shepherd',
    issue: null,
    role: null,
    status: 'running',
    phase: 'builder',
    pid: 5000,
    pid_start: 's',
    launcher_pid: null,
    agent_pid: null,
    agent_pid_start: null,
    started: ago(30 * MIN),
    heartbeat: ago(0),
    last_output: null,
    output_file: '/repo/.loom/logs/x.log',
    message: null,
    exit_code: null,
    merged: false,
    pr_number: null,
    ...over,
  };
}

function viewFor(view: World['slots'][number]['view'], record: (p: { status: ProgressStatus; heartbeatAge: number }) => Progress): ProcessView | undefined {
  if (view.kind === 'none') return undefined;
  return { alive: view.kind === 'alive', progress: view.progress ? record(view.progress) : null };
}

/** The planner input a world describes. */
function inputOf(w: World): PlanInput {
  const config: LoomConfig = defaultConfig();
  Object.assign(config, { maxShepherds: w.maxShepherds, spawnFailureLimit: w.spawnFailureLimit, issueThreshold: w.issueThreshold, maxProposals: w.maxProposals, stallTimeout: STALL });
  Object.assign(config.roles.builder, w.builder);
  for (const role of DAEMON_ROLES) {
    const r = w.roles[role];
    Object.assign(config.roles[role], { enabled: r.enabled, runtime: r.runtime, fallback: r.fallback, interval: r.interval, timeout: r.timeout });
  }

  const processes: Record<string, ProcessView> = {};
  const shepherds: Record<string, ShepherdEntry> = {};
  for (const s of w.slots) {
    const name = `shepherd-${s.slot}`;
    if (!s.working) {
      shepherds[name] = { ...idleShepherd(), last_issue: s.issue };
      continue;
    }
    const task = s.hasTask ? `task-s${s.slot}` : null;
    shepherds[name] = { ...idleShepherd(), status: 'working', issue: s.issue, task_id: task, pid: 4000 + s.slot, pid_start: 's', started: ago(s.startedAge), last_phase: 'builder' };
    const view = viewFor(s.view, (p) => progressRecord({ task_id: task ?? 'x', issue: s.issue, status: p.status, heartbeat: ago(p.heartbeatAge) }));
    if (task !== null && view !== undefined) processes[task] = view;
  }

  const support_roles: Record<string, RoleEntry> = {};
  for (const role of DAEMON_ROLES) {
    const e = w.roles[role].entry;
    if (e === null) continue;
    const started = e.startedAge === null ? null : ago(e.startedAge);
    const last_completed = e.lastCompletedAge === null ? null : ago(e.lastCompletedAge);
    if (!e.running) {
      support_roles[role] = { ...idleRole(), started, last_completed };
      continue;
    }
    const task = e.hasTask ? `role-${role}` : null;
    support_roles[role] = { ...idleRole(), status: 'running', task_id: task, pid: 7000, pid_start: 's', started, last_completed };
    const view = viewFor(e.view, (p) => progressRecord({ task_id: task ?? 'x', kind: 'role', role, phase: role, status: p.status, heartbeat: ago(p.heartbeatAge) }));
    if (task !== null && view !== undefined) processes[task] = view;
  }

  const strays: ProcessView[] = w.strays.map((s, k) => ({
    alive: s.alive,
    progress: progressRecord({ task_id: `stray-${k}`, issue: s.issue, status: s.status, heartbeat: ago(s.heartbeatAge) }),
  }));

  // As observe() gives them: only for a role the state does not say is running.
  const roleStrays: ProcessView[] = w.roleStrays
    .filter((r) => support_roles[r.role]?.status !== 'running')
    .map((r, k) => ({ alive: r.alive, progress: progressRecord({ task_id: `role-stray-${k}`, kind: 'role', role: r.role, phase: r.role, status: r.status, heartbeat: ago(r.heartbeatAge) }) }));

  const issues: Issue[] = w.issues.map((i) => {
    const createdAt = iso(Date.parse('2026-01-01T00:00:00.000Z') + i.createdMinute * MIN);
    const labels = [...(i.state ? [i.state] : []), ...(i.urgent ? [Label.urgent] : [])];
    return { number: i.number, title: `#${i.number}`, body: '', state: 'open', labels, author: 'a', createdAt, updatedAt: createdAt };
  });
  const pullRequests: PullRequest[] = w.prs.map((p, k) => ({
    number: 100 + k,
    title: `PR ${k}`,
    body: '',
    state: 'open',
    labels: [p.verdict],
    head: `loom/issue-${p.closes ?? 0}`,
    base: 'main',
    closesIssue: p.closes,
    createdAt: ago(60 * MIN),
    updatedAt: ago(60 * MIN),
  }));

  const state: DaemonState = {
    ...emptyState(),
    running: true,
    shepherds,
    support_roles,
    spawn_retry_queue: Object.fromEntries(
      Object.entries(w.retry).map(([n, r]) => [n, { failures: r.failures, last_failure: ago(10 * MIN), next_retry_at: typeof r.next === 'number' ? iso(NOW + r.next) : r.next, last_error: 'x' }]),
    ),
    untrusted: Object.fromEntries(Object.entries(w.untrusted).map(([n, a]) => [n, { checked_at: ago(a), reason: 'untrusted' }])),
  };
  const dependencies: DependencyMap = {};
  for (const i of w.issues) {
    const deps = i.deps.filter((d, k) => d.number !== i.number && i.deps.findIndex((e) => e.number === d.number) === k);
    if (deps.length > 0) dependencies[String(i.number)] = deps;
  }
  const observation: Observation = { snapshot: { issues, pullRequests }, processes, strays, roleStrays, limitedRuntimes: w.limited, dailyBudgetSpent: w.budgetSpent, dependencies, ...(w.freeDisk !== undefined ? { freeDisk: w.freeDisk } : {}) };
  return { state, observation, config, now: NOW, force: w.force, mode: w.mode };
}

// ---------------------------------------------------------------------------------------------
// What the input says (an oracle independent of the planner's bookkeeping)
// ---------------------------------------------------------------------------------------------

const isTerminalStatus = (s: ProgressStatus): boolean => (TERMINAL_STATUSES as readonly string[]).includes(s);

interface Facts {
  /** State slots that own an issue: name → issue, and how they end in this plan. */
  active: { slot: string; issue: number; fate: 'stays' | 'finished' | 'dead'; stalled: boolean }[];
  /** Issues of the slots that keep running. */
  stayingIssues: Set<number>;
  /** Issues that a live, unfinished stray record works on. */
  liveStrayIssues: Set<number>;
  /** Running daemon roles (the state's, then role strays not already named) and whether they finish now. */
  roles: { role: DaemonRole; finishes: boolean }[];
}

function facts(input: PlanInput): Facts {
  const { state, observation, now, config } = input;
  const active: Facts['active'] = [];
  for (const [slot, e] of Object.entries(state.shepherds)) {
    if (e.status !== 'working' || e.issue === null) continue;
    const view = e.task_id ? observation.processes[e.task_id] : undefined;
    const fate = view?.progress && isTerminalStatus(view.progress.status) ? 'finished' : view?.alive ? 'stays' : 'dead';
    const beat = Date.parse(view?.progress?.heartbeat ?? e.started ?? '');
    active.push({ slot, issue: e.issue, fate, stalled: fate === 'stays' && !Number.isNaN(beat) && now - beat > config.stallTimeout });
  }
  const liveStrayIssues = new Set(
    observation.strays.filter((v) => v.alive && v.progress && v.progress.issue !== null && !isTerminalStatus(v.progress.status)).map((v) => v.progress!.issue!),
  );
  const roles: Facts['roles'] = [];
  for (const role of DAEMON_ROLES) {
    const e = state.support_roles[role];
    if (!e || e.status !== 'running') continue;
    const view = e.task_id ? observation.processes[e.task_id] : undefined;
    roles.push({ role, finishes: !!(view?.progress && isTerminalStatus(view.progress.status)) || !view?.alive });
  }
  for (const view of observation.roleStrays ?? []) {
    const role = view.progress?.role as DaemonRole;
    if (roles.some((r) => r.role === role)) continue;
    roles.push({ role, finishes: isTerminalStatus(view.progress!.status) || !view.alive });
  }
  return { active, stayingIssues: new Set(active.filter((a) => a.fate === 'stays').map((a) => a.issue)), liveStrayIssues, roles };
}

function ofType<T extends Action['type']>(actions: readonly Action[], type: T): Extract<Action, { type: T }>[] {
  return actions.filter((a): a is Extract<Action, { type: T }> => a.type === type);
}

const isUrgent = (i: Issue): boolean => i.labels.includes(Label.urgent);
/** Build order written out: urgent first, then by creation time, then by number. */
const buildsBefore = (a: Issue, b: Issue): boolean =>
  isUrgent(a) !== isUrgent(b) ? isUrgent(a) : a.createdAt !== b.createdAt ? a.createdAt < b.createdAt : a.number < b.number;

/**
 * Ready issues that nothing excludes from a spawn in this plan: `loom:issue` (or a proposal force
 * mode promotes) without `loom:building`, not held by a shepherd that keeps running or is adopted,
 * not waiting for a retry or a trust recheck, and not an issue whose shepherd failed in this plan.
 */
function spawnable(input: PlanInput, f: Facts, actions: readonly Action[]): Issue[] {
  const { state, observation, now, force } = input;
  const adopted = new Set(ofType(actions, 'adopt-shepherd').map((a) => a.issue));
  const failedNow = new Set(ofType(actions, 'recover-shepherd').map((a) => a.issue));
  return observation.snapshot.issues.filter((i) => {
    const ready = i.labels.includes(Label.issue) || (force && PROPOSAL_LABELS.some((l) => i.labels.includes(l)));
    if (!ready || i.labels.includes(Label.building)) return false;
    if (f.stayingIssues.has(i.number) || adopted.has(i.number) || f.liveStrayIssues.has(i.number) || failedNow.has(i.number)) return false;
    if ((observation.dependencies?.[String(i.number)] ?? []).some((d) => d.state === 'open')) return false;
    const retryAt = Date.parse(state.spawn_retry_queue[String(i.number)]?.next_retry_at ?? '');
    if (!Number.isNaN(retryAt) && retryAt > now) return false;
    const trustAt = Date.parse(state.untrusted[String(i.number)]?.checked_at ?? '');
    return Number.isNaN(trustAt) || now - trustAt >= TRUST_RECHECK_MS;
  });
}

/** Whether the builder may be dispatched at all (enabled, a runtime not limited, budget left). */
function builderDispatchable(input: PlanInput): boolean {
  const c = input.config.roles.builder;
  const limited = input.observation.limitedRuntimes ?? [];
  const runtimes = [c.runtime, c.fallback].filter((r) => r !== undefined);
  const free = input.observation.freeDisk;
  const lowDisk = free !== undefined && free !== null && free < input.config.minFreeDisk;
  return c.enabled && !lowDisk && !input.observation.dailyBudgetSpent && (runtimes.length === 0 || runtimes.some((r) => !limited.includes(r)));
}

/** Runs `check` over many random worlds; the failing world (shrunk) and the seed are reported. */
function forAllWorlds(check: (input: PlanInput, actions: Action[], f: Facts) => void, runs: number = RUN_OPTIONS.numRuns): void {
  fc.assert(
    fc.property(worldArb, (w) => {
      const input = inputOf(w);
      check(input, plan(input), facts(input));
    }),
    { ...RUN_OPTIONS, numRuns: runs },
  );
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

describe('plan: properties over random worlds', () => {
  it('never more than maxShepherds shepherds once the daemon spawns (slots that keep running + adoptions + spawns)', () => {
    forAllWorlds((input, actions, f) => {
      const spawns = ofType(actions, 'spawn-shepherd').length;
      if (spawns === 0) return;
      const staying = f.active.filter((a) => a.fate === 'stays').length;
      expect(staying + ofType(actions, 'adopt-shepherd').length + spawns).toBeLessThanOrEqual(input.config.maxShepherds);
    });
  });

  it('never two shepherds for one issue, nor two in one slot', () => {
    forAllWorlds((_input, actions, f) => {
      const spawns = ofType(actions, 'spawn-shepherd');
      const adopts = ofType(actions, 'adopt-shepherd');
      const stayingSlots = new Set(f.active.filter((a) => a.fate === 'stays').map((a) => a.slot));
      const spawned = spawns.map((s) => s.issue);
      expect(new Set(spawned).size).toBe(spawned.length);
      for (const s of spawns) {
        expect(f.stayingIssues.has(s.issue), `#${s.issue} has a running shepherd`).toBe(false);
        expect(f.liveStrayIssues.has(s.issue), `#${s.issue} has a live progress record`).toBe(false);
        expect(adopts.map((a) => a.issue)).not.toContain(s.issue);
      }
      const adopted = adopts.map((a) => a.issue);
      expect(new Set(adopted).size).toBe(adopted.length);
      for (const a of adopted) expect(f.stayingIssues.has(a), `adopted #${a} has a running shepherd`).toBe(false);
      // Slots: every new occupant (spawn or adoption) gets a slot of its own that nothing keeps running in.
      const newSlots = [...spawns.map((s) => s.slot), ...adopts.map((a) => a.slot)];
      expect(new Set(newSlots).size).toBe(newSlots.length);
      for (const slot of newSlots) expect(stayingSlots.has(slot), `${slot} is busy`).toBe(false);
    });
  });

  it('spawns the ready issues in build order (loom:urgent first, then oldest) and fills every free slot it may', () => {
    forAllWorlds((input, actions, f) => {
      const spawned = ofType(actions, 'spawn-shepherd').map((s) => s.issue);
      const candidates = spawnable(input, f, actions).sort((a, b) => (buildsBefore(a, b) ? -1 : 1));
      // What was spawned is the head of the build order, in that order …
      expect(spawned).toEqual(candidates.slice(0, spawned.length).map((i) => i.number));
      // … and it stops early only for lack of a slot (or when nothing may be started).
      const mayStart = input.mode === 'normal' && builderDispatchable(input);
      const staying = f.active.filter((a) => a.fate === 'stays').length;
      const free = Math.max(0, input.config.maxShepherds - staying - ofType(actions, 'adopt-shepherd').length);
      expect(spawned.length).toBe(mayStart ? Math.min(free, candidates.length) : 0);
    });
  });

  it('no spawned non-urgent issue while an urgent one that could be built is left waiting', () => {
    forAllWorlds((input, actions, f) => {
      const spawned = new Set(ofType(actions, 'spawn-shepherd').map((s) => s.issue));
      const issues = input.observation.snapshot.issues;
      if (![...spawned].some((n) => !isUrgent(issues.find((i) => i.number === n)!))) return;
      for (const i of spawnable(input, f, actions)) if (isUrgent(i)) expect(spawned.has(i.number), `urgent #${i.number} waits`).toBe(true);
    });
  });

  it('counts each failed shepherd once, blocks at spawnFailureLimit, and never respawns in the plan that records a failure', () => {
    forAllWorlds((input, actions) => {
      const spawned = new Set(ofType(actions, 'spawn-shepherd').map((s) => s.issue));
      for (const r of ofType(actions, 'recover-shepherd')) {
        const before = input.state.spawn_retry_queue[String(r.issue)]?.failures ?? 0;
        expect(r.failures).toBe(before + 1);
        expect(r.block).toBe(r.failures >= input.config.spawnFailureLimit);
        expect(spawned.has(r.issue), `#${r.issue} is recovered (failure ${r.failures}, block ${r.block}) and spawned in one plan`).toBe(false);
      }
    });
  });

  it('starts nothing in drain or stop mode, and stops nothing outside stop mode', () => {
    forAllWorlds((input, actions) => {
      const types = new Set(actions.map((a) => a.type));
      if (input.mode !== 'normal') {
        for (const t of ['spawn-shepherd', 'spawn-role', 'promote'] as const) expect(types.has(t), `${t} in ${input.mode}`).toBe(false);
      }
      if (input.mode !== 'stop') {
        expect(types.has('stop-shepherd')).toBe(false);
        expect(types.has('stop-role')).toBe(false);
      }
    });
  });

  it('stop mode stops exactly the shepherds that keep running (adopted ones too) and the running roles, once each, and kills nothing as stuck', () => {
    forAllWorlds((input, actions, f) => {
      if (input.mode !== 'stop') return;
      const stops = ofType(actions, 'stop-shepherd').map((s) => `${s.slot}:${s.issue}`);
      const expected = [...f.active.filter((a) => a.fate === 'stays').map((a) => `${a.slot}:${a.issue}`), ...ofType(actions, 'adopt-shepherd').map((a) => `${a.slot}:${a.issue}`)];
      expect([...stops].sort()).toEqual([...expected].sort());
      expect(ofType(actions, 'stop-role').map((a) => a.role).sort()).toEqual(f.roles.filter((r) => !r.finishes).map((r) => r.role).sort());
      expect(ofType(actions, 'kill-role')).toEqual([]);
      expect(ofType(actions, 'recover-shepherd').filter((r) => r.reason === 'stalled')).toEqual([]);
    });
  });

  it('accounts for every known shepherd once: finished, recovered as dead, dropped for a live record, or kept (and then recovered as stalled if its heartbeat is old)', () => {
    forAllWorlds((input, actions, f) => {
      for (const a of f.active) {
        const mine = actions.filter((x) => 'slot' in x && x.slot === a.slot && x.type !== 'spawn-shepherd' && x.type !== 'adopt-shepherd' && x.type !== 'stop-shepherd');
        const what = mine.map((x) => (x.type === 'recover-shepherd' ? `recover-${x.reason}` : x.type));
        if (a.fate === 'finished') expect(what).toEqual(['finish-shepherd']);
        else if (a.fate === 'dead') expect(what).toEqual([f.liveStrayIssues.has(a.issue) ? 'drop-slot' : 'recover-dead']);
        else expect(what).toEqual(a.stalled && input.mode !== 'stop' ? ['recover-stalled'] : []);
      }
    });
  });

  it('releases exactly the loom:building issues that no shepherd holds and that this plan does not finish or recover', () => {
    forAllWorlds((input, actions, f) => {
      const adopted = new Set(ofType(actions, 'adopt-shepherd').map((a) => a.issue));
      const handled = new Set([...ofType(actions, 'finish-shepherd'), ...ofType(actions, 'recover-shepherd')].map((a) => a.issue));
      const expected = input.observation.snapshot.issues
        .filter((i) => i.labels.includes(Label.building) && !f.stayingIssues.has(i.number) && !adopted.has(i.number) && !handled.has(i.number))
        .map((i) => i.number);
      expect(ofType(actions, 'release-orphan').map((a) => a.issue)).toEqual(expected);
    });
  });

  it('starts a role only when it is enabled, idle (or finished in this plan), dispatchable, and — for generators — when the backlog is low', () => {
    forAllWorlds((input, actions, f) => {
      const spawns = ofType(actions, 'spawn-role');
      expect(new Set(spawns.map((s) => s.role)).size).toBe(spawns.length);
      const issues = input.observation.snapshot.issues;
      const promoted = new Set(ofType(actions, 'promote').map((p) => p.issue));
      const ready = issues.filter((i) => (i.labels.includes(Label.issue) || promoted.has(i.number)) && !i.labels.includes(Label.building)).length;
      const proposals = issues.filter((i) => (i.labels.includes(Label.architect) || i.labels.includes(Label.hermit)) && !promoted.has(i.number)).length;
      const limited = input.observation.limitedRuntimes ?? [];
      for (const s of spawns) {
        const c = input.config.roles[s.role];
        expect(c.enabled, `${s.role} enabled`).toBe(true);
        expect(f.roles.some((r) => r.role === s.role && !r.finishes), `${s.role} still running`).toBe(false);
        if (input.observation.dailyBudgetSpent) expect(s.role).toBe('champion');
        const runtimes = [c.runtime, c.fallback].filter((r) => r !== undefined);
        if (runtimes.length > 0) expect(runtimes.some((r) => !limited.includes(r)), `${s.role} has a runtime that is not limited`).toBe(true);
        if ((GENERATOR_ROLES as readonly string[]).includes(s.role)) {
          expect(s.reason).toBe('low-backlog');
          expect(ready).toBeLessThan(input.config.issueThreshold);
          expect(proposals).toBeLessThan(input.config.maxProposals);
        } else expect(['interval', 'demand']).toContain(s.reason);
      }
      // Each running role ends at most once: finished, killed as stuck, or stopped.
      const ends = [...ofType(actions, 'finish-role'), ...ofType(actions, 'kill-role'), ...ofType(actions, 'stop-role')].map((a) => a.role);
      expect(new Set(ends).size).toBe(ends.length);
      for (const role of ends) expect(f.roles.map((r) => r.role)).toContain(role);
    });
  });

  it('a role record the state does not know is adopted when live and unfinished, otherwise finished (its record removed), once per role', () => {
    forAllWorlds((input, actions) => {
      const running = new Set(Object.entries(input.state.support_roles).filter(([, e]) => e.status === 'running').map(([r]) => r));
      const seen = new Set<string>();
      for (const view of input.observation.roleStrays ?? []) {
        const p = view.progress!;
        const role = p.role!;
        if (running.has(role) || seen.has(role)) continue;
        seen.add(role);
        const live = view.alive && !isTerminalStatus(p.status);
        expect(ofType(actions, 'adopt-role').filter((a) => a.role === role).map((a) => a.progress.task_id), role).toEqual(live ? [p.task_id] : []);
        expect(ofType(actions, 'finish-role').filter((a) => a.role === role).map((a) => a.outcome), role).toEqual(live ? [] : [isTerminalStatus(p.status) ? p.status : 'crashed']);
        if (live && input.mode === 'stop') expect(ofType(actions, 'stop-role').map((a) => a.role)).toContain(role);
      }
      for (const a of ofType(actions, 'adopt-role')) expect(ofType(actions, 'spawn-role').map((s) => s.role)).not.toContain(a.role);
    });
  });

  it('promotes only in force mode, only proposals, and never an issue being built', () => {
    forAllWorlds((input, actions) => {
      const promotes = ofType(actions, 'promote');
      if (!input.force || input.mode !== 'normal') expect(promotes).toEqual([]);
      for (const p of promotes) {
        const issue = input.observation.snapshot.issues.find((i) => i.number === p.issue)!;
        expect(PROPOSAL_LABELS).toContain(p.from);
        expect(issue.labels).toContain(p.from);
        expect(issue.labels).not.toContain(Label.building);
      }
    });
  });

  it('emits the steps in the documented order: completions, strays, orphans, role completions, stops, promotions, spawns, dependency reports, role starts, stuck checks', () => {
    const stage = (a: Action): number => {
      switch (a.type) {
        case 'finish-shepherd':
        case 'recover-shepherd':
          if (a.type === 'recover-shepherd' && a.reason === 'stalled') return 9;
          return a.slot === null ? 2 : 1;
        case 'drop-slot':
          return 1;
        case 'adopt-shepherd':
          return 2;
        case 'release-orphan':
          return 3;
        case 'finish-role':
        case 'adopt-role':
          return 4;
        case 'stop-shepherd':
        case 'stop-role':
          return 5;
        case 'promote':
          return 6;
        case 'spawn-shepherd':
          return 7;
        case 'forget-dependency-reports':
        case 'report-dependency':
          return 7.5;
        case 'spawn-role':
          return 8;
        case 'kill-role':
          return 9;
      }
    };
    forAllWorlds((_input, actions) => {
      const stages = actions.map(stage);
      expect(stages).toEqual([...stages].sort((a, b) => a - b));
    });
  });

  it('never spawns an issue with an open dependency; reports only ready issues, in normal mode, once', () => {
    forAllWorlds((input, actions) => {
      const deps = input.observation.dependencies;
      for (const a of ofType(actions, 'spawn-shepherd')) expect(openDependencies(deps, a.issue), `#${a.issue} waits on`).toEqual([]);
      const reports = ofType(actions, 'report-dependency');
      if (input.mode !== 'normal') expect(reports).toEqual([]);
      expect(new Set(reports.map((r) => r.key)).size).toBe(reports.length);
      const promoted = new Set(ofType(actions, 'promote').map((a) => a.issue));
      const ready = new Set(input.observation.snapshot.issues.filter((i) => (i.labels.includes(Label.issue) || promoted.has(i.number)) && !i.labels.includes(Label.building)).map((i) => i.number));
      for (const r of reports) {
        if (r.kind === 'cycle') {
          expect(r.numbers.some((n) => ready.has(n))).toBe(true);
          // Each issue of the cycle waits on the next one through open dependencies.
          for (const n of r.numbers) expect(openDependencies(deps, n).some((d) => r.numbers.includes(d))).toBe(true);
        } else {
          expect(ready.has(r.issue)).toBe(true);
          for (const n of r.numbers) expect(deps?.[String(r.issue)]?.find((d) => d.number === n)?.state).toBe(r.kind);
        }
      }
      // Once recorded as reported, the same reports are not made again.
      const again = plan({ ...input, state: { ...input.state, dependency_reports: reports.map((r) => r.key) } });
      expect(ofType(again, 'report-dependency')).toEqual([]);
    });
  });

  it('with overlap: wait, never starts two issues sharing a file, nor one overlapping running work; only a lone start overlaps PRs, and only those waiting for a person', () => {
    const files = fc.subarray(['a.ts', 'src/a.ts', 'b.ts', 'src/', 'docs/c.md']);
    const workArb = fc.record({ issue: fc.integer({ min: 1, max: 12 }), pr: fc.option(fc.integer({ min: 20, max: 30 }), { nil: null }), running: fc.boolean(), awaitsPerson: fc.boolean(), files });
    fc.assert(
      fc.property(worldArb, fc.array(files, { minLength: 1, maxLength: 9 }), fc.array(workArb, { maxLength: 3 }), (w, predictedList, work: WorkInProgress[]) => {
        const input = inputOf(w);
        const predicted = Object.fromEntries(input.observation.snapshot.issues.map((i, k) => [String(i.number), predictedList[k % predictedList.length] ?? []]));
        input.observation.overlap = { predicted, work };
        const spawned = ofType(plan(input), 'spawn-shepherd').map((a) => a.issue);
        for (const n of spawned) {
          const overlaps = overlapsOf(n, predicted[String(n)] ?? [], work);
          expect(overlaps.filter((o) => o.running), `#${n} overlaps running work`).toEqual([]);
          if (overlaps.length > 0) {
            expect(spawned, `#${n} overlaps a PR: it starts only alone`).toEqual([n]);
            expect(overlaps.every((o) => o.awaitsPerson), `#${n} overlaps a PR Loom moves on`).toBe(true);
          }
        }
        for (const [k, a] of spawned.entries()) for (const b of spawned.slice(k + 1)) expect(sharedFiles(predicted[String(a)] ?? [], predicted[String(b)] ?? []), `#${a} and #${b}`).toEqual([]);
        // `overlap: allow` looks at no file: the same plan as without the facts.
        const allow = { ...input, config: { ...input.config, overlap: 'allow' as const } };
        const without = { ...input, observation: { ...input.observation, overlap: undefined } };
        expect(plan(allow)).toEqual(plan(without));
      }),
    );
  });

  it('is pure: leaves its input untouched and gives the same plan twice', () => {
    fc.assert(
      fc.property(worldArb, (w) => {
        const input = inputOf(w);
        const before = structuredClone(input);
        const first = plan(input);
        expect(input).toEqual(before);
        expect(plan(input)).toEqual(first);
      }),
      { ...RUN_OPTIONS, numRuns: 150 },
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Cases the properties found, kept as examples
// ---------------------------------------------------------------------------------------------

describe('plan: examples found by the properties', () => {
  /** A daemon-started shepherd for #4 in shepherd-1 whose process is gone. */
  const deadSlotFor = (issue: number): ShepherdEntry => ({ ...idleShepherd(), status: 'working', issue, task_id: `task-${issue}`, pid: 4004, pid_start: 's', started: ago(5 * MIN) });
  const ready = (number: number, labels: string[] = [Label.issue]): Issue => {
    const createdAt = iso(Date.parse('2026-01-01T00:00:00.000Z') + number * MIN);
    return { number, title: `#${number}`, body: '', state: 'open', labels, author: 'a', createdAt, updatedAt: createdAt };
  };
  const builderOnly = (limit: number): LoomConfig => {
    const c = defaultConfig();
    for (const r of Object.values(c.roles)) r.enabled = false;
    c.roles.builder.enabled = true;
    c.maxShepherds = 1;
    c.spawnFailureLimit = limit;
    return c;
  };

  it.each([
    ['below the limit: its retry wait starts now', 3, false],
    ['at the limit: it is blocked', 1, true],
  ])('a dead shepherd whose issue still reads loom:issue (stale snapshot, or relabelled by hand) is recovered, not respawned in the same plan — %s', (_what, limit, block) => {
    const actions = plan({
      state: { ...emptyState(), running: true, shepherds: { 'shepherd-1': deadSlotFor(4) } },
      observation: { snapshot: { issues: [ready(4), ready(5)], pullRequests: [] }, processes: { 'task-4': { alive: false, progress: null } }, strays: [] },
      config: builderOnly(limit),
      now: NOW,
      force: false,
      mode: 'normal',
    });
    expect(actions).toEqual([
      { type: 'recover-shepherd', slot: 'shepherd-1', issue: 4, reason: 'dead', failures: 1, block, taskId: 'task-4', pid: 4004 },
      { type: 'spawn-shepherd', slot: 'shepherd-1', issue: 5 },
    ]);
  });

  it('a dead stray record whose issue reads loom:issue is recovered, not respawned in the same plan', () => {
    const record = progressRecord({ task_id: 'manual-4', issue: 4, status: 'running', pid: 555 });
    const actions = plan({
      state: { ...emptyState(), running: true },
      observation: { snapshot: { issues: [ready(4)], pullRequests: [] }, processes: {}, strays: [{ alive: false, progress: record }] },
      config: builderOnly(3),
      now: NOW,
      force: false,
      mode: 'normal',
    });
    expect(actions).toEqual([{ type: 'recover-shepherd', slot: null, issue: 4, reason: 'dead', failures: 1, block: false, taskId: 'manual-4', pid: 555 }]);
  });

  it('stop: a dead slot whose issue a manual shepherd (live stray) now owns is dropped, not stopped; only the adopted shepherd is stopped, once', () => {
    const record = progressRecord({ task_id: 'manual-9', issue: 9, status: 'running' });
    const actions = plan({
      state: { ...emptyState(), running: true, shepherds: { 'shepherd-2': deadSlotFor(9) } },
      observation: { snapshot: { issues: [ready(9, [Label.building])], pullRequests: [] }, processes: { 'task-9': { alive: false, progress: null } }, strays: [{ alive: true, progress: record }] },
      config: builderOnly(3),
      now: NOW,
      force: false,
      mode: 'stop',
    });
    expect(actions).toEqual([
      { type: 'drop-slot', slot: 'shepherd-2', issue: 9 },
      { type: 'adopt-shepherd', slot: 'shepherd-1', issue: 9, progress: record },
      { type: 'stop-shepherd', slot: 'shepherd-1', issue: 9 },
    ]);
  });
});
