/**
 * `GeminiRuntime`: runs Google's Gemini CLI (`gemini -p <prompt> -o stream-json`) headlessly as
 * the agent — with `--resume <session>` to continue an earlier run — under the shared watchdogs
 * of `runCommand`, and turns its JSONL stream into events, a readable transcript, session id,
 * usage and a classified failure.
 *
 * Each task gets its own `GEMINI_CLI_HOME` (the CLI keeps `.gemini/` — settings, OAuth creds,
 * chats for resume — under it), so runs share no configuration; optional `settings` (JSON) are
 * written to `.gemini/settings.json` there before every run. The CLI's own retries are capped at
 * `cliRetries`: `general.maxAttempts` in those settings, and from its "Attempt N failed ...
 * Retrying with backoff" lines, which become `retrying` events.
 * `--skip-trust` trusts the worktree,
 * `--approval-mode yolo` lets tools run without prompts. The environment is the `agentEnv`
 * allowlist plus the CLI's own key and endpoint variables, nothing else.
 *
 * CLI quirk (0.61): with `GOOGLE_GEMINI_BASE_URL` set and no `security.auth.selectedType` in
 * the settings, headless auth picks the "gateway" type and then rejects it ("Invalid auth method
 * selected.", exit 41); set `selectedType: "gemini-api-key"` in the settings to use an endpoint.
 */
import fs from 'node:fs';
import path from 'node:path';
import { agentEnv } from '../process/agent-env.js';
import { execLine, promptNeedsStdin } from './exec-line.js';
import { classifyGeminiFailure, geminiStream, geminiSucceeded } from './gemini-stream.js';
import { isRecord } from './json-fields.js';
import { JsonStreamReader } from './json-stream-reader.js';
import { loomVars } from './loom-vars.js';
import { cliRetriesOf } from './retry-cap.js';
import { runAgentCommand } from './run-agent-command.js';
import type { AgentEvent, AgentRuntime, RunContext, RunResult } from './runtime.js';
import { streamRunResult, turnFailure } from './stream-run-result.js';
import { taskHome } from './task-home.js';
import { transcriptBlock } from './transcript-block.js';
import { withAgentFiles } from './with-agent-files.js';

/** The Gemini CLI's credentials from the environment: API keys, or a service account's key file (Vertex AI). */
const GEMINI_AUTH_ENV = ['GEMINI_API_KEY', 'GOOGLE_API_KEY', 'GOOGLE_APPLICATION_CREDENTIALS'] as const;

/** The CLI's own variables that may reach it: its credentials, endpoint, Vertex AI selection and system defaults file. */
export const GEMINI_ENV = [...GEMINI_AUTH_ENV, 'GOOGLE_GEMINI_BASE_URL', 'GOOGLE_GENAI_USE_VERTEXAI', 'GOOGLE_CLOUD_PROJECT', 'GOOGLE_CLOUD_LOCATION', 'GEMINI_CLI_SYSTEM_DEFAULTS_PATH'] as const;

export interface GeminiRuntimeOptions {
  /** The CLI, as a shell command prefix (default `gemini`). */
  command?: string;
  /** The `GEMINI_CLI_HOME` for a run; default the task's home (`taskHome`). Kept between runs for resume. */
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
    this.home = options.home ?? ((context) => taskHome(context, 'gemini'));
    this.settings = options.settings;
  }

  async run(request: RunContext): Promise<RunResult> {
    return withAgentFiles('loom-gemini-', request, async (files, context) => {
      const home = this.home(context);
      fs.mkdirSync(path.join(home, '.gemini'), { recursive: true });
      if (this.settings !== undefined) fs.writeFileSync(path.join(home, '.gemini', 'settings.json'), this.settings);
      capSettingsRetries(home, cliRetriesOf(context));
      const env = agentEnv(
        process.env,
        { ...loomVars(context, files), GEMINI_CLI_HOME: home },
        GEMINI_ENV,
      );
      // The merged stdout/stderr stream: JSON lines become events, retry notices too, the rest is transcript.
      const stream = new JsonStreamReader(context, geminiStream, { name: 'gemini', event: transcript });
      const command = this.commandLine(context, files.promptFile);
      const result = await runAgentCommand({ command, env, files, homes: [home], program: this.command }, context, (text) => stream.write(text));
      stream.end();
      const facts = stream.facts;
      const summary = { output: facts.finalText, sessionId: facts.sessionId, usage: facts.usage, succeeded: geminiSucceeded(facts) };
      return streamRunResult(result, context, summary, () => turnFailure('gemini', result.exitCode, facts, stream.lastPlainLine, (cause) => classifyGeminiFailure(cause, result.exitCode)));
    }, { kind: 'config' });
  }

  /** `gemini -o stream-json --skip-trust --approval-mode yolo [-m model] [--resume id] -p <prompt>`, quoted for `sh -c`. */
  private commandLine(context: RunContext, promptFile: string): string {
    const words = ['-o', 'stream-json', '--skip-trust', '--approval-mode', 'yolo'];
    if (context.model !== undefined && context.model !== '') words.push('-m', context.model);
    words.push(...(context.args ?? []));
    if (context.resumeSessionId !== undefined) words.push('--resume', context.resumeSessionId);
    // `-p=<prompt>`: one word, so a prompt that starts with `-` is not read as an option. A long
    // prompt goes on stdin (`-p` appends to stdin); `-p` with an empty value still selects headless mode.
    const viaStdin = promptNeedsStdin(context.prompt);
    words.push(`--prompt=${viaStdin ? '' : context.prompt}`);
    return execLine(this.command, words, viaStdin ? promptFile : undefined);
  }
}

/** The CLI's own retry setting cannot go higher than this many attempts. */
const GEMINI_MAX_ATTEMPTS = 10;

/**
 * Settings text with the CLI's own retries capped: `general.maxAttempts` at `retries + 1` (a
 * lower value already there is kept), every other setting as it was. Null when the settings are
 * not plain JSON (comments): they are left as they are, and the cap on the stream still applies.
 * (System settings would outrank the user's, but the CLI reads them only from a root-owned path.)
 */
export function geminiSettingsWithRetries(existing: string | undefined, retries: number): string | null {
  let settings: Record<string, unknown> = {};
  if (existing !== undefined && existing.trim() !== '') {
    try {
      const parsed: unknown = JSON.parse(existing);
      if (!isRecord(parsed)) return null;
      settings = parsed;
    } catch {
      return null;
    }
  }
  const general = isRecord(settings.general) ? settings.general : {};
  const current = typeof general.maxAttempts === 'number' && general.maxAttempts >= 1 ? general.maxAttempts : GEMINI_MAX_ATTEMPTS;
  const maxAttempts = Math.max(1, Math.min(current, retries + 1, GEMINI_MAX_ATTEMPTS));
  return `${JSON.stringify({ ...settings, general: { ...general, maxAttempts } }, null, 2)}\n`;
}

/** Caps the retries in the task home's `.gemini/settings.json` (`geminiSettingsWithRetries`). */
function capSettingsRetries(home: string, retries: number): void {
  const file = path.join(home, '.gemini', 'settings.json');
  let existing: string | undefined;
  try {
    existing = fs.readFileSync(file, 'utf8');
  } catch {
    existing = undefined;
  }
  const text = geminiSettingsWithRetries(existing, retries);
  if (text !== null && text !== existing) fs.writeFileSync(file, text);
}

/** One event as transcript lines for `loom logs`. */
function transcript(event: AgentEvent): string {
  return transcriptBlock('gemini', event, { shellTool: 'run_shell_command', sessionModel: true });
}
