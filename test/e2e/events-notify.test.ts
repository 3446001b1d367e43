// The event log and notifications during real daemon runs on the script agents: every daemon,
// shepherd and role step is one JSON line; `loom events` and `loom logs` read it; a blocked issue
// and a crashed daemon reach the notify command and the webhook; a failing webhook is a warning
// that never shows its URL.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { LoomEvent } from '../../src/core/events.js';
import { Label } from '../../src/core/labels.js';
import { FakeAnthropicServer } from '../fakes/anthropic-server.js';
import type { TestRepo } from '../helpers/loom-repo.js';
import { LOOM_BIN, loom, loomAsync, makeRepo, startDaemon, until } from '../helpers/loom-repo.js';

let repo: TestRepo | undefined;
let server: http.Server | undefined;
let anthropic: FakeAnthropicServer | undefined;
afterEach(async () => {
  repo?.cleanup();
  await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
  await anthropic?.close();
  server = anthropic = repo = undefined;
});

const fence = '```';
const readEvents = (file: string): LoomEvent[] =>
  fs.existsSync(file)
    ? fs
        .readFileSync(file, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as LoomEvent)
    : [];

interface Hook {
  url: string;
  received: { text: string; event: LoomEvent }[];
  failTypes: Set<string>;
}

async function webhook(): Promise<Hook> {
  const hook: Hook = { url: '', received: [], failTypes: new Set() };
  const srv = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const parsed = JSON.parse(body) as { text: string; event: LoomEvent };
      hook.received.push(parsed);
      res.writeHead(hook.failTypes.has(parsed.event.type) ? 500 : 204);
      res.end();
    });
  });
  server = srv;
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  hook.url = `http://127.0.0.1:${(srv.address() as AddressInfo).port}/hook/s3cr3t-path`;
  return hook;
}

describe('event log and notifications', () => {
  it('records a run step by step, notifies a blocked issue and a crashed daemon, and never leaks the webhook URL', async () => {
    const hook = await webhook();
    const notified = path.join(fs.mkdtempSync('/tmp/loom-notify-'), 'notified.jsonl');
    repo = makeRepo({
      runtime: 'script',
      pollInterval: '1s',
      heartbeatInterval: '0.5s',
      roles: { architect: { enabled: false }, hermit: { enabled: false }, guide: { enabled: false }, curator: { enabled: false } },
      notify: { command: `cat >> '${notified}'`, webhook: hook.url },
    });
    const tracker = repo.tracker();
    const good = await tracker.createIssue({ title: 'Add one.txt', body: `${fence}loom-script builder\nwrite one.txt <<EOF\none\nEOF\ncommit Add one.txt\n${fence}`, labels: [Label.issue] });
    const bad = await tracker.createIssue({ title: 'Rewrite everything', body: `${fence}loom-script builder\nfail far too big for one change\n${fence}`, labels: [Label.issue] });

    const daemon = startDaemon(repo.root, ['start', '--force']);
    await until(async () => (await tracker.getIssue(good.number))?.state === 'closed' && (await tracker.getIssue(bad.number))?.labels.includes(Label.blocked), 60_000, `both issues done; output:\n${daemon.output()}`);
    await until(() => readEvents(notified).some((e) => e.type === 'issue.blocked'), 20_000, 'the blocked issue notified');
    expect(loom(repo.root, ['stop']).code).toBe(0);
    expect(await daemon.exited(60_000)).toBe(0);

    const events = readEvents(repo.paths.events);
    const state = JSON.parse(fs.readFileSync(repo.paths.state, 'utf8'));
    const of = (issue: number) => events.filter((e) => e.issue === issue);
    const types = (issue: number) => of(issue).map((e) => e.type);
    expect(events[0]).toMatchObject({ type: 'daemon.started', after: 'none', force: true });
    expect(events.at(-1)).toMatchObject({ type: 'daemon.stopped' });
    for (const e of events) expect(Date.parse(e.at)).not.toBeNaN();

    // The merged issue: claimed, built, judged, merged, recorded — in that order.
    const goodTypes = types(good.number);
    const order: LoomEvent['type'][] = ['shepherd.spawned', 'task.started', 'agent.run', 'verdict', 'pr.merged', 'task.finished', 'shepherd.completed'];
    expect(order.map((t) => goodTypes.indexOf(t))).toEqual([...order.map((t) => goodTypes.indexOf(t))].sort((a, b) => a - b));
    for (const t of order) expect(goodTypes).toContain(t);
    const phases = of(good.number).filter((e) => e.type === 'task.phase').map((e) => e.phase);
    expect(phases).toEqual(expect.arrayContaining(['worktree', 'builder', 'pr', 'judge', 'merge']));
    const started = of(good.number).find((e) => e.type === 'task.started')!;
    expect(started).toMatchObject({ kind: 'shepherd', session: state.daemon_session_id });
    expect(fs.existsSync(started.output_file!)).toBe(true);
    const runs = of(good.number).filter((e) => e.type === 'agent.run');
    expect(runs.map((r) => r.role)).toEqual(['builder', 'judge']);
    for (const r of runs) {
      expect(r).toMatchObject({ runtime: 'script', outcome: 'success', task_id: started.task_id, session: state.daemon_session_id, input_tokens: 0, cost_usd: 0 });
      expect(r.duration_ms).toBeGreaterThan(0);
    }
    expect(of(good.number).find((e) => e.type === 'verdict')).toMatchObject({ verdict: 'approve', attempt: 1 });
    const merged = of(good.number).find((e) => e.type === 'pr.merged')!;
    expect(merged.commit).toMatch(/^[0-9a-f]{40}$/);
    expect(of(good.number).find((e) => e.type === 'task.finished')).toMatchObject({ outcome: 'completed', merged: true, pr: merged.pr });

    // The blocked one: the agent's failure, the shepherd's end, the daemon's record.
    expect(of(bad.number).find((e) => e.type === 'agent.run')).toMatchObject({ role: 'builder', outcome: 'failed' });
    expect(of(bad.number).find((e) => e.type === 'task.finished')).toMatchObject({ outcome: 'blocked' });
    expect(of(bad.number).find((e) => e.type === 'issue.blocked')?.message).toMatch(/builder/);

    // The notify command got the blocked issue as JSON on stdin, and the webhook `{ text, event }`.
    const blocked = readEvents(notified).filter((e) => e.type === 'issue.blocked');
    expect(blocked).toHaveLength(1);
    expect(blocked[0]).toMatchObject({ issue: bad.number });
    expect(hook.received.find((r) => r.event.type === 'issue.blocked')?.text).toMatch(new RegExp(`#${bad.number} blocked`));
    expect(readEvents(notified).every((e) => ['issue.blocked', 'daemon.crashed', 'budget.reached', 'runtime.limited'].includes(e.type))).toBe(true);

    // `loom events`: lines, one issue, JSON, bad input.
    const list = loom(repo.root, ['events', '--issue', String(good.number), '-n', '0']);
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).toMatch(new RegExp(`#${good.number} merged PR #${merged.pr}`));
    expect(list.stdout).toMatch(/builder on script: success in \d/);
    expect(list.stdout.split('\n').filter(Boolean).every((l) => l.includes(`#${good.number}`))).toBe(true);
    const json = loom(repo.root, ['events', '--json', '-n', '5']);
    expect(json.stdout.trim().split('\n').map((l) => JSON.parse(l).type)).toHaveLength(5);
    expect(loom(repo.root, ['events', '-n', 'lots']).stderr).toMatch(/^loom: -n takes a number/);
    expect(loom(repo.root, ['events', '-n', 'lots']).code).toBe(2);
    const badIssue = loom(repo.root, ['events', '--issue', 'abc']);
    expect([badIssue.code, badIssue.stderr.trim().split('\n')]).toEqual([2, [expect.stringMatching(/^loom: "abc" is not an issue number/)]]);
    // `loom logs` finds the run through the event log.
    expect(loom(repo.root, ['logs', String(good.number)]).stdout).toMatch(/merged PR #/);

    // A daemon killed with SIGKILL: the next start notifies the crash (the webhook fails this time).
    hook.failTypes.add('daemon.crashed');
    const second = startDaemon(repo.root, ['start', '--force']);
    await until(() => /Iteration 1:/.test(second.output()), 20_000, 'the second daemon iterating');
    second.child.kill('SIGKILL');
    await second.exited(10_000);
    const third = startDaemon(repo.root, ['start', '--force']);
    await until(() => readEvents(notified).some((e) => e.type === 'daemon.crashed'), 20_000, `the crash notified; output:\n${third.output()}`);
    await until(() => JSON.parse(loom(repo!.root, ['status', '--json']).stdout).warnings.some((w: { message: string }) => /notification of daemon.crashed failed: notify.webhook answered 500/.test(w.message)), 20_000, 'the failed webhook as a warning');
    loom(repo.root, ['stop']);
    expect(await third.exited(60_000)).toBe(0);
    expect(readEvents(repo.paths.events).filter((e) => e.type === 'daemon.started').map((e) => e.after)).toEqual(['none', 'stop', 'crash']);
    expect(readEvents(notified).filter((e) => e.type === 'daemon.crashed')).toHaveLength(1);

    // The webhook's URL (which may carry a secret) is nowhere Loom writes.
    for (const file of [repo.paths.events, repo.paths.state]) expect(fs.readFileSync(file, 'utf8')).not.toContain('s3cr3t');
    expect(daemon.output() + second.output() + third.output()).not.toContain('s3cr3t');
  });

  it('notifies a runtime limit once per reset and a budget once per issue and day', async () => {
    anthropic = await FakeAnthropicServer.start([]);
    anthropic.failWith('rate-limit');
    const notified = path.join(fs.mkdtempSync('/tmp/loom-notify-'), 'notified.jsonl');
    repo = makeRepo({
      cliRetries: 0,
      budget: { perIssueUsd: 1 },
      notify: { command: `cat >> '${notified}'`, on: ['budget', 'limited'] },
      roles: { builder: { runtime: 'claude', fallback: 'script' }, judge: { runtime: 'script' }, doctor: { runtime: 'script' } },
    });
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'loom-claude-home-'));
    const env = { PATH: `${path.resolve('node_modules/.bin')}:${process.env.PATH ?? ''}`, HOME: home, ANTHROPIC_BASE_URL: anthropic.url, ANTHROPIC_API_KEY: 'test-key' };
    // The notifier starts where the log ends when it first runs.
    expect(loom(repo.root, ['iterate'], env).code).toBe(0);
    const tracker = repo.tracker();
    const limited = await tracker.createIssue({ title: 'limited', labels: [Label.issue], body: `${fence}loom-script builder\nwrite done.txt <<EOF\ndone\nEOF\n${fence}` });
    const shepherd = await loomAsync(repo.root, ['shepherd', String(limited.number), '--force-merge'], env);
    expect(shepherd.stdout, shepherd.stderr).toMatch(/runtime claude is limited until .*; failing over/);
    const expensive = await tracker.createIssue({ title: 'expensive', labels: [Label.issue] });
    fs.appendFileSync(repo.paths.usage, `${JSON.stringify({ at: new Date().toISOString(), issue: expensive.number, role: 'builder', runtime: 'claude', model: null, session_id: 's', outcome: 'success', input_tokens: 10, output_tokens: 10, cached_input_tokens: 0, cost_usd: 5, priced: false })}\n`);
    // Over its budget twice: blocked, approved again by a person, blocked again.
    expect(loom(repo.root, ['shepherd', String(expensive.number)], env).code).toBe(5);
    loom(repo.root, ['issue', 'label', String(expensive.number), Label.issue]);
    expect(loom(repo.root, ['shepherd', String(expensive.number)], env).code).toBe(5);
    expect(loom(repo.root, ['iterate'], env).code).toBe(0);
    expect(loom(repo.root, ['iterate'], env).code).toBe(0);

    const sent = readEvents(notified);
    expect(sent.map((e) => e.type).sort()).toEqual(['budget.reached', 'runtime.limited']);
    expect(sent.find((e) => e.type === 'runtime.limited')).toMatchObject({ runtime: 'claude', role: 'builder', issue: limited.number });
    expect(Date.parse(sent.find((e) => e.type === 'runtime.limited')!.until!)).toBeGreaterThan(Date.now());
    expect(sent.find((e) => e.type === 'budget.reached')).toMatchObject({ issue: expensive.number, message: expect.stringMatching(/this issue has used \$5\.00 of its \$1 budget/) });
    // The log has both budget refusals; only the first notified.
    expect(readEvents(repo.paths.events).filter((e) => e.type === 'budget.reached')).toHaveLength(2);
    fs.rmSync(home, { recursive: true, force: true });
  });

  it('a notify command that hangs costs an iteration one delivery timeout, not one per event', async () => {
    repo = makeRepo({ spawnFailureLimit: 1, maxShepherds: 4, notify: { command: 'sleep 60' }, roles: { builder: { command: 'echo "cannot do it"; exit 1' } } });
    expect(loom(repo.root, ['iterate']).code).toBe(0);
    const tracker = repo.tracker();
    for (let i = 1; i <= 4; i++) await tracker.createIssue({ title: `fails ${i}`, labels: [Label.issue] });
    expect(loom(repo.root, ['iterate']).stdout).toMatch(/(\+shepherd=#\d+ ?){4}/);
    await until(async () => (await Promise.all([1, 2, 3, 4].map(async (n) => (await tracker.getIssue(n))!.labels.includes(Label.blocked)))).every(Boolean), 30_000, 'all four blocked');
    // The next iteration records the four blocks and notifies each: side by side, ~10 s in all.
    const began = Date.now();
    const run = loom(repo.root, ['iterate'], {}, 120_000);
    const took = Date.now() - began;
    expect(run.code, run.stderr).toBe(0);
    expect(took).toBeLessThan(25_000);
    const warnings = JSON.parse(loom(repo.root, ['status', '--json']).stdout).warnings.map((w: { message: string }) => w.message);
    expect(warnings.filter((m: string) => /notification of issue\.blocked failed: notify\.command stalled after 10s/.test(m))).toHaveLength(4);
  }, 60_000);

  it('loom events -f follows the log until Ctrl+C, as lines or JSON', async () => {
    repo = makeRepo({ runtime: 'script', roles: { champion: { enabled: false } } });
    expect(loom(repo.root, ['iterate']).code).toBe(0);
    const follow = (args: string[]) => {
      const child = spawn(process.execPath, [LOOM_BIN, 'events', '-f', ...args], { cwd: repo!.root, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (c: Buffer) => (out += c.toString()));
      return { child, out: () => out, exit: new Promise<number | null>((resolve) => child.on('close', resolve)) };
    };
    const lines = follow(['--idle']);
    const json = follow(['--json', '-n', '0']);
    // What was there: the first iteration (idle, so only with --idle, or as JSON).
    await until(() => /iteration 1 /.test(lines.out()) && json.out().includes('"iteration":1'), 20_000, 'the past events');
    await repo.tracker().createIssue({ title: 'new work', labels: [Label.issue] });
    expect(loom(repo.root, ['iterate']).code).toBe(0);
    await until(() => /#1 shepherd spawned \(task [0-9a-f]+\)/.test(lines.out()), 20_000, `the new events as lines:\n${lines.out()}`);
    await until(() => json.out().split('\n').some((l) => l.includes('"type":"task.finished"')), 20_000, 'the shepherd\'s end as JSON');
    lines.child.kill('SIGINT');
    json.child.kill('SIGINT');
    expect([await lines.exit, await json.exit]).toEqual([0, 0]);
    for (const line of json.out().trim().split('\n')) expect(Object.keys(JSON.parse(line)).slice(0, 2)).toEqual(['at', 'type']);
  });
});
