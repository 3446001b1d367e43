/**
 * Where everything lives under `.loom/` (PRODUCT.md §7). One place, so no module builds a path
 * of its own.
 */
import path from 'node:path';

export interface LoomPaths {
  /** The repository's top-level directory. */
  root: string;
  dir: string;
  config: string;
  state: string;
  lock: string;
  stopSignal: string;
  /** Touched on every local tracker write and when a background process finishes. */
  wake: string;
  progress: string;
  logs: string;
  /** The log of a daemon running in the background (`loom start --detach`, the service). */
  daemonLog: string;
  checkpoints: string;
  worktrees: string;
  roles: string;
  trackerDb: string;
  /** Usage ledger: one JSON line per agent run. */
  usage: string;
  /** The usage ledger summed by issue and day (usage/usage-index.ts). */
  usageIndex: string;
  /** `<runtime>.json` while a runtime is rate- or usage-limited. */
  limits: string;
  /** Per-task agent CLI config/home directories (sessions survive for resume). */
  agentHomes: string;
  /** The configuration the daemon last loaded successfully (used while config.json is invalid). */
  lastGoodConfig: string;
  /** The event log: one JSON line per daemon, shepherd and role event (rotated by size). */
  events: string;
  /** The running dashboard's address and process (`loom dashboard`). */
  dashboard: string;
  /** The files each branch changed, by base and head commit (overlap avoidance). */
  diffCache: string;
  /** One ticket per merger waiting for (or holding) `merge.lock`. */
  mergeQueue: string;
  /** The post-merge guard: the merge being verified, a pause of merging, merges reverted. */
  baseGuard: string;
  /** The `bullmq` executor's queue and workers as the daemon last saw them (`loom status`). */
  queueStatus: string;
  /** The shepherd host (`executor.shepherds: "host"`): its lock and its tickets, one per lifecycle handed to it. */
  host: string;
  /** The shepherd host's own log (its runs log to their own files), rotated by size like `daemon.log`. */
  hostLog: string;
}

export function loomPaths(root: string): LoomPaths {
  const dir = path.join(root, '.loom');
  return {
    root,
    dir,
    config: path.join(dir, 'config.json'),
    state: path.join(dir, 'daemon-state.json'),
    lock: path.join(dir, 'daemon.lock'),
    stopSignal: path.join(dir, 'stop-daemon'),
    wake: path.join(dir, 'wake'),
    progress: path.join(dir, 'progress'),
    logs: path.join(dir, 'logs'),
    daemonLog: path.join(dir, 'logs', 'daemon.log'),
    checkpoints: path.join(dir, 'checkpoints'),
    worktrees: path.join(dir, 'worktrees'),
    roles: path.join(dir, 'roles'),
    trackerDb: path.join(dir, 'tracker.db'),
    usage: path.join(dir, 'usage.jsonl'),
    usageIndex: path.join(dir, 'usage-index.db'),
    limits: path.join(dir, 'limits'),
    agentHomes: path.join(dir, 'agent-homes'),
    lastGoodConfig: path.join(dir, 'daemon-state.json.last-good-config'),
    events: path.join(dir, 'events.jsonl'),
    dashboard: path.join(dir, 'dashboard.json'),
    diffCache: path.join(dir, 'diff-cache.json'),
    mergeQueue: path.join(dir, 'merge-queue'),
    baseGuard: path.join(dir, 'base-guard.json'),
    queueStatus: path.join(dir, 'queue-status.json'),
    host: path.join(dir, 'host'),
    hostLog: path.join(dir, 'logs', 'shepherd-host.log'),
  };
}

/** Runtime files `loom init` keeps out of git: everything but config and role overrides. */
export const GITIGNORE_LINES = [
  'daemon-state.json',
  'daemon-state.json.*',
  'daemon.lock',
  'stop-daemon',
  'wake',
  'progress/',
  'logs/',
  'checkpoints/',
  'worktrees/',
  'tracker.db',
  'tracker.db-*',
  'usage.jsonl',
  'usage-index.db*',
  'github-cache.json',
  'diff-cache.json',
  'github-listing.json',
  'limits/',
  'agent-homes/',
  'merge.lock',
  'events.jsonl',
  'events.jsonl.*',
  'dashboard.json',
  'merge-queue/',
  'base-guard.json',
  'queue-status.json',
  'host/',
  '*.tmp',
];
