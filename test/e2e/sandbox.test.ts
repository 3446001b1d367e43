// The sandbox through the `loom` binary: a shepherd whose agents run in bubblewrap (a command
// agent, the real Claude Code and Codex CLIs against fake model APIs) reads nothing of the user's
// or Loom's and its commit is merged; with "none" the same probe reads it all; bubblewrap missing
// means no run and one line; `loom init` picks the default; `loom doctor` and `loom status` say
// whether agents are sandboxed.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Label } from '../../src/core/labels.js';
import { codexHome } from '../../src/runtimes/codex-home.js';
import { FakeAnthropicServer } from '../fakes/anthropic-server.js';
import { startFakeOpenAIServer } from '../fakes/openai-server.js';
import type { TestRepo } from '../helpers/loom-repo.js';
import { fingerprint, LOOM_BIN, loom, loomAsync, makeRepo } from '../helpers/loom-repo.js';
import { fakeHome, plantLoomSecrets, PROBE_SCRIPT, probeReport, SANDBOXED, UNSANDBOXED } from '../helpers/sandbox-probe.js';

let repo: TestRepo | undefined;
const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
  repo?.cleanup();
  repo = undefined;
});

const git = (cwd: string, ...args: string[]) => spawnSync('git', args, { cwd, encoding: 'utf8' }).stdout.trim();
const bin = (name: string) => path.resolve('node_modules/.bin', name);

function home(): string {
  const dir = fakeHome();
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A PATH with git, sh and node but no bubblewrap. */
function pathWithoutBwrap(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'loom-no-bwrap-'));
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  for (const tool of ['git', 'sh', 'node']) fs.symlinkSync(execFileSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).trim(), path.join(dir, tool));
  return dir;
}

/** A repository with the probe committed as `scripts/probe.sh`, issue #1 to build, and Loom's private files planted. */
async function probeRepo(config: Record<string, unknown>): Promise<TestRepo> {
  const r = makeRepo(config);
  fs.mkdirSync(path.join(r.root, 'scripts'));
  fs.writeFileSync(path.join(r.root, 'scripts', 'probe.sh'), PROBE_SCRIPT);
  git(r.root, 'add', 'scripts/probe.sh');
  git(r.root, '-c', 'user.name=Tests', '-c', 'user.email=tests@localhost', 'commit', '-qm', 'Add the probe');
  plantLoomSecrets(r.root);
  await r.tracker().createIssue({ title: 'Probe the sandbox', body: 'Run scripts/probe.sh.', labels: [Label.issue] });
  return r;
}

/** The reads and writes the probe reported in the PROBE.txt it committed, as merged into main. */
function mergedReport(root: string): Record<string, string> {
  return probeReport(git(root, 'show', 'main:PROBE.txt'));
}

const { commit: _commit, probe: _probe, ...SANDBOXED_CHECKS } = SANDBOXED;
const { commit: _c, probe: _p, ...UNSANDBOXED_CHECKS } = UNSANDBOXED;

describe('a shepherd with a command agent', () => {
  it('in the bubblewrap sandbox: the agent reaches nothing of the home, .loom/ or another worktree, writes nothing outside its worktree, and its commit is merged', async () => {
    repo = await probeRepo({ sandbox: 'bwrap', roles: { builder: { command: 'sh scripts/probe.sh' }, judge: { runtime: 'script' }, doctor: { runtime: 'script' } } });
    const r = await loomAsync(repo.root, ['shepherd', '1', '--force-merge'], { HOME: home() });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(probeReport(r.stdout)).toEqual(SANDBOXED);
    expect(mergedReport(repo.root)).toEqual(SANDBOXED_CHECKS);
    expect(git(repo.root, 'log', '--format=%an: %s', 'main')).toMatch(/^Sandbox Probe: Probe commit$/m);
    expect((await repo.tracker().getIssue(1))!.state).toBe('closed');
    expect(fs.existsSync(path.join(repo.root, 'OUTSIDE.txt'))).toBe(false);
    expect(fs.existsSync(path.join(repo.root, '.git', 'hooks', 'post-commit'))).toBe(false);
  });

  it('with sandbox "none": the same probe reaches all of it', async () => {
    repo = await probeRepo({ sandbox: 'none', roles: { builder: { command: 'sh scripts/probe.sh' }, judge: { runtime: 'script' }, doctor: { runtime: 'script' } } });
    const r = await loomAsync(repo.root, ['shepherd', '1', '--force-merge'], { HOME: home() });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(probeReport(r.stdout)).toEqual(UNSANDBOXED);
    expect(mergedReport(repo.root)).toEqual(UNSANDBOXED_CHECKS);
    expect(fs.readFileSync(path.join(repo.root, 'OUTSIDE.txt'), 'utf8')).toBe('probe\n');
  });

  it("a command agent that is a script of the main checkout (not committed) still runs: the sandbox shows that file, and nothing else of the checkout", async () => {
    repo = await probeRepo({ sandbox: 'bwrap', roles: { builder: { command: './agent.sh --fast' }, judge: { runtime: 'script' }, doctor: { runtime: 'script' } } });
    fs.writeFileSync(
      path.join(repo.root, 'agent.sh'),
      '#!/bin/sh\ntest -e "$LOOM_REPO_ROOT/README.md" && echo "main-checkout: seen" || echo "main-checkout: hidden"\necho "args: $*"\nprintf \'built\\n\' > built.txt && git add built.txt && git commit -qm Build\n',
      { mode: 0o755 },
    );
    const r = await loomAsync(repo.root, ['shepherd', '1', '--force-merge'], { HOME: home() });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain('main-checkout: hidden');
    expect(r.stdout).toContain('args: --fast');
    expect(git(repo.root, 'show', 'main:built.txt')).toBe('built');
  });

  it('bubblewrap missing: `loom start` and `loom spawn` refuse in one line, exit 2, and change nothing', async () => {
    repo = await probeRepo({ sandbox: 'bwrap', roles: { builder: { command: 'sh scripts/probe.sh' }, judge: { runtime: 'script' }, doctor: { runtime: 'script' } } });
    const env = { HOME: home(), PATH: pathWithoutBwrap() };
    const before = fingerprint(repo.paths.dir);
    for (const args of [['start'], ['start', '--detach'], ['spawn', '1']]) {
      const r = loom(repo.root, args, env);
      expect(r.code, `${args.join(' ')}: ${r.stdout}${r.stderr}`).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(/cannot start: roles builder, judge, doctor: sandbox "bwrap": bubblewrap is not installed .*"sandbox": "none"/);
    }
    expect(fingerprint(repo.paths.dir)).toEqual(before);
    expect((await repo.tracker().getIssue(1))!.labels).toEqual([Label.issue]);
  });

  it('bubblewrap missing: a shepherd started by hand runs no agent, and the issue is blocked with one line saying what to do', async () => {
    repo = await probeRepo({ sandbox: 'bwrap', roles: { builder: { command: 'sh scripts/probe.sh' }, judge: { runtime: 'script' }, doctor: { runtime: 'script' } } });
    const r = await loomAsync(repo.root, ['shepherd', '1'], { HOME: home(), PATH: pathWithoutBwrap() });
    expect(r.code, r.stdout + r.stderr).toBe(5);
    expect(r.stdout).not.toMatch(/gh-token:/);
    expect(git(repo.root, 'log', '--format=%s', 'loom/issue-1')).not.toContain('Probe commit');
    const tracker = repo.tracker();
    expect((await tracker.getIssue(1))!.labels).toContain(Label.blocked);
    const comment = (await tracker.listComments(1)).at(-1)!.body;
    expect(comment).toMatch(/role builder: sandbox "bwrap": bubblewrap is not installed \(no `bwrap` on PATH\); install it \(Debian\/Ubuntu: `sudo apt-get install bubblewrap`.*\), or set "sandbox": "none" in \.loom\/config\.json/);
  });
});

describe('the real agent CLIs in the sandbox, through a whole shepherd', () => {
  it('Claude Code: its Bash tool reaches nothing of the home or .loom/, its commit merges, and the judge approves', async () => {
    const server = await FakeAnthropicServer.start([
      { tool: 'Bash', input: { command: 'sh scripts/probe.sh', description: 'probe' } },
      { text: 'Probed and committed.' },
      { text: 'The probe ran.\n\nVERDICT: APPROVE' },
    ]);
    cleanups.push(() => server.close());
    repo = await probeRepo({ sandbox: 'bwrap', roles: { builder: { runtime: 'claude' }, judge: { runtime: 'claude' }, doctor: { runtime: 'claude' } } });
    const env = { PATH: `${path.dirname(bin('claude'))}:${process.env.PATH ?? ''}`, HOME: home(), ANTHROPIC_BASE_URL: server.url, ANTHROPIC_API_KEY: 'test-key' };
    const r = await loomAsync(repo.root, ['shepherd', '1', '--force-merge'], env);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(mergedReport(repo.root)).toEqual(SANDBOXED_CHECKS);
    expect(git(repo.root, 'log', '--format=%an: %s', 'main')).toMatch(/^Sandbox Probe: Probe commit$/m);
    expect((await repo.tracker().getIssue(1))!.state).toBe('closed');
    // What the CLI sent back to the model as the tool's output is the same report.
    expect(JSON.stringify(server.requests)).toContain('gh-token: hidden');
  });

  it('Codex (its own sandbox off inside Loom\'s): the same, and its own commit succeeds', async () => {
    const server = await startFakeOpenAIServer([
      { kind: 'shell', cmd: 'sh scripts/probe.sh' },
      { kind: 'text', text: 'Probed and committed.' },
      { kind: 'text', text: 'The probe ran.\n\nVERDICT: APPROVE' },
    ]);
    cleanups.push(() => server.close());
    repo = await probeRepo({ sandbox: 'bwrap', roles: { builder: { runtime: 'codex' }, judge: { runtime: 'codex' }, doctor: { runtime: 'codex' } } });
    const userHome = home();
    fs.mkdirSync(path.join(userHome, '.codex'));
    fs.writeFileSync(path.join(userHome, '.codex', 'config.toml'), server.codexConfig());
    const env = { PATH: `${path.dirname(bin('codex'))}:${process.env.PATH ?? ''}`, HOME: userHome, CODEX_API_KEY: 'sk-test' };
    const root = repo.root;
    cleanups.push(() => fs.rmSync(codexHome(path.join(root, '.loom', 'agent-homes', 'issue-1', 'codex'), env), { recursive: true, force: true }));
    const r = await loomAsync(repo.root, ['shepherd', '1', '--force-merge'], env);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(mergedReport(repo.root)).toEqual(SANDBOXED_CHECKS);
    // The agent's own commit (under workspace-write it would fail and Loom would commit for it).
    expect(git(repo.root, 'log', '--format=%an: %s', 'main')).toMatch(/^Sandbox Probe: Probe commit$/m);
    expect(git(repo.root, 'log', '--format=%B', 'main')).not.toMatch(/left uncommitted, committed by Loom/);
    expect((await repo.tracker().getIssue(1))!.state).toBe('closed');
  });
});

describe('the default, and what doctor and status say', () => {
  function freshRepo(): string {
    const root = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'loom-init-sandbox-')));
    cleanups.push(() => fs.rmSync(root, { recursive: true, force: true }));
    execFileSync('git', ['init', '-q', '-b', 'main', root]);
    return root;
  }

  it('`loom init` writes "sandbox": "bwrap" where bubblewrap works, "none" (and says so) where it is missing', () => {
    const withBwrap = freshRepo();
    const r = loom(withBwrap, ['init']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(fs.readFileSync(path.join(withBwrap, '.loom', 'config.json'), 'utf8')).sandbox).toBe('bwrap');
    expect(r.stdout).toContain('Agents will run in a bubblewrap sandbox');

    const without = freshRepo();
    const s = spawnSync(process.execPath, [LOOM_BIN, 'init'], { cwd: without, encoding: 'utf8', env: { ...process.env, PATH: pathWithoutBwrap() } });
    expect(s.status, s.stderr).toBe(0);
    expect(JSON.parse(fs.readFileSync(path.join(without, '.loom', 'config.json'), 'utf8')).sandbox).toBe('none');
    expect(s.stdout).toContain('Agents will NOT be sandboxed ("sandbox": "none"): bubblewrap is not installed');
  });

  it('doctor and status say which roles run sandboxed, that agents are not sandboxed with "none", and the problem when bubblewrap cannot run', () => {
    repo = makeRepo({ runtime: 'script', sandbox: 'bwrap', roles: { architect: { sandbox: 'none' } } });
    const doctor = JSON.parse(loom(repo.root, ['doctor', '--json']).stdout);
    expect(doctor.sandbox).toMatchObject({ bwrap: { ok: true }, unsandboxed: ['architect'] });
    expect(doctor.sandbox.sandboxed).toEqual(expect.arrayContaining(['builder', 'judge', 'doctor']));
    expect(doctor.sandbox.text).toMatch(/^agents are NOT sandboxed \(architect\)/);
    const status = JSON.parse(loom(repo.root, ['status', '--json']).stdout);
    expect(status.sandbox).toMatchObject({ unsandboxed: ['architect'], bwrap: 'works' });
    expect(loom(repo.root, ['status']).stdout).toMatch(/Sandbox: agents are NOT sandboxed \(architect\)/);

    repo.writeConfig({ runtime: 'script', sandbox: 'bwrap' });
    expect(loom(repo.root, ['status']).stdout).toMatch(/Sandbox: agents run in bubblewrap \(bubblewrap [\d.]+\): each sees only its worktree/);
    expect(loom(repo.root, ['doctor']).stdout).toMatch(/Sandbox: bubblewrap [\d.]+ at \S+bwrap\n {2}agents run in bubblewrap/);

    const noBwrap = { PATH: pathWithoutBwrap() };
    const broken = JSON.parse(loom(repo.root, ['doctor', '--json'], noBwrap).stdout);
    expect(broken.problems).toContainEqual(expect.stringMatching(/^sandbox "bwrap": bubblewrap is not installed/));
    const brokenStatus = JSON.parse(loom(repo.root, ['status', '--json'], noBwrap).stdout);
    expect(brokenStatus.problems).toContainEqual(expect.stringMatching(/^sandbox "bwrap": bubblewrap is not installed/));
    expect(brokenStatus.sandbox.bwrap).toBe('missing');

    repo.writeConfig({ runtime: 'script' });
    expect(loom(repo.root, ['status']).stdout).toMatch(/Sandbox: agents are NOT sandboxed \(builder, judge, doctor, curator, architect, hermit, guide\): they reach everything you can, your home included; bubblewrap [\d.]+ works here: set "sandbox": "bwrap"/);
  });
});
