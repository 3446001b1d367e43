/**
 * A lock file shared by processes: it names its holder (`<pid> <start identity>`, then any
 * `name=value` notes its holder adds, such as the shepherd host's daemon session) and appears
 * complete — a hard link of a written temp file — so a contender never reads it empty or
 * half-written. A lock whose holder is gone (a crash, or a pid since reused) is stale: it is
 * removed by one contender at a time (`clearStaleLock`), and then taken like a free one.
 *
 * One process is one holder: a second caller in the holding process finds the lock held.
 */
import fs from 'node:fs';
import { isProcessAlive, processStart } from './process-identity.js';

/** What this process writes into the locks it holds. */
function mine(): string {
  return `${process.pid} ${processStart(process.pid) ?? ''}`.trim();
}

function readLock(file: string): string | null {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
}

/** Whether the lock at `file` names a running process; `gone` when there is no lock. */
function holder(file: string): 'alive' | 'dead' | 'gone' {
  const text = readLock(file);
  if (text === null) return 'gone';
  // An earlier Loom wrote the pid alone.
  const [pid = '', start] = identityWords(text);
  return isProcessAlive(Number(pid), start ?? null) ? 'alive' : 'dead';
}

/** A lock's `<pid> <start identity>`, without its notes. */
export function identityWords(text: string): string[] {
  return text.trim().split(/\s+/).filter((word) => !word.includes('='));
}

function link(lockFile: string, note = ''): boolean {
  const tmp = `${lockFile}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, note === '' ? mine() : `${mine()} ${note}`);
  try {
    fs.linkSync(tmp, lockFile);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    return false;
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}

/** Blocks this thread for `ms` (the lock functions are synchronous; waits here are milliseconds). */
export function pause(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/**
 * Removes the lock at `lockFile` if `isStale` judges its text (null: unreadable) stale — one
 * contender at a time, under `<lockFile>.breaker`. Moving a stale lock aside without that is not
 * enough: a contender that read the stale lock just before another one replaced it would move the
 * new holder's lock away, and a third contender could take the lock in the gap (two holders).
 * Under the breaker the lock is read again and can change only by its holder's own release.
 * A breaker is held for a few system calls; one left by a process that died holding it is removed.
 * Returns false when another contender is clearing the lock: look again in a moment.
 */
export function clearStaleLock(lockFile: string, isStale: (text: string | null) => boolean): boolean {
  const breaker = `${lockFile}.breaker`;
  if (!link(breaker)) {
    if (holder(breaker) !== 'dead') return false;
    fs.rmSync(breaker, { force: true });
    if (!link(breaker)) return false;
  }
  try {
    const text = readLock(lockFile);
    if (text !== null && isStale(text)) fs.rmSync(lockFile, { force: true });
    return true;
  } finally {
    if (readLock(breaker) === mine()) fs.rmSync(breaker, { force: true });
  }
}

/** Whether a lock's text names a process that is gone (or nothing). */
function deadHolder(text: string | null): boolean {
  const [pid = '', start] = identityWords(text ?? '');
  return !isProcessAlive(Number(pid), start ?? null);
}

/** Removes the lock if its holder is gone (a holder killed while holding it); true if it did. */
export function removeStaleLock(lockFile: string): boolean {
  if (holder(lockFile) !== 'dead') return false;
  return clearStaleLock(lockFile, deadHolder) && !fs.existsSync(lockFile);
}

/** Takes the lock if it is free or stale; false while a live process (this one included) holds it. */
export function tryLock(lockFile: string, note = ''): boolean {
  for (let attempt = 0; attempt < 200; attempt += 1) {
    if (link(lockFile, note)) return true;
    if (holder(lockFile) === 'alive') return false;
    if (!clearStaleLock(lockFile, deadHolder)) pause(5);
  }
  return false;
}

/** Releases the lock if this process holds it. */
export function unlock(lockFile: string): void {
  const text = readLock(lockFile);
  if (text !== null && identityWords(text).join(' ') === mine()) fs.rmSync(lockFile, { force: true });
}
