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
 * Claims `issue` (which must carry `loom:issue`) and launches `loom shepherd` for it.
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
}): Promise<StartShepherdResult> {
  const { paths, tracker, progress, issue, now } = opts;
  const task_id = newTaskId();
  const output_file = logFileFor(paths.logs, 'shepherd', `issue-${issue}`, now);
  const claim = await claimIssue({ progress, tracker, issue, task_id, output_file, now });
  if (!claim.ok) return { ok: false, reason: claim.reason, message: claim.message };
  try {
    if (opts.shepherds === 'host') {
      const file = progress.shepherdFile(issue);
      const host = await handToHost({
        root: paths.root,
        hostDir: paths.host,
        hostLog: paths.hostLog,
        ticket: { issue, task_id, output_file, force_merge: opts.forceMerge },
        // The record names the host and the ticket before the host can see the ticket.
        beforeTicket: (h, ticket) => progress.write(file, { ...claim.record, pid: h.pid, pid_start: h.pid_start, host_ticket: ticket }),
      });
      return { ok: true, task: { task_id, pid: host.pid, pid_start: host.pid_start, output_file, started: now.toISOString(), hosted: true } };
    }
    const args = ['shepherd', String(issue), '--task', task_id, ...(opts.forceMerge ? ['--force-merge'] : [])];
    const launched = launchLoomDetached(args, { cwd: paths.root, logFile: output_file });
    return { ok: true, task: { task_id, pid: launched.pid, pid_start: launched.pid_start, output_file, started: now.toISOString() } };
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
