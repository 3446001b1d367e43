/**
 * `loom logs <issue|role|daemon> [-f] [--all]`: the log of the latest shepherd run for an issue (or
 * role run, or the daemon running in the background), found through the event log, optionally
 * followed until that run finishes (its `task.finished` event, and its process gone) or Ctrl+C.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { LoomPaths } from '../config/paths.js';
import { ROLE_NAMES } from '../core/vocabulary.js';
import { isTerminal } from '../core/progress.js';
import { EventLog } from '../process/event-log.js';
import { isProcessAlive } from '../process/process-identity.js';
import { ProgressStore } from '../process/progress-store.js';
import type { RunTarget } from '../process/run-logs.js';
import { latestRun, runLogFiles } from '../process/run-logs.js';
import { delay } from '../process/wait.js';
import { missingIssue, parseIssueNumber, withTracker } from './context.js';
import { UserError } from '../core/errors.js';
import { DAEMON_LOG_KEEP } from '../daemon/detach.js';
import { logParts } from '../fs/log-rotation.js';
import { liveLock } from '../state/daemon-lock.js';

export async function showLogs(paths: LoomPaths, target: string, options: { follow: boolean; all: boolean }, write: (text: string) => void): Promise<void> {
  if (target === 'daemon') return showDaemonLog(paths, options, write);
  const isRole = (ROLE_NAMES as readonly string[]).includes(target);
  if (!isRole && !/^#?\d+$/.test(target)) throw new UserError(`"${target}" is neither an issue number nor a role; use a number like 12, \`daemon\` or one of ${ROLE_NAMES.join(', ')}`);
  const run: RunTarget = isRole ? { role: target } : { issue: parseIssueNumber(target) };
  const events = new EventLog(paths.events);
  const latestRunOf = latestRun(paths.logs, events, run);
  if (latestRunOf === null) {
    if (!isRole) {
      const issue = parseIssueNumber(target);
      const missing = await withTracker(paths, { readonly: true }, async (tracker) => ((await tracker.getIssue(issue)) === null ? missingIssue(tracker, issue, 'logs') : null));
      if (missing !== null) throw missing;
    }
    throw new UserError(`no logs for ${isRole ? `role ${target}` : `#${target.replace(/^#/, '')}`} in ${paths.logs}; they appear once it runs (see \`loom status\`) and are removed after logRetention (30 days by default)`);
  }
  const files = runLogFiles(paths.logs, run).filter((f) => f !== latestRunOf.file);
  const chosen = options.all ? [...files, latestRunOf.file] : [latestRunOf.file];
  for (const f of chosen.slice(0, -1)) write(`==> ${path.basename(f)} <==\n${fs.readFileSync(f, 'utf8')}\n`);
  const latest = latestRunOf.file;
  if (chosen.length > 1) write(`==> ${path.basename(latest)} <==\n`);
  let offset = 0;
  const drain = () => {
    const size = fs.statSync(latest).size;
    if (size <= offset) return false;
    const fd = fs.openSync(latest, 'r');
    try {
      const buffer = Buffer.alloc(size - offset);
      fs.readSync(fd, buffer, 0, buffer.length, offset);
      write(buffer.toString('utf8'));
    } finally {
      fs.closeSync(fd);
    }
    offset = size;
    return true;
  };
  drain();
  if (!options.follow) return;
  const progress = new ProgressStore(paths.progress);
  let cursor = events.end();
  let finished = false;
  const running = () => {
    // The run's end in the event log; until then (or without one) its progress record says.
    const next = events.readSince(cursor);
    cursor = next.cursor;
    if (latestRunOf.task_id !== null && next.events.some((e) => e.type === 'task.finished' && e.task_id === latestRunOf.task_id)) finished = true;
    const record = isRole ? progress.readRole(target) : progress.readShepherd(parseIssueNumber(target));
    const mine = record !== null && record.output_file === latest ? record : null;
    // Until the worker has exited: it may still write its last lines after its terminal status.
    // A run in the shepherd host has ended when its ticket is gone (the host lives on).
    if (mine !== null && isProcessAlive(mine.pid, mine.pid_start) && (mine.host_ticket === undefined || fs.existsSync(mine.host_ticket))) return true;
    return !finished && mine !== null && !isTerminal(mine.status);
  };
  let stop = false;
  const onSignal = () => (stop = true);
  process.once('SIGINT', onSignal);
  try {
    while (!stop) {
      const grew = drain();
      if (!grew && !running()) break;
      await delay(200);
    }
    drain();
  } finally {
    process.off('SIGINT', onSignal);
  }
}

/**
 * The background daemon's log (`.loom/logs/daemon.log`; `--all` adds its rotated parts, oldest
 * first). `-f` follows it — across rotations — while a background daemon writing it runs.
 */
async function showDaemonLog(paths: LoomPaths, options: { follow: boolean; all: boolean }, write: (text: string) => void): Promise<void> {
  const file = paths.daemonLog;
  if (!fs.existsSync(file)) throw new UserError(`no daemon log yet (${file}): \`loom start --detach\` and the service write it; a daemon started with \`loom start\` prints to its terminal`);
  if (options.all) for (const part of logParts(file, DAEMON_LOG_KEEP).slice(0, -1)) write(fs.readFileSync(part, 'utf8'));
  let offset = 0;
  const drain = () => {
    const size = fs.statSync(file).size;
    if (size < offset) offset = 0; // rotated: the file starts again
    if (size === offset) return false;
    const fd = fs.openSync(file, 'r');
    try {
      const buffer = Buffer.alloc(size - offset);
      const read = fs.readSync(fd, buffer, 0, buffer.length, offset);
      write(buffer.subarray(0, read).toString('utf8'));
      offset += read;
    } finally {
      fs.closeSync(fd);
    }
    return true;
  };
  drain();
  if (!options.follow) return;
  const writing = () => liveLock(paths.lock)?.log_file === file;
  let stop = false;
  const onSignal = () => (stop = true);
  process.once('SIGINT', onSignal);
  try {
    while (!stop) {
      if (!drain() && !writing()) break;
      await delay(200);
    }
    drain();
  } finally {
    process.off('SIGINT', onSignal);
  }
}
