// The Claude Code stream-json parser and reducer, on lines shaped as Claude Code 2.1.328 prints
// them (recorded against the fake Anthropic server, trimmed of fields Loom does not read).
import { describe, expect, it } from 'vitest';
import { classifyClaudeFailure, claudeEvents, extractResetAt, initialClaudeFacts, reduceClaudeFacts } from '../../src/runtimes/claude-stream.js';
import type { ClaudeFacts } from '../../src/runtimes/claude-stream.js';
import { parseStreamLine } from '../../src/runtimes/json-stream-reader.js';
import type { AgentEvent } from '../../src/runtimes/runtime.js';

const SESSION = 'f4f0a422-de2c-4ea4-894d-fbf4ea2cc8aa';
const init = (session = SESSION) =>
  JSON.stringify({ type: 'system', subtype: 'init', cwd: '/tmp/w', session_id: session, tools: ['Task', 'Bash'], mcp_servers: [], model: 'claude-opus-5-5', permissionMode: 'bypassPermissions', apiKeySource: 'ANTHROPIC_API_KEY', claude_code_version: '2.1.328' });
const assistant = (content: unknown[]) =>
  JSON.stringify({
    type: 'assistant',
    message: { id: 'msg_fake1', type: 'message', role: 'assistant', model: 'claude-opus-5-5', content, stop_reason: null, stop_sequence: null, usage: { input_tokens: 120, output_tokens: 1, cache_creation_input_tokens: 0, cache_read_input_tokens: 40 }, context_management: null },
    parent_tool_use_id: null,
    session_id: SESSION,
    uuid: 'f00e4c5d-43e9-4ee3-8eb9-70822c2319a2',
  });
const user = (content: unknown[]) => JSON.stringify({ type: 'user', message: { role: 'user', content }, parent_tool_use_id: null, session_id: SESSION });
const result = (fields: Record<string, unknown>) =>
  JSON.stringify({
    type: 'result',
    subtype: 'success',
    is_error: false,
    duration_ms: 488,
    duration_api_ms: 111,
    num_turns: 3,
    stop_reason: 'end_turn',
    session_id: SESSION,
    total_cost_usd: 0.003264,
    usage: { input_tokens: 360, output_tokens: 90, cache_creation_input_tokens: 0, cache_read_input_tokens: 120, service_tier: 'standard' },
    terminal_reason: 'completed',
    api_error_status: null,
    result: 'All done.\nVERDICT: pass',
    ...fields,
  });
const retry = (attempt: number, status: number, error: string) =>
  JSON.stringify({ type: 'system', subtype: 'api_retry', attempt, max_retries: 2, retry_delay_ms: 547, error_status: status, error, session_id: SESSION, uuid: 'u' });
/** The synthetic assistant message the CLI prints when it gives up on an API error. */
const apiErrorMessage = (text: string, status: number, type: string, error: string) =>
  JSON.stringify({
    type: 'assistant',
    message: { id: 'x', model: '<synthetic>', role: 'assistant', stop_reason: 'stop_sequence', type: 'message', usage: { input_tokens: 0, output_tokens: 0, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 }, content: [{ type: 'text', text }] },
    parent_tool_use_id: null,
    session_id: SESSION,
    error,
    is_api_error_message: true,
    api_error_status: status,
    api_error_type: type,
  });
const errorResult = (text: string, status: number, type: string) =>
  result({ is_error: true, subtype: 'success', terminal_reason: 'api_error', stop_reason: 'stop_sequence', total_cost_usd: 0, num_turns: 1, api_error_status: status, api_error_type: type, result: text, usage: { input_tokens: 0, output_tokens: 0, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 } });

function run(lines: string[]): { facts: ClaudeFacts; events: AgentEvent[] } {
  let facts = initialClaudeFacts();
  const events: AgentEvent[] = [];
  for (const line of lines) {
    const record = parseStreamLine(line);
    if (record === null) continue;
    facts = reduceClaudeFacts(facts, record);
    events.push(...claudeEvents(record));
  }
  return { facts, events };
}

describe('parseStreamLine', () => {
  it('takes typed JSON objects and nothing else', () => {
    expect(parseStreamLine(init())?.type).toBe('system');
    expect(parseStreamLine('')).toBeNull();
    expect(parseStreamLine('Error: something on stderr')).toBeNull();
    expect(parseStreamLine('{"no":"type"}')).toBeNull();
    expect(parseStreamLine('{"type":"result", broken')).toBeNull();
    expect(parseStreamLine('[1,2]')).toBeNull();
  });
});

describe('a successful run', () => {
  const lines = [
    init(),
    assistant([{ type: 'tool_use', id: 'toolu_fake1_0', name: 'Write', input: { file_path: '/tmp/w/hello.txt', content: 'hello\n' } }]),
    user([{ tool_use_id: 'toolu_fake1_0', type: 'tool_result', content: 'File created successfully at: /tmp/w/hello.txt' }]),
    assistant([{ type: 'thinking', thinking: 'hmm', signature: 's' }]),
    assistant([{ type: 'text', text: 'Now env.' }]),
    assistant([{ type: 'tool_use', id: 'toolu_fake2_0', name: 'Bash', input: { command: 'false', description: 'fail' } }]),
    user([{ tool_use_id: 'toolu_fake2_0', type: 'tool_result', content: [{ type: 'text', text: 'Exit code 1' }], is_error: true }]),
    assistant([{ type: 'text', text: 'All done.\nVERDICT: pass' }]),
    result({}),
  ];

  it('turns each line into typed events, in order', () => {
    const { events } = run(lines);
    expect(events).toEqual([
      { type: 'session', sessionId: SESSION, model: 'claude-opus-5-5' },
      { type: 'tool_use', name: 'Write', input: JSON.stringify({ file_path: '/tmp/w/hello.txt', content: 'hello\n' }) },
      { type: 'tool_result', ok: true, output: 'File created successfully at: /tmp/w/hello.txt' },
      { type: 'text', text: 'Now env.' },
      { type: 'tool_use', name: 'Bash', input: JSON.stringify({ command: 'false', description: 'fail' }) },
      { type: 'tool_result', ok: false, output: 'Exit code 1' },
      { type: 'text', text: 'All done.\nVERDICT: pass' },
      { type: 'usage', usage: { inputTokens: 360, outputTokens: 90, cachedInputTokens: 120, costUsd: 0.003264 } },
      { type: 'result', ok: true, text: 'All done.\nVERDICT: pass' },
    ]);
  });

  it('accumulates the run facts from the result line (not the per-message usage)', () => {
    const { facts } = run(lines);
    expect(facts).toMatchObject({ sessionId: SESSION, model: 'claude-opus-5-5', resultSeen: true, isError: false, resultText: 'All done.\nVERDICT: pass', apiErrors: [], retries: 0 });
    expect(facts.usage).toEqual({ inputTokens: 360, outputTokens: 90, cachedInputTokens: 120, costUsd: 0.003264 });
  });

  it('counts cache writes as (uncached) input and a missing cost as null', () => {
    const { facts } = run([result({ total_cost_usd: undefined, usage: { input_tokens: 10, output_tokens: 5, cache_creation_input_tokens: 7, cache_read_input_tokens: 3 } })]);
    expect(facts.usage).toEqual({ inputTokens: 17, outputTokens: 5, cachedInputTokens: 3, costUsd: null });
  });

  it('reducing is pure', () => {
    const before = initialClaudeFacts();
    const record = parseStreamLine(errorResult('Invalid API key · Fix external API key', 401, 'authentication_error'))!;
    reduceClaudeFacts(before, record);
    expect(before).toEqual(initialClaudeFacts());
  });
});

describe('failures', () => {
  it('an API error that still says subtype "success" is an error (is_error decides)', () => {
    const { facts, events } = run([init(), apiErrorMessage('API Error: 400 bad request', 400, 'invalid_request_error', 'unknown'), errorResult('API Error: 400 bad request', 400, 'invalid_request_error')]);
    expect(facts.isError).toBe(true);
    expect(facts.resultSubtype).toBe('success');
    expect(events[events.length - 1]).toEqual({ type: 'result', ok: false, text: 'API Error: 400 bad request' });
    expect(classifyClaudeFailure(facts)).toEqual({ kind: 'agent' });
  });

  it('a non-success subtype fails even without is_error', () => {
    const { facts } = run([result({ subtype: 'error_max_turns', is_error: false, result: undefined })]);
    expect(facts.isError).toBe(true);
    expect(classifyClaudeFailure(facts)).toEqual({ kind: 'agent' });
  });

  it('401 → auth', () => {
    const text = 'Invalid API key · Fix external API key';
    const { facts, events } = run([init(), retry(1, 401, 'authentication_failed'), apiErrorMessage(text, 401, 'authentication_error', 'authentication_failed'), errorResult(text, 401, 'authentication_error')]);
    expect(events).toContainEqual({ type: 'retrying', attempt: 1, reason: '401 authentication_failed', delayMs: 547 });
    expect(facts.retries).toBe(1);
    expect(classifyClaudeFailure(facts)).toEqual({ kind: 'auth' });
    // From the text alone, too.
    expect(classifyClaudeFailure({ ...initialClaudeFacts(), resultText: 'Failed to authenticate. API Error: 401 {"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}' })).toEqual({ kind: 'auth' });
  });

  it('429 → rate-limit, without a reset when nothing says one', () => {
    const text = 'API Error: Request rejected (429) · This request would exceed the rate limit for your organization of 50 requests per minute.';
    const { facts } = run([init(), retry(1, 429, 'rate_limit'), apiErrorMessage(text, 429, 'rate_limit_error', 'rate_limit'), errorResult(text, 429, 'rate_limit_error')]);
    expect(classifyClaudeFailure(facts)).toEqual({ kind: 'rate-limit' });
  });

  it('429 with a reset: from a rate_limit_event, a unix timestamp or an ISO time in the text', () => {
    const event = JSON.stringify({ type: 'rate_limit_event', rate_limit_info: { status: 'rejected', resetsAt: 1_767_261_600, rateLimitType: 'five_hour' }, session_id: SESSION, uuid: 'u' });
    const limited = run([init(), event, errorResult("You've hit your session limit · resets 10am (UTC)", 429, 'rate_limit_error')]);
    expect(classifyClaudeFailure(limited.facts)).toEqual({ kind: 'rate-limit', resetAt: '2026-01-01T10:00:00.000Z' });

    const unix = run([result({ is_error: true, result: 'Claude AI usage limit reached|1767261600' })]);
    expect(classifyClaudeFailure(unix.facts)).toEqual({ kind: 'rate-limit', resetAt: '2026-01-01T10:00:00.000Z' });

    const iso = run([result({ is_error: true, result: 'API Error: 429 rate_limit_error: usage limit exceeded, resets at 2026-03-04T05:06:07Z' })]);
    expect(classifyClaudeFailure(iso.facts)).toEqual({ kind: 'rate-limit', resetAt: '2026-03-04T05:06:07.000Z' });
  });

  it('529 after retries → overloaded', () => {
    const text = 'API Error: 529 Overloaded. This is a server-side issue, usually temporary — try again in a moment.';
    const { facts, events } = run([init(), retry(1, 529, 'overloaded'), retry(2, 529, 'overloaded'), apiErrorMessage(text, 529, 'overloaded_error', 'server_error'), errorResult(text, 529, 'overloaded_error')]);
    expect(events.filter((e) => e.type === 'retrying').map((e) => (e.type === 'retrying' ? e.attempt : 0))).toEqual([1, 2]);
    expect(facts.retries).toBe(2);
    expect(classifyClaudeFailure(facts)).toEqual({ kind: 'overloaded' });
    expect(classifyClaudeFailure({ ...initialClaudeFacts(), resultText: 'API Error: 500 {"type":"error","error":{"type":"api_error","message":"Internal server error"}}' })).toEqual({ kind: 'overloaded' });
  });

  it('anything else is the agent’s failure; stderr text counts when the stream said nothing', () => {
    expect(classifyClaudeFailure(initialClaudeFacts())).toEqual({ kind: 'agent' });
    expect(classifyClaudeFailure(initialClaudeFacts(), 'Invalid API key · Please run /login')).toEqual({ kind: 'auth' });
  });
});

describe('extractResetAt', () => {
  const now = new Date('2026-05-01T12:00:00Z');
  it('reads the forms the CLI and API use', () => {
    expect(extractResetAt('limit reached|1767261600', now)).toBe('2026-01-01T10:00:00.000Z');
    expect(extractResetAt('resets at 1767261600000', now)).toBe('2026-01-01T10:00:00.000Z');
    expect(extractResetAt('resets at 2026-05-01T15:30:00+02:00', now)).toBe('2026-05-01T13:30:00.000Z');
    expect(extractResetAt('try again in 2h 30m', now)).toBe('2026-05-01T14:30:00.000Z');
    expect(extractResetAt("You've hit your limit · resets 3pm (UTC)", now)).toBe('2026-05-01T15:00:00.000Z');
    expect(extractResetAt("You've hit your limit · resets 9am (UTC)", now)).toBe('2026-05-02T09:00:00.000Z');
    expect(extractResetAt('rate limited', now)).toBeUndefined();
  });
});
