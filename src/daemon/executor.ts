/**
 * The executor: the only code that turns planner actions into effects — tracker label changes
 * and comments, process launches and kills, state entries. One failed action is a warning and a
 * `!action` token in the summary; it never stops the others.
 */
import type { LoomConfig } from '../core/config-model.js';
import type { LoomPaths } from '../config/paths.js';
import type { DaemonState, ShepherdEntry } from '../core/daemon-state.js';
import { addCompleted, addWarning, idleRole, idleShepherd } from '../core/daemon-state.js';
import { Label, issueState } from '../core/labels.js';
import type { Action } from '../core/planner.js';
import type { Progress } from '../core/progress.js';
import { retryBackoff } from '../core/planner.js';
import { dependencyComment } from '../core/dependencies.js';
import { EventLog } from '../process/event-log.js';
import { ProgressStore, viewOf } from '../process/progress-store.js';
import { terminateGroup, waitFor } from '../process/wait.js';
import { endIdleHost, requestStop } from '../process/host-tickets.js';
import type { Tracker } from '../tracker/tracker.js';
import { startRole, startShepherd } from './start-shepherd.js';
import { cleanupLeftovers } from './cleanup.js';
import type { TrackerSnapshot } from '../core/tracker-model.js';
import type { ShepherdQueue } from '../queue/shepherd-queue.js';


/** How long a stop or a stuck-kill waits for a process after SIGTERM before SIGKILL, ms. */
export const KILL_GRACE_MS = 10_000;


/** How many dependency reports the state remembers (oldest forgotten first). */
const MAX_DEPENDENCY_REPORTS = 200;

/** Performs planner actions against the tracker, the processes and the state. */
export class Executor {
  readonly tokens: string[] = [];
  /** What the cleanup did for each issue, one line each (the event log carries them with `issue.cleaned`). */
  readonly cleanupLines = new Map<number, string[]>();
  /** Why each issue's start or shepherd failed this iteration (its `shepherd.died` / `issue.blocked` message). */
  readonly failureReasons = new Map<number, string>();
  /**
   * Launch tokens (`+shepherd=#N`, `+role`) whose event went out at the launch, before the run
   * could log its own `task.started`: the iteration's record adds none for them.
   */
  readonly announced = new Set<string>();
  /**
   * `queue`: the bullmq executor's queue (shepherds are jobs for `loom worker`s); null: local processes.
   * `abandoned`: true once the daemon that ran this iteration is gone: no further action is
   * taken, and nothing more launched (the next daemon's state would not know it).
   */
  private readonly o: { paths: LoomPaths; config: LoomConfig; tracker: Tracker; progress: ProgressStore; state: DaemonState; force: boolean; clock: () => Date; queue: ShepherdQueue | null; abandoned?: () => boolean };

  constructor(o: Executor['o']) {
    this.o = o;
  }

  private warn(message: string): void {
    addWarning(this.o.state, this.o.clock().toISOString(), message);
  }

  /** A standing problem is reported once, not every iteration. */
  private warnOnce(message: string): void {
    if (!this.o.state.warnings.some((w) => w.message === message)) this.warn(message);
  }

  /**
   * After the actions: removes what finished, closed or blocked issues left behind — worktrees,
   * merged or empty branches, checkpoints, temp files (cleanup.ts). A failure is a warning.
   */
  async cleanup(snapshot: TrackerSnapshot): Promise<void> {
    const { paths, config, tracker } = this.o;
    if (this.abandoned()) return;
    try {
      const cleaned = await cleanupLeftovers({ paths, config, tracker, snapshot, now: this.o.clock().getTime(), log: (line, issue) => {
          if (issue !== undefined) this.cleanupLines.set(issue, [...(this.cleanupLines.get(issue) ?? []), line]);
        }, warn: (m) => this.warnOnce(m) });
      for (const n of cleaned) this.tokens.push(`cleaned=#${n}`);
    } catch (error) {
      this.tokens.push('!cleanup');
      this.warnOnce(`cleanup failed: ${(error as Error).message}`);
    }
  }

  /**
   * Ends a process group Loom recorded. A pid whose start identity is unknown (an older state
   * file) or does not match may be someone else's process now: it is never signalled, only reported.
   */
  private async end(pid: number, start: string | null | undefined, what: string): Promise<void> {
    const result = await terminateGroup(pid, start, KILL_GRACE_MS);
    if (result === 'not-ours') this.warn(`${what}: pid ${pid} is not provably Loom's (its start identity is ${typeof start === 'string' && start !== '' ? 'different' : 'unknown'}); not signalled`);
    if (result === 'survived') this.warn(`${what}: pid ${pid} survived SIGKILL`);
  }

  /**
   * Ends the shepherd of `issue`. A run inside the shepherd host is asked to stop (its pid is the
   * host's: a signal would end every run there); one that has not stopped within the kill grace
   * is ended with its host, the last resort (the host's other runs are then recovered like it).
   */
  private async endShepherd(issue: number, taskId: string | null, pid: number | null, start: string | null): Promise<void> {
    const { progress, paths } = this.o;
    const record = progress.readShepherd(issue);
    if (record?.host_ticket === undefined || record.task_id !== taskId) {
      if (pid) await this.end(pid, start, `the shepherd of #${issue}`);
      return;
    }
    requestStop(paths.host, record.task_id);
    const stopped = () => {
      const now = progress.readShepherd(issue);
      return now?.task_id !== record.task_id || !viewOf(now, Date.now()).alive;
    };
    if (await waitFor(stopped, KILL_GRACE_MS, 50)) return;
    if (record.pid === null) return;
    this.warn(`the shepherd of #${issue} did not stop within ${KILL_GRACE_MS / 1000}s in the shepherd host (pid ${record.pid}); ending the host and every run in it`);
    await this.end(record.pid, record.pid_start, `the shepherd host of #${issue}`);
  }

  /** Ends the agent process group a worker left behind, if it still runs (even when its leader died). */
  private async endAgent(record: Progress | null): Promise<void> {
    if (record?.agent_pid) await this.end(record.agent_pid, record.agent_pid_start, `the agent of ${record.issue !== null ? `#${record.issue}` : (record.role ?? 'a task')}`);
  }

  async run(actions: Action[]): Promise<void> {
    for (const action of actions) {
      if (action.type === 'stop-shepherd') continue;
      // An iteration whose daemon is gone is nobody's: it acts no more (the next daemon's does).
      if (this.abandoned()) return;
      try {
        await this.execute(action);
      } catch (error) {
        const target = 'issue' in action ? `#${action.issue}` : 'role' in action ? action.role : '';
        this.tokens.push(`!${action.type}=${target}`);
        this.warn(`${action.type} ${target} failed: ${(error as Error).message}`);
      }
    }
    // Stops come last (after adoptions have filled their slots) and are signalled together, so
    // the grace periods overlap instead of adding up.
    const stops = actions.filter((a): a is Extract<Action, { type: 'stop-shepherd' }> => a.type === 'stop-shepherd');
    if (stops.length > 0 && !this.abandoned()) await this.stopShepherds(stops);
  }

  /**
   * The pid a role run has: the state's, else (a run adopted before it recorded its pid) its
   * record's now, when the record is still that run's.
   */
  private rolePid(role: string): { pid: number | null; pid_start: string | null } | undefined {
    const entry = this.o.state.support_roles[role];
    if (entry === undefined || entry.pid !== null) return entry;
    const record = this.o.progress.readRole(role);
    return record !== null && record.task_id === entry.task_id ? { pid: record.pid, pid_start: record.pid_start } : entry;
  }

  /** The daemon is gone: what follows is skipped (said once in the summary). */
  private abandoned(): boolean {
    if (this.o.abandoned?.() !== true) return false;
    if (!this.tokens.includes('!daemon-gone')) this.tokens.push('!daemon-gone');
    return true;
  }

  private freeSlot(slot: string | null, issue: number): void {
    if (slot === null) return;
    const previous = this.o.state.shepherds[slot];
    this.o.state.shepherds[slot] = { ...idleShepherd(), last_issue: issue, idle_since: this.o.clock().toISOString(), last_phase: previous?.last_phase ?? null };
  }

  private async execute(action: Action): Promise<void> {
    const { tracker, state, progress, config, paths } = this.o;
    const now = this.o.clock();
    switch (action.type) {
      case 'finish-shepherd': {
        const p = action.progress;
        if (p.status === 'completed' || p.status === 'no-changes') addCompleted(state, action.issue);
        if (p.merged) state.total_prs_merged += 1;
        if (p.status !== 'stopped') delete state.spawn_retry_queue[String(action.issue)];
        const word = p.status === 'completed' ? 'done' : p.status;
        this.tokens.push(`${word}=#${action.issue}`);
        this.freeSlot(action.slot, action.issue);
        if (this.o.queue !== null) await this.o.queue.remove(p.task_id);
        else progress.remove(progress.shepherdFile(action.issue));
        return;
      }
      case 'recover-shepherd': {
        if (action.reason === 'stalled' && action.pid !== null) {
          const start = action.slot ? (state.shepherds[action.slot]?.pid_start ?? null) : null;
          await this.endShepherd(action.issue, action.taskId, action.pid, start);
        }
        // The agent runs in its own process group: a worker killed with -9 leaves it behind.
        const record = progress.readShepherd(action.issue);
        if (record?.task_id === action.taskId) await this.endAgent(record);
        const issue = await tracker.getIssue(action.issue);
        const log = action.slot ? state.shepherds[action.slot]?.output_file : null;
        // A shepherd that failed on an error (a workspace hook, git, …) left it in its record.
        const reason = record?.task_id === action.taskId && record.status === 'running' && record.message ? `: ${record.message}` : '';
        const what = action.reason === 'stalled' ? 'stopped responding and was killed' : `exited without finishing${reason}`;
        this.tokens.push(`${action.reason === 'stalled' ? 'stuck' : 'died'}=#${action.issue}`);
        // A stuck shepherd that got SIGTERM may already have returned its issue; the failure counts all the same.
        if (issue !== null && issue.state === 'open' && (issue.labels.includes(Label.building) || issue.labels.includes(Label.issue))) {
          // Released only if still loom:building now: a human's block since the read above stays.
          if (!action.block && issue.labels.includes(Label.building)) await tracker.release(action.issue);
          await this.countFailure(
            action.issue,
            action.failures,
            `shepherd ${what}`,
            `Loom: the shepherd for this issue ${what} (attempt ${action.failures} of ${config.spawnFailureLimit}); giving up and marking it \`${Label.blocked}\`.${log ? ` Log: \`${log}\`` : ''}\nRemove the label or add \`${Label.issue}\` to try again.`,
          );
        } else if (issue !== null && issue.state === 'open' && issueState(issue.labels) === undefined && (await tracker.restoreInterruptedClaim(action.issue))) {
          // Its claim was cut off between taking loom:issue off and adding loom:building (killed,
          // or the tracker failing): not the issue's fault, so no failure is counted.
          this.tokens.push(`restored=#${action.issue}`);
          this.warn(`#${action.issue} was left with no state label by an interrupted claim; returned to ${Label.issue}`);
          this.freeSlot(action.slot, action.issue);
          if (progress.readShepherd(action.issue)?.task_id === action.taskId) progress.remove(progress.shepherdFile(action.issue));
          return;
        }
        this.warn(`shepherd for #${action.issue} ${what}${log ? ` (log ${log})` : ''}`);
        this.freeSlot(action.slot, action.issue);
        if (this.o.queue !== null && action.taskId !== null) await this.o.queue.remove(action.taskId);
        else if (progress.readShepherd(action.issue)?.task_id === action.taskId) progress.remove(progress.shepherdFile(action.issue));
        return;
      }
      case 'drop-slot':
        this.freeSlot(action.slot, action.issue);
        return;
      case 'adopt-shepherd': {
        const p = action.progress;
        const entry: ShepherdEntry = {
          ...idleShepherd(),
          status: 'working',
          issue: action.issue,
          task_id: p.task_id,
          pid: p.pid ?? p.launcher_pid,
          pid_start: p.pid_start,
          output_file: p.output_file,
          started: p.started,
          last_phase: p.phase,
        };
        state.shepherds[action.slot] = entry;
        this.tokens.push(`adopt=#${action.issue}`);
        return;
      }
      case 'release-orphan': {
        // Re-check at the last moment: a manual spawn may have taken it since the snapshot.
        if (viewOf(progress.readShepherd(action.issue), now.getTime()).alive) return;
        const issue = await tracker.getIssue(action.issue);
        if (issue === null || issue.state !== 'open' || !issue.labels.includes(Label.building)) return;
        if (!(await tracker.release(action.issue))) return;
        this.tokens.push(`released=#${action.issue}`);
        this.warn(`#${action.issue} was ${Label.building} with no shepherd; returned to ${Label.issue}`);
        return;
      }
      case 'promote':
        await tracker.updateLabels(action.issue, { add: [Label.issue] });
        this.tokens.push(`promote=#${action.issue}`);
        return;
      case 'spawn-shepherd': {
        // Untrusted issue text is never built: the label must come from someone with write access.
        if (!(await tracker.isTrusted(action.issue))) {
          state.untrusted[String(action.issue)] = { checked_at: now.toISOString(), reason: `${Label.issue} was not applied by a user with write access` };
          this.tokens.push(`untrusted=#${action.issue}`);
          this.warn(`#${action.issue} waits for a maintainer: ${Label.issue} was not applied by a user with write access`);
          return;
        }
        delete state.untrusted[String(action.issue)];
        if (this.abandoned()) return; // right before the claim and the launch
        if (this.o.queue !== null) {
          await this.enqueue(action.slot, action.issue, this.o.queue);
          return;
        }
        const result = await startShepherd({
          paths,
          tracker,
          progress,
          issue: action.issue,
          forceMerge: this.o.force,
          now,
          shepherds: config.executor.kind === 'local' ? config.executor.shepherds : 'process',
          // Its event goes out before the run can log its own start (a warm host is that fast).
          onLaunched: (t) => {
            new EventLog(paths.events).emit('shepherd.spawned', { issue: action.issue, task_id: t.task_id, pid: t.pid, output_file: t.output_file });
            this.announced.add(`+shepherd=#${action.issue}`);
          },
        });
        if (result.ok) {
          const t = result.task;
          state.shepherds[action.slot] = { ...idleShepherd(), status: 'working', issue: action.issue, task_id: t.task_id, pid: t.pid, pid_start: t.pid_start, output_file: t.output_file, started: t.started, last_phase: 'starting' };
          this.tokens.push(`+shepherd=#${action.issue}`);
        } else if (result.reason === 'spawn-failed') {
          const failures = (state.spawn_retry_queue[String(action.issue)]?.failures ?? 0) + 1;
          this.tokens.push(`!spawn=#${action.issue}`);
          this.warn(`could not start a shepherd for #${action.issue}: ${result.message}`);
          await this.countFailure(action.issue, failures, result.message, `Loom: could not start a shepherd for this issue ${failures} times (last error: ${result.message}); marking it \`${Label.blocked}\`.`);
        } else {
          this.tokens.push(`skip=#${action.issue}`);
        }
        return;
      }
      case 'spawn-role': {
        if (this.abandoned()) return;
        const t = startRole({ paths, progress, role: action.role, now });
        // As for a shepherd: out before the role's own `task.started`, not at the iteration's end.
        new EventLog(paths.events).emit('role.started', { role: action.role, task_id: t.task_id, pid: t.pid, output_file: t.output_file });
        this.announced.add(`+${action.role}`);
        const previous = state.support_roles[action.role] ?? idleRole();
        state.support_roles[action.role] = { ...previous, status: 'running', task_id: t.task_id, pid: t.pid, pid_start: t.pid_start, output_file: t.output_file, started: t.started };
        this.tokens.push(`+${action.role}`);
        return;
      }
      case 'adopt-role': {
        const p = action.progress;
        const previous = state.support_roles[action.role] ?? idleRole();
        state.support_roles[action.role] = { ...previous, status: 'running', task_id: p.task_id, pid: p.pid, pid_start: p.pid_start, output_file: p.output_file, started: p.started };
        this.tokens.push(`adopt=${action.role}`);
        return;
      }
      case 'kill-role': {
        const entry = this.rolePid(action.role);
        if (entry?.pid) await this.end(entry.pid, entry.pid_start, `role ${action.role}`);
        await this.endAgent(progress.readRole(action.role));
        this.warn(`role ${action.role} ${action.reason === 'timeout' ? 'ran past its timeout' : 'stopped responding'} and was killed`);
        this.finishRole(action.role, action.reason);
        this.tokens.push(`!${action.role}=${action.reason}`);
        return;
      }
      case 'finish-role':
        // The Champion's merges count like a shepherd's (the daemon's summary, status, the state file).
        state.total_prs_merged += action.merged ?? 0;
        if (action.outcome === 'crashed') await this.endAgent(progress.readRole(action.role));
        // A run the daemon did not start (a manual `loom role`, one a killed daemon left) is recorded quietly, as of when it ended.
        if (action.outcome !== 'completed' && action.stray === undefined) {
          this.tokens.push(`!${action.role}=${action.outcome}`);
          this.warn(`role ${action.role} ended ${action.outcome}`);
        }
        this.finishRole(action.role, action.outcome, action.stray?.at);
        return;
      case 'stop-role': {
        const entry = this.rolePid(action.role);
        if (entry?.pid) await this.end(entry.pid, entry.pid_start, `role ${action.role}`);
        await this.endAgent(progress.readRole(action.role));
        this.finishRole(action.role, 'stopped');
        return;
      }
      case 'stop-shepherd':
        return; // handled in bulk by stopShepherds
      case 'forget-dependency-reports':
        state.dependency_reports = state.dependency_reports.filter((k) => !action.keys.includes(k));
        return;
      case 'report-dependency': {
        const refs = action.numbers.map((n) => `#${n}`).join(', ');
        // Recorded first: a failed comment is not retried every iteration.
        state.dependency_reports = [...state.dependency_reports, action.key].slice(-MAX_DEPENDENCY_REPORTS);
        this.warn(action.kind === 'cycle' ? `dependency cycle: ${refs} wait on each other` : `#${action.issue} depends on ${refs}, ${action.kind === 'missing' ? 'which does not exist' : 'closed as not planned'}`);
        this.tokens.push(`dependency-${action.kind}=#${action.issue}`);
        await tracker.comment(action.issue, dependencyComment(action));
        return;
      }
    }
  }

  /**
   * The bullmq executor's spawn: the tracker claim (`loom:issue` → `loom:building`, atomic), then
   * the job, whose id (issue and attempt) makes a second enqueue of it a no-op. A failed enqueue
   * undoes the claim.
   */
  private async enqueue(slot: string, issue: number, queue: ShepherdQueue): Promise<void> {
    const { tracker, state } = this.o;
    const now = this.o.clock();
    if (!(await tracker.claim(issue))) {
      this.tokens.push(`skip=#${issue}`);
      return;
    }
    const attempt = (state.spawn_retry_queue[String(issue)]?.failures ?? 0) + 1;
    let id: string;
    try {
      id = await queue.enqueue({ issue, attempt, forceMerge: this.o.force });
    } catch (error) {
      await tracker.updateLabels(issue, { add: [Label.issue] });
      throw error;
    }
    state.shepherds[slot] = { ...idleShepherd(), status: 'working', issue, task_id: id, pid: null, pid_start: null, output_file: `(queue job ${id})`, started: now.toISOString(), last_phase: 'queued' };
    this.tokens.push(`+job=#${issue}`);
  }

  /**
   * One more failed shepherd for `issue`: at `spawnFailureLimit` the issue is blocked with
   * `blockComment`; before that it waits in the retry queue with a growing backoff.
   */
  private async countFailure(issue: number, failures: number, error: string, blockComment: string): Promise<void> {
    const { state, tracker, config } = this.o;
    const now = this.o.clock();
    this.failureReasons.set(issue, error);
    if (failures >= config.spawnFailureLimit) {
      await tracker.comment(issue, blockComment);
      await tracker.updateLabels(issue, { add: [Label.blocked] });
      delete state.spawn_retry_queue[String(issue)];
      this.tokens.push(`blocked=#${issue}`);
      return;
    }
    state.spawn_retry_queue[String(issue)] = {
      failures,
      last_failure: now.toISOString(),
      next_retry_at: new Date(now.getTime() + retryBackoff(failures, config.pollInterval, config.maxRetryBackoff)).toISOString(),
      last_error: error,
    };
  }

  private finishRole(role: string, outcome: string, at?: string): void {
    const entry = this.o.state.support_roles[role] ?? idleRole();
    const now = this.o.clock().toISOString();
    // A time that is no time, or one ahead of now, is now.
    const ended = at !== undefined && !Number.isNaN(Date.parse(at)) && Date.parse(at) <= Date.parse(now) ? at : now;
    this.o.state.support_roles[role] = { ...entry, status: 'idle', task_id: null, pid: null, pid_start: null, last_completed: ended, last_outcome: outcome };
    this.o.progress.remove(this.o.progress.roleFile(role));
  }

  /** SIGTERM every shepherd at once; each saves its work and releases its issue; stragglers are killed. */
  private async stopShepherds(stops: Extract<Action, { type: 'stop-shepherd' }>[]): Promise<void> {
    const { state, tracker, progress } = this.o;
    if (this.o.queue !== null) {
      // A fleet keeps its jobs: the workers handed them over to the (paused) queue, where the next
      // daemon finds and adopts them, claims and checkpoints intact.
      for (const stop of stops) {
        this.tokens.push(`queued=#${stop.issue}`);
        this.freeSlot(stop.slot, stop.issue);
      }
      return;
    }
    await Promise.all(
      stops.map(async (stop) => {
        const entry = state.shepherds[stop.slot];
        await this.endShepherd(stop.issue, entry?.task_id ?? null, entry?.pid ?? null, entry?.pid_start ?? null);
        await this.endAgent(progress.readShepherd(stop.issue));
        try {
          const issue = await tracker.getIssue(stop.issue);
          if (issue !== null && issue.state === 'open' && issue.labels.includes(Label.building)) await tracker.release(stop.issue);
        } catch (error) {
          this.warn(`could not return #${stop.issue} to ${Label.issue}: ${(error as Error).message}`);
        }
        this.tokens.push(`stopped=#${stop.issue}`);
        this.freeSlot(stop.slot, stop.issue);
        progress.remove(progress.shepherdFile(stop.issue));
      }),
    );
    // The daemon is stopping: the shepherd host goes too, once its runs are gone (a stopped run's
    // ticket goes a moment after its terminal status); one still running something exits when idle.
    const host = await endIdleHost(this.o.paths.host, 2_000, KILL_GRACE_MS);
    if (host === 'survived' || host === 'not-ours') this.warn(`the shepherd host did not end (${host})`);
  }
}
