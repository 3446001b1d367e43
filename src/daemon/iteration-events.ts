/**
 * What one iteration adds to the event log: the iteration itself (number, summary, duration),
 * one event per summary token (the executor's actions: spawns, completions, deaths, blocks, role
 * starts, failures), its new warnings, and the daily budget once it is reached.
 */
import type { LoomPaths } from '../config/paths.js';
import type { DaemonState, Warning } from '../core/daemon-state.js';
import type { EventFields } from '../core/events.js';
import { tokenEvent } from '../core/events.js';
import type { Action } from '../core/planner.js';
import { ROLE_NAMES } from '../core/vocabulary.js';
import { EventLog } from '../process/event-log.js';

export function recordIteration(opts: {
  paths: LoomPaths;
  state: DaemonState;
  actions: readonly Action[];
  tokens: readonly string[];
  /** Launch tokens whose event went out at the launch already (`+shepherd=#N`, `+role`). */
  announced?: ReadonlySet<string>;
  /** What the cleanup did for each issue: its `issue.cleaned` message. */
  cleanupLines?: ReadonlyMap<number, readonly string[]>;
  /** Why an issue's start or shepherd failed (the executor's count of failures). */
  failureReasons?: ReadonlyMap<number, string>;
  summary: string;
  mode: string;
  durationMs: number;
  /** The warnings the state held before the iteration (the new ones are the others). */
  warningsBefore: ReadonlySet<Warning>;
  /** Why no new agent work starts today, or null. */
  dailyBudgetSpent: string | null;
  now: Date;
}): void {
  const { state } = opts;
  const log = new EventLog(opts.paths.events);
  log.emit('iteration', { iteration: state.iteration, summary: opts.summary, duration_ms: opts.durationMs, outcome: opts.mode === 'normal' ? undefined : opts.mode });
  for (const token of opts.tokens) {
    if (opts.announced?.has(token)) continue;
    const event = tokenEvent(token, ROLE_NAMES);
    if (event === null) continue;
    const fields = { ...event.fields, ...details(event.fields.issue, event.type, state, opts.actions, opts.failureReasons) };
    const cleaned = event.type === 'issue.cleaned' && event.fields.issue !== undefined ? opts.cleanupLines?.get(event.fields.issue) : undefined;
    if (cleaned !== undefined) fields.message = cleaned.join('; ');
    log.emit(event.type, fields);
  }
  for (const warning of state.warnings) if (!opts.warningsBefore.has(warning)) log.emit('warning', { message: warning.message });
  // The daily budget notifies once per day: when it is first found spent.
  const day = opts.now.toISOString().slice(0, 10);
  if (opts.dailyBudgetSpent !== null && state.budget_reached_day !== day) {
    log.emit('budget.reached', { message: opts.dailyBudgetSpent });
    state.budget_reached_day = day;
  }
}

/** What the state and the actions know about the issue of a token event. */
function details(issue: number | undefined, type: string, state: DaemonState, actions: readonly Action[], failureReasons?: ReadonlyMap<number, string>): EventFields {
  if (issue === undefined) return {};
  const slot = Object.values(state.shepherds).find((s) => s.status === 'working' && s.issue === issue);
  const finished = actions.find((a) => (a.type === 'finish-shepherd' || a.type === 'adopt-shepherd') && a.issue === issue);
  const recovered = actions.find((a) => a.type === 'recover-shepherd' && a.issue === issue);
  const progress = finished !== undefined && 'progress' in finished ? finished.progress : null;
  const fields: EventFields = {};
  if (slot?.task_id) fields.task_id = slot.task_id;
  else if (progress !== null) fields.task_id = progress.task_id;
  else if (recovered?.type === 'recover-shepherd' && recovered.taskId !== null) fields.task_id = recovered.taskId;
  if (type === 'shepherd.spawned' && slot) Object.assign(fields, { pid: slot.pid ?? undefined, output_file: slot.output_file ?? undefined });
  if (progress?.message) fields.message = progress.message;
  if (progress?.pr_number) fields.pr = progress.pr_number;
  const reason = failureReasons?.get(issue);
  if (type === 'issue.blocked' && fields.message === undefined && recovered?.type === 'recover-shepherd') fields.message = `its shepherd failed ${recovered.failures} time(s)${reason !== undefined ? `; the last time: ${reason}` : ''}`;
  const retry = state.spawn_retry_queue[String(issue)];
  if (type === 'spawn.failed' || type === 'shepherd.died' || type === 'shepherd.stuck') {
    if (retry) fields.message = retry.last_error;
    else if (reason !== undefined) fields.message = reason;
  }
  return fields;
}
