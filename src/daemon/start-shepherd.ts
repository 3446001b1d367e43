/**
 * Starting a shepherd for an issue, shared by the iteration and `loom spawn`.
 *
 * Invariant owned here: one shepherd per issue. The order matters — first the progress record is
 * created exclusively (so an iteration running at the same moment sees the issue as owned rather
 * than orphaned), then the tracker claim (atomic), then the detached launch. Any failure undoes
 * the steps before it.
 */
import { randomUUID } from 'node:crypto';
import type { LoomPaths } from '../config/paths.js';
import type { Progress } from '../core/progress.js';
import { Label } from '../core/labels.js';
import { launchLoomDetached, logFileFor } from '../process/launcher.js';
import type { ProgressStore } from '../process/progress-store.js';
import { viewOf } from '../process/progress-store.js';
import type { Tracker } from '../tracker/tracker.js';

export interface StartedTask {
  task_id: string;
  pid: number;
  pid_start: string | null;
  output_file: string;
  started: string;
}

export type StartShepherdResult =
  | { ok: true; task: StartedTask }
  | { ok: false; reason: 'owned' | 'lost-claim' | 'spawn-failed'; message: string };

export function newTaskId(): string {
  return randomUUID().replace(/-/g, '').slice(0, 12);
}

export function startingRecord(fields: { kind: Progress['kind']; task_id: string; issue: number | null; role: string | null; output_file: string; now: Date }): Progress {
  const at = fields.now.toISOString();
  return {
    kind: fields.kind,
    task_id: fields.task_id,
    issue: fields.issue,
    role: fields.role,
    status: 'starting',
    phase: fields.role ?? 'starting',
    pid: null,
    pid_start: null,
    launcher_pid: process.pid,
    agent_pid: null,
    agent_pid_start: null,
    started: at,
    heartbeat: at,
    last_output: null,
    output_file: fields.output_file,
    message: null,
    exit_code: null,
    merged: false,
    pr_number: null,
  };
}

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
}): Promise<StartShepherdResult> {
  const { paths, tracker, progress, issue, now } = opts;
  const task_id = newTaskId();
  const output_file = logFileFor(paths.logs, 'shepherd', `issue-${issue}`, now);
  const file = progress.shepherdFile(issue);
  const record = startingRecord({ kind: 'shepherd', task_id, issue, role: null, output_file, now });
  if (!progress.createExclusive(file, record)) {
    const existing = progress.read(file);
    if (viewOf(existing, now.getTime()).alive) return { ok: false, reason: 'owned', message: `#${issue} is already owned by shepherd task ${existing?.task_id ?? '?'} (pid ${existing?.pid ?? existing?.launcher_pid ?? '?'})` };
    // A finished or dead record left behind: it owns nothing any more.
    progress.remove(file);
    if (!progress.createExclusive(file, record)) return { ok: false, reason: 'owned', message: `#${issue} was claimed by another launcher just now` };
  }
  let claimed = false;
  try {
    claimed = await tracker.claim(issue);
  } finally {
    if (!claimed) progress.remove(file);
  }
  if (!claimed) return { ok: false, reason: 'lost-claim', message: `#${issue} is no longer ${Label.issue} (claimed elsewhere or changed)` };
  try {
    const args = ['shepherd', String(issue), '--task', task_id, ...(opts.forceMerge ? ['--force-merge'] : [])];
    const launched = launchLoomDetached(args, { cwd: paths.root, logFile: output_file });
    return { ok: true, task: { task_id, pid: launched.pid, pid_start: launched.pid_start, output_file, started: now.toISOString() } };
  } catch (error) {
    progress.remove(file);
    await tracker.updateLabels(issue, { add: [Label.issue] });
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
