// The Codex `exec --json` stream parser and reducer, on lines shaped as codex-cli 0.169.0 prints them.
import { describe, expect, it } from 'vitest';
import { classifyCodexFailure, codexEvents, codexNotice, codexSucceeded, codexUsage, emptyCodexFacts, reduceCodex, resetTime } from '../../src/runtimes/codex-stream.js';
import type { CodexFacts } from '../../src/runtimes/codex-stream.js';
import { parseStreamLine } from '../../src/runtimes/json-stream-reader.js';
import type { StreamLine } from '../../src/runtimes/json-stream-reader.js';
import type { AgentEvent } from '../../src/runtimes/runtime.js';

const THREAD = '01a1fcc0-b1e6-7b21-8ed1-1c2acc543c6d';

const SUCCESS = [
  `{"type":"thread.started","thread_id":"${THREAD}"}`,
  '{"type":"item.completed","item":{"id":"item_0","type":"error","message":"Model metadata for `gpt-fake` not found. Defaulting to fallback metadata; this can degrade performance and cause issues."}}',
  '{"type":"turn.started"}',
  '{"type":"item.completed","item":{"id":"item_1","type":"reasoning","text":"**Writing the file**"}}',
  `{"type":"item.started","item":{"id":"item_2","type":"command_execution","command":"/bin/bash -lc 'printf \\"hello codex\\" > out.txt && echo ok'","aggregated_output":"","exit_code":null,"status":"in_progress"}}`,
  `{"type":"item.completed","item":{"id":"item_2","type":"command_execution","command":"/bin/bash -lc 'printf \\"hello codex\\" > out.txt && echo ok'","aggregated_output":"ok\\n","exit_code":0,"status":"completed"}}`,
  '{"type":"item.completed","item":{"id":"item_3","type":"file_change","changes":[{"path":"/repo/src/a.ts","kind":"update"}],"status":"completed"}}',
  '{"type":"item.completed","item":{"id":"item_4","type":"agent_message","text":"Done writing"}}',
  '{"type":"turn.completed","usage":{"input_tokens":300,"cached_input_tokens":120,"cache_write_input_tokens":0,"output_tokens":10,"reasoning_output_tokens":0}}',
];

const FAILED_401 = [
  `{"type":"thread.started","thread_id":"${THREAD}"}`,
  '{"type":"turn.started"}',
  '{"type":"error","message":"unexpected status 401 Unauthorized: Incorrect API key provided: sk-test. You can find your API key at https://platform.openai.com/account/api-keys., url: http://127.0.0.1:37895/v1/responses"}',
  '{"type":"turn.failed","error":{"message":"unexpected status 401 Unauthorized: Incorrect API key provided: sk-test. You can find your API key at https://platform.openai.com/account/api-keys., url: http://127.0.0.1:37895/v1/responses"}}',
];

function lines(raw: readonly string[]): StreamLine[] {
  return raw.map((l) => {
    const line = parseStreamLine(l);
    expect(line, l).not.toBeNull();
    return line!;
  });
}

function facts(raw: readonly string[]): CodexFacts {
  return lines(raw).reduce(reduceCodex, emptyCodexFacts);
}

function events(raw: readonly string[]): AgentEvent[] {
  return lines(raw).flatMap((l) => codexEvents(l));
}

describe('parseStreamLine', () => {
  it('reads JSON event lines and ignores everything else', () => {
    expect(parseStreamLine('{"type":"turn.started"}')).toEqual({ type: 'turn.started' });
    expect(parseStreamLine('WARNING: proceeding, even though we could not create PATH aliases')).toBeNull();
    expect(parseStreamLine('Reading additional input from stdin...')).toBeNull();
    expect(parseStreamLine('{"type":"turn.comp')).toBeNull();
    expect(parseStreamLine('{"no":"type"}')).toBeNull();
    expect(parseStreamLine('')).toBeNull();
  });
});

describe('a successful run', () => {
  it('becomes session, tool, text and usage events', () => {
    expect(events(SUCCESS)).toEqual([
      { type: 'session', sessionId: THREAD },
      { type: 'tool_use', name: 'shell', input: `/bin/bash -lc 'printf "hello codex" > out.txt && echo ok'` },
      { type: 'tool_result', ok: true, output: 'ok\n' },
      { type: 'tool_use', name: 'file_change', input: 'update /repo/src/a.ts' },
      { type: 'tool_result', ok: true, output: 'update /repo/src/a.ts' },
      { type: 'text', text: 'Done writing' },
      { type: 'usage', usage: { inputTokens: 300, outputTokens: 10, cachedInputTokens: 120, costUsd: null } },
    ]);
  });

  it('reduces to thread id, totals, final message and success', () => {
    const result = facts(SUCCESS);
    expect(result).toEqual({ sessionId: THREAD, totals: { inputTokens: 300, outputTokens: 10, cachedInputTokens: 120 }, finalText: 'Done writing', completed: true, failed: false });
    expect(codexSucceeded(result)).toBe(true);
    expect(codexUsage(result)).toEqual({ inputTokens: 300, outputTokens: 10, cachedInputTokens: 120, costUsd: null });
  });

  it('reports a failed command as a failed tool result', () => {
    const [event] = events(['{"type":"item.completed","item":{"id":"i","type":"command_execution","command":"false","aggregated_output":"","exit_code":1,"status":"failed"}}']);
    expect(event).toEqual({ type: 'tool_result', ok: false, output: '' });
  });
});

describe('codexNotice', () => {
  it('gives the CLI warnings and fatal errors for the transcript, not retries or other lines', () => {
    const [, warning] = lines(SUCCESS);
    expect(codexNotice(warning!)).toMatch(/^warning: Model metadata for `gpt-fake` not found/);
    expect(codexNotice(parseStreamLine('{"type":"error","message":"Missing environment variable: `CODEX_API_KEY`."}')!)).toBe('error: Missing environment variable: `CODEX_API_KEY`.');
    expect(codexNotice(parseStreamLine('{"type":"error","message":"Reconnecting... 1/5"}')!)).toBeNull();
    expect(codexNotice(parseStreamLine('{"type":"turn.started"}')!)).toBeNull();
  });
});

describe('token accounting', () => {
  it('takes the last turn.completed of the run (counts are cumulative per thread)', () => {
    const result = facts([
      `{"type":"thread.started","thread_id":"${THREAD}"}`,
      '{"type":"turn.completed","usage":{"input_tokens":100,"cached_input_tokens":0,"output_tokens":10}}',
      '{"type":"turn.completed","usage":{"input_tokens":250,"cached_input_tokens":100,"output_tokens":15}}',
    ]);
    expect(codexUsage(result)).toEqual({ inputTokens: 250, outputTokens: 15, cachedInputTokens: 100, costUsd: null });
  });

  it('subtracts the thread totals of earlier runs when resuming', () => {
    const previous = { inputTokens: 300, outputTokens: 10, cachedInputTokens: 0 };
    const line = parseStreamLine('{"type":"turn.completed","usage":{"input_tokens":600,"cached_input_tokens":250,"output_tokens":20}}')!;
    expect(codexEvents(line, previous)).toEqual([{ type: 'usage', usage: { inputTokens: 300, outputTokens: 10, cachedInputTokens: 250, costUsd: null } }]);
    expect(codexUsage(reduceCodex(emptyCodexFacts, line), previous)).toEqual({ inputTokens: 300, outputTokens: 10, cachedInputTokens: 250, costUsd: null });
  });

  it('has no usage when no turn completed', () => {
    expect(codexUsage(facts(FAILED_401))).toBeUndefined();
  });
});

describe('failures', () => {
  it('turn.failed: not a success, with the error message, classified auth for a 401', () => {
    const result = facts(FAILED_401);
    expect(codexSucceeded(result)).toBe(false);
    expect(result.errorMessage).toMatch(/^unexpected status 401 Unauthorized/);
    expect(events(FAILED_401).at(-1)).toMatchObject({ type: 'result', ok: false });
    expect(classifyCodexFailure(result.errorMessage!)).toEqual({ kind: 'auth' });
  });

  it('a fatal error event without turn.failed is still a failure', () => {
    const result = facts([`{"type":"thread.started","thread_id":"${THREAD}"}`, '{"type":"error","message":"Missing environment variable: `CODEX_API_KEY`."}']);
    expect(codexSucceeded(result)).toBe(false);
    expect(classifyCodexFailure(result.errorMessage!)).toEqual({ kind: 'auth' });
  });

  it('reconnect notices are retries, not failures', () => {
    const raw = [
      '{"type":"turn.started"}',
      '{"type":"error","message":"Reconnecting... 2/5 (stream disconnected before completion: error sending request)"}',
      '{"type":"item.completed","item":{"id":"item_1","type":"agent_message","text":"ok"}}',
      '{"type":"turn.completed","usage":{"input_tokens":1,"cached_input_tokens":0,"output_tokens":1}}',
    ];
    expect(events(raw)[0]).toEqual({ type: 'retrying', attempt: 2, reason: 'stream disconnected before completion: error sending request' });
    expect(codexSucceeded(facts(raw))).toBe(true);
  });

  it('a WebSocket reconnect is a retry the CLI has a fallback for (HTTPS)', () => {
    const raw = ['{"type":"error","message":"Reconnecting... 2/5 (unexpected status 404 Not Found: Not Found, url: wss://api.openai.com/v1/responses)"}'];
    expect(events(raw)[0]).toEqual({ type: 'retrying', attempt: 2, reason: 'unexpected status 404 Not Found: Not Found, url: wss://api.openai.com/v1/responses', fallback: true });
  });

  it('a turn that never completes is not a success', () => {
    expect(codexSucceeded(facts([`{"type":"thread.started","thread_id":"${THREAD}"}`, '{"type":"turn.started"}']))).toBe(false);
  });
});

describe('classifyCodexFailure', () => {
  const now = new Date('2026-11-21T12:00:00.000Z');

  it('auth', () => {
    expect(classifyCodexFailure('unexpected status 401 Unauthorized: Incorrect API key provided', now)).toEqual({ kind: 'auth' });
    expect(classifyCodexFailure('invalid_api_key', now)).toEqual({ kind: 'auth' });
  });

  it('rate limit, with the reset time when the message gives one', () => {
    expect(classifyCodexFailure('exceeded retry limit, last status: 429 Too Many Requests', now)).toEqual({ kind: 'rate-limit' });
    expect(classifyCodexFailure('rate limit exceeded: Rate limit reached. Please try again in 11.054s.', now)).toEqual({ kind: 'rate-limit', resetAt: '2026-11-21T12:00:11.054Z' });
    expect(classifyCodexFailure("You've hit your usage limit. Try again in 1h30m.", now)).toEqual({ kind: 'rate-limit', resetAt: '2026-11-21T13:30:00.000Z' });
    expect(classifyCodexFailure('Usage limit reached; resets at 2026-11-21T15:00:00Z', now)).toEqual({ kind: 'rate-limit', resetAt: '2026-11-21T15:00:00.000Z' });
  });

  it('overloaded', () => {
    expect(classifyCodexFailure('We’re currently experiencing high demand, which may cause temporary errors.', now)).toEqual({ kind: 'overloaded' });
    expect(classifyCodexFailure('unexpected status 503 Service Unavailable: The engine is currently overloaded, please try again later, url: http://127.0.0.1:500/v1/responses', now)).toEqual({ kind: 'overloaded' });
    expect(classifyCodexFailure('server_error', now)).toEqual({ kind: 'overloaded' });
  });

  it('anything else is the agent', () => {
    expect(classifyCodexFailure('fake OpenAI server: script exhausted', now)).toEqual({ kind: 'agent' });
    expect(classifyCodexFailure('unexpected status 400 Bad Request: bad input, url: http://127.0.0.1:500/v1/responses', now)).toEqual({ kind: 'agent' });
  });

  it('resetTime understands seconds, minutes and hours in words too', () => {
    expect(resetTime('please retry after 2 minutes', now)).toBe('2026-11-21T12:02:00.000Z');
    expect(resetTime('no time here', now)).toBeUndefined();
  });
});
