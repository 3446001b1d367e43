/**
 * A fake Gemini API for tests of the Gemini runtime: `POST /v1beta/models/{model}:streamGenerateContent?alt=sse`
 * answered in the real wire format (SSE `data:` chunks of GenerateContentResponse: candidates
 * with text or functionCall parts, finishReason, usageMetadata), one scripted turn per request.
 * A turn is a text reply, a tool call the CLI runs (Gemini CLI 0.61 offers `write_file` taking
 * `{ file_path, content }`, and `run_shell_command` taking `{ command }`), an HTTP error in
 * Google's error shape (401, 429 with RetryInfo, 503), or a hang. Side requests — the model
 * router's non-streaming `:generateContent`, `:countTokens`, anything else — do not use up the
 * script. Every request is recorded.
 */
import http from 'node:http';
import { json, pathnameOf, startRecordingServer } from './http-fake.js';
import type { RecordedRequest } from './http-fake.js';

export interface FakeGeminiTokens {
  input: number;
  cached?: number;
  output: number;
}

export type FakeGeminiTurn =
  | { kind: 'text'; text: string; usage?: FakeGeminiTokens }
  | { kind: 'tool'; name: string; args: Record<string, unknown>; usage?: FakeGeminiTokens }
  | { kind: 'error'; status: number; message: string; googleStatus?: string; retryDelay?: string; reason?: string }
  | { kind: 'hang' };

export type RecordedGeminiRequest = RecordedRequest;

export interface FakeGeminiServer {
  /** Origin for `GOOGLE_GEMINI_BASE_URL` (the SDK adds `/v1beta/...`). */
  readonly baseUrl: string;
  readonly requests: RecordedGeminiRequest[];
  /** The `:streamGenerateContent` requests only (the ones that played a turn). */
  turnRequests(): RecordedGeminiRequest[];
  /** Turns not yet played. */
  remaining(): number;
  close(): Promise<void>;
}

const DEFAULT_TOKENS: FakeGeminiTokens = { input: 100, cached: 0, output: 10 };

/** Google's canonical status names for the HTTP codes the script uses. */
const GOOGLE_STATUS: Record<number, string> = { 400: 'INVALID_ARGUMENT', 401: 'UNAUTHENTICATED', 403: 'PERMISSION_DENIED', 404: 'NOT_FOUND', 429: 'RESOURCE_EXHAUSTED', 500: 'INTERNAL', 503: 'UNAVAILABLE' };

export async function startFakeGeminiServer(script: readonly FakeGeminiTurn[]): Promise<FakeGeminiServer> {
  const turns = [...script];
  const requests: RecordedGeminiRequest[] = [];
  const hanging = new Set<http.ServerResponse>();

  const { port, close } = await startRecordingServer(requests, (recorded, res) => {
    const pathname = pathnameOf(recorded);
    const model = /\/models\/([^/:]+):/.exec(pathname)?.[1] ?? 'gemini-fake';
    if (recorded.method === 'POST' && pathname.endsWith(':streamGenerateContent')) {
      const turn = turns.shift();
      if (turn?.kind === 'hang') hanging.add(res);
      play(res, turn, model);
      return;
    }
    if (recorded.method === 'POST' && pathname.endsWith(':generateContent')) {
      // The model router asks a small model to score the prompt's complexity, as JSON.
      json(res, 200, response([{ text: JSON.stringify({ complexity_reasoning: 'fake', complexity_score: 10 }) }], model, { input: 10, output: 5 }));
      return;
    }
    if (recorded.method === 'POST' && pathname.endsWith(':countTokens')) {
      json(res, 200, { totalTokens: 10 });
      return;
    }
    json(res, 404, googleError(404, `fake Gemini server: no route for ${recorded.method} ${pathname}`));
  });

  return {
    baseUrl: `http://127.0.0.1:${port}`,
    requests,
    turnRequests: () => requests.filter((r) => r.method === 'POST' && pathnameOf(r).endsWith(':streamGenerateContent')),
    remaining: () => turns.length,
    close: () => {
      for (const res of hanging) res.destroy();
      return close();
    },
  };
}

function play(res: http.ServerResponse, turn: FakeGeminiTurn | undefined, model: string): void {
  if (turn === undefined) {
    json(res, 400, googleError(400, 'fake Gemini server: script exhausted'));
    return;
  }
  switch (turn.kind) {
    case 'hang':
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.flushHeaders();
      return; // never another byte; destroyed by close()
    case 'error': {
      const details: Record<string, unknown>[] = [];
      if (turn.reason !== undefined) details.push({ '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason: turn.reason, domain: 'generativelanguage.googleapis.com' });
      if (turn.retryDelay !== undefined) details.push({ '@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay: turn.retryDelay });
      json(res, turn.status, googleError(turn.status, turn.message, turn.googleStatus, details));
      return;
    }
    case 'text':
      // Two chunks, as the real API streams: the text, then the finish reason with the usage.
      sse(res, [response([{ text: turn.text }], model), response([{ text: '' }], model, turn.usage ?? DEFAULT_TOKENS, 'STOP')]);
      return;
    case 'tool':
      sse(res, [response([{ functionCall: { name: turn.name, args: turn.args } }], model, turn.usage ?? DEFAULT_TOKENS, 'STOP')]);
      return;
  }
}

function response(parts: readonly Record<string, unknown>[], model: string, tokens?: FakeGeminiTokens, finishReason?: string): Record<string, unknown> {
  return {
    candidates: [{ content: { role: 'model', parts }, index: 0, ...(finishReason === undefined ? {} : { finishReason }) }],
    ...(tokens === undefined
      ? {}
      : {
          usageMetadata: {
            promptTokenCount: tokens.input,
            candidatesTokenCount: tokens.output,
            totalTokenCount: tokens.input + tokens.output,
            ...(tokens.cached === undefined || tokens.cached === 0 ? {} : { cachedContentTokenCount: tokens.cached }),
          },
        }),
    modelVersion: model,
    responseId: `fake-${Math.random().toString(36).slice(2)}`,
  };
}

function googleError(status: number, message: string, googleStatus?: string, details: readonly Record<string, unknown>[] = []): Record<string, unknown> {
  return { error: { code: status, message, status: googleStatus ?? GOOGLE_STATUS[status] ?? 'UNKNOWN', ...(details.length === 0 ? {} : { details }) } };
}

function sse(res: http.ServerResponse, events: readonly Record<string, unknown>[]): void {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  for (const event of events) res.write(`data: ${JSON.stringify(event)}\r\n\r\n`);
  res.end();
}


