// A `loom` process loads only what its command runs, and a shepherd on the local tracker spends
// few git processes (docs/BENCHMARKS.md: "Start-up", "Git processes per issue"): `loom --version`
// loads no Loom module beyond the command line; a local `loom shepherd` loads neither the daemon,
// the dashboard, the status reports, the queue (BullMQ, ioredis) nor the GitHub adapter, and merges an issue
// with at most 8 git processes; a local `loom iterate`, run every poll, and `loom status` load neither
// the queue, the dashboard nor the GitHub adapter.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Label } from '../../src/core/labels.js';
import type { TestRepo } from '../helpers/loom-repo.js';
import { LOOM_BIN, makeRepo } from '../helpers/loom-repo.js';

let repo: TestRepo | undefined;
const dirs: string[] = [];
afterEach(() => {
  repo?.cleanup();
  repo = undefined;
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

/** Runs loom with a module loader hook that logs every module it loads, and a `git` first on PATH that logs its calls. */
function traced(cwd: string, args: string[]): { code: number | null; output: string; modules: string[]; git: string[] } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'loom-trace-'));
  dirs.push(dir);
  const modules = path.join(dir, 'modules.log');
  const calls = path.join(dir, 'git.log');
  fs.writeFileSync(path.join(dir, 'hooks.mjs'), `import fs from 'node:fs';\nexport async function load(url, context, next) { fs.appendFileSync(${JSON.stringify(modules)}, url + '\\n'); return next(url, context); }\n`);
  fs.writeFileSync(path.join(dir, 'register.mjs'), `import { register } from 'node:module';\nregister(${JSON.stringify(`file://${path.join(dir, 'hooks.mjs')}`)});\n`);
  const realGit = execFileSync('sh', ['-c', 'command -v git'], { encoding: 'utf8' }).trim();
  const bin = path.join(dir, 'bin');
  fs.mkdirSync(bin);
  fs.writeFileSync(path.join(bin, 'git'), `#!/bin/sh\nprintf 'CALL %s\\n' "$*" >> '${calls}'\nexec '${realGit}' "$@"\n`, { mode: 0o755 });
  const r = spawnSync(process.execPath, ['--import', path.join(dir, 'register.mjs'), LOOM_BIN, ...args], { cwd, encoding: 'utf8', env: { ...process.env, PATH: `${bin}:${process.env.PATH}` }, timeout: 60_000 });
  const read = (file: string) => (fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '');
  // A git call's arguments may span lines (a commit message): each call starts with `CALL `.
  const gitCalls = read(calls).split(/^CALL /m).filter(Boolean).map((c) => c.trim().replace(/\n/g, ' '));
  return { code: r.status, output: r.stdout + r.stderr, modules: read(modules).split('\n').filter(Boolean), git: gitCalls };
}

/** Modules a command that does not need them must not load. */
const HEAVY = /node_modules\/(bullmq|ioredis|prom-client)\/|dist\/(daemon|dashboard|status|queue|worker|roles|demo|setup|tracker\/github)\//;

describe('a light loom process', () => {
  it('loom --version loads the command line and nothing it does not run', () => {
    repo = makeRepo();
    const run = traced(repo.root, ['--version']);
    expect(run.output.trim()).toBe('0.1.0');
    expect(run.modules.filter((m) => HEAVY.test(m) || /dist\/(shepherd|steps|runtimes|tracker\/(local|github))\//.test(m))).toEqual([]);
    expect(run.modules.filter((m) => m.includes('node_modules/')).map((m) => m.split('node_modules/')[1]?.split('/')[0])).toEqual(['commander', 'commander']);
    expect(run.git).toEqual([]);
  });

  it('a local loom shepherd merges its issue loading neither the daemon, the dashboard, the queue nor the GitHub adapter, with at most 8 git processes', async () => {
    const command = (role: string) => (role === 'builder' ? 'echo "$LOOM_ISSUE" > "issue-$LOOM_ISSUE.txt"' : role === 'judge' ? 'echo "VERDICT: APPROVE"' : 'true');
    repo = makeRepo({ runtime: 'command', roles: Object.fromEntries(['builder', 'judge', 'doctor', 'curator', 'architect', 'hermit', 'guide'].map((role) => [role, { command: command(role) }])) });
    const issue = await repo.tracker().createIssue({ title: 'one file', labels: [Label.issue] });
    const run = traced(repo.root, ['shepherd', String(issue.number), '--force-merge']);
    expect(run.code, run.output).toBe(0);
    expect((await repo.tracker().getIssue(issue.number))?.state).toBe('closed');
    expect(fs.readFileSync(path.join(repo.root, `issue-${issue.number}.txt`), 'utf8').trim()).toBe(String(issue.number));
    expect(run.modules.filter((m) => HEAVY.test(m) || m.includes('/github/'))).toEqual([]);
    expect(run.git.length, run.git.join('\n')).toBeLessThanOrEqual(8);
  });

  it('a local loom iterate (run every poll) and loom status load neither the queue (BullMQ, ioredis), the dashboard nor the GitHub adapter', async () => {
    repo = makeRepo();
    await repo.tracker().createIssue({ title: 'waits', labels: [Label.issue] });
    for (const args of [['iterate'], ['status'], ['status', '--json']]) {
      const run = traced(repo.root, args);
      expect(run.code, run.output).toBe(0);
      expect(run.modules.filter((m) => /node_modules\/(bullmq|ioredis|prom-client)\/|dist\/(dashboard|queue\/shepherd-queue|worker|demo|tracker\/github)\//.test(m)), args.join(' ')).toEqual([]);
    }
  });
});
