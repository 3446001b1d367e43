/**
 * A fake OpenAI Responses API for tests of the Codex runtime: `POST /v1/responses` answered in
 * the real streaming wire format (SSE: response.created, response.output_item.added/done,
 * response.output_text.delta, response.completed with usage), one scripted turn per request.
 * A turn is a text reply, a shell call the CLI runs (Codex 0.169 offers the model an
 * `exec_command` function taking `{ cmd }`), an HTTP error (401, 429 with retry-after, 500/503),
 * a `response.failed` stream, or a hang. Side requests (`/v1/models`, ...) do not use up the
 * script. Every request is recorded.
 */
import http from 'node:http';
import { json, pathnameOf, startRecordingServer } from './http-fake.js';
import type { RecordedRequest } from './http-fake.js';

export interface FakeTokens {
  input: number;
  cached?: number;
  output: number;
}

export type FakeTurn =
  | { kind: 'text'; text: string; usage?: FakeTokens }
  | { kind: 'shell'; cmd: string; usage?: FakeTokens }
  | { kind: 'error'; status: number; message: string; code?: string; type?: string; retryAfter?: number }
  | { kind: 'failed'; code: string; message: string }
  | { kind: 'hang' };

export type { RecordedRequest };

export interface FakeOpenAIServer {
  /** Base URL including `/v1`, as a model provider's `base_url`. */
  readonly baseUrl: string;
  readonly requests: RecordedRequest[];
  /** The `POST /responses` requests only (the ones that played a turn). */
  responsesRequests(): RecordedRequest[];
  /** Turns not yet played. */
  remaining(): number;
  /**
   * `config.toml` text pointing Codex at this server through a declared provider, `loom-fake`
   * (no retries unless `retries` says, so failures surface at once; null: the CLI's defaults).
   */
  codexConfig(options?: { model?: string; envKey?: string; retries?: { request: number; stream: number } | null }): string;
  /** `config.toml` text pointing Codex's built-in `openai` provider at this server (its retries cannot be changed). */
  codexBuiltinConfig(options?: { model?: string }): string;
  close(): Promise<void>;
}

const DEFAULT_TOKENS: FakeTokens = { input: 100, cached: 0, output: 10 };

export async function startFakeOpenAIServer(script: readonly FakeTurn[]): Promise<FakeOpenAIServer> {
  const turns = [...script];
  const requests: RecordedRequest[] = [];
  let responseCount = 0;

  const { port, close } = await startRecordingServer(requests, (recorded, res) => {
    const pathname = pathnameOf(recorded);
    if (recorded.method === 'POST' && pathname.endsWith('/responses')) {
      const turn = turns.shift();
      responseCount += 1;
      play(res, turn, `resp_${responseCount}`, responseCount);
      return;
    }
    if (recorded.method === 'GET' && pathname.endsWith('/models')) {
      json(res, 200, { object: 'list', data: [] });
      return;
    }
    json(res, 404, { error: { message: `fake OpenAI server: no route for ${recorded.method} ${pathname}`, type: 'invalid_request_error' } });
  });
  const baseUrl = `http://127.0.0.1:${port}/v1`;

  return {
    baseUrl,
    requests,
    responsesRequests: () => requests.filter((r) => r.method === 'POST' && pathnameOf(r).endsWith('/responses')),
    remaining: () => turns.length,
    codexConfig: ({ model = 'gpt-fake', envKey = 'CODEX_API_KEY', retries = { request: 0, stream: 0 } } = {}) =>
      [
        `model = ${JSON.stringify(model)}`,
        'model_provider = "loom-fake"',
        '',
        '[model_providers.loom-fake]',
        'name = "Loom fake OpenAI"',
        `base_url = ${JSON.stringify(baseUrl)}`,
        `env_key = ${JSON.stringify(envKey)}`,
        'wire_api = "responses"',
        ...(retries === null ? [] : [`request_max_retries = ${retries.request}`, `stream_max_retries = ${retries.stream}`]),
        '',
      ].join('\n'),
    codexBuiltinConfig: ({ model = 'gpt-fake' } = {}) => [`model = ${JSON.stringify(model)}`, `openai_base_url = ${JSON.stringify(baseUrl)}`, ''].join('\n'),
    close,
  };
}

function play(res: http.ServerResponse, turn: FakeTurn | undefined, id: string, n: number): void {
  if (turn === undefined) {
    json(res, 400, { error: { message: 'fake OpenAI server: script exhausted', type: 'invalid_request_error' } });
    return;
  }
  switch (turn.kind) {
    case 'hang':
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.flushHeaders();
      return; // never another byte; closed by close()
    case 'error': {
      const headers: http.OutgoingHttpHeaders = turn.retryAfter === undefined ? {} : { 'retry-after': String(turn.retryAfter) };
      json(res, turn.status, { error: { message: turn.message, type: turn.type ?? null, code: turn.code ?? null, param: null } }, headers);
      return;
    }
    case 'failed':
      sse(res, [
        { type: 'response.created', response: response(id, 'in_progress') },
        { type: 'response.failed', response: { ...response(id, 'failed'), error: { code: turn.code, message: turn.message } } },
      ]);
      return;
    case 'text': {
      const item = { type: 'message', id: `msg_${n}`, status: 'completed', role: 'assistant', content: [{ type: 'output_text', text: turn.text, annotations: [] }] };
      sse(res, [
        { type: 'response.created', response: response(id, 'in_progress') },
        { type: 'response.in_progress', response: response(id, 'in_progress') },
        { type: 'response.output_item.added', output_index: 0, item: { ...item, status: 'in_progress', content: [] } },
        { type: 'response.content_part.added', item_id: item.id, output_index: 0, content_index: 0, part: { type: 'output_text', text: '', annotations: [] } },
        { type: 'response.output_text.delta', item_id: item.id, output_index: 0, content_index: 0, delta: turn.text },
        { type: 'response.output_text.done', item_id: item.id, output_index: 0, content_index: 0, text: turn.text },
        { type: 'response.content_part.done', item_id: item.id, output_index: 0, content_index: 0, part: item.content[0] },
        { type: 'response.output_item.done', output_index: 0, item },
        { type: 'response.completed', response: { ...response(id, 'completed'), output: [item], usage: usage(turn.usage) } },
      ]);
      return;
    }
    case 'shell': {
      const args = JSON.stringify({ cmd: turn.cmd });
      const item = { type: 'function_call', id: `fc_${n}`, call_id: `call_${n}`, name: 'exec_command', arguments: args, status: 'completed' };
      sse(res, [
        { type: 'response.created', response: response(id, 'in_progress') },
        { type: 'response.output_item.added', output_index: 0, item: { ...item, arguments: '', status: 'in_progress' } },
        { type: 'response.function_call_arguments.delta', item_id: item.id, output_index: 0, delta: args },
        { type: 'response.function_call_arguments.done', item_id: item.id, output_index: 0, arguments: args },
        { type: 'response.output_item.done', output_index: 0, item },
        { type: 'response.completed', response: { ...response(id, 'completed'), output: [item], usage: usage(turn.usage) } },
      ]);
      return;
    }
  }
}

function response(id: string, status: string): Record<string, unknown> {
  return { id, object: 'response', created_at: Math.floor(Date.now() / 1000), status, model: 'gpt-fake', output: [] };
}

function usage(tokens: FakeTokens = DEFAULT_TOKENS): Record<string, unknown> {
  const cached = tokens.cached ?? 0;
  return {
    input_tokens: tokens.input,
    input_tokens_details: { cached_tokens: cached },
    output_tokens: tokens.output,
    output_tokens_details: { reasoning_tokens: 0 },
    total_tokens: tokens.input + tokens.output,
  };
}

function sse(res: http.ServerResponse, events: readonly Record<string, unknown>[]): void {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  let sequence = 0;
  for (const event of events) res.write(`event: ${String(event.type)}\ndata: ${JSON.stringify({ ...event, sequence_number: sequence++ })}\n\n`);
  res.end();
}


