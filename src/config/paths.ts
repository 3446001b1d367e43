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
  /** `<runtime>.json` while a runtime is rate- or usage-limited. */
  limits: string;
  /** Per-task agent CLI config/home directories (sessions survive for resume). */
  agentHomes: string;
  /** The configuration the daemon last loaded successfully (used while config.json is invalid). */
  lastGoodConfig: string;
  /** The `bullmq` executor's queue and workers as the daemon last saw them (`loom status`). */
  queueStatus: string;
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
    limits: path.join(dir, 'limits'),
    agentHomes: path.join(dir, 'agent-homes'),
    lastGoodConfig: path.join(dir, 'daemon-state.json.last-good-config'),
    queueStatus: path.join(dir, 'queue-status.json'),
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
  'github-cache.json',
  'limits/',
  'agent-homes/',
  'merge.lock',
  'queue-status.json',
  '*.tmp',
];
