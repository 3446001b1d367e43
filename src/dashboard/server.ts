/**
 * `loom dashboard`: the board, the issue pages, the JSON API they use, the event stream and
 * `/metrics`, served over HTTP from this process (docs/observability.md lists every route).
 *
 * The read models come in through `DashboardSources` (the CLI wires `status/`'s in), the actions
 * go through the `loom` CLI itself (actions.ts), and who may ask is access.ts's business: every
 * request passes `AccessPolicy.check` first.
 */
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LoomPaths } from '../config/paths.js';
import type { LoomEvent } from '../core/events.js';
import { UserError } from '../core/errors.js';
import { removeDashboardRecord, writeDashboardRecord } from '../process/dashboard-record.js';
import { AccessPolicy, checkBind } from './access.js';
import type { DashboardAction } from './actions.js';
import { runAction } from './actions.js';
import type { BoardView } from './live.js';
import { LiveBoard } from './live.js';

export interface DashboardSources<B extends BoardView> {
  /** The board: JSON for the page, with the gauges of `/metrics`. */
  board(): Promise<B>;
  /** What `loom status --json` prints. */
  status(): Promise<unknown>;
  /** Issue `n` (why and timeline), given its events; null when there is no such issue. */
  issue(n: number, events: LoomEvent[]): Promise<unknown>;
  /** Why there is no issue `n`, in one line (a pull request's number says so); the 404's message. */
  missing?(n: number): Promise<string>;
}

export interface DashboardOptions<B extends BoardView> {
  paths: LoomPaths;
  host: string;
  /** 0: any free port. */
  port: number;
  token: string | null;
  sources: DashboardSources<B>;
  /** How often the live loop looks for changes, ms. */
  intervalMs?: number;
}

export interface RunningDashboard {
  url: string;
  port: number;
  close(): Promise<void>;
}

const ASSETS = fileURLToPath(new URL('../../defaults/dashboard/', import.meta.url));
const ASSET_TYPES: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8', '.svg': 'image/svg+xml' };
const SECURITY_HEADERS = {
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
};

export async function startDashboard<B extends BoardView>(opts: DashboardOptions<B>): Promise<RunningDashboard> {
  const { paths, host, sources } = opts;
  checkBind(host, opts.token);
  const access = new AccessPolicy(opts.token);
  const live = new LiveBoard(paths, () => sources.board(), opts.intervalMs);
  await live.start();

  const server = http.createServer((req, res) => {
    for (const [k, v] of Object.entries(SECURITY_HEADERS)) res.setHeader(k, v);
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) json(res, error instanceof BadRequest ? 400 : 500, { error: error instanceof Error ? error.message : String(error) });
      else res.end();
    });
  });

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const allowed = access.check(req);
    if (allowed.ok === 'redirect') {
      res.writeHead(303, { location: allowed.location, 'set-cookie': allowed.cookie });
      res.end();
      return;
    }
    if (!allowed.ok) {
      json(res, allowed.status, { error: allowed.message });
      return;
    }
    const url = new URL(req.url ?? '/', 'http://dashboard.invalid');
    const route = url.pathname;
    const method = req.method ?? 'GET';
    const issueRoute = /^\/api\/v1\/issues\/([^/]+)(\/(spawn|abort))?$/.exec(route);

    // An action's route takes POST only, every other route GET (and HEAD) only: the wrong method is a 405 naming the right one.
    const isAction = route === '/api/v1/daemon/stop' || issueRoute?.[3] !== undefined;
    const methods = isAction ? 'POST' : 'GET, HEAD';
    if (!methods.split(', ').includes(method)) {
      req.resume();
      if (!isAction && !isRoute(route, issueRoute)) return json(res, 404, { error: `nothing at ${route}` });
      res.setHeader('allow', methods);
      return json(res, 405, { error: `${method} ${route} is not supported: use ${methods.replace(', HEAD', '')}` });
    }
    if (method === 'POST') {
      const action: DashboardAction = route === '/api/v1/daemon/stop' ? { type: 'stop' } : { type: issueRoute?.[3] as 'spawn' | 'abort', issue: issueNumber(issueRoute?.[1] ?? '') };
      // Actions take no body: whatever was sent is read and ignored.
      req.resume();
      const result = await runAction(action, paths.root);
      return json(res, result.status, result.body);
    }

    if (route === '/' || /^\/issues\/\d+$/.test(route)) return asset(res, 'index.html');
    if (route === '/favicon.ico') {
      res.writeHead(204);
      res.end();
      return;
    }
    if (route.startsWith('/assets/')) return asset(res, route.slice('/assets/'.length));
    if (route === '/api/v1/state') return json(res, 200, await sources.status());
    if (route === '/api/v1/board') return json(res, 200, await live.fresh());
    if (route === '/api/v1/events') {
      const issue = url.searchParams.get('issue');
      live.subscribe(req, res, issue === null ? null : issueNumber(issue));
      return;
    }
    if (issueRoute !== null && issueRoute[2] === undefined) {
      const n = issueNumber(issueRoute[1] ?? '');
      live.catchUp();
      const report = await sources.issue(n, live.issueEvents(n));
      if (report === null) return json(res, 404, { error: (await sources.missing?.(n).catch(() => undefined)) ?? `issue #${n} does not exist` });
      return json(res, 200, report);
    }
    if (route === '/metrics') {
      await live.fresh();
      const text = await live.metrics.text();
      res.writeHead(200, { 'content-type': live.metrics.contentType });
      res.end(text);
      return;
    }
    json(res, 404, { error: `nothing at ${route}` });
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) => {
      live.stop();
      if (error.code === 'EADDRINUSE') reject(new UserError(`cannot serve the dashboard on ${host}:${opts.port}: the port is in use; choose another (\`--port P\`, or \`--dashboard=P\` with loom start; 0 picks a free one)`));
      else if (error.code === 'EADDRNOTAVAIL' || error.code === 'ENOTFOUND' || error.code === 'EAI_AGAIN') reject(new UserError(`cannot serve the dashboard on ${host}: no such address on this machine`));
      else if (error.code === 'EACCES') reject(new UserError(`cannot serve the dashboard on port ${opts.port}: permission denied (ports below 1024 need privileges)`));
      else reject(error);
    });
    server.listen(opts.port, host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  // Listening on every address: the address to open on this machine is the loopback one.
  const shown = isWildcard(host) ? '127.0.0.1' : host;
  const url = `http://${shown.includes(':') ? `[${shown}]` : shown}:${port}/`;
  writeDashboardRecord(paths.dashboard, { url, host, port, token_required: access.tokenRequired });
  return {
    url,
    port,
    close: async () => {
      live.stop();
      removeDashboardRecord(paths.dashboard);
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

class BadRequest extends UserError {}

/** Whether a GET route serves `route` (`issueRoute`: its match of the issue routes). */
function isRoute(route: string, issueRoute: RegExpExecArray | null): boolean {
  return ['/', '/favicon.ico', '/api/v1/state', '/api/v1/board', '/api/v1/events', '/metrics'].includes(route) || /^\/issues\/\d+$/.test(route) || route.startsWith('/assets/') || issueRoute !== null;
}

/** Whether `host` means every address of this machine. */
export function isWildcard(host: string): boolean {
  return ['0.0.0.0', '::', '[::]'].includes(host);
}

function issueNumber(text: string): number {
  if (!/^\d+$/.test(text) || Number(text) < 1) throw new BadRequest(`"${text}" is not an issue number`);
  return Number(text);
}

function json(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body, null, 2);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
  res.end(`${text}\n`);
}

function asset(res: http.ServerResponse, name: string): void {
  const ext = path.extname(name);
  const type = ASSET_TYPES[ext];
  // Only plain file names from the assets folder: no path goes anywhere else.
  if (type === undefined || !/^[a-z0-9-]+\.[a-z]+$/.test(name)) return json(res, 404, { error: `no asset ${name}` });
  let body: Buffer;
  try {
    body = fs.readFileSync(path.join(ASSETS, name));
  } catch {
    return json(res, 404, { error: `no asset ${name}` });
  }
  res.writeHead(200, { 'content-type': type });
  res.end(body);
}
