/**
 * `GeminiRuntime`: runs Google's Gemini CLI (`gemini -p <prompt> -o stream-json`) headlessly as
 * the agent — with `--resume <session>` to continue an earlier run — under the shared watchdogs
 * of `runCommand`, and turns its JSONL stream into events, a readable transcript, session id,
 * usage and a classified failure.
 *
 * Each task gets its own `GEMINI_CLI_HOME` (the CLI keeps `.gemini/` — settings, OAuth creds,
 * chats for resume — under it), so runs share no configuration; optional `settings` (JSON) are
 * written to `.gemini/settings.json` there before every run. `--skip-trust` trusts the worktree,
 * `--approval-mode yolo` lets tools run without prompts. The environment is the `agentEnv`
 * allowlist plus the CLI's own key and endpoint variables, nothing else.
 *
 * CLI quirk (0.61): with `GOOGLE_GEMINI_BASE_URL` set and no `security.auth.selectedType` in
 * the settings, headless auth picks the "gateway" type and then rejects it ("Invalid auth method
 * selected.", exit 41); set `selectedType: "gemini-api-key"` in the settings to use an endpoint.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { agentEnv } from '../process/agent-env.js';
import { runCommand } from '../process/run-command.js';
import type { RunCommandResult } from '../process/run-command.js';
import { classifyGeminiFailure, emptyGeminiFacts, geminiEvents, geminiNotice, geminiSucceeded, parseGeminiLine, reduceGemini } from './gemini-stream.js';
import type { GeminiFacts } from './gemini-stream.js';
import { shellQuote, varName } from './run-agent-process.js';
import type { AgentEvent, AgentRuntime, RunContext, RunResult } from './runtime.js';

/** The CLI's own variables that may reach it: its API keys, endpoint and Vertex AI selection. */
export const GEMINI_ENV = ['GEMINI_API_KEY', 'GOOGLE_API_KEY', 'GOOGLE_GEMINI_BASE_URL', 'GOOGLE_GENAI_USE_VERTEXAI', 'GOOGLE_CLOUD_PROJECT', 'GOOGLE_CLOUD_LOCATION'] as const;

/** Prompts longer than this go through stdin (`-p` appends to stdin): one argv string is capped at 128 KiB. */
const PROMPT_ARG_LIMIT = 100_000;

export interface GeminiRuntimeOptions {
  /** The CLI, as a shell command prefix (default `gemini`). */
  command?: string;
  /** The `GEMINI_CLI_HOME` for a run; default `<state_dir>/gemini` (else under the temp dir). Kept between runs for resume. */
  home?: (context: RunContext) => string;
  /** `settings.json` text written into `<home>/.gemini/` before every run (auth type, retries, ...). */
  settings?: string;
}

export class GeminiRuntime implements AgentRuntime {
  readonly name = 'gemini';
  private readonly command: string;
  private readonly home: (context: RunContext) => string;
  private readonly settings: string | undefined;

  constructor(options: GeminiRuntimeOptions = {}) {
    this.command = options.command ?? 'gemini';
    this.home = options.home ?? defaultGeminiHome;
    this.settings = options.settings;
  }

  async run(context: RunContext): Promise<RunResult> {
    const started = Date.now();
    let dir: string | null = null;
    try {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'loom-gemini-'));
      const home = this.home(context);
      fs.mkdirSync(path.join(home, '.gemini'), { recursive: true });
      if (this.settings !== undefined) fs.writeFileSync(path.join(home, '.gemini', 'settings.json'), this.settings);
      const promptFile = path.join(dir, 'prompt.md');
      const instructionsFile = path.join(dir, 'instructions.md');
      fs.writeFileSync(promptFile, context.prompt);
      fs.writeFileSync(instructionsFile, context.instructions);
      const vars = Object.fromEntries(Object.entries(context.vars).map(([key, value]) => [varName(key), value]));
      // Loom's own variables come last: a task variable named `role` must not change the role.
      const env = agentEnv(
        process.env,
        { ...vars, LOOM_ROLE: context.role, LOOM_ATTEMPT: String(context.attempt), LOOM_PROMPT_FILE: promptFile, LOOM_INSTRUCTIONS_FILE: instructionsFile, GEMINI_CLI_HOME: home },
        GEMINI_ENV,
      );
      const stream = new GeminiStreamReader(context);
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
      const base: Omit<RunResult, 'outcome' | 'message'> = {
        output: facts.finalText,
        exitCode: result.exitCode,
        duration: result.duration,
        ...(facts.sessionId === undefined ? {} : { sessionId: facts.sessionId }),
        ...(facts.usage === undefined ? {} : { usage: facts.usage }),
      };
      return resultOf(result, base, facts, stream.lastPlainLine, context);
    } catch (error) {
      // Only our own setup can throw here (temp files, the home); still a value, never a throw.
      return { outcome: 'failed', output: '', exitCode: null, message: `could not be run: ${(error as Error).message}`, duration: Date.now() - started, failure: { kind: 'config' } };
    } finally {
      if (dir !== null) fs.rmSync(dir, { recursive: true, force: true });
    }
  }

  /** `gemini -o stream-json --skip-trust --approval-mode yolo [-m model] [--resume id] -p <prompt>`, quoted for `sh -c`. */
  private commandLine(context: RunContext, promptFile: string): string {
    const words = ['-o', 'stream-json', '--skip-trust', '--approval-mode', 'yolo'];
    if (context.model !== undefined && context.model !== '') words.push('-m', context.model);
    words.push(...(context.args ?? []));
    if (context.resumeSessionId !== undefined) words.push('--resume', context.resumeSessionId);
    // `-p=<prompt>`: one word, so a prompt that starts with `-` is not read as an option. A long
    // prompt goes on stdin; `-p` with an empty value still selects headless mode.
    const viaStdin = Buffer.byteLength(context.prompt) > PROMPT_ARG_LIMIT;
    words.push(`--prompt=${viaStdin ? '' : context.prompt}`);
    // `exec`: the CLI leads the process group itself. Stdin is closed (/dev/null) unless it carries the prompt.
    return `exec ${this.command} ${words.map(shellQuote).join(' ')}${viaStdin ? ` < ${shellQuote(promptFile)}` : ''}`;
  }
}

/** `<state_dir>/gemini`, else `<tmp>/loom-agent-homes/<role>/gemini`. */
export function defaultGeminiHome(context: RunContext): string {
  return path.join(context.vars.state_dir ?? path.join(os.tmpdir(), 'loom-agent-homes', context.role), 'gemini');
}

/** Reads the merged stdout/stderr stream line by line: JSON lines become events, the rest is transcript. */
class GeminiStreamReader {
  facts: GeminiFacts = emptyGeminiFacts;
  /** The last line that was not JSON (stderr), for a failure without a reported error. */
  lastPlainLine = '';
  private pending = '';

  constructor(private readonly context: RunContext) {}

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
    const line = parseGeminiLine(raw);
    if (line === null) {
      if (raw.trim() === '') return;
      this.lastPlainLine = raw.trim();
      this.out(`${raw}\n`);
      return;
    }
    this.facts = reduceGemini(this.facts, line);
    const notice = geminiNotice(line);
    if (notice !== null) this.out(`[gemini] ${notice}\n`);
    for (const event of geminiEvents(line)) {
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
      return `[gemini] session ${event.sessionId}${event.model === undefined ? '' : ` (${event.model})`}\n`;
    case 'text':
      return `${event.text}\n`;
    case 'tool_use':
      return event.name === 'run_shell_command' ? `$ ${event.input}\n` : `[tool] ${event.name} ${event.input}\n`;
    case 'tool_result': {
      const output = event.output.trimEnd();
      return `${output === '' ? '' : `${output}\n`}${event.ok ? '' : '[tool failed]\n'}`;
    }
    case 'retrying':
      return `[gemini] retrying (attempt ${event.attempt}): ${event.reason}\n`;
    case 'usage':
      return `[gemini] tokens: ${event.usage.inputTokens} in (${event.usage.cachedInputTokens} cached), ${event.usage.outputTokens} out\n`;
    case 'result':
      return event.ok ? '' : `[gemini] failed: ${event.text}\n`;
  }
}

function resultOf(result: RunCommandResult, base: Omit<RunResult, 'outcome' | 'message'>, facts: GeminiFacts, lastPlainLine: string, context: RunContext): RunResult {
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
      if (result.exitCode === 0 && geminiSucceeded(facts)) {
        guarded(() => context.onEvent?.({ type: 'result', ok: true, text: facts.finalText }));
        return { ...base, outcome: 'success', message: '' };
      }
      return { ...base, outcome: 'failed', ...failureOf(facts, result.exitCode, lastPlainLine) };
  }
}

function failureOf(facts: GeminiFacts, exitCode: number | null, lastPlainLine: string): Pick<RunResult, 'message' | 'failure'> {
  if (exitCode === 127 && facts.sessionId === undefined) return { message: `gemini CLI not found: ${lastPlainLine}`, failure: { kind: 'config' } };
  const how = exitCode === null ? 'was killed by a signal' : exitCode === 0 ? 'ended without completing its turn' : `exited with code ${exitCode}`;
  const cause = facts.errorMessage ?? lastPlainLine;
  return { message: cause === '' ? how : `${how}: ${cause}`, failure: classifyGeminiFailure(cause, exitCode) };
}

/** Runs a caller's callback, dropping its exceptions (they must not stop the run's watchdogs). */
function guarded(callback: () => void): void {
  try {
    callback();
  } catch {
    // The callback's own failure is the caller's concern.
  }
}
