/**
 * One chaos run: a real daemon (`loom start --force`) over the scenario's issues, with random
 * SIGKILLs of the daemon, iterations, shepherds (or the shepherd host), agents and support roles, the crash windows
 * injected at their issues, a human acting on issues mid-run and (GitHub mode) tracker faults;
 * then a settling period without chaos, `loom stop`, and the invariants over what is left.
 *
 * Every process the run started is killed at the end, whatever happened (`finally`).
 */
import fs from 'node:fs';
import path from 'node:path';
import { Label } from '../../src/core/labels.js';
import type { RoutedRequest } from '../fakes/github-server.js';
import { ChaosWorld, LOOM_LOGIN, switchPoints } from './chaos-world.js';
import type { Evidence, HumanRecord, JournalEntry, Violation } from './invariants.js';
import { checkInvariants } from './invariants.js';
import { keyOf, killAll, kindOf, pidOfConnection, runProcesses, sigkill } from './processes.js';
import type { CrashPoint, Fault, HumanAction, Kill, Scenario } from './scenario.js';
import { Random } from './random.js';

export interface ChaosOptions {
  /** Longest wait for the issues to settle after the chaos, ms. */
  settleMs: number;
  /** Keep the run's directory: always, only when an invariant failed, or never. */
  keep: 'always' | 'on-failure' | 'never';
  log: (line: string) => void;
}

export interface ChaosReport {
  seed: number;
  mode: Scenario['mode'];
  shepherds: Scenario['shepherds'];
  issues: number;
  durationMs: number;
  /** Whether every issue left `loom:issue`/`loom:building` before the stop. */
  drained: boolean;
  kills: string[];
  humans: string[];
  faults: string[];
  /** Crash windows reached (fired) and not reached. */
  fired: string[];
  unfired: string[];
  outcomes: Record<string, number>;
  violations: Violation[];
  /** The run's directory when kept. */
  dir: string | null;
}

/** Crash points the agent script fires itself. */
const AGENT_POINTS: CrashPoint[] = ['builder-committed', 'judging', 'judge-killed', 'doctor-committed'];

const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, Math.max(0, ms)));
/** A deadline for a race: its timer does not keep the process alive once the race is decided. */
const timeoutAfter = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());

/** Waits until `condition` is truthy or the deadline passes; returns the last value. */
async function waitFor<T>(condition: () => Promise<T> | T, timeoutMs: number, everyMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await condition();
    if (value || Date.now() > deadline) return value;
    await delay(everyMs);
  }
}

/** Runs in progress, so a signal to the runner can still end everything they started. */
const active = new Set<ChaosWorld>();

/** Kills every process of the runs in progress (for a runner interrupted by a signal). */
export async function killActiveRuns(): Promise<void> {
  await Promise.all([...active].map((world) => killAll(world.root, world.marker)));
}

export async function runChaos(scenario: Scenario, options: ChaosOptions): Promise<ChaosReport> {
  const started = Date.now();
  const log = (line: string) => options.log(`[${scenario.mode}${scenario.shepherds === 'host' ? ' host' : ''} seed ${scenario.seed} +${((Date.now() - started) / 1000).toFixed(1)}s] ${line}`);
  const world = await ChaosWorld.create(scenario);
  active.add(world);
  const report: ChaosReport = {
    seed: scenario.seed,
    mode: scenario.mode,
    shepherds: scenario.shepherds,
    issues: scenario.issues.length,
    durationMs: 0,
    drained: false,
    kills: [],
    humans: [],
    faults: [],
    fired: [],
    unfired: [],
    outcomes: {},
    violations: [],
    dir: null,
  };
  const humans: HumanRecord[] = [];
  const pending: Promise<unknown>[] = [];
  const daemonKilled = new Set<number>();
  const faults: HostFaults = { ambiguous: 0, slow: [], drop: [], malformed: 0 };
  let failed = true;
  try {
    installHostHooks(world, faults, log);
    const t0 = Date.now();
    world.startDaemon();
    log(`daemon started over ${scenario.issues.length} issues; run dir ${world.base}`);

    type Event = { at: number; run: () => Promise<void> };
    const events: Event[] = [
      ...scenario.kills.map((k): Event => ({ at: k.at, run: () => kill(k) })),
      ...scenario.humans.map((h): Event => ({ at: h.at, run: () => act(h) })),
      ...scenario.faults.map((f): Event => ({ at: f.at, run: () => fault(f) })),
    ].sort((a, b) => a.at - b.at);
    for (const event of events) {
      await delay(t0 + event.at - Date.now());
      await event.run();
    }
    await Promise.all(pending);

    // Settle: no more chaos; a daemon runs until every issue has left loom:issue / loom:building
    // and its cleanup had the chance to remove what finished issues left (it waits while a
    // support role works in the worktrees, and they run every 2 s here) — or the time is up.
    if (!(world.current()?.alive() ?? false)) world.startDaemon();
    log('chaos over; settling');
    const list = (dir: string) => (fs.existsSync(dir) ? fs.readdirSync(dir) : []);
    let clean = false;
    await waitFor(async () => {
      const issues = await world.tracker.listIssues({ state: 'all' });
      report.drained = issues.every((i) => i.state === 'closed' || (!i.labels.includes(Label.issue) && !i.labels.includes(Label.building)));
      const resumable = new Set(issues.filter((i) => i.state === 'open' && i.labels.includes(Label.issue)).map((i) => i.number));
      const own = (name: string) => resumable.has(Number(/issue-(\d+)/.exec(name)?.[1]));
      clean = list(world.paths.worktrees).every(own) && list(world.paths.checkpoints).every(own);
      return report.drained && clean;
    }, options.settleMs, 500);
    log(report.drained ? `settled${clean ? '' : '; leftovers still there'}` : `not settled after ${options.settleMs / 1000}s; stopping anyway`);

    const daemon = world.current();
    const daemonProblems: string[] = [];
    if (daemon !== undefined && daemon.alive()) {
      // As a person would: stop a daemon that is running (holds the lock), not one still booting —
      // a daemon takes a stop signal it finds at start-up for a stale one and removes it.
      const holds = () => {
        try {
          return (JSON.parse(fs.readFileSync(world.paths.lock, 'utf8')) as { pid?: number }).pid === daemon.pid;
        } catch {
          return false;
        }
      };
      if (!(await waitFor(() => holds() || !daemon.alive(), 30_000, 100))) daemonProblems.push(`the daemon (pid ${daemon.pid}) did not take the lock within 30 s of its start`);
      const stop = await world.loom(['stop']);
      if (stop.code !== 0) daemonProblems.push(`loom stop exited ${stop.code}: ${stop.stderr.trim()}`);
      const code = await Promise.race([daemon.exited, timeoutAfter(60_000).then(() => 'timeout' as const)]);
      if (code === 'timeout') daemonProblems.push('the daemon did not stop within 60 s of `loom stop`');
      else if (code !== 0) daemonProblems.push(`the daemon exited with ${code} after \`loom stop\``);
    }
    for (const d of world.daemons) {
      if (d === daemon || daemonKilled.has(d.pid)) continue;
      const code = await Promise.race([d.exited, timeoutAfter(1).then(() => 'running' as const)]);
      daemonProblems.push(`daemon pid ${d.pid} ${code === 'running' ? 'was still running beside a newer one' : `ended by itself with exit ${code}`}`);
    }
    // Shepherds and agents still finishing their stop get a moment; what is left then is an orphan.
    const left = await waitFor(() => runProcesses(world.root, world.marker).length === 0, 20_000, 250);
    const leftovers = left ? [] : runProcesses(world.root, world.marker).map((p) => `pid ${p.pid} (${p.cmdline.slice(0, 160)}) cwd ${p.cwd ?? '?'}`);

    const evidence = await gather(world, humans, leftovers, daemonProblems);
    report.violations = checkInvariants(evidence);
    report.outcomes = outcomes(evidence);
    const firedLog = fs.readFileSync(path.join(world.run, 'fired.log'), 'utf8').trim();
    report.fired = firedLog === '' ? [] : firedLog.split('\n').map((l) => l.replace(/^\d+ /, ''));
    report.unfired = fs.readdirSync(path.join(world.run, 'arm'));
    const available = switchPoints();
    const killedPids = new Set(report.kills.map((k) => Number(/pid (\d+)/.exec(k)?.[1])));
    for (const name of fs.readdirSync(path.join(world.run, 'crash-inflight'))) {
      const [point = '', issue = '', pid = ''] = name.split('@');
      report.fired.push(`at:${point}-${issue} killed ${pid} (LOOM_TEST_CRASH_AT${killedPids.has(Number(pid)) ? '; or the random kill of that pid came first' : ''})`);
    }
    for (const name of fs.readdirSync(path.join(world.run, 'crash-at'))) {
      const [point = '', issue = ''] = name.split('@');
      report.unfired.push(`at:${point}-${issue}${available.has(point) ? '' : ' (this build has no such LOOM_TEST_CRASH_AT point)'}`);
    }
    for (const plan of scenario.issues) {
      if (plan.crash === null || !AGENT_POINTS.includes(plan.crash)) continue;
      const n = world.numbers.get(plan.index);
      if (!fs.existsSync(path.join(world.run, 'fired', `agent-${plan.crash}-${n}`))) report.unfired.push(`${plan.crash}-${n}`);
    }
    failed = report.violations.length > 0;
    if (failed || options.keep === 'always') {
      // What a kept run needs to be read later: the GitHub fake's state dies with the run.
      fs.writeFileSync(path.join(world.base, 'daemon.log'), world.output());
      fs.writeFileSync(path.join(world.base, 'report.json'), `${JSON.stringify(report, null, 2)}\n`);
      fs.writeFileSync(path.join(world.base, 'tracker.json'), `${JSON.stringify({ issues: evidence.issues.map(({ plan, ...rest }) => ({ ...rest, plan: plan.builder })), prs: evidence.prs, humans: evidence.humans }, null, 2)}\n`);
    }
    return report;
  } finally {
    const stray = await killAll(world.root, world.marker);
    active.delete(world);
    if (stray.length > 0) log(`killed ${stray.length} leftover process(es)`);
    const keep = options.keep === 'always' || (options.keep === 'on-failure' && failed);
    report.dir = keep ? world.base : null;
    report.durationMs = Date.now() - started;
    await world.dispose(keep);
  }

  async function kill(k: Kill): Promise<void> {
    if (k.target === 'daemon') {
      const daemon = world.current();
      // Killed already, its exit not yet seen (and its restart pending): killing it again would
      // schedule a second restart, and two daemons would be started.
      if (daemon === undefined || !daemon.alive() || daemonKilled.has(daemon.pid)) {
        report.kills.push(`${k.at}ms daemon: not running`);
        return;
      }
      daemonKilled.add(daemon.pid);
      sigkill(daemon.pid);
      report.kills.push(`${k.at}ms daemon pid ${daemon.pid}; restarted after ${k.restartAfter}ms`);
      log(`killed the daemon (pid ${daemon.pid})`);
      pending.push(
        daemon.exited.then(async () => {
          await delay(k.restartAfter);
          world.startDaemon();
          log('daemon restarted');
        }),
      );
      return;
    }
    const deadline = Date.now() + (k.target === 'iteration' ? 3_000 : 1_500);
    for (;;) {
      const daemons = new Set(world.daemons.map((d) => d.pid));
      const candidates = runProcesses(world.root, world.marker)
        .filter((p) => kindOf(p, daemons) === k.target)
        .map((p) => ({ p, key: keyOf(p, k.target) }))
        .sort((a, b) => a.key.localeCompare(b.key));
      if (candidates.length > 0) {
        const chosen = candidates[Math.floor(k.pick * candidates.length)] ?? candidates[0];
        if (chosen === undefined) return;
        sigkill(chosen.p.pid);
        report.kills.push(`${k.at}ms ${k.target} ${chosen.key.trim()} (pid ${chosen.p.pid})`);
        log(`killed ${k.target} ${chosen.key.trim()} (pid ${chosen.p.pid})`);
        return;
      }
      if (Date.now() > deadline) {
        report.kills.push(`${k.at}ms ${k.target}: none running`);
        return;
      }
      await delay(k.target === 'iteration' ? 5 : 100);
    }
  }

  async function act(h: HumanAction): Promise<void> {
    const touched = new Set(humans.map((x) => x.issue));
    const deadline = Date.now() + 3_000;
    for (;;) {
      const open = (await world.tracker.listIssues({ state: 'open' })).filter((i) => world.plans.has(i.number) && !touched.has(i.number));
      const wanted = h.kind === 'unready' ? Label.issue : Label.building;
      let candidates = open.filter((i) => i.labels.includes(wanted)).sort((a, b) => a.number - b.number);
      if (h.kind === 'unready') candidates = candidates.slice(-4); // the newest: least likely to be claimed already
      const calm = candidates.filter((i) => world.plans.get(i.number)?.crash === null);
      if (calm.length > 0) candidates = calm;
      if (candidates.length > 0) {
        const issue = candidates[Math.floor(h.pick * candidates.length)] ?? candidates[0];
        if (issue === undefined) return;
        const n = issue.number;
        const t = world.tracker;
        switch (h.kind) {
          case 'close':
            await t.close(n, "Human: closing this, we won't do it after all.");
            break;
          case 'block':
            await t.comment(n, 'Human: blocking this until we decide on the approach.');
            await t.updateLabels(n, { add: [Label.blocked] });
            break;
          case 'abort':
            await t.updateLabels(n, { add: [Label.abort] });
            break;
          case 'unclaim':
          case 'unready':
            await t.updateLabels(n, { remove: [wanted] });
            break;
        }
        const record: HumanRecord = { kind: h.kind, issue: n, at: Date.now(), requeuedAt: null };
        humans.push(record);
        report.humans.push(`${h.at}ms ${h.kind} #${n}`);
        log(`human: ${h.kind} #${n}`);
        if (h.kind === 'unclaim') {
          pending.push(
            delay(h.requeueAfter).then(async () => {
              record.requeuedAt = Date.now();
              await t.updateLabels(n, { add: [Label.issue] });
              log(`human: put #${n} back to ${Label.issue}`);
            }),
          );
        }
        return;
      }
      if (Date.now() > deadline) {
        report.humans.push(`${h.at}ms ${h.kind}: no issue to act on`);
        return;
      }
      await delay(100);
    }
  }

  function fault(f: Fault): Promise<void> {
    const server = world.server;
    if (server === null) return Promise.resolve();
    const loom = (_m: string, _p: string, login: string) => login === LOOM_LOGIN;
    switch (f.kind) {
      case '5xx':
        server.failNext({ status: new Random(f.at).pick([500, 502, 503] as const), times: f.amount, match: loom });
        break;
      case '429':
        server.failNext({ status: 429, retryAfter: f.amount, match: loom });
        break;
      case 'ambiguous-5xx':
        faults.ambiguous += 1;
        break;
      case 'slow':
        faults.slow.push(f.amount);
        break;
      case 'drop':
        faults.drop.push(f.amount);
        break;
      case 'malformed':
        faults.malformed += 1;
        break;
    }
    report.faults.push(`${f.at}ms ${f.kind} ${f.amount}`);
    log(`fault armed: ${f.kind} ${f.amount}`);
    return Promise.resolve();
  }
}

interface HostFaults {
  ambiguous: number;
  slow: number[];
  drop: number[];
  malformed: number;
}

/**
 * The fake GitHub's side of the run: crash windows between the host's effect and its answer
 * (the requesting process is found from its connection and SIGKILLed), and the armed faults.
 */
function installHostHooks(world: ChaosWorld, faults: HostFaults, log: (line: string) => void): void {
  const server = world.server;
  if (server === null) return;
  const port = Number(new URL(server.url).port);
  const fire = (point: CrashPoint, issue: number, request: RoutedRequest) => {
    try {
      fs.renameSync(path.join(world.run, 'arm', `${point}-${issue}`), path.join(world.run, 'fired', `${point}-${issue}`));
    } catch {
      return; // not armed (or fired already)
    }
    const pid = request.remotePort === undefined ? null : pidOfConnection(request.remotePort, port);
    const cmd = pid === null ? '' : (runProcesses(world.root, world.marker).find((p) => p.pid === pid)?.cmdline ?? '');
    const line = pid !== null && /main\.js (shepherd|shepherd-host|role)( |$)/.test(cmd) ? `${point}-${issue} killed ${pid} ${cmd}` : `${point}-${issue} found no Loom process on the connection (${pid ?? 'none'} ${cmd})`;
    if (pid !== null && /main\.js (shepherd|shepherd-host|role)( |$)/.test(cmd)) sigkill(pid);
    fs.appendFileSync(path.join(world.run, 'fired.log'), `${Date.now()} ${line}\n`);
    log(line);
  };
  server.beforeAnswer = async (request) => {
    if (request.login !== LOOM_LOGIN) return undefined;
    const url = new URL(request.path, server.url);
    const body = request.body as Record<string, unknown> | unknown[] | null;
    if (request.method === 'POST' && /\/pulls$/.test(url.pathname) && request.status === 201 && body !== null && !Array.isArray(body)) {
      const head = ((body.head ?? {}) as { ref?: string }).ref ?? '';
      const n = Number(/issue-(\d+)$/.exec(head)?.[1]);
      if (Number.isInteger(n)) {
        world.prIssues.set(Number(body.number), n);
        fire('pr-created', n, request);
      }
    }
    const merge = /\/pulls\/(\d+)\/merge$/.exec(url.pathname);
    if (request.method === 'PUT' && merge !== null && request.status === 200) {
      const sha = body !== null && !Array.isArray(body) ? body.sha : undefined;
      if (typeof sha === 'string') world.mainMoves.set(sha, Date.now());
      const n = world.prIssues.get(Number(merge[1]));
      if (n !== undefined) fire('merged-on-host', n, request);
    }
    const patch = /\/issues\/(\d+)$/.exec(url.pathname);
    if (request.method === 'PATCH' && patch !== null && body !== null && !Array.isArray(body) && body.state === 'closed' && body.pull_request === undefined) fire('issue-closed', Number(patch[1]), request);

    if (faults.ambiguous > 0 && request.method !== 'GET') {
      faults.ambiguous -= 1;
      log(`fault: ${request.method} ${url.pathname} carried out, answered 502`);
      return { status: 502 };
    }
    const slow = faults.slow.shift();
    if (slow !== undefined) {
      await new Promise((r) => setTimeout(r, slow));
      return undefined;
    }
    const drop = faults.drop.shift();
    if (drop !== undefined) {
      await new Promise((r) => setTimeout(r, drop));
      log(`fault: ${request.method} ${url.pathname} dropped unanswered after ${drop}ms`);
      return { drop: true };
    }
    if (faults.malformed > 0 && request.method === 'GET' && /\/issues$/.test(url.pathname) && Array.isArray(body) && body.length > 0) {
      faults.malformed -= 1;
      const mangled = body.map((item, i) => (i === 0 ? { ...(item as object), labels: null } : item));
      log(`fault: a malformed record (labels: null) in ${url.pathname}`);
      return { body: mangled };
    }
    return undefined;
  };
}

async function gather(world: ChaosWorld, humans: HumanRecord[], leftovers: string[], daemonProblems: string[]): Promise<Evidence> {
  const t = world.tracker;
  const all = await t.listIssues({ state: 'all' });
  const issues = [];
  for (const issue of all) {
    const plan = world.plans.get(issue.number);
    if (plan === undefined) continue;
    issues.push({ issue, plan, comments: await t.listComments(issue.number), events: await t.listEvents(issue.number) });
  }
  const prs = [];
  for (const pr of await t.listPullRequests({ state: 'all' })) {
    const n = pr.closesIssue ?? Number(/issue-(\d+)$/.exec(pr.head)?.[1]);
    if (Number.isInteger(n)) world.prIssues.set(pr.number, n);
    prs.push({ pr, events: await t.listEvents(pr.number) });
  }
  const merges = world.mainMerges();
  const files = new Map<number, string | null>();
  for (const x of issues) files.set(x.issue.number, world.fileOnMain(`chaos/issue-${x.issue.number}.txt`));
  const list = (dir: string) => {
    try {
      return fs.readdirSync(dir);
    } catch {
      return [];
    }
  };
  const loomTemps: string[] = [];
  const walk = (dir: string, rel: string) => {
    for (const entry of list(dir)) {
      if (rel === '' && entry === 'worktrees') continue;
      const full = path.join(dir, entry);
      if (fs.statSync(full, { throwIfNoEntry: false })?.isDirectory()) walk(full, path.join(rel, entry));
      else if (/\.tmp$|\.tmp\./.test(entry)) loomTemps.push(path.join(rel, entry));
    }
  };
  walk(world.paths.dir, '');
  const stateFile = (() => {
    try {
      const state = JSON.parse(fs.readFileSync(world.paths.state, 'utf8'));
      const busy = Object.entries(state.shepherds ?? {}).filter(([, s]) => (s as { status?: string }).status === 'working');
      const roles = Object.entries(state.support_roles ?? {}).filter(([, r]) => (r as { status?: string }).status === 'running');
      const problems = [state.running !== false ? `running is ${state.running}` : '', busy.length ? `busy slots ${busy.map(([k]) => k).join(', ')}` : '', roles.length ? `running roles ${roles.map(([k]) => k).join(', ')}` : ''].filter(Boolean);
      return problems.length ? problems.join('; ') : null;
    } catch (error) {
      return `daemon-state.json does not read: ${(error as Error).message}`;
    }
  })();
  let statusJson = await world.loom(['status', '--json']);
  // A rate-limit pause the schedule's last fault began just before the end is real, and status
  // rightly reports it: read status again once it is over (it lasts a few seconds at most here).
  const pausedUntil = Date.parse((/"tracker_paused_until":\s*"([^"]+)"/.exec(statusJson.stdout) ?? [])[1] ?? '');
  if (pausedUntil > Date.now() && pausedUntil - Date.now() < 30_000) {
    await delay(pausedUntil - Date.now() + 500);
    statusJson = await world.loom(['status', '--json']);
  }
  const statusText = await world.loom(['status']);
  let status: string | null = null;
  try {
    const parsed = JSON.parse(statusJson.stdout);
    const problems = [
      statusJson.code !== 0 ? `status --json exited ${statusJson.code}` : '',
      statusText.code !== 0 ? `status exited ${statusText.code}: ${statusText.stderr.trim()}` : '',
      parsed.daemon?.status !== 'stopped' ? `daemon status is ${parsed.daemon?.status}` : '',
      (parsed.problems ?? []).length > 0 ? `problems: ${(parsed.problems as string[]).join('; ')}` : '',
    ].filter(Boolean);
    status = problems.length > 0 ? problems.join('; ') : null;
  } catch {
    status = `status --json (exit ${statusJson.code}) is not JSON: ${statusJson.stdout.slice(0, 200)} ${statusJson.stderr.slice(0, 200)}`;
  }
  const journal: JournalEntry[] = fs
    .readFileSync(path.join(world.run, 'journal'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [word = '', role = '', issue = '0', at = '0'] = line.split(' ');
      return { word, role, issue: Number(issue), at: Number(at) };
    });
  return {
    mode: world.mode,
    loomActor: world.mode === 'github' ? LOOM_LOGIN : 'loom',
    issues,
    prs,
    merges,
    files,
    branches: world.branches(),
    worktreeDirs: list(world.paths.worktrees),
    registered: world.registeredWorktrees(),
    worktreesDir: world.paths.worktrees,
    checkpoints: list(world.paths.checkpoints),
    loomTemps,
    agentTemps: list(path.join(world.run, 'tmp')).filter((n) => n.startsWith('loom-')),
    progress: list(world.paths.progress).filter((f) => !/\.tmp$/.test(f)),
    locks: ['daemon.lock', 'merge.lock', 'host/shepherd-host.lock'].filter((f) => fs.existsSync(path.join(world.paths.dir, f))),
    tickets: list(path.join(world.paths.host, 'tickets')),
    stateFile,
    status,
    leftovers,
    daemonProblems,
    humans,
    journal,
  };
}

function outcomes(e: Evidence): Record<string, number> {
  const result: Record<string, number> = {};
  const count = (k: string) => (result[k] = (result[k] ?? 0) + 1);
  for (const { issue } of e.issues) {
    const merged = e.merges.some((m) => m.issue === issue.number);
    if (merged) count('merged');
    else if (issue.state === 'closed') count(e.humans.some((h) => h.issue === issue.number && h.kind === 'close') ? 'closed by the human' : 'closed, no change');
    else if (issue.labels.includes(Label.blocked)) count('blocked');
    else if (issue.labels.includes(Label.issue)) count('ready');
    else count('open, other');
  }
  return result;
}
