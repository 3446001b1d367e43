/**
 * One daemon per repository: `.loom/daemon.lock` holds the owner's pid, start identity and
 * session. Creation is atomic (hard link of a complete temp file), so two starters cannot both
 * win; a lock whose process is gone is stale and is taken over (removed by one contender at a
 * time, see `clearStaleLock`).
 */
import { LoomError } from '../core/errors.js';
import fs from 'node:fs';
import { clearStaleLock, pause } from '../process/lock-file.js';
import { isProcessAlive, processStart } from '../process/process-identity.js';

export interface LockInfo {
  pid: number;
  pid_start: string | null;
  session_id: string;
  started_at: string;
  /** What holds it: the daemon, or a one-off `loom iterate`. */
  holder: 'daemon' | 'iterate';
  /** Where a daemon running in the background writes its log (absent: it prints to a terminal). */
  log_file?: string;
}

export class LockHeldError extends LoomError {
  constructor(readonly info: LockInfo) {
    super(
      'lock_held',
      (info.holder === 'daemon'
        ? `a Loom daemon is already running for this repository (pid ${info.pid}); stop it with \`loom stop\` or watch it with \`loom status\``
        : `a \`loom iterate\` is running for this repository (pid ${info.pid}); wait for it to finish`) +
        // A lock an older Loom wrote names a pid only: that pid may be anyone's by now.
        (typeof info.pid_start === 'string' && info.pid_start !== ''
          ? ''
          : ` (the lock records no start identity, so nothing proves pid ${info.pid} is still Loom: if \`ps -p ${info.pid}\` shows another program, remove .loom/daemon.lock)`),
      { userFixable: true, retryable: true },
    );
  }
}

export function readLock(file: string): LockInfo | null {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return null;
  }
  return parseLock(text);
}

/** A lock's text: null when it is not a lock (nor JSON). */
function parseLock(text: string | null): LockInfo | null {
  try {
    const value = JSON.parse(text ?? '') as LockInfo | null;
    return value !== null && typeof value.pid === 'number' ? value : null;
  } catch {
    return null;
  }
}

/** The lock's info if it is held by a live process, else null. */
export function liveLock(file: string): LockInfo | null {
  const info = readLock(file);
  return info !== null && isProcessAlive(info.pid, info.pid_start) ? info : null;
}

/** Takes the lock for this process; takes over a stale one; throws `LockHeldError` if live. */
export function acquireLock(file: string, session_id: string, holder: LockInfo['holder'], logFile?: string): LockInfo {
  const info: LockInfo = { pid: process.pid, pid_start: processStart(process.pid), session_id, started_at: new Date().toISOString(), holder, ...(logFile === undefined ? {} : { log_file: logFile }) };
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(info));
  try {
    for (let attempt = 0; attempt < 200; attempt += 1) {
      try {
        fs.linkSync(tmp, file);
        return info;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
      const current = readLock(file);
      if (current !== null && isProcessAlive(current.pid, current.pid_start)) throw new LockHeldError(current);
      // Stale (or unreadable): removed by one contender at a time, then the link is tried again.
      if (!clearStaleLock(file, (text) => !isLive(text))) pause(5);
    }
    throw new Error(`could not take ${file} after several attempts`);
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}

/** Whether a lock's text names a live process. */
function isLive(text: string | null): boolean {
  const info = parseLock(text);
  return info !== null && isProcessAlive(info.pid, info.pid_start);
}

/** Releases the lock if this process still holds it. */
export function releaseLock(file: string, session_id: string): void {
  const current = readLock(file);
  if (current !== null && current.pid === process.pid && current.session_id === session_id) fs.rmSync(file, { force: true });
}

/**
 * Whether `lock` was left by a daemon that did not stop: its holder is gone (a daemon releases its
 * lock whenever it stops) and `state` records no clean stop after the lock was taken (one killed
 * while releasing the rest, e.g. ending its dashboard, did stop). A daemon killed during its
 * start-up, before its state said running, leaves just that.
 */
export function leftByKilledDaemon(lock: LockInfo, state: { running: boolean; stopped_at: string | null } | null): boolean {
  if (lock.holder !== 'daemon' || isProcessAlive(lock.pid, lock.pid_start)) return false;
  const stopped = state !== null && !state.running && state.stopped_at !== null && Date.parse(state.stopped_at) >= Date.parse(lock.started_at);
  return !stopped;
}
