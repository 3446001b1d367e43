/**
 * `.loom/queue-status.json`: the bullmq executor's queue and workers as the daemon last saw them
 * (written every iteration, read by `loom status`), and since when dispatch is paused when Redis
 * is unavailable.
 */
import fs from 'node:fs';
import type { LoomPaths } from '../config/paths.js';
import { readJsonFile, writeFileAtomic } from '../fs/atomic-file.js';
import type { JobView, WorkerInfo } from './shepherd-queue.js';

/** What `loom status` shows of the queue and its workers. */
export interface QueueStatus {
  redis: string;
  available: boolean;
  /** Since when dispatch is paused because Redis is unavailable (null: it is not). */
  paused_since: string | null;
  error: string | null;
  checked_at: string;
  jobs: { id: string; issue: number; state: JobView['state']; worker: string | null; heartbeat: string | null; phase: string | null }[];
  workers: WorkerInfo[];
  /** Set when another daemon coordinates the queue: what it is, and that this one dispatches nothing. */
  held_by?: string;
}

export function readQueueStatus(paths: LoomPaths): QueueStatus | null {
  try {
    return (readJsonFile(paths.queueStatus) as QueueStatus | undefined) ?? null;
  } catch {
    return null;
  }
}

export function writeQueueStatus(paths: LoomPaths, status: QueueStatus): void {
  fs.mkdirSync(paths.dir, { recursive: true });
  writeFileAtomic(paths.queueStatus, `${JSON.stringify(status, null, 2)}\n`);
}

