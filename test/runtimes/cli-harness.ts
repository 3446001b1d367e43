/**
 * What the agent-CLI runtime tests share: the process environment cleared of the variables a
 * test sets (and put back after), a scratch git repository with a home dir beside it, and a run
 * with its events, streamed transcript and agent pid collected.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AgentEvent, AgentRuntime, RunContext, RunResult } from '../../src/runtimes/runtime.js';

/** Removes `keys` from the environment; the returned function puts back what was there. */
export function isolateEnv(keys: readonly string[]): () => void {
  const saved = new Map<string, string>();
  for (const key of keys) {
    const value = process.env[key];
    if (value !== undefined) saved.set(key, value);
    delete process.env[key];
  }
  return () => {
    for (const key of keys) {
      delete process.env[key];
      const value = saved.get(key);
      if (value !== undefined) process.env[key] = value;
    }
  };
}

/** `<tmp>/<prefix>XXXXXX` holding `repo` (an empty git repository) and the path `home` (not created). */
export function scratchRepo(prefix: string, home: string): { root: string; cwd: string; home: string } {
  const root = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), prefix)));
  const cwd = path.join(root, 'repo');
  fs.mkdirSync(cwd);
  execFileSync('git', ['init', '-q', cwd]);
  return { root, cwd, home: path.join(root, home) };
}

export interface Run {
  result: RunResult;
  events: AgentEvent[];
  streamed: string;
  pid: number | undefined;
}

/** Runs `runtime` with `context`, collecting its events, its streamed transcript and the agent's pid. */
export async function collectRun(runtime: AgentRuntime, context: RunContext): Promise<Run> {
  const events: AgentEvent[] = [];
  let streamed = '';
  let pid: number | undefined;
  const result = await runtime.run({ onEvent: (event) => events.push(event), onOutput: (text) => (streamed += text), onStart: (p) => (pid = p), ...context });
  return { result, events, streamed, pid };
}
