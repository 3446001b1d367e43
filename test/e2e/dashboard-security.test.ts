// The dashboard's security promises over real HTTP: loopback by default, a token for anything
// else (checked on every request and on the event stream), same-origin POSTs only, no answers to
// another host name (DNS rebinding), and the token never in a page, a file or a log.
import fs from 'node:fs';
import os from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import type { DashboardHandle } from '../helpers/dashboard.js';
import { openEvents, request, startDashboardProcess } from '../helpers/dashboard.js';
import type { TestRepo } from '../helpers/loom-repo.js';
import { loom, makeRepo } from '../helpers/loom-repo.js';

let repo: TestRepo | undefined;
let dashboard: DashboardHandle | undefined;
afterEach(async () => {
  dashboard?.child.kill('SIGTERM');
  if (dashboard) await dashboard.exited(10_000).catch(() => undefined);
  repo?.cleanup();
  dashboard = repo = undefined;
});

const TOKEN = 'tok-0123456789abcdef-secret';

describe('dashboard security', () => {
  it('refuses a non-loopback bind without a token (and a short token), before listening', () => {
    repo = makeRepo({});
    const open = loom(repo.root, ['dashboard', '--host', '0.0.0.0']);
    expect(open.code).toBe(2);
    expect(open.stderr).toBe('loom: the dashboard binds to 0.0.0.0, which other machines can reach: set LOOM_DASHBOARD_TOKEN to a secret (every request must then carry it), or bind to 127.0.0.1\n');
    const env = loom(repo.root, ['dashboard'], { LOOM_DASHBOARD_HOST: '::' });
    expect([env.code, env.stderr]).toEqual([2, expect.stringMatching(/^loom: the dashboard binds to ::, which other machines can reach/)]);
    const short = loom(repo.root, ['dashboard', '--host', '0.0.0.0'], { LOOM_DASHBOARD_TOKEN: 'short' });
    expect([short.code, short.stderr]).toEqual([2, 'loom: LOOM_DASHBOARD_TOKEN is too short: use at least 16 characters (e.g. `openssl rand -hex 24`)\n']);
    expect(fs.existsSync(repo.paths.dashboard)).toBe(false);
  });

  it('with a token, every request and the event stream need it; a browser gets a cookie, not the token', async () => {
    repo = makeRepo({});
    dashboard = await startDashboardProcess(repo.root, [], { LOOM_DASHBOARD_TOKEN: TOKEN });
    const url = dashboard.url;
    expect(dashboard.output()).toMatch(/token required/);

    for (const route of ['', 'issues/1', 'assets/board.js', 'api/v1/state', 'api/v1/board', 'api/v1/issues/1', 'metrics']) {
      const r = await request(`${url}${route}`);
      expect(r.status, route).toBe(401);
      expect(r.body).not.toContain(TOKEN);
      expect((await request(`${url}${route}`, { headers: { authorization: 'Bearer not-the-token-at-all' } })).status, route).toBe(401);
    }
    const bareStream = await openEvents(`${url}api/v1/events`);
    expect(bareStream.status).toBe(401);
    bareStream.close();

    const bearer = { authorization: `Bearer ${TOKEN}` };
    expect((await request(`${url}api/v1/state`, { headers: bearer })).status).toBe(200);
    expect((await request(`${url}metrics`, { headers: bearer })).status).toBe(200);

    // The token in the address once: a redirect to the same address without it, and a cookie.
    const login = await request(`${url}issues/3?token=${TOKEN}&x=1`);
    expect(login.status).toBe(303);
    expect(login.headers.location).toBe('/issues/3?x=1');
    const cookie = String(login.headers['set-cookie']);
    expect(cookie).toMatch(/^loom_dashboard=[0-9a-f]{64}; HttpOnly; SameSite=Strict; Path=\/$/);
    expect(cookie).not.toContain(TOKEN);
    const session = { cookie: cookie.split(';')[0]! };
    expect((await request(`${url}?token=wrong-token-wrong-token`)).status).toBe(401);

    const page = await request(url, { headers: session });
    expect(page.status).toBe(200);
    expect(page.headers['content-security-policy']).toMatch(/default-src 'none'/);
    expect(page.headers['referrer-policy']).toBe('no-referrer');
    const script = await request(`${url}assets/board.js`, { headers: session });
    expect(script.status).toBe(200);
    for (const body of [page.body, script.body, (await request(`${url}assets/board.css`, { headers: session })).body]) expect(body).not.toContain(TOKEN);
    const stream = await openEvents(`${url}api/v1/events`, session);
    expect(stream.status).toBe(200);
    stream.close();

    // POSTs: the dashboard's own origin only; a bearer client (no Origin) may act.
    const stop = `${url}api/v1/daemon/stop`;
    const own = url.replace(/\/$/, '');
    expect((await request(stop, { method: 'POST', headers: { ...session, origin: 'http://evil.example' } })).status).toBe(403);
    expect((await request(stop, { method: 'POST', headers: { ...session, origin: own, 'sec-fetch-site': 'cross-site' } })).status).toBe(403);
    expect((await request(stop, { method: 'POST', headers: session })).status).toBe(403);
    expect((await request(stop, { method: 'POST', headers: { origin: own } })).status).toBe(401);
    expect(fs.existsSync(repo.paths.stopSignal)).toBe(false);
    const allowed = await request(stop, { method: 'POST', headers: { ...session, origin: own } });
    expect(allowed.status).toBe(200);
    expect(fs.existsSync(repo.paths.stopSignal)).toBe(true);
    fs.rmSync(repo.paths.stopSignal);
    expect((await request(stop, { method: 'POST', headers: bearer })).status).toBe(200);

    // Nowhere Loom writes: the dashboard's output, its record, the event log, the state.
    dashboard.child.kill('SIGINT');
    expect(await dashboard.exited(10_000)).toBe(0);
    expect(dashboard.output()).not.toContain(TOKEN);
    for (const dir of [repo.paths.dir]) {
      for (const name of fs.readdirSync(dir, { recursive: true }) as string[]) {
        const file = `${dir}/${name}`;
        if (fs.statSync(file).isFile() && !name.endsWith('.db')) expect(fs.readFileSync(file, 'utf8'), name).not.toContain(TOKEN);
      }
    }
  });

  it('without a token it answers only requests to a loopback host, and refuses cross-origin POSTs', async () => {
    repo = makeRepo({});
    dashboard = await startDashboardProcess(repo.root);
    const url = dashboard.url;
    const port = new URL(url).port;
    expect((await request(url)).status).toBe(200);
    expect((await request(`${url}api/v1/state`, { headers: { host: `localhost:${port}` } })).status).toBe(200);
    // A page on another name that resolves to 127.0.0.1 (DNS rebinding) gets nothing.
    const rebound = await request(`${url}api/v1/state`, { headers: { host: `evil.example:${port}` } });
    expect(rebound.status).toBe(421);
    expect(rebound.body).not.toContain('daemon');
    const stop = `${url}api/v1/daemon/stop`;
    expect((await request(stop, { method: 'POST', headers: { origin: 'http://evil.example' } })).status).toBe(403);
    expect((await request(stop, { method: 'POST', headers: { origin: 'null' } })).status).toBe(403);
    expect((await request(stop, { method: 'POST', headers: { 'sec-fetch-site': 'cross-site' } })).status).toBe(403);
    expect(fs.existsSync(repo.paths.stopSignal)).toBe(false);
    expect((await request(stop, { method: 'POST', headers: { origin: url.replace(/\/$/, '') } })).status).toBe(200);
    expect(fs.existsSync(repo.paths.stopSignal)).toBe(true);
  });

  it('bound to every address with a token: prints an address to open here, and answers another address of this machine only with the token', async () => {
    // An address of this machine other than loopback (a test machine without a network fails here, never passes silently).
    const external = Object.values(os.networkInterfaces())
      .flat()
      .find((a) => a !== undefined && a.family === 'IPv4' && !a.internal)?.address;
    expect(external, 'this test needs a non-loopback IPv4 address on this machine').toBeDefined();
    repo = makeRepo({});
    dashboard = await startDashboardProcess(repo.root, ['--host', '0.0.0.0'], { LOOM_DASHBOARD_TOKEN: TOKEN });
    expect(dashboard.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    expect(dashboard.output()).toMatch(/listening on every address \(0\.0\.0\.0\).*token required/);
    const port = new URL(dashboard.url).port;
    const there = `http://${external!}:${port}/api/v1/state`;
    expect((await request(there)).status).toBe(401);
    expect((await request(there, { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(200);
    expect((await request(`${dashboard.url}api/v1/state`, { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(200);
    expect(JSON.parse(fs.readFileSync(repo.paths.dashboard, 'utf8'))).toMatchObject({ host: '0.0.0.0', url: dashboard.url, token_required: true });
  });
});
