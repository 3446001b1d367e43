/**
 * `loom events [-n N] [--issue N] [--idle] [-f] [--json]`: the event log, one line per event (or
 * its JSON line), optionally only one issue's, optionally followed until Ctrl+C. Iterations that
 * did nothing are left out unless `--idle`.
 */
import type { LoomPaths } from '../config/paths.js';
import type { LoomEvent } from '../core/events.js';
import { describeEvent, isIdleIteration } from '../core/events.js';
import { UserError } from '../core/errors.js';
import { EventLog } from '../process/event-log.js';
import { delay } from '../process/wait.js';
import { parseIssueNumber } from './context.js';

export interface EventsOptions {
  /** The last this many events (0: all). */
  lines: string;
  issue?: string;
  follow: boolean;
  json: boolean;
  /** Also the iterations that did nothing. */
  idle: boolean;
}

/** How often `-f` looks for new events, ms. */
const FOLLOW_INTERVAL_MS = 200;

export async function showEvents(paths: LoomPaths, options: EventsOptions, write: (text: string) => void): Promise<void> {
  if (!/^\d+$/.test(options.lines)) throw new UserError(`-n takes a number of events (0 for all), got "${options.lines}"`);
  const count = Number(options.lines);
  const issue = options.issue === undefined ? null : parseIssueNumber(options.issue);
  const log = new EventLog(paths.events);
  const wanted = (e: LoomEvent) => (issue === null || e.issue === issue) && (options.idle || !isIdleIteration(e));
  const print = (events: LoomEvent[]) => {
    if (events.length > 0) write(events.map((e) => (options.json ? JSON.stringify(e) : `${e.at.slice(0, 19).replace('T', ' ')}  ${describeEvent(e)}`)).join('\n') + '\n');
  };
  const all = log.readAll();
  let cursor = all.cursor;
  const past = all.events.filter(wanted);
  print(count === 0 ? past : past.slice(-count));
  if (!options.follow) return;
  let stop = false;
  const onSignal = () => (stop = true);
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    while (!stop) {
      await delay(FOLLOW_INTERVAL_MS);
      const next = log.readSince(cursor);
      cursor = next.cursor;
      print(next.events.filter(wanted));
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
