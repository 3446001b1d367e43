/**
 * The planner: `(state, observation, config, now) → actions`. Pure — no I/O, no clock, no spawn.
 *
 * Invariants owned here:
 * - never more than `maxShepherds` shepherds are started by the daemon (manual spawns may add more);
 * - never two shepherds for one issue (an issue owned in the state, by a live progress record, or
 *   already planned is never planned again);
 * - an issue whose shepherd fails `spawnFailureLimit` times is blocked, not retried forever (and
 *   the plan that records a failure never spawns that issue again: its retry wait starts now);
 * - an issue with an open dependency is not spawned; with `overlap: wait`, neither is one whose
 *   predicted files overlap a running shepherd's, one starting in the same plan, or an open PR's
 *   that Loom moves on (src/core/overlap.ts has the one exception).
 *
 * Steps follow the seed's iteration order: completions, adoption/orphans, force-mode promotion,
 * shepherd spawns, work generation, support roles, stuck checks. See docs/iteration.md.
 */
import type { LoomConfig } from './config-model.js';
import type { DaemonRole, RoleName } from './vocabulary.js';
import { DAEMON_ROLES, GENERATOR_ROLES, SUPPORT_ROLES } from './vocabulary.js';
import type { DaemonState } from './daemon-state.js';
import { activeShepherds } from './daemon-state.js';
import { Label, PROPOSAL_LABELS } from './labels.js';
import { supportHold } from './follow-issue.js';
import { buildBlocker, doctorLabelOf, holdOf } from './original-labels.js';
import type { Progress } from './progress.js';
import { isTerminal } from './progress.js';
import type { Issue, TrackerSnapshot } from './tracker-model.js';
import type { DependencyMap, DependencyProblem } from './dependencies.js';
import { dependencyProblems, openDependencies, settledReports } from './dependencies.js';
import type { Overlap, OverlapFacts, WorkInProgress } from './overlap.js';
import { mayRunAnyway, overlapsOf } from './overlap.js';

/** What the shell observed about one background process. */
export interface ProcessView {
  /** The process with the recorded pid (and start identity) exists and is not a zombie. */
  alive: boolean;
  progress: Progress | null;
}

export interface Observation {
  snapshot: TrackerSnapshot;
  /** Keyed by task id, for every shepherd and role the state says is active. */
  processes: Record<string, ProcessView>;
  /** Shepherd progress records whose task is not in the state (manual `loom spawn`, lost state). */
  strays: ProcessView[];
  /**
   * Role progress records the state does not know (a run an iteration launched and could not
   * record — its daemon was killed meanwhile —, a manual `loom role`): live ones are adopted,
   * finished or dead ones recorded and removed.
   */
  roleStrays?: ProcessView[];
  /** Runtimes under a rate or usage limit right now: no work is dispatched to them. */
  limitedRuntimes?: readonly string[];
  /** Set when today's agent usage reached a daily budget: no new agent work starts. */
  dailyBudgetSpent?: string | null;
  /**
   * The declared dependencies (`Depends on #N`, `Blocked by #N`) of the snapshot's issues, and of
   * the open dependencies they lead to, with each dependency's state. An issue with an open
   * dependency is not built.
   */
  dependencies?: DependencyMap;
  /** The open issues whose dependencies were all read (none guessed after a failed read): one absent from `dependencies` has none. */
  dependenciesRead?: number[];
  /** Free bytes on the repository's filesystem (null: unknown). Below `minFreeDisk` no shepherd starts. */
  freeDisk?: number | null;
  /**
   * The files the ready issues are predicted to touch and those of the work in progress (running
   * shepherds, open Loom PRs). With `overlap: wait`, an issue overlapping work in progress waits.
   */
  overlap?: OverlapFacts;
}

/**
 * `normal` runs the whole iteration; `drain` (shutdown requested) only records completions and
 * stuck processes; `stop` (grace over) stops everything still running.
 */
export type Mode = 'normal' | 'drain' | 'stop';

export interface PlanInput {
  state: DaemonState;
  observation: Observation;
  config: LoomConfig;
  /** Milliseconds since the epoch. */
  now: number;
  force: boolean;
  mode: Mode;
}

export type Action =
  /** A shepherd reached a terminal status; record it, free its slot (slot null: a stray). */
  | { type: 'finish-shepherd'; slot: string | null; issue: number; progress: Progress }
  /** A shepherd died or stalled without finishing: kill it if needed, then release or block its issue. */
  | { type: 'recover-shepherd'; slot: string | null; issue: number; reason: 'dead' | 'stalled'; failures: number; block: boolean; taskId: string | null; pid: number | null }
  /** A dead slot whose issue a live stray record owns now: free the slot, touch nothing else. */
  | { type: 'drop-slot'; slot: string; issue: number }
  /** A live shepherd the state does not know about (manual spawn, rebuilt state): take it into a slot. */
  | { type: 'adopt-shepherd'; slot: string; issue: number; progress: Progress }
  /** `loom:building` with no shepherd anywhere: return it to `loom:issue`. */
  | { type: 'release-orphan'; issue: number }
  | { type: 'promote'; issue: number; from: string }
  | { type: 'spawn-shepherd'; slot: string; issue: number }
  | { type: 'spawn-role'; role: DaemonRole; reason: 'interval' | 'demand' | 'low-backlog' }
  /** `merged`: how many PRs the run merged (the Champion), when any. */
  /** `stray`: a run the state did not know (no warning; `at`: when it ended, its last heartbeat). */
  | { type: 'finish-role'; role: DaemonRole; outcome: string; merged?: number; stray?: { at: string } }
  | { type: 'kill-role'; role: DaemonRole; reason: 'stalled' | 'timeout' }
  /** A live role run the state does not know about: recorded as the role's running one. */
  | { type: 'adopt-role'; role: DaemonRole; progress: Progress }
  | { type: 'stop-shepherd'; slot: string; issue: number }
  | { type: 'stop-role'; role: DaemonRole }
  /** A dependency cycle, or a dependency closed as not planned or missing: comment and warn, once. */
  | ({ type: 'report-dependency' } & DependencyProblem)
  /** Reported dependency problems that are gone (a cycle broken): forgotten, so that one back is reported again. */
  | { type: 'forget-dependency-reports'; keys: string[] };

/** When a support role is asked for on demand, it still waits this long after its last run, ms. */
export const DEMAND_COOLDOWN_MS = 60_000;
/** An issue found untrusted is not tried again for this long, ms. */
export const TRUST_RECHECK_MS = 10 * 60_000;
/** Longest wait before retrying an issue whose shepherd failed, ms. */
export const MAX_RETRY_BACKOFF_MS = 30 * 60_000;

/** Wait before the next spawn of an issue after `failures` failed ones: poll interval doubling, capped. */
export function retryBackoff(failures: number, pollInterval: number, max: number = MAX_RETRY_BACKOFF_MS): number {
  return Math.min(max, pollInterval * 2 ** Math.max(0, failures - 1));
}


const time = (iso: string | null | undefined): number | null => {
  if (!iso) return null;
  const t = Date.parse(iso);
  return Number.isNaN(t) ? null : t;
};

/** Ready issues in build order: `loom:urgent` first, then oldest first. */
export function buildOrder(issues: readonly Issue[]): Issue[] {
  const urgent = (i: Issue) => (i.labels.includes(Label.urgent) ? 0 : 1);
  return [...issues].sort((a, b) => urgent(a) - urgent(b) || a.createdAt.localeCompare(b.createdAt) || a.number - b.number);
}

/** The ready issues the planner may start, in build order: labelled, not claimed, not held, no open dependency. */
export function buildableQueue(issues: readonly Issue[], dependencies: DependencyMap | undefined): number[] {
  return buildOrder(issues.filter((i) => i.labels.includes(Label.issue) && !i.labels.includes(Label.building) && buildBlocker(i.labels) === undefined && openDependencies(dependencies, i.number).length === 0)).map((i) => i.number);
}

/** Whether the heartbeat in a progress record (or the start time, before one exists) is older than `limit`. */
function stale(view: ProcessView | undefined, fallbackStart: string | null, now: number, limit: number): boolean {
  const beat = time(view?.progress?.heartbeat) ?? time(fallbackStart);
  return beat !== null && now - beat > limit;
}

export function plan(input: PlanInput): Action[] {
  return planPage(input).actions;
}

/**
 * The plan, and whether it was made from too few ready issues: the snapshot is a bounded page
 * (`TrackerSnapshot.page`) with more ready issues beyond it, and every ready issue of the page
 * was passed over (dependency open, overlap, retry wait, held…) with a shepherd slot still free.
 * The caller then reads a larger page and plans again, so no eligible issue starves behind gated
 * ones.
 */
export function planPage(input: PlanInput): { actions: Action[]; readMore: boolean } {
  const { state, observation, config, now, force, mode } = input;
  let readMore = false;
  const { snapshot, processes } = observation;
  const actions: Action[] = [];
  const limited = observation.limitedRuntimes ?? [];
  /** A role can run when it has a runtime (primary or fallback) that is not limited. */
  const dispatchable = (role: RoleName) => {
    if (observation.dailyBudgetSpent && role !== 'champion') return false; // merging costs no tokens
    const c = config.roles[role];
    const runtimes = [c.runtime, c.fallback].filter((r) => r !== undefined);
    return runtimes.length === 0 || runtimes.some((r) => !limited.includes(r));
  };
  const failuresOf = (issue: number) => state.spawn_retry_queue[String(issue)]?.failures ?? 0;
  const recover = (slot: string | null, issue: number, reason: 'dead' | 'stalled', taskId: string | null, pid: number | null): Action => {
    const failures = failuresOf(issue) + 1;
    return { type: 'recover-shepherd', slot, issue, reason, failures, block: failures >= config.spawnFailureLimit, taskId, pid };
  };

  // Issues owned after this iteration's completions; slots free after them.
  const owned = new Set<number>();
  const busySlots = new Set<string>();
  /** State slots whose shepherd keeps running. */
  const kept: { slot: string; issue: number }[] = [];
  const stuck: Action[] = [];

  // Live records the state does not know own their issue even if a dead slot still names it.
  const liveStrays = new Set(observation.strays.filter((v) => v.alive && v.progress && !isTerminal(v.progress.status)).map((v) => v.progress?.issue));

  // 1. Completions of shepherds the state knows about.
  for (const [slot, entry] of activeShepherds(state)) {
    const issue = entry.issue as number;
    const view = entry.task_id ? processes[entry.task_id] : undefined;
    const progress = view?.progress ?? null;
    if (progress && isTerminal(progress.status)) {
      actions.push({ type: 'finish-shepherd', slot, issue, progress });
    } else if (!view?.alive) {
      actions.push(liveStrays.has(issue) ? { type: 'drop-slot', slot, issue } : recover(slot, issue, 'dead', entry.task_id, entry.pid));
    } else {
      owned.add(issue);
      busySlots.add(slot);
      kept.push({ slot, issue });
      if (stale(view, entry.started, now, config.stallTimeout)) stuck.push(recover(slot, issue, 'stalled', entry.task_id, entry.pid));
    }
  }

  // 2. Strays: finished or live shepherds the state does not know; dead ones are recovered.
  const slotNames = shepherdSlotNames(state, config.maxShepherds);
  const freeSlots = () => slotNames.filter((s) => !busySlots.has(s));
  for (const view of observation.strays) {
    const p = view.progress;
    if (!p || p.issue === null) continue;
    if (isTerminal(p.status)) actions.push({ type: 'finish-shepherd', slot: null, issue: p.issue, progress: p });
    else if (owned.has(p.issue)) continue; // another record owns it; this one is stale and is ignored
    else if (view.alive) {
      const slot = freeSlots()[0] ?? `shepherd-${nextSlotNumber(slotNames)}`;
      if (!slotNames.includes(slot)) slotNames.push(slot);
      busySlots.add(slot);
      owned.add(p.issue);
      actions.push({ type: 'adopt-shepherd', slot, issue: p.issue, progress: p });
    } else actions.push(recover(null, p.issue, 'dead', p.task_id, p.pid));
  }

  // Issues returned by this iteration's recoveries must not be treated as orphans again.
  const recovered = new Set(actions.filter((a) => a.type === 'recover-shepherd' || a.type === 'finish-shepherd').map((a) => (a as { issue: number }).issue));
  // Nor spawned again: the failure just counted sets its retry wait, or blocks it at the limit.
  const failedNow = new Set(actions.filter((a) => a.type === 'recover-shepherd').map((a) => a.issue));
  for (const issue of snapshot.issues) {
    if (issue.labels.includes(Label.building) && !owned.has(issue.number) && !recovered.has(issue.number)) {
      actions.push({ type: 'release-orphan', issue: issue.number });
    }
  }

  // Roles: completions (and, below, stuck checks).
  const runningRoles = new Set<DaemonRole>();
  /** Roles recorded as finished by this plan: their last run ended now. */
  const finishedNow = new Set<DaemonRole>();
  for (const role of DAEMON_ROLES) {
    const entry = state.support_roles[role];
    if (!entry || entry.status !== 'running') continue;
    const view = entry.task_id ? processes[entry.task_id] : undefined;
    const progress = view?.progress ?? null;
    const outcome = progress && isTerminal(progress.status) ? progress.status : view?.alive ? null : 'crashed';
    if (outcome !== null) {
      const merged = progress?.merged_prs?.length ?? 0;
      actions.push({ type: 'finish-role', role, outcome, ...(merged > 0 ? { merged } : {}) });
      finishedNow.add(role);
    } else {
      runningRoles.add(role);
      const started = time(entry.started);
      if (started !== null && now - started > config.roles[role].timeout) stuck.push({ type: 'kill-role', role, reason: 'timeout' });
      else if (stale(view, entry.started, now, config.stallTimeout)) stuck.push({ type: 'kill-role', role, reason: 'stalled' });
    }
  }
  // Role runs the state does not know: a live one is adopted (never a second run beside it), a
  // finished or dead one recorded, which removes its record.
  for (const view of observation.roleStrays ?? []) {
    const p = view.progress;
    const role = DAEMON_ROLES.find((r) => r === p?.role);
    if (!p || role === undefined || runningRoles.has(role) || finishedNow.has(role)) continue;
    if (!isTerminal(p.status) && view.alive) {
      actions.push({ type: 'adopt-role', role, progress: p });
      runningRoles.add(role);
    } else {
      const merged = p.merged_prs?.length ?? 0;
      actions.push({ type: 'finish-role', role, outcome: isTerminal(p.status) ? p.status : 'crashed', ...(merged > 0 ? { merged } : {}), stray: { at: p.heartbeat } });
      finishedNow.add(role);
    }
  }

  if (mode === 'stop') {
    // The slots still running and the adopted ones; not a slot freed above whose issue a stray now owns.
    for (const { slot, issue } of kept) actions.push({ type: 'stop-shepherd', slot, issue });
    for (const a of actions) if (a.type === 'adopt-shepherd') actions.push({ type: 'stop-shepherd', slot: a.slot, issue: a.issue });
    for (const role of runningRoles) actions.push({ type: 'stop-role', role });
    return { actions, readMore };
  }
  if (mode === 'drain') return { actions: [...actions, ...stuck], readMore };

  // 3. Force mode: promote proposals to ready.
  const promoted = new Set<number>();
  if (force) {
    for (const issue of snapshot.issues) {
      const from = PROPOSAL_LABELS.find((l) => issue.labels.includes(l));
      if (from && !issue.labels.includes(Label.building) && buildBlocker(issue.labels) === undefined) {
        actions.push({ type: 'promote', issue: issue.number, from });
        promoted.add(issue.number);
      }
    }
  }

  // 4. Spawn shepherds for ready issues (never one the original Loom's labels hold or rule out).
  const ready = snapshot.issues.filter((i) => (i.labels.includes(Label.issue) || promoted.has(i.number)) && !i.labels.includes(Label.building) && buildBlocker(i.labels) === undefined);
  const eligible = buildOrder(ready).filter((i) => {
    if (owned.has(i.number) || failedNow.has(i.number)) return false;
    if (openDependencies(observation.dependencies, i.number).length > 0) return false;
    const retry = state.spawn_retry_queue[String(i.number)];
    const notBefore = time(retry?.next_retry_at);
    const untrustedAt = time(state.untrusted[String(i.number)]?.checked_at);
    if (untrustedAt !== null && now - untrustedAt < TRUST_RECHECK_MS) return false;
    return notBefore === null || notBefore <= now;
  });
  const lowDisk = observation.freeDisk !== undefined && observation.freeDisk !== null && observation.freeDisk < config.minFreeDisk;
  if (config.roles.builder.enabled && dispatchable('builder') && !lowDisk) {
    let capacity = config.maxShepherds - busySlots.size;
    let spawned = 0;
    // With `overlap: wait`, what starts now counts as running work for the issues after it.
    const facts = config.overlap === 'wait' ? observation.overlap : undefined;
    const starting: WorkInProgress[] = [];
    const waiting: { issue: number; overlaps: Overlap[] }[] = [];
    const spawn = (issue: number): boolean => {
      const slot = freeSlots()[0];
      if (slot === undefined) return false;
      busySlots.add(slot);
      owned.add(issue);
      capacity -= 1;
      actions.push({ type: 'spawn-shepherd', slot, issue });
      spawned += 1;
      return true;
    };
    let full = false;
    for (const issue of eligible) {
      if (capacity <= 0) break;
      if (owned.has(issue.number)) continue;
      if (facts) {
        const files = facts.predicted[String(issue.number)] ?? [];
        const overlaps = overlapsOf(issue.number, files, [...facts.work, ...starting]);
        if (overlaps.length > 0) {
          waiting.push({ issue: issue.number, overlaps });
          continue;
        }
        starting.push({ issue: issue.number, pr: null, running: true, awaitsPerson: false, files });
      }
      if (!spawn(issue.number)) {
        full = true;
        break;
      }
    }
    readMore = snapshot.page?.moreReady === true && !full && capacity > 0;
    // Nothing else starts: the oldest issue in the way only of PRs waiting for a person starts anyway.
    const first = waiting.find((w) => mayRunAnyway(w.overlaps, starting.length));
    if (first && capacity > 0 && spawned === 0) spawn(first.issue);
  }

  // Dependency cycles and dependencies closed as not planned (or missing) among ready issues: said once.
  const settled = settledReports(observation.dependencies, observation.dependenciesRead ?? [], state.dependency_reports);
  if (settled.length > 0) actions.push({ type: 'forget-dependency-reports', keys: settled });
  const stillReported = state.dependency_reports.filter((k) => !settled.includes(k));
  for (const p of dependencyProblems(observation.dependencies, ready.map((i) => i.number), stillReported)) actions.push({ type: 'report-dependency', ...p });

  // 5. Work generation when the backlog runs low.
  // A bounded snapshot counts what it did not read (held ready issues count as ready there).
  const proposing = (i: Issue) => i.labels.includes(Label.architect) || i.labels.includes(Label.hermit);
  const counted = snapshot.page?.counts;
  const proposals = counted
    ? (counted[Label.architect] ?? 0) + (counted[Label.hermit] ?? 0) - snapshot.issues.filter((i) => proposing(i) && promoted.has(i.number)).length
    : snapshot.issues.filter((i) => proposing(i) && !promoted.has(i.number)).length;
  const readyCount = counted ? (counted[Label.issue] ?? 0) + promoted.size : ready.length;
  if (readyCount < config.issueThreshold && proposals < config.maxProposals) {
    for (const role of GENERATOR_ROLES) {
      const cfg = config.roles[role];
      if (!cfg.enabled || runningRoles.has(role) || !dispatchable(role)) continue;
      const last = time(state.support_roles[role]?.started);
      if (last === null || now - last >= cfg.interval) actions.push({ type: 'spawn-role', role, reason: 'low-backlog' });
    }
  }

  // 6. Support roles: on their interval, or on demand when a PR waits for them (Champion, Doctor
  // and Judge only ever when a PR waits for them). A PR waits for
  // them unless a shepherd owns its issue, or its issue (when the snapshot has it) is one the
  // support roles leave alone: blocked, aborted, held (`supportHold`).
  const shepherdIssues = owned;
  const inSnapshot = new Map(snapshot.issues.map((i) => [i.number, i]));
  const leftAlone = (n: number) => shepherdIssues.has(n) || (inSnapshot.has(n) && supportHold(n, inSnapshot.get(n) ?? null) !== null);
  // A PR held for a human (the original Loom's `loom:operator*`) waits for the human, not a role.
  const waiting = (wanted: (labels: readonly string[]) => boolean) =>
    snapshot.pullRequests.some((pr) => wanted(pr.labels) && holdOf(pr.labels) === undefined && !(pr.closesIssue !== null && leftAlone(pr.closesIssue)));
  const demand: Partial<Record<DaemonRole, boolean>> = {
    champion: waiting((l) => l.includes(Label.pr)),
    // The original Loom's `loom:merge-conflict` and `loom:ci-failure` ask for the Doctor too.
    doctor: waiting((l) => l.includes(Label.changesRequested) || doctorLabelOf(l) !== undefined),
    judge: waiting((l) => l.includes(Label.reviewRequested)),
  };
  for (const role of SUPPORT_ROLES) {
    const cfg = config.roles[role];
    if (!cfg.enabled || runningRoles.has(role) || !dispatchable(role)) continue;
    // Champion, Doctor and Judge act only on PRs carrying their labels: with none waiting, a run
    // would find nothing to do (a process and a tracker read for nothing), so it is not started.
    if (role in demand && demand[role] !== true) continue;
    const last = finishedNow.has(role) ? now : time(state.support_roles[role]?.last_completed);
    if (last === null || now - last >= cfg.interval) actions.push({ type: 'spawn-role', role, reason: 'interval' });
    else if (demand[role] && now - last >= Math.min(cfg.interval, DEMAND_COOLDOWN_MS)) actions.push({ type: 'spawn-role', role, reason: 'demand' });
  }

  // 7. Stuck checks.
  return { actions: [...actions, ...stuck], readMore };
}

/** The `shepherd-1 … shepherd-N` slot names, plus any extra slots the state already has. */
export function shepherdSlotNames(state: DaemonState, maxShepherds: number): string[] {
  const names = Array.from({ length: maxShepherds }, (_, i) => `shepherd-${i + 1}`);
  for (const [name, entry] of Object.entries(state.shepherds)) if (!names.includes(name) && entry.status === 'working') names.push(name);
  return names;
}

function nextSlotNumber(names: readonly string[]): number {
  const numbers = names.map((n) => Number(/^shepherd-(\d+)$/.exec(n)?.[1] ?? 0));
  return Math.max(0, ...numbers) + 1;
}
