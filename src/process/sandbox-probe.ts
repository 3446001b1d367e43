/**
 * Whether bubblewrap can sandbox an agent on this machine: `bwrap` is on PATH, and the kernel lets
 * it create the namespaces Loom's sandbox uses. Checked by running one empty sandbox with the same
 * namespace options as an agent run (`BWRAP_ISOLATION`), so "works" here means an agent run can
 * start. The answer is kept for the life of the process (per PATH).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { LoomConfig } from '../core/config-model.js';
import { ROLE_NAMES } from '../core/vocabulary.js';

/**
 * The isolation of every sandbox: its own user (where the kernel allows), pid, IPC, UTS and cgroup
 * namespaces; no capabilities (root inside could otherwise unmount what hides the host); killed
 * with the process that started it.
 */
export const BWRAP_ISOLATION = ['--unshare-user-try', '--unshare-pid', '--unshare-ipc', '--unshare-uts', '--unshare-cgroup-try', '--die-with-parent', '--cap-drop', 'ALL'] as const;

export type BwrapStatus =
  | { ok: true; path: string; version: string }
  /** `missing`: no `bwrap` on PATH; `refused`: it is there but cannot create a sandbox. */
  | { ok: false; kind: 'missing' | 'refused'; path: string | null; detail: string };

/** `bwrap` on the PATH of `env`, or null. */
export function findBwrap(env: NodeJS.ProcessEnv = process.env): string | null {
  for (const dir of (env.PATH ?? '').split(path.delimiter)) {
    if (dir === '' || !path.isAbsolute(dir)) continue;
    const candidate = path.join(dir, 'bwrap');
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      if (fs.statSync(candidate).isFile()) return candidate;
    } catch {
      // not in this directory
    }
  }
  return null;
}

const known = new Map<string, BwrapStatus>();

/** Whether bubblewrap is installed and works here (checked once per PATH). */
export function bwrapStatus(env: NodeJS.ProcessEnv = process.env): BwrapStatus {
  const key = env.PATH ?? '';
  const cached = known.get(key);
  if (cached !== undefined) return cached;
  const status = probe(env);
  known.set(key, status);
  return status;
}

function probe(env: NodeJS.ProcessEnv): BwrapStatus {
  const bwrap = findBwrap(env);
  if (bwrap === null) return { ok: false, kind: 'missing', path: null, detail: 'no `bwrap` on PATH' };
  const run = spawnSync(bwrap, ['--ro-bind', '/', '/', '--dev', '/dev', '--proc', '/proc', '--tmpfs', '/tmp', ...BWRAP_ISOLATION, '--', 'true'], { encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'pipe', 'pipe'] });
  if (run.status !== 0) {
    const said = `${run.stderr ?? ''}`.trim().split('\n').at(-1) ?? '';
    const detail = run.error !== undefined ? run.error.message : said !== '' ? said : `exit ${String(run.status ?? run.signal)}`;
    return { ok: false, kind: 'refused', path: bwrap, detail };
  }
  const version = spawnSync(bwrap, ['--version'], { encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'pipe', 'pipe'] });
  return { ok: true, path: bwrap, version: `${version.stdout ?? ''}`.trim().split('\n')[0] || 'bubblewrap' };
}

/** What is wrong and what to do, in one line (`sandbox "bwrap": …`). */
export function bwrapProblem(status: Exclude<BwrapStatus, { ok: true }>): string {
  const optOut = 'or set "sandbox": "none" in .loom/config.json to run agents without a sandbox';
  if (status.kind === 'missing') return `sandbox "bwrap": bubblewrap is not installed (no \`bwrap\` on PATH); install it (Debian/Ubuntu: \`sudo apt-get install bubblewrap\`, Fedora: \`sudo dnf install bubblewrap\`), ${optOut}`;
  return `sandbox "bwrap": bubblewrap cannot create a sandbox here (${status.detail}); the kernel or a container refuses the namespaces it needs: allow unprivileged user namespaces (\`sudo sysctl kernel.unprivileged_userns_clone=1\`; on Ubuntu 24.04+ \`sudo sysctl kernel.apparmor_restrict_unprivileged_userns=0\`), ${optOut}`;
}

/** How the configured roles' agents are sandboxed here, for `loom doctor` and `loom status`. */
export interface SandboxSummary {
  /** Roles that run an agent, by their sandbox. */
  sandboxed: string[];
  unsandboxed: string[];
  /** bubblewrap on this machine. */
  bwrap: BwrapStatus;
  /** One line for the reader. */
  text: string;
  /** Set when a role is configured for bubblewrap that cannot sandbox here (its runs do not start). */
  problem: string | null;
}

/** The sandbox of every role that runs an agent (the Champion runs none), and whether bubblewrap works. */
export function sandboxSummary(config: LoomConfig, env: NodeJS.ProcessEnv = process.env): SandboxSummary {
  const agents = ROLE_NAMES.filter((role) => role !== 'champion' && config.roles[role].enabled);
  const sandboxed = agents.filter((role) => config.roles[role].sandbox.type === 'bwrap');
  const unsandboxed = agents.filter((role) => config.roles[role].sandbox.type !== 'bwrap');
  const bwrap = bwrapStatus(env);
  const problem = sandboxed.length > 0 && !bwrap.ok ? bwrapProblem(bwrap) : null;
  let text: string;
  if (unsandboxed.length > 0) {
    const fix = bwrap.ok ? `${bwrap.version} works here: set "sandbox": "bwrap" in .loom/config.json` : bwrap.kind === 'missing' ? 'install bubblewrap (`bwrap`) and set "sandbox": "bwrap"' : `bubblewrap cannot sandbox here (${bwrap.detail}): allow unprivileged user namespaces, then set "sandbox": "bwrap"`;
    text = `agents are NOT sandboxed (${unsandboxed.join(', ')}): they reach everything you can, your home included; ${fix}`;
  } else if (sandboxed.length > 0) {
    text = bwrap.ok ? `agents run in bubblewrap (${bwrap.version}): each sees only its worktree and task home` : `agents are configured for bubblewrap, which cannot sandbox here: their runs do not start`;
  } else text = 'no role runs an agent';
  return { sandboxed, unsandboxed, bwrap, text, problem };
}
