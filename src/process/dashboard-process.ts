/**
 * A `loom dashboard` process beside another command (`loom start --dashboard`, `loom demo
 * --dashboard`): launched detached with its output in `.loom/logs/`, so it serves from files and
 * keeps showing the state even if the command that started it dies; ended by `stop()`. A dashboard
 * that already runs for the repository is reused and left running — unless the caller is a daemon
 * (`beside: 'daemon'`) and that dashboard was launched beside an earlier daemon that is gone (it
 * crashed): then this daemon takes it over and its `stop()` ends it.
 */
import fs from 'node:fs';
import type { LoomPaths } from '../config/paths.js';
import { UserError } from '../core/errors.js';
import { liveDashboard, markBesideDaemon } from './dashboard-record.js';
import { launchLoomDetached, logFileFor } from './launcher.js';
import { isProcessAlive } from './process-identity.js';
import { terminateGroup, waitFor } from './wait.js';

/** How long a new dashboard may take to listen, ms. */
const START_TIMEOUT_MS = 30_000;

export interface DashboardProcess {
  url: string;
  pid: number;
  /** True when this call started it (false: one was already running). */
  started: boolean;
  stop(): Promise<void>;
}

export async function startDashboardProcess(paths: LoomPaths, opts: { host: string; port: number; beside?: 'daemon' }): Promise<DashboardProcess> {
  const existing = liveDashboard(paths.dashboard);
  if (existing !== null) {
    const adopt = opts.beside === 'daemon' && existing.beside_daemon === true;
    return { url: existing.url, pid: existing.pid, started: false, stop: adopt ? () => terminateGroup(existing.pid, existing.pid_start, 5_000).then(() => undefined) : () => Promise.resolve() };
  }
  const logFile = logFileFor(paths.logs, 'dashboard', 'server', new Date());
  const launched = launchLoomDetached(['dashboard', '--host', opts.host, '--port', String(opts.port)], { cwd: paths.root, logFile });
  const ready = await waitFor(() => liveDashboard(paths.dashboard)?.pid === launched.pid || !isProcessAlive(launched.pid, launched.pid_start), START_TIMEOUT_MS, 50);
  const record = liveDashboard(paths.dashboard);
  if (!ready || record?.pid !== launched.pid) {
    await terminateGroup(launched.pid, launched.pid_start, 2_000);
    const said = fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8').trim().split('\n').at(-1)?.replace(/^loom: /, '') : undefined;
    throw new UserError(`the dashboard did not start${said ? `: ${said}` : ` within ${START_TIMEOUT_MS / 1000}s (log: ${logFile})`}`);
  }
  if (opts.beside === 'daemon') markBesideDaemon(paths.dashboard, launched.pid);
  return {
    url: record.url,
    pid: launched.pid,
    started: true,
    stop: async () => {
      await terminateGroup(launched.pid, launched.pid_start, 5_000);
    },
  };
}
