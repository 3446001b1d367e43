/**
 * The world of one chaos run: a temporary repository set up with `loom init` (local tracker, or
 * the GitHub-shaped fake backed by a bare repository), the run directory the agents and the git
 * shim share, the human's tracker handle, the daemon processes, and read-outs of git.
 */
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loomPaths } from '../../src/config/paths.js';
import type { LoomPaths } from '../../src/config/paths.js';
import { Label } from '../../src/core/labels.js';
import { touchWake } from '../../src/process/wake.js';
import { GitHubTracker } from '../../src/tracker/github/github-tracker.js';
import { LocalTracker } from '../../src/tracker/local/local-tracker.js';
import type { Tracker } from '../../src/tracker/tracker.js';
import { FakeGitHubServer } from '../fakes/github-server.js';
import { gitShim } from './git-shim.js';
import type { IssuePlan, Mode, Scenario } from './scenario.js';

const LOOM_BIN = fileURLToPath(new URL('../../bin/loom.js', import.meta.url));
const AGENT = fileURLToPath(new URL('./agent.sh', import.meta.url));
const DIST = fileURLToPath(new URL('../../dist/', import.meta.url));

/**
 * The CLI entry of the run's background processes (`LOOM_CLI_ENTRY`): for a shepherd whose issue
 * has a switch point armed (`crash-at/<point>@<issue>`), it sets `LOOM_TEST_CRASH_AT=<point>` for
 * that process only, moving the arm to `crash-inflight/<point>@<issue>@<pid>`; a process that
 * exits normally (the point was not reached) puts it back for the next shepherd of the issue.
 *
 * A shepherd host (\`shepherd-host\`, which runs every issue) takes every armed point, each as
 * \`<point>@<issue>\` so it fires for that issue's run only, moving each to
 * \`crash-inflight/<point>@<issue>@<pid>\`. A host that exits normally puts them all back; one that
 * died put back, at the next host's start, every point it did not reach (the point that fired says
 * so in the host's log, or a rotated generation of it: \`LOOM_TEST_CRASH_AT: <point>@<issue> reached\`).
 */
function entryWrapper(realMain: string, runDir: string): string {
  return `import fs from 'node:fs';
const dir = ${JSON.stringify(runDir)};
const [command, target] = process.argv.slice(2);
if (command === 'shepherd') {
  for (const name of fs.readdirSync(dir + '/crash-at')) {
    const [point, issue] = name.split('@');
    if (issue !== target) continue;
    const inflight = dir + '/crash-inflight/' + name + '@' + process.pid;
    try {
      fs.renameSync(dir + '/crash-at/' + name, inflight);
    } catch {
      continue;
    }
    process.env.LOOM_TEST_CRASH_AT = point;
    process.on('exit', () => {
      try {
        fs.renameSync(inflight, dir + '/crash-at/' + name);
      } catch {}
    });
    break;
  }
}
if (command === 'shepherd-host') {
  // The host's log and its rotated generations (shepherd-host.log.1, …).
  let log = '';
  try {
    const logs = process.cwd() + '/.loom/logs/';
    for (const name of fs.readdirSync(logs)) if (name.startsWith('shepherd-host.log')) log += fs.readFileSync(logs + name, 'utf8');
  } catch {}
  const alive = (pid) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  for (const name of fs.readdirSync(dir + '/crash-inflight')) {
    const [point, issue, pid] = name.split('@');
    if (alive(Number(pid)) || log.includes('LOOM_TEST_CRASH_AT: ' + point + '@' + issue + ' reached')) continue;
    try {
      fs.renameSync(dir + '/crash-inflight/' + name, dir + '/crash-at/' + point + '@' + issue);
    } catch {}
  }
  const taken = [];
  for (const name of fs.readdirSync(dir + '/crash-at')) {
    const inflight = dir + '/crash-inflight/' + name + '@' + process.pid;
    try {
      fs.renameSync(dir + '/crash-at/' + name, inflight);
    } catch {
      continue;
    }
    taken.push(name);
  }
  if (taken.length > 0) {
    process.env.LOOM_TEST_CRASH_AT = taken.join(',');
    process.on('exit', () => {
      for (const name of taken) {
        try {
          fs.renameSync(dir + '/crash-inflight/' + name + '@' + process.pid, dir + '/crash-at/' + name);
        } catch {}
      }
    });
  }
}
await import(${JSON.stringify(realMain)});
`;
}

/** The LOOM_TEST_CRASH_AT points this build of Loom knows (none before the switch exists). */
export function switchPoints(): Set<string> {
  const found = new Set<string>();
  const walk = (dir: string) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.name.endsWith('.js')) for (const m of fs.readFileSync(full, 'utf8').matchAll(/crashPoint\('([^']+)'[,)]/g)) found.add(m[1] ?? '');
    }
  };
  if (fs.existsSync(DIST)) walk(DIST);
  return found;
}
/** Loom's login on the fake; the human's is `maintainer`. */
export const LOOM_LOGIN = 'acme';
const LOOM_TOKEN = 'tok-loom';
const HUMAN_TOKEN = 'tok-human';

export interface DaemonProcess {
  child: ChildProcess;
  pid: number;
  exited: Promise<number | null>;
  alive(): boolean;
}

export interface MainMerge {
  sha: string;
  /** When main moved to it, epoch ms. */
  time: number;
  subject: string;
  issue: number;
  /** The merge changed nothing against its first parent. */
  empty: boolean;
}

function git(cwd: string, args: string[]): { ok: boolean; out: string; err: string } {
  const r = spawnSync('git', ['-c', 'user.name=Chaos', '-c', 'user.email=chaos@localhost', ...args], { cwd, encoding: 'utf8' });
  return { ok: r.status === 0, out: (r.stdout ?? '').trim(), err: (r.stderr ?? '').trim() };
}

function must(cwd: string, args: string[]): string {
  const r = git(cwd, args);
  if (!r.ok) throw new Error(`git ${args.join(' ')}: ${r.err}`);
  return r.out;
}

export class ChaosWorld {
  readonly base: string;
  readonly root: string;
  readonly run: string;
  readonly paths: LoomPaths;
  /** Marker in the environment of every Loom process of the run. */
  readonly marker: string;
  readonly bare: string | null;
  readonly daemons: DaemonProcess[] = [];
  /** Issue number by plan index. */
  readonly numbers = new Map<number, number>();
  /** Issue number → plan. */
  readonly plans = new Map<number, IssuePlan>();
  tracker!: Tracker;
  server: FakeGitHubServer | null = null;
  private daemonOutput = '';

  private constructor(readonly mode: Mode) {
    this.base = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), `loom-chaos-${mode}-`)));
    this.root = path.join(this.base, 'repo');
    this.run = path.join(this.base, 'run');
    this.paths = loomPaths(this.root);
    this.marker = `LOOM_CHAOS_RUN=${path.basename(this.base)}`;
    this.bare = mode === 'github' ? path.join(this.base, 'widgets.git') : null;
  }

  static async create(scenario: Scenario): Promise<ChaosWorld> {
    const world = new ChaosWorld(scenario.mode);
    try {
      await world.setUp(scenario);
    } catch (error) {
      await world.dispose(false);
      throw error;
    }
    return world;
  }

  private async setUp(scenario: Scenario): Promise<void> {
    for (const d of ['plan', 'arm', 'fired', 'locks', 'bin', 'tmp', 'entry', 'crash-at', 'crash-inflight']) fs.mkdirSync(path.join(this.run, d), { recursive: true });
    // Named main.js, so the processes it starts look like Loom's own (`main.js shepherd N`).
    fs.writeFileSync(path.join(this.run, 'entry', 'package.json'), '{ "type": "module" }\n');
    fs.writeFileSync(path.join(this.run, 'entry', 'main.js'), entryWrapper(path.join(DIST, 'cli', 'main.js'), this.run));
    fs.writeFileSync(path.join(this.run, 'journal'), '');
    fs.writeFileSync(path.join(this.run, 'fired.log'), '');
    const realGit = spawnSync('sh', ['-c', 'command -v git'], { encoding: 'utf8' }).stdout.trim();
    fs.writeFileSync(path.join(this.run, 'bin', 'git'), gitShim(realGit, this.run), { mode: 0o755 });

    fs.mkdirSync(this.root);
    must(this.root, ['init', '-q', '-b', 'main']);
    fs.writeFileSync(path.join(this.root, 'README.md'), '# chaos\n');
    must(this.root, ['add', '.']);
    must(this.root, ['commit', '-qm', 'initial']);
    if (this.bare !== null) {
      must(this.base, ['init', '-q', '--bare', '-b', 'main', this.bare]);
      must(this.root, ['remote', 'add', 'origin', this.bare]);
      must(this.root, ['push', '-q', 'origin', 'main']);
      this.server = await FakeGitHubServer.start({ owner: 'acme', repo: 'widgets', tokens: { [LOOM_TOKEN]: LOOM_LOGIN, [HUMAN_TOKEN]: 'maintainer' }, permissions: { maintainer: 'maintain' }, gitDir: this.bare });
    }
    const init = await this.loom(['init']);
    if (init.code !== 0) throw new Error(`loom init failed: ${init.stderr}`);
    const agent = `sh '${AGENT}' '${this.run}'`;
    const config = {
      executor: { kind: 'local', shepherds: scenario.shepherds },
      ...(this.server !== null ? { tracker: { type: 'github', owner: 'acme', repo: 'widgets', baseUrl: this.server.url } } : {}),
      maxShepherds: 4,
      pollInterval: '1s',
      heartbeatInterval: '0.5s',
      stallTimeout: '3s',
      agentRetries: 1,
      spawnFailureLimit: 3,
      maxRetryBackoff: '2s',
      shutdownGrace: '20s',
      maxDoctorRounds: 2,
      iterationTimeout: '30s',
      roles: {
        builder: { command: agent, timeout: '8s' },
        judge: { command: agent, interval: '2s', timeout: '20s' },
        doctor: { command: agent, interval: '2s', timeout: '20s' },
        champion: { interval: '2s' },
        architect: { enabled: false },
        hermit: { enabled: false },
        guide: { enabled: false },
        curator: { enabled: false },
      },
    };
    fs.writeFileSync(this.paths.config, JSON.stringify(config, null, 2));
    if (this.server !== null) {
      const labels = await this.loom(['init']);
      if (labels.code !== 0) throw new Error(`loom init (labels) failed: ${labels.stderr}`);
      this.tracker = new GitHubTracker({ owner: 'acme', repo: 'widgets', token: HUMAN_TOKEN, baseUrl: this.server.url });
    } else {
      this.tracker = new LocalTracker({ path: this.paths.trackerDb, actor: 'human', onWrite: () => touchWake(this.paths.wake) });
    }
    for (const plan of scenario.issues) {
      const issue = await this.tracker.createIssue({ title: plan.title, body: `Chaos issue ${plan.index}: the builder does "${plan.builder}".`, labels: [Label.issue] });
      this.numbers.set(plan.index, issue.number);
      this.plans.set(issue.number, plan);
      const vars = { BUILDER: plan.builder, JUDGE: plan.judge, DELAY: String(plan.delay), CRASH: plan.crash ?? '', REASON: plan.reason };
      fs.writeFileSync(path.join(this.run, 'plan', `issue-${issue.number}`), `${Object.entries(vars).map(([k, v]) => `${k}='${v}'`).join('\n')}\n`);
      if (plan.crash?.startsWith('at:')) fs.writeFileSync(path.join(this.run, 'crash-at', `${plan.crash.slice(3)}@${issue.number}`), '');
      else if (plan.crash !== null) fs.writeFileSync(path.join(this.run, 'arm', `${plan.crash}-${issue.number}`), '');
    }
  }

  /** The environment of every Loom process of the run. */
  env(): NodeJS.ProcessEnv {
    return {
      ...process.env,
      PATH: `${path.join(this.run, 'bin')}:${process.env.PATH ?? ''}`,
      TMPDIR: path.join(this.run, 'tmp'),
      LOOM_CLI_ENTRY: path.join(this.run, 'entry', 'main.js'),
      LOOM_CHAOS_RUN: this.marker.split('=')[1],
      GITHUB_TOKEN: this.server !== null ? LOOM_TOKEN : '',
      GH_TOKEN: '',
    };
  }

  /** Runs `loom <args>` to completion without blocking this process (it may be serving the fake). */
  loom(args: string[], timeoutMs = 120_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      const child = spawn(process.execPath, [LOOM_BIN, ...args], { cwd: this.root, env: this.env(), stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      child.on('close', (code) => {
        clearTimeout(timer);
        resolve({ code, stdout, stderr });
      });
    });
  }

  /** Starts `loom start --force` in its own process group. */
  startDaemon(): DaemonProcess {
    const child = spawn(process.execPath, [LOOM_BIN, 'start', '--force'], { cwd: this.root, env: this.env(), detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    const n = this.daemons.length + 1;
    const keep = (c: Buffer) => {
      this.daemonOutput += c
        .toString()
        .split('\n')
        .map((line) => (line === '' ? line : `[daemon ${n}] ${line}`))
        .join('\n');
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    let done = false;
    const exited = new Promise<number | null>((resolve) =>
      child.on('exit', (code) => {
        done = true;
        resolve(code);
      }),
    );
    const daemon: DaemonProcess = { child, pid: child.pid ?? -1, exited, alive: () => !done };
    this.daemons.push(daemon);
    return daemon;
  }

  current(): DaemonProcess | undefined {
    return this.daemons.at(-1);
  }

  output(): string {
    return this.daemonOutput;
  }

  /** The repository the merges land in: the bare one on GitHub, else the repository itself. */
  private mergeRepo(): string {
    return this.bare ?? this.root;
  }

  /**
   * Merge commits on main's first-parent history (by subject: a merge of an already merged branch
   * can come out with one parent), oldest first, with the issue each is for and when main moved
   * to it (ms, from the git shim's or the fake's log; else the commit's whole second).
   */
  mainMerges(): MainMerge[] {
    const log = must(this.mergeRepo(), ['log', '--first-parent', '--reverse', '--format=%H%x09%ct%x09%s', 'main']);
    const moves = new Map(this.mainMoves);
    const file = path.join(this.run, 'main.log');
    if (fs.existsSync(file)) {
      for (const line of fs.readFileSync(file, 'utf8').split('\n').filter(Boolean)) {
        const [at = '0', sha = ''] = line.split(' ');
        if (!moves.has(sha)) moves.set(sha, Number(at));
      }
    }
    return log
      .split('\n')
      .filter(Boolean)
      .flatMap((line) => {
        const [sha = '', time = '0', subject = ''] = line.split('\t');
        const local = /^Merge #(\d+):/.exec(subject);
        const hosted = /^Merge pull request #(\d+) from \S+\/loom\/issue-(\d+)/.exec(subject);
        if (local === null && hosted === null) return [];
        const issue = local ? Number(local[1]) : Number(hosted?.[2]);
        const empty = git(this.mergeRepo(), ['diff', '--quiet', `${sha}^1`, sha]).ok;
        return [{ sha, time: moves.get(sha) ?? Number(time) * 1000, subject, issue, empty }];
      });
  }

  /** PR number → issue number, learnt from the PRs the tracker lists. */
  readonly prIssues = new Map<number, number>();
  /** Merge commit → when the fake GitHub made it, ms. */
  readonly mainMoves = new Map<string, number>();

  fileOnMain(file: string): string | null {
    const r = git(this.mergeRepo(), ['show', `main:${file}`]);
    return r.ok ? `${r.out}\n` : null;
  }

  /** Local `loom/issue-N` branches: issue → whether it has commits main lacks. */
  branches(): Map<number, boolean> {
    const result = new Map<number, boolean>();
    const refs = must(this.root, ['for-each-ref', '--format=%(refname:short)', 'refs/heads/loom/']);
    const base = this.bare !== null ? 'origin/main' : 'main';
    if (this.bare !== null) git(this.root, ['fetch', '-q', 'origin', 'main']);
    for (const ref of refs.split('\n').filter(Boolean)) {
      const n = Number(/issue-(\d+)$/.exec(ref)?.[1]);
      if (!Number.isInteger(n)) continue;
      const ahead = Number(must(this.root, ['rev-list', '--count', `${base}..${ref}`]));
      result.set(n, ahead > 0);
    }
    return result;
  }

  /** Worktrees git knows of besides the main one: path and whether the directory exists. */
  registeredWorktrees(): { path: string; exists: boolean }[] {
    const out = must(this.root, ['worktree', 'list', '--porcelain']);
    return out
      .split('\n')
      .filter((l) => l.startsWith('worktree '))
      .map((l) => l.slice('worktree '.length))
      .filter((p) => p !== this.root)
      .map((p) => ({ path: p, exists: fs.existsSync(p) }));
  }

  async dispose(keep: boolean): Promise<void> {
    this.tracker?.dispose();
    await this.server?.close();
    if (!keep) fs.rmSync(this.base, { recursive: true, force: true });
  }
}
