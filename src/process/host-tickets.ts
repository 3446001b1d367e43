/**
 * The shepherd host's files under `.loom/host/` (docs/shepherd.md, "Shepherd host"): the lock
 * that names the host serving this repository, and one ticket per shepherd run handed to it.
 *
 * - `shepherd-host.lock`: the host's pid and start identity (lock-file.ts). A dead holder's lock
 *   is taken over by the next host.
 * - `tickets/<task>.json`: a run handed over — issue, task, log file, force-merge, and the host it
 *   is addressed to. Written atomically by the launcher after the claim; a host runs only tickets
 *   addressed to itself, and removes each when its run ends. While it exists (and its host lives)
 *   the run is alive (progress-store.ts `viewOf`).
 * - `tickets/<task>.taken`: created exclusively by whoever decides the ticket's fate first — the
 *   host (it runs it) or the launcher (it withdraws a ticket addressed to a host that was exiting).
 * - `tickets/<task>.stop`: a stop request for that one run; the host aborts it as SIGTERM aborts a
 *   shepherd process.
 */
import fs from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../fs/atomic-file.js';
import { listDir } from '../fs/list-dir.js';
import { launchLoomDetached } from './launcher.js';
import { identityWords, removeStaleLock } from './lock-file.js';
import { isProcessAlive, processStart } from './process-identity.js';
import { terminateGroup, waitFor } from './wait.js';

export interface HostTicket {
  issue: number;
  task_id: string;
  output_file: string;
  force_merge: boolean;
  /** The host this run is handed to. */
  host_pid: number;
  host_pid_start: string | null;
  written: string;
}

export interface HostIdentity {
  pid: number;
  pid_start: string | null;
  /**
   * The daemon session the host was started in (its `LOOM_DAEMON_SESSION`), null when started by
   * hand (`loom spawn`). A run takes the environment and the configuration fallback of its host, so
   * a launcher hands runs only to a host of its own session.
   */
  session?: string | null;
}

/** The note a host adds to its lock: the daemon session it runs in. */
export function sessionNote(session: string | null | undefined): string {
  return `session=${session ?? '-'}`;
}

export function hostLockFile(hostDir: string): string {
  return path.join(hostDir, 'shepherd-host.lock');
}

export function ticketsDir(hostDir: string): string {
  return path.join(hostDir, 'tickets');
}

export function ticketFile(hostDir: string, taskId: string): string {
  return path.join(ticketsDir(hostDir), `${taskId}.json`);
}

const takenFile = (hostDir: string, taskId: string) => path.join(ticketsDir(hostDir), `${taskId}.taken`);
const stopFile = (hostDir: string, taskId: string) => path.join(ticketsDir(hostDir), `${taskId}.stop`);

export function writeTicket(hostDir: string, ticket: HostTicket): string {
  fs.mkdirSync(ticketsDir(hostDir), { recursive: true });
  const file = ticketFile(hostDir, ticket.task_id);
  writeFileAtomic(file, JSON.stringify(ticket, null, 2));
  return file;
}

function readTicket(file: string): HostTicket | null {
  try {
    const t = JSON.parse(fs.readFileSync(file, 'utf8')) as HostTicket;
    return typeof t.issue === 'number' && typeof t.task_id === 'string' && typeof t.host_pid === 'number' && typeof t.output_file === 'string' ? t : null;
  } catch {
    return null;
  }
}

/** Every ticket on disk (torn or foreign files skipped). */
export function listTickets(hostDir: string): HostTicket[] {
  return listDir(ticketsDir(hostDir))
    .filter((n) => n.endsWith('.json'))
    .map((n) => readTicket(path.join(ticketsDir(hostDir), n)))
    .filter((t): t is HostTicket => t !== null);
}

/** Decides the ticket's fate: true for the one caller that creates `<task>.taken` first. */
export function takeTicket(hostDir: string, taskId: string): boolean {
  try {
    fs.closeSync(fs.openSync(takenFile(hostDir, taskId), 'wx'));
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  }
}

/** Removes a ticket and its companions (the run has ended, or the ticket's host is gone). */
export function dropTicket(hostDir: string, taskId: string): void {
  fs.rmSync(ticketFile(hostDir, taskId), { force: true });
  fs.rmSync(stopFile(hostDir, taskId), { force: true });
  fs.rmSync(takenFile(hostDir, taskId), { force: true });
}

/** Asks the host to stop the run of `taskId` (docs/shepherd.md). */
export function requestStop(hostDir: string, taskId: string): void {
  fs.mkdirSync(ticketsDir(hostDir), { recursive: true });
  fs.writeFileSync(stopFile(hostDir, taskId), `${new Date().toISOString()}\n`);
}

export function stopRequested(hostDir: string, taskId: string): boolean {
  return fs.existsSync(stopFile(hostDir, taskId));
}

/** How long a launcher waits for the host it started to take the lock, ms. */
const HOST_START_MS = 10_000;

/**
 * Ends the shepherd host (SIGTERM: it stops its runs gracefully; SIGKILL after `graceMs`) once it
 * has no tickets left, waiting up to `idleWaitMs` for them to go. `busy`: it still has runs.
 */
export async function endIdleHost(hostDir: string, idleWaitMs: number, graceMs: number): Promise<'none' | 'busy' | 'ended' | 'survived' | 'not-ours'> {
  const host = liveHost(hostDir);
  if (host === null) {
    clearDeadHosts(hostDir);
    return 'none';
  }
  if (!(await waitFor(() => !listTickets(hostDir).some((t) => t.host_pid === host.pid), idleWaitMs, 50))) return 'busy';
  const result = await terminateGroup(host.pid, host.pid_start, graceMs);
  clearDeadHosts(hostDir);
  return result === 'gone' ? 'none' : result;
}

/**
 * Removes what hosts that died (`kill -9`) left: the lock of a dead holder and the tickets
 * addressed to dead hosts (their runs are recovered from their progress records). A host that
 * starts later does this too; a stopping daemon does it so nothing is left once it has stopped.
 */
export function clearDeadHosts(hostDir: string): void {
  removeStaleLock(hostLockFile(hostDir));
  for (const ticket of listTickets(hostDir)) if (!isProcessAlive(ticket.host_pid, ticket.host_pid_start)) dropTicket(hostDir, ticket.task_id);
  // A stop request or a mark whose ticket is gone (asked of a run whose host had died).
  const names = listDir(ticketsDir(hostDir));
  for (const name of names) {
    const task = /^(.+)\.(stop|taken)$/.exec(name)?.[1];
    if (task !== undefined && !names.includes(`${task}.json`)) fs.rmSync(path.join(ticketsDir(hostDir), name), { force: true });
  }
}

/** The host holding the lock, if it is alive. */
export function liveHost(hostDir: string): HostIdentity | null {
  let text: string;
  try {
    text = fs.readFileSync(hostLockFile(hostDir), 'utf8');
  } catch {
    return null;
  }
  const [pid = '', start] = identityWords(text);
  const note = /(?:^|\s)session=(\S+)/.exec(text)?.[1];
  const identity: HostIdentity = { pid: Number(pid), pid_start: start ?? null, ...(note !== undefined ? { session: note === '-' ? null : note } : {}) };
  return isProcessAlive(identity.pid, identity.pid_start) ? identity : null;
}

const sameHost = (a: HostIdentity | null, b: HostIdentity) => a !== null && a.pid === b.pid && a.pid_start === b.pid_start;

/**
 * Hands a claimed run to the host of this repository, launching one (detached, `loom
 * shepherd-host`, output to `hostLog`) when none lives. `beforeTicket` is called with the host and
 * the ticket's path before the ticket is written (the launcher records them in the run's progress
 * record, so the run is never without a live owner on disk).
 *
 * A host that exits when idle releases its lock first and then looks for tickets once more, so a
 * ticket written while its host still held the lock is always seen. One written after that may
 * not be: the launcher takes it back (`takeTicket`) and hands it to a new host; if the host took
 * it first, it runs it.
 *
 * A run lives in its host's environment (API keys, `LOOM_*` settings) and, for a host a daemon
 * started, with that daemon's configuration fallback and session. So a run goes only to a host of
 * the launcher's own daemon session (`LOOM_DAEMON_SESSION` of `env`, none for `loom spawn` by
 * hand): with a host of another session holding the lock, this returns null before anything is
 * written, and the caller runs the issue in a process of its own. If that happens on a second
 * try (its host exited, another session's host started meanwhile), a host of its own is
 * launched instead, which runs the tickets addressed to it without holding the lock.
 */
export async function handToHost(o: { root: string; hostDir: string; hostLog: string; ticket: Omit<HostTicket, 'host_pid' | 'host_pid_start' | 'written'>; beforeTicket: (host: HostIdentity, ticketPath: string) => void; env?: NodeJS.ProcessEnv }): Promise<HostIdentity | null> {
  const { hostDir } = o;
  const taskId = o.ticket.task_id;
  const session = (o.env ?? process.env).LOOM_DAEMON_SESSION ?? null;
  let withdrawn = false;
  for (let attempt = 0; ; attempt += 1) {
    let host = liveHost(hostDir);
    if (host !== null && (host.session ?? null) !== session) {
      if (attempt === 0) return null;
      host = null;
    }
    const launched = host === null;
    if (host === null) {
      const started = launchLoomDetached(['shepherd-host'], { cwd: o.root, logFile: o.hostLog, ...(o.env ? { env: o.env } : {}) });
      host = { pid: started.pid, pid_start: started.pid_start ?? processStart(started.pid) };
      // Until it holds the lock, the next launcher would start a host of its own.
      const launchedHost = host;
      await waitFor(() => liveHost(hostDir) !== null || !isProcessAlive(launchedHost.pid, launchedHost.pid_start), HOST_START_MS, 10);
    }
    const file = ticketFile(hostDir, taskId);
    o.beforeTicket(host, file);
    writeTicket(hostDir, { ...o.ticket, host_pid: host.pid, host_pid_start: host.pid_start, written: new Date().toISOString() });
    if (withdrawn) fs.rmSync(takenFile(hostDir, taskId), { force: true });
    // A host just launched has not been idle yet; one found by its lock still holds it, so it looks again before it exits.
    if (launched || sameHost(liveHost(hostDir), host)) return host;
    if (attempt >= 2 || !takeTicket(hostDir, taskId)) return host;
    withdrawn = true;
  }
}
