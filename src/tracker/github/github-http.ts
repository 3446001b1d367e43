/**
 * `GitHubHttp`: the GitHub adapter's HTTP client, on Node's own `http`/`https` with keep-alive.
 * One request: JSON out and in (text for other answers, as a job log is; gzip-compressed on the
 * wire when the server offers it: a listing page is a tenth of its size), redirects followed — the
 * token goes only to the API's own origin, never to a job log's signed download URL — and every
 * answer that is not a success thrown as an `HttpRequestError` with `status` and `response`
 * (headers and body), a 304 included, which is how the transport reads failures. A request left
 * without an answer (refused, reset, or silent for `timeoutMs`) is status 500, a server error the
 * transport retries.
 *
 * Why not Octokit and `fetch`: Node's `fetch` costs every GitHub process about 15 MB the first time
 * it is used (its HTTP parser is WebAssembly), Octokit's REST client 8 MB more to load; the
 * adapter needs one request function.
 */
import http from 'node:http';
import https from 'node:https';
import zlib from 'node:zlib';

/** An answer: status, headers (lower-case names) and the body (parsed JSON, text, or undefined when empty). */
export interface HttpAnswer {
  status: number;
  url: string;
  headers: Record<string, string | undefined>;
  data: unknown;
}

/** A request that did not succeed: its status (500 when nothing answered) and what came back. */
export class HttpRequestError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly response?: HttpAnswer,
  ) {
    super(message);
    this.name = 'HttpRequestError';
  }
}

export interface GitHubHttpOptions {
  /** REST API root, e.g. `https://api.github.com`; a relative request URL is taken from here. */
  baseUrl: string;
  token: string;
  userAgent: string;
  /** How long a request may go without an answer, ms. */
  timeoutMs: number;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 5;

export class GitHubHttp {
  private readonly agents = { 'http:': new http.Agent({ keepAlive: true }), 'https:': new https.Agent({ keepAlive: true }) };
  private readonly apiOrigin: string;

  constructor(private readonly options: GitHubHttpOptions) {
    this.apiOrigin = new URL(options.baseUrl).origin;
  }

  /** One request (`url`: absolute, or a path under the API root); the answer, or an `HttpRequestError`. */
  async request(req: { method: string; url: string; headers?: Record<string, string>; data?: unknown; /** This request's own `timeoutMs`. */ timeoutMs?: number }): Promise<HttpAnswer> {
    let url = new URL(/^https?:\/\//.test(req.url) ? req.url : `${this.options.baseUrl}${req.url}`);
    let method = req.method;
    let body = req.data === undefined ? undefined : Buffer.from(JSON.stringify(req.data));
    for (let hops = 0; ; hops += 1) {
      const answer = await this.once(url, method, req.headers ?? {}, body, req.timeoutMs ?? this.options.timeoutMs);
      const location = answer.headers.location;
      if (REDIRECTS.has(answer.status) && location !== undefined && hops < MAX_REDIRECTS) {
        url = new URL(location, url);
        if (answer.status === 303 || ((answer.status === 301 || answer.status === 302) && method === 'POST')) {
          method = 'GET';
          body = undefined;
        }
        continue;
      }
      if (answer.status >= 200 && answer.status < 300) return answer;
      const message = typeof answer.data === 'object' && answer.data !== null && typeof (answer.data as { message?: unknown }).message === 'string' ? (answer.data as { message: string }).message : `${method} ${url.pathname} answered ${answer.status}`;
      throw new HttpRequestError(answer.status, message, answer);
    }
  }

  /** Closes the kept-alive connections. */
  close(): void {
    this.agents['http:'].destroy();
    this.agents['https:'].destroy();
  }

  private once(url: URL, method: string, extra: Record<string, string>, body: Buffer | undefined, timeoutMs: number): Promise<HttpAnswer> {
    const agent = url.protocol === 'https:' ? this.agents['https:'] : url.protocol === 'http:' ? this.agents['http:'] : null;
    if (agent === null) return Promise.reject(new HttpRequestError(500, `unsupported URL ${url.href}`));
    const headers: Record<string, string> = {
      accept: 'application/vnd.github+json',
      'accept-encoding': 'gzip',
      'user-agent': this.options.userAgent,
      ...(url.origin === this.apiOrigin ? { authorization: `token ${this.options.token}` } : {}),
      ...(body !== undefined ? { 'content-type': 'application/json; charset=utf-8', 'content-length': String(body.length) } : {}),
      ...extra,
    };
    const send = url.protocol === 'https:' ? https.request : http.request;
    return new Promise((resolve, reject) => {
      const request = send(url, { method, headers, agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', (error) => reject(new HttpRequestError(500, `${method} ${url.pathname}: ${error.message}`)));
        res.on('end', () => {
          const out: Record<string, string | undefined> = {};
          for (const [name, value] of Object.entries(res.headers)) out[name] = Array.isArray(value) ? value.join(', ') : value;
          let raw = Buffer.concat(chunks);
          if (/\bgzip\b/i.test(out['content-encoding'] ?? '') && raw.length > 0) {
            try {
              raw = zlib.gunzipSync(raw);
            } catch (error) {
              reject(new HttpRequestError(500, `${method} ${url.pathname}: a compressed answer that does not decompress (${(error as Error).message})`));
              return;
            }
          }
          const text = raw.toString('utf8');
          let data: unknown = text === '' ? undefined : text;
          if (text !== '' && /\bjson\b/i.test(out['content-type'] ?? '')) {
            try {
              data = JSON.parse(text);
            } catch {
              // Not JSON after all: the text is the answer.
            }
          }
          resolve({ status: res.statusCode ?? 0, url: url.href, headers: out, data });
        });
      });
      request.setTimeout(timeoutMs, () => request.destroy(new Error(`no answer within ${Math.round(timeoutMs / 1000)} s`)));
      request.on('error', (error) => reject(new HttpRequestError(500, `${method} ${url.pathname}: ${error.message}`)));
      request.end(body);
    });
  }
}
