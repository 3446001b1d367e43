// The Gemini CLI stream-json parser, on lines of the shape Gemini CLI 0.61.0 printed against the fake API.
import { describe, expect, it } from 'vitest';
import { classifyGeminiFailure, emptyGeminiFacts, geminiEvents, geminiNotice, geminiRetryLine, geminiSucceeded, reduceGemini, statusOfExitCode } from '../../src/runtimes/gemini-stream.js';
import type { GeminiFacts } from '../../src/runtimes/gemini-stream.js';
import { parseStreamLine } from '../../src/runtimes/json-stream-reader.js';
import type { StreamLine } from '../../src/runtimes/json-stream-reader.js';

const SUCCESS = [
  '{"type":"init","timestamp":"2026-11-21T06:39:22.520Z","session_id":"de42fa15-ad4e-48b0-92c9-016e71138174","model":"gemini-fake-model"}',
  '{"type":"message","timestamp":"2026-11-21T06:39:22.524Z","role":"user","content":"Create hello.txt"}',
  '{"type":"message","timestamp":"2026-11-21T06:39:22.600Z","role":"assistant","content":"I will create it.","delta":true}',
  '{"type":"tool_use","timestamp":"2026-11-21T06:39:22.716Z","tool_name":"write_file","tool_id":"write_file__write_file_1795243162597_0","parameters":{"file_path":"hello.txt","content":"hello from gemini"}}',
  '{"type":"tool_result","timestamp":"2026-11-21T06:39:22.820Z","tool_id":"write_file__write_file_1795243162597_0","status":"success"}',
  '{"type":"message","timestamp":"2026-11-21T06:39:22.859Z","role":"assistant","content":"Created ","delta":true}',
  '{"type":"message","timestamp":"2026-11-21T06:39:22.860Z","role":"assistant","content":"hello.txt.","delta":true}',
  '{"type":"result","timestamp":"2026-11-21T06:39:22.864Z","status":"success","stats":{"total_tokens":330,"input_tokens":300,"output_tokens":30,"cached":100,"input":200,"duration_ms":345,"tool_calls":1,"models":{"gemini-fake-model":{"total_tokens":330,"input_tokens":300,"output_tokens":30,"cached":100,"input":200}}}}',
];

const EMPTY_STATS = '"stats":{"total_tokens":0,"input_tokens":0,"output_tokens":0,"cached":0,"input":0,"duration_ms":0,"tool_calls":0,"models":{}}';
const INIT = '{"type":"init","timestamp":"2026-11-21T06:39:44.908Z","session_id":"9a46ea45-3900-42ff-9435-515c8dc70173","model":"gemini-fake-model"}';
const AUTH_401 = `{"type":"result","timestamp":"2026-11-21T06:39:45.071Z","status":"error","error":{"type":"unknown","message":"[API Error: {\\"error\\":{\\"code\\":401,\\"message\\":\\"API key not valid. Please pass a valid API key.\\",\\"status\\":\\"UNAUTHENTICATED\\"}}]"},${EMPTY_STATS}}`;
const KEY_400 = `{"type":"result","timestamp":"2026-11-21T06:39:47.369Z","status":"error","error":{"type":"unknown","message":"[API Error: {\\"error\\":{\\"code\\":400,\\"message\\":\\"API key not valid. Please pass a valid API key.\\",\\"status\\":\\"INVALID_ARGUMENT\\",\\"details\\":[{\\"@type\\":\\"type.googleapis.com/google.rpc.ErrorInfo\\",\\"reason\\":\\"API_KEY_INVALID\\"}]}}]"},${EMPTY_STATS}}`;
const RATE_429 = `{"type":"result","timestamp":"2026-11-21T06:39:46.726Z","status":"error","error":{"type":"unknown","message":"[API Error: Resource has been exhausted (e.g. check quota).\\nSuggested retry after 3600s.]\\nPlease wait and try again later. To increase your limits, request a quota increase through AI Studio, or switch to another /auth method"},${EMPTY_STATS}}`;
const OVERLOADED_503 = `{"type":"result","timestamp":"2026-11-21T06:39:47.576Z","status":"error","error":{"type":"unknown","message":"[API Error: The model is overloaded. Please try again later.]"},${EMPTY_STATS}}`;

function reduceAll(lines: readonly string[]): GeminiFacts {
  return lines.map(parseStreamLine).reduce<GeminiFacts>((facts, line) => (line === null ? facts : reduceGemini(facts, line)), emptyGeminiFacts);
}

function line(text: string): StreamLine {
  const parsed = parseStreamLine(text);
  if (parsed === null) throw new Error(`not a stream line: ${text}`);
  return parsed;
}

describe('parseStreamLine', () => {
  it('reads JSON lines with a type and nothing else', () => {
    expect(parseStreamLine(SUCCESS[0]!)).toMatchObject({ type: 'init' });
    expect(parseStreamLine('YOLO mode is enabled. All tool calls will be automatically approved.')).toBeNull();
    expect(parseStreamLine('{"no":"type"}')).toBeNull();
    expect(parseStreamLine('{"type":')).toBeNull();
    expect(parseStreamLine('')).toBeNull();
  });
});

describe('a successful run', () => {
  it('becomes session, text, tool and usage events', () => {
    const events = SUCCESS.map(line).flatMap((l) => geminiEvents(l));
    expect(events).toEqual([
      { type: 'session', sessionId: 'de42fa15-ad4e-48b0-92c9-016e71138174', model: 'gemini-fake-model' },
      { type: 'text', text: 'I will create it.' },
      { type: 'tool_use', name: 'write_file', input: '{"file_path":"hello.txt","content":"hello from gemini"}' },
      { type: 'tool_result', ok: true, output: '' },
      { type: 'text', text: 'Created ' },
      { type: 'text', text: 'hello.txt.' },
      { type: 'usage', usage: { inputTokens: 300, outputTokens: 30, cachedInputTokens: 100, costUsd: null } },
    ]);
  });

  it('reduces to the session, the reply after the last tool call, the token totals and success', () => {
    const facts = reduceAll(SUCCESS);
    expect(facts).toEqual({
      sessionId: 'de42fa15-ad4e-48b0-92c9-016e71138174',
      model: 'gemini-fake-model',
      finalText: 'Created hello.txt.',
      completed: true,
      failed: false,
      usage: { inputTokens: 300, outputTokens: 30, cachedInputTokens: 100, costUsd: null },
    });
    expect(geminiSucceeded(facts)).toBe(true);
  });

  it('shows a shell call as its command, and a failed tool with its error', () => {
    expect(geminiEvents(line('{"type":"tool_use","tool_name":"run_shell_command","tool_id":"t1","parameters":{"command":"env > env.txt"}}'))).toEqual([{ type: 'tool_use', name: 'run_shell_command', input: 'env > env.txt' }]);
    expect(geminiEvents(line('{"type":"tool_result","tool_id":"t1","status":"error","output":"","error":{"type":"invalid_tool_params","message":"File path must be within the workspace"}}'))).toEqual([
      { type: 'tool_result', ok: false, output: 'File path must be within the workspace' },
    ]);
  });

  it('is not a success without a result line (the CLI died mid-run)', () => {
    expect(geminiSucceeded(reduceAll(SUCCESS.slice(0, -1)))).toBe(false);
  });
});

describe('a failed run', () => {
  it('reduces an API error to a failure with its message, and reports a failed result', () => {
    const facts = reduceAll([INIT, AUTH_401]);
    expect(facts).toMatchObject({ sessionId: '9a46ea45-3900-42ff-9435-515c8dc70173', completed: true, failed: true });
    expect(facts.errorMessage).toContain('API key not valid');
    expect(geminiSucceeded(facts)).toBe(false);
    expect(geminiEvents(line(AUTH_401)).at(-1)).toEqual({ type: 'result', ok: false, text: expect.stringContaining('"code":401') });
  });

  it('keeps the last fatal error line when the result gives no message', () => {
    const facts = reduceAll([INIT, '{"type":"error","severity":"error","message":"Maximum session turns exceeded"}', `{"type":"result","status":"error",${EMPTY_STATS}}`]);
    expect(facts.errorMessage).toBe('Maximum session turns exceeded');
    expect(geminiNotice(line('{"type":"error","severity":"warning","message":"Loop detected"}'))).toBe('warning: Loop detected');
    expect(reduceAll([INIT, '{"type":"error","severity":"warning","message":"Loop detected"}']).errorMessage).toBeUndefined();
  });
});

describe('classifyGeminiFailure', () => {
  const now = new Date('2026-11-21T06:00:00.000Z');
  const message = (text: string) => reduceAll([INIT, text]).errorMessage ?? '';

  it('reads a 401 as auth, from the message or from the exit code', () => {
    expect(classifyGeminiFailure(message(AUTH_401), 145, now)).toEqual({ kind: 'auth' });
    expect(classifyGeminiFailure(message(AUTH_401), 1, now)).toEqual({ kind: 'auth' });
    expect(classifyGeminiFailure('', 145, now)).toEqual({ kind: 'auth' });
  });

  it('reads an invalid key (400 API_KEY_INVALID) and a missing key as auth', () => {
    expect(classifyGeminiFailure(message(KEY_400), 144, now)).toEqual({ kind: 'auth' });
    expect(classifyGeminiFailure('When using Gemini API, you must specify the GEMINI_API_KEY environment variable.', 41, now)).toEqual({ kind: 'auth' });
  });

  it('reads a 429 as a rate limit with its reset time, despite the hint about /auth', () => {
    expect(classifyGeminiFailure(message(RATE_429), 173, now)).toEqual({ kind: 'rate-limit', resetAt: '2026-11-21T07:00:00.000Z' });
    expect(classifyGeminiFailure(message(RATE_429), 1, now)).toEqual({ kind: 'rate-limit', resetAt: '2026-11-21T07:00:00.000Z' });
    expect(classifyGeminiFailure('{"error":{"code":429,"details":[{"retryDelay":"20s"}]}}', null, now)).toEqual({ kind: 'rate-limit', resetAt: '2026-11-21T06:00:20.000Z' });
    expect(classifyGeminiFailure('', 173, now)).toEqual({ kind: 'rate-limit' });
  });

  it('reads a 5xx as overloaded', () => {
    expect(classifyGeminiFailure(message(OVERLOADED_503), 247, now)).toEqual({ kind: 'overloaded' });
    expect(classifyGeminiFailure(message(OVERLOADED_503), 1, now)).toEqual({ kind: 'overloaded' });
    expect(classifyGeminiFailure('', 244, now)).toEqual({ kind: 'overloaded' });
  });

  it('reads anything else as an agent failure', () => {
    expect(classifyGeminiFailure('Maximum session turns exceeded', 53, now)).toEqual({ kind: 'agent' });
    expect(classifyGeminiFailure('', 1, now)).toEqual({ kind: 'agent' });
  });
});

describe('statusOfExitCode', () => {
  it('maps exit codes 144..255 back to HTTP statuses 400..511, and nothing else', () => {
    expect(statusOfExitCode(145)).toBe(401);
    expect(statusOfExitCode(173)).toBe(429);
    expect(statusOfExitCode(247)).toBe(503);
    expect(statusOfExitCode(0)).toBeUndefined();
    expect(statusOfExitCode(41)).toBeUndefined();
    expect(statusOfExitCode(130)).toBeUndefined();
    expect(statusOfExitCode(null)).toBeUndefined();
  });
});

describe('geminiRetryLine', () => {
  it("turns the CLI's retry notices into retrying events", () => {
    expect(geminiRetryLine('Attempt 2 failed with status 503. Retrying with backoff... _ApiError: {"error":{"code":503}}')).toEqual({ type: 'retrying', attempt: 2, reason: 'status 503: _ApiError: {"error":{"code":503}}' });
    expect(geminiRetryLine('Attempt 1 failed: Quota exceeded for quota metric. Retrying after 5000ms...')).toEqual({ type: 'retrying', attempt: 1, reason: 'Quota exceeded for quota metric', delayMs: 5000 });
    expect(geminiRetryLine('Attempt 3 failed with 429 error (no Retry-After header). Retrying with backoff...')).toEqual({ type: 'retrying', attempt: 3, reason: '429 error (no Retry-After header)' });
    expect(geminiRetryLine('Attempt 1 failed. Retrying with backoff...')).toEqual({ type: 'retrying', attempt: 1, reason: 'failed' });
  });

  it('ignores every other line, including the last attempt that gives up', () => {
    expect(geminiRetryLine('Attempt 2 failed: The model is overloaded.. Max attempts reached')).toBeNull();
    expect(geminiRetryLine('    at retryWithBackoff (file:///bundle/chunk.js:1:1)')).toBeNull();
    expect(geminiRetryLine('{"type":"init"}')).toBeNull();
  });
});
