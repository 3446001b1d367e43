/**
 * `loom start --detach`: the daemon in the background. The same `loom start` runs as a child in
 * its own session (no terminal can hang it up; Ctrl+C in the starting shell does not reach it),
 * stdin closed, stdout and stderr appended to `.loom/logs/daemon.log`. The starter waits until the
 * daemon holds the lock and has written its first state — or has exited, whose reason it reports
 * — and then leaves it running.
 *
 * The background daemon writes its own log lines (`backgroundLog`), rotating the file by size, so
 * a daemon left alone for weeks keeps a bounded log.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import type { LoomPaths } from '../config/paths.js';
import { rotateLogIfLarge } from '../fs/log-rotation.js';
import { loomCommand } from '../process/launcher.js';
import { waitFor } from '../process/wait.js';
import { LockHeldError, liveLock } from '../state/daemon-lock.js';
import { FileStateStore } from '../state/state-store.js';

/** Rotated parts of the daemon log kept beside it (`daemon.log.1` … `.3`). */
export const DAEMON_LOG_KEEP = 3;
/** The daemon log rotates at this size; `LOOM_DAEMON_LOG_MAX_BYTES` overrides it. */
const DEFAULT_LOG_MAX_BYTES = 10 * 1024 * 1024;
/** How long the starter waits for the daemon to hold the lock and write its state. */
const READY_TIMEOUT_MS = 60_000;

export type DetachResult =
  /** `ready`: the state is written; false when the daemon holds the lock but had not written it in time. */
  | { started: true; pid: number; logFile: string; ready: boolean }
  /** The daemon exited before it was ready: its exit code and the reason it gave. */
  | { started: false; exitCode: number; message: string };

/**
 * Starts the daemon in the background and waits until it is ready or has failed. Throws
 * `LockHeldError` (before starting anything) when a daemon or an iteration already runs.
 */
export async function startDetached(opts: { paths: LoomPaths; force: boolean; env?: NodeJS.ProcessEnv; /** More `loom start` options (`--dashboard P`). */ args?: string[] }): Promise<DetachResult> {
  const { paths } = opts;
  const holder = liveLock(paths.lock);
  if (holder !== null) throw new LockHeldError(holder);
  fs.mkdirSync(paths.logs, { recursive: true });
  const fd = fs.openSync(paths.daemonLog, 'a');
  const offset = fs.fstatSync(fd).size;
  const ended: { code: number | null } = { code: null };
  let pid: number | undefined;
  try {
    const { command, args } = loomCommand();
    const child = spawn(command, [...args, 'start', ...(opts.force ? ['--force'] : []), ...(opts.args ?? []), '--log-file', paths.daemonLog], {
      cwd: paths.root,
      detached: true,
      stdio: ['ignore', fd, fd],
      env: opts.env ?? process.env,
    });
    child.on('error', () => (ended.code = 127));
    child.on('exit', (code, signal) => (ended.code = code ?? (signal === null ? 1 : 128)));
    child.unref();
    pid = child.pid;
  } finally {
    fs.closeSync(fd);
  }
  if (pid === undefined) return { started: false, exitCode: 1, message: `could not start ${process.execPath}` };
  const daemonPid = pid;
  const store = new FileStateStore(paths.state);
  const holdsLock = () => liveLock(paths.lock)?.pid === daemonPid;
  const ready = () => {
    const state = store.peek();
    return state !== null && state.running && state.daemon_pid === daemonPid && holdsLock();
  };
  await waitFor(() => ended.code !== null || ready(), READY_TIMEOUT_MS, 100);
  if (ended.code !== null) return { started: false, exitCode: ended.code, message: failureReason(paths.daemonLog, offset) };
  if (ready()) return { started: true, pid: daemonPid, logFile: paths.daemonLog, ready: true };
  if (holdsLock()) return { started: true, pid: daemonPid, logFile: paths.daemonLog, ready: false };
  return { started: false, exitCode: 1, message: `the daemon (pid ${daemonPid}) neither took the lock nor exited within ${READY_TIMEOUT_MS / 1000} s; see ${paths.daemonLog}` };
}

/**
 * The log writer of a daemon running in the background: one line with the date and time (it may
 * run for weeks), to stdout — the log file — rotated by size first.
 */
export function backgroundLog(logFile: string, env: NodeJS.ProcessEnv = process.env): (line: string) => void {
  const configured = Number(env.LOOM_DAEMON_LOG_MAX_BYTES);
  const maxBytes = Number.isFinite(configured) && configured > 0 ? configured : DEFAULT_LOG_MAX_BYTES;
  return (line) => {
    rotateLogIfLarge(1, logFile, maxBytes, DAEMON_LOG_KEEP);
    process.stdout.write(`${new Date().toISOString().slice(0, 19).replace('T', ' ')} ${line}\n`);
  };
}

/** What the failed daemon said: its last `loom: ...` line in the log since `offset`, else its last line. */
function failureReason(logFile: string, offset: number): string {
  let text = '';
  try {
    const fd = fs.openSync(logFile, 'r');
    try {
      const size = fs.fstatSync(fd).size;
      const buffer = Buffer.alloc(Math.max(0, size - offset));
      fs.readSync(fd, buffer, 0, buffer.length, offset);
      text = buffer.toString('utf8');
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    // no log: say so below
  }
  const lines = text.split('\n').map((l) => l.trim()).filter(Boolean);
  const said = lines.filter((l) => l.startsWith('loom: ')).at(-1) ?? lines.at(-1);
  return said === undefined ? `it wrote nothing to ${logFile}` : said.replace(/^loom: /, '');
}
