/**
 * `.loom/config.json` of the original Loom (rjwalters/loom), of any era — the January 2026 app
 * (`version`, `offlineMode`, `terminals`), the LLM daemon (`health_monitoring`, `reflection`),
 * the Python daemon (`forge`), today's (`runtimes`, `autonomous`, `buildGate`, `sweep`,
 * `safehouse`, ...): how to recognise one, and its translation into Loom's configuration.
 *
 * Invariant owned here: every key of an original config is either mapped to a Loom setting with
 * the same meaning or listed as dropped with the reason; nothing is dropped silently. Pure: the
 * caller reads and writes the files (`loom migrate`, src/setup/migrate.ts).
 */
import type { RoleName } from '../core/vocabulary.js';
import { GENERATOR_ROLES, ROLE_NAMES, RUNTIME_NAMES, SUPPORT_ROLES } from '../core/vocabulary.js';

/** Top-level keys only the original Loom's config.json has. */
export const ORIGINAL_KEYS: readonly string[] = [
  'version',
  'offlineMode',
  'terminals',
  'agents',
  'nextAgentNumber',
  'health_monitoring',
  'reflection',
  'forge',
  'runtimes',
  'autonomous',
  'buildGate',
  'sweep',
  'safehouse',
  'observability',
  'guide',
];

/** The original Champion merged at most this many changed lines (additions + deletions). */
export const ORIGINAL_MERGE_LINES = 200;

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const positive = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v > 0;

/** The original Loom's keys in a parsed config.json (empty: not an original config). */
export function originalKeysOf(doc: unknown): string[] {
  return isObj(doc) ? Object.keys(doc).filter((k) => ORIGINAL_KEYS.includes(k)) : [];
}

/** One line of the migration report. */
export interface MigrationLine {
  /** Where in the original it was (`terminals[0] "Judge"`, `autonomous.workFinder.maxConcurrent`). */
  from: string;
  /** The Loom setting it became (mapped), or why it has no counterpart (dropped). */
  to: string;
}

export interface Migration {
  /** Loom's config.json document. */
  config: Obj;
  mapped: MigrationLine[];
  /** Settings Loom adds with the reason (the runtime, the size limit, the tracker). */
  added: MigrationLine[];
  dropped: MigrationLine[];
}

/** `3m`, `90s`, `1h30m`: a duration string Loom's config accepts, from milliseconds. */
export function durationText(ms: number): string {
  if (ms % 1000 !== 0) return `${ms}ms`;
  let s = ms / 1000;
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  const text = `${h > 0 ? `${h}h` : ''}${m > 0 ? `${m}m` : ''}${s > 0 ? `${s}s` : ''}`;
  return text === '' ? '0s' : text;
}

const RUNTIMES: readonly string[] = RUNTIME_NAMES;
const isRuntime = (v: unknown): v is string => typeof v === 'string' && RUNTIMES.includes(v) && v !== 'script' && v !== 'command';
const roleOfFile = (file: unknown): RoleName | null => {
  const name = typeof file === 'string' ? file.replace(/\.md$/, '') : '';
  return (ROLE_NAMES as readonly string[]).includes(name) ? (name as RoleName) : null;
};

const DROPPED_WHY: Readonly<Record<string, string>> = {
  version: "the original config's schema version; Loom's config has none",
  offlineMode: "the original desktop app's offline mode; Loom has no app",
  agents: "the original desktop app's agent list; roles are configured under roles",
  nextAgentNumber: "the original desktop app's counter; no meaning here",
  reflection: 'session reflection at shutdown is not part of Loom',
  sweep: "the original's sweep experiments; no counterpart",
  safehouse: "the original's cross-host chat rooms; no counterpart",
  observability: "the original's telemetry endpoint; Loom keeps its usage in .loom/usage.jsonl and shows it in loom status",
  guide: "the original Guide's docs-maintenance tuning; no counterpart",
};

/**
 * Translates an original config document. `github` is the repository of the `origin` remote
 * when it is on GitHub (the original worked on GitHub issues), else null.
 */
export function migrateConfig(doc: Obj, github: { owner: string; repo: string } | null): Migration {
  const config: Obj = {};
  const roles: Partial<Record<RoleName, Obj>> = {};
  const mapped: MigrationLine[] = [];
  const added: MigrationLine[] = [];
  const dropped: MigrationLine[] = [];
  const role = (name: RoleName): Obj => (roles[name] ??= {});
  const map = (from: string, to: string, set: () => void) => {
    set();
    mapped.push({ from, to });
  };
  const drop = (from: string, why: string) => dropped.push({ from, to: why });

  // Keys that are already Loom's (a partly hand-converted file) are kept and win over mappings.
  const own = Object.fromEntries(Object.entries(doc).filter(([k]) => !ORIGINAL_KEYS.includes(k)));

  for (const [key, why] of Object.entries(DROPPED_WHY)) if (key in doc) drop(key, why);

  // The runtime: the original's default (today's `runtimes.default`), else what its terminals ran.
  const runtimes = doc.runtimes;
  let runtime: string | undefined;
  if (isObj(runtimes)) {
    for (const [k, v] of Object.entries(runtimes)) {
      if (k === 'default' && isRuntime(v)) map(`runtimes.default ${JSON.stringify(v)}`, `runtime ${JSON.stringify(v)}`, () => (runtime = v));
      else drop(`runtimes.${k}`, k === 'default' ? `${JSON.stringify(v)} is not a runtime of Loom (${RUNTIME_NAMES.join(', ')})` : "the original's per-runtime launch settings; Loom runs each CLI itself (docs/runtimes.md)");
    }
  } else if (runtimes !== undefined) drop('runtimes', 'not an object');

  // Today's role runner sets the support roles' interval; a terminal's interval then is history.
  const autoBlock = isObj(doc.autonomous) ? doc.autonomous : {};
  const runnerBlock = isObj(autoBlock.roleRunner) ? autoBlock.roleRunner : {};
  const runnerInterval = positive(runnerBlock.intervalSecs);

  // Terminals: one per role the desktop app (and later the daemon) ran, with its worker and interval.
  const terminals = Array.isArray(doc.terminals) ? doc.terminals : [];
  if (doc.terminals !== undefined && !Array.isArray(doc.terminals)) drop('terminals', 'not a list');
  const workerTypes: string[] = [];
  let builders = 0;
  const seen = new Set<RoleName>();
  terminals.forEach((t, i) => {
    const where = `terminals[${i}]${isObj(t) && typeof t.name === 'string' ? ` ${JSON.stringify(t.name)}` : ''}`;
    const rc = isObj(t) && isObj(t.roleConfig) ? t.roleConfig : null;
    const name = roleOfFile(rc?.roleFile);
    if (rc === null || name === null) {
      drop(where, rc === null ? 'no roleConfig' : `role file ${JSON.stringify(rc.roleFile)} has no counterpart among Loom's roles (${ROLE_NAMES.join(', ')})`);
      return;
    }
    if (name === 'builder') builders += 1;
    if (seen.has(name)) {
      drop(where, `a second ${name} terminal: its settings are those of the first`);
      return;
    }
    seen.add(name);
    if (isRuntime(rc.workerType)) workerTypes.push(rc.workerType);
    else if (rc.workerType !== undefined) drop(`${where}.roleConfig.workerType`, `${JSON.stringify(rc.workerType)} is not a runtime of Loom (${RUNTIME_NAMES.join(', ')})`);
    const interval = rc.targetInterval;
    if (positive(interval) && runnerInterval && (SUPPORT_ROLES as readonly string[]).includes(name)) drop(`${where}.roleConfig.targetInterval ${interval}`, 'autonomous.roleRunner.intervalSecs sets this role\'s interval');
    else if (positive(interval) && name !== 'builder') {
      const key = (GENERATOR_ROLES as readonly string[]).includes(name) ? 'cooldown' : 'interval';
      map(`${where}.roleConfig.targetInterval ${interval}`, `roles.${name}.${key} "${durationText(interval)}"`, () => (role(name)[key] = durationText(interval)));
    }
    if (rc.intervalPrompt !== undefined) drop(`${where}.roleConfig.intervalPrompt`, "Loom writes each run's prompt from the role file and the work at hand");
    if (isRuntime(rc.workerType)) role(name).__worker = rc.workerType;
  });
  if (terminals.length > 0) drop('terminals[].id, name, role, theme', "the original desktop app's terminal layout; no counterpart");
  if (builders > 1) map(`${builders} builder terminals`, `maxShepherds ${builders}`, () => (config.maxShepherds = builders));

  // The top-level runtime: the original ran every role on Claude Code unless told otherwise.
  if (runtime === undefined) {
    const counts = new Map<string, number>();
    for (const w of workerTypes) counts.set(w, (counts.get(w) ?? 0) + 1);
    const common = [...counts.entries()].sort((a, b) => b[1] - a[1])[0]?.[0];
    runtime = common ?? 'claude';
    added.push({ from: `runtime ${JSON.stringify(runtime)}`, to: common !== undefined ? 'the worker most of the original terminals ran' : 'the original ran every role on Claude Code' });
  }
  config.runtime = runtime;
  for (const name of ROLE_NAMES) {
    const r = roles[name];
    if (r === undefined) continue;
    const worker = r.__worker;
    delete r.__worker;
    if (typeof worker === 'string' && worker !== runtime) map(`the ${name} terminal's workerType ${JSON.stringify(worker)}`, `roles.${name}.runtime ${JSON.stringify(worker)}`, () => (r.runtime = worker));
  }

  // Health monitoring: its stuck-agent threshold is Loom's stall timeout; the rest is metrics.
  const health = doc.health_monitoring;
  if (isObj(health)) {
    const stuck = isObj(health.thresholds) ? health.thresholds.stuck_agent_minutes : undefined;
    if (positive(stuck)) map(`health_monitoring.thresholds.stuck_agent_minutes ${stuck}`, `stallTimeout "${durationText(stuck * 60_000)}"`, () => (config.stallTimeout = durationText(stuck * 60_000)));
    drop(positive(stuck) ? 'health_monitoring (the rest)' : 'health_monitoring', "the original's metrics collection and alerts; loom status shows stuck agents, blocked issues and problems");
  }

  // The build gate: a command the original ran on a builder's work in its worktree.
  const gate = doc.buildGate;
  if (isObj(gate)) {
    if (gate.enabled !== false && typeof gate.command === 'string' && gate.command.trim() !== '') map(`buildGate.command ${JSON.stringify(gate.command)}`, `testCommand ${JSON.stringify(gate.command)}`, () => (config.testCommand = gate.command));
    const rest = Object.keys(gate).filter((k) => k !== 'command' && k !== 'enabled');
    if (rest.length > 0) drop(`buildGate.${rest.join(', buildGate.')}`, 'timing and load tuning of the original gate; Loom runs testCommand once per review round');
    if (gate.enabled === false) drop('buildGate', 'disabled in the original');
  }

  // The forge: Loom's trackers are the local one and GitHub.
  const forge = doc.forge;
  const forgeType = isObj(forge) ? forge.type : undefined;
  if (forgeType === 'gitea') {
    drop('forge (gitea)', 'Loom has no Gitea tracker; the local tracker is used');
    config.tracker = { type: 'local' };
  } else if (github !== null) {
    config.tracker = { type: 'github', owner: github.owner, repo: github.repo };
    added.push({ from: `tracker github ${github.owner}/${github.repo}`, to: `the original worked on the GitHub issues of origin${forge !== undefined ? ` (forge.type ${JSON.stringify(forgeType)})` : ''}` });
  } else {
    config.tracker = { type: 'local' };
    added.push({ from: 'tracker local', to: 'the original worked on GitHub issues, but origin is not on github.com; set tracker {type: "github", owner, repo} to use them' });
  }
  if (isObj(forge)) {
    const rest = Object.keys(forge).filter((k) => k !== 'type');
    if (rest.length > 0) drop(`forge.${rest.join(', forge.')}`, 'Loom reads GitHub credentials from GITHUB_TOKEN, GH_TOKEN or `gh auth token` (docs/trackers.md)');
  }

  // Today's autonomous block: the work finder is Loom's shepherd pool, the role runner its support roles.
  const auto = doc.autonomous;
  if (isObj(auto)) {
    const finder = isObj(auto.workFinder) ? auto.workFinder : {};
    const runner = isObj(auto.roleRunner) ? auto.roleRunner : {};
    const used = new Set<string>();
    const use = (path: string, value: unknown, to: string, set: () => void) => {
      used.add(path);
      map(`autonomous.${path} ${JSON.stringify(value)}`, to, set);
    };
    if (positive(finder.maxConcurrent) && Number.isInteger(finder.maxConcurrent)) use('workFinder.maxConcurrent', finder.maxConcurrent, `maxShepherds ${finder.maxConcurrent}`, () => (config.maxShepherds = finder.maxConcurrent));
    if (positive(finder.intervalSecs)) use('workFinder.intervalSecs', finder.intervalSecs, `pollInterval "${durationText(finder.intervalSecs * 1000)}"`, () => (config.pollInterval = durationText((finder.intervalSecs as number) * 1000)));
    const quarantine = isObj(finder.quarantine) ? finder.quarantine : {};
    if (positive(quarantine.threshold) && Number.isInteger(quarantine.threshold)) use('workFinder.quarantine.threshold', quarantine.threshold, `spawnFailureLimit ${quarantine.threshold}`, () => (config.spawnFailureLimit = quarantine.threshold));
    const backoff = isObj(finder.dispatchBackoff) ? finder.dispatchBackoff : {};
    if (positive(backoff.maxSecs)) use('workFinder.dispatchBackoff.maxSecs', backoff.maxSecs, `maxRetryBackoff "${durationText(backoff.maxSecs * 1000)}"`, () => (config.maxRetryBackoff = durationText((backoff.maxSecs as number) * 1000)));
    if (positive(runner.architectMaxProposals) && Number.isInteger(runner.architectMaxProposals)) use('roleRunner.architectMaxProposals', runner.architectMaxProposals, `maxProposals ${runner.architectMaxProposals}`, () => (config.maxProposals = runner.architectMaxProposals));
    if (positive(runner.intervalSecs)) {
      const every = durationText(runner.intervalSecs * 1000);
      use('roleRunner.intervalSecs', runner.intervalSecs, `roles.{${SUPPORT_ROLES.join(',')}}.interval "${every}"`, () => {
        for (const name of SUPPORT_ROLES) role(name).interval = every;
      });
    }
    if (finder.enabled === false) {
      used.add('workFinder.enabled');
      drop('autonomous.workFinder.enabled false', "Loom's daemon builds every ready issue; to build only by hand, do not run `loom start` and use `loom spawn N`");
    } else if (finder.enabled === true) used.add('workFinder.enabled');
    if (runner.enabled === true) used.add('roleRunner.enabled');
    if (runner.enabled === false) {
      use('roleRunner.enabled', false, `roles.{${SUPPORT_ROLES.join(',')}}.enabled false`, () => {
        for (const name of SUPPORT_ROLES) role(name).enabled = false;
      });
    } else if (Array.isArray(runner.roles)) {
      const listed = runner.roles.filter((r): r is string => typeof r === 'string');
      const off = SUPPORT_ROLES.filter((r) => !listed.includes(r));
      use('roleRunner.roles', listed, off.length > 0 ? `roles.{${off.join(',')}}.enabled false (not in the list)` : 'every support role on (as by default)', () => {
        for (const name of off) role(name).enabled = false;
      });
    }
    // A model alias of the original (sonnet, opus) is a Claude model: it applies to Claude roles only.
    const model = typeof runner.model === 'string' ? runner.model : typeof auto.model === 'string' ? auto.model : undefined;
    if (model !== undefined) {
      const on = ROLE_NAMES.filter((name) => name !== 'champion' && ((roles[name]?.runtime as string | undefined) ?? runtime) === 'claude');
      used.add(typeof runner.model === 'string' ? 'roleRunner.model' : 'model');
      if (on.length > 0) {
        mapped.push({ from: `autonomous.${typeof runner.model === 'string' ? 'roleRunner.model' : 'model'} ${JSON.stringify(model)}`, to: `roles.{${on.join(',')}}.model ${JSON.stringify(model)}` });
        for (const name of on) role(name).model = model;
      } else drop(`autonomous.model ${JSON.stringify(model)}`, 'a Claude model, and no role runs on Claude');
    }
    const rest = [...flatKeys(auto, '')].filter((k) => ![...used].some((u) => k === u || k.startsWith(`${u}.`)) && !(k === 'model' && used.has('roleRunner.model')) && !(k === 'roleRunner.model' && used.has('model')));
    if (rest.length > 0) drop(`autonomous.${rest.join(', autonomous.')}`, "the original daemon's own tuning (breakers, gates, watchdogs, sharding, ...); Loom has its own settings for what it does (docs/config.md)");
  }

  // The original Champion's size limit.
  if (!('maxMergeLines' in own)) {
    config.maxMergeLines = ORIGINAL_MERGE_LINES;
    added.push({ from: `maxMergeLines ${ORIGINAL_MERGE_LINES}`, to: `the original Champion merged at most ${ORIGINAL_MERGE_LINES} changed lines; a PR labelled loom:auto-merge-ok is exempt, as it was there` });
  }

  const roleEntries = Object.entries(roles).filter(([, r]) => Object.keys(r).length > 0);
  if (roleEntries.length > 0) config.roles = Object.fromEntries(roleEntries);
  // Loom's own keys already in the file win (a partly converted config); their roles merge.
  const ownRoles = isObj(own.roles) ? own.roles : {};
  const merged: Obj = { ...config, ...own };
  if (isObj(config.roles) || isObj(own.roles)) {
    const all: Obj = { ...(isObj(config.roles) ? config.roles : {}) };
    for (const [name, value] of Object.entries(ownRoles)) all[name] = isObj(all[name]) && isObj(value) ? { ...(all[name]), ...value } : value;
    merged.roles = all;
  }
  return { config: merged, mapped, added, dropped };
}

/** Every leaf key path of an object (`a.b.c`), for the list of what was dropped. */
function* flatKeys(obj: Obj, prefix: string): Generator<string> {
  for (const [k, v] of Object.entries(obj)) {
    const path = `${prefix}${k}`;
    if (isObj(v) && Object.keys(v).length > 0) yield* flatKeys(v, `${path}.`);
    else yield path;
  }
}
