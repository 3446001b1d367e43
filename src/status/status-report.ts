/**
 * `loom status`: the read-only observation interface (seed "Status Command", PRODUCT.md §8).
 *
 * Invariant owned here: building a report modifies no file — the state file is only read, the
 * tracker is opened read-only, nothing is moved aside or rebuilt. A daemon whose state says
 * running but whose lock holder is gone is reported as crashed.
 */
import fs from 'node:fs';
import type { LoomConfig } from '../core/config-model.js';
import { GENERATOR_ROLES, SUPPORT_ROLES } from '../core/vocabulary.js';
import { formatDuration } from '../core/duration.js';
import type { LoomPaths } from '../config/paths.js';
import type { DaemonState } from '../core/daemon-state.js';
import { activeShepherds } from '../core/daemon-state.js';
import { Label, PROPOSAL_LABELS } from '../core/labels.js';
import { buildableQueue, buildOrder } from '../core/planner.js';
import { holdOf, markedFailed, originalLabel } from '../core/original-labels.js';
import { leftByKilledDaemon, readLock } from '../state/daemon-lock.js';
import { isProcessAlive } from '../process/process-identity.js';
import { sandboxSummary } from '../process/sandbox-probe.js';
import { ProgressStore, viewOf } from '../process/progress-store.js';
import { FileStateStore } from '../state/state-store.js';
import type { UsageTotals } from '../core/usage.js';
import { budgetExceeded, dayOf, emptyTotals } from '../core/usage.js';
import { usageSpent } from '../usage/usage-index.js';
import { activeLimits } from '../usage/runtime-limits.js';
import type { TrackerSnapshot } from '../core/tracker-model.js';
import type { TrackerHealth } from '../tracker/tracker.js';
import type { DependencyMap } from '../core/dependencies.js';
import { openDependencies } from '../core/dependencies.js';
import type { OverlapFacts } from '../core/overlap.js';
import { overlapWaits } from '../core/overlap.js';
import { formatSize } from '../core/size.js';
import { freeDiskBytes } from '../fs/free-disk.js';
import { BaseGuardStore, type BaseGuardState } from '../state/base-guard-store.js';
import { MergeQueue, type MergeStep } from '../process/merge-queue.js';
import { pauseMessage } from '../steps/base-guard.js';
import type { QueueStatus } from '../queue/queue-status.js';
import { readQueueStatus } from '../queue/queue-status.js';
import { FORGET_WORKER_MS, workerSilent } from '../core/worker-liveness.js';
import type { WorkerInfo } from '../queue/shepherd-queue.js';

export interface ShepherdStatus {
  name: string;
  /** `errored` and `paused` are slot statuses an earlier Loom left in the state file. */
  status: 'working' | 'idle' | 'errored' | 'paused';
  issue: number | null;
  pid: number | null;
  alive: boolean;
  phase: string | null;
  /** Milliseconds since the shepherd started. */
  running_ms: number | null;
  /** Milliseconds since the last heartbeat. */
  heartbeat_age_ms: number | null;
  output_file: string | null;
  /** Runs inside the shepherd host (`executor.shepherds: "host"`): `pid` is the host's, shared by its runs. */
  hosted?: boolean;
}

export interface StatusReport {
  daemon: {
    status: 'running' | 'stopped' | 'crashed' | 'never-started';
    pid: number | null;
    started_at: string | null;
    uptime_ms: number | null;
    force_mode: boolean;
    iteration: number;
    last_poll: string | null;
    last_summary: string | null;
    stop_requested: boolean;
    /** The log of the daemon running in the background, or of the last one that did; null when there is none. */
    log_file: string | null;
  };
  issues: {
    ready: number;
    /** Ready issues not built while a `Depends on #N` issue is open. */
    waiting_on_dependencies: number;
    /** Ready issues not built while their files overlap a running shepherd's or an open Loom PR's (`overlap: wait`). */
    waiting_on_overlap: number;
    /**
     * The two waiting counts were taken over the first this many ready issues in build order (the
     * tracker read a page of them, as the iteration does); null when over every ready issue.
     */
    waiting_counted_over_first: number | null;
    building: number;
    /** `loom:blocked`, or a failure mark of the original Loom (`loom:failed:*`, `loom:needs-fix`). */
    blocked: number;
    urgent: number;
    /** Issues and PRs held for a human by the original Loom's `loom:operator*`, `loom:needs-capability`. */
    held: number;
    proposals: { architect: number; hermit: number; curated: number };
    /** How many open issues and PRs carry each label of the original Loom (docs/state-machine.md). */
    original_labels: Record<string, number>;
  };
  pull_requests: { review_requested: number; changes_requested: number; ready_to_merge: number };
  /** The merge path: a pause by the post-merge guard, its last verdict, and the merge queue (first served first). */
  merging: MergingStatus;
  shepherds: { active: number; max: number; slots: ShepherdStatus[]; unrecorded: { issue: number; pid: number | null; task_id: string }[] };
  support_roles: { role: string; enabled: boolean; status: 'running' | 'idle'; started: string | null; last_completed: string | null; last_outcome: string | null }[];
  session: { completed_issues: number; prs_merged: number };
  /** Agent tokens and cost (from the usage ledger): today (UTC), all time, and per working issue. */
  usage: { today: UsageTotals; total: UsageTotals; by_issue: Record<string, UsageTotals> };
  /** Runtimes that get no work until the time given. */
  runtime_limits: { runtime: string; until: string; reason: string }[];
  /** The tracker takes no calls until this time (GitHub: the rate-limit circuit breaker is open). */
  tracker_paused_until: string | null;
  spawn_retry_queue: { issue: number; failures: number; next_retry_at: string }[];
  /** Free space on the repository's filesystem (null: unknown); `low`: no new worktree starts. */
  disk: { free_bytes: number | null; min_free_bytes: number; low: boolean };
  /** GitHub: ready issues whose `loom:issue` was not applied by someone with write access. */
  waiting_for_maintainer: number[];
  warnings: { time: string; message: string }[];
  /** Which roles' agents run in bubblewrap, and whether it works here (docs/security.md). */
  sandbox: { sandboxed: string[]; unsandboxed: string[]; bwrap: 'works' | 'missing' | 'refused'; text: string };
  /** What the config loader accepted but wants said once (docs/config.md, `notes`). */
  notes: string[];
  /** Files the original Loom left that Loom reads for what they are and leaves alone. */
  original: { progress_files: { file: string; issue: number | null; status: string | null }[] };
  problems: string[];
  interventions: string[];
  /**
   * The bullmq executor (docs/distributed.md): the queue and its workers as the daemon last saw
   * them; null with the local executor.
   */
  /** `silent`: not seen for longer than its job lock (stopped, or cut off): its jobs go to other workers. */
  queue: (Omit<QueueStatus, 'workers'> & { workers: (WorkerInfo & { last_seen_ms: number | null; silent: boolean })[] }) | null;
}

export interface MergingStatus {
  /** Set while the post-merge guard pauses merging (the base went red). */
  paused: { reason: string; since: string; pr: number; issue: number; revert: string | null; revert_closed: boolean; failure: string } | null;
  last_guard: BaseGuardState['last'];
  /** PRs waiting for (or holding, position 1) the merge lock. */
  queue: { position: number; pr: number; issue: number; by: string; step: MergeStep; detail: string | null; since: string }[];
}

/** What `.loom/base-guard.json` and `.loom/merge-queue/` say (read-only). */
export function mergingStatus(paths: LoomPaths): MergingStatus {
  const guard = new BaseGuardStore(paths.baseGuard).read();
  const p = guard.paused;
  return {
    paused: p === null ? null : { reason: pauseMessage(p.merge.base, guard), since: p.since, pr: p.merge.pr, issue: p.merge.issue, revert: p.revert, revert_closed: p.revert_closed === true, failure: p.failure },
    last_guard: guard.last,
    queue: new MergeQueue(paths.mergeQueue).list().map((t, i) => ({ position: i + 1, pr: t.pr, issue: t.issue, by: t.by, step: t.step, detail: t.detail ?? null, since: t.since })),
  };
}

/** The queue in one line: "1. PR #4 (issue #3) merging — waiting on checks unit; 2. PR #6 (issue #5) waiting". */
/** Issue numbers an intervention names at most; the rest are counted. */
const LIST_LIMIT = 10;

export function renderQueue(queue: MergingStatus['queue']): string {
  return queue.map((q) => `${q.position}. PR #${q.pr} (issue #${q.issue}, ${q.by}) ${q.step}${q.detail ? `: ${q.detail}` : ''}`).join('; ');
}

export interface StatusInputs {
  paths: LoomPaths;
  config: LoomConfig;
  /** Tracker snapshot, or the error that prevented reading it. */
  snapshot: TrackerSnapshot | Error;
  /** What the tracker said of its health after the snapshot; null if it could not be opened. */
  trackerHealth: TrackerHealth | null;
  /** Problems found before (config invalid, ...). */
  problems: string[];
  now: Date;
  /** How the interventions spell a Loom command (default `loom`). */
  cli?: string;
  /** The ready issues' declared dependencies and their states. */
  dependencies?: DependencyMap;
  /** The ready issues' predicted files and the work in progress (`overlap: wait` only). */
  overlap?: OverlapFacts;
}

export function buildStatus(inputs: StatusInputs): StatusReport {
  const { paths, config, now } = inputs;
  const problems = [...inputs.problems];
  const store = new FileStateStore(paths.state);
  const state: DaemonState | null = store.peek();
  if (state === null && store.isCorrupt()) problems.push(`${paths.state} is unreadable; the daemon will move it aside and rebuild it on its next start`);
  const lock = readLock(paths.lock);
  const lockAlive = lock !== null && lock.holder === 'daemon' && isProcessAlive(lock.pid, lock.pid_start);
  const stateRunning = state?.running === true;
  const status: StatusReport['daemon']['status'] = lockAlive ? 'running' : stateRunning || (lock !== null && leftByKilledDaemon(lock, state)) ? 'crashed' : state === null ? 'never-started' : 'stopped';
  const t = now.getTime();
  // A time that is missing or no time at all (earlier installations wrote placeholders such as
  // "..." or "<timestamp>") is unknown: null, never NaN.
  const since = (iso: string | null | undefined) => {
    const at = iso ? Date.parse(iso) : NaN;
    return Number.isNaN(at) ? null : Math.max(0, t - at);
  };

  const snapshot = inputs.snapshot instanceof Error ? null : inputs.snapshot;
  if (inputs.snapshot instanceof Error) problems.push(`tracker: ${inputs.snapshot.message}`);
  // A bounded snapshot (`SnapshotPage`) brings the issues' counts; its PRs are all there.
  const page = snapshot?.page;
  const count = (label: string) => (page ? (page.counts[label] ?? 0) : (snapshot?.issues.filter((i) => i.labels.includes(label)).length ?? 0));
  const prCount = (label: string) => snapshot?.pullRequests.filter((p) => p.labels.includes(label)).length ?? 0;

  const progress = new ProgressStore(paths.progress);
  const queued = config.executor.kind === 'bullmq' ? readQueueStatus(paths) : null;
  const slots: ShepherdStatus[] = [];
  const names = new Set<string>(Array.from({ length: config.maxShepherds }, (_, i) => `shepherd-${i + 1}`));
  for (const name of Object.keys(state?.shepherds ?? {})) names.add(name);
  const recorded = new Set<string>();
  for (const name of names) {
    const entry = state?.shepherds[name];
    if (entry && (entry.status === 'errored' || entry.status === 'paused')) {
      slots.push({ name, status: entry.status, issue: entry.issue, pid: entry.pid, alive: false, phase: entry.last_phase, running_ms: since(entry.started), heartbeat_age_ms: null, output_file: entry.output_file });
      continue;
    }
    if (!entry || entry.status !== 'working' || entry.issue === null) {
      slots.push({ name, status: 'idle', issue: null, pid: null, alive: false, phase: null, running_ms: null, heartbeat_age_ms: null, output_file: null });
      continue;
    }
    const record = progress.readShepherd(entry.issue);
    const mine = record?.task_id === entry.task_id ? record : null;
    const job = queued?.jobs.find((j) => j.id === entry.task_id);
    if (entry.task_id) recorded.add(entry.task_id);
    slots.push({
      name,
      status: 'working',
      issue: entry.issue,
      pid: mine?.pid ?? entry.pid,
      alive: queued !== null ? job !== undefined || !queued.available : viewOf(mine, t, entry).alive,
      phase: job !== undefined ? (job.state === 'waiting' ? 'waiting for a worker' : `${job.phase ?? 'starting'} on ${job.worker ?? '?'}`) : (mine?.phase ?? entry.last_phase),
      running_ms: since(entry.started),
      heartbeat_age_ms: since(job?.heartbeat ?? mine?.heartbeat),
      output_file: entry.output_file,
      ...(mine?.host_ticket !== undefined ? { hosted: true } : {}),
    });
  }
  const unrecorded = progress
    .listShepherds()
    .filter((p) => !recorded.has(p.task_id) && p.issue !== null && viewOf(p, t).alive)
    .map((p) => ({ issue: p.issue as number, pid: p.pid, task_id: p.task_id }));

  const roles = [...GENERATOR_ROLES, ...SUPPORT_ROLES].map((role) => {
    const entry = state?.support_roles[role];
    return { role, enabled: config.roles[role].enabled, status: entry?.status ?? 'idle', started: entry?.started ?? null, last_completed: entry?.last_completed ?? null, last_outcome: entry?.last_outcome ?? null };
  });

  const sandbox = sandboxSummary(config);
  if (sandbox.problem !== null) problems.push(sandbox.problem);

  const report: StatusReport = {
    daemon: {
      status,
      pid: lockAlive ? lock.pid : (state?.daemon_pid ?? null),
      started_at: state?.started_at ?? null,
      uptime_ms: status === 'running' ? since(state?.started_at) : null,
      force_mode: state?.force_mode ?? false,
      iteration: state?.iteration ?? 0,
      last_poll: state?.last_poll ?? null,
      last_summary: state?.last_summary ?? null,
      stop_requested: fs.existsSync(paths.stopSignal),
      log_file: lockAlive ? (lock.log_file ?? null) : fs.existsSync(paths.daemonLog) ? paths.daemonLog : null,
    },
    issues: {
      ready: count(Label.issue),
      waiting_on_dependencies: snapshot?.issues.filter((i) => i.labels.includes(Label.issue) && openDependencies(inputs.dependencies, i.number).length > 0).length ?? 0,
      waiting_on_overlap: config.overlap === 'wait' ? overlapWaits(inputs.overlap, buildableQueue(snapshot?.issues ?? [], inputs.dependencies)).size : 0,
      waiting_counted_over_first: page?.moreReady === true ? (snapshot?.issues.filter((i) => i.labels.includes(Label.issue)).length ?? 0) : null,
      building: count(Label.building),
      blocked: page ? countedLabels(page.counts, (l) => l === Label.blocked || markedFailed([l])) : (snapshot?.issues.filter((i) => i.labels.includes(Label.blocked) || markedFailed(i.labels)).length ?? 0),
      urgent: count(Label.urgent),
      held: page
        ? countedLabels(page.counts, (l) => holdOf([l]) !== undefined) + (snapshot?.pullRequests.filter((i) => holdOf(i.labels) !== undefined).length ?? 0)
        : [...(snapshot?.issues ?? []), ...(snapshot?.pullRequests ?? [])].filter((i) => holdOf(i.labels) !== undefined).length,
      original_labels: originalLabelCounts(snapshot),
      proposals: { architect: count(Label.architect), hermit: count(Label.hermit), curated: count(Label.curated) },
    },
    pull_requests: { review_requested: prCount(Label.reviewRequested), changes_requested: prCount(Label.changesRequested), ready_to_merge: prCount(Label.pr) },
    merging: mergingStatus(paths),
    shepherds: { active: state ? activeShepherds(state).length : 0, max: config.maxShepherds, slots, unrecorded },
    support_roles: roles,
    session: { completed_issues: state?.completed_issues.length ?? 0, prs_merged: state?.total_prs_merged ?? 0 },
    usage: usageReport(paths, slots, now),
    runtime_limits: Object.values(activeLimits(paths.limits, now)),
    tracker_paused_until: inputs.trackerHealth?.state === 'unavailable' ? inputs.trackerHealth.until : null,
    spawn_retry_queue: Object.entries(state?.spawn_retry_queue ?? {}).map(([issue, r]) => ({ issue: Number(issue), failures: r.failures, next_retry_at: r.next_retry_at })),
    disk: diskReport(paths.root, config.minFreeDisk),
    waiting_for_maintainer: Object.keys(state?.untrusted ?? {}).map(Number),
    warnings: (state?.warnings ?? []).slice(-5),
    sandbox: { sandboxed: sandbox.sandboxed, unsandboxed: sandbox.unsandboxed, bwrap: sandbox.bwrap.ok ? 'works' : sandbox.bwrap.kind, text: sandbox.text },
    notes: config.notes ?? [],
    original: { progress_files: progress.listOriginal().map((p) => ({ file: p.file, issue: p.issue, status: p.status })) },
    problems,
    interventions: [],
    queue: queued === null ? null : { ...queued, workers: queued.workers.map((w) => ({ ...w, last_seen_ms: since(w.last_seen), silent: workerSilent(w, since(w.last_seen)) })) },
  };
  const numbers = (label: string) => buildOrder(snapshot?.issues.filter((i) => i.labels.includes(label)) ?? []).map((i) => i.number);
  const proposals = buildOrder(snapshot?.issues.filter((i) => PROPOSAL_LABELS.some((l) => i.labels.includes(l))) ?? []).map((i) => i.number);
  // A bounded snapshot holds the lowest blocked numbers and a page of each proposal label; the totals are counted.
  const blocked = page ? (page.lowest[Label.blocked] ?? []) : numbers(Label.blocked);
  report.interventions = interventions(report, config, inputs.cli ?? 'loom', {
    ready: numbers(Label.issue),
    blocked: { first: blocked, total: page ? count(Label.blocked) : blocked.length },
    proposals: { first: proposals, total: page ? PROPOSAL_LABELS.reduce((n, l) => n + count(l), 0) : proposals.length },
  });
  return report;
}

function diskReport(root: string, min: number): StatusReport['disk'] {
  const free = freeDiskBytes(root);
  return { free_bytes: free, min_free_bytes: min, low: free !== null && free < min };
}

function originalLabelCounts(snapshot: TrackerSnapshot | null): Record<string, number> {
  const counts: Record<string, number> = {};
  const page = snapshot?.page;
  if (page) for (const [l, n] of Object.entries(page.counts)) if (n > 0 && originalLabel(l) !== undefined) counts[l] = n;
  const items = page ? (snapshot?.pullRequests ?? []) : [...(snapshot?.issues ?? []), ...(snapshot?.pullRequests ?? [])];
  for (const item of items) for (const l of item.labels) if (originalLabel(l) !== undefined) counts[l] = (counts[l] ?? 0) + 1;
  return counts;
}

/**
 * Open issues carrying a label `which` accepts, from a bounded snapshot's per-label counts: an
 * issue with two such labels (say `loom:blocked` and a failure mark of the original Loom) counts
 * once per label.
 */
function countedLabels(counts: Record<string, number>, which: (label: string) => boolean): number {
  return Object.entries(counts).reduce((n, [l, c]) => (which(l) ? n + c : n), 0);
}

function usageReport(paths: LoomPaths, slots: ShepherdStatus[], now: Date): StatusReport['usage'] {
  const working = [...new Set(slots.flatMap((s) => (s.issue === null ? [] : [s.issue])))];
  const spent = usageSpent(paths.usageIndex, paths.usage, dayOf(now.toISOString()), working);
  return { today: spent.day, total: spent.total, by_issue: Object.fromEntries(Object.entries(spent.byIssue).filter(([, t]) => t.runs > 0)) };
}

/**
 * What a human can do now, each with a command that works as printed: real issue numbers (the
 * first in build order stands for the rest), and `cli` as the way to call Loom.
 */
function interventions(r: StatusReport, config: LoomConfig, cli: string, numbers: { ready: number[]; blocked: { first: number[]; total: number }; proposals: { first: number[]; total: number } }): string[] {
  const out: string[] = [];
  // A long list names its first issues and how many more: the report does not grow with the backlog.
  const list = (ns: number[], total = ns.length) => ns.slice(0, LIST_LIMIT).map((n) => `#${n}`).join(', ') + (total > Math.min(ns.length, LIST_LIMIT) ? ` and ${total - Math.min(ns.length, LIST_LIMIT)} more` : '');
  if (r.daemon.status === 'crashed') out.push(`The daemon is not running but did not stop cleanly: \`${cli} start --detach\` (or \`${cli} start\`) resumes it (live shepherds are adopted, orphaned issues returned).`);
  if (r.daemon.status === 'running' && !r.daemon.stop_requested) out.push(`Stop gracefully: \`${cli} stop\` (or Ctrl+C in the daemon terminal).`);
  // Starting is worth saying only when the daemon would find something to do.
  const generators = config.roles.architect.enabled || config.roles.hermit.enabled;
  const pending = r.issues.ready + r.issues.building + r.pull_requests.review_requested + r.pull_requests.changes_requested + r.pull_requests.ready_to_merge + numbers.proposals.total;
  if (r.daemon.status !== 'running' && r.daemon.status !== 'crashed' && (pending > 0 || generators)) out.push(`Start: \`${cli} start\` in this terminal, or \`${cli} start --detach\` in the background (add \`--force\` to auto-promote proposals and auto-merge).`);
  if (r.daemon.status !== 'running' && pending === 0 && !generators && numbers.blocked.total === 0) out.push(`Nothing is ready to build: \`${cli} issue create TITLE --label ${Label.issue}\` adds an issue, then \`${cli} start\`.`);
  if (r.waiting_for_maintainer.length > 0) out.push(`Waiting for a maintainer: ${list(r.waiting_for_maintainer)} — someone with write access must apply ${Label.issue}.`);
  if (r.issues.held > 0) out.push(`${r.issues.held} issue(s)/PR(s) held for a human (loom:operator*, loom:needs-capability): Loom leaves them alone until the label is removed.`);
  const [blocked] = numbers.blocked.first;
  if (blocked !== undefined) {
    const which = numbers.blocked.total === 1 ? `1 blocked issue needs a human: #${blocked}` : `${numbers.blocked.total} blocked issues need a human: ${list(numbers.blocked.first, numbers.blocked.total)}`;
    out.push(`${which} — read its last comment (\`${cli} issue show ${blocked}\`), then \`${cli} issue label ${blocked} ${Label.issue}\` retries it.`);
  }
  const paused = r.merging.paused;
  if (paused !== null) out.push(`Merging is paused: the base went red after PR #${paused.pr} (issue #${paused.issue}). Make it green again (${paused.revert?.startsWith('PR') === true && !paused.revert_closed ? `merge the revert ${paused.revert}, or ` : ''}commit a fix to it); the next merge attempt checks the base and resumes.`);
  const [proposal] = numbers.proposals.first;
  if (proposal !== undefined) out.push(`${numbers.proposals.total} proposal(s) await approval (${list(numbers.proposals.first, numbers.proposals.total)}): \`${cli} issue label ${proposal} ${Label.issue}\` approves, \`${cli} issue close ${proposal}\` rejects.`);
  const [ready] = numbers.ready;
  if (ready !== undefined) out.push(`Build #${ready} now: \`${cli} spawn ${ready}\`; prioritise one: \`${cli} issue label ${ready} ${Label.urgent}\`.`);
  const [working] = r.shepherds.slots.filter((s) => s.issue !== null).map((s) => s.issue as number);
  if (working !== undefined) out.push(`Stop an issue's shepherd: \`${cli} issue label ${working} ${Label.abort}\`.`);
  const spent = budgetExceeded({ ...config.budget, perIssueUsd: undefined, perIssueTokens: undefined }, emptyTotals(), r.usage.today);
  if (spent !== null) out.push(`No new agent work today: ${spent}. Raise budget.perDayUsd / perDayTokens in .loom/config.json or wait for the next UTC day.`);
  for (const l of r.runtime_limits) out.push(`Runtime ${l.runtime} gets no work until ${l.until}; configure roles.<role>.fallback to keep going on another runtime.`);
  if (!config.roles.builder.enabled) out.push(`No agent runtime is configured for the builder: set "runtime" (claude, codex, gemini, opencode, command, script) in .loom/config.json; \`${cli} doctor\` shows what is installed.`);
  return out;
}

const WIDTH = 51;
const rule = '═'.repeat(WIDTH);

export function renderStatus(r: StatusReport): string {
  const lines: string[] = [];
  const daemonWord = { running: 'Running', stopped: 'Stopped', crashed: 'Crashed (not running; did not stop cleanly)', 'never-started': 'Never started' }[r.daemon.status];
  lines.push(rule, '  LOOM DAEMON STATUS', rule);
  lines.push(`  Status: ${daemonWord}${r.daemon.pid && r.daemon.status === 'running' ? ` (pid ${r.daemon.pid})` : ''}${r.daemon.force_mode && r.daemon.status === 'running' ? ' — force mode' : ''}`);
  if (r.daemon.status === 'running') lines.push(`  Uptime: ${r.daemon.uptime_ms === null ? 'unknown' : formatDuration(r.daemon.uptime_ms)}`);
  if (r.daemon.log_file !== null) lines.push(`  Log: ${r.daemon.log_file} (\`loom logs daemon -f\`)`);
  if (r.daemon.stop_requested) lines.push('  Stop requested: shutting down gracefully');
  if (r.daemon.last_summary) lines.push(`  Last iteration (#${r.daemon.iteration}): ${r.daemon.last_summary}`);
  lines.push('', '  System State:');
  lines.push(`    Ready issues (${Label.issue}): ${r.issues.ready}${r.issues.urgent ? ` (${r.issues.urgent} urgent)` : ''}${r.issues.waiting_on_dependencies ? `, ${r.issues.waiting_on_dependencies} waiting on dependencies` : ''}${r.issues.waiting_on_overlap ? `, ${r.issues.waiting_on_overlap} waiting on overlapping work (\`loom why N\`)` : ''}${(r.issues.waiting_on_dependencies || r.issues.waiting_on_overlap) && r.issues.waiting_counted_over_first !== null ? ` (of the first ${r.issues.waiting_counted_over_first} ready)` : ''}`);
  lines.push(`    Building (${Label.building}): ${r.issues.building}`);
  lines.push(`    Blocked (${Label.blocked}): ${r.issues.blocked}`);
  if (r.issues.held > 0) lines.push(`    Held for a human (loom:operator*): ${r.issues.held}`);
  const p = r.issues.proposals;
  lines.push(`    Proposals: ${p.architect} architect, ${p.hermit} hermit, ${p.curated} curated`);
  lines.push(`    PRs pending review: ${r.pull_requests.review_requested}, changes requested: ${r.pull_requests.changes_requested}, ready to merge: ${r.pull_requests.ready_to_merge}`);
  const original = Object.entries(r.issues.original_labels);
  const m = r.merging;
  if (m.paused !== null || m.queue.length > 0 || m.last_guard !== null) {
    lines.push('', '  Merging:');
    if (m.paused !== null) lines.push(`    PAUSED since ${m.paused.since}: ${m.paused.reason.replace(/`/g, '')}`);
    if (m.queue.length > 0) lines.push(`    Queue for the merge lock: ${renderQueue(m.queue)}`);
    if (m.last_guard !== null) lines.push(`    Last post-merge check (${m.last_guard.at}): ${m.last_guard.result} — ${m.last_guard.detail.replace(/`/g, '')}`);
  }
  if (original.length > 0) lines.push(`    Labels of the original Loom: ${original.map(([l, n]) => `${l} ${n}`).join(', ')} (docs/state-machine.md)`);
  lines.push('', `  Shepherds: ${r.shepherds.active}/${r.shepherds.max} active`);
  for (const s of r.shepherds.slots) {
    const running = s.running_ms === null ? 'running time unknown' : `running ${formatDuration(s.running_ms)}`;
    if (s.status === 'idle') lines.push(`    ${s.name}: idle`);
    else if (s.status === 'errored' || s.status === 'paused')
      lines.push(`    ${s.name}: ${s.status}${s.issue !== null ? ` on issue #${s.issue}` : ''}${s.phase ? ` in ${s.phase}` : ''} (left by an earlier Loom; no process of this Loom runs for it: the slot is free and the issue is recovered like any unowned one)`);
    else
      lines.push(
        `    ${s.name}: Issue #${s.issue} (${s.phase ?? 'working'}, ${running}${r.usage.by_issue[String(s.issue)] ? `, $${r.usage.by_issue[String(s.issue)]?.cost_usd.toFixed(2)}` : ''}${s.hosted === true ? `, in the shepherd host, pid ${s.pid ?? '?'}` : ''}${s.alive ? '' : s.hosted === true ? ' — its run there ended; the next iteration recovers it' : ', process gone — the next iteration recovers it'})`,
      );
  }
  for (const u of r.shepherds.unrecorded) lines.push(`    (manual) Issue #${u.issue} (pid ${u.pid ?? '?'}; the next iteration adopts it)`);
  lines.push('', '  Support Roles:');
  for (const role of r.support_roles) {
    const last = role.last_completed ? `last run ${role.last_completed}${role.last_outcome && role.last_outcome !== 'completed' ? ` (${role.last_outcome})` : ''}` : 'not run yet';
    lines.push(`    ${role.role.padEnd(9)} ${role.enabled ? (role.status === 'running' ? 'running' : `idle, ${last}`) : 'disabled'}`);
  }
  if (r.queue !== null) {
    const q = r.queue;
    lines.push('', `  Queue: ${q.redis} — ${q.held_by !== undefined ? q.held_by : q.available ? `${q.jobs.filter((j) => j.state === 'waiting').length} waiting, ${q.jobs.filter((j) => j.state === 'active').length} running` : `Redis unavailable since ${q.paused_since ?? '?'}: dispatch paused (workers keep their running jobs)`}`);
    const silent = q.workers.filter((w) => w.silent).length;
    lines.push(`  Workers (${q.workers.length}${silent > 0 ? `, ${silent} of them not seen lately` : ''}):`);
    if (q.workers.length === 0) lines.push('    none has reported; start one with `loom worker --redis URL` in a clone (docs/distributed.md)');
    for (const w of q.workers) {
      const seen = w.last_seen_ms === null ? 'never' : `${formatDuration(w.last_seen_ms)} ago`;
      if (w.silent) {
        lines.push(`    ${w.name} on ${w.host}: not seen for ${formatDuration(w.last_seen_ms ?? 0)}, longer than its job lock: stopped or cut off; what it ran goes to other workers (listed until ${formatDuration(FORGET_WORKER_MS)} without a report)`);
        continue;
      }
      lines.push(`    ${w.name} on ${w.host}: ${w.jobs.length > 0 ? w.jobs.map((n) => `#${n}`).join(', ') : 'idle'} (concurrency ${w.concurrency}${w.draining ? ', draining' : ''}), last seen ${seen}`);
    }
  }
  lines.push('', `  Sandbox: ${r.sandbox.text}`);
  lines.push('', '  Session Stats:');
  lines.push(`    Issues completed: ${r.session.completed_issues}`);
  lines.push(`    PRs merged: ${r.session.prs_merged}`);
  const u = r.usage;
  const money = (t: UsageTotals) => `${t.runs} runs, ${(t.input_tokens / 1000).toFixed(1)}k in / ${(t.output_tokens / 1000).toFixed(1)}k out tokens, $${t.cost_usd.toFixed(2)}`;
  if (u.total.runs > 0) lines.push(`    Agent usage today: ${money(u.today)}`, `    Agent usage total: ${money(u.total)}`);
  for (const l of r.runtime_limits) lines.push(`    Runtime ${l.runtime} limited until ${l.until} (${l.reason})`);
  if (r.tracker_paused_until) lines.push(`    GitHub rate limit: no tracker calls until ${r.tracker_paused_until}; the daemon resumes by itself`);
  if (r.disk.low && r.disk.free_bytes !== null) lines.push(`    Disk: ${formatSize(r.disk.free_bytes)} free, below minFreeDisk (${formatSize(r.disk.min_free_bytes)}): no new worktree starts until space is freed`);
  if (r.original.progress_files.length > 0)
    lines.push(`    Progress files of the original Loom (left alone, not Loom's): ${r.original.progress_files.map((f) => `${f.file}${f.issue !== null ? ` (#${f.issue}${f.status ? `, ${f.status}` : ''})` : ''}`).join(', ')}`);
  if (r.spawn_retry_queue.length > 0) lines.push(`    Retrying: ${r.spawn_retry_queue.map((q) => `#${q.issue} (${q.failures} failed)`).join(', ')}`);
  if (r.problems.length > 0 || r.warnings.length > 0) {
    lines.push('', '  Warnings:');
    for (const problem of r.problems) lines.push(`    ! ${problem}`);
    for (const w of r.warnings) lines.push(`    ${w.time ? `${w.time.slice(11, 19)} ` : ''}${w.message}`);
  }
  if (r.notes.length > 0) {
    lines.push('', '  Notes:');
    for (const note of r.notes) lines.push(`    ${note}`);
  }
  if (r.interventions.length > 0) {
    lines.push('', '  Interventions:');
    for (const i of r.interventions) lines.push(`    - ${i}`);
  }
  lines.push(rule);
  return lines.join('\n');
}

