/**
 * New tasks: their ids and the progress record written before a task's process exists.
 */
import { randomUUID } from 'node:crypto';
import type { Progress } from '../core/progress.js';

/** A new task id: 12 hex characters. */
export function newTaskId(): string {
  return randomUUID().replace(/-/g, '').slice(0, 12);
}

/** The progress record of a task that is being launched (status `starting`). */
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
