// The bubblewrap sandbox around an agent run (src/runtimes/sandbox.ts), with the real `bwrap`
// against a real repository with a linked worktree: what the agent can reach, with and without
// the sandbox, what it may write, its network, and how the sandbox ends.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { defaultConfig } from '../../src/core/config-model.js';
import { bwrapProblem, bwrapStatus, findBwrap } from '../../src/process/sandbox-probe.js';
import { CommandRuntime } from '../../src/runtimes/command-runtime.js';
import { createRuntime, RuntimeConfigError } from '../../src/runtimes/create-runtime.js';
import type { RunContext, RunResult } from '../../src/runtimes/runtime.js';
import { sandboxMounts } from '../../src/runtimes/sandbox.js';
import type { RunSandbox } from '../../src/runtimes/sandbox.js';
import { ScriptRuntime } from '../../src/runtimes/script-runtime.js';
import { fakeHome, probeRepo, probeReport, SANDBOXED, UNSANDBOXED } from '../helpers/sandbox-probe.js';
import { groupHasLiveMembers } from './process-group.js';

const fence = '```';
let scratch: string;
let root: string;
let worktree: string;
let home: string;
let savedHome: string | undefined;

const git = (cwd: string, ...args: string[]) => execFileSync('git', args, { cwd, encoding: 'utf8' }).trim();

beforeEach(() => {
  scratch = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'loom-sandbox-')));
  ({ repoRoot: root, worktree } = probeRepo(scratch));
  home = fakeHome();
  savedHome = process.env.HOME;
  process.env.HOME = home;
});

afterEach(() => {
  if (savedHome === undefined) delete process.env.HOME;
  else process.env.HOME = savedHome;
  fs.rmSync(scratch, { recursive: true, force: true });
  fs.rmSync(home, { recursive: true, force: true });
});

const bwrap = (overrides: Partial<RunSandbox> = {}): RunSandbox => ({ type: 'bwrap', network: true, hide: [], repoRoot: root, ...overrides });

function context(overrides: Partial<RunContext> = {}): RunContext {
  return { role: 'builder', prompt: 'Probe.', cwd: worktree, vars: { repo_root: root }, instructions: 'An issue.', attempt: 1, stallTimeout: 20_000, timeout: 30_000, ...overrides };
}

async function command(line: string, overrides: Partial<RunContext> = {}): Promise<RunResult & { pid: number | undefined }> {
  let pid: number | undefined;
  const result = await new CommandRuntime({ command: line }).run(context({ onStart: (p) => (pid = p), ...overrides }));
  return { ...result, pid };
}

describe('a command agent in the bubblewrap sandbox', () => {
  it('has bubblewrap here (the test command installs it)', () => {
    expect(findBwrap()).not.toBeNull();
    expect(bwrapStatus()).toMatchObject({ ok: true, version: expect.stringMatching(/^bubblewrap /) });
  });

  it("cannot read the user's home, .loom/, another worktree or the main checkout, nor write outside its worktree; it commits in its worktree", async () => {
    const run = await command('sh probe.sh', { sandbox: bwrap() });
    expect(run.outcome, run.output).toBe('success');
    expect(probeReport(run.output)).toEqual(SANDBOXED);
    // Seen from outside: the commit is on the branch, with the user's git identity; nothing was written elsewhere.
    expect(git(root, 'log', '-1', '--format=%an <%ae> %s', 'loom/issue-1')).toBe('Sandbox Probe <probe@localhost> Probe commit');
    const { commit: _commit, probe: _probe, ...checks } = SANDBOXED;
    expect(probeReport(git(root, 'show', 'loom/issue-1:PROBE.txt'))).toEqual(checks);
    expect(fs.existsSync(path.join(root, 'OUTSIDE.txt'))).toBe(false);
    expect(fs.existsSync(path.join(root, '.git', 'hooks', 'post-commit'))).toBe(false);
  });

  it('with sandbox "none" the same probe reaches all of it (so the test above can fail)', async () => {
    for (const sandbox of [undefined, bwrap({ type: 'none' })]) {
      git(worktree, 'reset', '-q', '--hard', 'main');
      const run = await command('sh probe.sh', sandbox === undefined ? {} : { sandbox });
      expect(run.outcome, run.output).toBe('success');
      expect(probeReport(run.output)).toEqual(UNSANDBOXED);
      expect(fs.readFileSync(path.join(root, 'OUTSIDE.txt'), 'utf8')).toBe('probe\n');
      fs.rmSync(path.join(root, 'OUTSIDE.txt'));
      fs.rmSync(path.join(root, '.git', 'hooks', 'post-commit'));
    }
  });

  it('cannot redirect or reconfigure the git commands Loom runs in the worktree after it', async () => {
    const before = fs.readFileSync(path.join(worktree, '.git'), 'utf8');
    // A repository without a hooks directory: the agent must not be able to make one.
    fs.rmSync(path.join(root, '.git', 'hooks'), { recursive: true, force: true });
    const run = await command(
      [
        '(echo "gitdir: /tmp/evil" > .git) 2>/dev/null && echo "link: changed" || echo "link: kept"',
        'git config core.hooksPath /tmp 2>/dev/null && echo "config: changed" || echo "config: kept"',
        `(echo /tmp > "$(git rev-parse --git-dir)/commondir") 2>/dev/null && echo "commondir: changed" || echo "commondir: kept"`,
        `(printf '[core]\\n\\tfsmonitor = touch /tmp/pwned\\n' >> "$(git rev-parse --git-dir)/config.worktree") 2>/dev/null && echo "worktree config: changed" || echo "worktree config: kept"`,
        `(mkdir -p "$(git rev-parse --git-common-dir)/hooks" && printf '#!/bin/sh\\ntouch /tmp/pwned\\n' > "$(git rev-parse --git-common-dir)/hooks/post-commit") 2>/dev/null && echo "hooks: changed" || echo "hooks: kept"`,
        `ls "$(git rev-parse --git-common-dir)/worktrees"`,
      ].join('; '),
      { sandbox: bwrap() },
    );
    expect(run.outcome, run.output).toBe('success');
    expect(run.output).toContain('link: kept');
    expect(run.output).toContain('config: kept');
    expect(run.output).toContain('commondir: kept');
    expect(run.output).toContain('worktree config: kept');
    expect(run.output).toContain('hooks: kept');
    expect(fs.readdirSync(path.join(root, '.git', 'hooks'))).toEqual([]);
    expect(fs.readFileSync(path.join(root, '.git', 'worktrees', 'issue-1', 'config.worktree'), 'utf8')).toBe('');
    // Only its own worktree's metadata is there; issue-9's is not.
    expect(run.output.trim().split('\n').at(-1)).toBe('issue-1');
    expect(fs.readFileSync(path.join(worktree, '.git'), 'utf8')).toBe(before);
    expect(fs.readFileSync(path.join(root, '.git', 'config'), 'utf8')).not.toContain('hooksPath');
    expect(fs.readFileSync(path.join(root, '.git', 'worktrees', 'issue-1', 'commondir'), 'utf8').trim()).toBe('../..');
  });

  it('in the repository itself (architect, hermit, guide, curator) reads the code but writes nothing, and sees no .loom/', async () => {
    const run = await command(
      'cat README.md; (echo x > NEW.txt) 2>/dev/null && echo "write: done" || echo "write: refused"; ls -A .loom 2>/dev/null | wc -l; git log --format=%s -1',
      { cwd: root, sandbox: bwrap() },
    );
    expect(run.outcome, run.output).toBe('success');
    expect(run.output.trim().split('\n')).toEqual(['# the main checkout', 'write: refused', '0', 'initial']);
    expect(fs.existsSync(path.join(root, 'NEW.txt'))).toBe(false);
  });

  it('hides what sandbox.hide names: relative to the worktree, absolute, and under ~/', async () => {
    fs.writeFileSync(path.join(worktree, '.env'), 'API_KEY=hunter2\n');
    fs.mkdirSync(path.join(worktree, 'secrets'));
    fs.writeFileSync(path.join(worktree, 'secrets', 'key.pem'), 'PRIVATE\n');
    fs.writeFileSync(path.join(worktree, 'notes.txt'), 'hidden by an absolute path\n');
    fs.writeFileSync(path.join(worktree, 'kept.txt'), 'still here\n');
    const read = 'for f in .env secrets/key.pem notes.txt kept.txt; do if grep -q . "$f" 2>/dev/null; then echo "$f: seen"; else echo "$f: hidden"; fi; done';
    const run = await command(read, { sandbox: bwrap({ hide: ['.env', 'secrets', path.join(worktree, 'notes.txt'), '~/.ssh', '~/nothing-there'] }) });
    expect(run.outcome, run.output).toBe('success');
    expect(run.output.trim().split('\n')).toEqual(['.env: hidden', 'secrets/key.pem: hidden', 'notes.txt: hidden', 'kept.txt: seen']);
    // Hidden from the agent, not touched on disk.
    expect(fs.readFileSync(path.join(worktree, '.env'), 'utf8')).toBe('API_KEY=hunter2\n');
    expect(fs.readFileSync(path.join(worktree, 'secrets', 'key.pem'), 'utf8')).toBe('PRIVATE\n');
  });

  it('keeps the network by default (a model API on 127.0.0.1 answers); network: false leaves it none', async () => {
    const server = http.createServer((_req, res) => res.end('model api'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const port = (server.address() as AddressInfo).port;
      const fetch = `node -e 'fetch("http://127.0.0.1:${port}/").then(async (r) => console.log("net: " + (await r.text())), (e) => console.log("net: " + (e.cause?.code ?? e.message)))'`;
      const on = await command(fetch, { sandbox: bwrap() });
      expect(on.output.trim()).toBe('net: model api');
      const off = await command(fetch, { sandbox: bwrap({ network: false }) });
      expect(off.output.trim()).toBe('net: ECONNREFUSED');
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('sees no other process (not Loom, whose environment holds the tracker token) and holds no capabilities, even as root', async () => {
    const run = await command(`test -e /proc/${process.pid} && echo "loom: seen" || echo "loom: hidden"; grep CapEff /proc/self/status; umount /tmp 2>/dev/null && echo "umount: done" || echo "umount: refused"`, { sandbox: bwrap() });
    expect(run.output).toContain('loom: hidden');
    expect(run.output).toMatch(/^CapEff:\s+0+$/m);
    expect(run.output).toContain('umount: refused');
  });

  it('is ended whole on timeout: no process of the sandbox outlives the run', async () => {
    const run = await command('sleep 300 & sleep 300 & echo started; wait', { sandbox: bwrap(), timeout: 1_500 });
    expect(run.outcome).toBe('timeout');
    expect(run.pid).toBeDefined();
    expect(groupHasLiveMembers(run.pid ?? 0)).toBe(false);
    expect(execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' })).not.toMatch(new RegExp(`bwrap .*${root.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
  });
});

describe('the script agent in the bubblewrap sandbox', () => {
  it('follows its steps and commits in the worktree', async () => {
    const instructions = [`${fence}loom-script builder`, 'write hello.txt <<EOF', 'hello from the sandbox', 'EOF', 'commit Add hello.txt', fence].join('\n');
    const result = await new ScriptRuntime().run(context({ instructions, sandbox: bwrap() }));
    expect(result.outcome, result.output).toBe('success');
    expect(git(root, 'log', '-1', '--format=%s', 'loom/issue-1')).toBe('Add hello.txt');
    expect(git(root, 'show', 'loom/issue-1:hello.txt')).toBe('hello from the sandbox');
  });
});

describe('the mounts of a run', () => {
  it('hide the homes, temp dirs and the main checkout first, then show the worktree and its git data, with the git config and hooks read-only', () => {
    const taskHome = path.join(root, '.loom', 'agent-homes', 'issue-1', 'claude');
    fs.mkdirSync(taskHome, { recursive: true });
    const mounts = sandboxMounts({ sandbox: bwrap({ hide: ['.env-missing', '~/.ssh'] }), cwd: worktree, env: { HOME: home, PATH: '/usr/bin:/bin' }, homes: [taskHome] });
    const at = (kind: string, p: string) => mounts.findIndex((m) => m.kind === kind && m.path === p);
    const common = path.join(root, '.git');
    for (const [kind, p] of [
      ['tmpfs', '/tmp'],
      ['tmpfs', home],
      ['tmpfs', root],
      ['tmpfs', path.join(root, '.loom')],
      ['rw', worktree],
      ['ro', path.join(worktree, '.git')],
      ['rw', common],
      ['ro', path.join(common, 'config')],
      ['ro', path.join(common, 'hooks')],
      ['ro', path.join(common, 'HEAD')],
      ['tmpfs', path.join(common, 'worktrees')],
      ['rw', path.join(common, 'worktrees', 'issue-1')],
      ['ro', path.join(common, 'worktrees', 'issue-1', 'commondir')],
      ['ro', path.join(common, 'worktrees', 'issue-1', 'gitdir')],
      ['rw', taskHome],
      ['tmpfs', path.join(home, '.ssh')],
    ] as const)
      expect(at(kind, p), `${kind} ${p}`).toBeGreaterThanOrEqual(0);
    // Parents before children: what is shown inside a hidden directory stays shown.
    expect(at('tmpfs', root)).toBeLessThan(at('tmpfs', path.join(root, '.loom')));
    expect(at('tmpfs', path.join(root, '.loom'))).toBeLessThan(at('rw', worktree));
    expect(at('rw', common)).toBeLessThan(at('ro', path.join(common, 'config')));
    expect(at('tmpfs', path.join(common, 'worktrees'))).toBeLessThan(at('rw', path.join(common, 'worktrees', 'issue-1')));
    // The home and the temp dirs are writable scratch; the main checkout's hiding place is not.
    expect(mounts[at('tmpfs', home)]?.writable).toBe(true);
    expect(mounts[at('tmpfs', '/tmp')]?.writable).toBe(true);
    expect(mounts[at('tmpfs', root)]?.writable).toBe(false);
    // Nothing of another worktree, and no mount for a hidden path that does not exist.
    expect(mounts.some((m) => m.path.includes('issue-9'))).toBe(false);
    expect(mounts.some((m) => m.path.endsWith('.env-missing'))).toBe(false);
  });

  it('show read-only the PATH directories in a hidden place, and what their links point to, but never a whole home', () => {
    const tools = path.join(home, '.local', 'bin');
    const pkg = path.join(home, '.nvm', 'lib', 'node_modules', 'some-cli', 'bin');
    fs.mkdirSync(tools, { recursive: true });
    fs.mkdirSync(pkg, { recursive: true });
    fs.writeFileSync(path.join(pkg, 'cli.js'), '#!/usr/bin/env node\n', { mode: 0o755 });
    fs.symlinkSync(path.join(pkg, 'cli.js'), path.join(tools, 'some-cli'));
    const mounts = sandboxMounts({ sandbox: bwrap(), cwd: worktree, env: { HOME: home, PATH: `${tools}:${home}:/usr/bin` } });
    expect(mounts).toContainEqual({ kind: 'ro', path: tools });
    expect(mounts).toContainEqual({ kind: 'ro', path: path.join(home, '.nvm', 'lib', 'node_modules') });
    expect(mounts.some((m) => m.kind === 'ro' && m.path === home)).toBe(false);
  });

  it('of a role in the repository itself show it read-only, without .loom/', () => {
    const mounts = sandboxMounts({ sandbox: bwrap(), cwd: root, env: { HOME: home, PATH: '/usr/bin' } });
    expect(mounts).toContainEqual({ kind: 'ro', path: root });
    expect(mounts.findIndex((m) => m.kind === 'ro' && m.path === root)).toBeLessThan(mounts.findIndex((m) => m.kind === 'tmpfs' && m.path === path.join(root, '.loom')));
    expect(mounts.some((m) => m.kind === 'rw' && isUnderPath(m.path, root))).toBe(false);
  });
});

function isUnderPath(p: string, parent: string): boolean {
  const relative = path.relative(parent, p);
  return relative === '' || (!relative.startsWith('..') && !path.isAbsolute(relative));
}

describe('bubblewrap missing or refused', () => {
  let bin: string;
  let savedPath: string | undefined;
  beforeEach(() => {
    bin = fs.mkdtempSync(path.join(os.tmpdir(), 'loom-fake-bin-'));
    savedPath = process.env.PATH;
  });
  afterEach(() => {
    process.env.PATH = savedPath;
    fs.rmSync(bin, { recursive: true, force: true });
  });

  it('not on PATH: "missing", and the message says to install it or set "none"', () => {
    const status = bwrapStatus({ PATH: bin });
    expect(status).toEqual({ ok: false, kind: 'missing', path: null, detail: 'no `bwrap` on PATH' });
    if (status.ok) return;
    const line = bwrapProblem(status);
    expect(line).not.toContain('\n');
    expect(line).toMatch(/bubblewrap is not installed.*apt-get install bubblewrap.*"sandbox": "none"/);
  });

  it('refused by the kernel: "refused" with what bubblewrap said, and the message says what to do', () => {
    // bubblewrap's own message where user namespaces are off (kernel.unprivileged_userns_clone=0).
    fs.writeFileSync(path.join(bin, 'bwrap'), '#!/bin/sh\necho "bwrap: No permissions to creating new namespace, likely because the kernel does not allow non-privileged user namespaces." >&2\nexit 1\n', { mode: 0o755 });
    const status = bwrapStatus({ PATH: `${bin}:/usr/bin:/bin` });
    expect(status).toMatchObject({ ok: false, kind: 'refused', path: path.join(bin, 'bwrap'), detail: expect.stringContaining('does not allow non-privileged user namespaces') });
    if (status.ok) return;
    expect(bwrapProblem(status)).toMatch(/cannot create a sandbox here \(bwrap: No permissions.*\).*unprivileged_userns_clone=1.*"sandbox": "none"/);
  });

  it('a role sandboxed with bubblewrap gets no runtime, so no run starts; with "none" it runs', () => {
    process.env.PATH = bin;
    const role = { ...defaultConfig().roles.builder, runtime: 'command' as const, command: 'true' };
    expect(() => createRuntime('builder', { ...role, sandbox: { type: 'bwrap', network: true, hide: [] } })).toThrow(RuntimeConfigError);
    expect(() => createRuntime('builder', { ...role, sandbox: { type: 'bwrap', network: true, hide: [] } })).toThrow(/^role builder: sandbox "bwrap": bubblewrap is not installed/);
    expect(createRuntime('builder', role).name).toBe('command');
  });
});
