/**
 * The event log's vocabulary (pure): what one line of `.loom/events.jsonl` holds, the event
 * types, which of them notify a human, how the iteration's summary tokens become events, and
 * one line of text per event for `loom events`. The writer is src/process/event-log.ts.
 */

/** Every event type, by who emits it. */
export const EVENT_TYPES = [
  // The daemon's parent loop.
  'daemon.started',
  'daemon.crashed',
  'daemon.stopped',
  'iteration.failed',
  // One per iteration, and one per summary token of it (the executor's actions).
  'iteration',
  'shepherd.spawned',
  'shepherd.completed',
  'shepherd.no-changes',
  'shepherd.stopped',
  'shepherd.skipped',
  'shepherd.failed',
  'shepherd.died',
  'shepherd.stuck',
  'shepherd.adopted',
  'issue.blocked',
  'issue.released',
  'issue.promoted',
  'issue.untrusted',
  'issue.cleaned',
  'spawn.skipped',
  'spawn.failed',
  'role.started',
  'role.adopted',
  'role.failed',
  'action.failed',
  'tracker.slow-down',
  'warning',
  'budget.reached',
  // Shepherd and role processes (their task recorder and the steps they share).
  'task.started',
  'task.phase',
  'task.finished',
  'agent.started',
  'agent.run',
  'verdict',
  'pr.merged',
  'runtime.limited',
  // Any working process that talked to a rate-limited tracker.
  'tracker.usage',
  // The notifier.
  'notify.failed',
  // The post-merge guard: a merge turned the base red and was reverted.
  'guard.reverted',
] as const;

export type EventType = (typeof EVENT_TYPES)[number];

/** The fields of an event besides its time and type; each is set when it applies (docs/observability.md). */
export interface EventFields {
  issue?: number;
  pr?: number;
  task_id?: string;
  /** The daemon session the emitting process belongs to. */
  session?: string;
  /** `shepherd` or `role` for task events. */
  kind?: string;
  role?: string;
  runtime?: string;
  model?: string;
  phase?: string;
  outcome?: string;
  message?: string;
  pid?: number;
  attempt?: number;
  duration_ms?: number;
  input_tokens?: number;
  output_tokens?: number;
  cached_input_tokens?: number;
  cost_usd?: number;
  session_id?: string;
  verdict?: string;
  iteration?: number;
  summary?: string;
  output_file?: string;
  until?: string;
  requests?: number;
  rate_limit_remaining?: number;
  rate_limit_limit?: number;
  conditional_hits?: number;
  exit_code?: number;
  merged?: boolean;
  /** `pr.merged`: the merge commit. */
  commit?: string;
  /** `verdict`: the test gate, `passed` or `failed` (absent when none is configured). */
  tests?: string;
  /** `daemon.started`: how the previous daemon ended (`none`: there was none). */
  after?: 'none' | 'stop' | 'crash';
  force?: boolean;
  [field: string]: unknown;
}

/** One line of the event log: the time, the type, and the fields that apply. */
export interface LoomEvent extends EventFields {
  at: string;
  type: EventType;
}

/** Events a human is told about when `notify` is configured. */
export const NOTIFY_TYPES: readonly EventType[] = ['issue.blocked', 'budget.reached', 'runtime.limited', 'daemon.crashed', 'guard.reverted'];

/** The notification kinds of config `notify.on`, by event type. */
export const NOTIFY_KINDS: Readonly<Record<string, EventType>> = {
  blocked: 'issue.blocked',
  budget: 'budget.reached',
  limited: 'runtime.limited',
  crashed: 'daemon.crashed',
  guard: 'guard.reverted',
};

/**
 * Events of one kind that say the same thing again (a budget reached by every later run, a limit
 * recorded by every role that hits it) notify once: this key names "the same thing"; null means
 * every occurrence notifies.
 */
export function notifyKey(event: LoomEvent): string | null {
  if (event.type === 'budget.reached') return `budget:${event.issue ?? 'day'}:${event.at.slice(0, 10)}`;
  if (event.type === 'runtime.limited') return `limited:${event.runtime ?? '?'}:${event.until ?? event.at.slice(0, 13)}`;
  return null;
}

/** Summary token words (`word=#N`) and the event each becomes. */
const TOKEN_EVENTS: Readonly<Record<string, EventType>> = {
  '+shepherd': 'shepherd.spawned',
  done: 'shepherd.completed',
  'no-changes': 'shepherd.no-changes',
  stopped: 'shepherd.stopped',
  skipped: 'shepherd.skipped',
  failed: 'shepherd.failed',
  died: 'shepherd.died',
  stuck: 'shepherd.stuck',
  adopt: 'shepherd.adopted',
  blocked: 'issue.blocked',
  released: 'issue.released',
  promote: 'issue.promoted',
  untrusted: 'issue.untrusted',
  cleaned: 'issue.cleaned',
  skip: 'spawn.skipped',
  '!spawn': 'spawn.failed',
};

/**
 * The event of one summary token (docs/iteration.md lists them): `+shepherd=#12`, `done=#12`,
 * `+judge`, `!judge=timeout`, `!promote=#3`, `cleaned=#4`, `!cleanup`, `slow-down=40/5000`. Null
 * for a token it does not know.
 */
export function tokenEvent(token: string, roles: readonly string[]): { type: EventType; fields: EventFields } | null {
  const [word = '', value] = token.split('=', 2);
  const issue = value !== undefined && /^#\d+$/.test(value) ? Number(value.slice(1)) : undefined;
  const known = TOKEN_EVENTS[word];
  if (known !== undefined && issue !== undefined) return { type: known, fields: { issue } };
  if (word === 'slow-down' && value !== undefined) {
    const [remaining, limit] = value.split('/').map(Number);
    return { type: 'tracker.slow-down', fields: { rate_limit_remaining: remaining, rate_limit_limit: limit } };
  }
  if (word.startsWith('+') && value === undefined && roles.includes(word.slice(1))) return { type: 'role.started', fields: { role: word.slice(1) } };
  if (word === 'adopt' && value !== undefined && roles.includes(value)) return { type: 'role.adopted', fields: { role: value } };
  if (word === '!cleanup' && value === undefined) return { type: 'action.failed', fields: { outcome: 'cleanup' } };
  if (word.startsWith('!') && value !== undefined) {
    const name = word.slice(1);
    if (roles.includes(name)) return { type: 'role.failed', fields: { role: name, outcome: value } };
    return { type: 'action.failed', fields: { outcome: name, ...(issue !== undefined ? { issue } : { message: value }) } };
  }
  return null;
}

const money = (usd: number | undefined) => (usd === undefined ? '' : `$${usd.toFixed(usd < 0.01 && usd > 0 ? 4 : 2)}`);
const seconds = (ms: number | undefined) => (ms === undefined ? '' : `${(ms / 1000).toFixed(1)}s`);

/** An iteration that did nothing (its summary has no action token): kept in the log, hidden from feeds. */
export function isIdleIteration(e: LoomEvent): boolean {
  return e.type === 'iteration' && typeof e.summary === 'string' && /^ready=\d+ building=\d+ shepherds=\d+\/\d+$/.test(e.summary);
}

/** How the events that say more than their type read. */
const FORMATS: Partial<Record<EventType, (e: LoomEvent) => string>> = {
  'daemon.started': (e) => `daemon started (pid ${e.pid ?? '?'}${e.after === 'crash' ? ', after a crash' : e.after === 'none' ? ', first start' : ''}${e.force === true ? ', force mode' : ''})`,
  'daemon.stopped': (e) => `daemon stopped${e.message ? `: ${e.message}` : ''}`,
  'daemon.crashed': (e) => `the last daemon crashed${e.message ? `: ${e.message}` : ''}`,
  'iteration.failed': (e) => `iteration ${e.iteration ?? '?'} failed (exit ${e.exit_code ?? 'killed'})${e.message ? `: ${e.message}` : ''}`,
  'shepherd.spawned': (e) => `shepherd spawned (task ${e.task_id ?? '?'})`,
  'issue.blocked': (e) => `blocked${e.message ? ` — ${e.message}` : ''}`,
  'role.started': () => 'started by the daemon',
  'role.adopted': () => 'a run the daemon did not start, taken in (a manual `loom role`, or one a killed daemon left)',
  'role.failed': (e) => `ended ${e.outcome ?? 'badly'}`,
  'task.started': (e) => `${e.kind ?? 'task'} started (task ${e.task_id ?? '?'}, pid ${e.pid ?? '?'})`,
  'task.phase': (e) => `phase ${e.phase ?? '?'}`,
  'task.finished': (e) => `${e.kind ?? 'task'} finished: ${e.outcome ?? '?'}${e.message ? ` — ${e.message}` : ''}`,
  'agent.started': (e) => `agent started for ${e.phase ?? e.role ?? '?'} (pid ${e.pid ?? '?'})`,
  'agent.run': (e) => {
    const tokens = (e.input_tokens ?? 0) + (e.output_tokens ?? 0);
    return `${e.role ?? '?'} on ${e.runtime ?? '?'}${e.attempt !== undefined && e.attempt > 1 ? ` (attempt ${e.attempt})` : ''}: ${e.outcome ?? '?'} in ${seconds(e.duration_ms)}${tokens > 0 ? `, ${tokens} tokens` : ''}${e.cost_usd ? `, ${money(e.cost_usd)}` : ''}${e.message && e.outcome !== 'success' ? ` — ${e.message}` : ''}`;
  },
  verdict: (e) => `judge round ${e.attempt ?? '?'} on PR #${e.pr ?? '?'}: ${e.verdict === 'approve' ? 'approved' : 'changes requested'}`,
  'pr.merged': (e) => `merged PR #${e.pr ?? '?'}${e.commit !== undefined ? ` as ${e.commit.slice(0, 12)}` : ''}`,
  iteration: (e) => `iteration ${e.iteration ?? '?'} (${seconds(e.duration_ms)}): ${e.summary ?? ''}`,
  'runtime.limited': (e) => `runtime ${e.runtime ?? '?'} limited until ${e.until ?? '?'}${e.message ? ` — ${e.message}` : ''}`,
  'tracker.usage': (e) => `${e.requests ?? 0} tracker request(s)${e.rate_limit_remaining !== undefined ? `, rate limit ${e.rate_limit_remaining}/${e.rate_limit_limit ?? '?'} left` : ''}`,
};

/** One line of text for an event (without its time): what `loom events` prints. */
export function describeEvent(e: LoomEvent): string {
  const who = [e.issue !== undefined ? `#${e.issue}` : '', e.role !== undefined && (e.kind === 'role' || e.issue === undefined) ? e.role : ''].filter(Boolean).join(' ');
  const format = FORMATS[e.type];
  const what = format !== undefined ? format(e) : [e.type, e.outcome ?? '', e.message !== undefined ? `— ${e.message}` : ''].filter(Boolean).join(' ');
  return [who, what].filter(Boolean).join(' ');
}
