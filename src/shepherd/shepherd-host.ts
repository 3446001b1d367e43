/**
 * `loom shepherd-host`: one long-lived process per repository that runs many shepherd
 * lifecycles at once (`executor.shepherds: "host"`, docs/shepherd.md "Shepherd host"). The
 * launcher hands it runs as tickets (process/host-tickets.ts); each runs `runShepherd` as a
 * `loom shepherd` process would, with its log lines and its agents' output appended to the run's
 * own log file, and its own stop (a stop request, the host's SIGTERM) instead of the process's
 * signals.
 *
 * Crash isolation: an exception in one run ends that run only — its ticket is removed without a
 * terminal status, and the daemon recovers it as after a shepherd that died. An exception nothing
 * catches (a timer's, an event handler's) is logged and the host carries on. A host that dies
 * takes every run in it along: each is recovered from its checkpoint.
 */
import fs from 'node:fs';
import type { LoomConfig } from '../core/config-model.js';
import type { LoomPaths } from '../config/paths.js';
import type { Tracker } from '../tracker/tracker.js';
import type { HostTicket } from '../process/host-tickets.js';
import { dropTicket, hostLockFile, listTickets, sessionNote, stopRequested, takeTicket, ticketsDir } from '../process/host-tickets.js';
import { tryLock, unlock } from '../process/lock-file.js';
import { isProcessAlive, processStart } from '../process/process-identity.js';
import { runShepherd } from './shepherd-process.js';
import { ProgressStore } from '../process/progress-store.js';
import { isTerminal } from '../core/progress.js';

export interface ShepherdHostOptions {
  paths: LoomPaths;
  /** Read for each run, as each `loom shepherd` process reads the configuration when it starts. */
  loadConfig: () => LoomConfig;
  tracker: Tracker;
  /** The host's own log (its runs log to their own files). */
  log: (line: string) => void;
  /** How long the host waits with nothing to do before it exits, ms. */
  idleMs: number;
  /** How often it looks for tickets and stop requests, ms. */
  pollMs: number;
}

interface Run {
  ticket: HostTicket;
  controller: AbortController;
  done: Promise<void>;
}

const stamp = () => new Date().toISOString().slice(11, 19);

export async function runShepherdHost(o: ShepherdHostOptions): Promise<number> {
  const { paths, log } = o;
  const me = { pid: process.pid, pid_start: processStart(process.pid) };
  const lock = hostLockFile(paths.host);
  // The lock names the daemon session this host serves: only its runs are handed to it.
  const note = sessionNote(process.env.LOOM_DAEMON_SESSION);
  fs.mkdirSync(paths.host, { recursive: true });
  if (!tryLock(lock, note)) log(`another shepherd host holds ${lock}; this one runs only the runs handed to it`);
  const runs = new Map<string, Run>();
  const progress = new ProgressStore(paths.progress);
  let stopping = false;
  let wake: (() => void) | null = null;

  const onSignal = () => {
    if (stopping) return;
    stopping = true;
    log(`asked to stop; stopping ${runs.size} run(s)`);
    for (const run of runs.values()) run.controller.abort();
    wake?.();
  };
  const onUncaught = (error: unknown) => log(`an exception no run caught (the host carries on): ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  process.on('uncaughtException', onUncaught);
  process.on('unhandledRejection', onUncaught);

  const serve = async (ticket: HostTicket, controller: AbortController): Promise<void> => {
    let fd: number | null = null;
    try {
      fd = fs.openSync(ticket.output_file, 'a');
      const out = fd;
      const write = (text: string) => {
        try {
          fs.writeSync(out, text);
        } catch {
          // A log that cannot be written (disk full) does not stop the run.
        }
      };
      const code = await runShepherd({
        paths,
        config: o.loadConfig(),
        tracker: o.tracker,
        issue: ticket.issue,
        taskId: ticket.task_id,
        forceMerge: ticket.force_merge,
        log: (line) => write(`${stamp()} ${line}\n`),
        out: write,
        signal: controller.signal,
      });
      log(`#${ticket.issue} (task ${ticket.task_id}) ended, exit code ${code}`);
    } catch (error) {
      // Its ticket goes without a terminal status: the daemon recovers it as a shepherd that died.
      const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
      log(`#${ticket.issue} (task ${ticket.task_id}) failed: ${message}`);
      if (fd !== null) fs.writeSync(fd, `${stamp()} shepherd #${ticket.issue}: failed: ${message}\n`);
      // A run that failed before it took its record over is marked running under the host, so
      // that its removed ticket makes it dead at once (not after a starting record's grace).
      const file = progress.shepherdFile(ticket.issue);
      const record = progress.read(file);
      if (record !== null && record.task_id === ticket.task_id && !isTerminal(record.status)) {
        // Its reason is the error's first line, as a `loom shepherd` that threw leaves it: the
        // blocked comment says what failed (a hook, the configuration), not where it ran.
        progress.write(file, { ...record, status: 'running', pid: me.pid, pid_start: me.pid_start, message: (error instanceof Error ? error.message : String(error)).split('\n')[0] ?? '' });
      }
    } finally {
      if (fd !== null) fs.closeSync(fd);
      dropTicket(paths.host, ticket.task_id);
      runs.delete(ticket.task_id);
      wake?.();
    }
  };

  /** Starts the runs handed to this host; removes tickets of hosts that are gone. How many it started. */
  const take = (): number => {
    let started = 0;
    for (const ticket of listTickets(paths.host)) {
      if (runs.has(ticket.task_id)) continue;
      if (ticket.host_pid !== me.pid || ticket.host_pid_start !== me.pid_start) {
        // Its host died: the daemon recovers its run from the progress record.
        if (!isProcessAlive(ticket.host_pid, ticket.host_pid_start)) dropTicket(paths.host, ticket.task_id);
        continue;
      }
      if (!takeTicket(paths.host, ticket.task_id)) continue; // withdrawn by its launcher
      const controller = new AbortController();
      log(`#${ticket.issue}: running task ${ticket.task_id} (log ${ticket.output_file})`);
      const run: Run = { ticket, controller, done: Promise.resolve() };
      runs.set(ticket.task_id, run);
      run.done = serve(ticket, controller);
      started += 1;
    }
    return started;
  };

  log(`shepherd host started (pid ${me.pid})`);
  // A new ticket (or stop request) wakes the host at once; the poll is the fallback.
  let watcher: fs.FSWatcher | null = null;
  try {
    fs.mkdirSync(ticketsDir(paths.host), { recursive: true });
    watcher = fs.watch(ticketsDir(paths.host), () => wake?.());
    watcher.on('error', () => undefined);
  } catch {
    watcher = null;
  }
  let idleSince = Date.now();
  try {
    for (;;) {
      if (!stopping) take();
      for (const run of runs.values()) if (!run.controller.signal.aborted && stopRequested(paths.host, run.ticket.task_id)) {
        log(`#${run.ticket.issue}: stop requested`);
        run.controller.abort();
      }
      if (runs.size > 0) idleSince = Date.now();
      else if (stopping) break;
      else if (Date.now() - idleSince >= o.idleMs) {
        // Idle: the lock goes first, then one more look — a ticket written while this host still
        // held the lock is seen here (process/host-tickets.ts `handToHost`).
        unlock(lock);
        if (take() === 0) break;
        tryLock(lock, note);
        idleSince = Date.now();
      }
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, o.pollMs);
      });
      wake = null;
    }
    await Promise.all([...runs.values()].map((r) => r.done));
    log(stopping ? 'shepherd host stopped' : `shepherd host exits: idle for ${Math.round(o.idleMs / 1000)}s`);
    return 0;
  } finally {
    watcher?.close();
    unlock(lock);
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    process.off('uncaughtException', onUncaught);
    process.off('unhandledRejection', onUncaught);
  }
}

/** The host's idle time before it exits, ms (`LOOM_HOST_IDLE_MS` overrides it). */
export const HOST_IDLE_MS = 30_000;
/** How often the host looks for tickets and stop requests, ms. */
export const HOST_POLL_MS = 100;
