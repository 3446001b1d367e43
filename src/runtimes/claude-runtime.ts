/**
 * `ClaudeRuntime`: runs Claude Code headlessly (`claude -p --output-format stream-json`, the
 * prompt on stdin from a file) as the agent — in the task's working directory, under
 * `runCommand`'s watchdogs, with an allowlisted environment plus the CLI's own auth variables —
 * and turns its stream into typed events, a readable transcript, the session id, usage and a
 * classified failure.
 */
import fs from 'node:fs';
import { agentEnv } from '../process/agent-env.js';
import type { RunCommandResult } from '../process/run-command.js';
import { classifyClaudeFailure, claudeStream } from './claude-stream.js';
import type { ClaudeFacts } from './claude-stream.js';
import { execLine } from './exec-line.js';
import { JsonStreamReader } from './json-stream-reader.js';
import { loomVars } from './loom-vars.js';
import { OUTPUT_LIMIT, OutputTail } from './output-tail.js';
import { cliRetriesOf } from './retry-cap.js';
import { runAgentCommand } from './run-agent-command.js';
import type { AgentEvent, AgentRuntime, RunContext, RunFailure, RunResult } from './runtime.js';
import { shellQuote } from './shell-quote.js';
import { streamRunResult } from './stream-run-result.js';
import { taskHome } from './task-home.js';
import { firstLine, lastLine } from './text-lines.js';
import { transcriptLine as agentTranscriptLine } from './transcript-line.js';
import { howItEnded, withDetail } from './watchdog-result.js';
import { withAgentFiles } from './with-agent-files.js';

/** Claude Code's credentials from the environment: an API key, a bearer token, or a long-lived OAuth token (`claude setup-token`). */
const CLAUDE_AUTH_ENV = ['ANTHROPIC_API_KEY', 'ANTHROPIC_AUTH_TOKEN', 'CLAUDE_CODE_OAUTH_TOKEN'] as const;

/** The caller's variables Claude Code itself needs (auth, endpoint, provider); nothing else passes. */
export const CLAUDE_ENV_PASSTHROUGH = [...CLAUDE_AUTH_ENV, 'ANTHROPIC_BASE_URL', 'CLAUDE_CODE_USE_BEDROCK', 'CLAUDE_CODE_USE_VERTEX'] as const;

export interface ClaudeRuntimeOptions {
  /** Path to the `claude` executable; default `claude` on PATH. */
  command?: string;
}

export class ClaudeRuntime implements AgentRuntime {
  readonly name = 'claude';
  private readonly command: string;

  constructor(options: ClaudeRuntimeOptions = {}) {
    this.command = options.command ?? 'claude';
  }

  async run(request: RunContext): Promise<RunResult> {
    return withAgentFiles('loom-claude-run-', request, async (files, context) => {
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
      // stderr is read apart: a stderr chunk landing inside a half-read JSON line would spoil it.
      const command = execLine(shellQuote(this.command), args, files.promptFile);
      const env = agentEnv(
        process.env,
        {
          ...loomVars(context, files),
          // Bypass-permissions mode refuses to run as root outside a sandbox; the worktree is ours.
          IS_SANDBOX: '1',
          CLAUDE_CONFIG_DIR: configDir,
          // The CLI retries API errors on its own with growing waits; Loom classifies the failure
          // and reschedules instead, so `cliRetries` quick retries is all the CLI gets.
          CLAUDE_CODE_MAX_RETRIES: String(cliRetriesOf(context)),
          // No autoupdater, telemetry or error reporting from an unattended run.
          CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
          DISABLE_AUTOUPDATER: '1',
        },
        CLAUDE_ENV_PASSTHROUGH,
      );

      const reader = new JsonStreamReader(context, claudeStream, { name: 'claude', event: (event) => `${transcriptLine(event)}\n` });
      const stderr = new OutputTail();
      const result = await runAgentCommand(
        { command, env, files, homes: [configDir], program: this.command },
        context,
        (text) => reader.write(text),
        (text) => stderr.add(text),
      );
      reader.end();
      return toRunResult(result, reader, stderr.text(), context);
    }, { kind: 'config' });
  }
}

/**
 * Where the CLI keeps its settings and sessions: per task, so runs of different tasks share
 * nothing while a resume finds its session — under Loom's `state_dir` for the task, else a temp
 * dir named after the working directory (a resume must use the same cwd anyway).
 */
export function claudeConfigDir(context: RunContext): string {
  return taskHome(context, 'claude');
}

/** One readable line per event, for `loom logs`. */
export function transcriptLine(event: AgentEvent): string {
  return agentTranscriptLine('claude', event, { sessionModel: true, retryDelay: true, costDigits: 4, resultFirstLine: true });
}

/** Success needs the stream's `result` line without `is_error`; the stream reported that line's `result` event itself. */
function toRunResult(result: RunCommandResult, reader: JsonStreamReader<ClaudeFacts>, stderr: string, context: RunContext): RunResult {
  const facts = reader.facts;
  const stray = reader.stray.text();
  const output = facts.resultSeen ? facts.resultText : (stray + stderr).slice(-OUTPUT_LIMIT);
  const summary = { output, sessionId: facts.sessionId, usage: facts.usage, succeeded: facts.resultSeen && !facts.isError, reportsResult: true };
  return streamRunResult(result, context, summary, () => {
    const detail = failureDetail(facts, stray, stderr, result.exitCode);
    const failure: RunFailure = !facts.resultSeen && facts.apiErrors.length === 0 && (result.exitCode === 127 || result.exitCode === 126) ? { kind: 'config' } : classifyClaudeFailure(facts, stderr);
    return { message: withDetail(howItEnded(result.exitCode, 'exited'), detail), failure };
  });
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
