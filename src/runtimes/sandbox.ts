/**
 * The filesystem sandbox around an agent run (docs/security.md): the agent's command line run
 * inside bubblewrap, which shows it the system read-only, its working directory, the git data a
 * commit there needs, its task home, and a private `/tmp` — and hides the rest.
 *
 * Invariants:
 * - hidden, whatever else is shown: the user's home and every home under `/home` and `/root`,
 *   the temp directories (a private empty `/tmp` instead), `/run/user` (agent, keyring and bus
 *   sockets), the repository's main checkout with `.loom/` (state, tracker database, logs, other
 *   tasks' homes), other worktrees and their git metadata, and every path of `sandbox.hide`;
 * - shown read-write: the working directory when it is a worktree (read-only when it is the
 *   repository itself), the shared git objects and refs, the worktree's own git metadata, and
 *   the task's homes;
 * - never writable, so Loom's own git commands after the run cannot be turned against it: the
 *   repository's git config, hooks, `info/` and submodule git dirs, the main checkout's HEAD and
 *   index, the worktree's `.git` link, its metadata's links back (`commondir`, `gitdir`), its
 *   `config.worktree` and submodule git dirs;
 * - read-only from hidden places: the directories on PATH and what their links point to, so the
 *   agent's tools (installed under the home by nvm, npm or an installer) still run;
 * - no capabilities, own pid namespace (no other process visible), ended with Loom's process;
 * - network: the host's unless `sandbox.network` is false (then loopback only).
 *
 * Mounts are applied parents first, so a path shown inside a hidden one stays visible and a path
 * hidden inside a shown one stays hidden; at the same path a `sandbox.hide` entry wins.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { SandboxConfig } from '../core/config-model.js';
import { BWRAP_ISOLATION } from '../process/sandbox-probe.js';
import { shellQuote } from './shell-quote.js';

/** A run's sandbox: the role's settings and the repository whose checkout and `.loom/` it hides. */
export interface RunSandbox extends SandboxConfig {
  repoRoot: string;
}

/** What one sandboxed run needs to see beyond the system. */
export interface SandboxRequest {
  sandbox: RunSandbox;
  /** The working directory: a worktree (read-write) or the repository itself (read-only). */
  cwd: string;
  /** The agent's environment (HOME, TMPDIR, PATH are read from it). */
  env: NodeJS.ProcessEnv;
  /** Read-write: the task's homes (the agent CLI's config and sessions). */
  homes?: readonly string[];
  /** Read-only: the run's prompt files, the agent's own program. */
  readOnly?: readonly string[];
}

/**
 * One mount: `ro`/`rw` show a host path at the same place; `tmpfs` hides a directory behind an
 * empty one — writable (and gone after the run) for the temp directories and the home, read-only
 * elsewhere, so a write there fails instead of vanishing; `blank` hides a file behind an empty one.
 */
export interface Mount {
  kind: 'ro' | 'rw' | 'tmpfs' | 'blank';
  path: string;
  /** For `tmpfs`: whether the agent may write there. */
  writable?: boolean;
}

/** Order of mounts at the same depth: system hides under what is shown, `sandbox.hide` over it. */
const RANK = { hidden: 0, shown: 1, hide: 2 } as const;

/** The real path of `p` (its nearest existing parent's, for a path not there yet). */
function real(p: string): string {
  const target = path.resolve(p);
  let probe = target;
  while (!fs.existsSync(probe) && path.dirname(probe) !== probe) probe = path.dirname(probe);
  try {
    return path.join(fs.realpathSync(probe), path.relative(probe, target));
  } catch {
    return target;
  }
}

/** The home of the account in the password database ('' for a uid without an entry, as in some containers). */
function accountHome(): string {
  try {
    return os.userInfo().homedir;
  } catch {
    return '';
  }
}

function isUnder(p: string, parent: string): boolean {
  const relative = path.relative(parent, p);
  return relative === '' || (!relative.startsWith('..') && !path.isAbsolute(relative));
}

function kindOf(p: string): 'dir' | 'file' | null {
  try {
    return fs.statSync(p).isDirectory() ? 'dir' : 'file';
  } catch {
    return null;
  }
}

/** Where a worktree's git data lives: its `.git` link, its own metadata dir and the shared git dir. */
interface GitLayout {
  /** `<cwd>/.git` when it is a link file (a linked worktree). */
  link: string | null;
  /** The worktree's own metadata (`<common>/worktrees/<name>`), for a linked worktree. */
  own: string | null;
  /** The repository's git directory (objects, refs, config, hooks). */
  common: string;
}

function gitLayout(cwd: string): GitLayout | null {
  const dotGit = path.join(cwd, '.git');
  const kind = kindOf(dotGit);
  if (kind === 'dir') return { link: null, own: null, common: real(dotGit) };
  if (kind !== 'file') return null;
  const match = /^gitdir:\s*(.+?)\s*$/m.exec(fs.readFileSync(dotGit, 'utf8'));
  if (match?.[1] === undefined) return null;
  const own = real(path.resolve(cwd, match[1]));
  let common = own;
  try {
    common = real(path.resolve(own, fs.readFileSync(path.join(own, 'commondir'), 'utf8').trim()));
  } catch {
    // no commondir: the git dir is its own common dir
  }
  return { link: real(dotGit), own: own === common ? null : own, common };
}

/** The directory a program needs shown: its package's `node_modules` tree, else its own directory. */
function toolRoot(file: string): string {
  const parts = file.split(path.sep);
  const at = parts.indexOf('node_modules');
  return at > 0 ? parts.slice(0, at + 1).join(path.sep) : path.dirname(file);
}

/** The program a command line starts: after `NAME=value` assignments, its first word, unquoted when single-quoted. */
function programWord(command: string): string {
  if (path.isAbsolute(command) && kindOf(command) === 'file') return command;
  const rest = command.trimStart().replace(/^(?:[A-Za-z_][A-Za-z0-9_]*=\S*\s+)*/, '');
  if (rest.startsWith("'")) {
    const end = rest.indexOf("'", 1);
    return end > 0 ? rest.slice(1, end) : '';
  }
  return rest.split(/\s+/)[0] ?? '';
}

/**
 * What shows an agent's program in the sandbox: the file, its directory, and the package tree it
 * links into (what would uncover a whole home or the repository is left out by `sandboxMounts`).
 * `command`: the program, or a command line starting with it (a path, relative ones against
 * `cwd`, or a name on PATH).
 */
export function programPaths(command: string, env: NodeJS.ProcessEnv, cwd: string): string[] {
  const program = programWord(command);
  if (program === '') return [];
  const candidates = program.includes('/') ? [path.resolve(cwd, program)] : (env.PATH ?? '').split(path.delimiter).filter((d) => path.isAbsolute(d)).map((d) => path.join(d, program));
  const found = candidates.find((c) => kindOf(c) === 'file');
  if (found === undefined) return [];
  return [...new Set([real(found), real(path.dirname(found)), toolRoot(real(found))])];
}

/** The mounts of one sandboxed run, in the order bubblewrap must apply them. */
export function sandboxMounts(request: SandboxRequest): Mount[] {
  const { sandbox, env } = request;
  const cwd = real(request.cwd);
  const repoRoot = real(sandbox.repoRoot);
  const home = env.HOME !== undefined && env.HOME !== '' ? env.HOME : os.homedir();
  const ranked: { mount: Mount; rank: number }[] = [];
  const add = (kind: Mount['kind'], p: string, rank: number) => ranked.push({ mount: { kind, path: p }, rank });

  // Hidden: homes, temp directories, user sockets, the main checkout (with .loom/). The agent's
  // home, temp and runtime directories stay writable (tools keep caches and sockets there),
  // empty and private.
  const dirs = (paths: readonly string[]) => [...new Set(paths.filter((p) => p !== '' && path.isAbsolute(p)).map(real))].filter((p) => p !== '/' && kindOf(p) === 'dir');
  const scratch = dirs([home, '/tmp', '/var/tmp', os.tmpdir(), env.TMPDIR ?? '', '/run/user']);
  const hidden = dirs(['/home', '/root', accountHome(), repoRoot, ...scratch]);
  for (const dir of hidden) ranked.push({ mount: { kind: 'tmpfs', path: dir, writable: scratch.includes(dir) }, rank: RANK.hidden });
  add('tmpfs', path.join(repoRoot, '.loom'), RANK.hidden);
  const isHidden = (p: string) => hidden.some((dir) => isUnder(p, dir));
  // What is shown for the agent's tools never uncovers a whole hidden directory, a home or the repository.
  const harmless = (p: string) => !hidden.includes(p) && ![repoRoot, real(home)].some((kept) => isUnder(kept, p));
  const showable = (p: string) => isHidden(p) && harmless(p);

  // The working directory and the git data a commit in it needs.
  if (cwd === repoRoot) add('ro', cwd, RANK.shown);
  else {
    add('rw', cwd, RANK.shown);
    const git = gitLayout(cwd);
    if (git !== null) {
      if (git.link !== null) add('ro', git.link, RANK.shown);
      add('rw', git.common, RANK.shown);
      for (const name of ['config', 'hooks', 'info', 'modules', 'HEAD', 'index']) add('ro', path.join(git.common, name), RANK.shown);
      add('tmpfs', path.join(git.common, 'worktrees'), RANK.shown);
      if (git.own !== null) {
        add('rw', git.own, RANK.shown);
        for (const name of ['commondir', 'gitdir', 'config.worktree', 'modules']) add('ro', path.join(git.own, name), RANK.shown);
      }
    }
  }
  for (const dir of request.homes ?? []) add('rw', real(dir), RANK.shown);
  // (What lies outside the hidden places is in sight anyway.)
  for (const p of (request.readOnly ?? []).map(real)) if (isHidden(p) && harmless(p)) add('ro', p, RANK.shown);

  // The agent's tools, where they are installed in a hidden place.
  for (const dir of (env.PATH ?? '').split(path.delimiter)) {
    if (!path.isAbsolute(dir)) continue;
    const shown = real(dir);
    if (!showable(shown) || kindOf(shown) !== 'dir') continue;
    add('ro', shown, RANK.shown);
    let entries: fs.Dirent[] = [];
    try {
      entries = fs.readdirSync(shown, { withFileTypes: true });
    } catch {
      continue;
    }
    for (const entry of entries) {
      if (!entry.isSymbolicLink()) continue;
      const target = real(path.join(shown, entry.name));
      if (kindOf(target) !== null && showable(toolRoot(target))) add('ro', toolRoot(target), RANK.shown);
    }
  }

  // What the configuration hides: absolute, ~/…, or relative to the working directory.
  for (const entry of sandbox.hide) {
    const p = real(entry === '~' ? home : entry.startsWith('~/') ? path.join(home, entry.slice(2)) : path.resolve(cwd, entry));
    const kind = kindOf(p);
    if (kind !== null) add(kind === 'dir' ? 'tmpfs' : 'blank', p, RANK.hide);
  }

  // Only what exists can be mounted; each path once (the last wins), parents before children.
  const depth = (p: string) => p.split(path.sep).filter(Boolean).length;
  const last = new Map<string, { mount: Mount; rank: number; order: number }>();
  ranked.forEach((r, order) => {
    if (r.mount.kind !== 'tmpfs' && kindOf(r.mount.path) === null) return;
    if (r.mount.kind === 'tmpfs' && kindOf(r.mount.path) !== 'dir') return;
    const previous = last.get(r.mount.path);
    if (previous === undefined || r.rank >= previous.rank) last.set(r.mount.path, { ...r, order });
  });
  return [...last.values()].sort((a, b) => depth(a.mount.path) - depth(b.mount.path) || a.rank - b.rank || a.order - b.order).map((r) => r.mount);
}

/** bubblewrap's arguments for a run (up to the command): the system read-only, then the mounts. */
export function bwrapArgs(request: SandboxRequest, mounts: readonly Mount[] = sandboxMounts(request)): string[] {
  const args = ['--ro-bind', '/', '/', '--dev', '/dev', '--proc', '/proc'];
  for (const mount of mounts) {
    if (mount.kind === 'ro') args.push('--ro-bind', mount.path, mount.path);
    else if (mount.kind === 'rw') args.push('--bind', mount.path, mount.path);
    else if (mount.kind === 'tmpfs') args.push('--tmpfs', mount.path);
    else args.push('--ro-bind', '/dev/null', mount.path);
  }
  // Last, once everything inside them is mounted: the hiding directories become read-only.
  for (const mount of mounts) if (mount.kind === 'tmpfs' && mount.writable !== true) args.push('--remount-ro', mount.path);
  args.push(...BWRAP_ISOLATION);
  if (!request.sandbox.network) args.push('--unshare-net');
  args.push('--chdir', real(request.cwd));
  return args;
}

/**
 * The git identity the agent would have found in the hidden `~/.gitconfig`, as environment
 * variables (those already set are kept), so its commits carry the same author.
 */
function gitIdentity(cwd: string, env: NodeJS.ProcessEnv): Record<string, string> {
  const identity: Record<string, string> = {};
  for (const [key, who] of [
    ['user.name', 'NAME'],
    ['user.email', 'EMAIL'],
  ] as const) {
    if (env[`GIT_AUTHOR_${who}`] !== undefined && env[`GIT_COMMITTER_${who}`] !== undefined) continue;
    const value = spawnSync('git', ['config', key], { cwd, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).stdout?.trim() ?? '';
    if (value === '') continue;
    identity[`GIT_AUTHOR_${who}`] = env[`GIT_AUTHOR_${who}`] ?? value;
    identity[`GIT_COMMITTER_${who}`] = env[`GIT_COMMITTER_${who}`] ?? value;
  }
  return identity;
}

/**
 * What git would read if it appeared, made to exist so it can be mounted read-only: the
 * repository's `hooks/` (an agent must not add a hook Loom's own git commands would run) and the
 * worktree's `config.worktree` (read once `extensions.worktreeConfig` is on, as sparse checkouts
 * turn it on). Empty, they change nothing.
 */
function guardGitFiles(cwd: string): void {
  const git = gitLayout(real(cwd));
  if (git === null) return;
  fs.mkdirSync(path.join(git.common, 'hooks'), { recursive: true });
  if (git.own !== null) fs.writeFileSync(path.join(git.own, 'config.worktree'), '', { flag: 'a' });
}

/** `command` (a `sh -c` line) run inside the sandbox by `bwrap`, and the environment to run it with. */
export function sandboxedCommand(bwrap: string, command: string, request: SandboxRequest): { command: string; env: NodeJS.ProcessEnv } {
  if (real(request.cwd) !== real(request.sandbox.repoRoot)) guardGitFiles(request.cwd);
  const words = [bwrap, ...bwrapArgs(request), '--', '/bin/sh', '-c', command];
  return { command: `exec ${words.map(shellQuote).join(' ')}`, env: { ...request.env, ...gitIdentity(request.cwd, request.env) } };
}
