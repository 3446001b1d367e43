/**
 * `ClaudeRuntime`: runs Claude Code headlessly (`claude -p --output-format stream-json`, the
 * prompt on stdin from a file) as the agent — in the task's working directory, under
 * `runCommand`'s watchdogs, with an allowlisted environment plus the CLI's own auth variables —
 * and turns its stream into typed events, a readable transcript, the session id, usage and a
 * classified failure.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { agentEnv } from '../process/agent-env.js';
import { runCommand } from '../process/run-command.js';
import type { RunCommandResult } from '../process/run-command.js';
import { classifyClaudeFailure, claudeEvents, initialClaudeFacts, parseClaudeLine, reduceClaudeFacts } from './claude-stream.js';
import type { ClaudeFacts } from './claude-stream.js';
import { OUTPUT_LIMIT, shellQuote, varName } from './run-agent-process.js';
import type { AgentEvent, AgentRuntime, RunContext, RunFailure, RunResult } from './runtime.js';

/** The caller's variables Claude Code itself needs (auth, endpoint, provider); nothing else passes. */
export const CLAUDE_ENV_PASSTHROUGH = ['ANTHROPIC_API_KEY', 'ANTHROPIC_BASE_URL', 'ANTHROPIC_AUTH_TOKEN', 'CLAUDE_CODE_USE_BEDROCK', 'CLAUDE_CODE_USE_VERTEX'] as const;

/**
 * The CLI retries API errors on its own, silently and with growing waits; Loom classifies the
 * failure and reschedules instead, so a couple of quick retries is all the CLI gets.
 */
export const DEFAULT_MAX_RETRIES = 2;

/** Longest transcript line for a tool call or result, in characters. */
const TRANSCRIPT_LIMIT = 400;

export interface ClaudeRuntimeOptions {
  /** Path to the `claude` executable; default `claude` on PATH. */
  command?: string;
  /** `CLAUDE_CODE_MAX_RETRIES` for the CLI. */
  maxRetries?: number;
}

export class ClaudeRuntime implements AgentRuntime {
  readonly name = 'claude';
  private readonly command: string;
  private readonly maxRetries: number;

  constructor(options: ClaudeRuntimeOptions = {}) {
    this.command = options.command ?? 'claude';
    this.maxRetries = options.maxRetries ?? DEFAULT_MAX_RETRIES;
  }

  async run(context: RunContext): Promise<RunResult> {
    const started = Date.now();
    let dir: string | null = null;
    try {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'loom-claude-run-'));
      const promptFile = path.join(dir, 'prompt.md');
      const instructionsFile = path.join(dir, 'instructions.md');
      const stderrFile = path.join(dir, 'stderr.txt');
      fs.writeFileSync(promptFile, context.prompt);
      fs.writeFileSync(instructionsFile, context.instructions);
      const configDir = claudeConfigDir(context);
      fs.mkdirSync(configDir, { recursive: true, mode: 0o700 });

      // The prompt goes in on stdin, from its file: an argument would be limited to 128 KiB
      // (E2BIG) and one starting with "-" would be read as an option.
      const args = [
        '-p',
        '--output-format',
        'stream-json',
        '--verbose',
        '--permission-mode',
        'bypassPermissions',
        ...(context.model !== undefined && context.model !== '' ? ['--model', context.model] : []),
        ...(context.resumeSessionId !== undefined && context.resumeSessionId !== '' ? ['--resume', context.resumeSessionId] : []),
        ...(context.args ?? []),
      ];
      // stderr goes to a file: runCommand merges both streams, and a stderr chunk landing inside a
      // half-read JSON line would spoil it. stdout alone carries the stream (and the liveness).
      const command = `exec ${[this.command, ...args].map(shellQuote).join(' ')} <${shellQuote(promptFile)} 2>${shellQuote(stderrFile)}`;
      const vars = Object.fromEntries(Object.entries(context.vars).map(([key, value]) => [varName(key), value]));
      const env = agentEnv(
        process.env,
        {
          ...vars,
          LOOM_ROLE: context.role,
          LOOM_ATTEMPT: String(context.attempt),
          LOOM_PROMPT_FILE: promptFile,
          LOOM_INSTRUCTIONS_FILE: instructionsFile,
          // Bypass-permissions mode refuses to run as root outside a sandbox; the worktree is ours.
          IS_SANDBOX: '1',
          CLAUDE_CONFIG_DIR: configDir,
          CLAUDE_CODE_MAX_RETRIES: String(this.maxRetries),
          // No autoupdater, telemetry or error reporting from an unattended run.
          CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
          DISABLE_AUTOUPDATER: '1',
        },
        CLAUDE_ENV_PASSTHROUGH,
      );

      const reader = new ClaudeStreamReader(context);
      const decoder = new StringDecoder('utf8');
      const result = await runCommand({
        command,
        cwd: context.cwd,
        env,
        stallTimeout: context.stallTimeout,
        timeout: context.timeout,
        signal: context.signal,
        onStart: (pid) => guarded(() => context.onStart?.(pid)),
        onOutput: (chunk) => reader.write(decoder.write(chunk)),
      });
      reader.write(decoder.end());
      reader.end();
      return toRunResult(result, reader, readTail(stderrFile), context);
    } catch (error) {
      return { outcome: 'failed', output: '', exitCode: null, message: `could not be run: ${(error as Error).message}`, duration: Date.now() - started, failure: { kind: 'config' } };
    } finally {
      if (dir !== null) fs.rmSync(dir, { recursive: true, force: true });
    }
  }
}

/**
 * Where the CLI keeps its settings and sessions: per task, so runs of different tasks share
 * nothing while a resume finds its session — under Loom's `state_dir` for the task, else a temp
 * dir named after the working directory (a resume must use the same cwd anyway).
 */
export function claudeConfigDir(context: RunContext): string {
  const stateDir = context.vars.state_dir;
  if (stateDir !== undefined && stateDir !== '') return path.join(stateDir, 'claude');
  const key = createHash('sha256').update(path.resolve(context.cwd)).digest('hex').slice(0, 16);
  return path.join(os.tmpdir(), `loom-claude-${key}`);
}

/** Splits the stream into lines, folds them into facts, and reports events and transcript lines. */
class ClaudeStreamReader {
  facts: ClaudeFacts = initialClaudeFacts();
  /** Lines that were not stream records (stray output), tail kept for messages. */
  stray = '';
  private partial = '';

  constructor(private readonly context: RunContext) {}

  write(text: string): void {
    if (text === '') return;
    const lines = (this.partial + text).split('\n');
    this.partial = lines.pop() ?? '';
    for (const line of lines) this.line(line);
  }

  end(): void {
    if (this.partial !== '') this.line(this.partial);
    this.partial = '';
  }

  private line(line: string): void {
    if (line.trim() === '') return;
    const record = parseClaudeLine(line);
    if (record === null) {
      this.stray = (this.stray + line + '\n').slice(-OUTPUT_LIMIT);
      guarded(() => this.context.onOutput?.(`${line}\n`));
      return;
    }
    this.facts = reduceClaudeFacts(this.facts, record);
    for (const event of claudeEvents(record)) {
      guarded(() => this.context.onEvent?.(event));
      guarded(() => this.context.onOutput?.(`${transcriptLine(event)}\n`));
    }
  }
}

/** One readable line per event, for `loom logs`. */
export function transcriptLine(event: AgentEvent): string {
  switch (event.type) {
    case 'session':
      return `claude: session ${event.sessionId}${event.model !== undefined ? ` (${event.model})` : ''}`;
    case 'text':
      return `claude: text ${event.text.replace(/\n/g, '\n  ')}`;
    case 'tool_use':
      return `claude: tool ${event.name} ${clip(event.input)}`;
    case 'tool_result':
      return `claude: tool ${event.ok ? 'ok' : 'error'} ${clip(event.output.replace(/\s+/g, ' ').trim())}`;
    case 'retrying':
      return `claude: retrying (attempt ${event.attempt}: ${event.reason}${event.delayMs !== undefined ? `, in ${Math.round(event.delayMs / 100) / 10}s` : ''})`;
    case 'usage': {
      const u = event.usage;
      return `claude: usage ${u.inputTokens} in, ${u.outputTokens} out, ${u.cachedInputTokens} cached${u.costUsd !== null ? `, $${u.costUsd.toFixed(4)}` : ''}`;
    }
    case 'result':
      return `claude: result ${event.ok ? 'ok' : 'error'} ${clip(firstLine(event.text))}`;
  }
}

function toRunResult(result: RunCommandResult, reader: ClaudeStreamReader, stderr: string, context: RunContext): RunResult {
  const facts = reader.facts;
  const output = facts.resultSeen ? facts.resultText : (reader.stray + stderr).slice(-OUTPUT_LIMIT);
  const base: Omit<RunResult, 'outcome' | 'message'> = {
    output,
    exitCode: result.exitCode,
    duration: result.duration,
    ...(facts.sessionId !== undefined ? { sessionId: facts.sessionId } : {}),
    ...(facts.usage !== undefined ? { usage: facts.usage } : {}),
  };
  switch (result.outcome) {
    case 'exited': {
      if (result.exitCode === 0 && facts.resultSeen && !facts.isError) return { ...base, outcome: 'success', message: '' };
      const how = result.exitCode === null ? 'was killed by a signal' : result.exitCode === 0 ? 'exited' : `exited with code ${result.exitCode}`;
      const detail = failureDetail(facts, reader.stray, stderr, result.exitCode);
      const failure: RunFailure = !facts.resultSeen && facts.apiErrors.length === 0 && (result.exitCode === 127 || result.exitCode === 126) ? { kind: 'config' } : classifyClaudeFailure(facts, stderr);
      return { ...base, outcome: 'failed', message: detail === '' ? how : `${how}: ${detail}`, failure };
    }
    case 'stalled':
      return { ...base, outcome: 'stalled', message: `produced no output for ${seconds(context.stallTimeout)} and was killed` };
    case 'timeout':
      return { ...base, outcome: 'timeout', message: `was still running after ${seconds(context.timeout)} and was killed` };
    case 'aborted':
      return { ...base, outcome: 'aborted', message: 'was stopped' };
    case 'spawn-error':
      return { ...base, outcome: 'failed', message: `could not start: ${result.error ?? 'unknown error'}`, failure: { kind: 'config' } };
  }
}

function failureDetail(facts: ClaudeFacts, stray: string, stderr: string, exitCode: number | null): string {
  if (facts.resultSeen && facts.resultText.trim() !== '') return firstLine(facts.resultText);
  const apiError = [...facts.apiErrors].reverse().find((e) => e.text.trim() !== '');
  if (apiError !== undefined) return firstLine(apiError.text);
  const last = lastLine(stderr) || lastLine(stray);
  if (last !== '') return last;
  if (facts.resultSeen) return `result ${facts.resultSubtype ?? 'error'}`;
  return exitCode === 0 ? 'ended without a result' : '';
}

function readTail(file: string): string {
  try {
    const text = fs.readFileSync(file, 'utf8');
    return text.length > OUTPUT_LIMIT ? text.slice(-OUTPUT_LIMIT) : text;
  } catch {
    return '';
  }
}

/** Runs a caller's callback, dropping its exceptions (they must not stop the stream or the watchdogs). */
function guarded(callback: () => void): void {
  try {
    callback();
  } catch {
    // The callback's own failure is the caller's concern.
  }
}

function clip(text: string): string {
  return text.length > TRANSCRIPT_LIMIT ? `${text.slice(0, TRANSCRIPT_LIMIT)}…` : text;
}

function firstLine(text: string): string {
  return text.split(/\r?\n/).find((l) => l.trim() !== '')?.trim() ?? '';
}

function lastLine(text: string): string {
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '');
  return lines[lines.length - 1]?.trim() ?? '';
}

function seconds(ms: number): string {
  return `${ms / 1000}s`;
}
