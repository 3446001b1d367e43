/**
 * `loom doctor`: which agent runtimes are installed, their versions, whether their auth is
 * configured, and whether every role's runtime is usable — without calling any API (only
 * `--version` and a look at environment variables and credential files).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LoomConfig } from '../core/config-model.js';
import { ROLE_NAMES } from '../core/vocabulary.js';
import { sandboxSummary } from '../process/sandbox-probe.js';
import type { SandboxSummary } from '../process/sandbox-probe.js';

export interface RuntimeCheck {
  runtime: string;
  installed: boolean;
  path: string | null;
  version: string | null;
  auth: boolean;
  /** Where auth was found, or what would provide it. */
  authDetail: string;
}

export interface DoctorReport {
  node: string;
  git: string | null;
  runtimes: RuntimeCheck[];
  roles: { role: string; enabled: boolean; runtime: string | null; fallback: string | null; usable: boolean; problem: string | null }[];
  /** Whether bubblewrap works here, and which roles' agents run sandboxed (docs/security.md). */
  sandbox: Omit<SandboxSummary, 'problem'>;
  problems: string[];
}

const CLI: Record<string, { bin: string; env: string[]; files: string[] }> = {
  claude: { bin: 'claude', env: ['ANTHROPIC_API_KEY', 'ANTHROPIC_AUTH_TOKEN', 'CLAUDE_CODE_OAUTH_TOKEN', 'CLAUDE_CODE_USE_BEDROCK', 'CLAUDE_CODE_USE_VERTEX'], files: ['.claude/.credentials.json'] },
  codex: { bin: 'codex', env: ['CODEX_API_KEY', 'OPENAI_API_KEY'], files: ['.codex/auth.json'] },
  gemini: { bin: 'gemini', env: ['GEMINI_API_KEY', 'GOOGLE_API_KEY', 'GOOGLE_APPLICATION_CREDENTIALS'], files: ['.gemini/oauth_creds.json'] },
  opencode: { bin: 'opencode', env: ['ANTHROPIC_API_KEY', 'OPENAI_API_KEY', 'OPENROUTER_API_KEY'], files: ['.local/share/opencode/auth.json'] },
};

/** The executable on PATH, or in the repository's or Loom's own `node_modules/.bin`. */
function findExecutable(bin: string, root: string, env: NodeJS.ProcessEnv): string | null {
  const own = fileURLToPath(new URL('../../node_modules/.bin/', import.meta.url));
  const dirs = [...(env.PATH ?? '').split(path.delimiter), path.join(root, 'node_modules', '.bin'), own];
  for (const dir of dirs) {
    if (!dir) continue;
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

function version(file: string, args: string[] = ['--version']): string | null {
  const r = spawnSync(file, args, { encoding: 'utf8', timeout: 15_000, stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.status !== 0) return null;
  return (r.stdout || r.stderr).trim().split('\n')[0] ?? null;
}

export function runDoctor(root: string, config: LoomConfig, env: NodeJS.ProcessEnv = process.env): DoctorReport {
  const home = env.HOME ?? os.homedir();
  const runtimes = Object.entries(CLI).map(([runtime, cli]): RuntimeCheck => {
    const file = findExecutable(cli.bin, root, env);
    const fromEnv = cli.env.filter((name) => (env[name] ?? '') !== '');
    const fromFiles = cli.files.filter((f) => fs.existsSync(path.join(home, f)));
    const auth = fromEnv.length > 0 || fromFiles.length > 0;
    return {
      runtime,
      installed: file !== null,
      path: file,
      version: file ? version(file) : null,
      auth,
      authDetail: auth ? [...fromEnv.map((n) => `$${n}`), ...fromFiles.map((f) => `~/${f}`)].join(', ') : `set one of ${cli.env.slice(0, 2).map((n) => `$${n}`).join(', ')} or log in with \`${cli.bin}\``,
    };
  });
  const byName = new Map(runtimes.map((r) => [r.runtime, r]));
  const problems: string[] = [];
  const roles = ROLE_NAMES.map((role) => {
    const c = config.roles[role];
    const check = (name: string | undefined) => {
      if (name === undefined || name === 'script') return null;
      if (name === 'command') return c.command === undefined ? 'command runtime without a command' : null;
      const r = byName.get(name);
      if (!r?.installed) return `${name} is not installed`;
      if (!r.auth) return `${name} has no auth configured`;
      return null;
    };
    const problem = c.enabled ? check(c.runtime) : null;
    const fallbackOk = c.fallback !== undefined && check(c.fallback) === null;
    const usable = !c.enabled || problem === null || fallbackOk;
    if (!usable) problems.push(`role ${role}: ${problem ?? ''}`);
    return { role, enabled: c.enabled, runtime: c.runtime ?? null, fallback: c.fallback ?? null, usable, problem };
  });
  if (!config.roles.builder.enabled) problems.push('no builder runtime: set "runtime" or roles.builder in .loom/config.json');
  const { problem: sandboxProblem, ...sandbox } = sandboxSummary(config, env);
  if (sandboxProblem !== null) problems.push(sandboxProblem);
  return { node: process.version, git: version('git'), runtimes, roles, sandbox, problems };
}

export function renderDoctor(r: DoctorReport): string {
  const lines = [`node ${r.node}, ${r.git ?? 'git NOT FOUND'}`, '', 'Agent runtimes:'];
  for (const rt of r.runtimes) {
    lines.push(`  ${rt.runtime.padEnd(9)} ${rt.installed ? `${rt.version ?? '(version unknown)'} at ${rt.path ?? '?'}` : 'not installed'}`);
    if (rt.installed) lines.push(`  ${''.padEnd(9)} auth: ${rt.auth ? `configured (${rt.authDetail})` : `MISSING — ${rt.authDetail}`}`);
  }
  lines.push('  script    built in (deterministic, follows loom-script blocks)', '  command   built in (any executable)', '', 'Roles:');
  for (const role of r.roles) {
    const what = role.role === 'champion' ? (role.enabled ? 'built in (the merge policy is code)' : 'off') : role.enabled ? `${role.runtime ?? '?'}${role.fallback ? ` (fallback ${role.fallback})` : ''}` : 'off';
    lines.push(`  ${role.role.padEnd(9)} ${what}${role.problem ? ` — ${role.problem}${role.usable ? ', the fallback will be used' : ''}` : ''}`);
  }
  lines.push('', `Sandbox: ${r.sandbox.bwrap.ok ? `${r.sandbox.bwrap.version} at ${r.sandbox.bwrap.path}` : r.sandbox.bwrap.kind === 'missing' ? 'bubblewrap not installed' : `bubblewrap cannot sandbox here (${r.sandbox.bwrap.detail})`}`, `  ${r.sandbox.text}`);
  lines.push('', r.problems.length === 0 ? 'Everything a configured role needs is in place.' : `Problems:\n${r.problems.map((p) => `  - ${p}`).join('\n')}`);
  return lines.join('\n');
}
