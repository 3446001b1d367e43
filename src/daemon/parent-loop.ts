/**
 * The thin parent loop (`loom`, `loom start`). It holds the daemon lock and nothing else: each
 * tick it checks the stop signal, runs one iteration in a fresh child process, prints the child's
 * one-line summary, and sleeps until the poll interval passes or the wake file changes.
 *
 * Invariant owned here: the parent accumulates nothing per iteration (no state, no history), so
 * its memory stays flat for days; an iteration that throws, hangs or is killed cannot take it down.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import type { LoomConfig } from '../core/config-model.js';
import { ConfigError, describeConfigError, loadConfig, rememberGoodConfig } from '../config/config.js';
import { formatDuration } from '../core/duration.js';
import type { LoomPaths } from '../config/paths.js';
import { activeShepherds } from '../core/daemon-state.js';
import type { Mode } from '../core/planner.js';
import { loomCommand } from '../process/launcher.js';
import { endIdleHost } from '../process/host-tickets.js';
import { signalGroup } from '../process/process-identity.js';
import { delay } from '../process/wait.js';
import { FileStateStore } from '../state/state-store.js';
import { acquireLock, leftByKilledDaemon, readLock, releaseLock } from '../state/daemon-lock.js';
import { SHUTDOWN_SIGNAL, SLOW_DOWN_FACTOR } from './iteration.js';
import { newTaskId } from '../process/new-task.js';
import { wakeStamp } from '../process/wake.js';
import { EventLog } from '../process/event-log.js';
import { ensureNotifyCursor } from './notifier.js';
import { endLeftoverAgents } from '../process/issue-lease.js';

/** Exit code of `loom iterate` when the state belongs to another daemon session. */
export const EXIT_SESSION_LOST = 4;
/**
 * Shortest gap between two iterations, ms — a wake storm cannot spin the loop. The benchmark of
 * the parent's memory over 10,000 iterations lowers it with `LOOM_MIN_ITERATION_GAP_MS`.
 */
const MIN_GAP_MS = Number(process.env.LOOM_MIN_ITERATION_GAP_MS ?? 200);
/** How often the parent looks at the wake and stop files while sleeping, ms. */
const TICK_MS = 100;

export interface DaemonOptions {
  paths: LoomPaths;
  config: LoomConfig;
  force: boolean;
  log: (line: string) => void;
  /** One-time work once the lock is held, before the first iteration (worktree cleanup). */
  prepare?: () => Promise<void>;
  /** How the stop hint spells a Loom command (default `loom`). */
  cli?: string;
  /** The file `log` writes to when the daemon runs in the background (recorded in the lock for `loom status`). */
  logFile?: string;
  /**
   * Processes that run beside the daemon (the dashboard), started once the lock is held; a
   * failure to start them fails the start. The function returned stops them at the end.
   */
  services?: () => Promise<() => Promise<void>>;
}

interface ChildResult {
  code: number | null;
  summary: string;
  error: string;
}

export async function runDaemon(opts: DaemonOptions): Promise<number> {
  const { paths, force, log } = opts;
  let config = opts.config;
  const session = newTaskId();
  const store = new FileStateStore(paths.state);
  // Read before this daemon takes the lock over: one left by a daemon that did not stop.
  const found = readLock(paths.lock);
  const left = found !== null && leftByKilledDaemon(found, store.peek()) ? found : null;
  acquireLock(paths.lock, session, 'daemon', opts.logFile);
  const stop: { requested: 'no' | 'graceful' | 'now' } = { requested: 'no' };
  const stopping = () => stop.requested;
  const onSignal = (signal: string) => {
    stop.requested = stop.requested === 'no' ? 'graceful' : 'now';
    log(stop.requested === 'graceful' ? `${signal}: shutting down gracefully (again to stop shepherds now)` : `${signal}: stopping shepherds now`);
  };
  const sigint = () => onSignal('SIGINT');
  const sigterm = () => onSignal('SIGTERM');
  process.on('SIGINT', sigint);
  process.on('SIGTERM', sigterm);
  const events = new EventLog(paths.events);
  let stopServices: (() => Promise<void>) | null = null;
  try {
    const loaded = store.load();
    for (const w of loaded.warnings) log(`warning: ${w}`);
    if (fs.existsSync(paths.stopSignal)) {
      fs.rmSync(paths.stopSignal, { force: true });
      log('removed a stop signal left over from before this start');
    }
    try {
      await opts.prepare?.();
    } catch (error) {
      log(`warning: start-up cleanup failed: ${(error as Error).message}`);
    }
    // Before the state says running: a service that cannot start leaves no crashed-looking state.
    stopServices = (await opts.services?.()) ?? null;
    const state = loaded.state;
    const now = new Date().toISOString();
    // Running in the file with the lock free, or its lock left: the last daemon did not stop cleanly.
    const lost = state.running ? { pid: state.daemon_pid, session: state.daemon_session_id, started: state.started_at } : left !== null ? { pid: left.pid, session: left.session_id, started: left.started_at } : null;
    const after = lost !== null ? 'crash' : state.started_at === null ? 'none' : 'stop';
    ensureNotifyCursor(paths, state);
    if (lost !== null) events.emit('daemon.crashed', { pid: lost.pid ?? undefined, session: lost.session ?? undefined, message: `the daemon started at ${lost.started ?? '?'} (pid ${lost.pid ?? '?'}) stopped without a clean shutdown` });
    Object.assign(state, { running: true, started_at: now, daemon_session_id: session, daemon_pid: process.pid, force_mode: force, iteration: 0, stopped_at: null });
    store.save(state);
    events.emit('daemon.started', { pid: process.pid, session, after, force });
    rememberGoodConfig(paths, config);
    const configProblem: { problem: string | null } = { problem: null };
    log(`Loom daemon started (pid ${process.pid}${force ? ', force mode' : ''}); max ${config.maxShepherds} shepherds, poll every ${formatDuration(config.pollInterval)}. Stop with Ctrl+C or \`${opts.cli ?? 'loom'} stop\`.`);

    let iteration = 0;
    while (stopping() === 'no' && !fs.existsSync(paths.stopSignal)) {
      iteration += 1;
      const stamp = wakeStamp(paths.wake);
      const result = await runIterationChild(paths, config, session, force, 'normal');
      if (result.code === EXIT_SESSION_LOST) {
        log(`Iteration ${iteration}: ${result.error || 'the daemon state belongs to another daemon'}; exiting`);
        return 1;
      }
      log(`Iteration ${iteration}: ${describe(result)}`);
      if (result.code !== 0) events.emit('iteration.failed', { session, iteration, exit_code: result.code ?? undefined, message: result.error || undefined });
      if (result.summary === SHUTDOWN_SIGNAL) break;
      config = reloadConfig(paths, config, log, configProblem);
      const started = Date.now();
      // A tracker low on rate limit (or paused) is polled less often and not woken early.
      const slow = /\bslow-down=|^TRACKER_UNAVAILABLE/.test(result.summary);
      const sleep = slow ? config.pollInterval * SLOW_DOWN_FACTOR : config.pollInterval;
      await delay(MIN_GAP_MS);
      while (Date.now() - started < sleep && (slow || wakeStamp(paths.wake) === stamp) && stopping() === 'no' && !fs.existsSync(paths.stopSignal)) {
        await delay(TICK_MS);
      }
    }

    // Graceful shutdown: no new work; let active shepherds finish within the grace period.
    const deadline = Date.now() + config.shutdownGrace;
    let active = countActive(store);
    if (active > 0 && stopping() !== 'now') log(`Shutting down: waiting up to ${formatDuration(config.shutdownGrace)} for ${active} active task(s)`);
    while (active > 0 && stopping() !== 'now' && Date.now() < deadline) {
      const stamp = wakeStamp(paths.wake);
      const result = await runIterationChild(paths, config, session, force, 'drain');
      // Another daemon holds the lock now: its work, its state; this one only leaves.
      if (result.code === EXIT_SESSION_LOST) {
        log(`Drain: ${result.error || 'the daemon state belongs to another daemon'}; exiting`);
        return 1;
      }
      if (result.summary && !/^ready=\d+ building=\d+ shepherds=\d+\/\d+$/.test(result.summary)) log(`Drain: ${describe(result)}`);
      active = countActive(store);
      const started = Date.now();
      while (active > 0 && Date.now() - started < 1000 && Date.now() < deadline && wakeStamp(paths.wake) === stamp && stopping() !== 'now') await delay(TICK_MS);
    }
    if (active > 0) {
      const result = await runIterationChild(paths, config, session, force, 'stop');
      if (result.code === EXIT_SESSION_LOST) {
        log(`Stop: ${result.error || 'the daemon state belongs to another daemon'}; exiting`);
        return 1;
      }
      log(`Stopped the rest: ${describe(result)}`);
    }
    // No agent outlives the daemon: one whose starter died since the last iteration ends now.
    for (const line of await endLeftoverAgents(paths.worktrees)) log(line);
    // Nor an idle shepherd host (one that still runs something exits by itself when idle).
    if ((await endIdleHost(paths.host, 2_000, 10_000)) === 'ended') log('Stopped the idle shepherd host');
    const final = store.load().state;
    Object.assign(final, { running: false, stopped_at: new Date().toISOString() });
    store.save(final, session);
    fs.rmSync(paths.stopSignal, { force: true });
    events.emit('daemon.stopped', { pid: process.pid, session, message: `${final.completed_issues.length} issues completed, ${final.total_prs_merged} PRs merged` });
    log(`Loom daemon stopped (${final.completed_issues.length} issues completed, ${final.total_prs_merged} PRs merged).`);
    return 0;
  } finally {
    await stopServices?.();
    process.off('SIGINT', sigint);
    process.off('SIGTERM', sigterm);
    releaseLock(paths.lock, session);
  }
}

function describe(result: ChildResult): string {
  if (result.code === 0 && result.summary) return result.summary;
  return `failed (exit ${result.code ?? 'killed'})${result.error ? `: ${result.error}` : ''}`;
}

/** Shepherds and roles still running, per the state file. */
function countActive(store: FileStateStore): number {
  const state = store.peek();
  if (state === null) return 0;
  return activeShepherds(state).length + Object.values(state.support_roles).filter((r) => r.status === 'running').length;
}

/**
 * The config for the next iteration: the file when it is valid (kept as the last good one for
 * the processes the daemon starts), else the last good one. A problem is logged once per change
 * of the file's problems, not every iteration.
 */
function reloadConfig(paths: LoomPaths, current: LoomConfig, log: (line: string) => void, seen: { problem: string | null }): LoomConfig {
  try {
    const config = loadConfig(paths.config);
    if (seen.problem !== null) log('configuration is valid again; applying it');
    seen.problem = null;
    rememberGoodConfig(paths, config);
    return config;
  } catch (error) {
    const problem = error instanceof ConfigError ? describeConfigError(error, paths.root) : (error as Error).message;
    if (problem !== seen.problem) log(`warning: ${problem}; the daemon keeps running on the last good configuration until it is fixed`);
    seen.problem = problem;
    return current;
  }
}

/**
 * Runs `loom iterate` in a fresh child process in its own process group (so Ctrl+C reaches
 * only the parent), killing it if it runs past `iterationTimeout`. Keeps only the last line.
 */
function runIterationChild(paths: LoomPaths, config: LoomConfig, session: string, force: boolean, mode: Mode): Promise<ChildResult> {
  const { command, args } = loomCommand();
  return new Promise((resolve) => {
    const child = spawn(command, [...args, 'iterate', '--mode', mode, ...(force ? ['--force'] : [])], {
      cwd: paths.root,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, LOOM_DAEMON_SESSION: session },
    });
    let out = '';
    let err = '';
    const keep = (text: string, chunk: Buffer) => (text + chunk.toString('utf8')).slice(-8192);
    child.stdout.on('data', (chunk: Buffer) => (out = keep(out, chunk)));
    child.stderr.on('data', (chunk: Buffer) => (err = keep(err, chunk)));
    const timer = setTimeout(() => {
      err += `\niteration timed out after ${formatDuration(config.iterationTimeout)}`;
      if (child.pid) signalGroup(child.pid, 'SIGKILL');
    }, config.iterationTimeout);
    const done = (code: number | null) => {
      clearTimeout(timer);
      const lastLine = (text: string) => text.trim().split('\n').pop()?.trim() ?? '';
      resolve({ code, summary: lastLine(out), error: lastLine(err) });
    };
    child.on('error', (error) => {
      err += `\n${error.message}`;
      done(null);
    });
    child.on('close', (code) => done(code));
  });
}
