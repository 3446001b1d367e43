/**
 * Test helpers for the dashboard: the real `loom dashboard` process (its address read from its
 * output), raw HTTP requests (to set any header, `Host` included), and an event-stream reader.
 */
import http from 'node:http';
import type { DaemonHandle } from './loom-repo.js';
import { startDaemon, until } from './loom-repo.js';

export interface DashboardHandle extends DaemonHandle {
  url: string;
}

/** Starts `loom dashboard --port 0 [args]` in `root` and waits for its address. */
export async function startDashboardProcess(root: string, args: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<DashboardHandle> {
  const handle = startDaemon(root, ['dashboard', '--port', '0', ...args], env);
  const url = await until(() => /Dashboard: (http:\/\/\S+\/)/.exec(handle.output())?.[1], 20_000, 'the dashboard address');
  return { ...handle, url };
}

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One HTTP request with exactly these headers; resolves with the whole answer. */
export function request(url: string, opts: { method?: string; headers?: Record<string, string> } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: opts.method ?? 'GET', headers: opts.headers ?? {} }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

export interface SseMessage {
  event: string;
  data: unknown;
  /** Its `id:` field, when it has one. */
  id?: string;
  /** When it arrived (epoch ms). */
  at: number;
}

export interface SseStream {
  status: number;
  messages: SseMessage[];
  close(): void;
}

/** Opens an event stream and collects its messages until `close`. */
export function openEvents(url: string, headers: Record<string, string> = {}): Promise<SseStream> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers: { accept: 'text/event-stream', ...headers } }, (res) => {
      const stream: SseStream = { status: res.statusCode ?? 0, messages: [], close: () => req.destroy() };
      let buffer = '';
      res.on('data', (c: Buffer) => {
        buffer += c.toString();
        for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const event = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          const id = /^id: (.*)$/m.exec(block)?.[1];
          if (event !== undefined && data !== undefined) stream.messages.push({ event, data: JSON.parse(data), at: Date.now(), ...(id === undefined ? {} : { id }) });
        }
      });
      res.on('error', () => undefined);
      resolve(stream);
    });
    req.on('error', (error) => ((error as NodeJS.ErrnoException).code === 'ECONNRESET' ? undefined : reject(error)));
  });
}
