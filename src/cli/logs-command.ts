/**
 * `loom logs <issue|role> [-f] [--all]`: the log of the latest shepherd run for an issue (or role
 * run), found through the event log, optionally followed until that run finishes (its
 * `task.finished` event, and its process gone) or Ctrl+C.
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
import { parseIssueNumber } from './context.js';
import { UserError } from '../core/errors.js';

export async function showLogs(paths: LoomPaths, target: string, options: { follow: boolean; all: boolean }, write: (text: string) => void): Promise<void> {
  const isRole = (ROLE_NAMES as readonly string[]).includes(target);
  if (!isRole && !/^#?\d+$/.test(target)) throw new UserError(`"${target}" is neither an issue number nor a role; use a number like 12 or one of ${ROLE_NAMES.join(', ')}`);
  const run: RunTarget = isRole ? { role: target } : { issue: parseIssueNumber(target) };
  const events = new EventLog(paths.events);
  const latestRunOf = latestRun(paths.logs, events, run);
  const files = runLogFiles(paths.logs, run).filter((f) => f !== latestRunOf?.file);
  if (latestRunOf === null) throw new UserError(`no logs for ${isRole ? `role ${target}` : `#${target.replace(/^#/, '')}`} yet in ${paths.logs}; they appear once it runs (see \`loom status\`)`);
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
    if (mine !== null && isProcessAlive(mine.pid, mine.pid_start)) return true;
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
