/**
 * The user-level service that keeps one repository's Loom daemon running: the text of a systemd
 * user unit (Linux) or a launchd agent (macOS), from plain inputs — no I/O here.
 *
 * Invariants owned here:
 * - No secret is written into the unit. The daemon's environment is the service manager's own
 *   (HOME, USER, …) plus an explicit allowlist copied from the installing shell (`PATH`, locale,
 *   where agent CLIs keep their configuration); credentials come from the user's own files
 *   (`claude login`, `gh auth login`, …) or from an optional env file the unit points at.
 * - Stopping the service is `loom stop`: a graceful shutdown within `shutdownGrace`; a daemon
 *   that crashes is restarted, and its shepherds — left running, not killed with it — are adopted
 *   by the new daemon. Exit 2 (a problem to fix: invalid config, another daemon) is not restarted.
 */
import { createHash } from 'node:crypto';
import path from 'node:path';
import { UserError } from '../core/errors.js';

/** Variables copied from the installing environment into the unit: none of them is a secret. */
export const SERVICE_ENV_ALLOWLIST = [
  'PATH',
  'LANG',
  'LANGUAGE',
  'LC_ALL',
  'LC_CTYPE',
  'LC_MESSAGES',
  'TZ',
  'NODE_OPTIONS',
  'NODE_EXTRA_CA_CERTS',
  'SSL_CERT_FILE',
  'SSL_CERT_DIR',
  'XDG_CONFIG_HOME',
  'XDG_CACHE_HOME',
  'XDG_DATA_HOME',
  'CLAUDE_CONFIG_DIR',
  'CODEX_HOME',
  'GIT_CONFIG_GLOBAL',
] as const;

/** Credentials agents and trackers read from the environment: never written, only pointed to. */
export const CREDENTIAL_VARIABLES = [
  'ANTHROPIC_API_KEY',
  'ANTHROPIC_AUTH_TOKEN',
  'CLAUDE_CODE_OAUTH_TOKEN',
  'OPENAI_API_KEY',
  'CODEX_API_KEY',
  'GEMINI_API_KEY',
  'GOOGLE_API_KEY',
  'GITHUB_TOKEN',
  'GH_TOKEN',
] as const;

export type ServiceManager = 'systemd' | 'launchd';

export interface ServiceSpec {
  manager: ServiceManager;
  /** `loom-<repo>-<hash>` (systemd unit name without `.service`, launchd label suffix). */
  name: string;
  /** Where the unit file goes. */
  file: string;
  root: string;
  /** argv that runs the `loom` CLI: the Node executable and the CLI's entry file. */
  loom: string[];
  force: boolean;
  logFile: string;
  /** Optional `KEY=value` file with the agents' credentials, read when the daemon starts. */
  envFile: string;
  environment: Record<string, string>;
  /** Seconds the manager waits for the graceful shutdown before killing the daemon. */
  stopTimeoutSec: number;
}

export interface ServiceInputs {
  platform: NodeJS.Platform;
  root: string;
  home: string;
  env: NodeJS.ProcessEnv;
  loom: string[];
  logFile: string;
  force: boolean;
  /** The config's `shutdownGrace`, ms. */
  shutdownGraceMs: number;
}

/** The service manager of `platform`, or null where Loom has none to offer. */
export function managerFor(platform: NodeJS.Platform): ServiceManager | null {
  if (platform === 'linux') return 'systemd';
  if (platform === 'darwin') return 'launchd';
  return null;
}

/** `loom-<repo>-<8 hex of the path>`: readable, and distinct for two clones with one name. */
export function serviceName(root: string): string {
  const slug =
    path
      .basename(root)
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-+|-+$/g, '')
      .slice(0, 40) || 'repo';
  return `loom-${slug}-${createHash('sha256').update(root).digest('hex').slice(0, 8)}`;
}

export function serviceSpec(inputs: ServiceInputs): ServiceSpec {
  const manager = managerFor(inputs.platform);
  if (manager === null) throw new Error(`no service manager for ${inputs.platform}`);
  // A line break would end a setting early: such a path cannot be written into a unit.
  for (const value of [inputs.root, inputs.logFile, inputs.home, ...inputs.loom]) if (/[\n\r]/.test(value)) throw new UserError(`cannot write a service for a path with a line break in it: ${JSON.stringify(value)}`);
  const name = serviceName(inputs.root);
  const environment: Record<string, string> = {};
  for (const key of SERVICE_ENV_ALLOWLIST) {
    const value = inputs.env[key];
    if (value !== undefined && value !== '' && !/[\n\r]/.test(value)) environment[key] = value;
  }
  return {
    manager,
    name,
    file: manager === 'systemd' ? path.join(inputs.home, '.config', 'systemd', 'user', `${name}.service`) : path.join(inputs.home, 'Library', 'LaunchAgents', `${launchdLabel(name)}.plist`),
    root: inputs.root,
    loom: inputs.loom,
    force: inputs.force,
    logFile: inputs.logFile,
    envFile: path.join(inputs.home, '.config', 'loom', 'loom.env'),
    environment,
    stopTimeoutSec: Math.ceil(inputs.shutdownGraceMs / 1000) + 60,
  };
}

export function launchdLabel(name: string): string {
  return `dev.loom.${name}`;
}

/** The daemon's argv: `loom start [--force] --log-file <log>` (its stdout is that file). */
function startArgs(spec: ServiceSpec): string[] {
  return [...spec.loom, 'start', ...(spec.force ? ['--force'] : []), '--log-file', spec.logFile];
}

export function unitText(spec: ServiceSpec): string {
  return spec.manager === 'systemd' ? systemdUnit(spec) : launchdPlist(spec);
}

function systemdUnit(spec: ServiceSpec): string {
  const lines = [
    `# Loom daemon for ${spec.root}, written by \`loom service install\`; \`loom service uninstall\` removes it.`,
    '[Unit]',
    `Description=Loom daemon for ${specifiers(spec.root)}`,
    'After=network-online.target',
    'Wants=network-online.target',
    '',
    '[Service]',
    'Type=simple',
    `WorkingDirectory=${specifiers(spec.root)}`,
    `ExecStart=${execLine(startArgs(spec))}`,
    // Stopping is `loom stop`: no new work, shepherds get shutdownGrace to finish (SIGTERM, sent
    // next, means the same to the daemon).
    `ExecStop=${execLine([...spec.loom, 'stop'])}`,
    `TimeoutStopSec=${spec.stopTimeoutSec}`,
    // The daemon ends its shepherds itself when it stops. When it crashes they keep working and
    // the restarted daemon adopts them, so systemd must leave them alone.
    'KillMode=process',
    'Restart=on-failure',
    'RestartSec=10',
    // Exit 2 is a problem to fix (an invalid config, another daemon running): restarting cannot help.
    'RestartPreventExitStatus=2',
    `StandardOutput=append:${specifiers(spec.logFile)}`,
    `StandardError=append:${specifiers(spec.logFile)}`,
    // No secret is written here: the agents' credentials come from their own files (claude login,
    // gh auth login, ...) or from this optional file of KEY=value lines.
    `EnvironmentFile=-${specifiers(spec.envFile)}`,
    ...Object.entries(spec.environment).map(([key, value]) => `Environment=${quote(`${key}=${value}`)}`),
    '',
    '[Install]',
    'WantedBy=default.target',
    '',
  ];
  return lines.join('\n');
}

/** systemd expands `%` specifiers in most settings: a literal `%` is `%%`. */
function specifiers(value: string): string {
  return value.replace(/%/g, '%%');
}

/** A double-quoted systemd word: `\` and `"` escaped, `%` and `$` doubled (no expansion). */
function quote(value: string): string {
  return `"${specifiers(value).replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\$/g, '$$$$')}"`;
}

function execLine(argv: string[]): string {
  return argv.map(quote).join(' ');
}

function launchdPlist(spec: ServiceSpec): string {
  const string = (value: string) => `<string>${xml(value)}</string>`;
  // launchd has no env file: a shell reads the optional one, then becomes the daemon.
  const argv = ['/bin/sh', '-c', 'if [ -r "$0" ]; then set -a; . "$0"; set +a; fi; exec "$@"', spec.envFile, ...startArgs(spec)];
  const lines = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">',
    `<!-- Loom daemon for ${xml(spec.root).replace(/--/g, '- -')}, written by \`loom service install\`; \`loom service uninstall\` removes it. -->`,
    '<plist version="1.0">',
    '<dict>',
    `  <key>Label</key>${string(launchdLabel(spec.name))}`,
    '  <key>ProgramArguments</key>',
    '  <array>',
    ...argv.map((a) => `    ${string(a)}`),
    '  </array>',
    `  <key>WorkingDirectory</key>${string(spec.root)}`,
    '  <key>EnvironmentVariables</key>',
    '  <dict>',
    ...Object.entries(spec.environment).map(([key, value]) => `    <key>${xml(key)}</key>${string(value)}`),
    '  </dict>',
    '  <key>RunAtLoad</key><true/>',
    // Restarted when it exits with a failure; `loom stop` (exit 0) leaves it stopped.
    '  <key>KeepAlive</key>',
    '  <dict>',
    '    <key>SuccessfulExit</key><false/>',
    '  </dict>',
    '  <key>ThrottleInterval</key><integer>10</integer>',
    // The shepherds outlive a crashed daemon and are adopted by the next one.
    '  <key>AbandonProcessGroup</key><true/>',
    `  <key>ExitTimeOut</key><integer>${spec.stopTimeoutSec}</integer>`,
    `  <key>StandardOutPath</key>${string(spec.logFile)}`,
    `  <key>StandardErrorPath</key>${string(spec.logFile)}`,
    '  <key>ProcessType</key><string>Background</string>',
    '</dict>',
    '</plist>',
    '',
  ];
  return lines.join('\n');
}

function xml(value: string): string {
  return value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}
