/**
 * `loom doctor`: what each configured role will actually run — the command's executable (a
 * relative path is the repository's) or the agent CLI on the `PATH` the agent gets, whether it
 * is there and executable, and whether a login reaches the agent (a variable Loom passes through,
 * or a login file it seeds into the task's home) — without calling any API (only `--version`) —
 * and how long the login shell agents run their shell commands in takes to start.
 * `loom start` refuses to start on the same executable checks (`unrunnableRoles`).
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LoomConfig } from '../core/config-model.js';
import type { RoleName, RuntimeChoice } from '../core/vocabulary.js';
import { ROLE_NAMES } from '../core/vocabulary.js';
import { sandboxSummary } from '../process/sandbox-probe.js';
import type { SandboxSummary } from '../process/sandbox-probe.js';
import { findExecutable } from '../runtimes/command-path.js';
import { agentAuth, checkExecutable } from '../runtimes/create-runtime.js';
import { agentEnv } from '../process/agent-env.js';
import { signalGroup } from '../process/process-identity.js';

export interface RuntimeCheck {
  runtime: string;
  /** On the `PATH` the agent gets (Loom passes the caller's `PATH` through). */
  installed: boolean;
  path: string | null;
  version: string | null;
  /** Not on `PATH` but found here (a `node_modules/.bin`): agents will not find it there. */
  elsewhere: string | null;
  /** A login that reaches the agent was found. */
  auth: boolean;
  /** Where auth was found, or what would provide it (and what is set but does not reach the agent). */
  authDetail: string;
}

export interface RoleCheck {
  role: string;
  enabled: boolean;
  runtime: string | null;
  fallback: string | null;
  /** What the role runs: the executable found, or the command as configured. */
  runs: string | null;
  usable: boolean;
  problem: string | null;
}

export interface DoctorReport {
  node: string;
  git: string | null;
  runtimes: RuntimeCheck[];
  roles: RoleCheck[];
  /** Whether bubblewrap works here, and which roles' agents run sandboxed (docs/security.md). */
  sandbox: Omit<SandboxSummary, 'problem'>;
  /**
   * The login shell agent CLIs run their shell commands in (`$SHELL -l`; Claude Code starts one
   * before every Bash call), and how long it took to start, ms (null: it did not start); absent
   * when no enabled role runs an agent CLI.
   */
  shell?: { path: string; ms: number | null };
  problems: string[];
}

/** A login shell slower than this to start is a problem: every agent shell command waits as long, ms. */
const SLOW_SHELL_MS = 2_000;
/** How long the doctor waits for a login shell to start, ms. */
const SHELL_WAIT_MS = 10_000;

const CLIS = ['claude', 'codex', 'gemini', 'opencode'] as const;
type Cli = (typeof CLIS)[number];

/** Variables people set for each CLI that look like a login: any of them Loom does not pass is worth saying. */
const LOGIN_LIKE: Record<Cli, RegExp | null> = {
  claude: /^(ANTHROPIC|CLAUDE_CODE)_\w*(KEY|TOKEN)$/,
  codex: /^(OPENAI|CODEX)_\w*(KEY|TOKEN)$/,
  gemini: /^(GEMINI|GOOGLE)_\w*(KEY|TOKEN|CREDENTIALS)$/,
  opencode: null,
};

const isCli = (runtime: string | undefined): runtime is Cli => (CLIS as readonly string[]).includes(runtime ?? '');

/** The CLI in the repository's or Loom's own `node_modules/.bin`, which agents do not search. */
function notOnPath(bin: string, root: string): string | null {
  const own = fileURLToPath(new URL('../../node_modules/.bin/', import.meta.url));
  for (const dir of [path.join(root, 'node_modules', '.bin'), own]) {
    const candidate = path.join(dir, bin);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return null;
}

function version(file: string, env: NodeJS.ProcessEnv, args: string[] = ['--version']): string | null {
  const r = spawnSync(file, args, { encoding: 'utf8', timeout: 15_000, stdio: ['ignore', 'pipe', 'pipe'], env });
  if (r.status !== 0) return null;
  return (r.stdout || r.stderr).trim().split('\n')[0] ?? null;
}

function checkAuth(cli: Cli, env: NodeJS.ProcessEnv): { auth: boolean; authDetail: string } {
  const sources = agentAuth(cli, env);
  const home = env.HOME ?? '';
  const shown = (file: string) => (home !== '' && file.startsWith(`${home}/`) ? `~/${path.relative(home, file)}` : file);
  const fromEnv = sources.env.filter((name) => (env[name] ?? '') !== '');
  const fromFiles = sources.files.filter((file) => fs.existsSync(file));
  const pattern = LOGIN_LIKE[cli];
  const unpassed = pattern === null ? [] : Object.keys(env).filter((name) => pattern.test(name) && (env[name] ?? '') !== '' && !sources.env.includes(name));
  const unpassedNote = unpassed.length === 0 ? '' : `; ${unpassed.map((n) => `$${n}`).join(', ')} ${unpassed.length === 1 ? 'is' : 'are'} set but Loom does not pass ${unpassed.length === 1 ? 'it' : 'them'} to the agent`;
  if (fromEnv.length > 0 || fromFiles.length > 0) return { auth: true, authDetail: [...fromEnv.map((n) => `$${n}`), ...fromFiles.map(shown)].join(', ') + unpassedNote };
  const hint = `set ${sources.env.slice(0, 2).map((n) => `$${n}`).join(' or ')}, or log in with \`${cli}\` (${sources.files.map(shown).join(', ')})`;
  return { auth: false, authDetail: hint + unpassedNote };
}

export async function runDoctor(root: string, config: LoomConfig, env: NodeJS.ProcessEnv = process.env): Promise<DoctorReport> {
  const runtimes = CLIS.map((cli): RuntimeCheck => {
    const found = findExecutable(cli, root, env);
    const file = 'path' in found ? found.path : null;
    return { runtime: cli, installed: file !== null, path: file, version: file === null ? null : version(file, env), elsewhere: file === null ? notOnPath(cli, root) : null, ...checkAuth(cli, env) };
  });
  const byName = new Map(runtimes.map((r) => [r.runtime, r]));
  const problems: string[] = [];
  const roles = ROLE_NAMES.map((role): RoleCheck => {
    const c = config.roles[role];
    const base = { role, enabled: c.enabled, runtime: c.runtime ?? null, fallback: c.fallback ?? null };
    // The Champion is code: its merge policy runs no agent.
    if (!c.enabled || role === 'champion' || c.runtime === undefined) return { ...base, runs: null, usable: true, problem: null };
    const primary = checkRole(role, config, c.runtime, root, env, byName);
    const fallbackOk = c.fallback !== undefined && checkRole(role, config, c.fallback, root, env, byName).problem === null;
    const usable = primary.problem === null || fallbackOk;
    if (!usable) problems.push(`role ${role}: ${primary.problem ?? ''}`);
    return { ...base, runs: primary.runs, usable, problem: primary.problem };
  });
  if (!config.roles.builder.enabled) problems.push('no builder runtime: set "runtime" or roles.builder in .loom/config.json');
  const { problem: sandboxProblem, ...sandbox } = sandboxSummary(config, env);
  if (sandboxProblem !== null) problems.push(sandboxProblem);
  const agents = roles.some((r) => r.enabled && isCli(r.runtime ?? undefined));
  const shell = agents ? await loginShell(env) : null;
  if (shell?.problem) problems.push(shell.problem);
  return { node: process.version, git: version('git', env), runtimes, roles, sandbox, ...(shell !== null ? { shell: { path: shell.path, ms: shell.ms } } : {}), problems };
}

/**
 * Starts the login shell agents get (`$SHELL`, else /bin/sh) as they do, `-l -c true`, and times
 * it: start-up files that are slow or wait on something (a version manager's stale lock) hold up
 * every shell command an agent runs — seen as an agent that stalls.
 */
export async function loginShell(env: NodeJS.ProcessEnv, waitMs = SHELL_WAIT_MS): Promise<{ path: string; ms: number | null; problem: string | null }> {
  const shell = env.SHELL !== undefined && env.SHELL !== '' ? env.SHELL : '/bin/sh';
  const started = Date.now();
  // With the environment an agent gets (the variables Loom passes through), so the same start-up
  // files run; in a process group of its own, so one that does not start in time is ended with
  // whatever its start-up files started (the process waiting on a lock, say).
  const r = await new Promise<{ error: NodeJS.ErrnoException | undefined; timedOut: boolean; signal: NodeJS.Signals | null }>((resolve) => {
    const child = spawn(shell, ['-l', '-c', 'true'], { env: agentEnv(env, {}), stdio: 'ignore', detached: true });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      if (child.pid !== undefined) signalGroup(child.pid, 'SIGKILL');
    }, waitMs);
    child.on('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve({ error, timedOut, signal: null });
    });
    child.on('exit', (_code, signal) => {
      clearTimeout(timer);
      resolve({ error: undefined, timedOut, signal });
    });
  });
  const ms = Date.now() - started;
  const files = 'look at its start-up files (~/.bash_profile, ~/.bashrc, ~/.profile, ~/.zprofile, ~/.zshrc) for what is slow or waits';
  if (r.error !== undefined && 'code' in r.error && r.error.code === 'ENOENT') return { path: shell, ms: null, problem: `the login shell ${shell} ($SHELL) does not exist: agent CLIs run their shell commands in it; set SHELL to one that does` };
  if (r.error !== undefined) return { path: shell, ms: null, problem: `the login shell ${shell} ($SHELL) cannot be started (${r.error.code ?? r.error.message}): agent CLIs run their shell commands in it; set SHELL to one that runs` };
  if (r.timedOut || r.signal !== null) return { path: shell, ms: null, problem: `the login shell \`${shell} -l\` did not start within ${waitMs / 1000} s: agent CLIs start it for their shell commands (Claude Code before every Bash call), which then stall; ${files}` };
  if (ms > SLOW_SHELL_MS) return { path: shell, ms, problem: `the login shell \`${shell} -l\` takes ${(ms / 1000).toFixed(1)} s to start: every shell command an agent runs waits as long (Claude Code starts it before every Bash call); ${files}` };
  return { path: shell, ms, problem: null };
}

/** What one runtime of a role runs, and the first reason it cannot. */
function checkRole(role: RoleName, config: LoomConfig, runtime: RuntimeChoice, root: string, env: NodeJS.ProcessEnv, clis: Map<string, RuntimeCheck>): { runs: string | null; problem: string | null } {
  const c = config.roles[role];
  const exe = checkExecutable(role, c, runtime, root, env);
  const runs = runtime === 'script' ? 'built in' : exe.problem !== null ? null : (exe.path ?? c.command ?? exe.word);
  if (exe.problem !== null) {
    const elsewhere = exe.word !== null && !exe.word.includes('/') ? notOnPath(exe.word, root) : null;
    const where = elsewhere === null ? '' : ` (it is at ${elsewhere}: set roles.${role}.command to that path, or put its folder on PATH)`;
    return { runs, problem: `${exe.problem}${where}` };
  }
  if (isCli(runtime)) {
    const cli = clis.get(runtime);
    if (cli !== undefined && !cli.auth) return { runs, problem: `${runtime} has no login that reaches the agent: ${cli.authDetail}` };
  }
  return { runs, problem: null };
}

/**
 * Roles whose executable cannot run (missing, not executable, not on PATH) and have no fallback
 * that can: one line for `loom start` to refuse with, or null. Logins are not checked here (a
 * login can live where Loom cannot see it); `loom doctor` reports them.
 */
export function unrunnableRoles(root: string, config: LoomConfig, env: NodeJS.ProcessEnv = process.env): string | null {
  const byProblem = new Map<string, string[]>();
  for (const role of ROLE_NAMES) {
    const c = config.roles[role];
    if (!c.enabled || role === 'champion' || c.runtime === undefined) continue;
    const problem = checkExecutable(role, c, c.runtime, root, env).problem;
    if (problem === null) continue;
    if (c.fallback !== undefined && checkExecutable(role, c, c.fallback, root, env).problem === null) continue;
    byProblem.set(problem, [...(byProblem.get(problem) ?? []), role]);
  }
  // A role sandboxed with bubblewrap that cannot sandbox here would never start a run either.
  const sandbox = sandboxSummary(config, env);
  if (sandbox.problem !== null) byProblem.set(sandbox.problem, sandbox.sandboxed);
  if (byProblem.size === 0) return null;
  const parts = [...byProblem].map(([problem, roles]) => `${roles.length === 1 ? 'role' : 'roles'} ${roles.join(', ')}: ${problem}`);
  return `cannot start: ${parts.join('; ')} (\`loom doctor\` checks every role)`;
}

export function renderDoctor(r: DoctorReport): string {
  const lines = [`node ${r.node}, ${r.git ?? 'git NOT FOUND'}`, '', 'Agent CLIs (on the PATH agents get):'];
  for (const rt of r.runtimes) {
    const where = rt.installed
      ? `${rt.version ?? '(version unknown)'} at ${rt.path ?? '?'}`
      : rt.elsewhere !== null
        ? `not on PATH (found at ${rt.elsewhere}, where agents do not look: put its folder on PATH or set a role's "command" to it)`
        : 'not installed';
    lines.push(`  ${rt.runtime.padEnd(9)} ${where}`);
    if (rt.installed) lines.push(`  ${''.padEnd(9)} auth: ${rt.auth ? `configured (${rt.authDetail})` : `MISSING — ${rt.authDetail}`}`);
  }
  lines.push('  script    built in (deterministic, follows loom-script blocks)', '  command   built in (any executable; a relative path is resolved against the repository root)', '', 'Roles (what each one runs):');
  for (const role of r.roles) {
    const what =
      role.role === 'champion'
        ? role.enabled
          ? 'built in (the merge policy is code)'
          : 'off'
        : role.enabled
          ? `${role.runtime ?? '?'}${role.runs !== null && role.runs !== 'built in' ? ` → ${role.runs}` : ''}${role.fallback ? ` (fallback ${role.fallback})` : ''}`
          : 'off';
    lines.push(`  ${role.role.padEnd(9)} ${what}${role.problem ? ` — ${role.problem}${role.usable ? '; the fallback will be used' : ''}` : ''}`);
  }
  lines.push('', `Sandbox: ${r.sandbox.bwrap.ok ? `${r.sandbox.bwrap.version} at ${r.sandbox.bwrap.path}` : r.sandbox.bwrap.kind === 'missing' ? 'bubblewrap not installed' : `bubblewrap cannot sandbox here (${r.sandbox.bwrap.detail})`}`, `  ${r.sandbox.text}`);
  if (r.shell !== undefined) lines.push('', `Login shell (agents run their shell commands in it): ${r.shell.path} -l ${r.shell.ms === null ? 'did not start' : `starts in ${(r.shell.ms / 1000).toFixed(2)} s`}`);
  lines.push('', r.problems.length === 0 ? 'Everything each role runs is in place.' : `Problems:\n${r.problems.map((p) => `  - ${p}`).join('\n')}`);
  return lines.join('\n');
}
