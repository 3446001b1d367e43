/**
 * The daemon as the coordinator of a fleet (`executor: { "kind": "bullmq" }`, docs/distributed.md):
 * shepherds are queue jobs run by `loom worker`s, so what the planner sees of them comes from the
 * queue instead of local progress records, and a planned spawn becomes an enqueued job.
 *
 * The planner does not change: a job is a process view keyed by the job id (the state's task id).
 * Waiting and active jobs are alive (BullMQ's locks and stalled-job check are their liveness, and
 * the worker ends a shepherd whose heartbeat stalls); a completed job carries the shepherd's final
 * record; a failed job is a dead shepherd. A job the state knows but Redis lost (Redis restarted
 * without its data) is enqueued again under the same id: its next worker resumes from the
 * checkpoint on `origin`.
 *
 * Redis unavailable: the iteration dispatches nothing and changes nothing; the queue status file
 * (`.loom/queue-status.json`, read by `loom status`) says since when.
 */
import type { LoomPaths } from '../config/paths.js';
import type { DaemonState } from '../core/daemon-state.js';
import { activeShepherds } from '../core/daemon-state.js';
import type { Observation, ProcessView } from '../core/planner.js';
import type { Progress } from '../core/progress.js';
import { startingRecord } from '../process/new-task.js';
import type { JobView, WorkerInfo } from '../queue/shepherd-queue.js';
import { redact } from '../queue/queue-errors.js';
import type { QueueStatus } from '../queue/queue-status.js';
import { readQueueStatus } from '../queue/queue-status.js';

/** The status to record when Redis could not be reached: paused since the first failure. */
export function unavailableStatus(paths: LoomPaths, redis: string, error: string, now: Date): QueueStatus {
  const previous = readQueueStatus(paths);
  const since = previous !== null && !previous.available && previous.paused_since !== null ? previous.paused_since : now.toISOString();
  return { redis: redact(redis), available: false, paused_since: since, error, checked_at: now.toISOString(), jobs: previous?.jobs ?? [], workers: previous?.workers ?? [] };
}

export function availableStatus(redis: string, jobs: JobView[], workers: WorkerInfo[], now: Date): QueueStatus {
  const shown = jobs.filter((j) => j.state === 'waiting' || j.state === 'active');
  return {
    redis: redact(redis),
    available: true,
    paused_since: null,
    error: null,
    checked_at: now.toISOString(),
    jobs: shown.map((j) => ({ id: j.id, issue: j.issue, state: j.state, worker: j.state === 'active' ? j.worker : null, heartbeat: j.progress?.heartbeat ?? null, phase: j.progress?.phase ?? null })),
    workers,
  };
}

/** A job as a planner process view: keyed by the job id, alive while it waits or runs. */
function viewOfJob(job: JobView, now: Date): ProcessView {
  const base = job.progress ?? startingRecord({ kind: 'shepherd', task_id: job.id, issue: job.issue, role: null, output_file: `(queue job ${job.id})`, now: new Date(job.enqueuedAt) });
  const progress: Progress = { ...base, task_id: job.id, issue: job.issue, pid: null, pid_start: null, launcher_pid: null, agent_pid: null, agent_pid_start: null };
  if (job.state === 'completed') return { alive: false, progress };
  if (job.state === 'failed') return { alive: false, progress: null };
  // Liveness is the queue's (locks, stalled-job check): the daemon never takes a job for stuck.
  return { alive: true, progress: { ...progress, heartbeat: now.toISOString() } };
}

/**
 * Replaces the shepherd part of `observation` with the queue's jobs. Returns the jobs the state
 * knows but Redis no longer has (to enqueue again).
 */
export function observeQueue(observation: Observation, state: DaemonState, jobs: JobView[], now: Date): { lost: { id: string; issue: number; attempt: number }[] } {
  const byId = new Map(jobs.map((j) => [j.id, j]));
  const known = new Set<string>();
  const lost: { id: string; issue: number; attempt: number }[] = [];
  for (const [, entry] of activeShepherds(state)) {
    if (!entry.task_id) continue;
    known.add(entry.task_id);
    const job = byId.get(entry.task_id);
    if (job !== undefined) {
      observation.processes[entry.task_id] = viewOfJob(job, now);
      continue;
    }
    const attempt = Number(/-attempt-(\d+)$/.exec(entry.task_id)?.[1] ?? 1);
    const issue = entry.issue as number;
    lost.push({ id: entry.task_id, issue, attempt });
    observation.processes[entry.task_id] = viewOfJob({ id: entry.task_id, issue, attempt, state: 'waiting', worker: null, progress: null, failedReason: null, enqueuedAt: now.toISOString() }, now);
  }
  // Jobs no state entry knows (a daemon restarted, its state lost): adopted, finished or recovered.
  observation.strays = jobs.filter((j) => !known.has(j.id)).map((j) => (j.state === 'failed' ? { alive: false, progress: { ...viewOfJob({ ...j, state: 'waiting' }, now).progress, status: 'running' } as Progress } : viewOfJob(j, now)));
  return { lost };
}
