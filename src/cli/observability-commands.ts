/**
 * The commands to watch Loom beyond `loom status`: `loom events` (the event log) and `loom
 * dashboard` (the live board, the HTTP API and `/metrics`), and what `loom start --dashboard`
 * and `loom demo --dashboard` need to start one beside them.
 */
import type { Command } from 'commander';
import type { LoomPaths } from '../config/paths.js';
import { UserError } from '../core/errors.js';
import type { DashboardSources } from '../dashboard/server.js';
import type { Board } from '../status/board.js';
import { requirePaths } from './context.js';
import { endQuietlyWhenStdoutCloses } from './stdout-closed.js';

/** How often `loom status --watch` redraws, ms. */
const WATCH_INTERVAL_MS = 1_000;

/** The address the dashboard binds unless told otherwise. */
export const DEFAULT_DASHBOARD_HOST = '127.0.0.1';

/** `cli`: how printed hints spell a Loom command. The modules each command runs are loaded when it runs. */
export function registerObservabilityCommands(program: Command, out: (line: string) => void, cli: () => Promise<string>): void {
  program
    .command('events')
    .description('the event log: one line per daemon, shepherd and role event; -f follows it')
    .option('-n, --lines <n>', 'the last N events (0: all)', '50')
    .option('--issue <n>', "only this issue's events")
    .option('-f, --follow', 'keep printing new events until Ctrl+C')
    .option('--idle', 'also the iterations that did nothing')
    .option('--json', "print each event's JSON line")
    .action(async (options: { lines: string; issue?: string; follow?: boolean; json?: boolean; idle?: boolean }) => {
      if (options.follow === true) endQuietlyWhenStdoutCloses();
      const { showEvents } = await import('./events-command.js');
      await showEvents(requirePaths(), { lines: options.lines, ...(options.issue !== undefined ? { issue: options.issue } : {}), follow: options.follow === true, json: options.json === true, idle: options.idle === true }, (text) => process.stdout.write(text));
    });

  program
    .command('dashboard')
    .description('serve the live board, the HTTP API and /metrics until Ctrl+C (127.0.0.1 unless --host; any other address needs LOOM_DASHBOARD_TOKEN)')
    .option('--host <host>', 'address to bind (default 127.0.0.1, or LOOM_DASHBOARD_HOST)')
    .option('--port <port>', 'port to listen on (0: any free port)', '0')
    .action(async (options: { host?: string; port: string }) => {
      const paths = requirePaths();
      const { runDashboard } = await import('../dashboard/run-dashboard.js');
      process.exitCode = await runDashboard({ paths, host: dashboardHost(options.host), port: parsePort(options.port), token: dashboardToken(), sources: await dashboardSources(paths, await cli()), log: out });
    });
}

/** `--dashboard`'s value (true when given without a port) as a port number. */
export function parsePort(value: string | boolean): number {
  if (value === true) return 0;
  const text = String(value);
  if (!/^\d+$/.test(text) || Number(text) > 65535) throw new UserError(`"${text}" is not a port; give a number from 1 to 65535, or 0 for any free port`);
  return Number(text);
}

export function dashboardHost(flag: string | undefined): string {
  const host = flag ?? process.env.LOOM_DASHBOARD_HOST ?? DEFAULT_DASHBOARD_HOST;
  if (host.trim() === '' || /\s/.test(host)) throw new UserError(`"${host}" is not an address to bind; use e.g. 127.0.0.1, 0.0.0.0 or ::1`);
  return host;
}

function dashboardToken(): string | null {
  const token = process.env.LOOM_DASHBOARD_TOKEN;
  return token === undefined || token === '' ? null : token;
}

/** The read models of `status/` behind the dashboard's port. */
async function dashboardSources(paths: LoomPaths, cli: string): Promise<DashboardSources<Board>> {
  const [{ BoardCollector }, { collectStatus }, { collectIssueReport }] = await Promise.all([import('../status/board.js'), import('../status/collect-status.js'), import('../status/issue-report.js')]);
  const collector = new BoardCollector(paths, cli);
  return {
    board: () => collector.board(),
    status: () => collectStatus(paths, { cli }),
    issue: (n, events) => collectIssueReport(paths, n, events),
    missing: async (n) => {
      const { missingIssue, withTracker } = await import('./context.js');
      return (await withTracker(paths, { readonly: true }, (tracker) => missingIssue(tracker, n))).message;
    },
  };
}

/** `loom status --watch`: redraws until Ctrl+C (or SIGTERM), then returns. */
export async function watchStatusCommand(paths: LoomPaths, json: boolean, cli: string): Promise<void> {
  endQuietlyWhenStdoutCloses();
  const { watchStatus } = await import('../status/watch-status.js');
  const controller = new AbortController();
  const stop = () => controller.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    const terminal = {
      size: () => ({ columns: process.stdout.columns, rows: process.stdout.rows }),
      onResize: (listener: () => void) => {
        process.stdout.on('resize', listener);
        return () => void process.stdout.off('resize', listener);
      },
    };
    await watchStatus(paths, { write: (text) => process.stdout.write(text), tty: process.stdout.isTTY, json, intervalMs: WATCH_INTERVAL_MS, signal: controller.signal, cli, terminal });
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
}

/** `loom start --dashboard[=P]`: a dashboard process beside the daemon, stopped with it. */
export async function dashboardBeside(paths: LoomPaths, port: number, log: (line: string) => void): Promise<() => Promise<void>> {
  const { startDashboardProcess } = await import('../process/dashboard-process.js');
  const dashboard = await startDashboardProcess(paths, { host: dashboardHost(undefined), port, beside: 'daemon' });
  log(`Dashboard: ${dashboard.url}${dashboard.started ? '' : ` (already running, pid ${dashboard.pid})`}`);
  return () => dashboard.stop();
}
