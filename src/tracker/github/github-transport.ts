/**
 * `GitHubTransport`: every request of the GitHub adapter goes through `send`, which applies the
 * adapter's HTTP policies.
 *
 * Invariants owned here:
 * - An idle poll costs no rate limit: a conditional GET sends back the ETag of the last answer
 *   for its URL as `If-None-Match`; GitHub answers `304 Not Modified` without charging a
 *   rate-limit point, and the remembered body is served. At most `MAX_CACHED_URLS` URLs are
 *   remembered, the least recently used forgotten first.
 * - Rate limits are honoured: `x-ratelimit-*` headers are tracked from every response; a 403/429
 *   with `retry-after`, or an exhausted budget, opens a circuit breaker until the reset, during
 *   which every call rejects fast with `RateLimitedError` and nothing is sent.
 * - 5xx answers (and requests left unanswered, which the HTTP client reports as 500) are retried with
 *   backoff (3 retries) by `send`, then `TrackerUnavailableError`; `sendOnce` makes one attempt,
 *   for writes whose retry is not harmless (the caller reads the item again first); 401 is
 *   `TrackerAuthError`; any other error status is a `GitHubApiError` (or `NotFoundError` for a
 *   named item).
 */
import { GitHubHttp } from './github-http.js';
import { NotFoundError } from '../../core/tracker-model.js';
import { RateLimitedError, TrackerAuthError, TrackerError, TrackerUnavailableError } from '../tracker-errors.js';

/** How the adapter names the service in its errors. */
export const SERVICE = 'GitHub';
const MAX_RETRIES = 3;
/** How long a request may go without an answer before it counts as a server error, ms (as long as Node's own fetch waits for headers). */
const REQUEST_TIMEOUT_MS = 300_000;
/** A GraphQL query has a REST fallback: it is not waited for as long, ms (the merge look is taken under the merge lock). */
const GRAPHQL_TIMEOUT_MS = 20_000;
/** Bound on remembered ETags (one per URL); the oldest are forgotten first. */
const MAX_CACHED_URLS = 2_000;

/** Any other unexpected GitHub answer (403 without rate limiting, 422 validation, ...). */
export class GitHubApiError extends TrackerError {
  constructor(
    status: number,
    readonly detail: string,
  ) {
    super('github_api_error', `GitHub answered ${status}: ${detail}`, { status });
  }
}

export interface RateLimitState {
  remaining: number | null;
  limit: number | null;
  /** Epoch milliseconds when the budget resets, if known. */
  resetAt: number | null;
  used: number | null;
}

/** The last answer to a conditional GET of one URL. */
export interface CachedResponse {
  etag: string;
  data: unknown;
  link: string | undefined;
  /** When GitHub last vouched for it (a 200 or a 304), epoch ms; absent in older cache files. */
  at?: number;
}

type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface Response<T> {
  status: number;
  data: T;
  headers: Record<string, string | number | undefined>;
}

/** One page of a listing and its `link` header. */
interface Page<T> {
  data: T[];
  link: unknown;
}

export interface GitHubTransportOptions {
  owner: string;
  repo: string;
  token: string;
  /** REST API root; defaults to https://api.github.com. */
  baseUrl?: string;
  /** How long a request may go without an answer before it counts as a server error (retried), ms; default 300 s. */
  timeoutMs?: number;
  /** Clock in epoch milliseconds (circuit breaker, rate-limit reset). */
  now?: () => number;
  /** First delay of the 5xx retry backoff (doubles per retry); default 500 ms. */
  retryDelayMs?: number;
  /** What an earlier process left: remembered answers and the circuit breaker. */
  restored?: { entries: [string, CachedResponse][]; openUntil: number | null };
}

export class GitHubTransport {
  readonly owner: string;
  readonly repo: string;
  /** Requests actually sent (retries included; fast rejections by the open circuit excluded). */
  requests = 0;
  /** Conditional requests answered 304 (served from the cache at no rate-limit cost). */
  conditionalHits = 0;

  private readonly http: GitHubHttp;
  private readonly now: () => number;
  private readonly retryDelayMs: number;
  private readonly cache = new Map<string, CachedResponse>();
  /** Where GraphQL queries go: `{api}/graphql`, or `/api/graphql` on GitHub Enterprise Server (REST at `/api/v3`). */
  private readonly graphqlUrl: string;
  private limits: RateLimitState = { remaining: null, limit: null, resetAt: null, used: null };
  private openUntil: number | null = null;
  private disposed = false;
  /** URLs whose answer this process remembered, renewed or forgot, and when (insertion order: oldest first; bounded). */
  private readonly touched = new Map<string, number>();

  constructor(options: GitHubTransportOptions) {
    for (const [url, entry] of options.restored?.entries ?? []) this.cache.set(url, entry);
    this.openUntil = options.restored?.openUntil ?? null;
    this.owner = options.owner;
    this.repo = options.repo;
    this.now = options.now ?? Date.now;
    this.retryDelayMs = options.retryDelayMs ?? 500;
    const baseUrl = (options.baseUrl ?? 'https://api.github.com').replace(/\/+$/, '');
    this.graphqlUrl = /\/api\/v3$/.test(baseUrl) ? baseUrl.replace(/\/api\/v3$/, '/api/graphql') : `${baseUrl}/graphql`;
    this.http = new GitHubHttp({ baseUrl, token: options.token, userAgent: 'loom-github-tracker', timeoutMs: options.timeoutMs ?? REQUEST_TIMEOUT_MS });
  }

  /** The last rate-limit state GitHub reported. */
  rateLimit(): RateLimitState {
    return { ...this.limits };
  }

  /** When the rate-limit circuit breaker is open, the epoch ms it closes; else null. */
  circuitOpenUntil(): number | null {
    if (this.openUntil !== null && this.now() >= this.openUntil) this.openUntil = null;
    return this.openUntil;
  }

  /**
   * What the next process can reuse: the remembered answers and the circuit breaker, laid over
   * `saved`, what the processes that ended since this one started left (several Loom processes
   * share one cache file). For a URL this process used or forgot, the newer word wins (GitHub's
   * latest answer, or this process's forgetting it after a write); the rest of the file stays,
   * though this process restored older answers (a shepherd that ran through several iterations
   * must not bring back the ETags they had moved past: each would cost a poll); the later
   * circuit-breaker time wins.
   */
  persisted(saved: { entries: [string, CachedResponse][]; openUntil: number | null } | null = null): { entries: [string, CachedResponse][]; openUntil: number | null } {
    const theirs = new Map(saved?.entries ?? []);
    // Least recently used first: what only this process still holds, then the file's, then this process's own words.
    const merged = new Map<string, CachedResponse>();
    for (const [url, entry] of this.cache) if (!theirs.has(url) && !this.touched.has(url)) merged.set(url, entry);
    for (const [url, entry] of theirs) merged.set(url, entry);
    for (const [url, when] of this.touched) {
      const other = theirs.get(url);
      if (other?.at !== undefined && other.at > when) continue;
      merged.delete(url);
      const mine = this.cache.get(url);
      if (mine !== undefined) merged.set(url, mine);
    }
    const entries = [...merged.entries()].slice(-MAX_CACHED_URLS);
    const openUntil = Math.max(saved?.openUntil ?? 0, this.openUntil ?? 0);
    return { entries, openUntil: openUntil > this.now() ? openUntil : null };
  }

  /** Notes this process's word on a URL (kept for the URLs it can still hold, plus as many forgotten). */
  private touch(url: string): void {
    this.touched.delete(url);
    this.touched.set(url, this.now());
    if (this.touched.size > 2 * MAX_CACHED_URLS) {
      const oldest = this.touched.keys().next();
      if (oldest.done !== true) this.touched.delete(oldest.value);
    }
  }

  /** Every later call throws; the remembered answers are dropped and kept-alive connections closed. */
  dispose(): void {
    this.disposed = true;
    this.cache.clear();
    this.http.close();
  }

  /** A path under this repository: `/repos/{owner}/{repo}{suffix}`. */
  repoPath(suffix: string): string {
    return `/repos/${encodeURIComponent(this.owner)}/${encodeURIComponent(this.repo)}${suffix}`;
  }

  /** Forgets the remembered answer of a URL, returning it. */
  forget(url: string): CachedResponse | undefined {
    const entry = this.cache.get(url);
    this.cache.delete(url);
    this.touch(url);
    return entry;
  }

  /** Remembers an answer for a URL, as the most recently used. */
  remember(url: string, entry: { etag: string; data: unknown; link: unknown }): void {
    this.touch(url);
    this.cache.delete(url);
    this.cache.set(url, { etag: entry.etag, data: entry.data, link: typeof entry.link === 'string' ? entry.link : undefined, at: this.now() });
    if (this.cache.size > MAX_CACHED_URLS) {
      const oldest = this.cache.keys().next();
      if (oldest.done !== true) this.cache.delete(oldest.value);
    }
  }

  /**
   * A listing's pages from the API, following `link: rel="next"`, each a conditional GET (or,
   * with `conditional` false, plain GETs whose answers are not remembered).
   */
  async getAll<T>(path: string, params: Record<string, string | number>, item?: number, conditional = true): Promise<T[]> {
    const all = await this.pages<T>(path, params, async (url) => {
      const res: Response<T[]> = await this.send<T[]>('GET', url, undefined, item, conditional);
      return { data: res.data, link: res.headers.link };
    });
    return all ?? [];
  }

  /**
   * One API call with the adapter's policies: circuit breaker, conditional cache, rate-limit
   * tracking, 5xx retries and typed errors. `item` turns a 404 into `NotFoundError`.
   */
  send<T = unknown>(method: Method, url: string, body?: Record<string, unknown>, item?: number, conditional = false): Promise<Response<T>> {
    return this.request<T>(method, url, body, item, conditional, MAX_RETRIES);
  }

  /**
   * One attempt, no 5xx retry: for a write that is not idempotent (a label removal, a merge), a
   * 5xx or a lost answer may mean it was carried out, so the caller reads the item again before
   * deciding whether to send it again. A 5xx (or no answer) is `TrackerUnavailableError`.
   * `conditional`: a GET answered 304 (the remembered answer is current) costs no rate limit.
   */
  sendOnce<T = unknown>(method: Method, url: string, body?: Record<string, unknown>, conditional = false): Promise<Response<T>> {
    return this.request<T>(method, url, body, undefined, conditional, 0);
  }

  /**
   * One GraphQL query, one attempt. Its cost is charged to GraphQL's own budget
   * (`x-ratelimit-resource: graphql`), so its answer leaves the REST budget and the circuit
   * breaker as they are; an open breaker still stops it. An answer with `errors`, or any failed
   * request, is an error: callers fall back to REST reads.
   */
  async graphql<T>(query: string, variables: Record<string, unknown>): Promise<T> {
    if (this.disposed) throw new Error(`the GitHub tracker for ${this.owner}/${this.repo} has been disposed`);
    const until = this.circuitOpenUntil();
    if (until !== null) throw new RateLimitedError({ service: SERVICE, until });
    this.requests++;
    let res: { data: unknown };
    try {
      res = await this.http.request({ method: 'POST', url: this.graphqlUrl, data: { query, variables }, timeoutMs: GRAPHQL_TIMEOUT_MS });
    } catch (error) {
      const status = statusOf(error);
      if (status === 401) throw new TrackerAuthError({ service: SERVICE, status, detail: messageOf(error), hint: 'check GITHUB_TOKEN' });
      throw new GitHubApiError(status ?? 0, messageOf(error));
    }
    const answer = res.data as { data?: T | null; errors?: { message?: string }[] } | null;
    if (answer === null || typeof answer !== 'object') throw new GitHubApiError(200, 'GraphQL answered without data');
    if (Array.isArray(answer.errors) && answer.errors.length > 0) throw new GitHubApiError(200, answer.errors.map((e) => e.message ?? 'error').join('; '));
    if (answer.data === undefined || answer.data === null) throw new GitHubApiError(200, 'GraphQL answered without data');
    return answer.data;
  }

  private async request<T>(method: Method, url: string, body: Record<string, unknown> | undefined, item: number | undefined, conditional: boolean, retries: number): Promise<Response<T>> {
    if (this.disposed) throw new Error(`the GitHub tracker for ${this.owner}/${this.repo} has been disposed`);
    const cached = conditional ? this.cache.get(url) : undefined;
    for (let attempt = 0; ; attempt++) {
      const until = this.circuitOpenUntil();
      if (until !== null) throw new RateLimitedError({ service: SERVICE, until });
      const headers: Record<string, string> = {};
      if (cached !== undefined) headers['if-none-match'] = cached.etag;
      this.requests++;
      try {
        const res = await this.http.request({ method, url, headers, ...(body === undefined ? {} : { data: body }) });
        this.track(res.headers);
        if (conditional && typeof res.headers.etag === 'string') this.remember(url, { etag: res.headers.etag, data: res.data, link: res.headers.link });
        return { status: res.status, data: res.data as T, headers: res.headers };
      } catch (error) {
        const status = statusOf(error);
        const resHeaders = headersOf(error);
        if (resHeaders !== undefined) this.track(resHeaders);
        if (status === 304 && cached !== undefined) {
          this.conditionalHits++;
          this.remember(url, cached);
          return { status: 304, data: cached.data as T, headers: { ...resHeaders, link: cached.link } };
        }
        if (status === 401) throw new TrackerAuthError({ service: SERVICE, status, detail: messageOf(error), hint: 'check GITHUB_TOKEN' });
        if (status === 403 || status === 429) {
          const limited = this.rateLimitedUntil(status, resHeaders, messageOf(error));
          if (limited !== null) {
            this.openUntil = limited;
            throw new RateLimitedError({ service: SERVICE, until: limited, status });
          }
        }
        if (status !== null && status >= 500) {
          if (attempt < retries) {
            await sleep(this.retryDelayMs * 2 ** attempt);
            continue;
          }
          throw new TrackerUnavailableError({ service: SERVICE, status, detail: messageOf(error) });
        }
        if ((status === 404 || status === 410) && item !== undefined) throw new NotFoundError(item);
        if (status !== null) throw new GitHubApiError(status, messageOf(error));
        throw error;
      }
    }
  }

  /** Every page of a listing, following the `link` headers, each read by `read`; null when `read` has no page. */
  private async pages<T>(path: string, params: Record<string, string | number>, read: (url: string) => Page<T> | null | Promise<Page<T> | null>): Promise<T[] | null> {
    let url: string | null = listUrl(path, params);
    const all: T[] = [];
    const seen = new Set<string>();
    while (url !== null && !seen.has(url)) {
      seen.add(url);
      const page = await read(url);
      if (page === null) return null;
      all.push(...page.data);
      url = nextLink(page.link);
    }
    return all;
  }

  /** When a 403/429 is a rate limit, the epoch ms it lifts; null for a plain permission 403. */
  private rateLimitedUntil(status: number, headers: Record<string, unknown> | undefined, detail: string): number | null {
    const retryAfter = Number(headers?.['retry-after']);
    if (headers?.['retry-after'] !== undefined && Number.isFinite(retryAfter)) return this.now() + retryAfter * 1000;
    const reset = Number(headers?.['x-ratelimit-reset']);
    if (Number(headers?.['x-ratelimit-remaining']) === 0 && Number.isFinite(reset) && reset * 1000 > this.now()) {
      return reset * 1000; // primary limit: wait for the window to reset
    }
    // Secondary limits without retry-after: GitHub asks to wait at least a minute.
    if (status === 429 || /rate limit|abuse/i.test(detail)) return this.now() + 60_000;
    return null;
  }

  private track(headers: Record<string, unknown>): void {
    const num = (name: string): number | null => {
      const value = headers[name];
      if (value === undefined || value === null || value === '') return null;
      const n = Number(value);
      return Number.isFinite(n) ? n : null;
    };
    const remaining = num('x-ratelimit-remaining');
    if (remaining === null) return;
    const reset = num('x-ratelimit-reset');
    this.limits = {
      remaining,
      limit: num('x-ratelimit-limit'),
      resetAt: reset === null ? null : reset * 1000,
      used: num('x-ratelimit-used'),
    };
    // An exhausted budget opens the circuit proactively: the next call would be refused anyway.
    if (remaining === 0 && reset !== null && reset * 1000 > this.now()) this.openUntil = reset * 1000;
  }
}

/** `path?query` for a listing's parameters (in the order given). */
export function listUrl(path: string, params: Record<string, string | number>): string {
  const query = new URLSearchParams(Object.entries(params).map(([k, v]): [string, string] => [k, String(v)])).toString();
  return query === '' ? path : `${path}?${query}`;
}

/** The HTTP status of a failed request, if it had one. */
export function statusOf(error: unknown): number | null {
  const status = typeof error === 'object' && error !== null ? (error as { status?: unknown }).status : undefined;
  return typeof status === 'number' ? status : null;
}

/** GitHub's own message for a failed request (or the error's). */
export function messageOf(error: unknown): string {
  if (error instanceof GitHubApiError) return error.detail;
  if (typeof error === 'object' && error !== null) {
    const data = (error as { response?: { data?: unknown } }).response?.data;
    if (typeof data === 'object' && data !== null && typeof (data as { message?: unknown }).message === 'string') {
      return (data as { message: string }).message;
    }
  }
  return error instanceof Error ? error.message : String(error);
}

/** The request failed because the thing is not there (404, 410). */
export function isGone(error: unknown): boolean {
  const status = statusOf(error);
  return status === 404 || status === 410;
}

/** The `rel="next"` URL of a `link` header, if any. */
export function nextLink(link: unknown): string | null {
  if (typeof link !== 'string') return null;
  const match = /<([^>]+)>;\s*rel="next"/.exec(link);
  return match?.[1] ?? null;
}

function headersOf(error: unknown): Record<string, string | number | undefined> | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const response = (error as { response?: { headers?: Record<string, string | number | undefined> } }).response;
  return response?.headers;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
