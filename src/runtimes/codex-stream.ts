/**
 * The Codex CLI's `exec --json` stream, read purely: one JSONL line → `AgentEvent`s, a reducer
 * for the run's final facts (thread id, usage, last agent message, success), and the
 * classification of a failure message (auth, rate limit with its reset time, overloaded, agent).
 *
 * Codex reports token counts cumulatively per thread: a resumed thread's `turn.completed` still
 * includes the earlier runs, so callers pass those earlier totals to get this run's share.
 */
import type { AgentEvent, RunFailure, Usage } from './runtime.js';
import { isRecord, record, str, num, json } from './json-fields.js';
import type { StreamLine, StreamMapping } from './json-stream-reader.js';

/** Token counts without a price. */
export type TokenCounts = Omit<Usage, 'costUsd'>;

/** What a whole run said, accumulated line by line with `reduceCodex`. */
export interface CodexFacts {
  sessionId?: string;
  /** Cumulative per thread, from the last `turn.completed`. */
  totals?: TokenCounts;
  /** Text of the last agent message. */
  finalText: string;
  completed: boolean;
  failed: boolean;
  /** The failure's message (`turn.failed`, else the last fatal `error`). */
  errorMessage?: string;
}

export const emptyCodexFacts: CodexFacts = { finalText: '', completed: false, failed: false };

/** The Codex stream for `JsonStreamReader`. `previous`: the thread's totals before this run (resume). */
export function codexStream(previous?: TokenCounts): StreamMapping<CodexFacts> {
  return { initial: emptyCodexFacts, reduce: reduceCodex, events: (line) => codexEvents(line, previous), notice: codexNotice };
}

/** The typed events of one line. `previous`: the thread's totals before this run (resume). */
export function codexEvents(line: StreamLine, previous?: TokenCounts): AgentEvent[] {
  switch (line.type) {
    case 'thread.started': {
      const id = str(line.thread_id);
      return id === '' ? [] : [{ type: 'session', sessionId: id }];
    }
    case 'item.started':
      return itemStarted(record(line.item));
    case 'item.completed':
      return itemCompleted(record(line.item));
    case 'turn.completed': {
      const totals = tokenCounts(line.usage);
      return totals === null ? [] : [{ type: 'usage', usage: { ...runShare(totals, previous), costUsd: null } }];
    }
    case 'turn.failed':
      return [{ type: 'result', ok: false, text: str(record(line.error).message) }];
    case 'error': {
      const retry = retryNotice(str(line.message));
      return retry === null ? [] : [retry];
    }
    default:
      return [];
  }
}

/** A line's note for the transcript that is no event: the CLI's warnings and errors. */
export function codexNotice(line: StreamLine): string | null {
  if (line.type === 'item.completed') {
    const item = record(line.item);
    return item.type === 'error' ? `warning: ${str(item.message)}` : null;
  }
  if (line.type === 'error') {
    const message = str(line.message);
    return retryNotice(message) === null ? `error: ${message}` : null;
  }
  return null;
}

/** Folds one line into the run's facts. */
export function reduceCodex(facts: CodexFacts, line: StreamLine): CodexFacts {
  switch (line.type) {
    case 'thread.started': {
      const id = str(line.thread_id);
      return id === '' ? facts : { ...facts, sessionId: id };
    }
    case 'item.completed': {
      const item = record(line.item);
      return item.type === 'agent_message' ? { ...facts, finalText: str(item.text) } : facts;
    }
    case 'turn.completed': {
      const totals = tokenCounts(line.usage);
      return { ...facts, completed: true, ...(totals === null ? {} : { totals }) };
    }
    case 'turn.failed':
      return { ...facts, failed: true, errorMessage: str(record(line.error).message) || facts.errorMessage || 'turn failed' };
    case 'error': {
      const message = str(line.message);
      if (retryNotice(message) !== null) return facts;
      return { ...facts, failed: true, errorMessage: facts.errorMessage ?? message };
    }
    default:
      return facts;
  }
}

/** Did the run end well: a completed turn and no failure. */
export function codexSucceeded(facts: CodexFacts): boolean {
  return facts.completed && !facts.failed;
}

/** This run's tokens: the thread's totals minus what it had before (never below zero). */
export function runShare(totals: TokenCounts, previous?: TokenCounts): TokenCounts {
  if (previous === undefined) return totals;
  return {
    inputTokens: Math.max(0, totals.inputTokens - previous.inputTokens),
    outputTokens: Math.max(0, totals.outputTokens - previous.outputTokens),
    cachedInputTokens: Math.max(0, totals.cachedInputTokens - previous.cachedInputTokens),
  };
}

/** The run's usage, or undefined when no turn reported any. */
export function codexUsage(facts: CodexFacts, previous?: TokenCounts): Usage | undefined {
  return facts.totals === undefined ? undefined : { ...runShare(facts.totals, previous), costUsd: null };
}

/** Why a run failed, from its error message. `now` anchors relative reset times ("in 20s"). */
export function classifyCodexFailure(message: string, now: Date = new Date()): RunFailure {
  const status = /\bstatus:?\s*(\d{3})\b/i.exec(message)?.[1];
  const kind =
    status === '401' || status === '403' || /unauthori[sz]ed|invalid[_ ]api[_ ]key|incorrect api key|authentication|not logged in|missing environment variable/i.test(message)
      ? 'auth'
      : status === '429' || /rate[ _-]?limit|usage limit|too many requests|quota/i.test(message)
        ? 'rate-limit'
        : (status !== undefined && status.startsWith('5')) || /overloaded|server_error|high demand|service unavailable|internal server error|bad gateway/i.test(message)
          ? 'overloaded'
          : 'agent';
  if (kind !== 'rate-limit') return { kind };
  const resetAt = resetTime(message, now);
  return resetAt === undefined ? { kind } : { kind, resetAt };
}

/** "try again in 1m20s" / "resets in 2 hours" / "resets at <ISO time>" → ISO time. */
export function resetTime(message: string, now: Date): string | undefined {
  const absolute = /(?:resets?|try again|retry)\s+(?:at|after)\s+(\d{4}-\d{2}-\d{2}[T ][\d:.]+(?:Z|[+-]\d{2}:?\d{2})?)/i.exec(message)?.[1];
  if (absolute !== undefined) {
    const time = new Date(absolute);
    if (!Number.isNaN(time.getTime())) return time.toISOString();
  }
  const relative = /(?:resets?|try again|retry)\s+(?:in|after)\s+((?:\d+(?:\.\d+)?\s*(?:ms|milliseconds?|s|secs?|seconds?|m|mins?|minutes?|h|hrs?|hours?|d|days?)\s*)+)/i.exec(message)?.[1];
  if (relative === undefined) return undefined;
  let ms = 0;
  for (const part of relative.matchAll(/(\d+(?:\.\d+)?)\s*([a-z]+)/gi)) {
    ms += Number(part[1]) * unitMs(part[2] ?? '');
  }
  return ms > 0 ? new Date(now.getTime() + Math.ceil(ms)).toISOString() : undefined;
}

function unitMs(unit: string): number {
  const u = unit.toLowerCase();
  if (u === 'ms' || u.startsWith('milli')) return 1;
  if (u.startsWith('s')) return 1_000;
  if (u.startsWith('m')) return 60_000;
  if (u.startsWith('h')) return 3_600_000;
  return 86_400_000;
}

/**
 * "Reconnecting... 2/5 (reason)": the CLI retrying on its own, not a failure. A reconnect of the
 * Responses WebSocket (the reason names a `ws://`/`wss://` URL) has a way out of its own — the CLI
 * falls back to HTTPS when the socket keeps failing (a proxy that blocks WebSockets) — so it is
 * marked `fallback` and not held against `cliRetries`.
 */
function retryNotice(message: string): AgentEvent | null {
  const match = /^Reconnecting\.\.\.\s*(?:(\d+)\/\d+)?\s*(.*)$/s.exec(message);
  if (match === null) return null;
  const reason = (match[2] ?? '').replace(/^\((.*)\)$/s, '$1').trim();
  const fallback = /\bwss?:\/\//.test(reason);
  return { type: 'retrying', attempt: Number(match[1] ?? 0), reason: reason === '' ? message : reason, ...(fallback ? { fallback: true } : {}) };
}

function itemStarted(item: Record<string, unknown>): AgentEvent[] {
  switch (item.type) {
    case 'command_execution':
      return [{ type: 'tool_use', name: 'shell', input: str(item.command) }];
    case 'mcp_tool_call':
      return [{ type: 'tool_use', name: `${str(item.server)}.${str(item.tool)}`, input: json(item.arguments) }];
    case 'web_search':
      return [{ type: 'tool_use', name: 'web_search', input: str(item.query) }];
    default:
      return [];
  }
}

function itemCompleted(item: Record<string, unknown>): AgentEvent[] {
  switch (item.type) {
    case 'agent_message':
      return [{ type: 'text', text: str(item.text) }];
    case 'command_execution':
      return [{ type: 'tool_result', ok: item.exit_code === 0 && item.status !== 'failed', output: str(item.aggregated_output) }];
    case 'file_change': {
      const changes = Array.isArray(item.changes) ? item.changes.map(record) : [];
      const list = changes.map((c) => `${str(c.kind)} ${str(c.path)}`).join('\n');
      return [
        { type: 'tool_use', name: 'file_change', input: list },
        { type: 'tool_result', ok: item.status !== 'failed', output: list },
      ];
    }
    case 'mcp_tool_call':
      return [{ type: 'tool_result', ok: item.status !== 'failed' && item.error == null, output: json(item.error ?? item.result) }];
    case 'web_search':
      return [{ type: 'tool_result', ok: true, output: str(item.query) }];
    default:
      return [];
  }
}

function tokenCounts(value: unknown): TokenCounts | null {
  if (!isRecord(value)) return null;
  return { inputTokens: num(value.input_tokens), outputTokens: num(value.output_tokens), cachedInputTokens: num(value.cached_input_tokens) };
}

