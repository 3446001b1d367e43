/**
 * The commands to watch Loom beyond `loom status`: `loom events` (the event log), and `loom status
 * --watch`.
 */
import type { Command } from 'commander';
import type { LoomPaths } from '../config/paths.js';
import { watchStatus } from '../status/watch-status.js';
import { requirePaths } from './context.js';
import { showEvents } from './events-command.js';

/** How often `loom status --watch` redraws, ms. */
const WATCH_INTERVAL_MS = 1_000;

export function registerObservabilityCommands(program: Command): void {
  program
    .command('events')
    .description('the event log: one line per daemon, shepherd and role event; -f follows it')
    .option('-n, --lines <n>', 'the last N events (0: all)', '50')
    .option('--issue <n>', "only this issue's events")
    .option('-f, --follow', 'keep printing new events until Ctrl+C')
    .option('--idle', 'also the iterations that did nothing')
    .option('--json', "print each event's JSON line")
    .action(async (options: { lines: string; issue?: string; follow?: boolean; json?: boolean; idle?: boolean }) => {
      await showEvents(requirePaths(), { lines: options.lines, ...(options.issue !== undefined ? { issue: options.issue } : {}), follow: options.follow === true, json: options.json === true, idle: options.idle === true }, (text) => process.stdout.write(text));
    });
}

/** `loom status --watch`: redraws until Ctrl+C (or SIGTERM), then returns. */
export async function watchStatusCommand(paths: LoomPaths, json: boolean): Promise<void> {
  const controller = new AbortController();
  const stop = () => controller.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    await watchStatus(paths, { write: (text) => process.stdout.write(text), tty: process.stdout.isTTY, json, intervalMs: WATCH_INTERVAL_MS, signal: controller.signal });
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
}
