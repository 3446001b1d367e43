/**
 * Starts Loom's own background processes (`loom shepherd`, `loom role`, iterations) detached:
 * own process group and session, output appended to a log file, not tied to the launcher's
 * lifetime — the launcher may exit at once and the child carries on.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { processStart } from './process-identity.js';

/** argv prefix that runs this same Loom CLI (works from `dist/` and under tsx). */
export function loomCommand(): { command: string; args: string[] } {
  const entry = process.env.LOOM_CLI_ENTRY ?? fileURLToPath(new URL('../cli/main.js', import.meta.url));
  const resolved = fs.existsSync(entry) ? entry : entry.replace(/\.js$/, '.ts');
  return { command: process.execPath, args: [...process.execArgv, resolved] };
}

export interface Launched {
  pid: number;
  pid_start: string | null;
}

/** Launches `loom <args>` detached with output to `logFile`. Throws if the spawn itself fails. */
export function launchLoomDetached(args: string[], options: { cwd: string; logFile: string; env?: NodeJS.ProcessEnv }): Launched {
  fs.mkdirSync(path.dirname(options.logFile), { recursive: true });
  const out = fs.openSync(options.logFile, 'a');
  try {
    const { command, args: prefix } = loomCommand();
    const child = spawn(command, [...prefix, ...args], {
      cwd: options.cwd,
      detached: true,
      stdio: ['ignore', out, out],
      env: options.env ?? process.env,
    });
    child.on('error', () => undefined);
    if (child.pid === undefined) throw new Error(`could not start loom ${args.join(' ')}`);
    child.unref();
    return { pid: child.pid, pid_start: processStart(child.pid) };
  } finally {
    fs.closeSync(out);
  }
}

/** A log file name for a background task: `<kind>-<name>-<UTC time>.log`. */
export function logFileFor(logsDir: string, kind: string, name: string, now: Date): string {
  const stamp = now.toISOString().replace(/[:.]/g, '-');
  return path.join(logsDir, `${kind}-${name}-${stamp}.log`);
}

/** When the task whose log `logFileFor` named `name` started (ms); null for another name. */
export function logStartedAt(name: string): number | null {
  const m = /-(\d{4}-\d{2}-\d{2})T(\d{2})-(\d{2})-(\d{2})-(\d{3})Z\.log$/.exec(name);
  return m === null ? null : Date.parse(`${m[1]}T${m[2]}:${m[3]}:${m[4]}.${m[5]}Z`);
}
