/**
 * The progress/heartbeat record a shepherd or role process keeps in `.loom/progress/`.
 * It is how an iteration learns, without blocking, that a background process finished
 * (the seed's non-blocking TaskOutput) and whether it is still alive.
 */

export const ProgressStatus = {
  /** Written by the launcher before the claim and the spawn; the process has not taken over yet. */
  starting: 'starting',
  running: 'running',
  /** Finished its job (shepherd: issue closed or merged). */
  completed: 'completed',
  /** Nothing to do: the issue needed no change (closed with a comment). */
  noChanges: 'no-changes',
  /** Gave up and labelled the issue `loom:blocked`. */
  blocked: 'blocked',
  /** A role run that failed (roles have no issue to block). */
  failed: 'failed',
  /**
   * Stopped by shutdown or `loom:abort` (the issue went back to `loom:issue`), or because a person
   * closed the issue, marked it `loom:blocked` or removed `loom:building` (labels left as they are).
   */
  stopped: 'stopped',
  /** Did not start work: the issue was not its to work on. */
  skipped: 'skipped',
} as const;

export type ProgressStatus = (typeof ProgressStatus)[keyof typeof ProgressStatus];

export const TERMINAL_STATUSES: readonly ProgressStatus[] = ['completed', 'no-changes', 'blocked', 'failed', 'stopped', 'skipped'];

export function isTerminal(status: ProgressStatus): boolean {
  return TERMINAL_STATUSES.includes(status);
}

export interface Progress {
  kind: 'shepherd' | 'role';
  task_id: string;
  /** Shepherds: the issue. */
  issue: number | null;
  /** Roles: the role name. */
  role: string | null;
  status: ProgressStatus;
  /** Current phase (`builder`, `judge`, ...), or the role name. */
  phase: string;
  /** Pid of the process doing the work (null until it has started). */
  pid: number | null;
  pid_start: string | null;
  /** Pid of the process that wrote the `starting` record (the launcher). */
  launcher_pid: number | null;
  /** Pid of the agent/command process group the worker started, so a recovery can end it too. */
  agent_pid: number | null;
  agent_pid_start: string | null;
  started: string;
  /** Renewed every heartbeat interval while the process is alive and responsive. */
  heartbeat: string;
  /** Last time the agent/command produced output, if it has. */
  last_output: string | null;
  output_file: string;
  /** Terminal records: what happened, in one line. */
  message: string | null;
  exit_code: number | null;
  /** Set when the shepherd merged a PR. */
  merged: boolean;
  /** Roles: the pull requests this run merged (the Champion); absent in older records. */
  merged_prs?: number[];
  pr_number: number | null;
  /**
   * A shepherd run inside a shepherd host (`executor.shepherds: "host"`): its ticket, the file that
   * handed the run to the host (`pid` is the host's). The run lives while the host does and the
   * ticket exists: the host removes it when the run ends, also when it ends by an exception.
   * Such a shepherd is stopped by a stop request to its host, never by a signal to `pid` (that
   * would end every run in the host).
   */
  host_ticket?: string;
}

/**
 * `value` as one of Loom's progress records, or null when it is not one. The original Loom wrote
 * records of another schema into the same directory under similar names
 * (`shepherd-<task id>.json`: `current_phase`, `last_heartbeat`, `milestones`, no `kind`); they
 * describe processes of that Loom and are never taken for current ones.
 */
export function asProgress(value: unknown): Progress | null {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return null;
  const v = value as Record<string, unknown>;
  const statuses: readonly unknown[] = Object.values(ProgressStatus);
  if ((v.kind !== 'shepherd' && v.kind !== 'role') || typeof v.task_id !== 'string' || !statuses.includes(v.status) || typeof v.started !== 'string') return null;
  return value as Progress;
}

/** A progress record the original Loom left (`shepherd-<task id>.json`), as far as it can be read. */
export interface OriginalProgress {
  file: string;
  task_id: string | null;
  issue: number | null;
  status: string | null;
  phase: string | null;
  last_heartbeat: string | null;
}

/** The original Loom's shepherd progress record, recognised by its schema; null for anything else. */
export function asOriginalProgress(file: string, value: unknown): OriginalProgress | null {
  if (typeof value !== 'object' || value === null || Array.isArray(value) || asProgress(value) !== null) return null;
  const v = value as Record<string, unknown>;
  if (!('current_phase' in v || 'milestones' in v || 'last_heartbeat' in v)) return null;
  const text = (x: unknown) => (typeof x === 'string' ? x : null);
  return { file, task_id: text(v.task_id), issue: typeof v.issue === 'number' && Number.isInteger(v.issue) ? v.issue : null, status: text(v.status), phase: text(v.current_phase), last_heartbeat: text(v.last_heartbeat) };
}
