/**
 * Who may use the dashboard (PRODUCT.md §11, docs/observability.md "Security").
 *
 * Invariants owned here:
 * - it binds to a loopback address unless told otherwise, and binding to any other address
 *   needs a token (`LOOM_DASHBOARD_TOKEN`): without one the start is refused;
 * - with a token, every request — pages, the API, the event stream, `/metrics` — must carry it:
 *   `Authorization: Bearer <token>`, or the session cookie a browser gets by opening the page
 *   once with `?token=<token>` (it is then redirected to the same address without it, so the
 *   token stays out of the address bar, the history and Referer headers);
 * - without a token (loopback only), a request must name a loopback host in its `Host` header,
 *   so a web page on another name that resolves to 127.0.0.1 (DNS rebinding) gets nothing;
 * - a POST (an action) must come from the dashboard's own page: its `Origin` is this server's,
 *   or it is no browser request at all (no `Origin`, a bearer token);
 * - the token never appears in a page, a response, or a log line: the cookie holds an HMAC of
 *   it, and comparisons are constant-time.
 */
import crypto from 'node:crypto';
import type http from 'node:http';
import { UserError } from '../core/errors.js';

export const COOKIE = 'loom_dashboard';

/** Hosts that only this machine can reach. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127(\.\d{1,3}){3}$/.test(h);
}

/** Refuses a bind that would expose the dashboard without a token. */
export function checkBind(host: string, token: string | null): void {
  if (!isLoopback(host) && token === null) {
    throw new UserError(`the dashboard binds to ${host}, which other machines can reach: set LOOM_DASHBOARD_TOKEN to a secret (every request must then carry it), or bind to 127.0.0.1`);
  }
  if (token !== null && token.length < 16) throw new UserError('LOOM_DASHBOARD_TOKEN is too short: use at least 16 characters (e.g. `openssl rand -hex 24`)');
}

export type AccessResult = { ok: true } | { ok: false; status: 401 | 403 | 421; message: string } | { ok: 'redirect'; location: string; cookie: string };

export class AccessPolicy {
  private readonly session: string | null;

  constructor(private readonly token: string | null) {
    this.session = token === null ? null : crypto.createHmac('sha256', token).update('loom-dashboard-session').digest('hex');
  }

  get tokenRequired(): boolean {
    return this.token !== null;
  }

  /** Whether `req` may be served; a browser bringing `?token=` is sent to a clean address with the session cookie. */
  check(req: http.IncomingMessage): AccessResult {
    const url = new URL(req.url ?? '/', 'http://dashboard.invalid');
    if (this.token === null) {
      const host = hostName(req.headers.host);
      if (host === null || !isLoopback(host)) return { ok: false, status: 421, message: 'this dashboard only answers requests addressed to a loopback host (127.0.0.1, localhost)' };
    } else {
      const query = url.searchParams.get('token');
      if (query !== null && req.method === 'GET' && same(query, this.token)) {
        url.searchParams.delete('token');
        const clean = `${url.pathname}${url.searchParams.size > 0 ? `?${url.searchParams.toString()}` : ''}`;
        return { ok: 'redirect', location: clean, cookie: `${COOKIE}=${this.session ?? ''}; HttpOnly; SameSite=Strict; Path=/` };
      }
      if (!this.authenticated(req)) return { ok: false, status: 401, message: 'this dashboard needs its token: open it once with ?token=<LOOM_DASHBOARD_TOKEN>, or send Authorization: Bearer <token>' };
    }
    if (req.method !== 'GET' && req.method !== 'HEAD' && !this.sameOrigin(req)) return { ok: false, status: 403, message: 'cross-origin request refused: actions are taken from the dashboard page itself' };
    return { ok: true };
  }

  private authenticated(req: http.IncomingMessage): boolean {
    const auth = req.headers.authorization;
    if (auth !== undefined && /^Bearer /i.test(auth) && this.token !== null && same(auth.slice(7).trim(), this.token)) return true;
    const cookie = cookieValue(req.headers.cookie, COOKIE);
    return cookie !== null && this.session !== null && same(cookie, this.session);
  }

  private sameOrigin(req: http.IncomingMessage): boolean {
    const origin = req.headers.origin;
    const site = req.headers['sec-fetch-site'];
    if (site !== undefined && site !== 'same-origin' && site !== 'none') return false;
    if (origin === undefined) {
      // Not a browser page's request: only a client holding the token itself (a bearer) may act
      // without an Origin; on a loopback dashboard without a token, a plain local client may.
      const auth = req.headers.authorization;
      return this.token === null || (auth !== undefined && /^Bearer /i.test(auth));
    }
    return req.headers.host !== undefined && (origin === `http://${req.headers.host}` || origin === `https://${req.headers.host}`);
  }
}

function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && crypto.timingSafeEqual(x, y);
}

function hostName(host: string | undefined): string | null {
  if (host === undefined || host === '') return null;
  const m = /^(\[[^\]]+\]|[^:]+)(?::\d+)?$/.exec(host);
  return m?.[1] ?? null;
}

function cookieValue(header: string | undefined, name: string): string | null {
  for (const part of (header ?? '').split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === name) return v.join('=');
  }
  return null;
}
