// The dashboard's HTTP API, event stream and /metrics over real HTTP, served by the real
// `loom dashboard` process while a real daemon runs the script agents — on the local tracker and
// on the GitHub fake.
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { LoomEvent } from '../../src/core/events.js';
import { Label } from '../../src/core/labels.js';
import type { Board, Lane } from '../../src/status/board.js';
import type { IssueReport } from '../../src/status/issue-report.js';
import type { StatusReport } from '../../src/status/status-report.js';
import type { DashboardHandle, SseStream } from '../helpers/dashboard.js';
import { openEvents, startDashboardProcess } from '../helpers/dashboard.js';
import { githubRepo, removeGitHubRepos } from '../helpers/github-repo.js';
import type { GitHubRepo } from '../helpers/github-repo.js';
import type { DaemonHandle, TestRepo } from '../helpers/loom-repo.js';
import { LOOM_BIN, loom, loomAsync, makeRepo, processesIn, startDaemon, until } from '../helpers/loom-repo.js';
import { parsePrometheus } from '../helpers/prometheus.js';
import { EventLog } from '../../src/process/event-log.js';

let repo: TestRepo | undefined;
let dashboard: DashboardHandle | undefined;
let daemon: DaemonHandle | undefined;
let stream: SseStream | undefined;
afterEach(async () => {
  stream?.close();
  daemon?.child.kill('SIGKILL');
  dashboard?.child.kill('SIGTERM');
  if (dashboard) await dashboard.exited(10_000).catch(() => undefined);
  repo?.cleanup();
  await removeGitHubRepos();
  stream = daemon = dashboard = repo = undefined;
});

const fence = '```';
const writes = (file: string) => `${fence}loom-script builder\nwrite ${file} <<EOF\n${file}\nEOF\ncommit Add ${file}\n${fence}`;
const SCRIPT_CONFIG = { runtime: 'script', pollInterval: '1s', heartbeatInterval: '0.3s', roles: { architect: { enabled: false }, hermit: { enabled: false }, guide: { enabled: false }, curator: { enabled: false } } };

async function getJson<T>(url: string): Promise<{ status: number; body: T }> {
  const res = await fetch(url);
  return { status: res.status, body: (await res.json()) as T };
}

interface ActionBody {
  ok: boolean;
  message?: string;
  error?: string;
  command: string;
}

async function post(url: string, origin: string): Promise<{ status: number; body: ActionBody }> {
  const res = await fetch(url, { method: 'POST', headers: { origin } });
  return { status: res.status, body: (await res.json()) as ActionBody };
}

async function metrics(url: string) {
  const res = await fetch(`${url}metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return parsePrometheus(await res.text());
}

const lane = (board: Board, name: Lane): number[] => board.lanes[name].map((c) => c.number);
const states = (s: SseStream) => s.messages.filter((m) => m.event === 'state').map((m) => m.data as Board);
const events = (s: SseStream) => s.messages.filter((m) => m.event === 'event').map((m) => m.data as LoomEvent & { text: string });

describe('dashboard API on the local tracker', () => {
  it('serves status, issues, the live stream and metrics that move as issues merge; its actions are the CLI', async () => {
    repo = makeRepo(SCRIPT_CONFIG);
    const tracker = repo.tracker();
    const a = await tracker.createIssue({ title: 'Add a.txt', body: writes('a.txt'), labels: [Label.issue] });
    const b = await tracker.createIssue({ title: 'Add b.txt', body: writes('b.txt'), labels: [Label.issue] });
    dashboard = await startDashboardProcess(repo.root);
    const url = dashboard.url;
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    expect(JSON.parse(fs.readFileSync(repo.paths.dashboard, 'utf8'))).toMatchObject({ url, token_required: false });

    // GET /api/v1/state is what `loom status --json` prints.
    const state = await getJson<StatusReport>(`${url}api/v1/state`);
    const cli = JSON.parse(loom(repo.root, ['status', '--json']).stdout) as StatusReport;
    expect(state.status).toBe(200);
    expect(Object.keys(state.body).sort()).toEqual(Object.keys(cli).sort());
    expect(state.body.issues).toEqual(cli.issues);
    // The board carries the same report (times and the free disk space, which moves, aside).
    const steady = (r: StatusReport) => JSON.stringify(r, (k, v: unknown) => (k.endsWith('_ms') || k === 'free_bytes' ? undefined : v));
    expect(steady((await getJson<Board>(`${url}api/v1/board`)).body.status)).toBe(steady(cli));
    expect(state.body.daemon.status).toBe('never-started');

    const before = await metrics(url);
    expect(before.value('loom_merges_total')).toBe(0);
    expect(before.value('loom_daemon_up')).toBe(0);
    expect(before.value('loom_issues', { label: Label.issue })).toBe(2);

    stream = await openEvents(`${url}api/v1/events`);
    expect(stream.status).toBe(200);
    await until(() => states(stream!).length > 0, 10_000, 'the board on connect');
    expect(lane(states(stream)[0]!, 'ready')).toEqual([a.number, b.number]);

    daemon = startDaemon(repo.root, ['start', '--force']);
    await until(async () => (await tracker.getIssue(a.number))?.state === 'closed' && (await tracker.getIssue(b.number))?.state === 'closed', 60_000, `both merged; daemon:\n${daemon.output()}`);
    // The stream showed them being built and merged, without asking.
    await until(() => events(stream!).filter((e) => e.type === 'pr.merged').length === 2, 10_000, 'both merges on the stream');
    expect(states(stream).some((s) => lane(s, 'building').includes(a.number))).toBe(true);
    expect(states(stream).some((s) => s.status.daemon.status === 'running' && s.shepherds.some((sh) => sh.issue === a.number && sh.runtime === 'script'))).toBe(true);
    const spawned = events(stream).find((e) => e.type === 'shepherd.spawned' && e.issue === a.number)!;
    expect(spawned.text).toBe(`#${a.number} shepherd spawned (task ${spawned.task_id})`);
    // The daemon records each finished shepherd on its next iteration.
    await until(() => events(stream!).filter((e) => e.type === 'shepherd.completed').length === 2, 20_000, 'both shepherds recorded');

    const after = await metrics(url);
    expect(after.value('loom_merges_total')).toBe(2);
    expect(after.value('loom_daemon_up')).toBe(1);
    expect(after.value('loom_shepherds_finished_total', { outcome: 'completed' })).toBe(2);
    expect(after.value('loom_agent_runs_total', { runtime: 'script', role: 'builder', outcome: 'success' })).toBe(2);
    expect(after.value('loom_agent_runs_total', { runtime: 'script', role: 'judge', outcome: 'success' })).toBe(2);
    expect(after.value('loom_agent_tokens_total', { runtime: 'script', role: 'builder', type: 'input' })).toBe(0);
    expect(after.value('loom_agent_cost_usd_total', { runtime: 'script', role: 'builder' })).toBe(0);
    expect(after.value('loom_verdicts_total', { verdict: 'approve' })).toBe(2);
    expect(after.value('loom_iterations_total', { outcome: 'ok' })).toBeGreaterThan(0);
    expect(after.value('loom_iteration_duration_seconds_count')).toBe(after.value('loom_iterations_total', { outcome: 'ok' }));
    expect(after.value('loom_shepherds_max')).toBe(3);
    expect(after.value('loom_issues', { label: Label.issue })).toBeUndefined();
    expect(after.types.get('loom_merges_total')).toBe('counter');
    expect(after.types.get('loom_iteration_duration_seconds')).toBe('histogram');

    // GET /api/v1/issues/N: the issue, its PR, every why gate, its timeline.
    const issue = await getJson<IssueReport>(`${url}api/v1/issues/${a.number}`);
    expect(issue.status).toBe(200);
    expect(issue.body.issue).toMatchObject({ number: a.number, title: 'Add a.txt', state: 'closed' });
    expect(issue.body.pull_requests).toEqual([expect.objectContaining({ state: 'merged' })]);
    expect(issue.body.why.gates.map((g) => g.gate)).toEqual(expect.arrayContaining(['exists', 'open', 'labelled loom:issue', 'daemon running']));
    const timeline = issue.body.timeline;
    for (const t of ['shepherd.spawned', 'task.phase', 'agent.run', 'verdict', 'pr.merged', 'task.finished']) expect(timeline.map((e) => e.type)).toContain(t);
    const run = timeline.find((e) => e.type === 'agent.run')!;
    expect(run.event).toMatchObject({ role: 'builder', runtime: 'script', outcome: 'success', cost_usd: 0 });
    expect(timeline.some((e) => e.source === 'tracker' && e.type === 'labeled' && e.text.includes(Label.building))).toBe(true);
    expect(issue.body.log_file).toMatch(/shepherd-issue-\d+-.*\.log$/);
    expect((await getJson(`${url}api/v1/issues/999`)).status).toBe(404);
    expect(await getJson(`${url}api/v1/issues/abc`)).toEqual({ status: 400, body: { error: '"abc" is not an issue number' } });
    expect((await getJson(`${url}nothing/here`)).status).toBe(404);

    // POST /api/v1/daemon/stop does what `loom stop` does.
    const origin = url.replace(/\/$/, '');
    const stop = await post(`${url}api/v1/daemon/stop`, origin);
    expect(stop.status).toBe(200);
    expect(stop.body.message).toMatch(/^Stop signal sent; the daemon \(pid \d+\)/);
    expect(await daemon.exited(60_000)).toBe(0);
    await until(() => states(stream!).at(-1)?.status.daemon.status === 'stopped', 10_000, 'the stopped daemon on the stream');

    // A change reaches the stream within a second.
    const created = Date.now();
    const c = await tracker.createIssue({ title: 'Wait here', body: `${fence}loom-script builder\nhang\n${fence}`, labels: [Label.issue] });
    const seen = await until(() => stream!.messages.find((m) => m.event === 'state' && m.at >= created && lane(m.data as Board, 'ready').includes(c.number)), 5_000, 'the new issue on the stream');
    expect(seen.at - created).toBeLessThan(1_000);

    // Spawn and abort from the API: the CLI's own commands, with its answers.
    const spawn = await post(`${url}api/v1/issues/${c.number}/spawn`, origin);
    expect(spawn.status).toBe(200);
    expect(spawn.body).toMatchObject({ ok: true, command: `loom spawn ${c.number}`, message: expect.stringMatching(new RegExp(`^Spawned shepherd for #${c.number}`)) });
    await until(() => events(stream!).some((e) => e.type === 'agent.started' && e.issue === c.number), 20_000, 'the hanging builder running');
    const again = await post(`${url}api/v1/issues/${c.number}/spawn`, origin);
    expect(again.status).toBe(409);
    expect(again.body.error).toMatch(/already owned by a shepherd/);
    const abort = await post(`${url}api/v1/issues/${c.number}/abort`, origin);
    expect(abort.status).toBe(200);
    expect(abort.body.command).toBe(`loom issue label ${c.number} ${Label.abort}`);
    await until(() => events(stream!).some((e) => e.type === 'task.finished' && e.issue === c.number && e.outcome === 'stopped'), 30_000, 'the shepherd stopped');
    await until(async () => (await tracker.getIssue(c.number))?.labels.join() === Label.issue, 10_000, 'the issue back to loom:issue');
    const closed = await post(`${url}api/v1/issues/${a.number}/spawn`, origin);
    expect([closed.status, closed.body.error]).toEqual([409, `issue #${a.number} is closed; reopen it before spawning a shepherd`]);

    dashboard.child.kill('SIGINT');
    expect(await dashboard.exited(10_000)).toBe(0);
    expect(fs.existsSync(repo.paths.dashboard)).toBe(false);
  });

  it("an issue's why is exactly what `loom why N --json` prints (dependencies, overlapping work, the blocking comment), ready cards say what they wait on, and abort is refused for a ready issue", async () => {
    repo = makeRepo({ ...SCRIPT_CONFIG, maxShepherds: 1 });
    const tracker = repo.tracker();
    const base = await tracker.createIssue({ title: 'base', labels: ['loom:operator'] });
    const cycleA = await tracker.createIssue({ title: 'cycle a', body: 'Depends on #3', labels: [Label.issue] });
    const cycleB = await tracker.createIssue({ title: 'cycle b', body: 'Depends on #2', labels: [Label.issue] });
    const waiting = await tracker.createIssue({ title: 'waits', body: `Depends on #${base.number}\n\nTouches src/app.ts`, labels: [Label.issue] });
    const blocked = await tracker.createIssue({ title: 'blocked', labels: [Label.blocked] });
    await tracker.comment(blocked.number, 'Loom: the builder gave up: the spec is contradictory; marking this issue `loom:blocked`.');
    dashboard = await startDashboardProcess(repo.root);
    for (const issue of [cycleA, cycleB, waiting, blocked]) {
      const api = await getJson<IssueReport>(`${dashboard.url}api/v1/issues/${issue.number}`);
      // Not spawnSync: a loop blocked past the server's keep-alive time would send the next fetch
      // on a connection the server has closed meanwhile ("other side closed").
      const cli = await loomAsync(repo.root, ['why', String(issue.number), '--json']);
      expect(api.status).toBe(200);
      // The CLI names itself by how it was run; the dashboard says `loom`. The free disk space is
      // the machine's, read a moment apart while other tests write: its figure is left out.
      const freeDisk = (text: string) => text.replace(/"detail":"[\d.]+ [KMGT]?B free/g, '"detail":"… free');
      expect(freeDisk(JSON.stringify(api.body.why))).toBe(freeDisk(JSON.stringify(JSON.parse(cli.stdout)).replaceAll(`${process.execPath} ${LOOM_BIN}`, 'loom').replaceAll(LOOM_BIN, 'loom')));
    }
    const gate = async (n: number) => (await getJson<IssueReport>(`${dashboard!.url}api/v1/issues/${n}`)).body.why.gates.find((g) => g.gate === 'dependencies done');
    expect(await gate(cycleA.number)).toMatchObject({ ok: false, detail: expect.stringMatching(/a cycle \(#2, #3\)/) });
    expect(await gate(waiting.number)).toMatchObject({ ok: false, detail: expect.stringMatching(/^waits on #1 \(open\)/) });
    expect((await getJson<IssueReport>(`${dashboard.url}api/v1/issues/${blocked.number}`)).body.why.verdict).toMatch(/the spec is contradictory/);
    // The board's ready lane says on each card what holds it back.
    const board = (await getJson<Board>(`${dashboard.url}api/v1/board`)).body;
    const waitingOf = (n: number) => board.lanes.ready.find((c) => c.number === n)?.waiting;
    expect(waitingOf(cycleA.number)).toBe('dependency cycle: #2, #3');
    expect(waitingOf(waiting.number)).toBe('waits on #1');

    // Abort on a ready issue: no shepherd to stop, so refused (by the CLI and so by the API) instead
    // of leaving a loom:abort that would end the issue's next build the moment it starts.
    const cli = await loomAsync(repo.root, ['issue', 'label', String(waiting.number), Label.abort]);
    expect(cli.code).toBe(2);
    expect(cli.stderr).toMatch(/^loom: issue #4 is ready \(loom:issue\) and no shepherd builds it: there is nothing to abort; .*\n$/);
    const api = await post(`${dashboard.url}api/v1/issues/${waiting.number}/abort`, dashboard.url.replace(/\/$/, ''));
    expect(api).toMatchObject({ status: 409, body: { ok: false, error: expect.stringMatching(/nothing to abort/) } });
    expect((await tracker.getIssue(waiting.number))!.labels).toEqual([Label.issue]);
  });

  it("answers an action's errors with HTTP status codes and one-line messages: no such issue 404, a refusal 409, a wrong method 405, a bad number 400", async () => {
    repo = makeRepo(SCRIPT_CONFIG);
    const tracker = repo.tracker();
    const closed = await tracker.createIssue({ title: 'done already', labels: [] });
    await tracker.close(closed.number);
    const blocked = await tracker.createIssue({ title: 'blocked', labels: [Label.blocked] });
    dashboard = await startDashboardProcess(repo.root);
    const url = dashboard.url;
    const origin = url.replace(/\/$/, '');
    const send = async (method: string, route: string, init: { body?: string; type?: string } = {}) => {
      const res = await fetch(`${url}${route}`, { method, headers: { origin, ...(init.type ? { 'content-type': init.type } : {}) }, ...(init.body !== undefined ? { body: init.body } : {}) });
      const body = (await res.json()) as ActionBody;
      // Every error is one line.
      if (!res.ok) expect(body.error).toMatch(/^[^\n]+$/);
      return { status: res.status, allow: res.headers.get('allow'), body };
    };

    // No such issue: 404, as for `GET /api/v1/issues/N`.
    expect(await send('POST', 'api/v1/issues/99/spawn')).toMatchObject({ status: 404, body: { ok: false, error: expect.stringMatching(/^issue #99 does not exist/), command: 'loom spawn 99' } });
    expect(await send('POST', 'api/v1/issues/99/abort')).toMatchObject({ status: 404, body: { ok: false, error: expect.stringMatching(/^issue #99 does not exist/) } });
    expect(await send('GET', 'api/v1/issues/99')).toMatchObject({ status: 404, body: { error: expect.stringMatching(/^issue #99 does not exist/) } });
    // A pull request's number is no issue either: the 404 says whose it is, as the CLI does.
    const pr = await tracker.createPullRequest({ title: 'the change', head: 'feature', base: 'main', closesIssue: blocked.number });
    expect(await send('GET', `api/v1/issues/${pr.number}`)).toMatchObject({ status: 404, body: { error: `#${pr.number} is a pull request, not an issue (issues and pull requests share one number sequence); it is for issue #${blocked.number}` } });
    expect(await send('POST', `api/v1/issues/${pr.number}/abort`)).toMatchObject({ status: 404, body: { error: expect.stringMatching(/is a pull request, not an issue/) } });
    // Abort where no shepherd builds: refused by the CLI, so by the API, and no label is left behind.
    for (const [issue, why] of [
      [closed.number, /^issue #1 is closed: there is nothing to abort$/],
      [blocked.number, /^issue #2 is blocked \(loom:blocked\) and no shepherd builds it: there is nothing to abort/],
    ] as const) {
      const cli = await loomAsync(repo.root, ['issue', 'label', String(issue), Label.abort]);
      expect([cli.code, cli.stderr.replace(/^loom: /, '').trim()]).toEqual([2, expect.stringMatching(why)]);
      expect(await send('POST', `api/v1/issues/${issue}/abort`)).toMatchObject({ status: 409, body: { ok: false, error: expect.stringMatching(why) } });
      expect((await tracker.getIssue(issue))!.labels).not.toContain(Label.abort);
    }
    // An action takes no body: a bad JSON one changes nothing (the closed issue is still refused).
    expect(await send('POST', `api/v1/issues/${closed.number}/spawn`, { body: '{not json', type: 'application/json' })).toMatchObject({ status: 409, body: { error: expect.stringMatching(/closed/) } });
    // The wrong method: 405 with the right one in `Allow`; an unknown route: 404; a bad number: 400.
    expect(await send('GET', `api/v1/issues/${blocked.number}/spawn`)).toMatchObject({ status: 405, allow: 'POST', body: { error: `GET /api/v1/issues/${blocked.number}/spawn is not supported: use POST` } });
    expect(await send('PUT', 'api/v1/daemon/stop', { body: 'x', type: 'text/plain' })).toMatchObject({ status: 405, allow: 'POST' });
    expect(await send('POST', 'api/v1/state')).toMatchObject({ status: 405, allow: 'GET, HEAD', body: { error: 'POST /api/v1/state is not supported: use GET' } });
    expect(await send('DELETE', `api/v1/issues/${blocked.number}`)).toMatchObject({ status: 405, allow: 'GET, HEAD' });
    expect(await send('POST', 'api/v1/nothing')).toMatchObject({ status: 404, body: { error: 'nothing at /api/v1/nothing' } });
    expect(await send('POST', 'api/v1/issues/abc/abort')).toMatchObject({ status: 400, body: { error: '"abc" is not an issue number' } });
    expect((await tracker.getIssue(blocked.number))!.labels).toEqual([Label.blocked]);
  });

  it('an event stream reconnecting with Last-Event-ID resumes after that event: nothing missed, nothing repeated', async () => {
    repo = makeRepo(SCRIPT_CONFIG);
    const log = new EventLog(repo.paths.events);
    const warn = (issue: number, message: string) => log.emit('warning', { issue, message });
    warn(1, 'one');
    warn(2, 'two');
    dashboard = await startDashboardProcess(repo.root);
    const url = dashboard.url;
    const messages = (s: SseStream) => events(s).map((e) => e.message);
    const ids = (s: SseStream) => s.messages.filter((m) => m.event === 'event').map((m) => m.id);
    const hello = (s: SseStream) => s.messages.find((m) => m.event === 'hello')?.data;

    const first = await openEvents(`${url}api/v1/events`);
    stream = first;
    await until(() => messages(first).length === 2, 10_000, 'the kept events');
    expect(hello(first)).toEqual({ resumed: false });
    warn(1, 'three');
    await until(() => messages(first).includes('three'), 10_000, 'a new event');
    const seen = ids(first);
    expect(new Set(seen).size).toBe(3);
    expect(seen.every((id) => id !== undefined)).toBe(true);
    first.close();

    // Written while no one listens, then a reconnect naming the last event seen.
    warn(2, 'four');
    warn(1, 'five');
    const again = await openEvents(`${url}api/v1/events`, { 'last-event-id': seen.at(-1)! });
    stream = again;
    await until(() => messages(again).includes('five'), 10_000, 'the missed events');
    expect(hello(again)).toEqual({ resumed: true });
    expect(messages(again)).toEqual(['four', 'five']);
    warn(2, 'six');
    await until(() => messages(again).includes('six'), 10_000, 'then the new ones');
    expect(messages(again)).toEqual(['four', 'five', 'six']);
    again.close();

    // One issue's stream resumes the same way, with that issue's events only.
    const issueFirst = await openEvents(`${url}api/v1/events?issue=1`);
    stream = issueFirst;
    await until(() => messages(issueFirst).length === 3, 10_000, "issue 1's events");
    expect(messages(issueFirst)).toEqual(['one', 'three', 'five']);
    issueFirst.close();
    const lastOfOne = ids(issueFirst).at(-1)!;
    warn(2, 'seven');
    warn(1, 'eight');
    const issueAgain = await openEvents(`${url}api/v1/events?issue=1`, { 'last-event-id': lastOfOne });
    stream = issueAgain;
    await until(() => messages(issueAgain).includes('eight'), 10_000, "issue 1's missed event");
    expect(messages(issueAgain)).toEqual(['eight']);
    issueAgain.close();

    // An id this dashboard did not send (one from before it restarted, or made up): the recent events, said to be a fresh start.
    const stranger = await openEvents(`${url}api/v1/events`, { 'last-event-id': '0123abcd-3' });
    stream = stranger;
    await until(() => messages(stranger).length === 8, 10_000, 'every kept event');
    expect(hello(stranger)).toEqual({ resumed: false });
  });

  it('shows a daemon killed outright as crashed within a second, though no file changes when it dies', async () => {
    repo = makeRepo(SCRIPT_CONFIG);
    dashboard = await startDashboardProcess(repo.root);
    const url = dashboard.url;
    stream = await openEvents(`${url}api/v1/events`);
    daemon = startDaemon(repo.root, ['start']);
    await until(() => states(stream!).at(-1)?.status.daemon.status === 'running', 30_000, 'the daemon running on the stream');
    expect((await metrics(url)).value('loom_daemon_up')).toBe(1);

    const killed = Date.now();
    daemon.child.kill('SIGKILL');
    const seen = await until(() => stream!.messages.find((m) => m.event === 'state' && m.at >= killed && (m.data as Board).status.daemon.status === 'crashed'), 10_000, 'the crash on the stream');
    expect(seen.at - killed).toBeLessThan(1_000);
    expect((await metrics(url)).value('loom_daemon_up')).toBe(0);
  });

  it('a dashboard left showing a crashed daemon is taken over by the next `loom start --dashboard` and stops with it; one started by hand is left running', async () => {
    repo = makeRepo(SCRIPT_CONFIG);
    daemon = startDaemon(repo.root, ['start', '--dashboard']);
    const url = await until(() => /Dashboard: (http:\/\/127\.0\.0\.1:\d+\/)/.exec(daemon!.output())?.[1], 30_000, 'the dashboard address');
    await until(async () => (await getJson<StatusReport>(`${url}api/v1/state`)).body.daemon.status === 'running', 20_000, 'the daemon running');
    const { pid } = JSON.parse(fs.readFileSync(repo.paths.dashboard, 'utf8')) as { pid: number };
    daemon.child.kill('SIGKILL');
    expect(await daemon.exited(10_000)).toBe(null);
    await until(async () => (await getJson<StatusReport>(`${url}api/v1/state`)).body.daemon.status === 'crashed', 10_000, 'the crash shown');

    // The next daemon reuses it, and a clean stop ends it.
    daemon = startDaemon(repo.root, ['start', '--dashboard']);
    await until(() => daemon!.output().includes(`Dashboard: ${url} (already running, pid ${pid})`), 30_000, () => `the dashboard reused; output:\n${daemon!.output()}`);
    await until(async () => (await getJson<StatusReport>(`${url}api/v1/state`)).body.daemon.status === 'running', 20_000, 'the new daemon running');
    loom(repo.root, ['stop']);
    expect(await daemon.exited(60_000)).toBe(0);
    await until(() => !fs.existsSync(repo!.paths.dashboard), 10_000, 'the taken-over dashboard stopped with the daemon');
    await expect(fetch(`${url}api/v1/state`)).rejects.toThrow();

    // A dashboard a person started is theirs: a daemon that reuses it leaves it running.
    dashboard = await startDashboardProcess(repo.root);
    daemon = startDaemon(repo.root, ['start', '--dashboard']);
    await until(() => daemon!.output().includes(`Dashboard: ${dashboard!.url} (already running`), 30_000, 'the hand-started dashboard reused');
    loom(repo.root, ['stop']);
    expect(await daemon.exited(60_000)).toBe(0);
    expect((await getJson<StatusReport>(`${dashboard.url}api/v1/state`)).body.daemon.status).toBe('stopped');
  });

  it('loom start --dashboard (and --detach) serves it beside the daemon and stops it with the daemon; bad ports are refused', async () => {
    repo = makeRepo(SCRIPT_CONFIG);
    daemon = startDaemon(repo.root, ['start', '--dashboard']);
    const url = await until(() => /Dashboard: (http:\/\/127\.0\.0\.1:\d+\/)/.exec(daemon!.output())?.[1], 30_000, 'the dashboard address');
    await until(async () => (await getJson<StatusReport>(`${url}api/v1/state`)).body.daemon.status === 'running', 20_000, 'the daemon running, as the dashboard sees it');
    const record = JSON.parse(fs.readFileSync(repo.paths.dashboard, 'utf8'));
    expect(record.url).toBe(url);
    // A second dashboard for the same repository is refused, naming the first.
    const second = loom(repo.root, ['dashboard']);
    expect([second.code, second.stderr]).toEqual([2, `loom: a dashboard already runs for this repository at ${url} (pid ${record.pid}); open that one, or stop it first\n`]);
    loom(repo.root, ['stop']);
    expect(await daemon.exited(60_000)).toBe(0);
    await until(() => !fs.existsSync(repo!.paths.dashboard), 10_000, 'the dashboard stopped with the daemon');
    await expect(fetch(`${url}api/v1/state`)).rejects.toThrow();
    expect(processesIn(repo.root)).toEqual([]);

    // In the background too: `loom start --detach --dashboard` prints the address and returns.
    const detached = loom(repo.root, ['start', '--detach', '--dashboard']);
    expect(detached.code, detached.stderr).toBe(0);
    const backgroundUrl = /^Dashboard: (http:\/\/127\.0\.0\.1:\d+\/)$/m.exec(detached.stdout)?.[1];
    expect(backgroundUrl, detached.stdout).toBeDefined();
    expect((await getJson<StatusReport>(`${backgroundUrl}api/v1/state`)).body.daemon.status).toBe('running');
    loom(repo.root, ['stop']);
    await until(() => !fs.existsSync(repo!.paths.lock) && !fs.existsSync(repo!.paths.dashboard), 60_000, 'the background daemon and its dashboard stopped');
    await until(() => processesIn(repo!.root).length === 0, 10_000, 'nothing left running');

    for (const args of [['start', '--dashboard', 'eighty'], ['dashboard', '--port', '70000']]) {
      const r = loom(repo.root, args);
      expect([r.code, r.stderr.trim().split('\n').length], args.join(' ')).toEqual([2, 1]);
      expect(r.stderr).toMatch(/is not a port/);
    }
    // A port in use: one line saying what to do, and no daemon started.
    const busy = http.createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    try {
      const port = (busy.address() as AddressInfo).port;
      for (const args of [['start', `--dashboard=${port}`], ['dashboard', '--port', String(port)]]) {
        const r = await loomAsync(repo.root, args);
        expect([r.code, r.stderr], args.join(' ')).toEqual([2, `loom: ${args[0] === 'start' ? 'the dashboard did not start: ' : ''}cannot serve the dashboard on 127.0.0.1:${port}: the port is in use; choose another (\`--port P\`, or \`--dashboard=P\` with loom start; 0 picks a free one)\n`]);
      }
      expect(fs.existsSync(repo.paths.lock)).toBe(false);
    } finally {
      await new Promise((resolve) => busy.close(resolve));
    }
  });
});

/** A working copy whose tracker is the GitHub fake (repository acme/widgets, token tok-owner). */
const dashboardGitHubRepo = (): Promise<GitHubRepo> => githubRepo({ labels: false, config: SCRIPT_CONFIG });

describe('dashboard API on the GitHub fake', () => {
  it('shows the board, the issue timeline and the tracker requests and rate limit of a run against GitHub', async () => {
    const { root, env, owner } = await dashboardGitHubRepo();
    const one = await owner.createIssue({ title: 'Add one.txt', body: writes('one.txt'), labels: [Label.issue] });
    await owner.createIssue({ title: 'An idea', labels: [Label.architect] });

    dashboard = await startDashboardProcess(root, [], env);
    const url = dashboard.url;
    const board = (await getJson<Board>(`${url}api/v1/board`)).body;
    expect(lane(board, 'ready')).toEqual([one.number]);
    expect(board.lanes.proposals.map((c) => c.title)).toEqual(['An idea']);

    daemon = startDaemon(root, ['start', '--force'], env);
    await until(async () => (await owner.getIssue(one.number))?.state === 'closed', 60_000, `merged; daemon:\n${daemon.output()}`);
    await loomAsync(root, ['stop'], env);
    expect(await daemon.exited(60_000)).toBe(0);

    const m = await until(async () => {
      const now = await metrics(url);
      return now.value('loom_merges_total') === 1 ? now : null;
    }, 10_000, 'the merge counted');
    expect(m.value('loom_tracker_requests_total')).toBeGreaterThan(0);
    expect(m.value('loom_tracker_rate_limit', { tracker: 'github' })).toBe(5000);
    expect(m.value('loom_tracker_rate_limit_remaining', { tracker: 'github' })).toBeGreaterThan(0);
    expect(m.value('loom_tracker_rate_limit_remaining', { tracker: 'github' })).toBeLessThan(5000);
    const state = await getJson<StatusReport>(`${url}api/v1/state`);
    expect(state.body.daemon.status).toBe('stopped');
    const issue = await getJson<IssueReport>(`${url}api/v1/issues/${one.number}`);
    expect(issue.body.issue.state).toBe('closed');
    expect(issue.body.timeline.map((t) => t.type)).toEqual(expect.arrayContaining(['shepherd.spawned', 'agent.run', 'verdict', 'pr.merged']));
    expect(issue.body.timeline.some((t) => t.source === 'tracker' && /labeled loom:issue by acme/.test(t.text))).toBe(true);
  });

  it("shows Loom's own label changes on GitHub within a second (the snapshot is read again when the event log grows)", async () => {
    const { root, env, owner } = await dashboardGitHubRepo();
    const hang = await owner.createIssue({ title: 'Hang', body: `${fence}loom-script builder\nhang\n${fence}`, labels: [Label.issue] });
    dashboard = await startDashboardProcess(root, [], env);
    const url = dashboard.url;
    stream = await openEvents(`${url}api/v1/events`);
    await until(() => states(stream!).some((b) => lane(b, 'ready').includes(hang.number)), 20_000, 'the issue ready on the stream');

    const origin = url.replace(/\/$/, '');
    expect((await post(`${url}api/v1/issues/${hang.number}/spawn`, origin)).status).toBe(200);
    const started = await until(() => stream!.messages.find((m) => m.event === 'event' && (m.data as LoomEvent).type === 'task.started' && (m.data as LoomEvent).issue === hang.number), 20_000, 'the shepherd started');
    const building = await until(() => stream!.messages.find((m) => m.event === 'state' && lane(m.data as Board, 'building').includes(hang.number)), 10_000, 'the issue in Building');
    expect(building.at - started.at).toBeLessThan(1_000);

    expect((await post(`${url}api/v1/issues/${hang.number}/abort`, origin)).status).toBe(200);
    await until(() => events(stream!).some((e) => e.type === 'task.finished' && e.issue === hang.number), 30_000, 'the shepherd stopped');
    await until(() => stream!.messages.some((m) => m.event === 'state' && lane(m.data as Board, 'ready').includes(hang.number) && m.at > building.at), 10_000, 'the issue back in Ready');
  });
});
