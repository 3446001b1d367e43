/**
 * A lock file shared by processes: it names its holder (`<pid> <start identity>`) and appears
 * complete — a hard link of a written temp file — so a contender never reads it empty or
 * half-written. A lock whose holder is gone (a crash, or a pid since reused) is stale: it is moved
 * aside, which only one contender can do, and checked once moved; a live holder's lock moved by
 * mistake (it replaced the stale one in between) is put back.
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
  const [pid = '', start] = text.trim().split(/\s+/);
  return isProcessAlive(Number(pid), start ?? null) ? 'alive' : 'dead';
}

function link(lockFile: string): boolean {
  const tmp = `${lockFile}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, mine());
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

/** Takes the lock if it is free or stale; false while a live process (this one included) holds it. */
export function tryLock(lockFile: string): boolean {
  if (link(lockFile)) return true;
  const state = holder(lockFile);
  if (state === 'alive') return false;
  if (state === 'dead') {
    const aside = `${lockFile}.stale-${process.pid}.tmp`;
    try {
      fs.renameSync(lockFile, aside);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    if (holder(aside) === 'alive') {
      try {
        fs.linkSync(aside, lockFile);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      } finally {
        fs.rmSync(aside, { force: true });
      }
      return false;
    }
    fs.rmSync(aside, { force: true });
  }
  return link(lockFile);
}

/** Releases the lock if this process holds it. */
export function unlock(lockFile: string): void {
  if (readLock(lockFile) === mine()) fs.rmSync(lockFile, { force: true });
}
