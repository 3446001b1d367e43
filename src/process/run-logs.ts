/**
 * The logs of background runs under `.loom/logs/` (`shepherd-issue-<N>-<time>.log`,
 * `role-<name>-<time>.log`, named by launcher.ts) and how to find the latest run of an issue or
 * role: the event log names each run's log when it starts; a run from before the event log is
 * found by its file name.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { LoomEvent } from '../core/events.js';
import { EventLog } from './event-log.js';
import { listDir } from '../fs/list-dir.js';
import { logStartedAt } from './launcher.js';
import { formatDuration } from '../core/duration.js';

export type RunTarget = { issue: number } | { role: string };

/** The log files of every run of `target`, oldest first. */
export function runLogFiles(logsDir: string, target: RunTarget): string[] {
  const prefix = 'issue' in target ? `shepherd-issue-${target.issue}-` : `role-${target.role}-`;
  let names: string[] = [];
  try {
    names = fs.readdirSync(logsDir);
  } catch {
    return [];
  }
  return names
    .filter((f) => f.startsWith(prefix) && f.endsWith('.log'))
    .sort()
    .map((f) => path.join(logsDir, f));
}

/**
 * Removes the run logs (shepherds, roles, the dashboard) started more than `retentionMs` before
 * `now` and not written to since; `daemon.log` (rotated by size) and the shepherd host's log are
 * not run logs. The names alone pick the candidates: a look costs one directory read. Returns the
 * names removed.
 */
export function pruneRunLogs(logsDir: string, retentionMs: number, now: number): string[] {
  const removed: string[] = [];
  for (const name of listDir(logsDir)) {
    const started = logStartedAt(name);
    if (started === null || now - started <= retentionMs) continue;
    const file = path.join(logsDir, name);
    try {
      // A run that still writes its log (a dashboard up for weeks) keeps it.
      if (now - fs.statSync(file).mtimeMs <= retentionMs) continue;
      fs.rmSync(file, { force: true });
      removed.push(name);
    } catch {
      // gone meanwhile
    }
  }
  return removed;
}

/** How often the run logs are looked over for ones past `logRetention`. */
const PRUNE_EVERY_MS = 60 * 60_000;

/**
 * Run logs past `retentionMs` (`logRetention`; 0 keeps them) are removed, looked for at most once
 * an hour (a marker file's time says when last), so that the cost of the caller (the daemon's
 * iteration, a `loom worker`'s loop) does not grow with the logs of weeks of runs. Returns whether
 * it looked (a caller's other hourly clean-ups go with it).
 */
export function pruneLogsHourly(logsDir: string, retentionMs: number, now: number, log: (line: string) => void): boolean {
  if (retentionMs <= 0) return false;
  const marker = path.join(logsDir, '.pruned');
  try {
    if (now - fs.statSync(marker).mtimeMs < PRUNE_EVERY_MS) return false;
  } catch {
    // never looked
  }
  const removed = pruneRunLogs(logsDir, retentionMs, now);
  try {
    fs.writeFileSync(marker, '');
  } catch {
    // no logs directory (yet): nothing to prune either
  }
  if (removed.length > 0) log(`removed ${removed.length} run log${removed.length === 1 ? '' : 's'} older than ${formatDuration(retentionMs)} (logRetention)`);
  return true;
}

/** The latest run of `target`: its log file and, when the event log knows it, its task id. */
export function latestRun(logsDir: string, events: EventLog, target: RunTarget): { file: string; task_id: string | null } | null {
  const matches = (e: LoomEvent) =>
    e.type === 'task.started' && typeof e.output_file === 'string' && e.output_file !== '(terminal)' && ('issue' in target ? e.kind === 'shepherd' && e.issue === target.issue : e.kind === 'role' && e.role === target.role);
  const started = events.findLast(matches);
  const files = runLogFiles(logsDir, target);
  const newest = files.at(-1) ?? null;
  // A run launched after the last one the event log saw (its task has not started yet) is newer.
  if (started?.output_file !== undefined && (newest === null || path.basename(started.output_file) >= path.basename(newest)) && fs.existsSync(started.output_file)) {
    return { file: started.output_file, task_id: started.task_id ?? null };
  }
  return newest === null ? null : { file: newest, task_id: null };
}
