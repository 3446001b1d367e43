/**
 * Starting a shepherd for an issue, shared by the iteration and `loom spawn`: the claim
 * (steps/claim-issue.ts, the one owner of "one shepherd per issue"), then the detached launch —
 * or, with `executor.shepherds: "host"`, the hand-over to the repository's shepherd host
 * (process/host-tickets.ts). A failed launch undoes the claim.
 */
import type { LoomPaths } from '../config/paths.js';
import { handToHost } from '../process/host-tickets.js';
import { launchLoomDetached, logFileFor } from '../process/launcher.js';
import type { ProgressStore } from '../process/progress-store.js';
import { newTaskId, startingRecord } from '../process/new-task.js';
import { claimIssue, releaseClaim } from '../steps/claim-issue.js';
import type { Tracker } from '../tracker/tracker.js';

export interface StartedTask {
  task_id: string;
  pid: number;
  pid_start: string | null;
  output_file: string;
  started: string;
  /** Run inside the shepherd host (`pid` is the host's). */
  hosted?: boolean;
}

export type StartShepherdResult =
  | { ok: true; task: StartedTask }
  | { ok: false; reason: 'owned' | 'lost-claim' | 'spawn-failed'; message: string };

/**
 * Claims `issue` (which must carry `loom:issue`) and hands it to the shepherd host, or launches
 * `loom shepherd` for it (`shepherds: "process"`, or a host of another daemon session holds the lock).
 * `forceMerge` passes `--force-merge` so the shepherd merges without waiting for the Champion.
 */
export async function startShepherd(opts: {
  paths: LoomPaths;
  tracker: Tracker;
  progress: ProgressStore;
  issue: number;
  forceMerge: boolean;
  now: Date;
  /** `host`: hand the run to the repository's shepherd host instead of launching `loom shepherd`. */
  shepherds?: 'process' | 'host';
  /**
   * Called once the run is launched and before it can say anything of itself: with the host,
   * before its ticket is written (a warm host starts the run within milliseconds); with a process,
   * right after the spawn (Node's start-up comes first). So the daemon's "spawned" precedes the
   * run's "started" in the event log.
   */
  onLaunched?: (task: StartedTask) => void;
}): Promise<StartShepherdResult> {
  const { paths, tracker, progress, issue, now } = opts;
  const task_id = newTaskId();
  const output_file = logFileFor(paths.logs, 'shepherd', `issue-${issue}`, now);
  const claim = await claimIssue({ progress, tracker, issue, task_id, output_file, now });
  if (!claim.ok) return { ok: false, reason: claim.reason, message: claim.message };
  const hostedTask = (h: { pid: number; pid_start: string | null }): StartedTask => ({ task_id, pid: h.pid, pid_start: h.pid_start, output_file, started: now.toISOString(), hosted: true });
  let announced = false;
  try {
    if (opts.shepherds === 'host') {
      const file = progress.shepherdFile(issue);
      const host = await handToHost({
        root: paths.root,
        hostDir: paths.host,
        hostLog: paths.hostLog,
        ticket: { issue, task_id, output_file, force_merge: opts.forceMerge },
        // The record names the host and the ticket before the host can see the ticket.
        beforeTicket: (h, ticket) => {
          progress.write(file, { ...claim.record, pid: h.pid, pid_start: h.pid_start, host_ticket: ticket });
          // Once, though a host that exits meanwhile makes the hand-over try again.
          if (!announced) opts.onLaunched?.(hostedTask(h));
          announced = true;
        },
      });
      // null: another daemon session's host (or one started by hand) holds the lock; this run
      // goes to a process of its own rather than into another environment.
      if (host !== null) return { ok: true, task: hostedTask(host) };
    }
    const args = ['shepherd', String(issue), '--task', task_id, ...(opts.forceMerge ? ['--force-merge'] : [])];
    const launched = launchLoomDetached(args, { cwd: paths.root, logFile: output_file });
    const task: StartedTask = { task_id, pid: launched.pid, pid_start: launched.pid_start, output_file, started: now.toISOString() };
    opts.onLaunched?.(task);
    return { ok: true, task };
  } catch (error) {
    await releaseClaim({ progress, tracker, issue });
    return { ok: false, reason: 'spawn-failed', message: (error as Error).message };
  }
}

/** Launches `loom role <name>` detached, replacing a finished role record. */
export function startRole(opts: { paths: LoomPaths; progress: ProgressStore; role: string; now: Date }): StartedTask {
  const { paths, progress, role, now } = opts;
  const task_id = newTaskId();
  const output_file = logFileFor(paths.logs, 'role', role, now);
  progress.write(progress.roleFile(role), startingRecord({ kind: 'role', task_id, issue: null, role, output_file, now }));
  const launched = launchLoomDetached(['role', role, '--task', task_id], { cwd: paths.root, logFile: output_file });
  return { task_id, pid: launched.pid, pid_start: launched.pid_start, output_file, started: now.toISOString() };
}
