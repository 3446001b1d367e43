/**
 * `OpencodeRuntime`: runs the opencode CLI headlessly (`opencode run --format json --auto -m
 * <provider/model>`, the prompt on stdin from a file, `--session <id>` to continue an earlier
 * run) as the agent, under `runCommand`'s watchdogs, and turns its JSON stream into events, a
 * readable transcript, session id, usage (tokens and the CLI's own cost, summed over steps) and
 * a classified failure.
 *
 * Each task gets its own opencode home: `XDG_CONFIG_HOME`, `XDG_DATA_HOME`, `XDG_CACHE_HOME` and
 * `XDG_STATE_HOME` point under it, so runs share no settings or sessions while a resume finds its
 * session. It is seeded once from the user's own opencode config and login (`auth.json`); an
 * optional `config` (opencode.json text) is layered on top through `OPENCODE_CONFIG`. The
 * environment is the `agentEnv` allowlist plus the provider key variables, nothing else.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { agentEnv } from '../process/agent-env.js';
import type { RunCommandResult } from '../process/run-command.js';
import { emitEvent } from './emit-event.js';
import { execLine } from './exec-line.js';
import { JsonStreamReader } from './json-stream-reader.js';
import { LineReader } from './line-reader.js';
import { loomVars } from './loom-vars.js';
import { classifyOpencodeFailure, describeOpencodeError, opencodeRetryLine, opencodeStream, opencodeSucceeded } from './opencode-stream.js';
import type { OpencodeFacts } from './opencode-stream.js';
import { OutputTail } from './output-tail.js';
import { runAgentCommand } from './run-agent-command.js';
import type { AgentEvent, AgentRuntime, RunContext, RunResult } from './runtime.js';
import { seedFiles } from './seed-files.js';
import { shellQuote } from './shell-quote.js';
import { streamRunResult } from './stream-run-result.js';
import { taskHome } from './task-home.js';
import { lastLine } from './text-lines.js';
import { transcriptLine as agentTranscriptLine } from './transcript-line.js';
import { howItEnded, withDetail } from './watchdog-result.js';
import { withAgentFiles } from './with-agent-files.js';

/** The caller's variables opencode itself may need: provider keys, and its own models-catalog switches. */
export const OPENCODE_ENV = [
  'ANTHROPIC_API_KEY',
  'OPENAI_API_KEY',
  'OPENROUTER_API_KEY',
  'OPENCODE_API_KEY',
  'GEMINI_API_KEY',
  'GOOGLE_GENERATIVE_AI_API_KEY',
  'GROQ_API_KEY',
  'DEEPSEEK_API_KEY',
  'XAI_API_KEY',
  'MISTRAL_API_KEY',
  'OPENCODE_DISABLE_MODELS_FETCH',
  'OPENCODE_MODELS_URL',
  'OPENCODE_MODELS_PATH',
] as const;

/** The model when neither the role nor the config names one: opencode always gets `-m`. */
export const DEFAULT_OPENCODE_MODEL = 'anthropic/claude-sonnet-4-5';

/** Files seeded from the user's opencode config dir (`~/.config/opencode`) and data dir (`~/.local/share/opencode`). */
const USER_CONFIG_FILES = ['opencode.json', 'opencode.jsonc', 'config.json'] as const;
const USER_DATA_FILES = ['auth.json'] as const;

/** Where Loom's own config layer is written inside the home. */
const LOOM_CONFIG_FILE = 'loom-opencode.json';

export interface OpencodeRuntimeOptions {
  /** The CLI's executable (default `opencode` on PATH). */
  command?: string;
  /** The task's opencode home; default `<state_dir>/opencode`, else a temp dir per working directory. Kept between runs for resume. */
  home?: (context: RunContext) => string;
  /** `opencode.json` text layered over the seeded config on every run (providers, permissions, ...). */
  config?: string;
  /**
   * The user's opencode config and data dirs to seed a new home from (default
   * `$XDG_CONFIG_HOME/opencode` or `~/.config/opencode`, `$XDG_DATA_HOME/opencode` or
   * `~/.local/share/opencode`); null: seed nothing.
   */
  seedFrom?: { configDir: string; dataDir: string } | null;
}

export class OpencodeRuntime implements AgentRuntime {
  readonly name = 'opencode';
  private readonly command: string;
  private readonly home: (context: RunContext) => string;
  private readonly config: string | undefined;
  private readonly seedFrom: { configDir: string; dataDir: string } | null;

  constructor(options: OpencodeRuntimeOptions = {}) {
    this.command = options.command ?? 'opencode';
    this.home = options.home ?? opencodeHome;
    this.config = options.config;
    this.seedFrom = options.seedFrom === undefined ? userOpencodeDirs(process.env) : options.seedFrom;
  }

  async run(request: RunContext): Promise<RunResult> {
    return withAgentFiles('loom-opencode-run-', request, async (files, context) => {
      const dirs = prepareHome(this.home(context), this.seedFrom);
      let configFile: string | undefined;
      if (this.config !== undefined) {
        configFile = path.join(dirs.home, LOOM_CONFIG_FILE);
        fs.writeFileSync(configFile, this.config, { mode: 0o600 });
      }

      const model = context.model !== undefined && context.model !== '' ? context.model : DEFAULT_OPENCODE_MODEL;
      const args = [
        'run',
        '--format',
        'json',
        // Headless: approve the permission asks nobody is there to answer (explicit denials still hold).
        '--auto',
        '-m',
        model,
        ...(context.resumeSessionId !== undefined && context.resumeSessionId !== '' ? ['--session', context.resumeSessionId] : []),
        // Its error log on stderr: the only place a failed model request (before each of the CLI's
        // own retries) shows; the JSON stream says nothing until it gives up.
        '--print-logs',
        '--log-level',
        'ERROR',
        ...(context.args ?? []),
      ];
      // The prompt goes in on stdin, from its file (read to EOF, then closed): an argument is limited
      // to 128 KiB, and one after `--` reaches the model wrapped in quotes. stderr is read apart so
      // it cannot split a JSON line on stdout.
      const command = execLine(shellQuote(this.command), args, files.promptFile);
      const env = agentEnv(
        process.env,
        {
          ...loomVars(context, files),
          XDG_CONFIG_HOME: dirs.config,
          XDG_DATA_HOME: dirs.data,
          XDG_CACHE_HOME: dirs.cache,
          XDG_STATE_HOME: dirs.state,
          OPENCODE_DISABLE_AUTOUPDATE: '1',
          OPENCODE_DISABLE_SHARE: '1',
          ...(configFile === undefined ? {} : { OPENCODE_CONFIG: configFile }),
        },
        OPENCODE_ENV,
      );

      const reader = new JsonStreamReader(context, opencodeStream, { name: 'opencode', event: (event) => `${transcriptLine(event)}\n` });
      const stderr = new OpencodeStderrReader(context);
      const result = await runAgentCommand(
        { command, env, files, homes: [dirs.home], program: this.command },
        context,
        (text) => reader.write(text),
        (text) => stderr.write(text),
      );
      reader.end();
      stderr.end();
      return toRunResult(result, reader, stderr.tail.text(), context);
    }, { kind: 'config' });
  }
}

/**
 * The task's opencode home: `<state_dir>/opencode` when Loom gave the task a state dir, else a
 * temp dir named after the working directory (a resume must use the same cwd anyway).
 */
export function opencodeHome(context: RunContext): string {
  return taskHome(context, 'opencode');
}

/** The user's own opencode config and data dirs, as opencode finds them. */
export function userOpencodeDirs(env: NodeJS.ProcessEnv): { configDir: string; dataDir: string } {
  const home = env.HOME ?? os.homedir();
  const xdgConfig = env.XDG_CONFIG_HOME !== undefined && env.XDG_CONFIG_HOME !== '' ? env.XDG_CONFIG_HOME : path.join(home, '.config');
  const xdgData = env.XDG_DATA_HOME !== undefined && env.XDG_DATA_HOME !== '' ? env.XDG_DATA_HOME : path.join(home, '.local', 'share');
  return { configDir: path.join(xdgConfig, 'opencode'), dataDir: path.join(xdgData, 'opencode') };
}

interface HomeDirs {
  home: string;
  config: string;
  data: string;
  cache: string;
  state: string;
}

/** Creates the home's XDG dirs and seeds them once from the user's config and login (files already there are kept). */
function prepareHome(home: string, seedFrom: { configDir: string; dataDir: string } | null): HomeDirs {
  const dirs: HomeDirs = { home, config: path.join(home, 'config'), data: path.join(home, 'data'), cache: path.join(home, 'cache'), state: path.join(home, 'state') };
  for (const dir of [dirs.config, dirs.data, dirs.cache, dirs.state]) fs.mkdirSync(path.join(dir, 'opencode'), { recursive: true, mode: 0o700 });
  if (seedFrom !== null) {
    seedFiles(seedFrom.configDir, path.join(dirs.config, 'opencode'), USER_CONFIG_FILES);
    seedFiles(seedFrom.dataDir, path.join(dirs.data, 'opencode'), USER_DATA_FILES);
  }
  return dirs;
}

/**
 * Reads the CLI's stderr: keeps its tail for messages, and turns each failed model request in the
 * error log (`message="stream error"`, after which the CLI retries unless it gives up) into a
 * `retrying` event. An auth failure is not retried by the CLI, so it is no retry either.
 */
class OpencodeStderrReader extends LineReader {
  readonly tail = new OutputTail();
  private failures = 0;

  constructor(private readonly context: RunContext) {
    super();
  }

  protected line(raw: string): void {
    this.tail.add(`${raw}\n`);
    const retry = opencodeRetryLine(raw, this.failures + 1);
    if (retry === null) return;
    this.failures += 1;
    emitEvent(this.context, retry, `${transcriptLine(retry)}\n`);
  }
}

/** One readable line per event, for `loom logs`. */
export function transcriptLine(event: AgentEvent): string {
  return agentTranscriptLine('opencode', event, { shellTool: 'bash', costDigits: 6 });
}

function toRunResult(result: RunCommandResult, reader: JsonStreamReader<OpencodeFacts>, stderr: string, context: RunContext): RunResult {
  const facts = reader.facts;
  const summary = { output: facts.finalText, sessionId: facts.sessionId, usage: facts.usage, succeeded: opencodeSucceeded(facts) };
  return streamRunResult(result, context, summary, () => {
    const stray = reader.stray.text();
    const plain = stripAnsi(lastLine(stderr) || lastLine(stray));
    if (facts.error === undefined && facts.sessionId === undefined && (result.exitCode === 127 || result.exitCode === 126)) {
      return { message: `opencode CLI not found: ${plain}`, failure: { kind: 'config' } };
    }
    const detail = facts.error !== undefined ? describeOpencodeError(facts.error) : plain;
    return { message: withDetail(howItEnded(result.exitCode, 'ended without finishing its turn'), detail), failure: classifyOpencodeFailure(facts.error, stripAnsi(stderr + stray)) };
  });
}

function stripAnsi(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/\u001b\[[0-9;]*m/g, '');
}
