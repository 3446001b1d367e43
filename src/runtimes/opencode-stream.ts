/**
 * The opencode CLI's `run --format json` stream, read purely: one JSON line → `AgentEvent`s, a
 * reducer for the run's final facts (session id, usage summed over steps, final text, success)
 * and the classification of an `error` event (auth, rate limit with its reset time, overloaded,
 * agent); and one line of its error log (stderr) → the `retrying` event it means, if any.
 *
 * Every line carries `sessionID`. `step_finish` closes one model call with that call's tokens and
 * cost (USD), so a run's usage is the sum over its steps; `text` and `tool_use` carry finished
 * parts; `error` carries the provider's error (name, message, HTTP status and headers).
 */
import { classifyCodexFailure, resetTime } from './codex-stream.js';
import type { AgentEvent, RunFailure, Usage } from './runtime.js';
import { isRecord, record, str, num } from './json-fields.js';
import type { StreamLine, StreamMapping } from './json-stream-reader.js';

/** What a whole run said, accumulated line by line with `reduceOpencode`. */
export interface OpencodeFacts {
  sessionId?: string;
  /** Summed over every `step_finish`; undefined when no step finished. */
  usage?: Usage;
  /** The text parts of the last assistant message that had text, joined. */
  finalText: string;
  /** The message the final text belongs to. */
  finalMessageId?: string;
  /** How many model calls (`step_finish`) the run made. */
  steps: number;
  /** The first `error` event's error, if any. */
  error?: OpencodeError;
}

/** The parts of an `error` event that classification needs. */
export interface OpencodeError {
  name: string;
  message: string;
  statusCode?: number;
  headers: Record<string, string>;
}

export const emptyOpencodeFacts: OpencodeFacts = { finalText: '', steps: 0 };

/** opencode's stream for `JsonStreamReader`: the session id is reported once, from the first line that has it. */
export const opencodeStream: StreamMapping<OpencodeFacts> = {
  initial: emptyOpencodeFacts,
  reduce: reduceOpencode,
  events: (line, before) => opencodeEvents(line, before.sessionId),
};

/** The typed events of one line. `known`: the session id already reported (the first line reports it). */
export function opencodeEvents(line: StreamLine, known?: string): AgentEvent[] {
  const events: AgentEvent[] = [];
  const sessionId = sessionOf(line);
  if (sessionId !== '' && sessionId !== known) events.push({ type: 'session', sessionId });
  const part = record(line.part);
  switch (line.type) {
    case 'text': {
      const text = str(part.text);
      if (text !== '') events.push({ type: 'text', text });
      break;
    }
    case 'tool_use': {
      const state = record(part.state);
      events.push({ type: 'tool_use', name: str(part.tool), input: toolInput(str(part.tool), state.input) });
      const status = str(state.status);
      if (status === 'completed' || status === 'error') {
        events.push({ type: 'tool_result', ok: status === 'completed', output: status === 'completed' ? str(state.output) : str(state.error) });
      }
      break;
    }
    case 'step_finish': {
      const usage = stepUsage(part);
      if (usage !== null) events.push({ type: 'usage', usage });
      break;
    }
    case 'error': {
      const error = errorOf(line);
      events.push({ type: 'result', ok: false, text: error.statusCode === undefined ? error.message : `${error.statusCode} ${error.message}` });
      break;
    }
    default:
      break;
  }
  return events;
}

/** A `stream error` line of opencode's error log as the `attempt`-th `retrying` event; null for any other line. */
export function opencodeRetryLine(raw: string, attempt: number): Extract<AgentEvent, { type: 'retrying' }> | null {
  if (!/^timestamp=\S+ level=ERROR\b/.test(raw) || !/\bmessage="stream error"/.test(raw)) return null;
  const reason = /\berror\.error="((?:[^"\\]|\\.)*)"/.exec(raw)?.[1]?.replace(/\\(.)/g, '$1') ?? 'stream error';
  if (/\b40[13]\b|unauthori[sz]ed|authentication|invalid (?:x-)?api[ -]key|ProviderAuthError/i.test(reason)) return null;
  return { type: 'retrying', attempt, reason };
}

/** Folds one line into the run's facts. */
export function reduceOpencode(facts: OpencodeFacts, line: StreamLine): OpencodeFacts {
  const sessionId = sessionOf(line);
  const next: OpencodeFacts = facts.sessionId === undefined && sessionId !== '' ? { ...facts, sessionId } : facts;
  const part = record(line.part);
  switch (line.type) {
    case 'text': {
      const text = str(part.text);
      if (text === '') return next;
      const messageId = str(part.messageID);
      const same = next.finalMessageId !== undefined && next.finalMessageId === messageId && next.finalText !== '';
      return { ...next, finalText: same ? `${next.finalText}\n${text}` : text, finalMessageId: messageId };
    }
    case 'step_finish': {
      const step = stepUsage(part);
      const usage = step === null ? next.usage : addUsage(next.usage, step);
      return { ...next, ...(usage === undefined ? {} : { usage }), steps: next.steps + 1 };
    }
    case 'error':
      return next.error === undefined ? { ...next, error: errorOf(line) } : next;
    default:
      return next;
  }
}

/** Did the run end well, as far as the stream tells: no `error` event (the exit code is the caller's). */
export function opencodeSucceeded(facts: OpencodeFacts): boolean {
  return facts.error === undefined;
}

/** One line for messages: `APIError 429: rate limit ...`. */
export function describeOpencodeError(error: OpencodeError): string {
  return `${error.name}${error.statusCode === undefined ? '' : ` ${error.statusCode}`}: ${error.message}`;
}

/**
 * Why a run failed: from its `error` event (status, name, message, rate-limit headers) or, when
 * there is none, from the text it printed. `now` anchors relative reset times.
 */
export function classifyOpencodeFailure(error: OpencodeError | undefined, text: string, now: Date = new Date()): RunFailure {
  if (error === undefined) return classifyCodexFailure(text, now);
  if (/ProviderAuthError/i.test(error.name)) return { kind: 'auth' };
  const status = error.statusCode;
  const described = `${status === undefined ? '' : `status ${status} `}${error.message}`;
  const failure = status === 529 ? { kind: 'overloaded' as const } : classifyCodexFailure(described, now);
  if (failure.kind !== 'rate-limit') return failure;
  const resetAt = headerReset(error.headers, now) ?? failure.resetAt;
  return resetAt === undefined ? { kind: 'rate-limit' } : { kind: 'rate-limit', resetAt };
}

/**
 * When a rate limit resets, from the provider's response headers: Anthropic's unified reset
 * (unix seconds) or per-limit resets (ISO) of an exhausted limit, OpenAI's `x-ratelimit-reset-*`
 * ("6m0s"), else `retry-after-ms` / `retry-after` (seconds or an HTTP date).
 */
export function headerReset(headers: Record<string, string>, now: Date): string | undefined {
  const h = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
  const unified = h['anthropic-ratelimit-unified-reset'];
  if (unified !== undefined && /^\d+$/.test(unified)) return new Date(Number(unified) * 1000).toISOString();
  for (const limit of ['requests', 'tokens', 'input-tokens', 'output-tokens']) {
    const reset = h[`anthropic-ratelimit-${limit}-reset`];
    if (reset !== undefined && h[`anthropic-ratelimit-${limit}-remaining`] === '0' && !Number.isNaN(Date.parse(reset))) return new Date(reset).toISOString();
  }
  for (const limit of ['requests', 'tokens']) {
    const reset = h[`x-ratelimit-reset-${limit}`];
    if (reset !== undefined && h[`x-ratelimit-remaining-${limit}`] === '0') {
      const at = resetTime(`resets in ${reset}`, now);
      if (at !== undefined) return at;
    }
  }
  const ms = h['retry-after-ms'];
  if (ms !== undefined && Number.isFinite(Number(ms)) && ms !== '') return new Date(now.getTime() + Number(ms)).toISOString();
  const after = h['retry-after'];
  if (after === undefined || after === '') return undefined;
  if (/^\d+(\.\d+)?$/.test(after)) return new Date(now.getTime() + Number(after) * 1000).toISOString();
  const date = Date.parse(after);
  return Number.isNaN(date) ? undefined : new Date(date).toISOString();
}

/**
 * One step's tokens and cost. `inputTokens` is input not read from cache (plain + cache
 * writes), `cachedInputTokens` the cache reads, as the other runtimes count them.
 */
function stepUsage(part: Record<string, unknown>): Usage | null {
  if (!isRecord(part.tokens) && typeof part.cost !== 'number') return null;
  const tokens = record(part.tokens);
  const cache = record(tokens.cache);
  return {
    inputTokens: num(tokens.input) + num(cache.write),
    outputTokens: num(tokens.output) + num(tokens.reasoning),
    cachedInputTokens: num(cache.read),
    costUsd: typeof part.cost === 'number' && Number.isFinite(part.cost) ? part.cost : null,
  };
}

function addUsage(sum: Usage | undefined, step: Usage): Usage {
  if (sum === undefined) return step;
  return {
    inputTokens: sum.inputTokens + step.inputTokens,
    outputTokens: sum.outputTokens + step.outputTokens,
    cachedInputTokens: sum.cachedInputTokens + step.cachedInputTokens,
    costUsd: sum.costUsd === null && step.costUsd === null ? null : roundUsd((sum.costUsd ?? 0) + (step.costUsd ?? 0)),
  };
}

/** Sums of small floats drift (0.1 + 0.2); a cost needs no more than 1e-10 USD. */
function roundUsd(value: number): number {
  return Math.round(value * 1e10) / 1e10;
}

function errorOf(line: StreamLine): OpencodeError {
  const error = record(line.error);
  const data = record(error.data);
  const name = str(error.name) || 'Error';
  const message = str(data.message) || str(error.message) || name;
  const headers = Object.fromEntries(Object.entries(record(data.responseHeaders)).filter((e): e is [string, string] => typeof e[1] === 'string'));
  const status = typeof data.statusCode === 'number' ? data.statusCode : undefined;
  return { name, message, headers, ...(status === undefined ? {} : { statusCode: status }) };
}

/** A tool's input for the transcript: the command of `bash`, else the JSON arguments. */
function toolInput(tool: string, input: unknown): string {
  const args = record(input);
  if (tool === 'bash' && typeof args.command === 'string') return args.command;
  return input === undefined || input === null ? '' : JSON.stringify(input);
}

function sessionOf(line: StreamLine): string {
  return str(line.sessionID) || str(record(line.part).sessionID);
}

