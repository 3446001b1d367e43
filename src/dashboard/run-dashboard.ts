/**
 * The `loom dashboard` process: one per repository (a second is refused, naming the first), serving
 * until Ctrl+C or SIGTERM, its address in `.loom/dashboard.json` while it runs.
 */
import type { LoomPaths } from '../config/paths.js';
import { UserError } from '../core/errors.js';
import { liveDashboard } from '../process/dashboard-record.js';
import { untilInterrupted } from '../process/wait.js';
import type { BoardView } from './live.js';
import type { DashboardSources } from './server.js';
import { isWildcard, startDashboard } from './server.js';

export async function runDashboard<B extends BoardView>(opts: { paths: LoomPaths; host: string; port: number; token: string | null; sources: DashboardSources<B>; log: (line: string) => void }): Promise<number> {
  const running = liveDashboard(opts.paths.dashboard);
  if (running !== null) throw new UserError(`a dashboard already runs for this repository at ${running.url} (pid ${running.pid}); open that one, or stop it first`);
  const dashboard = await startDashboard(opts);
  const notes = [
    ...(isWildcard(opts.host) ? [`listening on every address (${opts.host}): from another machine, open this machine's name or address on port ${dashboard.port}`] : []),
    ...(opts.token !== null ? ['token required: open it once with ?token=<LOOM_DASHBOARD_TOKEN>, or send Authorization: Bearer <token>'] : []),
  ];
  opts.log(`Dashboard: ${dashboard.url}${notes.length > 0 ? ` (${notes.join('; ')})` : ''}`);
  opts.log('Serving until Ctrl+C.');
  await untilInterrupted();
  await dashboard.close();
  return 0;
}
