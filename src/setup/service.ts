/**
 * `loom service install|uninstall|status`: the user-level service (systemd on Linux, launchd on
 * macOS) that runs this repository's daemon and starts it again after a crash or a login. The
 * unit's text comes from `service-unit.ts`; this module writes it and talks to the manager.
 *
 * Bad input changes nothing: without a reachable user service manager (a container, a session
 * without `systemd --user`), or with a daemon already running outside the service, install says
 * so and writes nothing.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { LoomPaths } from '../config/paths.js';
import { UserError } from '../core/errors.js';
import { writeFileAtomic } from '../fs/atomic-file.js';
import { loomCommand } from '../process/launcher.js';
import { waitFor } from '../process/wait.js';
import { liveLock } from '../state/daemon-lock.js';
import { FileStateStore } from '../state/state-store.js';
import type { ServiceManager, ServiceSpec } from './service-unit.js';
import { CREDENTIAL_VARIABLES, launchdLabel, managerFor, serviceSpec, unitText } from './service-unit.js';

export interface ServiceContext {
  paths: LoomPaths;
  /** The config's `shutdownGrace`, ms. */
  shutdownGraceMs: number;
  force: boolean;
  env: NodeJS.ProcessEnv;
  platform: NodeJS.Platform;
  home: string;
  uid: number;
  log: (line: string) => void;
}

export interface ServiceStatus {
  manager: ServiceManager | null;
  /** Whether the user service manager answers; when not, why. */
  available: boolean;
  unavailable_reason: string | null;
  name: string | null;
  file: string | null;
  installed: boolean;
  /** The installed file is what `loom service install` would write now. */
  up_to_date: boolean | null;
  enabled: string | null;
  active: string | null;
  main_pid: number | null;
  daemon: { running: boolean; pid: number | null; log_file: string | null };
}

/** How long install waits for the service's daemon to hold the lock and write its state. */
const READY_TIMEOUT_MS = 60_000;

/** The spec and text of the unit for this repository (`loom service install --print`). */
export function describeService(ctx: ServiceContext): { spec: ServiceSpec; text: string } {
  const spec = specFor(ctx);
  return { spec, text: unitText(spec) };
}

export async function installService(ctx: ServiceContext): Promise<void> {
  const spec = specFor(ctx);
  const manager = managerClient(spec, ctx);
  const reason = manager.unavailable();
  if (reason !== null) throw noManager(spec.manager, reason);
  const text = unitText(spec);
  const daemon = liveLock(ctx.paths.lock);
  const mainPid = manager.mainPid();
  if (daemon !== null && daemon.pid !== mainPid)
    throw new UserError(`a Loom daemon already runs for this repository (pid ${daemon.pid}), not under the service: stop it with \`loom stop\`, then run \`loom service install\` again`);

  const previous = readIfExists(spec.file);
  const changed = previous !== text;
  if (changed) {
    fs.mkdirSync(path.dirname(spec.file), { recursive: true });
    writeFileAtomic(spec.file, text);
  }
  if (mainPid === null) {
    manager.load();
    manager.start();
    const pid = await waitForDaemon(ctx.paths, spec, manager);
    ctx.log(`Installed ${spec.file}: the daemon runs (pid ${pid}), starts again when you log in, and again after a crash.`);
    if (spec.manager === 'systemd') ctx.log(`To have it start at boot, before anyone logs in: \`loginctl enable-linger ${ctx.env.USER ?? '$USER'}\`.`);
  } else if (changed) {
    manager.reload();
    ctx.log(`Updated ${spec.file}. The running daemon (pid ${mainPid}) keeps the previous settings until \`${manager.restartHint()}\` (its shepherds get shutdownGrace to finish).`);
  } else {
    ctx.log(`${spec.file} is already installed and its daemon runs (pid ${mainPid}).`);
  }
  ctx.log(`Log: ${spec.logFile} (\`loom logs daemon -f\`). Status: \`loom service status\`. Stop and remove: \`loom service uninstall\`.`);
  ctx.log(`It runs with this shell's PATH${Object.keys(spec.environment).length > 1 ? ` (and ${Object.keys(spec.environment).filter((k) => k !== 'PATH').join(', ')})` : ''}: run \`loom service install\` again after changing it, or after moving Node or Loom.`);
  const missing = credentialsNotInEnvFile(ctx.env, spec.envFile);
  if (missing.length > 0)
    ctx.log(`Not written into the unit: ${missing.join(', ')} (set in this shell). If the agents need them, put them in ${spec.envFile} as KEY=value lines (chmod 600); logins such as \`claude login\` and \`gh auth login\` need nothing.`);
}

export function uninstallService(ctx: ServiceContext): void {
  const spec = specFor(ctx);
  if (!fs.existsSync(spec.file)) {
    ctx.log(`No Loom service is installed for this repository (${spec.file} does not exist); nothing to remove.`);
    return;
  }
  const manager = managerClient(spec, ctx);
  const reason = manager.unavailable();
  if (reason === null) {
    ctx.log(`Stopping ${spec.name} (\`loom stop\`: active shepherds get up to shutdownGrace to finish)…`);
    manager.unload();
  }
  fs.rmSync(spec.file, { force: true });
  if (reason === null) manager.afterRemove();
  ctx.log(`Removed ${spec.file}${reason === null ? '' : ` (the service manager is not reachable here: ${reason})`}.`);
}

export function serviceStatus(ctx: ServiceContext): ServiceStatus {
  const daemonLock = liveLock(ctx.paths.lock);
  const daemon = { running: daemonLock?.holder === 'daemon', pid: daemonLock?.holder === 'daemon' ? daemonLock.pid : null, log_file: daemonLock?.log_file ?? null };
  const manager = managerFor(ctx.platform);
  if (manager === null) return { manager, available: false, unavailable_reason: `Loom offers no service on ${ctx.platform}`, name: null, file: null, installed: false, up_to_date: null, enabled: null, active: null, main_pid: null, daemon };
  const spec = specFor(ctx);
  const client = managerClient(spec, ctx);
  const reason = client.unavailable();
  const installed = readIfExists(spec.file);
  return {
    manager,
    available: reason === null,
    unavailable_reason: reason,
    name: spec.name,
    file: spec.file,
    installed: installed !== null,
    up_to_date: installed === null ? null : installed === unitText(spec),
    enabled: reason === null ? client.enabled() : null,
    active: reason === null ? client.active() : null,
    main_pid: reason === null ? client.mainPid() : null,
    daemon,
  };
}

export function renderServiceStatus(s: ServiceStatus): string {
  const lines: string[] = [];
  if (s.manager === null) return `${s.unavailable_reason ?? 'no service manager'}; use \`loom start --detach\`.`;
  lines.push(`Service: ${s.name} (${s.manager})`);
  lines.push(`  File: ${s.file} — ${s.installed ? (s.up_to_date ? 'installed' : 'installed, but differs from what `loom service install` writes now (run it again)') : 'not installed'}`);
  if (s.available) lines.push(`  Manager: enabled=${s.enabled ?? '?'} active=${s.active ?? '?'}${s.main_pid !== null ? ` pid=${s.main_pid}` : ''}`);
  else lines.push(`  Manager: not reachable (${s.unavailable_reason}); \`loom start --detach\` runs the daemon in the background instead`);
  lines.push(`  Daemon: ${s.daemon.running ? `running (pid ${s.daemon.pid}${s.daemon.pid !== null && s.daemon.pid === s.main_pid ? ', under the service' : ''})` : 'not running'}${s.daemon.log_file ? `, log ${s.daemon.log_file}` : ''}`);
  return lines.join('\n');
}

function specFor(ctx: ServiceContext): ServiceSpec {
  if (managerFor(ctx.platform) === null) throw new UserError(`Loom offers a service on Linux (systemd) and macOS (launchd), not on ${ctx.platform}; run \`loom start --detach\` instead`);
  const { command, args } = loomCommand();
  return serviceSpec({ platform: ctx.platform, root: ctx.paths.root, home: ctx.home, env: ctx.env, loom: [command, ...args], logFile: ctx.paths.daemonLog, force: ctx.force, shutdownGraceMs: ctx.shutdownGraceMs });
}

function noManager(manager: ServiceManager, reason: string): UserError {
  return manager === 'systemd'
    ? new UserError(
        `no user systemd here (systemctl --user: ${reason}) — a container, or a session without a user service manager; nothing was written. Run \`loom start --detach\`: it keeps running after you log out, and after a reboot \`loom start --detach\` resumes the work`,
      )
    : new UserError(`launchd is not reachable for this user (launchctl: ${reason}); nothing was written. Run \`loom start --detach\` instead`);
}

/** The few calls Loom makes to the service manager. */
interface ManagerClient {
  /** Null when the user's manager answers, else why not. */
  unavailable(): string | null;
  /** Registers (and enables) the unit file. */
  load(): void;
  /** Makes the manager read a changed unit file (it applies at the next start). */
  reload(): void;
  start(): void;
  /** Stops the daemon (gracefully) and unregisters the unit. */
  unload(): void;
  afterRemove(): void;
  mainPid(): number | null;
  enabled(): string | null;
  active(): string | null;
  /** Has the manager given up on the unit (failed, or stopped)? */
  failed(): boolean;
  restartHint(): string;
}

function managerClient(spec: ServiceSpec, ctx: ServiceContext): ManagerClient {
  return spec.manager === 'systemd' ? systemdClient(spec, ctx.env) : launchdClient(spec, ctx);
}

interface Ran {
  ok: boolean;
  stdout: string;
  problem: string;
}

function run(command: string, args: string[], env: NodeJS.ProcessEnv): Ran {
  const r = spawnSync(command, args, { encoding: 'utf8', env, timeout: 15 * 60_000 });
  if (r.error) return { ok: false, stdout: '', problem: (r.error as NodeJS.ErrnoException).code === 'ENOENT' ? `${command} is not installed` : r.error.message };
  const problem = `${r.stderr}`.trim().split('\n')[0] ?? '';
  return { ok: r.status === 0, stdout: r.stdout, problem: problem || `${command} ${args.join(' ')} exited with ${r.status ?? r.signal}` };
}

function must(r: Ran, what: string): void {
  if (!r.ok) throw new UserError(`${what} failed: ${r.problem}`);
}

function systemdClient(spec: ServiceSpec, env: NodeJS.ProcessEnv): ManagerClient {
  const unit = `${spec.name}.service`;
  const systemctl = (...args: string[]) => run('systemctl', ['--user', ...args], env);
  const show = (property: string) => {
    const r = systemctl('show', '-p', property, '--value', unit);
    return r.ok ? r.stdout.trim() : null;
  };
  return {
    unavailable: () => {
      const r = systemctl('show-environment');
      return r.ok ? null : r.problem;
    },
    load: () => {
      must(systemctl('daemon-reload'), 'systemctl --user daemon-reload');
      must(systemctl('enable', unit), `systemctl --user enable ${unit}`);
    },
    reload: () => must(systemctl('daemon-reload'), 'systemctl --user daemon-reload'),
    start: () => must(systemctl('start', unit), `systemctl --user start ${unit}`),
    unload: () => must(systemctl('disable', '--now', unit), `systemctl --user disable --now ${unit}`),
    afterRemove: () => {
      systemctl('daemon-reload');
      systemctl('reset-failed', unit);
    },
    mainPid: () => {
      const pid = Number(show('MainPID'));
      return Number.isInteger(pid) && pid > 0 ? pid : null;
    },
    enabled: () => systemctl('is-enabled', unit).stdout.trim() || null,
    active: () => systemctl('is-active', unit).stdout.trim() || null,
    failed: () => ['failed', 'inactive'].includes(systemctl('is-active', unit).stdout.trim()),
    restartHint: () => `systemctl --user restart ${unit}`,
  };
}

function launchdClient(spec: ServiceSpec, ctx: ServiceContext): ManagerClient {
  const domain = `gui/${ctx.uid}`;
  const target = `${domain}/${launchdLabel(spec.name)}`;
  const launchctl = (...args: string[]) => run('launchctl', args, ctx.env);
  const printed = () => {
    const r = launchctl('print', target);
    return r.ok ? r.stdout : null;
  };
  return {
    unavailable: () => {
      const r = launchctl('print', domain);
      return r.ok ? null : r.problem;
    },
    load: () => {
      // A loaded older definition is replaced: launchd reads the file only when bootstrapped.
      if (printed() !== null) launchctl('bootout', target);
      must(launchctl('bootstrap', domain, spec.file), `launchctl bootstrap ${domain}`);
      launchctl('enable', target);
    },
    reload: () => undefined,
    start: () => must(launchctl('kickstart', target), `launchctl kickstart ${target}`),
    unload: () => {
      if (printed() !== null) must(launchctl('bootout', target), `launchctl bootout ${target}`);
    },
    afterRemove: () => undefined,
    mainPid: () => {
      const pid = Number(/^\s*pid = (\d+)/m.exec(printed() ?? '')?.[1]);
      return Number.isInteger(pid) && pid > 0 ? pid : null;
    },
    enabled: () => (printed() === null ? 'not loaded' : 'loaded'),
    active: () => /^\s*state = (\S+)/m.exec(printed() ?? '')?.[1] ?? 'not loaded',
    failed: () => {
      const text = printed();
      return text === null || /^\s*state = not running/m.test(text);
    },
    // launchd reads the file only when it is bootstrapped.
    restartHint: () => `launchctl bootout ${target}; launchctl bootstrap ${domain} ${spec.file}`,
  };
}

/** Waits until the service's daemon holds the lock and has written its state; its pid. */
async function waitForDaemon(paths: LoomPaths, spec: ServiceSpec, manager: ManagerClient): Promise<number> {
  const store = new FileStateStore(paths.state);
  let pid: number | null = null;
  const ready = () => {
    pid = manager.mainPid();
    const lock = liveLock(paths.lock);
    const state = store.peek();
    return pid !== null && lock?.pid === pid && state?.daemon_pid === pid && state.running;
  };
  let gaveUp = false;
  await waitFor(() => {
    if (ready()) return true;
    gaveUp = manager.failed();
    return gaveUp;
  }, READY_TIMEOUT_MS, 250);
  if (pid !== null && ready()) return pid;
  const said = lastLoomLine(spec.logFile);
  throw new UserError(
    `the service is installed but its daemon ${gaveUp ? 'stopped' : 'did not start within a minute'}${said ? `: ${said}` : ''}; see ${spec.logFile}, fix it, then \`${manager.restartHint()}\``,
  );
}

function lastLoomLine(file: string): string | null {
  const text = readIfExists(file) ?? '';
  const line = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.startsWith('loom: '))
    .at(-1);
  return line === undefined ? null : line.replace(/^loom: /, '');
}

/** Credentials set in this environment that the env file does not define. */
function credentialsNotInEnvFile(env: NodeJS.ProcessEnv, envFile: string): string[] {
  const defined = new Set(
    (readIfExists(envFile) ?? '')
      .split('\n')
      .map((l) => /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=/.exec(l)?.[1])
      .filter((k): k is string => k !== undefined),
  );
  return CREDENTIAL_VARIABLES.filter((k) => env[k] !== undefined && env[k] !== '' && !defined.has(k));
}

function readIfExists(file: string): string | null {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return null;
  }
}
