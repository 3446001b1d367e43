/**
 * The worker side of a progress record: a started shepherd or role takes over its record
 * (`running`, own pid), renews the heartbeat on a timer — the liveness lease the daemon checks —
 * and writes the terminal status last, after every tracker write is done.
 */
import type { Progress, ProgressStatus } from '../core/progress.js';
import { touchWake } from './wake.js';
import { processStart } from './process-identity.js';
import type { ProgressStore } from './progress-store.js';

export class TaskRecorder {
  private timer: NodeJS.Timeout | undefined;
  private finished = false;

  constructor(
    private readonly store: ProgressStore,
    private readonly file: string,
    readonly record: Progress,
    private readonly wakeFile: string,
  ) {}

  /** Marks the record running under this process and starts the heartbeat. */
  start(phase: string, heartbeatInterval: number, onBeat?: () => void): void {
    Object.assign(this.record, { status: 'running', pid: process.pid, pid_start: processStart(process.pid), phase, heartbeat: new Date().toISOString() });
    this.store.write(this.file, this.record);
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
    this.record.phase = phase;
    this.beat();
  }

  /** Records the agent's process group so the daemon can end it if this worker dies first. */
  agent(pid: number): void {
    this.record.agent_pid = pid;
    this.record.agent_pid_start = processStart(pid);
    this.beat();
  }

  /** Agent output renews the output lease; the file is rewritten on the next heartbeat. */
  output(): void {
    this.record.last_output = new Date().toISOString();
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
    touchWake(this.wakeFile);
  }
}
