/**
 * Claude Code's `--output-format stream-json --verbose` stream, read purely: one line → the
 * `AgentEvent`s it means, and a reducer that accumulates the run's final facts (session, usage,
 * result text, error flag, API errors) and classifies a failure from them. No I/O here.
 *
 * Shapes (Claude Code 2.1.x): `system`/`init` (session_id, model), `system`/`api_retry` (attempt,
 * retry_delay_ms, error_status, error), `assistant` (one content block per line: text, tool_use,
 * thinking; synthetic API-error messages carry `is_api_error_message`, `api_error_status`),
 * `user` (tool_result blocks), `rate_limit_event` (rate_limit_info.status, resetsAt in unix
 * seconds) and `result` (subtype, is_error, result, session_id, total_cost_usd, usage). A run that
 * failed on an API error still ends with `subtype: "success"`: `is_error` is what counts.
 */
import { isRecord, optionalNum, optionalStr } from './json-fields.js';
import type { StreamLine, StreamMapping } from './json-stream-reader.js';
import type { AgentEvent, RunFailure, Usage } from './runtime.js';

/** An API error the stream reported (a retry, a synthetic error message, the result). */
export interface ClaudeApiError {
  status: number | null;
  /** The CLI's or API's error type: `authentication_failed`, `rate_limit_error`, `overloaded`, ... */
  type: string;
  text: string;
}

/** What a run's stream said, accumulated line by line. */
export interface ClaudeFacts {
  sessionId?: string;
  model?: string;
  /** From the `result` line (the whole run's totals). */
  usage?: Usage;
  resultSeen: boolean;
  resultText: string;
  /** `is_error` of the result line (or a non-success subtype); false until a result is seen. */
  isError: boolean;
  resultSubtype?: string;
  apiErrors: ClaudeApiError[];
  /** ISO time a rate limit resets, when the stream said. */
  rateLimitResetAt?: string;
  retries: number;
}

export function initialClaudeFacts(): ClaudeFacts {
  return { resultSeen: false, resultText: '', isError: false, apiErrors: [], retries: 0 };
}

/** Claude Code's stream for `JsonStreamReader`. */
export const claudeStream: StreamMapping<ClaudeFacts> = {
  initial: initialClaudeFacts(),
  reduce: reduceClaudeFacts,
  events: (record) => claudeEvents(record),
};

/** The events one record means, in order. */
export function claudeEvents(record: StreamLine): AgentEvent[] {
  switch (record.type) {
    case 'system': {
      if (record.subtype === 'init' && typeof record.session_id === 'string') {
        const model = optionalStr(record.model);
        return [{ type: 'session', sessionId: record.session_id, ...(model !== undefined ? { model } : {}) }];
      }
      if (record.subtype === 'api_retry') {
        const delay = optionalNum(record.retry_delay_ms);
        const status = optionalNum(record.error_status);
        const reason = [status !== undefined ? String(status) : undefined, optionalStr(record.error)].filter((p) => p !== undefined).join(' ') || 'api error';
        return [{ type: 'retrying', attempt: optionalNum(record.attempt) ?? 1, reason, ...(delay !== undefined ? { delayMs: delay } : {}) }];
      }
      return [];
    }
    case 'assistant': {
      const events: AgentEvent[] = [];
      for (const block of contentBlocks(record)) {
        if (block.type === 'text' && typeof block.text === 'string' && block.text !== '') events.push({ type: 'text', text: block.text });
        if (block.type === 'tool_use') events.push({ type: 'tool_use', name: optionalStr(block.name) ?? '?', input: JSON.stringify(block.input ?? {}) });
      }
      return events;
    }
    case 'user': {
      const events: AgentEvent[] = [];
      for (const block of contentBlocks(record)) {
        if (block.type === 'tool_result') events.push({ type: 'tool_result', ok: block.is_error !== true, output: toolResultText(block.content) });
      }
      return events;
    }
    case 'result': {
      const events: AgentEvent[] = [];
      const usage = resultUsage(record);
      if (usage !== undefined) events.push({ type: 'usage', usage });
      events.push({ type: 'result', ok: resultOk(record), text: optionalStr(record.result) ?? '' });
      return events;
    }
    default:
      return [];
  }
}

/** The facts after one more record. Pure: returns a new object. */
export function reduceClaudeFacts(facts: ClaudeFacts, record: StreamLine): ClaudeFacts {
  const next: ClaudeFacts = { ...facts, apiErrors: [...facts.apiErrors] };
  const sessionId = optionalStr(record.session_id);
  if (sessionId !== undefined && (next.sessionId === undefined || record.type === 'result' || record.subtype === 'init')) next.sessionId = sessionId;
  switch (record.type) {
    case 'system':
      if (record.subtype === 'init') {
        const model = optionalStr(record.model);
        if (model !== undefined) next.model = model;
      }
      if (record.subtype === 'api_retry') {
        next.retries += 1;
        next.apiErrors.push({ status: optionalNum(record.error_status) ?? null, type: optionalStr(record.error) ?? 'unknown', text: '' });
      }
      break;
    case 'assistant':
      if (record.is_api_error_message === true || record.api_error_status !== undefined) {
        const text = contentBlocks(record)
          .map((b) => (typeof b.text === 'string' ? b.text : ''))
          .join('\n');
        next.apiErrors.push({ status: optionalNum(record.api_error_status) ?? null, type: optionalStr(record.api_error_type) ?? optionalStr(record.error) ?? 'unknown', text });
      }
      break;
    case 'rate_limit_event': {
      const info = isRecord(record.rate_limit_info) ? record.rate_limit_info : {};
      const resetsAt = optionalNum(info.resetsAt);
      if (info.status === 'rejected' && resetsAt !== undefined) next.rateLimitResetAt = unixToIso(resetsAt);
      break;
    }
    case 'result': {
      next.resultSeen = true;
      next.resultText = optionalStr(record.result) ?? '';
      next.isError = !resultOk(record);
      const subtype = optionalStr(record.subtype);
      if (subtype !== undefined) next.resultSubtype = subtype;
      const usage = resultUsage(record);
      if (usage !== undefined) next.usage = usage;
      const status = optionalNum(record.api_error_status);
      const type = optionalStr(record.api_error_type);
      if (status !== undefined || type !== undefined) next.apiErrors.push({ status: status ?? null, type: type ?? 'unknown', text: next.resultText });
      break;
    }
    default:
      break;
  }
  return next;
}

/**
 * Why a failed run failed. API errors decide when there are any (the last one, as the CLI gave
 * up on it); otherwise the result and any extra text (stderr) are read.
 */
export function classifyClaudeFailure(facts: ClaudeFacts, extraText = '', now: Date = new Date()): RunFailure {
  const last = facts.apiErrors[facts.apiErrors.length - 1];
  const text = [last?.text ?? '', facts.resultText, extraText].join('\n');
  const kind = (last !== undefined ? kindOfApiError(last) : null) ?? kindOfText(text);
  if (kind === 'rate-limit') {
    const resetAt = facts.rateLimitResetAt ?? extractResetAt(text, now);
    return resetAt !== undefined ? { kind, resetAt } : { kind };
  }
  return { kind };
}

function kindOfApiError(error: ClaudeApiError): RunFailure['kind'] | null {
  const type = error.type.toLowerCase();
  if (error.status === 401 || error.status === 403 || /auth|permission_error|invalid.*key/.test(type)) return 'auth';
  if (error.status === 429 || /rate_limit|rate-limit|usage_limit|billing/.test(type)) return 'rate-limit';
  if (error.status === 529 || (error.status !== null && error.status >= 500) || /overloaded|server_error|api_error/.test(type)) return 'overloaded';
  return kindOfText(error.text) === 'agent' ? null : kindOfText(error.text);
}

function kindOfText(text: string): RunFailure['kind'] {
  const t = text.toLowerCase();
  if (/\b401\b|authentication_error|authentication failed|invalid x-api-key|invalid api key|oauth token (?:has )?(?:expired|revoked)|please run \/login|not logged in/.test(t)) return 'auth';
  if (/\b429\b|rate_limit_error|rate limit|usage limit|hit your (?:\w+ )?limit/.test(t)) return 'rate-limit';
  if (/\b529\b|overloaded|\b50[0234]\b|internal server error|server_error/.test(t)) return 'overloaded';
  return 'agent';
}

/**
 * A rate limit's reset time from text: an ISO time ("resets at 2026-01-01T10:00:00Z"), a unix
 * timestamp ("usage limit reached|1767261600", "resets at 1767261600"), a relative "resets in
 * 2h 30m" / "try again in 45 minutes", or a clock time in UTC ("resets 3pm (UTC)") — the next one
 * after `now`. Undefined when the text gives none.
 */
export function extractResetAt(text: string, now: Date = new Date()): string | undefined {
  const iso = /\b(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2}))/.exec(text);
  if (iso?.[1] !== undefined) {
    const at = new Date(iso[1]);
    if (!Number.isNaN(at.getTime())) return at.toISOString();
  }
  const unix = /(?:\||reset(?:s|_at)?\s*(?:at|:)?\s*)(\d{10}|\d{13})\b/i.exec(text);
  if (unix?.[1] !== undefined) return unixToIso(Number(unix[1]));
  const relative = /(?:resets?|try again|retry)\s+in\s+((?:\d+\s*(?:h(?:ours?)?|m(?:in(?:ute)?s?)?|s(?:ec(?:ond)?s?)?)\s*)+)/i.exec(text);
  if (relative?.[1] !== undefined) {
    let ms = 0;
    for (const [, amount, unit] of relative[1].matchAll(/(\d+)\s*([hms])/gi)) {
      const factor = unit?.toLowerCase() === 'h' ? 3_600_000 : unit?.toLowerCase() === 'm' ? 60_000 : 1_000;
      ms += Number(amount) * factor;
    }
    if (ms > 0) return new Date(now.getTime() + ms).toISOString();
  }
  const clock = /resets?\s+(?:at\s+)?(\d{1,2})(?::(\d{2}))?\s*(am|pm)?\s*\((?:UTC|GMT|Etc\/UTC)\)/i.exec(text);
  if (clock?.[1] !== undefined) {
    let hour = Number(clock[1]);
    const minute = Number(clock[2] ?? '0');
    const meridiem = clock[3]?.toLowerCase();
    if (meridiem === 'pm' && hour < 12) hour += 12;
    if (meridiem === 'am' && hour === 12) hour = 0;
    if (hour < 24 && minute < 60) {
      const at = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate(), hour, minute));
      if (at.getTime() <= now.getTime()) at.setUTCDate(at.getUTCDate() + 1);
      return at.toISOString();
    }
  }
  return undefined;
}

/** Success means the result says so: not `is_error`, subtype `success`. */
function resultOk(record: StreamLine): boolean {
  return record.is_error !== true && (record.subtype === undefined || record.subtype === 'success');
}

/**
 * Usage of the whole run from the result line. Anthropic's `input_tokens` excludes cached input:
 * `inputTokens` is input not read from cache (plain + cache writes), `cachedInputTokens` the
 * cache reads.
 */
function resultUsage(record: StreamLine): Usage | undefined {
  const usage = isRecord(record.usage) ? record.usage : undefined;
  const cost = optionalNum(record.total_cost_usd);
  if (usage === undefined && cost === undefined) return undefined;
  return {
    inputTokens: (optionalNum(usage?.input_tokens) ?? 0) + (optionalNum(usage?.cache_creation_input_tokens) ?? 0),
    outputTokens: optionalNum(usage?.output_tokens) ?? 0,
    cachedInputTokens: optionalNum(usage?.cache_read_input_tokens) ?? 0,
    costUsd: cost ?? null,
  };
}

function contentBlocks(record: StreamLine): Record<string, unknown>[] {
  const message = isRecord(record.message) ? record.message : undefined;
  const content = message?.content;
  if (typeof content === 'string') return [{ type: 'text', text: content }];
  return Array.isArray(content) ? content.filter(isRecord) : [];
}

function toolResultText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    return content
      .filter(isRecord)
      .map((part) => (typeof part.text === 'string' ? part.text : `[${optionalStr(part.type) ?? 'part'}]`))
      .join('\n');
  }
  return content === undefined || content === null ? '' : JSON.stringify(content);
}

function unixToIso(value: number): string {
  return new Date(value > 1e12 ? value : value * 1000).toISOString();
}
