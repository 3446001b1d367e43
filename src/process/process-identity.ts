/**
 * Is the process we recorded still the same process? A pid alone can be reused after a crash,
 * so on Linux we also record the process start time (`/proc/<pid>/stat`, field 22) and compare.
 */
import fs from 'node:fs';

function readStat(pid: number): string[] | null {
  try {
    const text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces and parentheses; fields after it are plain.
    const close = text.lastIndexOf(')');
    return text.slice(close + 2).split(' ');
  } catch {
    return null;
  }
}

/** The start identity of a running process, or null where `/proc` is not available. */
export function processStart(pid: number): string | null {
  return readStat(pid)?.[19] ?? null;
}

/** True when `pid` runs, is not a zombie, and (when `start` is known) is the same process. */
export function isProcessAlive(pid: number | null | undefined, start?: string | null): boolean {
  if (pid === null || pid === undefined || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const stat = readStat(pid);
  if (stat === null) return fs.existsSync('/proc/self') ? false : true;
  if (stat[0] === 'Z' || stat[0] === 'X') return false;
  return start === null || start === undefined || stat[19] === start;
}

/** Sends a signal to a process group (or the process if it leads none); ignores a gone process. */
export function signalGroup(pid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pid, signal);
    return true;
  } catch {
    try {
      process.kill(pid, signal);
      return true;
    } catch {
      return false;
    }
  }
}
