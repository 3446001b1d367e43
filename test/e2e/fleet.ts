// A fleet for the distributed tests: a bare `origin`, the GitHub fake merging into it, a Redis of
// its own, the daemon's clone (bullmq executor through LOOM_REDIS_URL) and worker clones, each
// worker a `loom worker` process leading its own process group (so a test can kill a "machine").
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Label } from '../../src/core/labels.js';
import { GitHubTracker } from '../../src/tracker/github/github-tracker.js';
import { FakeGitHubServer } from '../fakes/github-server.js';
import { git } from '../helpers/github-repo.js';
import { LOOM_BIN, loomAsync, removeTestDir, startDaemon } from '../helpers/loom-repo.js';
import type { DaemonHandle } from '../helpers/loom-repo.js';
import { RedisServer } from '../helpers/redis-server.js';

export { git };

const fence = '```';
/** An issue body whose builder writes `file` (after `sleep` seconds). */
export const writes = (file: string, sleep = 0): string => `${fence}loom-script builder\n${sleep > 0 ? `sleep ${sleep}\n` : ''}write ${file} <<EOF\n${file}\nEOF\n${fence}`;

export interface WorkerHandle {
  name: string;
  dir: string;
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

export class Fleet {
  readonly workers: WorkerHandle[] = [];
  daemon: DaemonHandle | null = null;
  readonly owner: GitHubTracker;
  readonly env: NodeJS.ProcessEnv;

  private constructor(
    readonly base: string,
    readonly bare: string,
    readonly root: string,
    readonly server: FakeGitHubServer,
    readonly redis: RedisServer,
  ) {
    this.owner = new GitHubTracker({ owner: 'acme', repo: 'widgets', token: 'tok-owner', baseUrl: server.url });
    this.env = { GITHUB_TOKEN: 'tok-owner', GH_TOKEN: '', LOOM_REDIS_URL: redis.url };
  }

  /** Everything but the processes: origin, fake, Redis, the daemon's clone with the config pushed. */
  static async create(config: Record<string, unknown> = {}): Promise<Fleet> {
    const base = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'loom-fleet-')));
    const bare = path.join(base, 'widgets.git');
    const root = path.join(base, 'daemon');
    git(base, 'init', '-q', '--bare', '-b', 'main', bare);
    git(base, 'clone', '-q', bare, root);
    fs.writeFileSync(path.join(root, 'README.md'), '# widgets\n');
    git(root, 'add', '.');
    git(root, 'commit', '-qm', 'initial');
    git(root, 'push', '-q', 'origin', 'main');
    const server = await FakeGitHubServer.start({ owner: 'acme', repo: 'widgets', tokens: { 'tok-owner': 'acme' }, gitDir: bare });
    const redis = await RedisServer.start();
    const fleet = new Fleet(base, bare, root, server, redis);
    const init = await loomAsync(root, ['init']);
    if (init.code !== 0) throw new Error(init.stderr);
    fs.writeFileSync(
      path.join(root, '.loom', 'config.json'),
      JSON.stringify({
        tracker: { type: 'github', owner: 'acme', repo: 'widgets', baseUrl: server.url },
        runtime: 'script',
        pollInterval: '1s',
        heartbeatInterval: '0.5s',
        maxShepherds: 6,
        roles: { architect: { enabled: false }, hermit: { enabled: false }, guide: { enabled: false }, curator: { enabled: false }, champion: { enabled: false } },
        ...config,
      }),
    );
    const labels = await loomAsync(root, ['init'], fleet.env);
    if (labels.code !== 0) throw new Error(labels.stderr);
    // The configuration travels with the repository: every worker's clone has it.
    git(root, 'add', '.loom/config.json', '.loom/.gitignore');
    git(root, 'commit', '-qm', 'loom config');
    git(root, 'push', '-q', 'origin', 'main');
    return fleet;
  }

  /** A new clone of origin and a `loom worker` in it. */
  startWorker(name: string, concurrency = 2, env: NodeJS.ProcessEnv = {}): WorkerHandle {
    const dir = path.join(this.base, name);
    if (!fs.existsSync(dir)) git(this.base, 'clone', '-q', this.bare, dir);
    const child = spawn(process.execPath, [LOOM_BIN, 'worker', '--redis', this.redis.url, '--concurrency', String(concurrency)], {
      cwd: dir,
      env: { ...process.env, ...this.env, LOOM_REDIS_URL: '', LOOM_WORKER_LOCK_MS: '3000', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let text = '';
    child.stdout?.on('data', (c: Buffer) => (text += c.toString()));
    child.stderr?.on('data', (c: Buffer) => (text += c.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const handle = { name, dir, child, output: () => text, exited };
    this.workers.push(handle);
    return handle;
  }

  /** The daemon, in force mode unless `force` is false (then the Champion merges approved PRs). */
  startDaemon(extra: string[] = [], force = true): DaemonHandle {
    this.daemon = startDaemon(this.root, ['start', ...(force ? ['--force'] : []), ...extra], this.env);
    return this.daemon;
  }

  async createIssues(count: number, body: (i: number) => string): Promise<number[]> {
    const numbers: number[] = [];
    for (let i = 1; i <= count; i += 1) numbers.push((await this.owner.createIssue({ title: `Add f${i}.txt`, body: body(i), labels: [Label.issue] })).number);
    return numbers;
  }

  /** Every worker's and the daemon's output, for failure messages. */
  outputs(): string {
    return [`--- daemon\n${this.daemon?.output().split('\n').slice(-40).join('\n') ?? ''}`, ...this.workers.map((w) => `--- ${w.name}\n${w.output().split('\n').slice(-40).join('\n')}`)].join('\n');
  }

  /** Kills a worker's whole process group (the worker and its shepherds) with SIGKILL: a machine gone. */
  killMachine(worker: WorkerHandle): void {
    if (worker.child.pid !== undefined) {
      try {
        process.kill(-worker.child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }

  async close(): Promise<void> {
    if (this.daemon !== null && this.daemon.child.exitCode === null) {
      this.daemon.child.kill('SIGKILL');
    }
    for (const w of this.workers) this.killMachine(w);
    await Promise.all(this.workers.map((w) => w.exited));
    this.owner.dispose();
    await this.server.close();
    await this.redis.stop();
    removeTestDir(this.base);
  }
}
