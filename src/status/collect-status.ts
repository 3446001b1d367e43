/**
 * `loom status` reads everything it shows without changing anything: the config (an invalid one
 * is a problem in the report, not a failure), one read-only tracker snapshot (an unreachable
 * tracker is a problem too), the state file and the progress records.
 *
 * The snapshot is bounded (`STATUS_PAGE`): a tracker that can (the local one) reads the first
 * ready issues in build order plus counts, so the report costs the same at any backlog; the
 * dependency and overlap waits are then counted over that page and the report says so.
 */
import { ConfigError, describeConfigError, lastGoodConfig, loadConfig } from '../config/config.js';
import type { LoomPaths } from '../config/paths.js';
import type { LoomConfig } from '../core/config-model.js';
import { defaultConfig } from '../core/config-model.js';
import type { SnapshotOptions, TrackerSnapshot } from '../core/tracker-model.js';
import { createTracker } from '../tracker/create-tracker.js';
import type { TrackerHealth } from '../tracker/tracker.js';
import type { StatusReport } from './status-report.js';
import { buildStatus } from './status-report.js';
import { readDependencies } from '../tracker/dependency-states.js';
import type { DependencyMap } from '../core/dependencies.js';
import { Label } from '../core/labels.js';
import type { OverlapFacts } from '../core/overlap.js';
import { gatherOverlap } from '../steps/overlap-facts.js';
import { defaultBranch } from '../git/git.js';

/** How many ready issues (in build order) `loom status` reads from a tracker that can read a page. */
export const STATUS_PAGE = 50;

/** `cli`: how the report's interventions spell a Loom command (default `loom`). */
export async function collectStatus(paths: LoomPaths, options: { now?: () => Date; cli?: string } = {}): Promise<StatusReport> {
  const problems: string[] = [];
  const config = readConfig(paths, problems);
  const { snapshot, trackerHealth, dependencies, overlap } = await readTracker(paths, config, { page: Math.max(STATUS_PAGE, 4 * config.maxShepherds) });
  return buildStatus({ paths, config, snapshot, trackerHealth, problems, ...(dependencies ? { dependencies } : {}), ...(overlap ? { overlap } : {}), now: (options.now ?? (() => new Date()))(), ...(options.cli === undefined ? {} : { cli: options.cli }) });
}

/** The config to report on: the file, else the daemon's last good one, else the defaults; a problem is added to `problems`. */
export function readConfig(paths: LoomPaths, problems: string[]): LoomConfig {
  try {
    return loadConfig(paths.config);
  } catch (error) {
    const message = error instanceof ConfigError ? describeConfigError(error, process.cwd()) : (error as Error).message;
    const lastGood = lastGoodConfig(paths);
    problems.push(`config: ${message}${lastGood !== null ? ' (a running daemon uses its last good configuration until it is fixed)' : ''}`);
    return lastGood ?? defaultConfig();
  }
}

/**
 * One read-only snapshot (or the error that prevented it), the ready issues' dependencies, and the
 * tracker's health after it. `options.page`: a bounded snapshot if the tracker can read one
 * (`SnapshotOptions`); absent, every labelled issue (the dashboard's board lists them).
 */
export async function readTracker(paths: LoomPaths, config: LoomConfig, options: SnapshotOptions = {}): Promise<{ snapshot: TrackerSnapshot | Error; trackerHealth: TrackerHealth | null; dependencies: DependencyMap | undefined; overlap: OverlapFacts | undefined }> {
  let snapshot: TrackerSnapshot | Error;
  let trackerHealth: TrackerHealth | null = null;
  let dependencies: DependencyMap | undefined;
  let overlap: OverlapFacts | undefined;
  try {
    const tracker = await createTracker(paths, config.tracker, { readonly: true });
    try {
      snapshot = await tracker.snapshot(options);
      dependencies = await readDependencies(tracker, snapshot.issues.filter((i) => i.labels.includes(Label.issue)));
      if (config.overlap === 'wait') overlap = await readOverlap(paths, config, tracker.kind, snapshot);
    } finally {
      // Asked even when the snapshot failed: a paused tracker is why it did.
      trackerHealth = tracker.health();
      tracker.dispose();
    }
  } catch (error) {
    snapshot = error as Error;
  }
  return { snapshot, trackerHealth, dependencies, overlap };
}

/**
 * The overlap facts as `loom status` and `loom why` see them (read-only: the diff cache is not
 * written): the shepherds at work are the issues labelled `loom:building`. Null when git cannot
 * tell (no default branch): overlap is then not shown.
 */
export async function readOverlap(paths: LoomPaths, config: LoomConfig, kind: 'local' | 'github', snapshot: TrackerSnapshot): Promise<OverlapFacts | undefined> {
  try {
    const base = config.defaultBranch ?? (await defaultBranch(paths.root));
    const running = snapshot.issues.filter((i) => i.labels.includes(Label.building)).map((i) => i.number);
    const candidates = snapshot.issues.filter((i) => i.labels.includes(Label.issue) && !i.labels.includes(Label.building));
    return await gatherOverlap({ paths, config, base, remote: kind === 'github', snapshot, candidates, running, saveCache: false });
  } catch {
    return undefined;
  }
}
