/**
 * The resolved configuration (`LoomConfig`) and its defaults (PRODUCT.md §9). Plain data in
 * milliseconds: the config loader (src/config/) builds it once from config.json, `LOOM_*` env
 * and role files; everything downstream only reads it.
 */
import type { Budgets, Price } from './usage.js';
import type { RoleName, RuntimeChoice } from './vocabulary.js';
import { ROLE_NAMES } from './vocabulary.js';

/** The filesystem sandbox around an agent run (docs/security.md): bubblewrap, or none. */
export type SandboxType = 'bwrap' | 'none';
export const SANDBOX_TYPES: readonly SandboxType[] = ['bwrap', 'none'];

export interface SandboxConfig {
  /** `bwrap`: the agent sees only its worktree, its task home and the system read-only; `none`: everything the user can reach. */
  type: SandboxType;
  /** Whether the agent keeps the host's network (its model API needs it); false: loopback only. */
  network: boolean;
  /** More paths hidden from the agent: absolute, `~/…` (the user's home) or relative to the working directory. */
  hide: string[];
}

export interface RoleConfig {
  /** Whether the role runs at all (a runtime is configured for it and it is not switched off). */
  enabled: boolean;
  /** The runtime (`roles.<r>.runtime`, else the top-level `runtime`, else `command` when a command is set). */
  runtime: RuntimeChoice | undefined;
  /** Model name passed to runtimes that take one. */
  model: string | undefined;
  /** Extra CLI arguments (split on whitespace). */
  args: string[];
  /** Runtime to fail over to while this role's runtime is rate- or usage-limited. */
  fallback: RuntimeChoice | undefined;
  /** Shell command that performs the role (run with `sh -c` in the repository). */
  command: string | undefined;
  /** Support roles: time between runs, ms. Generators: cooldown between triggers, ms. */
  interval: number;
  /** Longest a single run may take before it is killed, ms. */
  timeout: number;
  /** The prompt template (from the role file: `.loom/roles/<role>.md` over the built-in one). */
  template: string;
  /** The role file the template came from; null when none was read. */
  roleFile: string | null;
  /** The sandbox of this role's runs: the top-level `sandbox` with `roles.<role>.sandbox` over it. */
  sandbox: SandboxConfig;
}

/** Where issues live: the embedded SQLite tracker, or a GitHub repository. */
export type TrackerConfig = { type: 'local' } | { type: 'github'; owner: string; repo: string; baseUrl: string | undefined; trustedUsers: string[] };

/** Who is told when an issue is blocked, a budget is reached, a runtime limited, the daemon crashed. */
export interface NotifyConfig {
  /** Shell command run in the repository with the event as JSON on stdin. */
  command: string | undefined;
  /** URL that receives a POST of JSON `{ "text": ..., "event": {...} }`. */
  webhook: string | undefined;
  /** The kinds that notify (`blocked`, `budget`, `limited`, `crashed`, `guard`); default all. */
  on: string[];
}

/** The workspace hooks: each a shell command, run with `sh -c` in the worktree. */
export interface WorkspaceHooks {
  afterCreate?: string;
  beforeRun?: string;
  afterRun?: string;
  beforeRemove?: string;
  /** Longest run of one hook, ms. */
  timeout: number;
}

/** `wait`: an issue overlapping work in progress waits (src/core/overlap.ts); `allow`: files are not compared. */
export const OVERLAP_MODES = ['wait', 'allow'] as const;
export type OverlapMode = (typeof OVERLAP_MODES)[number];

export const HOOK_NAMES = ['afterCreate', 'beforeRun', 'afterRun', 'beforeRemove'] as const;
export type HookName = (typeof HOOK_NAMES)[number];

export interface LoomConfig {
  tracker: TrackerConfig;
  notify: NotifyConfig;
  /** Runtime for every role that does not name its own. */
  runtime: RuntimeChoice | undefined;
  /** The Judge's test gate: must pass in the worktree (unset: no test gate). */
  testCommand: string | undefined;
  /** Branch issues are built from and merged into (unset: detected). */
  defaultBranch: string | undefined;
  /** The Champion does not merge a PR changing more lines than this. */
  maxMergeLines: number;
  /** Cost and token caps; a run that would exceed one is not started. */
  budget: Budgets;
  /** USD per million tokens, by model or runtime name, for CLIs that report tokens only. */
  pricing: Record<string, Price>;
  maxShepherds: number;
  /** Shell commands run in an issue's worktree around its life (docs/config.md, "Workspace hooks"). */
  hooks: WorkspaceHooks;
  /** No new worktree (shepherd) starts while the repository's filesystem has less free space, bytes. */
  minFreeDisk: number;
  /** Run logs under `.loom/logs/` older than this are removed (0: kept for ever), ms. */
  logRetention: number;
  /** `wait`: an issue whose files overlap a running shepherd's or an open Loom PR's waits (docs/config.md). */
  overlap: OverlapMode;
  /** Sleep between iterations, ms. */
  pollInterval: number;
  /** Ready issues below which Architect/Hermit are triggered. */
  issueThreshold: number;
  /** Open proposals at or above which no more are generated. */
  maxProposals: number;
  maxDoctorRounds: number;
  /** A shepherd whose heartbeat (or agent output) is older than this is stuck, ms. */
  stallTimeout: number;
  /** How long shutdown waits for active shepherds before stopping them, ms. */
  shutdownGrace: number;
  /** Failed spawns of one issue before it is labelled `loom:blocked`. */
  spawnFailureLimit: number;
  /** Longest wait before a failed issue is tried again (the backoff doubles up to this), ms. */
  maxRetryBackoff: number;
  /** An iteration running longer than this is killed by the parent, ms. */
  iterationTimeout: number;
  /** How often shepherds and roles renew their heartbeat, ms. */
  heartbeatInterval: number;
  /** How a branch is brought up to date with a moved base before merging: `rebase` (default) or `merge`. */
  updateStrategy: 'rebase' | 'merge';
  /** GitHub: merge only once someone with write access approved the PR in a review (default false). */
  requireApproval: boolean;
  /** GitHub: how often a merge waiting on CI checks reads them again (conditional requests), ms. */
  checksPollInterval: number;
  /** GitHub: how long a merge waits for pending CI checks before giving up, ms. */
  checksTimeout: number;
  /** Times a shepherd re-runs an agent that stalled or timed out before giving up. */
  agentRetries: number;
  /** Times in a row an agent CLI may retry a failed model request on its own before the run fails as transient. */
  cliRetries: number;
  /** The sandbox of every role that does not set its own (`roles.<role>.sandbox`). */
  sandbox: SandboxConfig;
  /** Where shepherds run: detached processes here (`local`), or workers fed by a Redis queue (docs/distributed.md). */
  executor: ExecutorConfig;
  roles: Record<RoleName, RoleConfig>;
  /**
   * Things the loader accepted but a user should hear about once (an original Loom role file's
   * placeholder with no value here, files in `.loom/roles/` that are not roles).
   */
  notes: string[];
}

/**
 * `local`: shepherds run on this machine — each in its own detached process (`shepherds:
 * "process"`), or all of a repository's in one long-lived `loom shepherd-host` (`"host"`,
 * docs/shepherd.md); `bullmq`: jobs on a Redis queue taken by `loom worker`s.
 */
export type ExecutorConfig = { kind: 'local'; shepherds: 'process' | 'host' } | { kind: 'bullmq'; redis: string };

/**
 * Whether `url` is a Redis URL Loom can connect to: `redis://` or `rediss://`, a host, a port (if
 * any) from 1 to 65535, and a database number (if any). A port that is not a number would
 * otherwise be dropped (6379 used instead), and a database that is not one fails on connect.
 */
export function isRedisUrl(url: string): boolean {
  if (/\s/.test(url)) return false;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return false;
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') return false;
  if (parsed.hostname === '' || parsed.port === '0') return false;
  return /^(\/\d*)?$/.test(parsed.pathname);
}

const MIN = 60_000;
const DEFAULT_ROLE_INTERVAL: Record<RoleName, number> = {
  builder: 0,
  judge: 5 * MIN,
  doctor: 5 * MIN,
  curator: 30 * MIN,
  architect: 30 * MIN,
  hermit: 30 * MIN,
  guide: 15 * MIN,
  champion: 10 * MIN,
};

/** No sandbox unless configured: `loom init` writes `"sandbox": "bwrap"` where bubblewrap works. */
export function defaultSandbox(): SandboxConfig {
  return { type: 'none', network: true, hide: [] };
}

export function defaultConfig(): LoomConfig {
  const roles = Object.fromEntries(
    ROLE_NAMES.map((name): [RoleName, RoleConfig] => [name, { enabled: name === 'champion', runtime: undefined, model: undefined, args: [], fallback: undefined, command: undefined, interval: DEFAULT_ROLE_INTERVAL[name], timeout: 60 * MIN, template: '', roleFile: null, sandbox: defaultSandbox() }]),
  ) as Record<RoleName, RoleConfig>;
  return {
    tracker: { type: 'local' },
    notify: { command: undefined, webhook: undefined, on: ['blocked', 'budget', 'limited', 'crashed', 'guard'] },
    runtime: undefined,
    testCommand: undefined,
    defaultBranch: undefined,
    maxMergeLines: 5000,
    budget: { perIssueUsd: undefined, perDayUsd: undefined, perIssueTokens: undefined, perDayTokens: undefined },
    pricing: {},
    maxShepherds: 3,
    hooks: { timeout: 60_000 },
    minFreeDisk: 2e9,
    logRetention: 30 * 24 * 60 * MIN,
    overlap: 'wait',
    pollInterval: 30_000,
    issueThreshold: 3,
    maxProposals: 5,
    maxDoctorRounds: 3,
    stallTimeout: 10 * MIN,
    shutdownGrace: 5 * MIN,
    spawnFailureLimit: 3,
    maxRetryBackoff: 30 * MIN,
    iterationTimeout: 5 * MIN,
    heartbeatInterval: 5_000,
    updateStrategy: 'rebase',
    requireApproval: false,
    checksPollInterval: 15_000,
    checksTimeout: 60 * MIN,
    agentRetries: 2,
    cliRetries: 2,
    sandbox: defaultSandbox(),
    executor: { kind: 'local', shepherds: 'host' },
    roles,
    notes: [],
  };
}
