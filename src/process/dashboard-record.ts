/**
 * `.loom/dashboard.json`: the running dashboard's process and address, written by the dashboard
 * once it listens and removed when it stops, so the daemon (`loom start --dashboard`) can find a
 * dashboard that already runs and print its address. The token is never in it.
 */
import fs from 'node:fs';
import { readJsonFile, writeFileAtomic } from '../fs/atomic-file.js';
import { isProcessAlive, processStart } from './process-identity.js';

export interface DashboardRecord {
  pid: number;
  pid_start: string | null;
  /** The address to open (without any token). */
  url: string;
  host: string;
  port: number;
  token_required: boolean;
  started: string;
  /**
   * Set by `loom start --dashboard` on the dashboard it launched: it belongs beside a daemon, so a
   * later daemon that reuses it (the first one crashed, leaving it to show the crash) stops it too.
   */
  beside_daemon?: boolean;
}

export function writeDashboardRecord(file: string, fields: Omit<DashboardRecord, 'pid' | 'pid_start' | 'started'>): void {
  writeFileAtomic(file, `${JSON.stringify({ pid: process.pid, pid_start: processStart(process.pid), ...fields, started: new Date().toISOString() } satisfies DashboardRecord, null, 2)}\n`);
}

/** The record of a dashboard whose process still runs, or null. */
export function liveDashboard(file: string): DashboardRecord | null {
  let value: unknown;
  try {
    value = readJsonFile(file);
  } catch {
    return null;
  }
  const record = value as DashboardRecord | undefined;
  if (record === undefined || typeof record.pid !== 'number' || typeof record.url !== 'string') return null;
  return isProcessAlive(record.pid, record.pid_start) ? record : null;
}

/** Removes the record if it is this process's. */
export function removeDashboardRecord(file: string): void {
  try {
    const record = readJsonFile(file) as DashboardRecord | undefined;
    if (record?.pid === process.pid) fs.rmSync(file, { force: true });
  } catch {
    // unreadable: leave it; `liveDashboard` ignores a dead record
  }
}

/** Marks the running dashboard `pid`'s record as launched beside the daemon (`beside_daemon`). */
export function markBesideDaemon(file: string, pid: number): void {
  const record = liveDashboard(file);
  if (record?.pid === pid) writeFileAtomic(file, `${JSON.stringify({ ...record, beside_daemon: true } satisfies DashboardRecord, null, 2)}\n`);
}
