/**
 * Test fixtures: a real temporary git repository set up with `loom init`, and the real `loom`
 * binary run against it as a child process.
 */
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loomPaths } from '../../src/config/paths.js';
import type { LoomPaths } from '../../src/config/paths.js';
import { LocalTracker } from '../../src/tracker/local/local-tracker.js';
import { isProcessAlive } from '../../src/process/process-identity.js';

export const LOOM_BIN = fileURLToPath(new URL('../../bin/loom.js', import.meta.url));

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** A `loom` process running beside the test: everything it printed so far, and its exit code once it ended. */
export interface RunningLoom {
  process: ChildProcess;
  /** stdout and stderr as printed so far. */
  readonly out: string;
  /** undefined while it runs. */
  readonly code: number | null | undefined;
}

/** Starts `loom <args>` in `cwd` (stdin closed unless `stdin: 'pipe'`) and gathers its output. */
export function startLoom(cwd: string, args: string[], env: NodeJS.ProcessEnv = {}, stdin: 'ignore' | 'pipe' = 'ignore'): RunningLoom {
  const child = spawn(process.execPath, [LOOM_BIN, ...args], { cwd, env: { ...process.env, ...env }, stdio: [stdin, 'pipe', 'pipe'] });
  let out = '';
  let code: number | null | undefined;
  child.stdout?.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (out += c.toString()));
  child.on('close', (c) => (code = c));
  return {
    process: child,
    get out() {
      return out;
    },
    get code() {
      return code;
    },
  };
}

/** Runs `loom <args>` to completion (killed after `timeout` ms). */
export function loom(cwd: string, args: string[], env: NodeJS.ProcessEnv = {}, timeout = 60_000): RunResult {
  const r = spawnSync(process.execPath, [LOOM_BIN, ...args], { cwd, encoding: 'utf8', env: { ...process.env, ...env }, timeout });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

export interface TestRepo {
  root: string;
  paths: LoomPaths;
  writeConfig(config: Record<string, unknown>): void;
  /** A tracker handle for assertions (actor `test`). */
  tracker(): LocalTracker;
  cleanup(): void;
}

/** Where the test command's global setup left a repository set up as `makeRepo` sets one up. */
export const REPO_TEMPLATE_ENV = 'LOOM_TEST_REPO_TEMPLATE';

/**
 * Sets up a git repository with one commit and `loom init` in `root` (an empty directory): what
 * every test repository starts from.
 */
export function initRepo(root: string): void {
  const git = (...args: string[]) => spawnSync('git', args, { cwd: root, encoding: 'utf8' });
  git('init', '-q', '-b', 'main');
  fs.writeFileSync(path.join(root, 'README.md'), '# sample\n');
  git('add', '.');
  git('-c', 'user.name=Loom Tests', '-c', 'user.email=tests@localhost', 'commit', '-qm', 'initial');
  const init = loom(root, ['init']);
  if (init.code !== 0) throw new Error(`loom init failed: ${init.stderr}`);
}

let localTemplate: string | null = null;

/**
 * A repository set up by `initRepo` to copy: the global setup's when there is one (made once for
 * the whole run), else one made on first use in this process. A copy costs a few milliseconds
 * where `git init`, a commit and `loom init` cost about 0.3 s of CPU, in over 200 tests.
 */
function repoTemplate(): string {
  const shared = process.env[REPO_TEMPLATE_ENV];
  if (shared && fs.existsSync(path.join(shared, '.loom', 'config.json'))) return shared;
  if (localTemplate && fs.existsSync(localTemplate)) return localTemplate;
  const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'loom-repo-template-')));
  initRepo(dir);
  process.once('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  localTemplate = dir;
  return dir;
}

export function makeRepo(config: Record<string, unknown> = {}): TestRepo {
  const root = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'loom-repo-')));
  fs.cpSync(repoTemplate(), root, { recursive: true });
  const paths = loomPaths(root);
  const trackers: LocalTracker[] = [];
  const repo: TestRepo = {
    root,
    paths,
    writeConfig: (c) => fs.writeFileSync(paths.config, JSON.stringify(c, null, 2)),
    tracker: () => {
      const t = new LocalTracker({ path: paths.trackerDb, actor: 'test' });
      trackers.push(t);
      return t;
    },
    cleanup: () => {
      for (const t of trackers) t.dispose();
      killLeftovers(paths);
      removeTestDir(root);
    },
  };
  repo.writeConfig(config);
  return repo;
}

/** Kills any process a test left behind (recorded in progress files or the lock). */
export function killLeftovers(paths: LoomPaths): void {
  const pids: number[] = [];
  try {
    for (const name of fs.readdirSync(paths.progress)) {
      try {
        const p = JSON.parse(fs.readFileSync(path.join(paths.progress, name), 'utf8')) as { pid?: number; agent_pid?: number };
        if (p.pid) pids.push(p.pid);
        if (p.agent_pid) pids.push(p.agent_pid);
      } catch {
        // ignore torn files
      }
    }
  } catch {
    // no progress dir
  }
  // A daemon running in the background (`loom start --detach`) holds the lock; a stale lock's pid
  // may belong to someone else by now, so only the process that took it is killed.
  try {
    const lock = JSON.parse(fs.readFileSync(paths.lock, 'utf8')) as { pid?: number; pid_start?: string | null };
    if (lock.pid && lock.pid !== process.pid && isProcessAlive(lock.pid, lock.pid_start ?? null)) pids.unshift(lock.pid);
  } catch {
    // no lock
  }
  for (const pid of pids) {
    for (const target of [-pid, pid]) {
      try {
        process.kill(target, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
}

export interface DaemonHandle {
  child: ChildProcess;
  output(): string;
  /** Resolves with the exit code once the daemon exits (or rejects after `timeoutMs`). */
  exited(timeoutMs: number): Promise<number | null>;
}

export function startDaemon(cwd: string, args: string[] = ['start'], env: NodeJS.ProcessEnv = {}): DaemonHandle {
  const child = spawn(process.execPath, [LOOM_BIN, ...args], { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  child.stdout.on('data', (c: Buffer) => (text += c.toString()));
  child.stderr.on('data', (c: Buffer) => (text += c.toString()));
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return {
    child,
    output: () => text,
    exited: (timeoutMs) =>
      Promise.race([
        exit,
        new Promise<number | null>((_, reject) => setTimeout(() => reject(new Error(`daemon did not exit within ${timeoutMs} ms; output:\n${text}`)), timeoutMs).unref()),
      ]),
  };
}

/** Polls `condition` until it returns a truthy value, or fails with `message` after `timeoutMs`. */
export async function until<T>(condition: () => T | Promise<T>, timeoutMs: number, message: string | (() => string)): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await condition();
    if (value) return value;
    // A function: what it says when the time is up (output gathered meanwhile, for one).
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${typeof message === 'function' ? message() : message}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Every file under `dir` with size, mtime and content, to prove a command changed nothing. */
export function fingerprint(dir: string): Record<string, string> {
  const result: Record<string, string> = {};
  const walk = (d: string) => {
    for (const entry of fs.readdirSync(d, { withFileTypes: true })) {
      const full = path.join(d, entry.name);
      if (entry.isDirectory()) walk(full);
      else {
        const st = fs.statSync(full);
        // Never open SQLite files here: closing any descriptor of a file drops every POSIX lock
        // this process holds on it, which would break a tracker connection the test has open.
        // Size, inode and mtime change on every SQLite write.
        const content = /\.db(-wal|-shm)?$/.test(entry.name) ? `ino ${st.ino}` : fs.readFileSync(full).toString('base64');
        result[path.relative(dir, full)] = `${st.size}:${st.mtimeMs}:${content}`;
      }
    }
  };
  walk(dir);
  return result;
}

/**
 * A builder command that journals `start N` / `end N` around a sleep and then decides that the
 * issue needs no change (`NO CHANGES NEEDED: …`, so Loom closes it). It holds an flock on a
 * per-issue lock file while it works, so a second builder for the same issue running at the same
 * time journals `overlap N` instead (the kernel drops the lock when a builder is killed).
 */
export function journalBuilder(journal: string, seconds: number): string {
  const body = `echo "start $LOOM_ISSUE" >> '${journal}'; sleep ${seconds}; echo "end $LOOM_ISSUE" >> '${journal}'; echo "NO CHANGES NEEDED: journalled $LOOM_ISSUE"`;
  return `flock -n "${journal}.lock-$LOOM_ISSUE" sh -c "${body.replace(/"/g, '\\"')}" || echo "overlap $LOOM_ISSUE" >> '${journal}'`;
}

/** Parses a journal into per-issue [start, end] intervals (by line order) and the peak concurrency. */
export function readJournal(journal: string): { starts: Map<number, number>; ends: Map<number, number>; peak: number; overlapping: number[] } {
  const lines = fs.existsSync(journal) ? fs.readFileSync(journal, 'utf8').trim().split('\n').filter(Boolean) : [];
  const starts = new Map<number, number>();
  const ends = new Map<number, number>();
  const open = new Set<number>();
  const overlapping: number[] = [];
  let peak = 0;
  for (const line of lines) {
    const [word, n] = line.split(' ');
    const issue = Number(n);
    if (word === 'overlap') overlapping.push(issue);
    else if (word === 'start') {
      open.add(issue);
      starts.set(issue, (starts.get(issue) ?? 0) + 1);
      peak = Math.max(peak, open.size);
    } else if (word === 'end') {
      open.delete(issue);
      ends.set(issue, (ends.get(issue) ?? 0) + 1);
    }
  }
  return { starts, ends, peak, overlapping };
}

/** Pids of live (non-zombie) processes whose working directory is `root` or inside it. */
export function processesIn(root: string): number[] {
  const pids: number[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const cwd = fs.readlinkSync(`/proc/${name}/cwd`);
      const stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
      const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
      if ((cwd === root || cwd.startsWith(`${root}/`)) && state !== 'Z') pids.push(Number(name));
    } catch {
      // gone, or not ours to read
    }
  }
  return pids;
}

/**
 * Removes a test's directory: first every process still working in it (a daemon's detached
 * iterations, roles and shepherds outlive a SIGKILL of the daemon and go on writing there), then
 * the files, retried while a process that was ending still removes or adds one (ENOTEMPTY).
 */
export function removeTestDir(root: string): void {
  for (let quiet = 0, round = 0; quiet < 2 && round < 50; round += 1) {
    const pids = processesIn(root);
    quiet = pids.length === 0 ? quiet + 1 : 0;
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
  fs.rmSync(root, { recursive: true, force: true, maxRetries: 20, retryDelay: 50 });
}

/**
 * Runs `loom <args>` without blocking this process — needed when the test itself serves HTTP
 * (a fake model API) that the command's children talk to.
 */
export function loomAsync(cwd: string, args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 120_000): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [LOOM_BIN, ...args], { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
