/**
 * `CodexRuntime`: runs the OpenAI Codex CLI (`codex exec --json`) headlessly as the agent — or
 * `codex exec resume <thread>` to continue an earlier run — with the shared watchdogs of
 * `runCommand`, and turns its JSONL stream into events, a readable transcript, session id,
 * usage and a classified failure.
 *
 * Each task gets its own `CODEX_HOME` (settings, sessions for resume), so runs share no
 * configuration; an optional `config` (TOML) is written there before every run. The environment
 * is the `agentEnv` allowlist plus the CLI's own key variables, nothing else.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { agentEnv } from '../process/agent-env.js';
import { runCommand } from '../process/run-command.js';
import type { RunCommandResult } from '../process/run-command.js';
import { classifyCodexFailure, codexEvents, codexNotice, codexSucceeded, codexUsage, emptyCodexFacts, parseCodexLine, reduceCodex } from './codex-stream.js';
import type { CodexFacts, TokenCounts } from './codex-stream.js';
import { shellQuote, varName } from './run-agent-process.js';
import type { AgentEvent, AgentRuntime, RunContext, RunResult } from './runtime.js';

/** The CLI's own variables that may reach it: its API keys and endpoint. */
export const CODEX_ENV = ['CODEX_API_KEY', 'OPENAI_API_KEY', 'OPENAI_BASE_URL'] as const;

/** Prompts longer than this go through a file on stdin: one argv string is capped at 128 KiB. */
const PROMPT_ARG_LIMIT = 100_000;

/** Where a thread's token totals are kept between runs, inside its `CODEX_HOME`. */
const TOTALS_FILE = 'loom-thread-totals.json';

export interface CodexRuntimeOptions {
  /** The CLI, as a shell command prefix (default `codex`). */
  command?: string;
  /** The `CODEX_HOME` for a run; default `~/.cache/loom/codex/<issue-N | role>`. Kept between runs for resume. */
  home?: (context: RunContext) => string;
  /** `config.toml` text written into the home before every run (model provider, ...). */
  config?: string;
}

export class CodexRuntime implements AgentRuntime {
  readonly name = 'codex';
  private readonly command: string;
  private readonly home: (context: RunContext) => string;
  private readonly config: string | undefined;

  constructor(options: CodexRuntimeOptions = {}) {
    this.command = options.command ?? 'codex';
    this.home = options.home ?? defaultHome;
    this.config = options.config;
  }

  async run(context: RunContext): Promise<RunResult> {
    const started = Date.now();
    let dir: string | null = null;
    try {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'loom-codex-'));
      const home = this.home(context);
      fs.mkdirSync(home, { recursive: true });
      if (this.config !== undefined) fs.writeFileSync(path.join(home, 'config.toml'), this.config);
      const promptFile = path.join(dir, 'prompt.md');
      const instructionsFile = path.join(dir, 'instructions.md');
      fs.writeFileSync(promptFile, context.prompt);
      fs.writeFileSync(instructionsFile, context.instructions);
      const vars = Object.fromEntries(Object.entries(context.vars).map(([key, value]) => [varName(key), value]));
      // Loom's own variables come last: a task variable named `role` must not change the role.
      const env = agentEnv(
        process.env,
        { ...vars, LOOM_ROLE: context.role, LOOM_ATTEMPT: String(context.attempt), LOOM_PROMPT_FILE: promptFile, LOOM_INSTRUCTIONS_FILE: instructionsFile, CODEX_HOME: home },
        CODEX_ENV,
      );
      const previous = context.resumeSessionId === undefined ? undefined : readTotals(home)[context.resumeSessionId];
      const stream = new CodexStreamReader(context, previous);
      const decoder = new StringDecoder('utf8');
      const result = await runCommand({
        command: this.commandLine(context, promptFile),
        cwd: context.cwd,
        env,
        stallTimeout: context.stallTimeout,
        timeout: context.timeout,
        signal: context.signal,
        onStart: (pid) => guarded(() => context.onStart?.(pid)),
        onOutput: (chunk) => stream.write(decoder.write(chunk)),
      });
      stream.write(decoder.end());
      stream.end();
      const facts = stream.facts;
      const sessionId = facts.sessionId;
      const totals = facts.totals;
      // Losing the totals only makes a later resume over-count; it must not fail this run.
      if (sessionId !== undefined && totals !== undefined) guarded(() => saveTotals(home, sessionId, totals));
      const usage = codexUsage(facts, previous);
      const base: Omit<RunResult, 'outcome' | 'message'> = { output: facts.finalText, exitCode: result.exitCode, duration: result.duration, ...(facts.sessionId === undefined ? {} : { sessionId: facts.sessionId }), ...(usage === undefined ? {} : { usage }) };
      return resultOf(result, base, facts, stream.lastPlainLine, context);
    } catch (error) {
      // Only our own setup can throw here (temp files, the home); still a value, never a throw.
      return { outcome: 'failed', output: '', exitCode: null, message: `could not be run: ${(error as Error).message}`, duration: Date.now() - started, failure: { kind: 'config' } };
    } finally {
      if (dir !== null) fs.rmSync(dir, { recursive: true, force: true });
    }
  }

  /** `codex exec --json ... [resume <thread>] <prompt>`, each word quoted for `sh -c`. */
  private commandLine(context: RunContext, promptFile: string): string {
    const words = ['exec', '--json', '--skip-git-repo-check', '-s', 'workspace-write'];
    if (context.model !== undefined && context.model !== '') words.push('-m', context.model);
    words.push(...(context.args ?? []));
    if (context.resumeSessionId !== undefined) words.push('resume', context.resumeSessionId);
    // `--` keeps a prompt that starts with `-` from being read as an option.
    const viaStdin = Buffer.byteLength(context.prompt) > PROMPT_ARG_LIMIT;
    words.push('--', viaStdin ? '-' : context.prompt);
    // `exec`: the CLI leads the process group itself. Stdin is closed (/dev/null) unless it carries the prompt.
    return `exec ${this.command} ${words.map(shellQuote).join(' ')}${viaStdin ? ` < ${shellQuote(promptFile)}` : ''}`;
  }
}

/** Reads the merged stdout/stderr stream line by line: JSON lines become events, the rest is transcript. */
class CodexStreamReader {
  facts: CodexFacts = emptyCodexFacts;
  /** The last line that was not JSON (stderr), for a failure without a reported error. */
  lastPlainLine = '';
  private pending = '';

  constructor(
    private readonly context: RunContext,
    private readonly previous: TokenCounts | undefined,
  ) {}

  write(text: string): void {
    if (text === '') return;
    this.pending += text;
    let newline = this.pending.indexOf('\n');
    while (newline !== -1) {
      this.line(this.pending.slice(0, newline));
      this.pending = this.pending.slice(newline + 1);
      newline = this.pending.indexOf('\n');
    }
  }

  end(): void {
    if (this.pending !== '') this.line(this.pending);
    this.pending = '';
  }

  private line(raw: string): void {
    const line = parseCodexLine(raw);
    if (line === null) {
      if (raw.trim() === '') return;
      this.lastPlainLine = raw.trim();
      this.out(`${raw}\n`);
      return;
    }
    this.facts = reduceCodex(this.facts, line);
    const notice = codexNotice(line);
    if (notice !== null) this.out(`[codex] ${notice}\n`);
    for (const event of codexEvents(line, this.previous)) {
      guarded(() => this.context.onEvent?.(event));
      const text = transcript(event);
      if (text !== '') this.out(text);
    }
  }

  private out(text: string): void {
    guarded(() => this.context.onOutput?.(text));
  }
}

/** One event as transcript lines for `loom logs`. */
function transcript(event: AgentEvent): string {
  switch (event.type) {
    case 'session':
      return `[codex] session ${event.sessionId}\n`;
    case 'text':
      return `${event.text}\n`;
    case 'tool_use':
      return event.name === 'shell' ? `$ ${event.input}\n` : `[tool] ${event.name} ${event.input}\n`;
    case 'tool_result': {
      const output = event.output.trimEnd();
      return `${output === '' ? '' : `${output}\n`}${event.ok ? '' : '[tool failed]\n'}`;
    }
    case 'retrying':
      return `[codex] retrying (attempt ${event.attempt}): ${event.reason}\n`;
    case 'usage':
      return `[codex] tokens: ${event.usage.inputTokens} in (${event.usage.cachedInputTokens} cached), ${event.usage.outputTokens} out\n`;
    case 'result':
      return event.ok ? '' : `[codex] failed: ${event.text}\n`;
  }
}

function resultOf(result: RunCommandResult, base: Omit<RunResult, 'outcome' | 'message'>, facts: CodexFacts, lastPlainLine: string, context: RunContext): RunResult {
  switch (result.outcome) {
    case 'stalled':
      return { ...base, outcome: 'stalled', message: `produced no output for ${context.stallTimeout / 1000}s and was killed` };
    case 'timeout':
      return { ...base, outcome: 'timeout', message: `was still running after ${context.timeout / 1000}s and was killed` };
    case 'aborted':
      return { ...base, outcome: 'aborted', message: 'was stopped' };
    case 'spawn-error':
      return { ...base, outcome: 'failed', message: `could not start: ${result.error ?? 'unknown error'}`, failure: { kind: 'config' } };
    case 'exited':
      if (result.exitCode === 0 && codexSucceeded(facts)) {
        guarded(() => context.onEvent?.({ type: 'result', ok: true, text: facts.finalText }));
        return { ...base, outcome: 'success', message: '' };
      }
      return { ...base, outcome: 'failed', ...failureOf(facts, result.exitCode, lastPlainLine) };
  }
}

function failureOf(facts: CodexFacts, exitCode: number | null, lastPlainLine: string): Pick<RunResult, 'message' | 'failure'> {
  if (exitCode === 127 && facts.sessionId === undefined) return { message: `codex CLI not found: ${lastPlainLine}`, failure: { kind: 'config' } };
  const how = exitCode === null ? 'was killed by a signal' : exitCode === 0 ? 'ended without completing its turn' : `exited with code ${exitCode}`;
  const cause = facts.errorMessage ?? lastPlainLine;
  return { message: cause === '' ? how : `${how}: ${cause}`, failure: classifyCodexFailure(cause) };
}

function defaultHome(context: RunContext): string {
  const issue = context.vars.issue;
  const key = (issue !== undefined && issue !== '' ? `issue-${issue}` : context.role).replace(/[^A-Za-z0-9._-]+/g, '_');
  return path.join(os.homedir(), '.cache', 'loom', 'codex', key);
}

function readTotals(home: string): Record<string, TokenCounts> {
  try {
    return JSON.parse(fs.readFileSync(path.join(home, TOTALS_FILE), 'utf8')) as Record<string, TokenCounts>;
  } catch {
    return {};
  }
}

function saveTotals(home: string, sessionId: string, totals: TokenCounts): void {
  const file = path.join(home, TOTALS_FILE);
  fs.writeFileSync(`${file}.tmp`, JSON.stringify({ ...readTotals(home), [sessionId]: totals }));
  fs.renameSync(`${file}.tmp`, file);
}

/** Runs a caller's callback, dropping its exceptions (they must not stop the run's watchdogs). */
function guarded(callback: () => void): void {
  try {
    callback();
  } catch {
    // The callback's own failure is the caller's concern.
  }
}
