/**
 * `GitHubHttp`, the adapter's HTTP client, against plain servers on 127.0.0.1: the token only to
 * the API's origin (a redirect to a job log's signed URL elsewhere goes without it), answers that
 * are not successes thrown with their status and body (304 included), and a request nobody
 * answers is a 500 — a server error the transport retries — after the timeout.
 */
import http from 'node:http';
import zlib from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { GitHubHttp, HttpRequestError } from '../../../src/tracker/github/github-http.js';

const servers: http.Server[] = [];
const clients: GitHubHttp[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise((resolve) => s.close(resolve));
  }
});

interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

async function serve(handler: (req: http.IncomingMessage, res: http.ServerResponse, body: string) => void): Promise<{ url: string; seen: Seen[] }> {
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      handler(req, res, body);
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, seen };
}

function client(baseUrl: string, timeoutMs = 5_000): GitHubHttp {
  const c = new GitHubHttp({ baseUrl, token: 'tok', userAgent: 'loom-test', timeoutMs });
  clients.push(c);
  return c;
}

describe('GitHubHttp', () => {
  it('sends JSON with the token to the API and reads JSON or text back', async () => {
    const api = await serve((req, res, body) => {
      if (req.url === '/text') {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end('plain words');
        return;
      }
      res.writeHead(201, { 'content-type': 'application/json; charset=utf-8', etag: 'W/"1"' });
      res.end(JSON.stringify({ echoed: JSON.parse(body || '{}') }));
    });
    const http = client(api.url);
    const answer = await http.request({ method: 'POST', url: '/repos/o/r/issues', headers: { 'if-none-match': 'W/"0"' }, data: { title: 'é' } });
    expect(answer).toMatchObject({ status: 201, data: { echoed: { title: 'é' } }, headers: { etag: 'W/"1"' } });
    expect(api.seen[0]).toMatchObject({ method: 'POST', url: '/repos/o/r/issues', headers: { authorization: 'token tok', 'content-type': 'application/json; charset=utf-8', 'if-none-match': 'W/"0"', 'user-agent': 'loom-test' } });
    expect((await http.request({ method: 'GET', url: '/text' })).data).toBe('plain words');
  });

  it('asks for gzip and reads a compressed answer', async () => {
    const items = Array.from({ length: 200 }, (_, i) => ({ number: i + 1, body: 'x'.repeat(500) }));
    let sent = 0;
    const api = await serve((req, res) => {
      const json = Buffer.from(JSON.stringify(items));
      const gz = /gzip/.test(String(req.headers['accept-encoding'] ?? ''));
      const out = gz ? zlib.gzipSync(json) : json;
      sent = out.length;
      res.writeHead(200, { 'content-type': 'application/json', ...(gz ? { 'content-encoding': 'gzip' } : {}) });
      res.end(out);
    });
    const answer = await client(api.url).request({ method: 'GET', url: '/repos/o/r/issues' });
    expect(answer.data).toEqual(items);
    expect(sent).toBeLessThan(JSON.stringify(items).length / 10);
  });

  it('throws a 304 and an error status with the answer (headers and GitHub’s message)', async () => {
    const api = await serve((req, res) => {
      if (req.url === '/same') {
        res.writeHead(304, { etag: 'W/"1"', 'x-ratelimit-remaining': '4999' });
        res.end();
        return;
      }
      res.writeHead(403, { 'content-type': 'application/json', 'retry-after': '60' });
      res.end(JSON.stringify({ message: 'You have exceeded a secondary rate limit.' }));
    });
    const http = client(api.url);
    const notModified = await http.request({ method: 'GET', url: '/same' }).catch((e: unknown) => e);
    expect(notModified).toBeInstanceOf(HttpRequestError);
    expect(notModified).toMatchObject({ status: 304, response: { headers: { etag: 'W/"1"', 'x-ratelimit-remaining': '4999' } } });
    const limited = await http.request({ method: 'GET', url: '/limited' }).catch((e: unknown) => e);
    expect(limited).toMatchObject({ status: 403, message: 'You have exceeded a secondary rate limit.', response: { headers: { 'retry-after': '60' } } });
  });

  it('follows a redirect; the token goes to the API’s origin only, never to a download URL elsewhere', async () => {
    const download = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('job log');
    });
    const api = await serve((req, res) => {
      res.writeHead(302, { location: req.url === '/here' ? '/there' : `${download.url}/signed?sig=x` });
      res.end();
    });
    const http = client(api.url);
    expect((await http.request({ method: 'GET', url: '/repos/o/r/actions/jobs/1/logs' })).data).toBe('job log');
    expect(download.seen[0]?.headers.authorization).toBeUndefined();
    expect(download.seen[0]?.url).toBe('/signed?sig=x');
    // Same origin: still the API, still with the token.
    await http.request({ method: 'GET', url: '/here' }).catch(() => undefined);
    expect(api.seen.find((s) => s.url === '/there')?.headers.authorization).toBe('token tok');
  });

  it('a request nobody answers, or whose connection is cut, is a 500', async () => {
    const silent = await serve(() => undefined);
    const cut = await serve((req) => req.socket.destroy());
    const started = Date.now();
    await expect(client(silent.url, 300).request({ method: 'GET', url: '/x' })).rejects.toMatchObject({ status: 500, message: expect.stringMatching(/no answer within/) });
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    await expect(client(cut.url).request({ method: 'GET', url: '/x' })).rejects.toMatchObject({ status: 500 });
    await expect(client('http://127.0.0.1:9').request({ method: 'GET', url: '/x' })).rejects.toMatchObject({ status: 500 });
  });
});
