// GitHub cost per merged issue over the whole lifecycle (daemon iterations, shepherds, support
// roles), force mode, instant agents, for several backlog sizes. Runs a real `loom start --force`
// against the GitHub-shaped server on 127.0.0.1 (merges happen in a real bare repository), and
// attributes every request to the Loom process that sent it (found from its connection).
// Run by `node scripts/bench.mjs --only github-issue` (sizes: --sizes 10,1000,10000; --merged 4; --agent-seconds S for a builder that takes S seconds).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FakeGitHubServer } from '../test/fakes/github-server.js';
import { loomAsync, startDaemon, until } from '../test/helpers/loom-repo.js';

const arg = (name: string, fallback: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback;
};
const sizes = arg('sizes', '10,1000,10000').split(',').map(Number);
const merged = Number(arg('merged', '4'));
/** How long the builder takes (0: instant). Over a few seconds each shepherd lives through several iterations, as with a real agent. */
const agentSeconds = Number(arg('agent-seconds', '0'));
/** --trace: also print the first shepherd's requests in order. */
const trace = process.argv.includes('--trace');

const git = (cwd: string, ...args: string[]): string => {
  const r = spawnSync('git', ['-c', 'user.name=b', '-c', 'user.email=b@b', ...args], { cwd, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`git ${args.join(' ')}: ${r.stderr}`);
  return r.stdout.trim();
};

/** `GET /repos/o/r/issues/12/labels?x` → `GET issues/N/labels`. */
function route(method: string, rawPath: string): string {
  const pathname = rawPath.split('?')[0] ?? '';
  const rest = pathname.replace(/^\/repos\/[^/]+\/[^/]+|^\/repositories\/\d+/, '').replace(/\/\d+(?=\/|$)/g, '/N').replace(/\/labels\/[^/]+$/, '/labels/NAME').replace(/\/collaborators\/[^/]+/, '/collaborators/USER');
  const query = new URLSearchParams(rawPath.split('?')[1] ?? '');
  const kind = pathname.endsWith('/issues') && method === 'GET' ? (query.get('sort') === 'updated' ? ' (change probe)' : ' (listing)') : '';
  return `${method} ${rest.replace(/^\//, '') || '/'}${kind}`;
}

/** The socket inode of a client connection to the server's port, from /proc/net/tcp. */
function inodeOf(clientPort: number, serverPort: number): string | null {
  const hex = (n: number) => `:${n.toString(16).toUpperCase().padStart(4, '0')}`;
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of fs.readFileSync(table, 'utf8').split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if ((cols[1] ?? '').endsWith(hex(clientPort)) && (cols[2] ?? '').endsWith(hex(serverPort)) && cols[9] !== undefined && cols[9] !== '0') return cols[9];
    }
  }
  return null;
}

/** Loom's processes (working directory inside the bench's directory) and what each one is. */
function loomProcesses(base: string): Map<number, string> {
  const found = new Map<number, string>();
  // kind#pid: the pid is dropped from the counts, kept for --trace
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (!fs.readlinkSync(`/proc/${name}/cwd`).startsWith(base)) continue;
      const cmd = fs.readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0').join(' ');
      if (cmd.includes('main.js') || cmd.includes('loom.js')) found.set(Number(name), `${kindOfCmd(cmd)}#${name}`);
    } catch {
      // gone, or not ours to read
    }
  }
  return found;
}

/** Which Loom process holds the socket: its open files are searched (a few processes, each a few dozen files). */
function kindOfSocket(inode: string, processes: Map<number, string>): string | null {
  for (const [pid, kind] of processes) {
    try {
      for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) if (fs.readlinkSync(`/proc/${pid}/fd/${fd}`) === `socket:[${inode}]`) return kind;
    } catch {
      // exited
    }
  }
  return null;
}

function kindOfCmd(cmd: string): string {
  const m = /(?:main|loom)\.js (\w+)(?: (\w+))?/.exec(cmd);
  if (m === null) return 'unknown';
  if (m[1] === 'role') return `role ${m[2] ?? ''}`;
  return m[1] ?? 'unknown';
}

async function run(size: number): Promise<void> {
  const base = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'loom-bench-ghi-')));
  const bare = path.join(base, 'widgets.git');
  const root = path.join(base, 'work');
  git(base, 'init', '-q', '--bare', '-b', 'main', bare);
  fs.mkdirSync(root);
  git(root, 'init', '-q', '-b', 'main');
  git(root, 'commit', '-q', '--allow-empty', '-m', 'initial');
  git(root, 'remote', 'add', 'origin', bare);
  git(root, 'push', '-q', 'origin', 'main');
  // A backlog made over time, as a real one is: one issue a second until now, then the real clock.
  let seeding: number | null = null;
  const now = () => seeding ?? Date.now();
  const server = await FakeGitHubServer.start({ owner: 'acme', repo: 'widgets', tokens: { tok: 'acme' }, gitDir: bare, rateLimit: 1_000_000, now });
  const port = Number(new URL(server.url).port);
  // The backlog: three quarters waiting on something (loom:blocked), a quarter unlabelled.
  const first = Date.now() - size * 1000;
  for (let i = 0; i < size; i += 1) {
    seeding = first + i * 1000;
    server.seedIssues(1, i % 4 === 3 ? [] : ['loom:blocked']);
  }
  seeding = null;
  const env = { GITHUB_TOKEN: 'tok', GH_TOKEN: '' };
  await loomAsync(root, ['init'], {});
  const roles = Object.fromEntries(
    ['builder', 'judge', 'doctor', 'champion', 'curator', 'architect', 'hermit', 'guide'].map((r) => [
      r,
      r === 'builder' ? { command: `${agentSeconds > 0 ? `sleep ${agentSeconds}; ` : ''}echo "$LOOM_ISSUE" > "issue-$LOOM_ISSUE.txt"` } : r === 'judge' ? { command: 'echo "VERDICT: APPROVE"' } : ['doctor', 'champion'].includes(r) ? { command: 'true' } : { command: 'true', enabled: false },
    ]),
  );
  fs.writeFileSync(path.join(root, '.loom', 'config.json'), JSON.stringify({ tracker: { type: 'github', owner: 'acme', repo: 'widgets', baseUrl: server.url }, runtime: 'command', pollInterval: '1s', roles }));
  const labels = await loomAsync(root, ['init'], env);
  if (labels.code !== 0) throw new Error(labels.stderr);
  // A warm cache, as a daemon that has been running has: one iteration reads the backlog first.
  const warm = await loomAsync(root, ['iterate'], env, 600_000);
  if (warm.code !== 0) throw new Error(`loom iterate exited ${String(warm.code)}: ${warm.stdout}${warm.stderr}`);

  const who = new Map<number, string>(); // request index → process kind
  const byInode = new Map<string, string>();
  const peakKb = new Map<string, number>();
  const privateKb = new Map<string, number>();
  let processes = new Map<number, string>();
  server.beforeAnswer = (request) => {
    const index = server.requests.length; // logged right after this hook
    const inode = request.remotePort === undefined ? null : inodeOf(request.remotePort, port);
    if (inode === null) return undefined;
    let kind = byInode.get(inode) ?? kindOfSocket(inode, processes);
    if (kind === null) {
      processes = loomProcesses(base);
      kind = kindOfSocket(inode, processes);
    }
    if (kind !== null) {
      byInode.set(inode, kind);
      who.set(index, kind);
      // Peak RSS of the process so far (VmHWM), sampled at each of its requests; and its private
      // memory then (what it alone holds: the pages of node's own code, shared by every Loom
      // process, are not in it).
      try {
        const pid = kind.replace(/^.*#/, '');
        const kb = Number(/VmHWM:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
        const name = kind.replace(/#\d+$/, '');
        if (kb > (peakKb.get(name) ?? 0)) peakKb.set(name, kb);
        const rollup = fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
        const own = ['Private_Clean', 'Private_Dirty'].reduce((sum, field) => sum + Number(new RegExp(`^${field}:\\s+(\\d+)`, 'm').exec(rollup)?.[1] ?? 0), 0);
        if (own > (privateKb.get(name) ?? 0)) privateKb.set(name, own);
      } catch {
        // exited
      }
    }
    return undefined;
  };

  const start = server.requests.length;
  const ready: number[] = [];
  for (let i = 0; i < merged; i += 1) ready.push(server.seedIssues(1, ['loom:issue'], 'acme')[0] as number);
  const t = Date.now();
  const daemon = startDaemon(root, ['start', '--force'], env);
  const probe = new (await import('../src/tracker/github/github-tracker.js')).GitHubTracker({ owner: 'acme', repo: 'widgets', token: 'tok', baseUrl: server.url });
  let probeRequests = 0;
  await until(
    async () => {
      const before = probe.requests;
      const states = await Promise.all(ready.map(async (n) => (await probe.getIssue(n))?.state));
      probeRequests += probe.requests - before;
      return states.every((s) => s === 'closed');
    },
    600_000,
    `${merged} issues merged; output:\n${daemon.output()}`,
  );
  const seconds = (Date.now() - t) / 1000;
  await loomAsync(root, ['stop'], env);
  await daemon.exited(120_000);
  probe.dispose();
  // The bench's own polling (this process, so no Loom process on the connection) is left out.
  const tagged = server.requests.slice(start).map((r, i) => ({ ...r, tag: who.get(start + i) ?? 'unknown' }));
  if (trace) {
    const first = tagged.find((r) => r.tag.startsWith('shepherd#'))?.tag;
    console.log(`  trace of ${first ?? 'no shepherd'}:\n${tagged.filter((r) => r.tag === first).map((r) => `    ${r.status} ${r.method} ${r.path}`).join('\n')}`);
  }
  const made = tagged.map((r) => ({ ...r, kind: r.tag.replace(/#\d+$/, '') }));
  const ours = made.filter((r) => r.kind !== 'unknown');
  const unknown = made.length - ours.length - probeRequests;
  const points = (rs: typeof ours) => rs.filter((r) => r.status !== 304 && r.status !== 0).length;
  console.log(`github per merged issue, ${size} open issues (${merged} merged in ${seconds.toFixed(0)} s, force mode, ${agentSeconds > 0 ? `a builder taking ${agentSeconds} s` : "instant agents"}): ${(ours.length / merged).toFixed(1)} requests, ${(points(ours) / merged).toFixed(1)} rate-limit points (target ≤ 13 points)${unknown > 0 ? `; ${unknown} requests from no process found` : ''}`);
  const groups = new Map<string, typeof ours>();
  for (const r of ours) {
    const key = `${r.kind}: ${route(r.method, r.path)}`;
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  const byProcess = new Map<string, typeof ours>();
  for (const r of ours) byProcess.set(r.kind, [...(byProcess.get(r.kind) ?? []), r]);
  for (const [kind, rs] of [...byProcess.entries()].sort()) {
    const peak = peakKb.get(kind);
    const own = privateKb.get(kind);
    console.log(`  ${kind}: ${(rs.length / merged).toFixed(1)} requests, ${(points(rs) / merged).toFixed(1)} points per merged issue${peak === undefined ? '' : `; peak RSS ${(peak / 1024).toFixed(0)} MB`}${own === undefined ? '' : ` (private ${(own / 1024).toFixed(0)} MB)`}`);
    for (const [key, grs] of [...groups.entries()].filter(([k]) => k.startsWith(`${kind}: `)).sort((a, b) => points(b[1]) - points(a[1]))) {
      console.log(`    ${key.slice(kind.length + 2)}: ${(grs.length / merged).toFixed(2)} requests, ${(points(grs) / merged).toFixed(2)} points`);
    }
  }
  await server.close();
  fs.rmSync(base, { recursive: true, force: true });
}

for (const size of sizes) await run(size);
