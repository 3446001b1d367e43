// GitHub polling cost (PRODUCT.md §10: an idle iteration costs at most one conditional request and
// zero rate-limit points). Runs real `loom iterate` processes against the GitHub-shaped server on
// 127.0.0.1 and counts the requests each makes. Run by `npm run bench` (or `--only github`).
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FakeGitHubServer } from '../test/fakes/github-server.js';

const bin = path.resolve('bin/loom.js');
const run = (cwd: string, args: string[], env: NodeJS.ProcessEnv) =>
  new Promise<string>((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    child.on('close', (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(`loom ${args.join(' ')}: ${out}`))));
  });

const base = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'loom-bench-gh-')));
const root = path.join(base, 'work');
fs.mkdirSync(root);
spawnSync('git', ['init', '-q', '-b', 'main'], { cwd: root });
spawnSync('git', ['-c', 'user.name=b', '-c', 'user.email=b@b', 'commit', '-q', '--allow-empty', '-m', 'initial'], { cwd: root });
const server = await FakeGitHubServer.start({ owner: 'acme', repo: 'widgets', tokens: { tok: 'acme' } });
server.seedIssues(150, ['loom:blocked']); // a backlog the poll has to page through
server.seedIssues(50); // unlabelled issues
await run(root, ['init'], {});
// Shepherds are stood in for by a process that exits at once: the iteration's own requests are measured.
const fake = path.join(base, 'noop.mjs');
fs.writeFileSync(fake, 'process.exit(0);\n');
fs.writeFileSync(path.join(root, '.loom', 'config.json'), JSON.stringify({ tracker: { type: 'github', owner: 'acme', repo: 'widgets', baseUrl: server.url }, runtime: 'script', roles: { architect: { enabled: false }, hermit: { enabled: false }, guide: { enabled: false }, curator: { enabled: false }, judge: { enabled: false }, doctor: { enabled: false }, champion: { enabled: false } } }));
const env = { GITHUB_TOKEN: 'tok', GH_TOKEN: '', LOOM_CLI_ENTRY: fake };

async function measure(label: string, iterations: number): Promise<void> {
  const counts: { requests: number; points: number }[] = [];
  for (let i = 0; i < iterations; i += 1) {
    const before = server.requests.length;
    await run(root, ['iterate'], env);
    const made = server.requests.slice(before);
    counts.push({ requests: made.length, points: made.filter((r) => r.status !== 304).length });
  }
  const avg = (f: (c: { requests: number; points: number }) => number) => (counts.reduce((s, c) => s + f(c), 0) / counts.length).toFixed(1);
  console.log(`github ${label}: ${avg((c) => c.requests)} requests, ${avg((c) => c.points)} rate-limit points per iteration (over ${counts.length}; each: ${counts.map((c) => `${c.requests}/${c.points}`).join(' ')})`);
}

await measure('first iteration (cold cache, 200 open issues)', 1);
await measure('idle iterations (target: ≤ 1 request, 0 points)', 5);
const owner = server.seedIssues(3, ['loom:issue'], 'acme');
await measure(`busy iteration (claims ${owner.length} issues, starts 3 shepherds)`, 1);
await measure('the iteration after (records 3 finished shepherds)', 1);
await measure('idle again', 3);
await server.close();
fs.rmSync(base, { recursive: true, force: true });
