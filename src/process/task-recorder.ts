/**
 * The worker side of a progress record: a started shepherd or role takes over its record
 * (`running`, own pid), renews the heartbeat on a timer — the liveness lease the daemon checks —
 * and writes the terminal status last, after every tracker write is done. Each step is also an
 * event in the event log (start, phase changes, the agent's process, the end).
 */
import path from 'node:path';
import type { EventFields } from '../core/events.js';
import type { Progress, ProgressStatus } from '../core/progress.js';
import { EventLog } from './event-log.js';
import { touchWake } from './wake.js';
import { processStart } from './process-identity.js';
import type { ProgressStore } from './progress-store.js';

export class TaskRecorder {
  private timer: NodeJS.Timeout | undefined;
  private finished = false;
  /** The event log beside the wake file (both live in `.loom/`). */
  private readonly events: EventLog;

  constructor(
    private readonly store: ProgressStore,
    private readonly file: string,
    readonly record: Progress,
    private readonly wakeFile: string,
  ) {
    this.events = EventLog.in(path.dirname(wakeFile));
  }

  /** The fields naming this task in its events. */
  private task(): EventFields {
    const r = this.record;
    return { kind: r.kind, ...(r.issue !== null ? { issue: r.issue } : {}), ...(r.role !== null ? { role: r.role } : {}), task_id: r.task_id };
  }

  /** Marks the record running under this process and starts the heartbeat. */
  start(phase: string, heartbeatInterval: number, onBeat?: () => void): void {
    Object.assign(this.record, { status: 'running', pid: process.pid, pid_start: processStart(process.pid), phase, heartbeat: new Date().toISOString() });
    this.store.write(this.file, this.record);
    this.events.emit('task.started', { ...this.task(), pid: process.pid, phase, output_file: this.record.output_file });
    this.timer = setInterval(() => {
      this.beat();
      onBeat?.();
    }, heartbeatInterval);
  }

  beat(): void {
    if (this.finished) return;
    this.record.heartbeat = new Date().toISOString();
    this.store.write(this.file, this.record);
  }

  phase(phase: string): void {
    if (phase !== this.record.phase) this.events.emit('task.phase', { ...this.task(), phase });
    this.record.phase = phase;
    this.beat();
  }

  /** Records the agent's process group so the daemon can end it if this worker dies first. */
  agent(pid: number): void {
    this.record.agent_pid = pid;
    this.record.agent_pid_start = processStart(pid);
    this.events.emit('agent.started', { ...this.task(), phase: this.record.phase, pid });
    this.beat();
  }

  /** Agent output renews the output lease; the file is rewritten on the next heartbeat. */
  output(): void {
    this.record.last_output = new Date().toISOString();
  }

  /**
   * Stops the heartbeat without a terminal status (the run failed unexpectedly: its record is left
   * to the daemon's recovery). `reason`, the error that ended it, is kept in the record's `message`
   * so the recovery can say why (a failed workspace hook, a git error, …).
   */
  halt(reason?: string): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (reason === undefined || this.finished) return;
    this.record.message = reason;
    this.store.write(this.file, this.record);
  }

  finish(status: ProgressStatus, fields: { message: string; exit_code: number; merged?: boolean; pr_number?: number | null; merged_prs?: number[] }): void {
    if (this.timer) clearInterval(this.timer);
    this.finished = true;
    Object.assign(this.record, {
      status,
      heartbeat: new Date().toISOString(),
      message: fields.message,
      exit_code: fields.exit_code,
      merged: fields.merged ?? false,
      pr_number: fields.pr_number ?? this.record.pr_number,
      ...(fields.merged_prs !== undefined && fields.merged_prs.length > 0 ? { merged_prs: fields.merged_prs } : {}),
    });
    this.store.write(this.file, this.record);
    this.events.emit('task.finished', { ...this.task(), outcome: status, message: fields.message, pr: this.record.pr_number ?? undefined, merged: this.record.merged || undefined, exit_code: fields.exit_code });
    touchWake(this.wakeFile);
  }
}
