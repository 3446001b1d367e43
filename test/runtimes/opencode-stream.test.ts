// The opencode `run --format json` stream, read purely: lines in the shape opencode 1.18.33 prints
// (recorded against the fake Anthropic API), folded into events, facts and a classified failure.
import { describe, expect, it } from 'vitest';
import { classifyOpencodeFailure, emptyOpencodeFacts, headerReset, opencodeEvents, opencodeSucceeded, reduceOpencode } from '../../src/runtimes/opencode-stream.js';
import type { OpencodeFacts } from '../../src/runtimes/opencode-stream.js';
import { parseStreamLine } from '../../src/runtimes/json-stream-reader.js';
import type { StreamLine } from '../../src/runtimes/json-stream-reader.js';
import type { AgentEvent } from '../../src/runtimes/runtime.js';

const SES = 'ses_e032bae26ffemdjIN1cxoucQ7j';

const RECORDED = [
  `{"type":"step_start","timestamp":1795243140691,"sessionID":"${SES}","part":{"id":"prt_1","messageID":"msg_1","sessionID":"${SES}","snapshot":"4b825dc6","type":"step-start"}}`,
  `{"type":"tool_use","timestamp":1795243140897,"sessionID":"${SES}","part":{"type":"tool","tool":"bash","callID":"toolu_fake2_0","state":{"status":"completed","input":{"command":"printf 'hello from opencode' > hello.txt","description":"write file"},"output":"(no output)","metadata":{"output":"(no output)","exit":0,"truncated":false},"title":"printf","time":{"start":1,"end":2}},"id":"prt_2","sessionID":"${SES}","messageID":"msg_1"}}`,
  `{"type":"step_finish","timestamp":1795243141028,"sessionID":"${SES}","part":{"id":"prt_3","reason":"tool-calls","snapshot":"5b7e8256","messageID":"msg_1","sessionID":"${SES}","type":"step-finish","tokens":{"total":190,"input":120,"output":30,"reasoning":0,"cache":{"write":0,"read":40}},"cost":0.000822}}`,
  `{"type":"step_start","timestamp":1795243141468,"sessionID":"${SES}","part":{"id":"prt_4","messageID":"msg_2","sessionID":"${SES}","snapshot":"5b7e8256","type":"step-start"}}`,
  `{"type":"text","timestamp":1795243141468,"sessionID":"${SES}","part":{"id":"prt_5","messageID":"msg_2","sessionID":"${SES}","type":"text","text":"Created hello.txt.","time":{"start":1,"end":2}}}`,
  `{"type":"step_finish","timestamp":1795243141548,"sessionID":"${SES}","part":{"id":"prt_6","reason":"stop","snapshot":"5b7e8256","messageID":"msg_2","sessionID":"${SES}","type":"step-finish","tokens":{"total":330,"input":200,"output":20,"reasoning":5,"cache":{"write":10,"read":100}},"cost":0.00093}}`,
];

const AUTH_ERROR = `{"type":"error","timestamp":1795243152247,"sessionID":"${SES}","error":{"name":"APIError","data":{"message":"invalid x-api-key","statusCode":401,"isRetryable":false,"responseHeaders":{"content-type":"application/json","request-id":"req_fake2"},"responseBody":"{}","metadata":{"url":"http://127.0.0.1:42081/v1/messages"}}}}`;
const RATE_LIMIT_ERROR = `{"type":"error","timestamp":1795243180748,"sessionID":"${SES}","error":{"name":"APIError","data":{"message":"This request would exceed the rate limit for your organization of 50 requests per minute.","statusCode":429,"isRetryable":true,"responseHeaders":{"anthropic-ratelimit-requests-limit":"50","anthropic-ratelimit-requests-remaining":"0","anthropic-ratelimit-requests-reset":"2100-01-01T00:00:00.000Z","anthropic-ratelimit-unified-reset":"4102444800","retry-after":"1"}}}}`;
const UNKNOWN_ERROR = `{"type":"error","timestamp":1795243225251,"sessionID":"${SES}","error":{"name":"UnknownError","data":{"message":"Unexpected server error. Check server logs for details.","ref":"err_840a277b"}}}`;

function lines(raw: readonly string[]): StreamLine[] {
  return raw.map((l) => {
    const line = parseStreamLine(l);
    if (line === null) throw new Error(`not a line: ${l}`);
    return line;
  });
}

function fold(raw: readonly string[]): { facts: OpencodeFacts; events: AgentEvent[] } {
  let facts = emptyOpencodeFacts;
  const events: AgentEvent[] = [];
  for (const line of lines(raw)) {
    events.push(...opencodeEvents(line, facts.sessionId));
    facts = reduceOpencode(facts, line);
  }
  return { facts, events };
}

describe('parseStreamLine', () => {
  it('reads JSON lines with a type and ignores anything else', () => {
    expect(parseStreamLine(RECORDED[0]!)?.type).toBe('step_start');
    expect(parseStreamLine('Error: Session not found')).toBeNull();
    expect(parseStreamLine('{"broken":')).toBeNull();
    expect(parseStreamLine('{"no":"type"}')).toBeNull();
    expect(parseStreamLine('')).toBeNull();
  });
});

describe('a recorded run', () => {
  it('becomes the session once, the tool call and result, text, and one usage per step', () => {
    const { events } = fold(RECORDED);
    expect(events).toEqual([
      { type: 'session', sessionId: SES },
      { type: 'tool_use', name: 'bash', input: "printf 'hello from opencode' > hello.txt" },
      { type: 'tool_result', ok: true, output: '(no output)' },
      { type: 'usage', usage: { inputTokens: 120, outputTokens: 30, cachedInputTokens: 40, costUsd: 0.000822 } },
      { type: 'text', text: 'Created hello.txt.' },
      { type: 'usage', usage: { inputTokens: 210, outputTokens: 25, cachedInputTokens: 100, costUsd: 0.00093 } },
    ]);
  });

  it('folds into the session id, summed usage and cost, the final text, and success', () => {
    const { facts } = fold(RECORDED);
    expect(facts.sessionId).toBe(SES);
    expect(facts.steps).toBe(2);
    expect(facts.finalText).toBe('Created hello.txt.');
    // Cache writes count as input, reasoning as output; the cost is the sum of the steps' costs.
    expect(facts.usage).toEqual({ inputTokens: 330, outputTokens: 55, cachedInputTokens: 140, costUsd: 0.001752 });
    expect(opencodeSucceeded(facts)).toBe(true);
  });

  it('keeps the text of the last message that had any, joining its parts', () => {
    const text = (message: string, t: string) => `{"type":"text","sessionID":"${SES}","part":{"messageID":"${message}","type":"text","text":"${t}"}}`;
    const { facts } = fold([text('msg_1', 'Looking.'), text('msg_2', 'Done.'), text('msg_2', 'All tests pass.')]);
    expect(facts.finalText).toBe('Done.\nAll tests pass.');
  });

  it('reports a failed tool as a failed result with its error', () => {
    const failed = `{"type":"tool_use","sessionID":"${SES}","part":{"type":"tool","tool":"edit","state":{"status":"error","input":{"filePath":"a.ts"},"error":"File not found"}}}`;
    expect(opencodeEvents(lines([failed])[0]!, SES)).toEqual([
      { type: 'tool_use', name: 'edit', input: '{"filePath":"a.ts"}' },
      { type: 'tool_result', ok: false, output: 'File not found' },
    ]);
  });

  it('leaves the cost null when no step reported one', () => {
    const step = `{"type":"step_finish","sessionID":"${SES}","part":{"type":"step-finish","tokens":{"input":1,"output":2,"reasoning":0,"cache":{"write":0,"read":0}}}}`;
    expect(fold([step]).facts.usage).toEqual({ inputTokens: 1, outputTokens: 2, cachedInputTokens: 0, costUsd: null });
  });
});

describe('errors', () => {
  it('an error event fails the run and becomes a failed result', () => {
    const { facts, events } = fold([AUTH_ERROR]);
    expect(opencodeSucceeded(facts)).toBe(false);
    expect(facts.error).toMatchObject({ name: 'APIError', statusCode: 401, message: 'invalid x-api-key' });
    expect(events).toEqual([
      { type: 'session', sessionId: SES },
      { type: 'result', ok: false, text: '401 invalid x-api-key' },
    ]);
  });

  it('classifies 401 as auth', () => {
    expect(classifyOpencodeFailure(fold([AUTH_ERROR]).facts.error, '')).toEqual({ kind: 'auth' });
    expect(classifyOpencodeFailure({ name: 'ProviderAuthError', message: 'no key', headers: {} }, '')).toEqual({ kind: 'auth' });
  });

  it('classifies 429 as a rate limit, with the reset from the headers', () => {
    expect(classifyOpencodeFailure(fold([RATE_LIMIT_ERROR]).facts.error, '')).toEqual({ kind: 'rate-limit', resetAt: '2100-01-01T00:00:00.000Z' });
  });

  it('falls back to the message for the reset time', () => {
    const now = new Date('2030-01-01T00:00:00Z');
    expect(classifyOpencodeFailure({ name: 'APIError', message: 'Rate limit reached. Please try again in 20s.', statusCode: 429, headers: {} }, '', now)).toEqual({ kind: 'rate-limit', resetAt: '2030-01-01T00:00:20.000Z' });
  });

  it('classifies 5xx and 529 as overloaded, anything else as agent', () => {
    expect(classifyOpencodeFailure({ name: 'APIError', message: 'Overloaded', statusCode: 529, headers: {} }, '')).toEqual({ kind: 'overloaded' });
    expect(classifyOpencodeFailure({ name: 'APIError', message: 'oops', statusCode: 503, headers: {} }, '')).toEqual({ kind: 'overloaded' });
    expect(classifyOpencodeFailure(fold([UNKNOWN_ERROR]).facts.error, '')).toEqual({ kind: 'agent' });
    expect(classifyOpencodeFailure(undefined, 'Error: Session not found')).toEqual({ kind: 'agent' });
  });

  it('reads the reset of OpenAI-style and retry-after headers', () => {
    const now = new Date('2030-01-01T00:00:00Z');
    expect(headerReset({ 'x-ratelimit-remaining-requests': '0', 'x-ratelimit-reset-requests': '6m0s' }, now)).toBe('2030-01-01T00:06:00.000Z');
    expect(headerReset({ 'retry-after-ms': '1500' }, now)).toBe('2030-01-01T00:00:01.500Z');
    expect(headerReset({ 'retry-after': '30' }, now)).toBe('2030-01-01T00:00:30.000Z');
    expect(headerReset({}, now)).toBeUndefined();
  });
});
