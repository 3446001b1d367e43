/**
 * `loom status` reads everything it shows without changing anything: the config (an invalid one
 * is a problem in the report, not a failure), one read-only tracker snapshot (an unreachable
 * tracker is a problem too), the state file and the progress records.
 */
import path from 'node:path';
import { ConfigError, loadConfig } from '../config/config.js';
import type { LoomPaths } from '../config/paths.js';
import type { LoomConfig } from '../core/config-model.js';
import { defaultConfig } from '../core/config-model.js';
import type { TrackerSnapshot } from '../core/tracker-model.js';
import { createTracker } from '../tracker/create-tracker.js';
import type { StatusReport } from './status-report.js';
import { buildStatus } from './status-report.js';

/** `cli`: how the report's interventions spell a Loom command (default `loom`). */
export async function collectStatus(paths: LoomPaths, options: { now?: () => Date; cli?: string } = {}): Promise<StatusReport> {
  const problems: string[] = [];
  let config: LoomConfig;
  try {
    config = loadConfig(paths.config);
  } catch (error) {
    const message = error instanceof ConfigError ? `${path.relative(process.cwd(), error.file) || error.file}: ${error.problems.join('; ')}` : (error as Error).message;
    problems.push(`config: ${message}`);
    config = defaultConfig();
  }
  let snapshot: TrackerSnapshot | Error;
  try {
    const tracker = createTracker(paths, config.tracker, { readonly: true });
    try {
      snapshot = await tracker.snapshot();
    } finally {
      tracker.dispose();
    }
  } catch (error) {
    snapshot = error as Error;
  }
  return buildStatus({ paths, config, snapshot, problems, now: (options.now ?? (() => new Date()))(), ...(options.cli === undefined ? {} : { cli: options.cli }) });
}
