/**
 * Real child processes for tests: TypeScript fixtures run in their own Node process (with their
 * output lines collected), processes that are known to be dead, and waits on a condition with a
 * deadline instead of fixed sleeps.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { isProcessAlive } from '../../src/process/process-identity.js';

const projectRoot = fileURLToPath(new URL('../..', import.meta.url));

/** Polls `condition` every few ms; throws (naming `what`) when `timeoutMs` passes first. */
export async function waitUntil(condition: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

export interface Child {
  process: ChildProcess;
  pid: number;
  lines: string[];
  stderr: string;
  /** undefined while running. */
  exitCode: number | null | undefined;
  signal: NodeJS.Signals | null;
}

function track(proc: ChildProcess, children: Child[]): Child {
  if (proc.pid === undefined) throw new Error('child process did not start');
  const child: Child = { process: proc, pid: proc.pid, lines: [], stderr: '', exitCode: undefined, signal: null };
  let partial = '';
  proc.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    const parts = (partial + chunk).split('\n');
    partial = parts.pop() ?? '';
    child.lines.push(...parts);
  });
  proc.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    child.stderr += chunk;
  });
  proc.on('exit', (code, signal) => {
    child.exitCode = code;
    child.signal = signal;
  });
  children.push(child);
  return child;
}

/** Runs a TypeScript fixture (`node --import tsx`) with `args`; the child is added to `children`. */
export function runFixture(children: Child[], script: string, args: string[]): Child {
  return track(spawn(process.execPath, ['--import', 'tsx', script, ...args], { cwd: projectRoot, stdio: ['ignore', 'pipe', 'pipe'] }), children);
}

/** Runs plain JavaScript (`node -e code args…`); the child is added to `children`. */
export function runNodeScript(children: Child[], code: string, args: string[] = []): Child {
  return track(spawn(process.execPath, ['-e', code, ...args], { stdio: ['ignore', 'pipe', 'pipe'] }), children);
}

/** A plain Node process that stays alive (until killed) and prints `up` once running. */
export function runIdleProcess(children: Child[]): Child {
  return runNodeScript(children, "process.stdout.write('up\\n'); setInterval(() => {}, 1000);");
}

export async function waitForExit(child: Child, timeoutMs = 60_000): Promise<void> {
  await waitUntil(() => child.exitCode !== undefined, `process ${child.pid} to exit`, timeoutMs);
}

/** The pid of a real process that ran and is gone (reaped, not a zombie). */
export async function deadPid(children: Child[]): Promise<number> {
  const child = track(spawn(process.execPath, ['-e', ''], { stdio: 'ignore' }), children);
  await waitForExit(child);
  await waitUntil(() => !isProcessAlive(child.pid), `process ${child.pid} to be gone`);
  return child.pid;
}

/** Kills every child still running (test teardown). */
export async function killAll(children: Child[]): Promise<void> {
  for (const child of children) if (child.exitCode === undefined) child.process.kill('SIGKILL');
  for (const child of children) await waitForExit(child, 10_000);
  children.length = 0;
}

/** SIGKILLs each process group of `pids` that still runs and empties the list (a test's afterEach). */
export function killGroups(pids: number[]): void {
  for (const pid of pids.splice(0)) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}
