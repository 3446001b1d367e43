/**
 * Configuration: `.loom/config.json`, overridden by `LOOM_*` environment variables, on top of the
 * defaults of PRODUCT.md §9. Loading reports every problem at once (`path: message`), never the
 * first one only. The resolved `LoomConfig` is plain data in milliseconds, so the pure core can
 * use it without parsing anything.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { RoleDefinition } from './role-file.js';
import { defaultRolesDir, loadRole, RoleFileError } from './role-file.js';
import type { ExecutorConfig, LoomConfig, RoleConfig, SandboxConfig, SandboxType } from '../core/config-model.js';
import type { HookName } from '../core/config-model.js';
import { defaultConfig, defaultSandbox, HOOK_NAMES, isRedisUrl, SANDBOX_TYPES } from '../core/config-model.js';
import type { RoleName, RuntimeChoice } from '../core/vocabulary.js';
import { ROLE_NAMES, RUNTIME_NAMES } from '../core/vocabulary.js';
import { LoomError } from '../core/errors.js';
import { editDistance } from '../core/edit-distance.js';
import { readJsonFile, writeFileAtomic } from '../fs/atomic-file.js';
import type { LoomPaths } from './paths.js';
import { parseDuration } from '../core/duration.js';
import { NOTIFY_KINDS } from '../core/events.js';
import { parseSize } from '../core/size.js';
import { originalKeysOf } from './original-config.js';
import type { OverlapMode } from '../core/config-model.js';
import { OVERLAP_MODES } from '../core/config-model.js';

type Kind = 'count' | 'positive' | 'duration' | 'positiveDuration' | 'size';
/** Top-level scalar keys, their kind, and (implicitly) their env var `LOOM_<SCREAMING_SNAKE>`. */
const SCALARS: Record<string, Kind> = {
  maxShepherds: 'positive',
  pollInterval: 'positiveDuration',
  issueThreshold: 'count',
  maxProposals: 'count',
  maxDoctorRounds: 'count',
  stallTimeout: 'positiveDuration',
  shutdownGrace: 'duration',
  spawnFailureLimit: 'positive',
  maxRetryBackoff: 'positiveDuration',
  iterationTimeout: 'positiveDuration',
  heartbeatInterval: 'positiveDuration',
  checksPollInterval: 'positiveDuration',
  checksTimeout: 'positiveDuration',
  maxMergeLines: 'positive',
  agentRetries: 'count',
  cliRetries: 'count',
  minFreeDisk: 'size',
  logRetention: 'duration',
};
/** Top-level string keys. */
const STRINGS = ['testCommand', 'defaultBranch'] as const;
/** Environment-only knobs (no config.json key), each with its least valid value. */
const ENV_KNOBS: [string, number][] = [
  ['LOOM_DAEMON_LOG_MAX_BYTES', 1],
  ['LOOM_EVENTS_MAX_BYTES', 1],
  ['LOOM_HOST_IDLE_MS', 0],
  ['LOOM_WORKER_LOCK_MS', 1],
  ['LOOM_MIN_ITERATION_GAP_MS', 0],
];
const ROLE_KEYS = new Set(['enabled', 'runtime', 'model', 'args', 'fallback', 'command', 'interval', 'cooldown', 'timeout', 'sandbox']);
const SANDBOX_KEYS = ['type', 'network', 'hide'] as const;
const BUDGET_KEYS = ['perIssueUsd', 'perDayUsd', 'perIssueTokens', 'perDayTokens'] as const;

export function envName(key: string): string {
  return `LOOM_${key.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`;
}

/** Thrown when the config file or env is invalid; `problems` lists every one as `path: message`. */
export class ConfigError extends LoomError {
  constructor(
    readonly file: string,
    readonly problems: string[],
  ) {
    super('config_invalid', `invalid configuration (${file}): ${problems.join('; ')}`, { userFixable: true });
  }
}

function check(kind: Kind, value: unknown): { value: number } | { error: string } {
  if (kind === 'count' || kind === 'positive') {
    const n = typeof value === 'string' && /^\d+$/.test(value.trim()) ? Number(value) : value;
    const min = kind === 'count' ? 0 : 1;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < min) return { error: `must be a whole number ≥ ${min}, got ${JSON.stringify(value)}` };
    return { value: n };
  }
  if (kind === 'size') {
    const bytes = parseSize(typeof value === 'string' && /^\d+$/.test(value.trim()) ? Number(value) : value);
    return bytes === undefined ? { error: `must be bytes or a size like "500MB", "2GB", got ${JSON.stringify(value)}` } : { value: bytes };
  }
  const ms = parseDuration(value);
  if (ms === undefined) return { error: `must be seconds or a duration like "30s", "10m", "1h", got ${JSON.stringify(value)}` };
  if (kind === 'positiveDuration' && ms <= 0) return { error: 'must be greater than zero' };
  return { value: ms };
}

/** `hooks`: `afterCreate`, `beforeRun`, `afterRun`, `beforeRemove` (shell commands) and `timeout`. */
function resolveHooks(value: unknown, config: LoomConfig, problems: string[]): void {
  if (!isRecord(value)) {
    problems.push(`hooks: must be an object with ${HOOK_NAMES.join(', ')} and timeout`);
    return;
  }
  for (const [k, v] of Object.entries(value)) {
    if (k === 'timeout') {
      const r = check('positiveDuration', v);
      if ('error' in r) problems.push(`hooks.timeout: ${r.error}`);
      else config.hooks.timeout = r.value;
    } else if (!(HOOK_NAMES as readonly string[]).includes(k)) problems.push(`hooks.${k}: unknown key (known: ${HOOK_NAMES.join(', ')}, timeout)`);
    else if (typeof v !== 'string' || v.trim() === '') problems.push(`hooks.${k}: must be a non-empty shell command`);
    else config.hooks[k as HookName] = v;
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const SANDBOX_SHAPE = '"bwrap", "none" or { "type": "bwrap" | "none", "network": true | false, "hide": [paths] }';

/**
 * A `sandbox` value, at the top level or a role's: `"bwrap"`, `"none"`, or an object with any of
 * `type`, `network`, `hide`. Only the keys given are returned; each problem is added under `at`.
 */
function parseSandbox(value: unknown, at: string, problems: string[]): Partial<SandboxConfig> {
  if (typeof value === 'string') {
    if ((SANDBOX_TYPES as readonly string[]).includes(value)) return { type: value as SandboxType };
    problems.push(`${at}: must be ${SANDBOX_SHAPE}, got ${JSON.stringify(value)}`);
    return {};
  }
  if (!isRecord(value)) {
    problems.push(`${at}: must be ${SANDBOX_SHAPE}`);
    return {};
  }
  const sandbox: Partial<SandboxConfig> = {};
  for (const [k, v] of Object.entries(value)) {
    if (k === 'type') {
      if (typeof v === 'string' && (SANDBOX_TYPES as readonly string[]).includes(v)) sandbox.type = v as SandboxType;
      else problems.push(`${at}.type: must be ${SANDBOX_TYPES.map((t) => `"${t}"`).join(' or ')}, got ${JSON.stringify(v)}`);
    } else if (k === 'network') {
      if (typeof v === 'boolean') sandbox.network = v;
      else problems.push(`${at}.network: must be true or false`);
    } else if (k === 'hide') {
      if (!Array.isArray(v) || !v.every((p) => typeof p === 'string' && p.trim() !== '')) {
        problems.push(`${at}.hide: must be a list of paths (absolute, "~/…" or relative to the worktree)`);
        continue;
      }
      const paths = v as string[];
      for (const p of paths) {
        if (/^~[^/]/.test(p)) problems.push(`${at}.hide: "${p}": only "~/…" (your own home) is understood, not another user's home`);
        else if (!path.isAbsolute(p) && !p.startsWith('~') && p.split(/[\\/]/).includes('..')) problems.push(`${at}.hide: "${p}": a relative path must stay inside the worktree (no "..")`);
      }
      sandbox.hide = paths;
    } else problems.push(`${at}.${k}: unknown key (known: ${SANDBOX_KEYS.join(', ')})`);
  }
  return sandbox;
}

/** Settings a role file's front matter can give (below config.json and env in precedence), with its prompt. */
export type RoleFileSettings = Partial<Omit<RoleDefinition, 'name'>>;

/**
 * Validates a parsed config document plus env overrides and role files. Pure: returns the config
 * or every problem found.
 */
export function resolveConfig(
  raw: unknown,
  env: Record<string, string | undefined>,
  roleFiles: Partial<Record<RoleName, RoleFileSettings>> = {},
): { ok: true; value: LoomConfig } | { ok: false; problems: string[] } {
  const config = defaultConfig();
  const problems: string[] = [];
  // Role files first: config.json and env override them.
  for (const name of ROLE_NAMES) {
    const file = roleFiles[name];
    if (file === undefined) continue;
    const role = config.roles[name];
    if (file.runtime !== undefined && (RUNTIME_NAMES as readonly string[]).includes(file.runtime)) role.runtime = file.runtime as RuntimeChoice;
    if (file.command !== undefined) role.command = file.command;
    if (file.model !== undefined) role.model = file.model;
    if (file.args !== undefined) role.args = file.args.split(/\s+/).filter(Boolean);
    if (file.timeout !== undefined) role.timeout = file.timeout;
    if (file.template !== undefined) role.template = file.template;
    if (file.file !== undefined) role.roleFile = file.file;
    config.notes.push(...(file.notes ?? []));
    const interval = file.interval ?? file.cooldown;
    if (interval !== undefined) role.interval = interval;
  }
  const doc: Record<string, unknown> = isRecord(raw) ? raw : {};
  if (!isRecord(raw)) problems.push('(root): must be a JSON object');
  // The original Loom's config.json: one actionable line instead of a list of unknown keys.
  const original = originalKeysOf(raw);
  if (original.length > 0) return { ok: false, problems: [`a configuration of the original Loom (${original.join(', ')}); run \`loom migrate\` to convert it (\`loom migrate --dry-run\` shows the result first)`] };

  for (const [key, value] of Object.entries(doc)) {
    if (key === '$schema') continue;
    if (key === 'tracker') {
      if (!isRecord(value) || (value.type !== 'local' && value.type !== 'github')) problems.push('tracker.type: must be "local" or "github"');
      else if (value.type === 'github') {
        const { owner, repo, baseUrl, trustedUsers } = value;
        if (typeof owner !== 'string' || owner === '') problems.push('tracker.owner: the GitHub owner (user or organisation) is required for the github tracker');
        if (typeof repo !== 'string' || repo === '') problems.push('tracker.repo: the GitHub repository name is required for the github tracker');
        if (baseUrl !== undefined && (typeof baseUrl !== 'string' || !/^https?:\/\//.test(baseUrl))) problems.push('tracker.baseUrl: must be an http(s) URL (GitHub Enterprise API root)');
        if (trustedUsers !== undefined && !(Array.isArray(trustedUsers) && trustedUsers.every((u) => typeof u === 'string'))) problems.push('tracker.trustedUsers: must be a list of GitHub logins');
        if (typeof owner === 'string' && typeof repo === 'string')
          config.tracker = { type: 'github', owner, repo, baseUrl: typeof baseUrl === 'string' ? baseUrl : undefined, trustedUsers: Array.isArray(trustedUsers) ? (trustedUsers as string[]) : [] };
      }
      continue;
    }
    if (key === 'roles') continue;
    if (key === 'notify') {
      if (!isRecord(value)) problems.push('notify: must be an object with "command" and/or "webhook" (and optionally "on")');
      else
        for (const [k, v] of Object.entries(value)) {
          if (k === 'command') {
            if (typeof v === 'string' && v.trim() !== '') config.notify.command = v;
            else problems.push('notify.command: must be a non-empty shell command string');
          } else if (k === 'webhook') {
            if (typeof v === 'string' && /^https?:\/\/\S+$/.test(v)) config.notify.webhook = v;
            else problems.push('notify.webhook: must be an http(s) URL');
          } else if (k === 'on') {
            if (Array.isArray(v) && v.every((kind) => typeof kind === 'string' && kind in NOTIFY_KINDS)) config.notify.on = v as string[];
            else problems.push(`notify.on: must be a list of ${Object.keys(NOTIFY_KINDS).join(', ')}`);
          } else problems.push(`notify.${k}: unknown key (known: command, webhook, on)`);
        }
      continue;
    }
    if (key === 'budget') {
      if (!isRecord(value)) problems.push('budget: must be an object with perIssueUsd, perDayUsd, perIssueTokens, perDayTokens');
      else
        for (const [k, v] of Object.entries(value)) {
          if (!(BUDGET_KEYS as readonly string[]).includes(k)) problems.push(`budget.${k}: unknown key (known: ${BUDGET_KEYS.join(', ')})`);
          else if (typeof v !== 'number' || !(v > 0)) problems.push(`budget.${k}: must be a number greater than zero`);
          else config.budget[k as (typeof BUDGET_KEYS)[number]] = v;
        }
      continue;
    }
    if (key === 'hooks') {
      resolveHooks(value, config, problems);
      continue;
    }
    if (key === 'pricing') {
      if (!isRecord(value)) problems.push('pricing: must be an object keyed by model or runtime name');
      else
        for (const [name, p] of Object.entries(value)) {
          const ok = isRecord(p) && ['input', 'output'].every((f) => typeof p[f] === 'number' && (p[f]) >= 0) && (p.cachedInput === undefined || (typeof p.cachedInput === 'number' && p.cachedInput >= 0));
          if (!ok || !isRecord(p)) problems.push(`pricing.${name}: must be { "input": USD per million tokens, "output": ..., "cachedInput": ... (optional) }`);
          else config.pricing[name] = { input: p.input as number, output: p.output as number, cachedInput: (p.cachedInput as number | undefined) ?? (p.input as number) };
        }
      continue;
    }
    if (key === 'sandbox') {
      Object.assign(config.sandbox, parseSandbox(value, 'sandbox', problems));
      continue;
    }
    if (key === 'overlap') {
      if (typeof value === 'string' && (OVERLAP_MODES as readonly string[]).includes(value)) config.overlap = value as OverlapMode;
      else problems.push(`overlap: must be ${OVERLAP_MODES.map((m) => `"${m}"`).join(' or ')}, got ${JSON.stringify(value)}`);
      continue;
    }
    if (key === 'requireApproval') {
      if (typeof value === 'boolean') config.requireApproval = value;
      else problems.push(`requireApproval: must be true or false, got ${JSON.stringify(value)}`);
      continue;
    }
    if (key === 'updateStrategy') {
      if (value === 'rebase' || value === 'merge') config.updateStrategy = value;
      else problems.push(`updateStrategy: must be "rebase" or "merge", got ${JSON.stringify(value)}`);
      continue;
    }
    if (key === 'executor') {
      const executor = parseExecutor(value, 'executor', problems);
      if (executor !== null) config.executor = executor;
      continue;
    }
    if (key === 'runtime') {
      if (typeof value === 'string' && (RUNTIME_NAMES as readonly string[]).includes(value)) config.runtime = value as RuntimeChoice;
      else problems.push(`runtime: must be one of ${RUNTIME_NAMES.join(', ')}`);
      continue;
    }
    if ((STRINGS as readonly string[]).includes(key)) {
      if (typeof value === 'string' && value.trim() !== '') config[key as (typeof STRINGS)[number]] = value;
      else problems.push(`${key}: must be a non-empty string`);
      continue;
    }
    const kind = SCALARS[key];
    if (kind === undefined) {
      problems.push(`${key}: unknown key (known: ${[...Object.keys(SCALARS), ...STRINGS, 'runtime', 'sandbox', 'executor', 'budget', 'pricing', 'roles', 'notify', 'tracker', 'hooks', 'overlap', 'updateStrategy', 'requireApproval'].join(', ')})`);
      continue;
    }
    const r = check(kind, value);
    if ('error' in r) problems.push(`${key}: ${r.error}`);
    else (config as unknown as Record<string, number>)[key] = r.value;
  }

  const roles = doc.roles;
  if (roles !== undefined && !isRecord(roles)) problems.push('roles: must be an object keyed by role name');
  /** Each role's own sandbox keys, laid over the top-level sandbox once env has had its say. */
  const roleSandboxes: Partial<Record<RoleName, Partial<SandboxConfig>>> = {};
  for (const [name, value] of Object.entries(isRecord(roles) ? roles : {})) {
    const role = (config.roles as Record<string, RoleConfig>)[name];
    if (role === undefined) {
      problems.push(`roles.${name}: unknown role (known: ${ROLE_NAMES.join(', ')})`);
      continue;
    }
    if (!isRecord(value)) {
      problems.push(`roles.${name}: must be an object`);
      continue;
    }
    for (const [k, v] of Object.entries(value)) {
      const at = `roles.${name}.${k}`;
      if (!ROLE_KEYS.has(k)) problems.push(`${at}: unknown key (known: ${[...ROLE_KEYS].join(', ')})`);
      else if (k === 'enabled') {
        if (typeof v !== 'boolean') problems.push(`${at}: must be true or false`);
      } else if (k === 'runtime') {
        if (typeof v === 'string' && (RUNTIME_NAMES as readonly string[]).includes(v)) role.runtime = v as RuntimeChoice;
        else problems.push(`${at}: must be one of ${RUNTIME_NAMES.join(', ')}`);
      } else if (k === 'fallback') {
        if (typeof v === 'string' && (RUNTIME_NAMES as readonly string[]).includes(v)) role.fallback = v as RuntimeChoice;
        else problems.push(`${at}: must be one of ${RUNTIME_NAMES.join(', ')}`);
      } else if (k === 'args') {
        if (typeof v === 'string') role.args = v.split(/\s+/).filter(Boolean);
        else if (Array.isArray(v) && v.every((a) => typeof a === 'string')) role.args = v;
        else problems.push(`${at}: must be a string or a list of strings`);
      } else if (k === 'model') {
        if (typeof v === 'string' && v.trim() !== '') role.model = v;
        else problems.push(`${at}: must be a non-empty string`);
      } else if (k === 'command') {
        if (typeof v !== 'string' || v.trim() === '') problems.push(`${at}: must be a non-empty shell command string`);
        else role.command = v;
      } else if (k === 'sandbox') {
        roleSandboxes[name as RoleName] = parseSandbox(v, at, problems);
      } else {
        const r = check('positiveDuration', v);
        if ('error' in r) problems.push(`${at}: ${r.error}`);
        else if (k === 'timeout') role.timeout = r.value;
        else role.interval = r.value;
      }
    }
    if (typeof value.enabled === 'boolean') role.enabled = value.enabled;
  }

  for (const k of BUDGET_KEYS) {
    const name = `LOOM_BUDGET_${k.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`;
    const v = env[name];
    if (v === undefined || v === '') continue;
    if (Number(v) > 0) config.budget[k] = Number(v);
    else problems.push(`env ${name}: must be a number greater than zero`);
  }
  const notifyCommand = env.LOOM_NOTIFY_COMMAND;
  if (notifyCommand !== undefined && notifyCommand.trim() !== '') config.notify.command = notifyCommand;
  const notifyWebhook = env.LOOM_NOTIFY_WEBHOOK;
  if (notifyWebhook !== undefined && notifyWebhook !== '') {
    if (/^https?:\/\/\S+$/.test(notifyWebhook)) config.notify.webhook = notifyWebhook;
    else problems.push('env LOOM_NOTIFY_WEBHOOK: must be an http(s) URL');
  }
  const envRedis = env.LOOM_REDIS_URL;
  if (envRedis !== undefined && envRedis !== '') {
    const executor = parseExecutor({ kind: 'bullmq', redis: envRedis }, 'env LOOM_REDIS_URL', problems);
    if (executor !== null) config.executor = executor;
  }
  const envShepherds = env.LOOM_SHEPHERDS;
  if (envShepherds !== undefined && envShepherds !== '') {
    if (config.executor.kind !== 'local') problems.push(`env LOOM_SHEPHERDS: applies to the local executor only; the executor is ${config.executor.kind}`);
    else if (envShepherds === 'process' || envShepherds === 'host') config.executor = { kind: 'local', shepherds: envShepherds };
    else problems.push(`env LOOM_SHEPHERDS: must be "process" or "host", got ${JSON.stringify(envShepherds)}`);
  }
  if (config.executor.kind === 'bullmq' && config.tracker.type === 'local')
    problems.push(`executor: the bullmq executor needs the GitHub tracker (the local tracker lives on one machine); set "tracker": { "type": "github", ... } or remove "executor"`);
  const envSandbox = env.LOOM_SANDBOX;
  if (envSandbox !== undefined && envSandbox !== '') {
    if ((SANDBOX_TYPES as readonly string[]).includes(envSandbox)) config.sandbox.type = envSandbox as SandboxType;
    else problems.push(`env LOOM_SANDBOX: must be ${SANDBOX_TYPES.map((t) => `"${t}"`).join(' or ')}, got ${JSON.stringify(envSandbox)}`);
  }
  const envOverlap = env.LOOM_OVERLAP;
  if (envOverlap !== undefined && envOverlap !== '') {
    if ((OVERLAP_MODES as readonly string[]).includes(envOverlap)) config.overlap = envOverlap as OverlapMode;
    else problems.push(`env LOOM_OVERLAP: must be ${OVERLAP_MODES.map((m) => `"${m}"`).join(' or ')}, got ${JSON.stringify(envOverlap)}`);
  }
  const envRuntime = env.LOOM_RUNTIME;
  if (envRuntime !== undefined && envRuntime !== '') {
    if ((RUNTIME_NAMES as readonly string[]).includes(envRuntime)) config.runtime = envRuntime as RuntimeChoice;
    else problems.push(`env LOOM_RUNTIME: must be one of ${RUNTIME_NAMES.join(', ')}`);
  }
  const envApproval = env.LOOM_REQUIRE_APPROVAL;
  if (envApproval !== undefined && envApproval !== '') {
    if (envApproval === 'true' || envApproval === 'false') config.requireApproval = envApproval === 'true';
    else problems.push(`env LOOM_REQUIRE_APPROVAL: must be "true" or "false", got ${JSON.stringify(envApproval)}`);
  }
  // The local tracker has no reviews: with requireApproval no PR could ever merge.
  if (config.requireApproval && config.tracker.type === 'local')
    problems.push(`requireApproval: needs the GitHub tracker (the local tracker has no reviews, so no PR could ever be approved and merged); set "tracker": { "type": "github", ... } or remove "requireApproval"`);
  const envStrategy = env.LOOM_UPDATE_STRATEGY;
  if (envStrategy !== undefined && envStrategy !== '') {
    if (envStrategy === 'rebase' || envStrategy === 'merge') config.updateStrategy = envStrategy;
    else problems.push(`env LOOM_UPDATE_STRATEGY: must be "rebase" or "merge", got ${JSON.stringify(envStrategy)}`);
  }
  for (const key of STRINGS) {
    const v = env[envName(key)];
    if (v !== undefined && v !== '') config[key] = v;
  }
  for (const [key, kind] of Object.entries(SCALARS)) {
    const name = envName(key);
    const v = env[name];
    if (v === undefined || v === '') continue;
    const r = check(kind, v);
    if ('error' in r) problems.push(`env ${name}: ${r.error}`);
    else (config as unknown as Record<string, number>)[key] = r.value;
  }
  // Tuning knobs read where they apply (log and event-log sizes, the shepherd host's idle time, a
  // worker's lock, the iterations' shortest gap): a bad value is refused here rather than
  // silently replaced by the default (or, for some, taken as 0).
  for (const [name, least] of ENV_KNOBS) {
    const v = env[name];
    if (v !== undefined && v !== '' && !(/^\d+$/.test(v.trim()) && Number(v) >= least)) problems.push(`env ${name}: must be a whole number ≥ ${least}, got ${JSON.stringify(v)}`);
  }
  for (const name of ROLE_NAMES) {
    const role = config.roles[name];
    role.sandbox = roleSandbox(config.sandbox, roleSandboxes[name] ?? {});
    const command = env[`LOOM_${name.toUpperCase()}_COMMAND`];
    if (command !== undefined && command !== '') role.command = command;
    const interval = env[`LOOM_${name.toUpperCase()}_INTERVAL`];
    if (interval !== undefined && interval !== '') {
      const r = check('positiveDuration', interval);
      if ('error' in r) problems.push(`env LOOM_${name.toUpperCase()}_INTERVAL: ${r.error}`);
      else role.interval = r.value;
    }
    const runtime = env[`LOOM_${name.toUpperCase()}_RUNTIME`];
    if (runtime !== undefined && runtime !== '') {
      if ((RUNTIME_NAMES as readonly string[]).includes(runtime)) role.runtime = runtime as RuntimeChoice;
      else problems.push(`env LOOM_${name.toUpperCase()}_RUNTIME: must be one of ${RUNTIME_NAMES.join(', ')}`);
    }
    role.runtime ??= role.command !== undefined ? 'command' : config.runtime;
    if (role.runtime === 'command' && role.command === undefined && name !== 'champion') problems.push(`roles.${name}.runtime: "command" needs roles.${name}.command`);
    // A role with a runtime is on unless switched off explicitly.
    const explicit = isRecord(roles) && isRecord(roles[name]) ? roles[name].enabled : undefined;
    if (explicit === true && role.runtime === undefined && name !== 'champion') problems.push(`roles.${name}.enabled: true needs a runtime (roles.${name}.runtime, roles.${name}.command or the top-level runtime)`);
    // The Champion's merge decision is code: it needs no runtime and is on unless switched off.
    if (name === 'champion') role.enabled = explicit !== false;
    else role.enabled = typeof explicit === 'boolean' ? explicit && role.runtime !== undefined : role.runtime !== undefined;
  }

  return problems.length > 0 ? { ok: false, problems } : { ok: true, value: config };
}

/**
 * A role's sandbox: its own keys over the top-level ones. `hide` adds to the top-level list — a
 * role cannot show what every agent is meant not to see.
 */
function roleSandbox(top: SandboxConfig, own: Partial<SandboxConfig>): SandboxConfig {
  return { type: own.type ?? top.type, network: own.network ?? top.network, hide: [...new Set([...top.hide, ...(own.hide ?? [])])] };
}

/**
 * Front matter of the role files that apply (`.loom/roles/<role>.md` over the built-in ones).
 * A malformed role file is a config problem naming its file and line.
 */
function readRoleFiles(rolesDir: string, problems: string[], notes: string[]): Partial<Record<RoleName, RoleFileSettings>> {
  const result: Partial<Record<RoleName, RoleFileSettings>> = {};
  for (const name of ROLE_NAMES) {
    try {
      const { name: _name, ...settings } = loadRole(name, [rolesDir, defaultRolesDir()]);
      result[name] = settings;
    } catch (error) {
      if (error instanceof RoleFileError) problems.push(error.message);
      else throw error;
    }
  }
  // A role file whose name is no role (a typo like `bulider.md`) would be ignored silently.
  let names: string[] = [];
  try {
    names = fs.readdirSync(rolesDir).filter((name) => name.endsWith('.md'));
  } catch {
    // no roles directory: only the built-in role files apply
  }
  const others: string[] = [];
  for (const name of names) {
    const role = name.slice(0, -'.md'.length);
    if ((ROLE_NAMES as readonly string[]).includes(role)) continue;
    const near = ROLE_NAMES.find((known) => editDistance(known, role.toLowerCase()) <= 2);
    // The original Loom kept more files here (README.md, auditor.md, shepherd.md, builder-pr.md,
    // ...), Markdown without front matter: they are its, not typos, and are left alone.
    if (near === undefined && !hasFrontMatter(path.join(rolesDir, name))) {
      others.push(name);
      continue;
    }
    problems.push(`${path.join(rolesDir, name)}: not a role, so it would be ignored (roles: ${ROLE_NAMES.join(', ')})${near !== undefined ? `; did you mean ${near}.md?` : ''}`);
  }
  if (others.length > 0) notes.push(`${rolesDir}: ${others.sort().join(', ')} ${others.length === 1 ? 'is not a role' : 'are not roles'} of this Loom (files of the original Loom); left alone`);
  return result;
}

function hasFrontMatter(file: string): boolean {
  try {
    return /^\uFEFF?---[ \t]*\r?$/m.test(fs.readFileSync(file, 'utf8').split('\n', 1)[0] ?? '');
  } catch {
    return false;
  }
}

/** Reads and validates the config file (missing file = defaults) and the role files beside it. Throws `ConfigError`. */
export function loadConfig(file: string, env: Record<string, string | undefined> = process.env): LoomConfig {
  let raw: unknown = {};
  if (fs.existsSync(file)) {
    const text = fs.readFileSync(file, 'utf8');
    // An empty file is more likely a truncated write or an editor accident than a wish for the
    // defaults: say so rather than run on defaults silently.
    if (text.trim() === '') throw new ConfigError(file, ['(root): the file is empty; write {} to use the defaults, or delete the file']);
    try {
      raw = JSON.parse(text);
    } catch (error) {
      throw new ConfigError(file, [`(root): not valid JSON (${(error as Error).message})`]);
    }
  }
  const roleProblems: string[] = [];
  const roleNotes: string[] = [];
  const roleFiles = readRoleFiles(path.join(path.dirname(file), 'roles'), roleProblems, roleNotes);
  const result = resolveConfig(raw, env, roleFiles);
  if (result.ok) result.value.notes.push(...roleNotes);
  const problems = [...roleProblems, ...(result.ok ? [] : result.problems)];
  if (problems.length > 0 || !result.ok) throw new ConfigError(file, problems);
  return result.value;
}

/**
 * The daemon's last good configuration: every successful load by the daemon is kept
 * (`.loom/daemon-state.json.last-good-config`), so that a config.json edited into an invalid
 * state does not stop reconciliation — iterations, shepherds and roles started by the daemon use
 * the last good one until the file is fixed.
 */
export function rememberGoodConfig(paths: LoomPaths, config: LoomConfig): void {
  writeFileAtomic(paths.lastGoodConfig, `${JSON.stringify(config)}\n`);
}

/** The daemon's last good configuration, or null when there is none (or it cannot be read). */
export function lastGoodConfig(paths: LoomPaths): LoomConfig | null {
  let saved: unknown;
  try {
    saved = readJsonFile(paths.lastGoodConfig);
  } catch {
    return null;
  }
  if (!(isRecord(saved) && isRecord(saved.roles) && isRecord(saved.tracker))) return null;
  // Keys added since it was saved take their defaults.
  const config = { ...defaultConfig(), notes: [], ...saved } as unknown as LoomConfig;
  // Saved by a version of Loom without sandboxes: none, as it ran then.
  if (!isRecord(saved.sandbox)) config.sandbox = defaultSandbox();
  for (const role of Object.values(config.roles)) if (!isRecord(role.sandbox)) role.sandbox = { ...config.sandbox, hide: [...config.sandbox.hide] };
  return config;
}

/** A role file's problem: `<file>.md[:<line>]: <problem>` (it names its own file). */
const ROLE_FILE_PROBLEM = /^(.+?\.md)((?::\d+)?: .*)$/s;

/**
 * One line for a config error, each problem under its own source: the config file's problems
 * after its path (relative to `cwd`), an environment variable's as `env LOOM_…: …`, a role file's
 * after that file's path.
 */
export function describeConfigError(error: ConfigError, cwd: string): string {
  const relative = (file: string) => path.relative(cwd, file) || file;
  const own: string[] = [];
  const others: string[] = [];
  for (const problem of error.problems) {
    const role = ROLE_FILE_PROBLEM.exec(problem);
    if (problem.startsWith('env ')) others.push(problem);
    else if (role !== null) others.push(`${relative(role[1] ?? '')}${role[2] ?? ''}`);
    else own.push(problem);
  }
  return [...(own.length > 0 ? [`${relative(error.file)}: ${own.join('; ')}`] : []), ...others].join('; ');
}

/** `executor`: `{ "kind": "local", "shepherds"?: "process" | "host" }` or `{ "kind": "bullmq", "redis": "redis://HOST:PORT" }`. */
function parseExecutor(value: unknown, at: string, problems: string[]): ExecutorConfig | null {
  if (!isRecord(value) || (value.kind !== 'local' && value.kind !== 'bullmq')) {
    problems.push(`${at}: must be { "kind": "local" } or { "kind": "bullmq", "redis": "redis://HOST:6379" }`);
    return null;
  }
  if (value.kind === 'local') {
    const shepherds = value.shepherds ?? 'host';
    if (shepherds !== 'process' && shepherds !== 'host') {
      problems.push(`${at === 'executor' ? 'executor.shepherds' : at}: must be "process" or "host", got ${JSON.stringify(shepherds)}`);
      return null;
    }
    return { kind: 'local', shepherds };
  }
  const url = value.redis;
  if (typeof url !== 'string' || !isRedisUrl(url)) {
    problems.push(`${at === 'executor' ? 'executor.redis' : at}: must be a Redis URL like redis://HOST:6379, got ${JSON.stringify(url)}`);
    return null;
  }
  return { kind: 'bullmq', redis: url };
}
