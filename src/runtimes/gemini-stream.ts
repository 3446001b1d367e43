/**
 * The Gemini CLI's `-o stream-json` stream, read purely: one JSONL line → `AgentEvent`s, a
 * reducer for the run's final facts (session id, usage, final text, success), and the
 * classification of a failure — from the error message (auth, rate limit with its reset time,
 * overloaded, agent) and from the exit code, which Gemini CLI 0.61 sets to the HTTP status of a
 * fatal API error modulo 256 (401 → 145, 429 → 173, 503 → 247).
 *
 * Lines (0.61): `init` {session_id, model}, `message` {role, content, delta}, `tool_use`
 * {tool_name, tool_id, parameters}, `tool_result` {tool_id, status, output?, error?}, `error`
 * {severity, message}, `result` {status, error?, stats {input_tokens, output_tokens, cached}}.
 * Assistant `message`s with `delta: true` are pieces of one reply; the stats of `result` are this
 * process's totals, so a resumed session is not double-counted.
 */
import { resetTime } from './codex-stream.js';
import type { AgentEvent, FailureKind, RunFailure, Usage } from './runtime.js';
import { isRecord, record, str, num, json } from './json-fields.js';
import type { StreamLine, StreamMapping } from './json-stream-reader.js';

/** What a whole run said, accumulated line by line with `reduceGemini`. */
export interface GeminiFacts {
  sessionId?: string;
  model?: string;
  usage?: Usage;
  /** The assistant's text since the last tool call: its final reply. */
  finalText: string;
  /** A `result` line arrived. */
  completed: boolean;
  failed: boolean;
  /** The failure's message (`result.error`, else the last fatal `error` line). */
  errorMessage?: string;
}

export const emptyGeminiFacts: GeminiFacts = { finalText: '', completed: false, failed: false };

/** The Gemini CLI's stream for `JsonStreamReader`: its stderr retry notices are events too. */
export const geminiStream: StreamMapping<GeminiFacts> = {
  initial: emptyGeminiFacts,
  reduce: reduceGemini,
  events: (line) => geminiEvents(line),
  notice: geminiNotice,
  plainEvent: geminiRetryLine,
};

/** The typed events of one line. */
export function geminiEvents(line: StreamLine): AgentEvent[] {
  switch (line.type) {
    case 'init': {
      const id = str(line.session_id);
      const model = str(line.model);
      return id === '' ? [] : [{ type: 'session', sessionId: id, ...(model === '' ? {} : { model }) }];
    }
    case 'message':
      return line.role === 'assistant' && str(line.content) !== '' ? [{ type: 'text', text: str(line.content) }] : [];
    case 'tool_use':
      return [{ type: 'tool_use', name: str(line.tool_name), input: toolInput(str(line.tool_name), record(line.parameters)) }];
    case 'tool_result': {
      const ok = line.status === 'success';
      const error = record(line.error);
      return [{ type: 'tool_result', ok, output: ok ? json(line.output) : str(error.message) || json(line.output) }];
    }
    case 'result': {
      const usage = usageOf(line.stats);
      const events: AgentEvent[] = usage === undefined ? [] : [{ type: 'usage', usage }];
      if (line.status !== 'success') events.push({ type: 'result', ok: false, text: resultError(line) });
      return events;
    }
    default:
      return [];
  }
}

/** A line's note for the transcript that is no event: the CLI's warnings and errors. */
export function geminiNotice(line: StreamLine): string | null {
  return line.type === 'error' ? `${str(line.severity) || 'error'}: ${str(line.message)}` : null;
}

/**
 * A line the CLI prints (on stderr) before it retries a model request on its own —
 * "Attempt 2 failed with status 503. Retrying with backoff... <error>", "Attempt 1 failed: <why>.
 * Retrying after 5000ms..." — as a `retrying` event; null for any other line.
 */
export function geminiRetryLine(raw: string): Extract<AgentEvent, { type: 'retrying' }> | null {
  const match = /^Attempt (\d+) failed(.*?)\. Retrying (?:with backoff|after (\d+)ms)\.\.\.\s*(.*)$/.exec(raw.trim());
  if (match === null) return null;
  const how = match[2]!.trim().replace(/^:\s*/, '').replace(/^with\s+/, '');
  const detail = match[4]!.trim();
  const reason = [how, detail].filter((part) => part !== '').join(': ') || 'failed';
  return { type: 'retrying', attempt: Number(match[1]), reason, ...(match[3] === undefined ? {} : { delayMs: Number(match[3]) }) };
}

/** Folds one line into the run's facts. */
export function reduceGemini(facts: GeminiFacts, line: StreamLine): GeminiFacts {
  switch (line.type) {
    case 'init': {
      const id = str(line.session_id);
      const model = str(line.model);
      return { ...facts, ...(id === '' ? {} : { sessionId: id }), ...(model === '' ? {} : { model }) };
    }
    case 'message': {
      if (line.role !== 'assistant') return facts;
      const text = str(line.content);
      return { ...facts, finalText: line.delta === true ? facts.finalText + text : text };
    }
    case 'tool_use':
      // Text before a tool call was narration; the final reply is what comes after the last one.
      return { ...facts, finalText: '' };
    case 'error':
      return line.severity === 'error' ? { ...facts, errorMessage: str(line.message) || facts.errorMessage } : facts;
    case 'result': {
      const usage = usageOf(line.stats);
      const failed = line.status !== 'success';
      return {
        ...facts,
        completed: true,
        failed: facts.failed || failed,
        ...(usage === undefined ? {} : { usage }),
        ...(failed ? { errorMessage: resultError(line) || facts.errorMessage || 'run failed' } : {}),
      };
    }
    default:
      return facts;
  }
}

/** Did the run end well: a `result` line with status success, and no failure. */
export function geminiSucceeded(facts: GeminiFacts): boolean {
  return facts.completed && !facts.failed;
}

/** Why a run failed, from its error message and exit code. `now` anchors relative reset times. */
export function classifyGeminiFailure(message: string, exitCode: number | null, now: Date = new Date()): RunFailure {
  // The exit code carries the HTTP status of a fatal API error: firmer than the message's words.
  const kind = kindOfExitCode(exitCode) ?? kindOf(message) ?? 'agent';
  if (kind !== 'rate-limit') return { kind };
  const resetAt = resetTime(message, now) ?? retryDelay(message, now);
  return resetAt === undefined ? { kind } : { kind, resetAt };
}

/** The HTTP status a fatal API error left in the exit code (status mod 256), if it looks like one. */
export function statusOfExitCode(exitCode: number | null): number | undefined {
  if (exitCode === null) return undefined;
  // 400..599 mod 256: 144..255 and 0..87; only the upper range is unambiguous (small codes are the CLI's own).
  const status = exitCode + 256;
  return exitCode >= 144 && status <= 511 ? status : undefined;
}

function kindOf(message: string): FailureKind | undefined {
  const code = /"code"\s*:\s*(\d{3})/.exec(message)?.[1] ?? /\b(?:status|code):?\s*(\d{3})\b/i.exec(message)?.[1];
  if (code === '401' || code === '403' || /UNAUTHENTICATED|PERMISSION_DENIED|API_KEY_INVALID|api key not valid|invalid api key|must specify the GEMINI_API_KEY|Please set an Auth method|Invalid auth method/i.test(message)) return 'auth';
  if (code === '429' || /RESOURCE_EXHAUSTED|rate[ _-]?limit|quota|too many requests/i.test(message)) return 'rate-limit';
  if ((code !== undefined && code.startsWith('5')) || /overloaded|UNAVAILABLE|high demand|service unavailable|internal error|bad gateway/i.test(message)) return 'overloaded';
  return undefined;
}

function kindOfExitCode(exitCode: number | null): FailureKind | undefined {
  const status = statusOfExitCode(exitCode);
  if (status === 401 || status === 403) return 'auth';
  if (status === 429) return 'rate-limit';
  if (status !== undefined && status >= 500) return 'overloaded';
  return undefined;
}

/** Google's RetryInfo as the CLI prints it: `"retryDelay":"20s"` / `Please retry in 20.5s`. */
function retryDelay(message: string, now: Date): string | undefined {
  const seconds = /"retryDelay"\s*:\s*"(\d+(?:\.\d+)?)s"/.exec(message)?.[1] ?? /retry in (\d+(?:\.\d+)?)s\b/i.exec(message)?.[1];
  return seconds === undefined ? undefined : new Date(now.getTime() + Math.ceil(Number(seconds) * 1000)).toISOString();
}

function resultError(line: StreamLine): string {
  return str(record(line.error).message);
}

function usageOf(value: unknown): Usage | undefined {
  if (!isRecord(value)) return undefined;
  return { inputTokens: num(value.input_tokens), outputTokens: num(value.output_tokens), cachedInputTokens: num(value.cached), costUsd: null };
}

/** A tool call's input for the transcript: the command of a shell call, else its parameters. */
function toolInput(name: string, parameters: Record<string, unknown>): string {
  if (name === 'run_shell_command' && typeof parameters.command === 'string') return parameters.command;
  return JSON.stringify(parameters);
}

