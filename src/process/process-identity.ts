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

/** True when some process (a zombie too) has this pid. */
export function processExists(pid: number): boolean {
  if (pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * True when a process group with this id has a live (not zombie) member. Read from `/proc` where
 * it exists; elsewhere any member counts.
 */
export function groupExists(pgid: number): boolean {
  if (pgid <= 1) return false;
  try {
    process.kill(-pgid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  let entries: string[];
  try {
    entries = fs.readdirSync('/proc');
  } catch {
    return true;
  }
  for (const name of entries) {
    if (!/^\d+$/.test(name)) continue;
    const stat = readStat(Number(name));
    // Fields after the command name: state (0), ppid (1), pgrp (2).
    if (stat !== null && stat[2] === String(pgid) && stat[0] !== 'Z' && stat[0] !== 'X') return true;
  }
  return false;
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

/**
 * Live processes (zombies aside) that may be using `dir` or `file`: their working directory is
 * `dir` or inside it, or they hold `file` open. Processes whose `/proc` entries cannot be read
 * (another user's) are not seen. Empty where `/proc` does not exist.
 */
export function processesUsing(dir: string, file?: string): number[] {
  let entries: string[];
  try {
    entries = fs.readdirSync('/proc');
  } catch {
    return [];
  }
  const inside = (p: string) => p === dir || p.startsWith(`${dir}/`);
  const found: number[] = [];
  for (const name of entries) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    const stat = readStat(Number(name));
    if (stat === null || stat[0] === 'Z' || stat[0] === 'X') continue;
    let cwd = '';
    try {
      cwd = fs.readlinkSync(`/proc/${name}/cwd`);
    } catch {
      continue;
    }
    if (inside(cwd)) {
      found.push(Number(name));
      continue;
    }
    if (file === undefined) continue;
    let fds: string[] = [];
    try {
      fds = fs.readdirSync(`/proc/${name}/fd`);
    } catch {
      continue;
    }
    if (fds.some((fd) => readLinkOrEmpty(`/proc/${name}/fd/${fd}`) === file)) found.push(Number(name));
  }
  return found;
}

function readLinkOrEmpty(link: string): string {
  try {
    return fs.readlinkSync(link);
  } catch {
    return '';
  }
}
