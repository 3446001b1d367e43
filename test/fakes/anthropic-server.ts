/**
 * A fake Anthropic Messages API for driving the real agent CLIs in tests: `POST /v1/messages`
 * answered in the real wire format (SSE `message_start` … `message_stop` when `stream: true`,
 * JSON otherwise), replies taken in order from a script whatever the prompt, side requests (the
 * CLI's title / quota / count_tokens calls) answered without consuming the script, every request
 * recorded. It can also answer every main request with an HTTP error or hang without a word.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { json } from './http-fake.js';

export interface TurnUsage {
  inputTokens: number;
  outputTokens: number;
  cachedInputTokens: number;
}

export interface ToolCall {
  tool: string;
  input: Record<string, unknown>;
}

/** One scripted assistant turn: a text reply, or tool calls (optionally preceded by text). */
export type ScriptTurn = ({ text: string } | { text?: string; tools: ToolCall[] } | ToolCall) & { usage?: Partial<TurnUsage> };

/** What every main request gets instead of the script. */
export type FailureMode = 'auth' | 'rate-limit' | 'overloaded' | 'hang';

export interface RecordedRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  /** The parsed JSON body, or null when there was none (or it was not JSON). */
  body: MessagesBody | null;
  /** True when it was served from the script (the agent's own turn), false for side requests. */
  main: boolean;
}

/** The parts of a Messages request body the fake looks at. */
export interface MessagesBody {
  model?: string;
  stream?: boolean;
  max_tokens?: number;
  system?: unknown;
  tools?: unknown[];
  messages?: { role: string; content: unknown }[];
  [key: string]: unknown;
}

export const DEFAULT_USAGE: TurnUsage = { inputTokens: 120, outputTokens: 30, cachedInputTokens: 40 };

/** Unix seconds at which the fake's rate limit "resets" (fixed, so tests can assert it). */
export const RATE_LIMIT_RESET_UNIX = 4_102_444_800; // 2100-01-01T00:00:00Z

export class FakeAnthropicServer {
  readonly requests: RecordedRequest[] = [];
  /** Usage the server reported for each scripted turn it served, in order. */
  readonly served: TurnUsage[] = [];
  private readonly server: http.Server;
  private script: ScriptTurn[];
  private next = 0;
  private failure: FailureMode | null = null;
  private retryAfterMs: number | null = null;
  private readonly hanging = new Set<http.ServerResponse>();
  private messageCount = 0;

  private constructor(script: ScriptTurn[]) {
    this.script = script;
    this.server = http.createServer((req, res) => this.handle(req, res));
  }

  /** Starts a server on 127.0.0.1 on an ephemeral port. */
  static async start(script: ScriptTurn[] = []): Promise<FakeAnthropicServer> {
    const fake = new FakeAnthropicServer(script);
    await new Promise<void>((resolve, reject) => {
      fake.server.once('error', reject);
      fake.server.listen(0, '127.0.0.1', () => resolve());
    });
    return fake;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** What ANTHROPIC_BASE_URL should be. */
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Replaces the script (and starts it from the top). */
  play(script: ScriptTurn[]): void {
    this.script = script;
    this.next = 0;
  }

  /**
   * From now on every main request fails this way (null: back to the script). `retryAfterMs`: an
   * overloaded or rate-limited answer carries `retry-after-ms` (which the SDKs wait out instead of
   * their own backoff or `retry-after`'s whole seconds).
   */
  failWith(mode: FailureMode | null, opts: { retryAfterMs?: number } = {}): void {
    this.failure = mode;
    this.retryAfterMs = opts.retryAfterMs ?? null;
  }

  /** The requests served from the script (the agent's turns), in order. */
  mainRequests(): RecordedRequest[] {
    return this.requests.filter((r) => r.main);
  }

  /** Sum of the usage served for scripted turns. */
  totalUsage(): TurnUsage {
    return this.served.reduce(
      (sum, u) => ({ inputTokens: sum.inputTokens + u.inputTokens, outputTokens: sum.outputTokens + u.outputTokens, cachedInputTokens: sum.cachedInputTokens + u.cachedInputTokens }),
      { inputTokens: 0, outputTokens: 0, cachedInputTokens: 0 },
    );
  }

  async close(): Promise<void> {
    for (const res of this.hanging) res.destroy();
    this.hanging.clear();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      let body: MessagesBody | null = null;
      try {
        body = raw === '' ? null : (JSON.parse(raw) as MessagesBody);
      } catch {
        body = null;
      }
      const url = new URL(req.url ?? '/', 'http://fake');
      const record: RecordedRequest = { method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers, body, main: false };
      this.requests.push(record);
      if (req.method === 'POST' && url.pathname === '/v1/messages/count_tokens') {
        return json(res, 200, { input_tokens: estimateTokens(raw) });
      }
      if (req.method === 'POST' && url.pathname === '/v1/messages' && body !== null) {
        if (!isMainRequest(body)) return this.reply(res, body, { text: sideReply(body), usage: { inputTokens: 5, outputTokens: 3, cachedInputTokens: 0 } }, false);
        record.main = true;
        if (this.failure !== null) return this.fail(res, this.failure);
        const turn = this.script[this.next];
        if (turn === undefined) return this.reply(res, body, { text: 'Done.' }, true);
        this.next++;
        return this.reply(res, body, turn, true);
      }
      // Anything else (the CLI's connectivity probe `HEAD /api/hello`, telemetry, ...): a plain OK.
      if (req.method === 'HEAD') {
        res.writeHead(200);
        return res.end();
      }
      return json(res, 200, {});
    });
  }

  private fail(res: http.ServerResponse, mode: FailureMode): void {
    const requestId = `req_fake${this.requests.length}`;
    switch (mode) {
      case 'hang':
        // Accept the request and say nothing, ever (until close()).
        this.hanging.add(res);
        res.on('close', () => this.hanging.delete(res));
        return;
      case 'auth':
        return json(res, 401, { type: 'error', error: { type: 'authentication_error', message: 'invalid x-api-key' }, request_id: requestId }, { 'request-id': requestId });
      case 'rate-limit': {
        const reset = new Date(RATE_LIMIT_RESET_UNIX * 1000).toISOString();
        return json(
          res,
          429,
          { type: 'error', error: { type: 'rate_limit_error', message: 'This request would exceed the rate limit for your organization of 50 requests per minute.' }, request_id: requestId },
          {
            'request-id': requestId,
            'retry-after': '1',
            ...(this.retryAfterMs !== null ? { 'retry-after-ms': String(this.retryAfterMs) } : {}),
            'anthropic-ratelimit-requests-limit': '50',
            'anthropic-ratelimit-requests-remaining': '0',
            'anthropic-ratelimit-requests-reset': reset,
            'anthropic-ratelimit-unified-status': 'rejected',
            'anthropic-ratelimit-unified-reset': String(RATE_LIMIT_RESET_UNIX),
          },
        );
      }
      case 'overloaded':
        return json(res, 529, { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' }, request_id: requestId }, { 'request-id': requestId, 'x-should-retry': 'true', ...(this.retryAfterMs !== null ? { 'retry-after-ms': String(this.retryAfterMs) } : {}) });
    }
  }

  private reply(res: http.ServerResponse, body: MessagesBody, turn: ScriptTurn, main: boolean): void {
    const usage: TurnUsage = { ...DEFAULT_USAGE, ...turn.usage };
    if (main) this.served.push(usage);
    const id = `msg_fake${++this.messageCount}`;
    const model = body.model ?? 'claude-fake';
    const blocks = contentBlocks(turn, this.messageCount);
    const stopReason = blocks.some((b) => b.type === 'tool_use') ? 'tool_use' : 'end_turn';
    const wireUsage = { input_tokens: usage.inputTokens, output_tokens: usage.outputTokens, cache_creation_input_tokens: 0, cache_read_input_tokens: usage.cachedInputTokens };
    if (body.stream !== true) {
      return json(res, 200, { id, type: 'message', role: 'assistant', model, content: blocks, stop_reason: stopReason, stop_sequence: null, usage: wireUsage });
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', 'request-id': `req_${id}` });
    const send = (event: string, data: unknown) => res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    send('message_start', {
      type: 'message_start',
      message: { id, type: 'message', role: 'assistant', model, content: [], stop_reason: null, stop_sequence: null, usage: { ...wireUsage, output_tokens: 1 } },
    });
    send('ping', { type: 'ping' });
    blocks.forEach((block, index) => {
      if (block.type === 'text') {
        send('content_block_start', { type: 'content_block_start', index, content_block: { type: 'text', text: '' } });
        for (const piece of split(block.text)) send('content_block_delta', { type: 'content_block_delta', index, delta: { type: 'text_delta', text: piece } });
      } else {
        send('content_block_start', { type: 'content_block_start', index, content_block: { type: 'tool_use', id: block.id, name: block.name, input: {} } });
        for (const piece of split(JSON.stringify(block.input))) send('content_block_delta', { type: 'content_block_delta', index, delta: { type: 'input_json_delta', partial_json: piece } });
      }
      send('content_block_stop', { type: 'content_block_stop', index });
    });
    send('message_delta', { type: 'message_delta', delta: { stop_reason: stopReason, stop_sequence: null }, usage: { output_tokens: usage.outputTokens } });
    send('message_stop', { type: 'message_stop' });
    res.end();
  }
}

type Block = { type: 'text'; text: string } | { type: 'tool_use'; id: string; name: string; input: Record<string, unknown> };

function contentBlocks(turn: ScriptTurn, message: number): Block[] {
  if ('tool' in turn) return [{ type: 'tool_use', id: `toolu_fake${message}_0`, name: turn.tool, input: turn.input }];
  const blocks: Block[] = [];
  if (turn.text !== undefined && turn.text !== '') blocks.push({ type: 'text', text: turn.text });
  if ('tools' in turn) turn.tools.forEach((call, i) => blocks.push({ type: 'tool_use', id: `toolu_fake${message}_${i}`, name: call.tool, input: call.input }));
  return blocks;
}

/**
 * The agent's own turns carry its tool definitions; the CLI's side requests (session title,
 * quota probe, topic detection, ...) send none.
 */
function isMainRequest(body: MessagesBody): boolean {
  return Array.isArray(body.tools) && body.tools.length > 0;
}

/** A sensible answer to a side request: the title generator wants JSON, anything else a word. */
function sideReply(body: MessagesBody): string {
  const system = JSON.stringify(body.system ?? '').toLowerCase();
  if (system.includes('title')) return system.includes('json') ? '{"title": "Fake session"}' : 'Fake session';
  return 'ok';
}

/** Deltas arrive in pieces on the real wire: split text so the client must join them. */
function split(text: string): string[] {
  if (text.length < 8) return [text];
  const cut = Math.ceil(text.length / 3);
  return [text.slice(0, cut), text.slice(cut, 2 * cut), text.slice(2 * cut)];
}

function estimateTokens(raw: string): number {
  return Math.max(1, Math.ceil(raw.length / 4));
}

