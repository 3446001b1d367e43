/**
 * What every process-based runtime shares: the prompt and instructions handed over as files in a
 * private temp dir, the allowlisted environment, one `runCommand` run with its watchdogs, the
 * output collected (tail kept) and streamed, and the command's outcome mapped to a `RunResult`.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { agentEnv } from '../process/agent-env.js';
import { runCommand } from '../process/run-command.js';
import type { RunCommandResult } from '../process/run-command.js';
import type { RunContext, RunResult } from './runtime.js';

/** Output kept for the result, in characters; the end matters most (verdicts, last error). */
export const OUTPUT_LIMIT = 1024 * 1024;

/** `issue` → `LOOM_ISSUE`, `issueTitle` / `issue-title` → `LOOM_ISSUE_TITLE`. */
export function varName(key: string): string {
  return `LOOM_${key
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/[^A-Za-z0-9]+/g, '_')
    .toUpperCase()}`;
}

/** Quotes one word for `sh -c`. */
export function shellQuote(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/** Runs `command` (via `sh -c`, in `context.cwd`) as the agent for `context`. Never throws. */
export async function runAgentProcess(command: string, context: RunContext): Promise<RunResult> {
  const started = Date.now();
  let dir: string | null = null;
  try {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'loom-agent-'));
    const promptFile = path.join(dir, 'prompt.md');
    const instructionsFile = path.join(dir, 'instructions.md');
    fs.writeFileSync(promptFile, context.prompt);
    fs.writeFileSync(instructionsFile, context.instructions);
    const vars = Object.fromEntries(Object.entries(context.vars).map(([key, value]) => [varName(key), value]));
    // Loom's own variables come last: a task variable named `role` must not change the role.
    const env = agentEnv(process.env, {
      ...vars,
      LOOM_ROLE: context.role,
      LOOM_ATTEMPT: String(context.attempt),
      LOOM_PROMPT_FILE: promptFile,
      LOOM_INSTRUCTIONS_FILE: instructionsFile,
    });
    const output = new OutputTail(OUTPUT_LIMIT);
    // One decoder for both streams: runCommand does not say which stream a chunk came from. A
    // multi-byte character split across chunks is rare enough in agent output to accept that.
    const decoder = new StringDecoder('utf8');
    const take = (text: string) => {
      if (text === '') return;
      output.add(text);
      guarded(() => context.onOutput?.(text));
    };
    const result = await runCommand({
      command,
      cwd: context.cwd,
      env,
      stallTimeout: context.stallTimeout,
      timeout: context.timeout,
      signal: context.signal,
      onStart: (pid) => guarded(() => context.onStart?.(pid)),
      onOutput: (chunk) => take(decoder.write(chunk)),
    });
    take(decoder.end());
    return toRunResult(result, output.text(), context);
  } catch (error) {
    // Only our own setup can throw here (temp files, a callback); still a value, never a throw.
    return { outcome: 'failed', output: '', exitCode: null, message: `could not be run: ${(error as Error).message}`, duration: Date.now() - started };
  } finally {
    if (dir !== null) fs.rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Runs a caller's callback, dropping its exceptions: thrown inside runCommand's event handlers
 * they would crash the process or leave the agent running with nobody watching it.
 */
function guarded(callback: () => void): void {
  try {
    callback();
  } catch {
    // The callback's own failure is the caller's concern; the run carries on under its watchdogs.
  }
}

function seconds(ms: number): string {
  return `${ms / 1000}s`;
}

function lastLine(output: string): string {
  const lines = output.split(/\r?\n/).filter((l) => l.trim() !== '');
  return lines[lines.length - 1]?.trim() ?? '';
}

function toRunResult(result: RunCommandResult, output: string, context: RunContext): RunResult {
  const base = { output, exitCode: result.exitCode, duration: result.duration };
  switch (result.outcome) {
    case 'exited': {
      if (result.exitCode === 0) return { ...base, outcome: 'success', message: '' };
      const last = lastLine(output);
      const how = result.exitCode === null ? 'was killed by a signal' : `exited with code ${result.exitCode}`;
      return { ...base, outcome: 'failed', message: last === '' ? how : `${how}: ${last}` };
    }
    case 'stalled':
      return { ...base, outcome: 'stalled', message: `produced no output for ${seconds(context.stallTimeout)} and was killed` };
    case 'timeout':
      return { ...base, outcome: 'timeout', message: `was still running after ${seconds(context.timeout)} and was killed` };
    case 'aborted':
      return { ...base, outcome: 'aborted', message: 'was stopped' };
    case 'spawn-error':
      return { ...base, outcome: 'failed', message: `could not start: ${result.error ?? 'unknown error'}` };
  }
}

/** Keeps the last `limit` characters of a stream without re-copying the whole text per chunk. */
class OutputTail {
  private chunks: string[] = [];
  private length = 0;

  constructor(private readonly limit: number) {}

  add(text: string): void {
    this.chunks.push(text);
    this.length += text.length;
    // Compact only once we hold twice the limit, so the cost stays linear in the output size.
    if (this.length > this.limit * 2) {
      const kept = this.text();
      this.chunks = [kept];
      this.length = kept.length;
    }
  }

  text(): string {
    const all = this.chunks.join('');
    return all.length > this.limit ? all.slice(all.length - this.limit) : all;
  }
}
