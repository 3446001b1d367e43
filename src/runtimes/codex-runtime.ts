/**
 * `CodexRuntime`: runs the OpenAI Codex CLI (`codex exec --json`) headlessly as the agent — or
 * `codex exec resume <thread>` to continue an earlier run — with the shared watchdogs of
 * `runCommand`, and turns its JSONL stream into events, a readable transcript, session id,
 * usage and a classified failure.
 *
 * Each task gets its own `CODEX_HOME` (settings, sessions for resume), so runs share no
 * configuration; an optional `config` (TOML) is written there before every run. The CLI's own
 * retries are capped at `cliRetries`: through `-c` for a provider the config declares, and from
 * the stream ("Reconnecting... N/M") for the built-in ones, whose settings cannot be changed. The environment
 * is the `agentEnv` allowlist plus the CLI's own key variables, nothing else.
 */
import fs from 'node:fs';
import path from 'node:path';
import { agentEnv } from '../process/agent-env.js';
import { codexRetryOverrides } from './codex-config.js';
import { classifyCodexFailure, codexStream, codexSucceeded, codexUsage } from './codex-stream.js';
import type { TokenCounts } from './codex-stream.js';
import { guarded } from './emit-event.js';
import { execLine, promptNeedsStdin } from './exec-line.js';
import { JsonStreamReader } from './json-stream-reader.js';
import { loomVars } from './loom-vars.js';
import { cliRetriesOf } from './retry-cap.js';
import { runAgentCommand } from './run-agent-command.js';
import type { AgentEvent, AgentRuntime, RunContext, RunResult } from './runtime.js';
import { streamRunResult, turnFailure } from './stream-run-result.js';
import { taskHome } from './task-home.js';
import { transcriptBlock } from './transcript-block.js';
import { withAgentFiles } from './with-agent-files.js';

/** The CLI's own variables that may reach it: its API keys and endpoint. */
const CODEX_AUTH_ENV = ['CODEX_API_KEY', 'OPENAI_API_KEY'] as const;
export const CODEX_ENV = [...CODEX_AUTH_ENV, 'OPENAI_BASE_URL'] as const;

/** Where a thread's token totals are kept between runs, inside its `CODEX_HOME`. */
const TOTALS_FILE = 'loom-thread-totals.json';

export interface CodexRuntimeOptions {
  /** The CLI, as a shell command prefix (default `codex`). */
  command?: string;
  /** The `CODEX_HOME` for a run; default the task's home (`taskHome`). Kept between runs for resume. */
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
    this.home = options.home ?? ((context) => taskHome(context, 'codex'));
    this.config = options.config;
  }

  async run(request: RunContext): Promise<RunResult> {
    return withAgentFiles('loom-codex-', request, async (files, context) => {
      const home = this.home(context);
      fs.mkdirSync(home, { recursive: true });
      if (this.config !== undefined) fs.writeFileSync(path.join(home, 'config.toml'), this.config);
      const retryCap = codexRetryOverrides(readConfig(home), context.args ?? [], cliRetriesOf(context));
      const env = agentEnv(
        process.env,
        { ...loomVars(context, files), CODEX_HOME: home },
        CODEX_ENV,
      );
      const previous = context.resumeSessionId === undefined ? undefined : readTotals(home)[context.resumeSessionId];
      // The merged stdout/stderr stream: JSON lines become events, the rest is transcript.
      const stream = new JsonStreamReader(context, codexStream(previous), { name: 'codex', event: transcript });
      const command = this.commandLine(context, files.promptFile, retryCap);
      const result = await runAgentCommand({ command, env, files, homes: [home], program: this.command }, context, (text) => stream.write(text));
      stream.end();
      const facts = stream.facts;
      const sessionId = facts.sessionId;
      const totals = facts.totals;
      // Losing the totals only makes a later resume over-count; it must not fail this run.
      if (sessionId !== undefined && totals !== undefined) guarded(() => saveTotals(home, sessionId, totals));
      const summary = { output: facts.finalText, sessionId, usage: codexUsage(facts, previous), succeeded: codexSucceeded(facts) };
      return streamRunResult(result, context, summary, () => turnFailure('codex', result.exitCode, facts, stream.lastPlainLine, (cause) => classifyCodexFailure(cause)));
    }, { kind: 'config' });
  }

  /** `codex exec --json ... [resume <thread>] <prompt>`, each word quoted for `sh -c`. */
  private commandLine(context: RunContext, promptFile: string, retryCap: readonly string[]): string {
    const words = ['exec', '--json', '--skip-git-repo-check', '-s', codexSandboxMode(context), ...retryCap];
    if (context.model !== undefined && context.model !== '') words.push('-m', context.model);
    words.push(...(context.args ?? []));
    if (context.resumeSessionId !== undefined) words.push('resume', context.resumeSessionId);
    // `--` keeps a prompt that starts with `-` from being read as an option.
    const viaStdin = promptNeedsStdin(context.prompt);
    words.push('--', viaStdin ? '-' : context.prompt);
    return execLine(this.command, words, viaStdin ? promptFile : undefined);
  }
}

/**
 * Codex's own sandbox: `workspace-write` (writes only in the worktree) when Loom runs it without
 * one; inside Loom's sandbox, off (`danger-full-access`). Loom's sandbox is the boundary then: it
 * already limits what the agent reaches, and also lets it commit in the worktree, whose git data
 * lies outside it and which Codex's would refuse. (On Linux Codex's sandbox is bubblewrap too;
 * nested in Loom's it would only repeat the same walls, narrower.)
 */
export function codexSandboxMode(context: RunContext): 'workspace-write' | 'danger-full-access' {
  return context.sandbox?.type === 'bwrap' ? 'danger-full-access' : 'workspace-write';
}

/** One event as transcript lines for `loom logs`. */
function transcript(event: AgentEvent): string {
  return transcriptBlock('codex', event, { shellTool: 'shell' });
}

/** The home's `config.toml` text ('' when there is none). */
function readConfig(home: string): string {
  try {
    return fs.readFileSync(path.join(home, 'config.toml'), 'utf8');
  } catch {
    return '';
  }
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
