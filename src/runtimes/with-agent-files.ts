/**
 * `withAgentFiles`: one agent run with its prompt and instructions as files in a private temp
 * dir, its events watched by a `RetryCap`. Invariant: it never throws — a failure of Loom's own
 * setup is a failed result — and the temp dir is gone when it returns; the dir of a process
 * killed before it could remove it (named after that process) is removed by
 * `removeOrphanAgentFiles`, which every iteration's cleanup runs.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { cliRetriesOf, RetryCap } from './retry-cap.js';
import type { RunContext, RunFailure, RunResult } from './runtime.js';

/** The files of one run, in its private temp dir (removed after the run). */
export interface AgentFiles {
  dir: string;
  promptFile: string;
  instructionsFile: string;
}

/** The prefixes of the runtimes' temp dirs, each followed by the owner's pid and `-XXXXXX`. */
const AGENT_FILES = /^loom-(?:agent|claude-run|opencode-run|gemini|codex)-(\d+)-[^-/]+$/;

/**
 * Removes the temp dirs of agent runs whose process is gone — a shepherd or role killed before
 * its run's `finally` — from `tmp` (default: the system temp dir). Returns the names removed.
 */
export function removeOrphanAgentFiles(isAlive: (pid: number) => boolean, tmp: string = os.tmpdir()): string[] {
  let names: string[];
  try {
    names = fs.readdirSync(tmp);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    const pid = AGENT_FILES.exec(name)?.[1];
    if (pid === undefined || isAlive(Number(pid))) continue;
    fs.rmSync(path.join(tmp, name), { recursive: true, force: true });
    removed.push(name);
  }
  return removed;
}

/**
 * Makes a temp dir (`<tmp>/<prefix><pid>-XXXXXX`) with the prompt and instructions files, runs `run`
 * with them and removes the dir. Never throws: a failure of our own setup becomes a failed
 * result ("could not be run: ..."), with `failure` when given.
 *
 * `run` gets the context to use for the run: the caller's, with its events watched by a
 * `RetryCap` — one retry of the CLI's own beyond `cliRetries` in a row stops the run, which then
 * fails as transient.
 */
export async function withAgentFiles(prefix: string, request: RunContext, run: (files: AgentFiles, context: RunContext) => Promise<RunResult>, failure?: RunFailure): Promise<RunResult> {
  const started = Date.now();
  let dir: string | null = null;
  const cap = new RetryCap(cliRetriesOf(request), request.signal);
  try {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), `${prefix}${process.pid}-`));
    const files: AgentFiles = { dir, promptFile: path.join(dir, 'prompt.md'), instructionsFile: path.join(dir, 'instructions.md') };
    fs.writeFileSync(files.promptFile, request.prompt);
    fs.writeFileSync(files.instructionsFile, request.instructions);
    const context: RunContext = {
      ...request,
      signal: cap.signal,
      onEvent: (event) => {
        cap.note(event);
        request.onEvent?.(event);
      },
    };
    return cap.verdict(await run(files, context));
  } catch (error) {
    // Only our own setup can throw here (temp files, the home); still a value, never a throw.
    return { outcome: 'failed', output: '', exitCode: null, message: `could not be run: ${(error as Error).message}`, duration: Date.now() - started, ...(failure === undefined ? {} : { failure }) };
  } finally {
    cap.dispose();
    if (dir !== null) fs.rmSync(dir, { recursive: true, force: true });
  }
}
