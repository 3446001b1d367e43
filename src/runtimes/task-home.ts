/**
 * `taskHome`: where an agent CLI keeps its settings and sessions for one task. Invariant: the same
 * task (its state dir, else its working directory) always gets the same home, so a resume finds
 * its session, and different tasks never share one.
 */
import { createHash } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import type { RunContext } from './runtime.js';

/**
 * The CLI's home for a task: `<state_dir>/<name>` when Loom gave the task a state dir, else a temp
 * dir named after the working directory (a resume must use the same cwd anyway).
 */
export function taskHome(context: RunContext, name: string): string {
  const stateDir = context.vars.state_dir;
  if (stateDir !== undefined && stateDir !== '') return path.join(stateDir, name);
  const key = createHash('sha256').update(path.resolve(context.cwd)).digest('hex').slice(0, 16);
  return path.join(os.tmpdir(), `loom-${name}-${key}`);
}
