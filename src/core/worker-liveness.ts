/**
 * When a `loom worker` counts as gone: the registry keeps what each worker last reported (its
 * job lock and how often it reports); one silent for longer than its job lock has lost its jobs
 * to other workers, and an entry silent for an hour is forgotten.
 */

/** A worker's registry entry is forgotten after this long without a report, ms. */
export const FORGET_WORKER_MS = 60 * 60_000;

/**
 * Whether a worker last seen `sinceMs` ago has gone silent: longer than its job lock (its jobs
 * are then another worker's) and three of its reports; for an entry without them, 30 s.
 */
export function workerSilent(w: { lock_ms?: number; beat_ms?: number }, sinceMs: number | null): boolean {
  return sinceMs !== null && sinceMs > Math.max(w.lock_ms ?? 30_000, 3 * (w.beat_ms ?? 5_000));
}
