/**
 * The schema of `.loom/daemon-state.json` (PRODUCT.md §7) and its lenient reader.
 *
 * Field names are those of earlier Loom installations, so their state files load unchanged;
 * unknown fields are kept on round-trip. `normalizeState` never throws on a parsed JSON value:
 * a field of the wrong type is replaced by its default and reported as a warning.
 */
import type { RunRecord, UsageTotals } from './usage.js';
import { addRun, dayOf, emptyTotals } from './usage.js';

export interface ShepherdEntry {
  /**
   * `working` while a shepherd process owns `issue`; `idle` otherwise. `errored` and `paused` are
   * statuses an earlier Loom left (its shepherd failed, or a human paused it): kept and shown,
   * but such a slot owns nothing — no process of this Loom runs for it.
   */
  status: 'working' | 'idle' | 'errored' | 'paused';
  issue: number | null;
  task_id: string | null;
  pid: number | null;
  /** Process start identity (Linux `/proc/<pid>/stat` start time) to tell a reused pid apart. */
  pid_start: string | null;
  output_file: string | null;
  started: string | null;
  last_phase: string | null;
  pr_number: number | null;
  idle_since: string | null;
  last_issue: number | null;
  [extra: string]: unknown;
}

export interface RoleEntry {
  status: 'running' | 'idle';
  task_id: string | null;
  pid: number | null;
  pid_start: string | null;
  output_file: string | null;
  started: string | null;
  last_completed: string | null;
  /** Outcome of the last finished run: `completed`, `failed`, `stalled`, `timeout`, `crashed`, `stopped`. */
  last_outcome: string | null;
  [extra: string]: unknown;
}

export interface RetryEntry {
  failures: number;
  last_failure: string;
  /** ISO time before which the issue is not spawned again. */
  next_retry_at: string;
  last_error: string;
}

export interface Warning {
  time: string;
  message: string;
}

/** How many issues and PRs carry each pipeline label. */
export interface PipelineCounts {
  ready: number;
  building: number;
  blocked: number;
  review_requested: number;
  changes_requested: number;
  ready_to_merge: number;
  proposals: number;
}

/** At most this many numbers per pipeline list (the lowest); `counts` has the totals. */
export const PIPELINE_LIST_LIMIT = 100;

/**
 * Issue and PR numbers per pipeline label at the last iteration: each list holds the lowest
 * `PIPELINE_LIST_LIMIT` numbers, `counts` how many there are in all (so the state file does not
 * grow with the backlog).
 */
export interface PipelineState {
  counts: PipelineCounts;
  ready: number[];
  building: number[];
  blocked: number[];
  review_requested: number[];
  changes_requested: number[];
  ready_to_merge: number[];
  proposals: number[];
  last_updated: string | null;
}

/** How many issues and UTC days the state's usage keeps totals for. */
export const USAGE_ISSUE_WINDOW = 200;
const USAGE_DAY_WINDOW = 31;

/** One issue's usage totals and when its last run was (absent in state files of earlier builds). */
export type IssueUsage = UsageTotals & { last_at?: string };

/** Agent usage folded in from the usage ledger (`.loom/usage.jsonl`). */
export interface UsageState {
  /** Bytes of the ledger already folded in. */
  ledger_offset: number;
  total: UsageTotals;
  /** By UTC day (`YYYY-MM-DD`), the newest `USAGE_DAY_WINDOW` days. */
  by_day: Record<string, UsageTotals>;
  /**
   * By issue number: the `USAGE_ISSUE_WINDOW` issues with the most recent runs, each with the time
   * of its last run (what budgets and `loom status` count comes from the usage index instead).
   */
  by_issue: Record<string, IssueUsage>;
  /** The newest 20 runs. */
  recent_runs: (RunRecord & { issue: number | null })[];
}

export function emptyUsage(): UsageState {
  return { ledger_offset: 0, total: emptyTotals(), by_day: {}, by_issue: {}, recent_runs: [] };
}

/** Folds ledger entries into the usage state, keeping its bounded windows. */
export function foldUsage(usage: UsageState, entries: readonly (RunRecord & { issue: number | null })[], offset: number): UsageState {
  const next: UsageState = { ...usage, by_day: { ...usage.by_day }, by_issue: { ...usage.by_issue }, recent_runs: [...usage.recent_runs], ledger_offset: offset };
  for (const entry of entries) {
    next.total = addRun(next.total, entry);
    const day = dayOf(entry.at);
    next.by_day[day] = addRun(next.by_day[day] ?? emptyTotals(), entry);
    if (entry.issue !== null) next.by_issue[String(entry.issue)] = { ...addRun(next.by_issue[String(entry.issue)] ?? emptyTotals(), entry), last_at: entry.at };
    next.recent_runs.push(entry);
  }
  next.recent_runs = next.recent_runs.slice(-20);
  for (const day of Object.keys(next.by_day).sort().slice(0, -USAGE_DAY_WINDOW)) delete next.by_day[day];
  // The issues whose last run is oldest go first, so an issue being worked on keeps its totals.
  const byRecency = Object.keys(next.by_issue).sort((a, b) => (next.by_issue[a]?.last_at ?? '').localeCompare(next.by_issue[b]?.last_at ?? '') || Number(a) - Number(b));
  for (const issue of byRecency.slice(0, -USAGE_ISSUE_WINDOW)) delete next.by_issue[issue];
  return next;
}

export interface DaemonState {
  started_at: string | null;
  running: boolean;
  /** Iterations run by the current daemon session. */
  iteration: number;
  force_mode: boolean;
  daemon_session_id: string | null;
  daemon_pid: number | null;
  last_poll: string | null;
  stopped_at: string | null;
  last_summary: string | null;
  shepherds: Record<string, ShepherdEntry>;
  support_roles: Record<string, RoleEntry>;
  pipeline_state: PipelineState;
  warnings: Warning[];
  completed_issues: number[];
  total_prs_merged: number;
  /** Issues whose shepherd failed to start or died, keyed by issue number. */
  spawn_retry_queue: Record<string, RetryEntry>;
  usage: UsageState;
  /**
   * GitHub trust checks by issue number: untrusted issues (`loom:issue` applied by someone without
   * write access) wait for a maintainer and are checked again after `TRUST_RECHECK_MS`.
   */
  untrusted: Record<string, { checked_at: string; reason: string }>;
  /** Runtimes under a rate or usage limit at the last iteration: `{ until, reason }`. */
  runtime_limits: Record<string, { until: string; reason: string }>;
  /** Dependency problems already reported (cycles, dependencies closed as not planned): each once. */
  dependency_reports: string[];
  [extra: string]: unknown;
}

/** How many warnings and completed issues the file keeps (oldest dropped first). */
export const MAX_WARNINGS = 50;
export const MAX_COMPLETED = 1000;

export function emptyPipeline(): PipelineState {
  return { counts: { ready: 0, building: 0, blocked: 0, review_requested: 0, changes_requested: 0, ready_to_merge: 0, proposals: 0 }, ready: [], building: [], blocked: [], review_requested: [], changes_requested: [], ready_to_merge: [], proposals: [], last_updated: null };
}

export function emptyState(): DaemonState {
  return {
    started_at: null,
    running: false,
    iteration: 0,
    force_mode: false,
    daemon_session_id: null,
    daemon_pid: null,
    last_poll: null,
    stopped_at: null,
    last_summary: null,
    shepherds: {},
    support_roles: {},
    pipeline_state: emptyPipeline(),
    warnings: [],
    completed_issues: [],
    total_prs_merged: 0,
    spawn_retry_queue: {},
    usage: emptyUsage(),
    untrusted: {},
    runtime_limits: {},
    dependency_reports: [],
  };
}

export function idleShepherd(): ShepherdEntry {
  return {
    status: 'idle',
    issue: null,
    task_id: null,
    pid: null,
    pid_start: null,
    output_file: null,
    started: null,
    last_phase: null,
    pr_number: null,
    idle_since: null,
    last_issue: null,
  };
}

export function idleRole(): RoleEntry {
  return { status: 'idle', task_id: null, pid: null, pid_start: null, output_file: null, started: null, last_completed: null, last_outcome: null };
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);
const int = (v: unknown): number | null => (typeof v === 'number' && Number.isInteger(v) ? v : typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : null);
const ints = (v: unknown): number[] => (Array.isArray(v) ? v.map(int).filter((n): n is number => n !== null) : []);

function shepherdFrom(raw: Obj): ShepherdEntry {
  const issue = int(raw.issue);
  // Earlier installations used other words for a busy slot ("working", "running", "active").
  const busy = issue !== null && ['working', 'running', 'active', 'busy'].includes(str(raw.status) ?? 'working');
  const left = str(raw.status) === 'errored' || str(raw.status) === 'paused' ? (str(raw.status) as 'errored' | 'paused') : null;
  return {
    ...raw,
    status: busy ? 'working' : (left ?? 'idle'),
    issue: busy || left !== null ? issue : null,
    task_id: str(raw.task_id),
    pid: int(raw.pid),
    pid_start: str(raw.pid_start),
    output_file: str(raw.output_file),
    started: str(raw.started),
    last_phase: str(raw.last_phase),
    pr_number: int(raw.pr_number),
    idle_since: str(raw.idle_since),
    last_issue: int(raw.last_issue) ?? (busy || left !== null ? null : issue),
  };
}

function roleFrom(raw: Obj): RoleEntry {
  const running = ['running', 'working', 'active'].includes(str(raw.status) ?? '');
  return {
    ...raw,
    status: running ? 'running' : 'idle',
    task_id: str(raw.task_id),
    pid: int(raw.pid),
    pid_start: str(raw.pid_start),
    output_file: str(raw.output_file),
    started: str(raw.started),
    last_completed: str(raw.last_completed),
    last_outcome: str(raw.last_outcome),
  };
}

/**
 * Turns any parsed JSON value into a valid state. Returns the problems found (fields that had to
 * be reset), which the caller reports as warnings.
 */
export function normalizeState(raw: unknown): { state: DaemonState; problems: string[] } {
  const problems: string[] = [];
  if (!isObj(raw)) return { state: emptyState(), problems: ['state file is not a JSON object'] };
  const base = emptyState();
  const state: DaemonState = { ...raw, ...base };
  // A present field of the wrong kind is reset below; say so once per field.
  const expect = (field: string, ok: (v: unknown) => boolean, kind: string) => {
    if (raw[field] !== undefined && raw[field] !== null && !ok(raw[field])) problems.push(`${field} is not ${kind}; reset`);
  };
  expect('running', (v) => typeof v === 'boolean', 'true or false');
  expect('force_mode', (v) => typeof v === 'boolean', 'true or false');
  expect('iteration', (v) => int(v) !== null, 'a whole number');
  expect('total_prs_merged', (v) => int(v) !== null, 'a whole number');
  expect('completed_issues', Array.isArray, 'a list');
  expect('warnings', Array.isArray, 'a list');
  expect('pipeline_state', isObj, 'an object');
  expect('spawn_retry_queue', (v) => isObj(v) || Array.isArray(v), 'an object');
  for (const field of ['started_at', 'daemon_session_id', 'last_poll', 'stopped_at', 'last_summary']) expect(field, (v) => typeof v === 'string', 'a string');
  state.started_at = str(raw.started_at);
  state.running = raw.running === true;
  state.iteration = int(raw.iteration) ?? 0;
  state.force_mode = raw.force_mode === true;
  state.daemon_session_id = str(raw.daemon_session_id);
  state.daemon_pid = int(raw.daemon_pid);
  state.last_poll = str(raw.last_poll);
  state.stopped_at = str(raw.stopped_at);
  state.last_summary = str(raw.last_summary);
  state.total_prs_merged = int(raw.total_prs_merged) ?? 0;
  state.completed_issues = ints(raw.completed_issues);

  if (isObj(raw.shepherds)) {
    for (const [name, entry] of Object.entries(raw.shepherds)) {
      if (isObj(entry)) state.shepherds[name] = shepherdFrom(entry);
      else problems.push(`shepherds.${name} is not an object; dropped`);
    }
  } else if (raw.shepherds !== undefined) problems.push('shepherds is not an object; reset');

  if (isObj(raw.support_roles)) {
    for (const [name, entry] of Object.entries(raw.support_roles)) {
      if (isObj(entry)) state.support_roles[name] = roleFrom(entry);
      else problems.push(`support_roles.${name} is not an object; dropped`);
    }
  } else if (raw.support_roles !== undefined) problems.push('support_roles is not an object; reset');

  if (isObj(raw.pipeline_state)) {
    const p = raw.pipeline_state;
    const lists = {
      ready: ints(p.ready),
      building: ints(p.building),
      blocked: ints(p.blocked),
      review_requested: ints(p.review_requested),
      changes_requested: ints(p.changes_requested),
      ready_to_merge: ints(p.ready_to_merge),
      proposals: ints(p.proposals),
    };
    // Counts as written, else (an older file, all numbers listed) the lists' lengths.
    const saved = isObj(p.counts) ? p.counts : {};
    const counts = Object.fromEntries(Object.entries(lists).map(([key, list]) => [key, Math.max(int(saved[key]) ?? 0, list.length)])) as unknown as PipelineCounts;
    state.pipeline_state = { ...p, counts, ...lists, last_updated: str(p.last_updated) };
  }

  if (Array.isArray(raw.warnings)) {
    // Earlier installations stored warnings as plain strings.
    state.warnings = raw.warnings
      .map((w): Warning | null => (typeof w === 'string' ? { time: '', message: w } : isObj(w) && typeof w.message === 'string' ? { time: str(w.time) ?? '', message: w.message } : null))
      .filter((w): w is Warning => w !== null);
  }

  if (isObj(raw.usage) && isObj(raw.usage.total)) state.usage = { ...emptyUsage(), ...(raw.usage as unknown as UsageState) };
  if (isObj(raw.untrusted)) state.untrusted = raw.untrusted as DaemonState['untrusted'];
  if (Array.isArray(raw.dependency_reports)) state.dependency_reports = raw.dependency_reports.filter((k): k is string => typeof k === 'string');
  if (isObj(raw.runtime_limits)) state.runtime_limits = raw.runtime_limits as DaemonState['runtime_limits'];
  const queue = raw.spawn_retry_queue;
  if (isObj(queue)) {
    for (const [key, entry] of Object.entries(queue)) {
      if (!isObj(entry) || int(key) === null) continue;
      state.spawn_retry_queue[key] = {
        failures: int(entry.failures) ?? 1,
        last_failure: str(entry.last_failure) ?? '',
        next_retry_at: str(entry.next_retry_at) ?? '',
        last_error: str(entry.last_error) ?? '',
      };
    }
  } else if (Array.isArray(queue)) {
    // An earlier shape: a list of issue numbers (or {issue, ...}) waiting for a retry.
    for (const item of queue) {
      const n = isObj(item) ? int(item.issue) : int(item);
      if (n !== null) state.spawn_retry_queue[String(n)] = { failures: isObj(item) ? (int(item.failures) ?? 1) : 1, last_failure: '', next_retry_at: '', last_error: '' };
    }
  }
  return { state, problems };
}

/** Appends a warning, keeping the newest `MAX_WARNINGS`. */
export function addWarning(state: DaemonState, time: string, message: string): void {
  state.warnings.push({ time, message });
  if (state.warnings.length > MAX_WARNINGS) state.warnings.splice(0, state.warnings.length - MAX_WARNINGS);
}

/** Records a completed issue, keeping the newest `MAX_COMPLETED`. */
export function addCompleted(state: DaemonState, issue: number): void {
  if (!state.completed_issues.includes(issue)) state.completed_issues.push(issue);
  if (state.completed_issues.length > MAX_COMPLETED) state.completed_issues.splice(0, state.completed_issues.length - MAX_COMPLETED);
}

/** Shepherd slots that currently own an issue. */
export function activeShepherds(state: DaemonState): [string, ShepherdEntry][] {
  return Object.entries(state.shepherds).filter(([, s]) => s.status === 'working' && s.issue !== null);
}
