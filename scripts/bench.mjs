#!/usr/bin/env node
// Benchmarks for the quality bars of PRODUCT.md §10 that this build can measure. Run with
// `npm run bench` (builds first). Options: --iterations N (parent memory run, default 10000),
// --issues N (iteration cost, default 10000), --only NAME (memory | iteration | pickup | overhead | host | github | github-issue | workers | dashboard | overlap | status | usage), --pairs N (overlap, default 4).
// host: the same instant-agent issues as overhead, through one shepherd host (executor.shepherds
// "host") beside `loom shepherd` processes and bare git; --overhead-issues N, --at-once 1,3,6.
// status: --repo DIR reuses (and keeps) a repository an earlier run set up with --keep; --before BIN
// also times another build's bin/loom.js on the same repository, alternating with this one.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const bin = path.join(here, '..', 'bin', 'loom.js');
const dist = path.join(here, '..', 'dist');
const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
};
const only = arg('only', null);

function repo(config) {
  const root = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'loom-bench-')));
  execFileSync('git', ['init', '-q', '-b', 'main'], { cwd: root });
  execFileSync(process.execPath, [bin, 'init'], { cwd: root, stdio: 'ignore' });
  fs.writeFileSync(path.join(root, '.loom', 'config.json'), JSON.stringify(config));
  return root;
}
const rssKb = (pid) => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function parentMemory() {
  const iterations = Number(arg('iterations', 10000));
  const root = repo({ pollInterval: '1ms' });
  // The parent is what must stay flat; a minimal stand-in for `loom iterate` keeps 10,000 child
  // processes affordable (the real iteration runs in its own fresh process either way).
  const fake = path.join(root, 'fake-iterate.mjs');
  fs.writeFileSync(fake, "process.stdout.write('ready=0 building=0 shepherds=0/3\\n');\n");
  const daemon = spawn(process.execPath, [bin, 'start'], { cwd: root, env: { ...process.env, LOOM_CLI_ENTRY: fake, LOOM_MIN_ITERATION_GAP_MS: '0' }, stdio: ['ignore', 'pipe', 'inherit'] });
  const samples = [];
  let seen = 0;
  let buffer = '';
  const started = Date.now();
  await new Promise((resolve) => {
    daemon.stdout.on('data', (chunk) => {
      buffer += chunk.toString();
      const lines = buffer.split('\n');
      buffer = lines.pop();
      for (const line of lines) {
        const m = /Iteration (\d+):/.exec(line);
        if (!m) continue;
        seen = Number(m[1]);
        if (seen === 100 || seen % 1000 === 0) {
          samples.push([seen, rssKb(daemon.pid)]);
          process.stderr.write(`  … ${seen} iterations, parent RSS ${(samples.at(-1)[1] / 1024).toFixed(1)} MB\n`);
        }
        if (seen >= iterations) {
          fs.writeFileSync(path.join(root, '.loom', 'stop-daemon'), '');
          resolve();
        }
      }
    });
  });
  await new Promise((resolve) => daemon.on('exit', resolve));
  const base = samples[0][1];
  const last = samples.at(-1)[1];
  const warm = samples.find(([i]) => i === 1000)?.[1] ?? base;
  const seconds = (Date.now() - started) / 1000;
  console.log(`parent memory: ${iterations} iterations in ${seconds.toFixed(0)} s; RSS after 100: ${(base / 1024).toFixed(1)} MB, after ${samples.at(-1)[0]}: ${(last / 1024).toFixed(1)} MB, growth ${((last - base) / 1024).toFixed(2)} MB (target < 5 MB); after the first 1000 (V8 warm-up): ${((last - warm) / 1024).toFixed(2)} MB`);
  console.log(`  samples (iteration: RSS MB): ${samples.map(([i, kb]) => `${i}: ${(kb / 1024).toFixed(1)}`).join(', ')}`);
  fs.rmSync(root, { recursive: true, force: true });
}

async function iterationCost() {
  const issues = Number(arg('issues', 10000));
  const root = repo({});
  const { LocalTracker } = await import(path.join(dist, 'tracker', 'local', 'local-tracker.js'));
  const { loomPaths } = await import(path.join(dist, 'config', 'paths.js'));
  const { loadConfig } = await import(path.join(dist, 'config', 'config.js'));
  const { runIteration } = await import(path.join(dist, 'daemon', 'iteration.js'));
  const paths = loomPaths(root);
  const tracker = new LocalTracker({ path: paths.trackerDb });
  const labels = ['loom:issue', 'loom:blocked', 'loom:architect', 'loom:issue', 'loom:curated'];
  for (let i = 0; i < issues; i += 1) await tracker.createIssue({ title: `Issue ${i}`, body: 'x'.repeat(200), labels: [labels[i % labels.length]] });
  // No builder configured: the iteration plans everything but spawns nothing, so this is the
  // orchestration work itself (state, snapshot, observation, plan, save).
  const config = loadConfig(paths.config);
  const times = [];
  for (let i = 0; i < 21; i += 1) {
    const t = process.hrtime.bigint();
    await runIteration({ paths, config, tracker, force: false, mode: 'normal' });
    times.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  const steady = times.slice(1);
  console.log(`iteration over ${issues} open issues (local tracker): median ${median(steady).toFixed(1)} ms, min ${Math.min(...steady).toFixed(1)} ms, max ${Math.max(...steady).toFixed(1)} ms over ${steady.length} runs (target < 100 ms); first run ${times[0].toFixed(1)} ms`);
  const process_ = spawnSync(process.execPath, [bin, 'iterate'], { cwd: root, encoding: 'utf8' });
  const t = Date.now();
  spawnSync(process.execPath, [bin, 'iterate'], { cwd: root, encoding: 'utf8' });
  console.log(`  the same as a fresh \`loom iterate\` process (node start-up included): ${Date.now() - t} ms; summary: ${process_.stdout.trim()}`);
  tracker.dispose();
  fs.rmSync(root, { recursive: true, force: true });
}

/** Every file under `dir`: name, size and modification time, to show that nothing was written. */
function listing(dir) {
  return fs.readdirSync(dir, { recursive: true }).sort().map((name) => {
    const stat = fs.statSync(path.join(dir, name));
    return `${name} ${stat.size} ${stat.mtimeMs}`;
  }).join('\n');
}

async function statusCost() {
  const issues = Number(arg('issues', 10000));
  const reuse = arg('repo', null);
  const root = reuse ?? repo({});
  if (reuse === null) {
    // The iteration bench's backlog, and one `loom iterate` (the state file a daemon leaves).
    const { LocalTracker } = await import(path.join(dist, 'tracker', 'local', 'local-tracker.js'));
    const tracker = new LocalTracker({ path: path.join(root, '.loom', 'tracker.db') });
    const labels = ['loom:issue', 'loom:blocked', 'loom:architect', 'loom:issue', 'loom:curated'];
    for (let i = 0; i < issues; i += 1) await tracker.createIssue({ title: `Issue ${i}`, body: 'x'.repeat(200), labels: [labels[i % labels.length]] });
    tracker.dispose();
    execFileSync(process.execPath, [bin, 'iterate'], { cwd: root, stdio: 'ignore' });
  }
  const builds = [['this build', bin], ...(arg('before', null) ? [['before', arg('before', null)]] : [])];
  const runs = Number(arg('runs', 3));
  const before = listing(path.join(root, '.loom'));
  for (const args of [['status'], ['status', '--json']]) {
    const times = Object.fromEntries(builds.map(([name]) => [name, []]));
    const bytes = {};
    for (let i = 0; i < runs; i += 1) {
      for (const [name, file] of builds) {
        const t = process.hrtime.bigint();
        const out = spawnSync(process.execPath, [file, ...args], { cwd: root, encoding: 'utf8' });
        times[name].push(Number(process.hrtime.bigint() - t) / 1e6);
        bytes[name] = Buffer.byteLength(out.stdout);
        if (out.status !== 0) throw new Error(`loom ${args.join(' ')} exited ${out.status}: ${out.stderr}`);
      }
    }
    for (const [name] of builds) {
      console.log(`\`loom ${args.join(' ')}\` (${name}) over ${reuse === null ? issues : 'the given'} open issues: ${times[name].map((ms) => ms.toFixed(0)).join(', ')} ms, median ${median(times[name]).toFixed(0)} ms; output ${bytes[name]} bytes`);
    }
  }
  // In-process: the report alone (config, snapshot, state, render), without node's start-up.
  for (const [name, file] of builds) {
    const { collectStatus } = await import(path.join(path.dirname(file), '..', 'dist', 'status', 'collect-status.js'));
    const { loomPaths } = await import(path.join(path.dirname(file), '..', 'dist', 'config', 'paths.js'));
    const times = [];
    for (let i = 0; i < 11; i += 1) {
      const t = process.hrtime.bigint();
      JSON.stringify(await collectStatus(loomPaths(root)));
      times.push(Number(process.hrtime.bigint() - t) / 1e6);
    }
    console.log(`  in-process status report (${name}): median ${median(times.slice(1)).toFixed(1)} ms over 10 runs (min ${Math.min(...times.slice(1)).toFixed(1)}, max ${Math.max(...times.slice(1)).toFixed(1)})`);
  }
  console.log(`  files under .loom ${listing(path.join(root, '.loom')) === before ? 'unchanged' : 'CHANGED'} (names, sizes, modification times)`);
  if (reuse === null && process.argv.includes('--keep')) console.log(`  repository kept: ${root}`);
  else if (reuse === null) fs.rmSync(root, { recursive: true, force: true });
}

/**
 * Cost of the usage ledger's readers as it grows: `loom status` and one shepherd whose issue has a
 * budget (so every agent run checks what was spent), with a ledger of 1,000 and 100,000 runs that
 * the daemon's last iteration folded, plus ten runs since. `--ledger 1000,100000`; `--before BIN`
 * runs another build's bin/loom.js on the same repositories, alternating with this one.
 */
async function usageCost() {
  const sizes = String(arg('ledger', '1000,100000')).split(',').map(Number);
  const builds = [['this build', bin], ...(arg('before', null) ? [['before', arg('before', null)]] : [])];
  const { LocalTracker } = await import(path.join(dist, 'tracker', 'local', 'local-tracker.js'));
  const line = (i, issue) => `${JSON.stringify({ at: new Date(Date.now() - (100 - (i % 100)) * 60_000).toISOString(), role: i % 3 === 0 ? 'judge' : 'builder', runtime: 'claude', model: 'claude-sonnet-4-5', session_id: `0f8d2a3c-5b1e-4a7f-9c6d-${String(i).padStart(12, '0')}`, outcome: 'success', input_tokens: 48211, output_tokens: 3120, cached_input_tokens: 40960, cost_usd: 0.081234, priced: false, issue })}\n`;
  // The process's own peak RSS (KB), written as it exits.
  const measured = (file, args, cwd) => {
    const rssFile = path.join(cwd, '.loom', 'bench-max-rss');
    const atExit = `data:text/javascript,process.on('exit', () => process.getBuiltinModule('node:fs').writeFileSync(${JSON.stringify(rssFile)}, String(process.resourceUsage().maxRSS)))`;
    const t = process.hrtime.bigint();
    const r = spawnSync(process.execPath, ['--import', atExit, file, ...args], { cwd, encoding: 'utf8' });
    const ms = Number(process.hrtime.bigint() - t) / 1e6;
    if (r.status !== 0) throw new Error(`loom ${args.join(' ')} exited ${r.status}: ${r.stdout}${r.stderr}`);
    return { ms, mb: Number(fs.readFileSync(rssFile, 'utf8')) / 1024 };
  };
  for (const size of sizes) {
    const root = repo({ runtime: 'command', budget: { perIssueUsd: 1e9, perDayUsd: 1e9 }, roles: Object.fromEntries(['builder', 'judge', 'doctor', 'curator', 'architect', 'hermit', 'guide'].map((r) => [r, { command: r === 'builder' ? 'echo "$LOOM_ISSUE" > "issue-$LOOM_ISSUE.txt"' : r === 'judge' ? 'echo "VERDICT: APPROVE"' : 'true' }])) });
    execFileSync('git', ['-c', 'user.name=b', '-c', 'user.email=b@b', 'commit', '-q', '--allow-empty', '-m', 'initial'], { cwd: root });
    const tracker = new LocalTracker({ path: path.join(root, '.loom', 'tracker.db') });
    const issues = [];
    for (let i = 0; i < 2 * builds.length; i += 1) issues.push((await tracker.createIssue({ title: `Issue ${i}`, labels: [] })).number);
    const ledger = path.join(root, '.loom', 'usage.jsonl');
    const chunk = [];
    for (let i = 0; i < size; i += 1) {
      chunk.push(line(i, 1000 + (i % 5000)));
      if (chunk.length === 10_000) fs.appendFileSync(ledger, chunk.splice(0).join(''));
    }
    fs.appendFileSync(ledger, chunk.join(''));
    execFileSync(process.execPath, [bin, 'iterate'], { cwd: root, stdio: 'ignore' }); // the daemon's fold
    fs.appendFileSync(ledger, Array.from({ length: 10 }, (_, i) => line(i, issues[0])).join(''));
    const ledgerMb = fs.statSync(ledger).size / 1e6;
    const status = Object.fromEntries(builds.map(([name]) => [name, { ms: [], mb: [] }]));
    for (let round = 0; round < 5; round += 1) {
      for (const [name, file] of builds) {
        const m = measured(file, ['status', '--json'], root);
        status[name].ms.push(m.ms);
        status[name].mb.push(m.mb);
      }
    }
    let next = 0;
    const shepherd = {};
    for (let round = 0; round < 2; round += 1) {
      for (const [name, file] of builds) {
        const n = issues[next++];
        await tracker.updateLabels(n, { add: ['loom:issue'] });
        const m = measured(file, ['shepherd', String(n), '--force-merge'], root);
        (shepherd[name] ??= []).push(m);
      }
    }
    tracker.dispose();
    console.log(`usage ledger of ${size} runs (${ledgerMb.toFixed(1)} MB), indexed by the last iteration, 10 runs since:`);
    for (const [name] of builds) {
      console.log(`  ${name}: \`loom status --json\` median ${median(status[name].ms).toFixed(0)} ms, peak RSS ${median(status[name].mb).toFixed(1)} MB; \`loom shepherd N --force-merge\` with a budget set ${shepherd[name].map((m) => `${m.ms.toFixed(0)} ms / ${m.mb.toFixed(1)} MB`).join(', ')}`);
    }
    fs.rmSync(root, { recursive: true, force: true });
  }
}

async function pickup() {
  const root = repo({ pollInterval: '30s', maxShepherds: 1, roles: { builder: { command: 'true' } } });
  const daemon = spawn(process.execPath, [bin, 'start'], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  daemon.stdout.on('data', (c) => (out += c));
  const until = async (cond) => {
    while (!cond()) await new Promise((r) => setTimeout(r, 5));
  };
  await until(() => /Iteration 1:/.test(out));
  const { LocalTracker } = await import(path.join(dist, 'tracker', 'local', 'local-tracker.js'));
  const tracker = new LocalTracker({ path: path.join(root, '.loom', 'tracker.db') });
  const latencies = [];
  for (let i = 0; i < 10; i += 1) {
    const t = Date.now();
    execFileSync(process.execPath, [bin, 'issue', 'create', `ready ${i}`, '--label', 'loom:issue'], { cwd: root });
    const created = Date.now();
    const n = i + 1;
    await until(() => /\+shepherd=#(\d+)/.test(out) && out.includes(`+shepherd=#${n}`));
    latencies.push(Date.now() - created);
    await until(() => out.includes(`done=#${n}`));
    void t;
  }
  fs.writeFileSync(path.join(root, '.loom', 'stop-daemon'), '');
  await new Promise((resolve) => daemon.on('exit', resolve));
  tracker.dispose();
  console.log(`pickup of a new ready issue with a free slot (poll interval 30 s): median ${median(latencies)} ms, max ${Math.max(...latencies)} ms over ${latencies.length} issues (target < 1000 ms)`);
  fs.rmSync(root, { recursive: true, force: true });
}

/** One issue's git work done by hand, the overhead benches' floor: worktree, commit, merge, cleanup. */
function bareGitIssue(g, bare, n) {
  const wt = path.join(bare, 'wt', `issue-${n}`);
  g(bare, 'worktree', 'add', '-q', '-b', `loom/issue-${n}`, wt, 'main');
  fs.writeFileSync(path.join(wt, `issue-${n}.txt`), `${n}\n`);
  g(wt, 'add', '-A');
  g(wt, 'commit', '-q', '-m', `issue ${n}`);
  g(bare, 'merge', '-q', '--no-ff', '-m', `Merge #${n}`, `loom/issue-${n}`);
  g(bare, 'worktree', 'remove', '--force', wt);
  g(bare, 'branch', '-q', '-D', `loom/issue-${n}`);
}

async function overhead() {
  const count = Number(arg('overhead-issues', 10));
  // Loom: one shepherd per issue, instant agents (the command runtime running `true`; the builder
  // writes one file), no test command, merged with --force-merge.
  const root = repo({ runtime: 'command', roles: Object.fromEntries(['builder', 'judge', 'doctor', 'curator', 'architect', 'hermit', 'guide'].map((r) => [r, { command: r === 'builder' ? 'echo "$LOOM_ISSUE" > "issue-$LOOM_ISSUE.txt"' : r === 'judge' ? 'echo "VERDICT: APPROVE"' : 'true' }])) });
  execFileSync('git', ['-c', 'user.name=b', '-c', 'user.email=b@b', 'commit', '-q', '--allow-empty', '-m', 'initial'], { cwd: root });
  const { LocalTracker } = await import(path.join(dist, 'tracker', 'local', 'local-tracker.js'));
  const tracker = new LocalTracker({ path: path.join(root, '.loom', 'tracker.db') });
  for (let i = 0; i < count; i += 1) await tracker.createIssue({ title: `Issue ${i}`, labels: ['loom:issue'] });
  tracker.dispose();
  let t = Date.now();
  for (let n = 1; n <= count; n += 1) {
    const r = spawnSync(process.execPath, [bin, 'shepherd', String(n), '--force-merge'], { cwd: root, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`shepherd ${n} failed: ${r.stdout}${r.stderr}`);
  }
  const loomMs = (Date.now() - t) / count;
  // The git processes one more issue costs: a \`git\` first on PATH that logs its arguments (not timed).
  const shim = fs.mkdtempSync(path.join(os.tmpdir(), 'loom-bench-shim-'));
  const realGit = execFileSync('sh', ['-c', 'command -v git'], { encoding: 'utf8' }).trim();
  const gitLog = path.join(shim, 'calls.log');
  fs.writeFileSync(path.join(shim, 'git'), `#!/bin/sh\nprintf 'CALL %s\\n' "$*" >> '${gitLog}'\nexec '${realGit}' "$@"\n`, { mode: 0o755 });
  const extra = new LocalTracker({ path: path.join(root, '.loom', 'tracker.db') });
  const counted = (await extra.createIssue({ title: 'Counted', labels: ['loom:issue'] })).number;
  extra.dispose();
  // Its peak RSS too: the process writes its own `maxRSS` (KB) as it exits.
  const rssFile = path.join(shim, 'max-rss');
  const atExit = `data:text/javascript,process.on('exit', () => process.getBuiltinModule('node:fs').writeFileSync(${JSON.stringify(rssFile)}, String(process.resourceUsage().maxRSS)))`;
  const traced = spawnSync(process.execPath, ['--import', atExit, bin, 'shepherd', String(counted), '--force-merge'], { cwd: root, encoding: 'utf8', env: { ...process.env, PATH: `${shim}:${process.env.PATH}` } });
  if (traced.status !== 0) throw new Error(`shepherd ${counted} failed: ${traced.stdout}${traced.stderr}`);
  const peakMb = fs.existsSync(rssFile) ? Number(fs.readFileSync(rssFile, 'utf8')) / 1024 : NaN;
  const calls = fs.readFileSync(gitLog, 'utf8').split(/^CALL /m).filter(Boolean).map((c) => c.trim().replace(/\n/g, ' '));
  fs.rmSync(shim, { recursive: true, force: true });
  // Bare git: the same lifecycle's git work by hand (worktree add, write + commit, merge commit, worktree remove).
  const bare = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'loom-bench-git-')));
  const g = (cwd, ...a) => execFileSync('git', ['-c', 'user.name=b', '-c', 'user.email=b@b', ...a], { cwd, stdio: 'ignore' });
  g(bare, 'init', '-q', '-b', 'main');
  g(bare, 'commit', '-q', '--allow-empty', '-m', 'initial');
  t = Date.now();
  for (let n = 1; n <= count; n += 1) {
    bareGitIssue(g, bare, n);
  }
  const gitMs = (Date.now() - t) / count;
  console.log(`orchestration overhead per issue (instant agents, local tracker, sequential): loom ${loomMs.toFixed(0)} ms, bare git ${gitMs.toFixed(0)} ms, ratio ${(loomMs / gitMs).toFixed(1)}× (target ≤ 1.5×)`);
  console.log(`  peak RSS of that shepherd process: ${peakMb.toFixed(1)} MB (target ≤ 45 MB)`);
  console.log(`  git processes for one issue (\`loom shepherd N --force-merge\`): ${calls.length} (target ≤ 8; bare git: 7)${process.argv.includes('--trace') ? `\n${calls.map((c) => `    git ${c}`).join('\n')}` : ''}`);
  fs.rmSync(root, { recursive: true, force: true });
  fs.rmSync(bare, { recursive: true, force: true });
}

const ROLE_NAMES = ['builder', 'judge', 'doctor', 'curator', 'architect', 'hermit', 'guide'];
/** A repository whose agents are instant commands (the builder writes one file, after `builderSleep` seconds). */
function instantRepo(extra, builderSleep = 0) {
  const builder = `${builderSleep > 0 ? `sleep ${builderSleep}; ` : ''}echo "$LOOM_ISSUE" > "issue-$LOOM_ISSUE.txt"`;
  const root = repo({ runtime: 'command', roles: Object.fromEntries(ROLE_NAMES.map((r) => [r, { command: r === 'builder' ? builder : r === 'judge' ? 'echo "VERDICT: APPROVE"' : 'true' }])), ...extra });
  execFileSync('git', ['-c', 'user.name=b', '-c', 'user.email=b@b', 'commit', '-q', '--allow-empty', '-m', 'initial'], { cwd: root });
  return root;
}
async function createIssues(root, count) {
  const { LocalTracker } = await import(path.join(dist, 'tracker', 'local', 'local-tracker.js'));
  const tracker = new LocalTracker({ path: path.join(root, '.loom', 'tracker.db') });
  const numbers = [];
  for (let i = 0; i < count; i += 1) numbers.push((await tracker.createIssue({ title: `Issue ${i}`, labels: ['loom:issue'] })).number);
  tracker.dispose();
  return numbers;
}
const sleepMs = (ms) => new Promise((r) => setTimeout(r, ms));
/**
 * A process's memory as the kernel shares it out (`smaps_rollup`): `Pss` counts each page shared
 * by n processes as 1/n (node's own code, mapped by every Loom process, is paid once in all),
 * `Private_*` what this process alone holds (what one more such process costs). kB; 0 once gone.
 */
const sharedOutKb = (pid) => {
  try {
    const text = fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    const kb = (field) => Number(new RegExp(`^${field}:\\s+(\\d+)`, 'm').exec(text)?.[1] ?? 0);
    return { pss: kb('Pss'), private: kb('Private_Clean') + kb('Private_Dirty') };
  } catch {
    return { pss: 0, private: 0 };
  }
};
/** A process's RSS (kB) by mapping, from its `smaps` text: the node binary, anonymous memory (the V8 heap), malloc's heap, each library; largest first. */
const rssByMapping = (smaps) => {
  const kb = new Map();
  let name = '';
  for (const line of smaps.split('\n')) {
    const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head !== null) {
      const file = head[1] || 'anonymous';
      name = file === process.execPath ? 'node binary' : file === '[heap]' ? 'malloc heap' : file.startsWith('/') ? path.basename(file) : file;
      continue;
    }
    const rss = /^Rss:\s+(\d+)/.exec(line);
    if (rss !== null) kb.set(name, (kb.get(name) ?? 0) + Number(rss[1]));
  }
  const sorted = [...kb].filter(([, v]) => v > 0).sort((a, b) => b[1] - a[1]);
  const top = sorted.slice(0, 5);
  const rest = sorted.slice(5).reduce((acc, [, v]) => acc + v, 0);
  return rest > 0 ? [...top, ['the rest', rest]] : top;
};
const procKb = (pid, field) => {
  try {
    return Number(new RegExp(`${field}:\\s+(\\d+)`).exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
  } catch {
    return 0;
  }
};

/**
 * The shepherd host (`executor.shepherds: "host"`): time per issue with instant agents, handed
 * over as the daemon does (claim, ticket) and run one after another by one warm host, beside
 * `loom shepherd N` processes and bare git; and the RSS of orchestration per running issue with
 * 1, 3 and 6 issues at once (the host's peak RSS over the issues running, against the sum of the
 * `loom shepherd` processes' RSS).
 */
async function hostOverhead() {
  const count = Number(arg('overhead-issues', 10));
  const atOnce = String(arg('at-once', '1,3,6')).split(',').map(Number);
  const { ProgressStore } = await import(path.join(dist, 'process', 'progress-store.js'));
  const { LocalTracker } = await import(path.join(dist, 'tracker', 'local', 'local-tracker.js'));
  const { startShepherd } = await import(path.join(dist, 'daemon', 'start-shepherd.js'));
  const { loomPaths } = await import(path.join(dist, 'config', 'paths.js'));
  const { liveHost } = await import(path.join(dist, 'process', 'host-tickets.js'));
  const terminal = new Set(['completed', 'no-changes', 'blocked', 'failed', 'stopped', 'skipped']);

  /** Hands `numbers` to the host at once and waits for all to end; the host's peak RSS meanwhile. */
  const throughHost = async (root, numbers) => {
    const paths = loomPaths(root);
    const progress = new ProgressStore(paths.progress);
    const tracker = new LocalTracker({ path: paths.trackerDb });
    let peak = 0;
    let hostPid = null;
    for (const issue of numbers) {
      const r = await startShepherd({ paths, tracker, progress, issue, forceMerge: true, now: new Date(), shepherds: 'host' });
      if (!r.ok) throw new Error(`#${issue}: ${r.message}`);
      hostPid = r.task.pid;
    }
    let smaps = '';
    for (;;) {
      const rss = procKb(hostPid, 'VmRSS');
      if (rss > peak) {
        peak = rss;
        // What the peak is made of: kept to print by mapping (read only when the peak grows).
        try {
          smaps = fs.readFileSync(`/proc/${hostPid}/smaps`, 'utf8');
        } catch {
          // gone
        }
      }
      const records = numbers.map((n) => progress.readShepherd(n));
      if (records.every((p) => p !== null && terminal.has(p.status))) break;
      await sleepMs(2);
    }
    tracker.dispose();
    const bad = numbers.map((n) => progress.readShepherd(n)).filter((p) => p.status !== 'completed');
    if (bad.length > 0) throw new Error(`host runs did not complete: ${bad.map((p) => `#${p.issue} ${p.status} ${p.message}`).join('; ')}`);
    for (const n of numbers) progress.remove(progress.shepherdFile(n));
    return { peak, hwm: procKb(hostPid, 'VmHWM'), hostPid, parts: rssByMapping(smaps) };
  };

  // Time per issue, one after another: the host is warmed by one issue first (its start-up counted
  // apart); then each round runs one issue through the host, one `loom shepherd` process and the
  // bare git sequence, interleaved, so that the machine's load weighs on the three alike.
  const hostRoot = instantRepo({ executor: { kind: 'local', shepherds: 'host' } });
  const hostIssues = await createIssues(hostRoot, count + 1);
  let t = Date.now();
  const first = await throughHost(hostRoot, [hostIssues[0]]);
  const coldMs = Date.now() - t;
  const procRoot = instantRepo({});
  const procIssues = await createIssues(procRoot, count);
  const bare = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'loom-bench-git-')));
  const g = (cwd, ...a) => execFileSync('git', ['-c', 'user.name=b', '-c', 'user.email=b@b', ...a], { cwd, stdio: 'ignore' });
  g(bare, 'init', '-q', '-b', 'main');
  g(bare, 'commit', '-q', '--allow-empty', '-m', 'initial');
  const times = { host: [], proc: [], git: [] };
  for (let i = 0; i < count; i += 1) {
    t = Date.now();
    await throughHost(hostRoot, [hostIssues[i + 1]]);
    times.host.push(Date.now() - t);
    t = Date.now();
    const r = spawnSync(process.execPath, [bin, 'shepherd', String(procIssues[i]), '--force-merge'], { cwd: procRoot, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`shepherd ${procIssues[i]} failed: ${r.stdout}${r.stderr}`);
    times.proc.push(Date.now() - t);
    t = Date.now();
    const n = i + 1;
    bareGitIssue(g, bare, n);
    times.git.push(Date.now() - t);
  }
  const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const [hostMs, procMs, gitMs] = [mean(times.host), mean(times.proc), mean(times.git)];
  const sameHost = liveHost(loomPaths(hostRoot).host)?.pid === first.hostPid;
  console.log(`time per issue (instant agents, local tracker, one after another, ${count} rounds of host / process / bare git interleaved): shepherd host ${hostMs.toFixed(0)} ms (${(hostMs / gitMs).toFixed(1)}× bare git; its first issue, starting the host: ${coldMs} ms), loom shepherd processes ${procMs.toFixed(0)} ms (${(procMs / gitMs).toFixed(1)}×), bare git ${gitMs.toFixed(0)} ms (target ≤ 3×)${sameHost ? '' : ' [the host was replaced during the run]'}`);
  console.log(`  medians: host ${median(times.host)} ms, processes ${median(times.proc)} ms, bare git ${median(times.git)} ms (${(median(times.host) / median(times.git)).toFixed(1)}× and ${(median(times.proc) / median(times.git)).toFixed(1)}×)`);

  // Memory: k issues running at once (the builder sleeps 2 s so that they overlap).
  const rows = [];
  for (const k of atOnce) {
    const hRoot = instantRepo({ executor: { kind: 'local', shepherds: 'host' }, maxShepherds: k }, 2);
    const hIssues = await createIssues(hRoot, k);
    const h = await throughHost(hRoot, hIssues);
    const pRoot = instantRepo({ maxShepherds: k }, 2);
    const pIssues = await createIssues(pRoot, k);
    const children = pIssues.map((n) => spawn(process.execPath, [bin, 'shepherd', String(n), '--force-merge'], { cwd: pRoot, stdio: 'ignore' }));
    const exits = children.map((c) => new Promise((r) => c.on('exit', r)));
    let sum = 0;
    let pss = 0;
    let priv = 0;
    let done = false;
    Promise.all(exits).then(() => (done = true));
    for (let tick = 0; !done; tick += 1) {
      sum = Math.max(sum, children.reduce((acc, c) => acc + procKb(c.pid, 'VmRSS'), 0));
      // The kernel walks each process's page tables for these: every tenth sample.
      if (tick % 10 === 0) {
        const shares = children.map((c) => sharedOutKb(c.pid));
        pss = Math.max(pss, shares.reduce((acc, x) => acc + x.pss, 0));
        priv = Math.max(priv, shares.reduce((acc, x) => acc + x.private, 0));
      }
      await sleepMs(5);
    }
    rows.push({ k, host: h.peak, hostHwm: h.hwm, processes: sum, pss, priv, parts: h.parts });
    for (const r of [hRoot, pRoot]) {
      const host = liveHost(loomPaths(r).host);
      if (host !== null) process.kill(host.pid, 'SIGTERM');
    }
  }
  console.log('RSS of orchestration per running issue (peak RSS / issues running at once; target ≤ 45 MB):');
  for (const r of rows) {
    console.log(`  ${r.k} at once: shepherd host ${(r.host / 1024 / r.k).toFixed(1)} MB (host peak ${(r.host / 1024).toFixed(1)} MB, VmHWM ${(r.hostHwm / 1024).toFixed(1)} MB); loom shepherd processes ${(r.processes / 1024 / r.k).toFixed(1)} MB (sum of peaks ${(r.processes / 1024).toFixed(1)} MB); their PSS ${(r.pss / 1024 / r.k).toFixed(1)} MB per issue (shared pages counted once), private ${(r.priv / 1024 / r.k).toFixed(1)} MB per issue`);
    console.log(`    the host's peak RSS by mapping: ${r.parts.map(([name, kb]) => `${name} ${(kb / 1024).toFixed(1)}`).join(', ')} MB`);
  }
  const host = liveHost(loomPaths(hostRoot).host);
  if (host !== null) process.kill(host.pid, 'SIGTERM');
  await sleepMs(500);
  for (const r of [hostRoot, procRoot, bare]) fs.rmSync(r, { recursive: true, force: true });
}

async function dashboard() {
  const issues = Number(arg('issues', 10000));
  const root = repo({});
  const { LocalTracker } = await import(path.join(dist, 'tracker', 'local', 'local-tracker.js'));
  const { loomPaths } = await import(path.join(dist, 'config', 'paths.js'));
  const { BoardCollector } = await import(path.join(dist, 'status', 'board.js'));
  const paths = loomPaths(root);
  const tracker = new LocalTracker({ path: paths.trackerDb });
  const labels = ['loom:issue', 'loom:blocked', 'loom:architect', 'loom:issue', 'loom:curated'];
  for (let i = 0; i < issues; i += 1) await tracker.createIssue({ title: `Issue ${i}`, body: 'x'.repeat(200), labels: [labels[i % labels.length]] });
  // The board as the live loop rebuilds it: after a tracker write (read again), and after another
  // file changed (the tracker snapshot reused).
  const collector = new BoardCollector(paths);
  const changed = [];
  const unchanged = [];
  for (let i = 0; i < 11; i += 1) {
    await tracker.updateLabels(1 + (i % issues), { add: ['loom:urgent'] });
    let t = process.hrtime.bigint();
    await collector.board();
    changed.push(Number(process.hrtime.bigint() - t) / 1e6);
    t = process.hrtime.bigint();
    await collector.board();
    unchanged.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  tracker.dispose();
  const ms = (xs) => `median ${median(xs.slice(1)).toFixed(0)} ms, max ${Math.max(...xs.slice(1)).toFixed(0)} ms`;
  console.log(`dashboard board over ${issues} open issues (local tracker): after a tracker change ${ms(changed)}; tracker unchanged ${ms(unchanged)} (over ${changed.length - 1} rebuilds)`);
  // The `loom dashboard` process left alone with no daemon: what its 250 ms live loop costs.
  const child = spawn(process.execPath, [bin, 'dashboard', '--port', '0'], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (c) => (out += c));
  while (!/Dashboard: (http:\S+)/.test(out)) await new Promise((r) => setTimeout(r, 20));
  const url = /Dashboard: (http:\S+)/.exec(out)[1];
  const cpu = () => {
    const f = fs.readFileSync(`/proc/${child.pid}/stat`, 'utf8').slice(fs.readFileSync(`/proc/${child.pid}/stat`, 'utf8').lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) * 10; // utime + stime, clock ticks of 10 ms
  };
  await fetch(`${url}api/v1/board`);
  const seconds = Number(arg('seconds', 30));
  const c0 = cpu();
  const t0 = Date.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const used = cpu() - c0;
  const wall = Date.now() - t0;
  const board = await fetch(`${url}api/v1/board`);
  const size = (await board.text()).length;
  console.log(`dashboard process idle (no daemon, ${issues} issues): ${((used / wall) * 100).toFixed(1)}% of one core over ${(wall / 1000).toFixed(0)} s, RSS ${(rssKb(child.pid) / 1024).toFixed(1)} MB; /api/v1/board ${(size / 1024).toFixed(0)} KB`);
  child.kill('SIGINT');
  await new Promise((resolve) => child.on('exit', resolve));
  fs.rmSync(root, { recursive: true, force: true });
}

/**
 * Overlap avoidance: `--pairs` pairs of issues, each pair naming and rewriting the same line of the
 * same file (script agents), run by the real daemon (Judge approves, Champion merges, Doctor
 * rewrites the line again when sent back) with `overlap: allow`, then `overlap: wait`. Counts the
 * merge conflicts the Champion met, the Doctor rounds, and the issues merged or blocked.
 */
async function overlapRun(mode, pairs) {
  const fence = '```';
  const off = { enabled: false };
  const root = repo({ runtime: 'script', overlap: mode, maxShepherds: pairs * 2, pollInterval: '0.5s', heartbeatInterval: '0.2s', issueThreshold: 0, maxDoctorRounds: 3, roles: { architect: off, hermit: off, guide: off, curator: off, champion: { interval: '1s' }, judge: { interval: '1s' }, doctor: { interval: '1s' } } });
  for (let k = 1; k <= pairs; k += 1) fs.writeFileSync(path.join(root, `pair-${k}.txt`), 'original\n');
  execFileSync('git', ['add', '.'], { cwd: root });
  execFileSync('git', ['-c', 'user.name=b', '-c', 'user.email=b@b', 'commit', '-q', '-m', 'initial'], { cwd: root });
  const { LocalTracker } = await import(path.join(dist, 'tracker', 'local', 'local-tracker.js'));
  const tracker = new LocalTracker({ path: path.join(root, '.loom', 'tracker.db') });
  const edit = (role, file, n) => [`${fence}loom-script ${role}`, 'sleep 1', `write ${file} <<EOF`, `issue ${n}`, 'EOF', fence].join('\n');
  for (let k = 1; k <= pairs; k += 1)
    for (const side of ['a', 'b']) {
      const n = (k - 1) * 2 + (side === 'a' ? 1 : 2);
      await tracker.createIssue({ title: `pair ${k}${side}: rewrite pair-${k}.txt`, body: `Rewrite \`pair-${k}.txt\`.\n\n${edit('builder', `pair-${k}.txt`, n)}\n\n${edit('doctor', `pair-${k}.txt`, n)}`, labels: ['loom:issue'] });
    }
  const started = Date.now();
  const daemon = spawn(process.execPath, [bin, 'start'], { cwd: root, stdio: 'ignore' });
  const deadline = started + Number(arg('overlap-timeout', 300)) * 1000;
  let issues = [];
  for (;;) {
    issues = await tracker.listIssues({ state: 'all' });
    const settled = issues.every((i) => i.state === 'closed' || i.labels.includes('loom:blocked'));
    if (settled || Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  const seconds = (Date.now() - started) / 1000;
  fs.writeFileSync(path.join(root, '.loom', 'stop-daemon'), '');
  await new Promise((resolve) => daemon.on('exit', resolve));
  const prs = await tracker.listPullRequests({ state: 'all' });
  let conflicts = 0;
  let doctorRounds = 0;
  for (const item of [...prs.map((p) => p.number), ...issues.map((i) => i.number)])
    for (const c of await tracker.listComments(item)) {
      if (/not merged: .*(rebase|merge) cleanly/.test(c.body)) conflicts += 1;
      if (c.body.startsWith('**Loom Doctor')) doctorRounds += 1;
    }
  const merged = prs.filter((p) => p.state === 'merged').length;
  const blocked = issues.filter((i) => i.labels.includes('loom:blocked')).length;
  const open = issues.filter((i) => i.state === 'open' && !i.labels.includes('loom:blocked')).length;
  tracker.dispose();
  fs.rmSync(root, { recursive: true, force: true });
  return { mode, issues: pairs * 2, conflicts, doctorRounds, merged, blocked, open, seconds };
}

async function overlap() {
  const pairs = Number(arg('pairs', 4));
  for (const mode of ['allow', 'wait']) {
    const r = await overlapRun(mode, pairs);
    console.log(`overlap: ${r.mode.padEnd(5)} — ${r.issues} issues in ${pairs} colliding pairs: ${r.conflicts} merge conflicts, ${r.doctorRounds} doctor rounds, ${r.merged} merged, ${r.blocked} blocked, ${r.open} unfinished, ${r.seconds.toFixed(0)} s`);
  }
}

console.log(`loom bench — node ${process.version}, ${os.cpus().length} cpus, ${new Date().toISOString()}`);
if (!only || only === 'iteration') await iterationCost();
if (!only || only === 'pickup') await pickup();
if (!only || only === 'github') {
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(here, 'bench-github.ts')], { cwd: path.join(here, '..'), encoding: 'utf8' });
  process.stdout.write(r.stdout + r.stderr);
}
if (!only || only === 'github-issue') {
  // Whole lifecycles on GitHub: minutes per backlog size (--sizes 10,1000,10000 --merged 4).
  const passed = [...['sizes', 'merged', 'agent-seconds'].flatMap((n) => (arg(n, null) === null ? [] : [`--${n}`, arg(n, null)])), ...(process.argv.includes('--trace') ? ['--trace'] : [])];
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(here, 'bench-github-issue.ts'), ...passed], { cwd: path.join(here, '..'), encoding: 'utf8' });
  process.stdout.write(r.stdout + r.stderr);
}
if (!only || only === 'workers') {
  const extra = ['issues', 'sleep'].flatMap((name) => (only === 'workers' && arg(name, null) !== null ? [`--${name}`, String(arg(name, null))] : []));
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(here, 'bench-workers.ts'), ...extra], { cwd: path.join(here, '..'), encoding: 'utf8' });
  process.stdout.write(r.stdout + r.stderr);
}
if (!only || only === 'overhead') await overhead();
if (!only || only === 'host') await hostOverhead();
if (!only || only === 'memory') await parentMemory();
if (!only || only === 'dashboard') await dashboard();
if (!only || only === 'overlap') await overlap();
if (only === 'status') await statusCost();
if (!only || only === 'usage') await usageCost();
