/**
 * The pieces every agent-CLI runtime shares: the prompt and instructions handed over as files in
 * a private temp dir, Loom's own variables in the environment, one `runCommand` run with its
 * watchdogs and its output decoded and split into lines, the watchdog outcomes mapped to a
 * `RunResult`, the per-task home, and the transcript lines written for `loom logs`.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { runCommand } from '../process/run-command.js';
import type { RunCommandResult } from '../process/run-command.js';
import type { AgentEvent, RunContext, RunFailure, RunResult } from './runtime.js';

/** Output kept for the result, in characters; the end matters most (verdicts, last error). */
export const OUTPUT_LIMIT = 1024 * 1024;

/** Longest transcript line for a tool call or result, in characters. */
const TRANSCRIPT_LIMIT = 400;

/** A run's result before its outcome and message are known. */
export type RunBase = Omit<RunResult, 'outcome' | 'message'>;

/** The files of one run, in its private temp dir (removed after the run). */
export interface AgentFiles {
  dir: string;
  promptFile: string;
  instructionsFile: string;
}

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

/** How many times in a row an agent CLI may retry on its own when the run does not say (`cliRetries`). */
export const DEFAULT_CLI_RETRIES = 2;

/** The CLI's retries the run allows in a row. */
export function cliRetriesOf(context: RunContext): number {
  return context.cliRetries ?? DEFAULT_CLI_RETRIES;
}

/**
 * Makes a temp dir (`<tmp>/<prefix>XXXXXX`) with the prompt and instructions files, runs `run`
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
    dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
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

/**
 * Counts an agent CLI's own retries (`retrying` events) in a row — any other event but the session
 * id is progress and resets the count — and aborts the run on the first one beyond `limit`. Agent CLIs retry failed
 * model requests with growing waits, for minutes; Loom would rather fail the run as transient and
 * reschedule it (backing off the runtime on a rate limit, or failing over to the role's fallback).
 */
export class RetryCap {
  private readonly controller = new AbortController();
  private readonly onOuterAbort = () => this.controller.abort();
  private inARow = 0;
  private lastReason = '';
  private tripped = false;

  constructor(
    private readonly limit: number,
    private readonly outer: AbortSignal | undefined,
  ) {
    if (outer?.aborted === true) this.controller.abort();
    else outer?.addEventListener('abort', this.onOuterAbort, { once: true });
  }

  /** Aborted when the caller's signal is, or when the CLI retried once too often. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  note(event: AgentEvent): void {
    // A session id is no progress: some CLIs report it only once a request got through, or late.
    if (event.type === 'session') return;
    if (event.type !== 'retrying') {
      this.inARow = 0;
      return;
    }
    // A retry the CLI has a fallback for (another transport) neither counts nor resets.
    if (event.fallback === true) return;
    this.inARow += 1;
    this.lastReason = event.reason;
    if (this.inARow > this.limit && !this.tripped) {
      this.tripped = true;
      this.controller.abort();
    }
  }

  /** The run's result, or — when this cap stopped it — a transient failure saying why. */
  verdict(result: RunResult): RunResult {
    if (!this.tripped || result.outcome !== 'aborted') return result;
    const kind = /\b429\b|rate.?limit|too many requests|usage limit|quota/i.test(this.lastReason) ? 'rate-limit' : 'overloaded';
    const reason = this.lastReason === '' ? '' : `: ${this.lastReason}`;
    return { ...result, outcome: 'failed', message: `was stopped: the CLI retried its model request ${this.limit + 1} times in a row (cliRetries is ${this.limit})${reason}`, failure: { kind } };
  }

  dispose(): void {
    this.outer?.removeEventListener('abort', this.onOuterAbort);
  }
}

/** The task's variables and Loom's own, for the agent's environment. Loom's come last: a task variable named `role` must not change the role. */
export function loomVars(context: RunContext, files: AgentFiles): Record<string, string> {
  const vars = Object.fromEntries(Object.entries(context.vars).map(([key, value]) => [varName(key), value]));
  return { ...vars, LOOM_ROLE: context.role, LOOM_ATTEMPT: String(context.attempt), LOOM_PROMPT_FILE: files.promptFile, LOOM_INSTRUCTIONS_FILE: files.instructionsFile };
}

/**
 * Runs `command` (via `sh -c`, in `context.cwd`) under the context's watchdogs, passing its output
 * on decoded as UTF-8: stdout and stderr together to `onText`, or stderr apart to `onStderr`.
 */
export async function runAgentCommand(command: string, env: NodeJS.ProcessEnv, context: RunContext, onText: (text: string) => void, onStderr?: (text: string) => void): Promise<RunCommandResult> {
  const decoder = new StringDecoder('utf8');
  const stderrDecoder = new StringDecoder('utf8');
  const result = await runCommand({
    command,
    cwd: context.cwd,
    env,
    stallTimeout: context.stallTimeout,
    timeout: context.timeout,
    signal: context.signal,
    onStart: (pid) => guarded(() => context.onStart?.(pid)),
    onOutput: (chunk) => onText(decoder.write(chunk)),
    ...(onStderr === undefined ? {} : { onStderr: (chunk: Buffer) => onStderr(stderrDecoder.write(chunk)) }),
  });
  onText(decoder.end());
  onStderr?.(stderrDecoder.end());
  return result;
}

/** Splits a stream of text into lines (without the `\n`) for `line`; `end` hands over an unterminated last line. */
export abstract class LineReader {
  private partial = '';

  protected abstract line(line: string): void;

  write(text: string): void {
    if (text === '') return;
    const lines = (this.partial + text).split('\n');
    this.partial = lines.pop() ?? '';
    for (const line of lines) this.line(line);
  }

  end(): void {
    const last = this.partial;
    this.partial = '';
    if (last !== '') this.line(last);
  }
}

/** Reports an event and its transcript text (if any) to the context's callbacks. */
export function emitEvent(context: RunContext, event: AgentEvent, transcript: string): void {
  guarded(() => context.onEvent?.(event));
  if (transcript !== '') emitOutput(context, transcript);
}

/** Reports transcript text to the context's `onOutput`. */
export function emitOutput(context: RunContext, text: string): void {
  guarded(() => context.onOutput?.(text));
}

/**
 * The result for a run the watchdogs ended (stalled, timed out, stopped, or never started); null
 * when the command exited on its own and the runtime must judge it. A spawn error is a failure
 * of kind `spawnFailure` (`config` unless null).
 */
export function watchdogResult(result: RunCommandResult, context: RunContext, base: RunBase, spawnFailure: RunFailure | null = { kind: 'config' }): RunResult | null {
  switch (result.outcome) {
    case 'exited':
      return null;
    case 'stalled':
      return { ...base, outcome: 'stalled', message: `produced no output for ${seconds(context.stallTimeout)} and was killed` };
    case 'timeout':
      return { ...base, outcome: 'timeout', message: `was still running after ${seconds(context.timeout)} and was killed` };
    case 'aborted':
      return { ...base, outcome: 'aborted', message: 'was stopped' };
    case 'spawn-error':
      return { ...base, outcome: 'failed', message: `could not start: ${result.error ?? 'unknown error'}`, ...(spawnFailure === null ? {} : { failure: spawnFailure }) };
  }
}

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

/** How `transcriptLine` renders a CLI's events. */
export interface TranscriptLineOptions {
  /** The tool whose calls are shown as `$ <command>`. */
  shellTool?: string;
  /** Show the session's model. */
  sessionModel?: boolean;
  /** Show a retry's delay. */
  retryDelay?: boolean;
  /** Decimals of the cost (default 4). */
  costDigits?: number;
  /** Show only the first line of a result's text. */
  resultFirstLine?: boolean;
}

/** One readable line per event (`<name>: ...`), for `loom logs`. */
export function transcriptLine(name: string, event: AgentEvent, options: TranscriptLineOptions = {}): string {
  switch (event.type) {
    case 'session':
      return `${name}: session ${event.sessionId}${options.sessionModel === true && event.model !== undefined ? ` (${event.model})` : ''}`;
    case 'text':
      return `${name}: text ${event.text.replace(/\n/g, '\n  ')}`;
    case 'tool_use':
      return event.name === options.shellTool ? `$ ${clip(event.input)}` : `${name}: tool ${event.name} ${clip(event.input)}`;
    case 'tool_result':
      return `${name}: tool ${event.ok ? 'ok' : 'error'} ${clip(event.output.replace(/\s+/g, ' ').trim())}`;
    case 'retrying':
      return `${name}: retrying (attempt ${event.attempt}: ${event.reason}${options.retryDelay === true && event.delayMs !== undefined ? `, in ${Math.round(event.delayMs / 100) / 10}s` : ''})`;
    case 'usage': {
      const u = event.usage;
      return `${name}: usage ${u.inputTokens} in, ${u.outputTokens} out, ${u.cachedInputTokens} cached${u.costUsd !== null ? `, $${u.costUsd.toFixed(options.costDigits ?? 4)}` : ''}`;
    }
    case 'result':
      return `${name}: result ${event.ok ? 'ok' : 'error'} ${clip(options.resultFirstLine === true ? firstLine(event.text) : event.text)}`;
  }
}

/** One event as raw transcript text (`[<name>] ...` notes around the agent's own text and tool output), for `loom logs`; '' for nothing. */
export function transcriptBlock(name: string, event: AgentEvent, options: { shellTool: string; sessionModel?: boolean }): string {
  switch (event.type) {
    case 'session':
      return `[${name}] session ${event.sessionId}${options.sessionModel === true && event.model !== undefined ? ` (${event.model})` : ''}\n`;
    case 'text':
      return `${event.text}\n`;
    case 'tool_use':
      return event.name === options.shellTool ? `$ ${event.input}\n` : `[tool] ${event.name} ${event.input}\n`;
    case 'tool_result': {
      const output = event.output.trimEnd();
      return `${output === '' ? '' : `${output}\n`}${event.ok ? '' : '[tool failed]\n'}`;
    }
    case 'retrying':
      return `[${name}] retrying (attempt ${event.attempt}): ${event.reason}\n`;
    case 'usage':
      return `[${name}] tokens: ${event.usage.inputTokens} in (${event.usage.cachedInputTokens} cached), ${event.usage.outputTokens} out\n`;
    case 'result':
      return event.ok ? '' : `[${name}] failed: ${event.text}\n`;
  }
}

/**
 * Runs a caller's callback, dropping its exceptions: thrown inside runCommand's event handlers
 * they would crash the process or leave the agent running with nobody watching it.
 */
export function guarded(callback: () => void): void {
  try {
    callback();
  } catch {
    // The callback's own failure is the caller's concern; the run carries on under its watchdogs.
  }
}

/** Keeps the last `limit` characters of a stream without re-copying the whole text per chunk. */
export class OutputTail {
  private chunks: string[] = [];
  private length = 0;

  constructor(private readonly limit: number = OUTPUT_LIMIT) {}

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

/** Copies `files` from `from` into `to` (created) once: files already there are kept. */
export function seedFiles(from: string, to: string, files: readonly string[]): void {
  fs.mkdirSync(to, { recursive: true });
  for (const file of files) {
    const source = path.join(from, file);
    const target = path.join(to, file);
    if (path.resolve(source) !== path.resolve(target) && fs.existsSync(source) && !fs.existsSync(target)) fs.copyFileSync(source, target);
  }
}

export function clip(text: string): string {
  return text.length > TRANSCRIPT_LIMIT ? `${text.slice(0, TRANSCRIPT_LIMIT)}…` : text;
}

export function firstLine(text: string): string {
  return text.split(/\r?\n/).find((l) => l.trim() !== '')?.trim() ?? '';
}

export function lastLine(text: string): string {
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '');
  return lines[lines.length - 1]?.trim() ?? '';
}

function seconds(ms: number): string {
  return `${ms / 1000}s`;
}
