/**
 * One iteration (`loom iterate`): load state → stop signal → one tracker snapshot → observe the
 * background processes → plan → execute → save → one summary line.
 *
 * Stateless between runs: everything it needs is in the state file, the tracker and
 * `.loom/progress/`. Planner actions become effects in executor.ts.
 */
import os from 'node:os';
import fs from 'node:fs';
import type { LoomConfig } from '../core/config-model.js';
import type { LoomPaths } from '../config/paths.js';
import type { DaemonState } from '../core/daemon-state.js';
import { activeShepherds, addWarning, foldUsage } from '../core/daemon-state.js';
import { UsageLedger } from '../usage/usage-ledger.js';
import { refreshUsageIndex } from '../usage/usage-index.js';
import { budgetExceeded, dayOf, emptyTotals } from '../core/usage.js';
import { activeLimits } from '../usage/runtime-limits.js';
import type { Action, Mode } from '../core/planner.js';
import { plan, planPage } from '../core/planner.js';
import { ProgressStore } from '../process/progress-store.js';
import { FileStateStore, SessionMismatchError } from '../state/state-store.js';
import { liveLock } from '../state/daemon-lock.js';
import { pausePoint } from '../process/crash-point.js';
import type { Tracker } from '../tracker/tracker.js';
import { readDependencies } from '../tracker/dependency-states.js';
import { freeDiskBytes } from '../fs/free-disk.js';
import { formatSize } from '../core/size.js';
import { gatherOverlap } from '../steps/overlap-facts.js';
import { overlapWaits } from '../core/overlap.js';
import { openDependencies } from '../core/dependencies.js';
import { defaultBranch, missingDefaultBranch } from '../git/git.js';
import { builderCommandProblem } from '../runtimes/command-path.js';
import { Label } from '../core/labels.js';
import { isTerminal } from '../core/progress.js';
import type { Observation } from '../core/planner.js';
import type { TrackerSnapshot } from '../core/tracker-model.js';
import { Executor } from './executor.js';
import { observe, pipeline } from './observe.js';
import { recordIteration } from './iteration-events.js';
import { ensureNotifyCursor, sendNotifications } from './notifier.js';
import { QueueUnavailableError } from '../queue/queue-errors.js';
import { availableStatus, observeQueue, unavailableStatus } from './queue-dispatch.js';
import { readQueueStatus, writeQueueStatus } from '../queue/queue-status.js';

/** How long a daemon's claim on its queue outlives its last iteration at least, ms (then another daemon may take the queue). */
const COORDINATOR_CLAIM_MS = 60_000;

export const SHUTDOWN_SIGNAL = 'SHUTDOWN_SIGNAL';
/** How much longer the parent sleeps after an iteration asked it to slow down. */
export const SLOW_DOWN_FACTOR = 4;
/**
 * Ready issues (and proposals) an iteration's snapshot reads at first (at least four per shepherd
 * slot): a tracker that can bound its snapshot reads this many, not the whole backlog.
 */
const SNAPSHOT_PAGE = 50;

export interface IterationOptions {
  paths: LoomPaths;
  config: LoomConfig;
  tracker: Tracker;
  force: boolean;
  mode: Mode;
  /** The daemon session this iteration belongs to; absent for a one-off `loom iterate`. */
  session?: string;
  now?: () => Date;
}

export interface IterationResult {
  summary: string;
  actions: Action[];
  state: DaemonState;
}

export async function runIteration(opts: IterationOptions): Promise<IterationResult> {
  const { paths, tracker, force, mode, session } = opts;
  // A configured default branch that does not exist, or a builder command that cannot run: no
  // shepherd starts (each would fail and end its issue blocked); everything else — recording finished shepherds, the support roles — goes on.
  const missingBase = await missingDefaultBranch(paths.root, opts.config.defaultBranch);
  const baseProblem = missingBase ?? builderCommandProblem(paths.root, opts.config.roles.builder);
  const config = baseProblem === null ? opts.config : { ...opts.config, roles: { ...opts.config.roles, builder: { ...opts.config.roles.builder, enabled: false } } };
  const clock = opts.now ?? (() => new Date());
  const store = new FileStateStore(paths.state);
  const { state } = store.load(clock());
  const began = Date.now();
  const warningsBefore = new Set(state.warnings);
  ensureNotifyCursor(paths, state);
  if (mode === 'normal' && fs.existsSync(paths.stopSignal)) return { summary: SHUTDOWN_SIGNAL, actions: [], state };
  if (session !== undefined && state.daemon_session_id !== session) throw new SessionMismatchError(session, state.daemon_session_id);

  const progress = new ProgressStore(paths.progress);
  const now = clock();
  const limits = activeLimits(paths.limits, now);
  state.runtime_limits = Object.fromEntries(Object.values(limits).map((l) => [l.runtime, { until: l.until, reason: l.reason }]));
  const ledger = new UsageLedger(paths.usage).readFrom(state.usage.ledger_offset);
  state.usage = foldUsage(state.usage, ledger.entries, ledger.offset);
  if (ledger.entries.length > 0 || (state.usage.ledger_offset > 0 && !fs.existsSync(paths.usageIndex))) {
    const problem = refreshUsageIndex(paths.usageIndex, paths.usage);
    if (problem !== null) addWarning(state, now.toISOString(), problem);
  }
  const today = state.usage.by_day[dayOf(now.toISOString())] ?? emptyTotals();
  const dailyBudgetSpent = budgetExceeded({ ...config.budget, perIssueUsd: undefined, perIssueTokens: undefined }, emptyTotals(), today);
  // The snapshot reads a page of the ready issues; a larger one while the page's were all passed
  // over with a slot still free (planPage), so gated issues never hide eligible ones behind them.
  let page = Math.max(SNAPSHOT_PAGE, 4 * config.maxShepherds);
  let snapshot: TrackerSnapshot;
  let observation: Observation;
  const overlapWarnings: string[] = [];
  for (;;) {
    snapshot = await tracker.snapshot({ page });
    observation = observe(state, snapshot, progress, now.getTime());
    const read = new Set<number>();
    observation.dependencies = await readDependencies(tracker, snapshot.issues, read);
    observation.dependenciesRead = [...read];
    observation.freeDisk = freeDiskBytes(paths.root);
    overlapWarnings.length = 0;
    if (config.overlap === 'wait' && mode === 'normal' && config.roles.builder.enabled) {
      try {
        observation.overlap = await observeOverlap(opts, state, observation, snapshot);
      } catch (error) {
        // Without the file facts nothing waits for overlap this tick: never worse than `overlap: allow`.
        overlapWarnings.push(`overlap avoidance skipped this iteration: ${(error as Error).message}`);
      }
    }
    observation.limitedRuntimes = Object.keys(limits);
    observation.dailyBudgetSpent = dailyBudgetSpent;
    if (mode !== 'normal' || !planPage({ state, observation, config, now: now.getTime(), force, mode }).readMore) break;
    page *= 4;
  }
  for (const warning of [...(snapshot.warnings ?? []), ...overlapWarnings]) addWarning(state, clock().toISOString(), warning);
  // Said once (not each iteration) while it lasts.
  if (baseProblem !== null && !state.warnings.some((w) => w.message === baseProblem)) addWarning(state, clock().toISOString(), baseProblem);
  // The bullmq executor: shepherds are queue jobs; without Redis nothing is dispatched or changed.
  // Loaded only here: bullmq and ioredis are most of a local iteration's start-up otherwise.
  const queue = config.executor.kind === 'bullmq' ? new (await import('../queue/shepherd-queue.js')).ShepherdQueue(config.executor.redis) : null;
  const queueTokens: string[] = [];
  let actions: Action[];
  let executor: Executor;
  try {
    if (queue !== null && config.executor.kind === 'bullmq') {
      const redis = config.executor.redis;
      let jobs;
      let workers;
      try {
        // One daemon per queue: another one's jobs would be adopted here and its drain undone.
        const holder = { id: `${os.hostname()}:${paths.root}`, host: os.hostname(), root: paths.root, pid: process.pid, since: now.toISOString() };
        const other = await queue.coordinate(holder, Math.max(COORDINATOR_CLAIM_MS, 3 * config.pollInterval));
        if (other !== null) {
          const held = `another Loom daemon coordinates this queue: ${other.root} on ${other.host} (pid ${other.pid}, since ${other.since}); this one dispatches nothing (one daemon per queue: stop one, or give this one another Redis database, redis://HOST:6379/1)`;
          const previous = readQueueStatus(paths);
          writeQueueStatus(paths, { ...availableStatus(redis, [], [], now), ...(previous ? { jobs: previous.jobs, workers: previous.workers } : {}), held_by: held });
          const at = clock().toISOString();
          if (state.warnings.at(-1)?.message !== held) addWarning(state, at, held);
          state.pipeline_state = pipeline(snapshot, at);
          state.iteration += 1;
          state.last_poll = at;
          const summary = `ready=${state.pipeline_state.ready.length} building=${state.pipeline_state.building.length} queue-coordinated-by=${other.host}:${other.root}`;
          state.last_summary = summary;
          store.save(state, session);
          return { summary, actions: [], state };
        }
        // `loom stop` drains the fleet: the queue is paused and the workers hand their jobs over.
        await queue.drain(mode === 'normal' ? null : now.toISOString());
        jobs = await queue.jobs();
        workers = await queue.workers(now.getTime());
      } catch (error) {
        if (!(error instanceof QueueUnavailableError)) throw error;
        const status = unavailableStatus(paths, redis, error.message, now);
        writeQueueStatus(paths, status);
        const at = clock().toISOString();
        state.pipeline_state = pipeline(snapshot, at);
        state.iteration += 1;
        state.last_poll = at;
        const summary = `ready=${state.pipeline_state.ready.length} building=${state.pipeline_state.building.length} queue-unavailable since=${status.paused_since ?? at}`;
        state.last_summary = summary;
        store.save(state, session);
        return { summary, actions: [], state };
      }
      if (readQueueStatus(paths)?.available === false) queueTokens.push('queue-back');
      writeQueueStatus(paths, availableStatus(redis, jobs, workers, now));
      const { lost } = observeQueue(observation, state, jobs, now);
      for (const job of lost) {
        await queue.enqueue({ issue: job.issue, attempt: job.attempt, forceMerge: force });
        queueTokens.push(`requeued=#${job.issue}`);
      }
    }
    actions = plan({ state, observation, config, now: now.getTime(), force, mode });
    await pausePoint('iteration:actions');
    // A daemon killed outright leaves its iteration running: from then on it acts no more (what it
    // started, the next daemon's state would never know).
    const abandoned = () => session !== undefined && liveLock(paths.lock)?.session_id !== session;
    executor = new Executor({ paths, config, tracker, progress, state, force, clock, queue, abandoned });
    executor.tokens.push(...queueTokens);
    await executor.run(actions);
    await executor.cleanup(snapshot);
  } finally {
    await queue?.close();
  }

  const at = clock().toISOString();
  state.pipeline_state = pipeline(snapshot, at);
  state.iteration += 1;
  state.last_poll = at;
  state.force_mode = force;
  const active = activeShepherds(state).length;
  // A tracker running low on its request budget: ask the parent to poll less often.
  const health = tracker.health();
  const low = health.state === 'slow-down' ? health : health.state === 'unavailable' ? health.lowBudget : null;
  if (low !== null) executor.tokens.push(`slow-down=${low.remaining}/${low.limit}`);
  const spawned = new Set(actions.flatMap((a) => (a.type === 'spawn-shepherd' ? [a.issue] : [])));
  const overlapping = [...overlapWaits(observation.overlap, Object.keys(observation.overlap?.predicted ?? {}).map(Number)).keys()].filter((n) => !spawned.has(n) && openDependencies(observation.dependencies, n).length === 0);
  if (baseProblem !== null) executor.tokens.push(missingBase !== null ? `!base=${opts.config.defaultBranch ?? ''}` : '!builder-command');
  if (overlapping.length > 0) executor.tokens.push(`overlap-wait=${overlapping.map((n) => `#${n}`).join(',')}`);
  if (observation.freeDisk !== null && observation.freeDisk !== undefined && observation.freeDisk < config.minFreeDisk) executor.tokens.push(`low-disk=${formatSize(observation.freeDisk).replace(' ', '')}`);
  const summary = [
    `ready=${state.pipeline_state.counts.ready}`,
    `building=${state.pipeline_state.counts.building}`,
    `shepherds=${active}/${config.maxShepherds}`,
    ...executor.tokens,
  ].join(' ');
  state.last_summary = summary;
  recordIteration({ paths, state, actions, tokens: executor.tokens, announced: executor.announced, cleanupLines: executor.cleanupLines, failureReasons: executor.failureReasons, summary, mode, durationMs: Date.now() - began, warningsBefore, dailyBudgetSpent: observation.dailyBudgetSpent, now: clock() });
  await sendNotifications({ paths, config, state, now: clock() });
  store.save(state, session);
  return { summary, actions, state };
}


/** The file facts of the ready issues and of the work in progress (live shepherds, open Loom PRs). */
async function observeOverlap(opts: IterationOptions, state: DaemonState, observation: Observation, snapshot: TrackerSnapshot) {
  const { paths, config, tracker } = opts;
  const running = new Set<number>();
  for (const [, entry] of activeShepherds(state)) {
    const view = entry.task_id ? observation.processes[entry.task_id] : undefined;
    if (view?.alive && !(view.progress && isTerminal(view.progress.status))) running.add(entry.issue as number);
  }
  for (const view of observation.strays) if (view.alive && view.progress?.issue != null && !isTerminal(view.progress.status)) running.add(view.progress.issue);
  const candidates = snapshot.issues.filter((i) => i.labels.includes(Label.issue) && !i.labels.includes(Label.building));
  const base = config.defaultBranch ?? (await defaultBranch(paths.root));
  return gatherOverlap({ paths, config, base, remote: tracker.kind === 'github', snapshot, candidates, running: [...running], saveCache: true });
}
