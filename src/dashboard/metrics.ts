/**
 * `GET /metrics`: Loom in the Prometheus text format (prom-client). Counters are folded from the
 * event log — every kept event when the dashboard starts, then each new one as it is written — so
 * they count what every process did (iterations, shepherds, roles, agents), not what this one
 * saw; gauges are read from the latest board at scrape time. A dashboard restart refolds the
 * kept log, which Prometheus sees as a counter reset only once rotation has dropped events.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { EventType, LoomEvent } from '../core/events.js';

/** What the board tells the gauges (src/status/board.ts builds it). */
export interface Gauges {
  daemon_up: number;
  shepherds_active: number;
  shepherds_max: number;
  issues_by_label: Record<string, number>;
  pull_requests_by_label: Record<string, number>;
}

export class LoomMetrics {
  readonly registry = new Registry();
  private readonly iterations: Counter<'outcome'>;
  private readonly iterationSeconds: Histogram;
  private readonly merges: Counter;
  private readonly failures: Counter<'kind'>;
  private readonly stalls: Counter<'what'>;
  private readonly shepherdsFinished: Counter<'outcome'>;
  private readonly verdicts: Counter<'verdict'>;
  private readonly agentRuns: Counter<'runtime' | 'role' | 'outcome'>;
  private readonly agentTokens: Counter<'runtime' | 'role' | 'type'>;
  private readonly agentCost: Counter<'runtime' | 'role'>;
  private readonly agentSeconds: Counter<'runtime' | 'role'>;
  private readonly trackerRequests: Counter;
  private readonly rateRemaining: Gauge<'tracker'>;
  private readonly rateLimit: Gauge<'tracker'>;
  private readonly restarts: Counter<'after'>;
  private readonly limits: Counter<'runtime'>;
  private readonly budgets: Counter;
  private readonly events: Counter<'type'>;

  constructor(gauges: () => Gauges | null) {
    const registers = [this.registry];
    this.iterations = new Counter({ name: 'loom_iterations_total', help: 'Daemon iterations, by outcome (ok, failed)', labelNames: ['outcome'], registers });
    this.iterationSeconds = new Histogram({ name: 'loom_iteration_duration_seconds', help: 'Work time of one iteration', buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30], registers });
    this.merges = new Counter({ name: 'loom_merges_total', help: 'Pull requests merged by Loom', registers });
    this.failures = new Counter({ name: 'loom_failures_total', help: 'Failures by kind: blocked, shepherd_died, shepherd_stuck, spawn, role, agent_failed, agent_stalled, agent_timeout, iteration, action, daemon_crash', labelNames: ['kind'], registers });
    this.stalls = new Counter({ name: 'loom_stalls_total', help: 'Stalls detected: a shepherd with no heartbeat, an agent with no output, a role that stopped responding', labelNames: ['what'], registers });
    this.shepherdsFinished = new Counter({ name: 'loom_shepherds_finished_total', help: 'Shepherds the daemon recorded as finished, by outcome', labelNames: ['outcome'], registers });
    this.verdicts = new Counter({ name: 'loom_verdicts_total', help: 'Judge verdicts (approve, changes)', labelNames: ['verdict'], registers });
    this.agentRuns = new Counter({ name: 'loom_agent_runs_total', help: 'Agent runs by runtime, role and outcome', labelNames: ['runtime', 'role', 'outcome'], registers });
    this.agentTokens = new Counter({ name: 'loom_agent_tokens_total', help: 'Agent tokens by runtime, role and type (input, output, cached_input)', labelNames: ['runtime', 'role', 'type'], registers });
    this.agentCost = new Counter({ name: 'loom_agent_cost_usd_total', help: 'Agent cost in USD by runtime and role', labelNames: ['runtime', 'role'], registers });
    this.agentSeconds = new Counter({ name: 'loom_agent_seconds_total', help: 'Agent wall time by runtime and role', labelNames: ['runtime', 'role'], registers });
    this.trackerRequests = new Counter({ name: 'loom_tracker_requests_total', help: "Requests Loom's working processes sent to a rate-limited tracker (GitHub)", registers });
    this.rateRemaining = new Gauge({ name: 'loom_tracker_rate_limit_remaining', help: 'Tracker rate limit left, as last reported (absent until a process reported one)', labelNames: ['tracker'], registers });
    this.rateLimit = new Gauge({ name: 'loom_tracker_rate_limit', help: 'Tracker rate limit per window, as last reported', labelNames: ['tracker'], registers });
    this.restarts = new Counter({ name: 'loom_daemon_restarts_total', help: 'Daemon starts after an earlier one, by how the earlier one ended (stop, crash)', labelNames: ['after'], registers });
    this.limits = new Counter({ name: 'loom_runtime_limited_total', help: 'Times a runtime was found rate- or usage-limited', labelNames: ['runtime'], registers });
    this.budgets = new Counter({ name: 'loom_budget_reached_total', help: 'Agent runs refused (or a day stopped) by a budget', registers });
    this.events = new Counter({ name: 'loom_events_total', help: 'Events in the event log, by type', labelNames: ['type'], registers });

    const gauge = (name: string, help: string, read: (g: Gauges) => number) =>
      new Gauge({
        name,
        help,
        registers,
        collect() {
          const g = gauges();
          if (g !== null) this.set(read(g));
        },
      });
    gauge('loom_daemon_up', '1 while the daemon runs, else 0', (g) => g.daemon_up);
    gauge('loom_shepherds_active', 'Shepherds working now', (g) => g.shepherds_active);
    gauge('loom_shepherds_max', 'maxShepherds', (g) => g.shepherds_max);
    const byLabel = (name: string, help: string, read: (g: Gauges) => Record<string, number>) =>
      new Gauge({
        name,
        help,
        labelNames: ['label'],
        registers,
        collect() {
          const g = gauges();
          if (g === null) return;
          this.reset();
          for (const [label, n] of Object.entries(read(g))) this.set({ label }, n);
        },
      });
    byLabel('loom_issues', 'Open issues by Loom label', (g) => g.issues_by_label);
    byLabel('loom_pull_requests', 'Open pull requests by Loom label', (g) => g.pull_requests_by_label);
  }

  /** Counts one event. */
  fold(e: LoomEvent): void {
    this.events.inc({ type: e.type });
    this.handlers[e.type]?.(e);
  }

  private fail(kind: string): void {
    this.failures.inc({ kind });
  }

  /** What each event type counts besides `loom_events_total`. */
  private readonly handlers: Partial<Record<EventType, (e: LoomEvent) => void>> = {
    iteration: (e) => {
      this.iterations.inc({ outcome: 'ok' });
      if (typeof e.duration_ms === 'number') this.iterationSeconds.observe(e.duration_ms / 1000);
    },
    'iteration.failed': () => {
      this.iterations.inc({ outcome: 'failed' });
      this.fail('iteration');
    },
    'pr.merged': () => this.merges.inc(),
    'issue.blocked': () => this.fail('blocked'),
    'shepherd.died': () => this.fail('shepherd_died'),
    'shepherd.stuck': () => {
      this.fail('shepherd_stuck');
      this.stalls.inc({ what: 'shepherd' });
    },
    'spawn.failed': () => this.fail('spawn'),
    'action.failed': () => this.fail('action'),
    'role.failed': (e) => {
      this.fail('role');
      if (e.outcome === 'stalled') this.stalls.inc({ what: 'role' });
    },
    'daemon.crashed': () => this.fail('daemon_crash'),
    'daemon.started': (e) => {
      if (e.after === 'stop' || e.after === 'crash') this.restarts.inc({ after: e.after });
    },
    'shepherd.completed': () => this.shepherdsFinished.inc({ outcome: 'completed' }),
    'shepherd.no-changes': () => this.shepherdsFinished.inc({ outcome: 'no-changes' }),
    'shepherd.stopped': () => this.shepherdsFinished.inc({ outcome: 'stopped' }),
    'shepherd.skipped': () => this.shepherdsFinished.inc({ outcome: 'skipped' }),
    'shepherd.failed': () => this.shepherdsFinished.inc({ outcome: 'failed' }),
    verdict: (e) => this.verdicts.inc({ verdict: e.verdict ?? 'unknown' }),
    'agent.run': (e) => {
      const who = { runtime: e.runtime ?? 'unknown', role: e.role ?? 'unknown' };
      const outcome = e.outcome ?? 'unknown';
      this.agentRuns.inc({ ...who, outcome });
      if (outcome !== 'success' && outcome !== 'aborted') this.fail(`agent_${outcome}`);
      if (outcome === 'stalled') this.stalls.inc({ what: 'agent' });
      // Every type is touched (even at zero), so each runtime and role that ran shows in the series.
      for (const [type, n] of [['input', e.input_tokens], ['output', e.output_tokens], ['cached_input', e.cached_input_tokens]] as const) this.agentTokens.inc({ ...who, type }, typeof n === 'number' && n > 0 ? n : 0);
      this.agentCost.inc(who, typeof e.cost_usd === 'number' && e.cost_usd > 0 ? e.cost_usd : 0);
      if (typeof e.duration_ms === 'number') this.agentSeconds.inc(who, e.duration_ms / 1000);
    },
    'tracker.usage': (e) => {
      if (typeof e.requests === 'number') this.trackerRequests.inc(e.requests);
      this.rate(e);
    },
    'tracker.slow-down': (e) => this.rate(e),
    'runtime.limited': (e) => this.limits.inc({ runtime: e.runtime ?? 'unknown' }),
    'budget.reached': () => this.budgets.inc(),
  };

  private rate(e: LoomEvent): void {
    if (typeof e.rate_limit_remaining === 'number') this.rateRemaining.set({ tracker: 'github' }, e.rate_limit_remaining);
    if (typeof e.rate_limit_limit === 'number') this.rateLimit.set({ tracker: 'github' }, e.rate_limit_limit);
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
