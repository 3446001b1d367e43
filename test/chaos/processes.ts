/**
 * The processes of one chaos run, read from /proc: which are Loom's (cwd in the repository, or
 * carrying the run's marker variable), what each one is (daemon, iteration, shepherd, shepherd
 * host, role, agent), which one holds a TCP connection, and how to end them all.
 */
import fs from 'node:fs';

export interface Proc {
  pid: number;
  ppid: number;
  pgid: number;
  state: string;
  cmdline: string;
  cwd: string | null;
}

export type ProcKind = 'daemon' | 'iteration' | 'shepherd' | 'host' | 'role' | 'agent' | 'other';

function read(pid: number): Proc | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
    let cwd: string | null = null;
    try {
      cwd = fs.readlinkSync(`/proc/${pid}/cwd`);
    } catch {
      // exiting, or not ours to read
    }
    return { pid, ppid: Number(fields[1]), pgid: Number(fields[2]), state: fields[0] ?? '?', cmdline, cwd };
  } catch {
    return null;
  }
}

function environHas(pid: number, marker: string): boolean {
  try {
    return fs.readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').includes(marker);
  } catch {
    return false;
  }
}

/** Live (not zombie) processes of the run: cwd under `root`, or `marker` (NAME=value) in their environment. */
export function runProcesses(root: string, marker: string): Proc[] {
  const result: Proc[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    if (pid === process.pid) continue;
    const p = read(pid);
    if (p === null || p.state === 'Z' || p.state === 'X') continue;
    const inside = p.cwd !== null && (p.cwd === root || p.cwd.startsWith(`${root}/`));
    if (inside || environHas(pid, marker)) result.push(p);
  }
  return result.sort((a, b) => a.pid - b.pid);
}

export function kindOf(p: Proc, daemonPids: ReadonlySet<number>): ProcKind {
  if (daemonPids.has(p.pid)) return 'daemon';
  if (/main\.js iterate\b/.test(p.cmdline)) return 'iteration';
  if (/main\.js shepherd \d+/.test(p.cmdline)) return 'shepherd';
  if (/main\.js shepherd-host\b/.test(p.cmdline)) return 'host';
  if (/main\.js role \w+/.test(p.cmdline)) return 'role';
  // An agent is its process group, led by the runtime's `sh -c`: counted once, by its leader.
  if (/agent\.sh\b/.test(p.cmdline)) return p.pid === p.pgid ? 'agent' : 'other';
  return 'other';
}

/** A stable name for a process of a kind, to sort candidates the same way on every run. */
export function keyOf(p: Proc, kind: ProcKind): string {
  if (kind === 'shepherd') return (/shepherd (\d+)/.exec(p.cmdline)?.[1] ?? '').padStart(6, '0');
  if (kind === 'role') return /role (\w+)/.exec(p.cmdline)?.[1] ?? '';
  if (kind === 'agent') {
    try {
      const env = fs.readFileSync(`/proc/${p.pid}/environ`, 'utf8').split('\0');
      const issue = env.find((e) => e.startsWith('LOOM_ISSUE='))?.slice(11) ?? '';
      const role = env.find((e) => e.startsWith('LOOM_ROLE='))?.slice(10) ?? '';
      return `${issue.padStart(6, '0')} ${role}`;
    } catch {
      return '';
    }
  }
  return String(p.pid).padStart(8, '0');
}

export function sigkill(pid: number): boolean {
  try {
    process.kill(pid, 'SIGKILL');
    return true;
  } catch {
    return false;
  }
}

/**
 * SIGKILLs every process of the run and every process group one of them leads, until none is
 * left or `deadlineMs` passes. Returns what was still found on the first pass.
 */
export async function killAll(root: string, marker: string, deadlineMs = 10_000): Promise<Proc[]> {
  const first = runProcesses(root, marker);
  const end = Date.now() + deadlineMs;
  for (let found = first; found.length > 0 && Date.now() < end; found = runProcesses(root, marker)) {
    for (const p of found) {
      if (p.pgid === p.pid) {
        try {
          process.kill(-p.pid, 'SIGKILL');
        } catch {
          // not a group any more
        }
      }
      sigkill(p.pid);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return first;
}

/**
 * The pid holding the client end of a TCP connection to 127.0.0.1:`serverPort` from
 * `clientPort` (from /proc/net/tcp and the processes' socket descriptors), or null.
 */
export function pidOfConnection(clientPort: number, serverPort: number): number | null {
  const hex = (n: number) => n.toString(16).toUpperCase().padStart(4, '0');
  let inode: string | null = null;
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = fs.readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length < 10) continue;
      if ((cols[1] ?? '').endsWith(`:${hex(clientPort)}`) && (cols[2] ?? '').endsWith(`:${hex(serverPort)}`)) inode = cols[9] ?? null;
    }
    if (inode !== null) break;
  }
  if (inode === null || inode === '0') return null;
  const target = `socket:[${inode}]`;
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    let fds: string[];
    try {
      fds = fs.readdirSync(`/proc/${name}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        if (fs.readlinkSync(`/proc/${name}/fd/${fd}`) === target) return Number(name);
      } catch {
        // closed meanwhile
      }
    }
  }
  return null;
}
