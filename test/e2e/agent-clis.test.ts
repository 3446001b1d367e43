// A real shepherd over a real issue with the REAL agent CLIs (pinned dev dependencies) pointed at
// fake model APIs on 127.0.0.1 that play scripted tool calls: the CLI edits and commits files in
// the worktree, the judge run returns a verdict, the PR merges, and the usage is recorded.
import { codexHome } from '../../src/runtimes/codex-home.js';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Label } from '../../src/core/labels.js';
import { FakeAnthropicServer } from '../fakes/anthropic-server.js';
import type { FakeOpenAIServer } from '../fakes/openai-server.js';
import { startFakeOpenAIServer } from '../fakes/openai-server.js';
import type { TestRepo } from '../helpers/loom-repo.js';
import { loom, loomAsync, makeRepo } from '../helpers/loom-repo.js';

let repo: TestRepo | undefined;
let closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers) await close();
  closers = [];
  repo?.cleanup();
});

const git = (cwd: string, ...args: string[]) => spawnSync('git', args, { cwd, encoding: 'utf8' }).stdout.trim();
const bin = (name: string) => path.resolve('node_modules/.bin', name);

function ledger(root: string): { role: string; runtime: string; input_tokens: number; output_tokens: number; cost_usd: number; session_id: string | null; issue: number | null }[] {
  return fs
    .readFileSync(path.join(root, '.loom', 'usage.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
}

describe('real agent CLIs against fake model APIs', () => {
  it('Claude Code builds, commits and gets approved; the PR merges', async () => {
    expect(fs.existsSync(bin('claude')), 'the pinned @anthropic-ai/claude-code must be installed').toBe(true);
    const server = await FakeAnthropicServer.start([
      // builder: write a file, commit it, then finish
      { tool: 'Write', input: { file_path: 'GREETING.md', content: 'Hello from Claude\n' } },
      { tool: 'Bash', input: { command: 'git add GREETING.md && git -c user.name=Agent -c user.email=agent@localhost commit -qm "Add GREETING.md (#1)"', description: 'commit' } },
      { text: 'Added GREETING.md and committed it.' },
      // judge
      { text: 'The change adds the requested file.\n\nVERDICT: APPROVE' },
    ]);
    closers.push(() => server.close());
    repo = makeRepo({ testCommand: 'test -f GREETING.md', roles: { builder: { runtime: 'claude' }, judge: { runtime: 'claude' }, doctor: { runtime: 'claude' } } });
    const tracker = repo.tracker();
    await tracker.createIssue({ title: 'Add a greeting file', body: 'Create GREETING.md saying hello.', labels: [Label.issue] });
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'loom-claude-home-'));
    const env = { PATH: `${path.dirname(bin('claude'))}:${process.env.PATH ?? ''}`, HOME: home, ANTHROPIC_BASE_URL: server.url, ANTHROPIC_API_KEY: 'test-key', GITHUB_TOKEN: 'ghp_must_not_leak' };
    const r = await loomAsync(repo.root, ['shepherd', '1', '--force-merge'], env);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/claude: tool Write/);
    expect(r.stdout).toMatch(/merged PR #2/);

    expect(fs.readFileSync(path.join(repo.root, 'GREETING.md'), 'utf8')).toBe('Hello from Claude\n');
    expect(git(repo.root, 'log', '--format=%s', 'main')).toMatch(/Add GREETING\.md \(#1\)/); // the agent's own commit
    expect(git(repo.root, 'log', '--first-parent', '--format=%s', '-1', 'main')).toMatch(/^Merge #1: Add a greeting file/);
    expect((await tracker.getIssue(1))!.state).toBe('closed');
    expect((await tracker.listComments(2)).at(-1)!.body).toMatch(/approved[\s\S]*The change adds the requested file/);

    const runs = ledger(repo.root);
    expect(runs.map((x) => x.role)).toEqual(['builder', 'judge']);
    for (const run of runs) {
      expect(run).toMatchObject({ runtime: 'claude', issue: 1 });
      expect(run.session_id).toBeTruthy();
      expect(run.input_tokens).toBeGreaterThan(0);
      expect(run.cost_usd).toBeGreaterThan(0);
    }
    const status = JSON.parse(loom(repo.root, ['status', '--json']).stdout);
    expect(status.usage.total.runs).toBe(2);
    // The tracker token never reached the agent: no request carried it.
    expect(JSON.stringify(server.requests)).not.toMatch(/ghp_must_not_leak/);
    // Its CLAUDE_CONFIG_DIR (sessions, the login's copy) went with the closed issue.
    expect(r.stdout).toMatch(/removed the agent home of #1 \(issue closed\)/);
    expect(fs.existsSync(path.join(repo.root, '.loom', 'agent-homes', 'issue-1'))).toBe(false);
    fs.rmSync(home, { recursive: true, force: true });
  });

  it('Codex builds through a shell tool call and gets approved; the PR merges; tokens are priced from the table', async () => {
    expect(fs.existsSync(bin('codex')), 'the pinned @openai/codex must be installed').toBe(true);
    const server: FakeOpenAIServer = await startFakeOpenAIServer([
      { kind: 'shell', cmd: "printf 'Hello from Codex\\n' > GREETING.md" },
      { kind: 'text', text: 'Added GREETING.md.' },
      { kind: 'text', text: 'Looks right.\n\nVERDICT: APPROVE' },
    ]);
    closers.push(() => server.close());
    repo = makeRepo({ testCommand: 'test -f GREETING.md', pricing: { codex: { input: 1, output: 2, cachedInput: 0.5 } }, roles: { builder: { runtime: 'codex' }, judge: { runtime: 'codex' }, doctor: { runtime: 'codex' } } });
    const tracker = repo.tracker();
    await tracker.createIssue({ title: 'Add a greeting file', body: 'Create GREETING.md saying hello.', labels: [Label.issue] });
    // The user's own Codex settings (here: the fake provider) seed each task's CODEX_HOME.
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'loom-codex-home-'));
    fs.mkdirSync(path.join(home, '.codex'));
    fs.writeFileSync(path.join(home, '.codex', 'config.toml'), server.codexConfig());
    const env = { PATH: `${path.dirname(bin('codex'))}:${process.env.PATH ?? ''}`, HOME: home, CODEX_API_KEY: 'sk-test' };
    const r = await loomAsync(repo.root, ['shepherd', '1', '--force-merge'], env);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(fs.readFileSync(path.join(repo.root, 'GREETING.md'), 'utf8')).toBe('Hello from Codex\n');
    // Codex's workspace-write sandbox keeps the agent out of the worktree's git directory (it lives
    // in the main repository), so its commit fails and Loom commits the change it left behind.
    expect(git(repo.root, 'log', '--format=%B', 'main')).toMatch(/Changes the builder left uncommitted, committed by Loom/);
    expect((await tracker.getIssue(1))!.state).toBe('closed');
    const runs = ledger(repo.root);
    expect(runs.map((x) => x.role)).toEqual(['builder', 'judge']);
    expect(runs[0]).toMatchObject({ runtime: 'codex', priced: true });
    expect(runs[0]!.cost_usd).toBeCloseTo((runs[0]!.input_tokens * 1 + runs[0]!.output_tokens * 2) / 1e6, 9);
    // The task's home is under the temp directory here, so Codex got it in the user's cache
    // (codex-home.ts), seeded with the user's settings (the fake provider the runs reached); the
    // issue closed, it is removed with the task's own.
    const taskHome = codexHome(path.join(repo.root, '.loom', 'agent-homes', 'issue-1', 'codex'), { ...process.env, ...env });
    expect(taskHome).not.toContain(os.tmpdir());
    expect(r.stdout).toContain(`removed the agent home of #1 (issue closed), and its Codex home ${taskHome}`);
    expect([fs.existsSync(taskHome), fs.existsSync(path.join(repo.root, '.loom', 'agent-homes', 'issue-1'))]).toEqual([false, false]);
    fs.rmSync(home, { recursive: true, force: true });
  });
  it("a Doctor on another CLI than the Builder's starts its own session: Codex builds, Claude Code reviews and fixes, the PR merges", async () => {
    // The Doctor resumes the Builder's session when it can; a session of another CLI (or one this
    // clone's agent home does not hold: a job taken over by another worker) cannot be resumed.
    const openai: FakeOpenAIServer = await startFakeOpenAIServer([
      { kind: 'shell', cmd: "printf 'Hello\\n' > GREETING.md" },
      { kind: 'text', text: 'Added GREETING.md.' },
    ]);
    closers.push(() => openai.close());
    const anthropic = await FakeAnthropicServer.start([
      // judge, first round
      { text: 'The greeting lacks a name.\n\nVERDICT: REQUEST_CHANGES' },
      // doctor
      { tool: 'Write', input: { file_path: 'GREETING.md', content: 'Hello, Loom\n' } },
      { text: 'The greeting names Loom now.' },
      // judge, second round
      { text: 'Fixed.\n\nVERDICT: APPROVE' },
    ]);
    closers.push(() => anthropic.close());
    repo = makeRepo({ testCommand: 'test -f GREETING.md', roles: { builder: { runtime: 'codex' }, judge: { runtime: 'claude' }, doctor: { runtime: 'claude' } } });
    const tracker = repo.tracker();
    await tracker.createIssue({ title: 'Add a greeting file', body: 'Create GREETING.md saying hello.', labels: [Label.issue] });
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'loom-two-clis-home-'));
    fs.mkdirSync(path.join(home, '.codex'));
    fs.writeFileSync(path.join(home, '.codex', 'config.toml'), openai.codexConfig());
    const env = { PATH: `${path.dirname(bin('claude'))}:${process.env.PATH ?? ''}`, HOME: home, CODEX_API_KEY: 'sk-test', ANTHROPIC_BASE_URL: anthropic.url, ANTHROPIC_API_KEY: 'test-key' };
    const r = await loomAsync(repo.root, ['shepherd', '1', '--force-merge'], env);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(fs.readFileSync(path.join(repo.root, 'GREETING.md'), 'utf8')).toBe('Hello, Loom\n');
    expect((await tracker.getIssue(1))!.state).toBe('closed');
    const runs = ledger(repo.root);
    expect(runs.map((x) => `${x.role}:${x.runtime}`)).toEqual(['builder:codex', 'judge:claude', 'doctor:claude', 'judge:claude']);
    // The Doctor's run is a session of its own, not the Builder's Codex thread.
    expect(runs[2]!.session_id).toBeTruthy();
    expect(runs[2]!.session_id).not.toBe(runs[0]!.session_id);
    expect(r.stdout).not.toMatch(/No conversation found/);
    fs.rmSync(home, { recursive: true, force: true });
  });
});

describe('resuming agent sessions', () => {
  it('a Doctor whose agent home no longer holds the Builder\'s session (a job taken over in another clone) starts a new session instead of failing', async () => {
    const server = await FakeAnthropicServer.start([
      // builder
      { tool: 'Write', input: { file_path: 'GREETING.md', content: 'Hello\n' } },
      { text: 'Added GREETING.md.' },
      // doctor (resumed, then new)
      { tool: 'Write', input: { file_path: 'GREETING.md', content: 'Hello, Loom\n' } },
      { text: 'The greeting names Loom now.' },
    ]);
    closers.push(() => server.close());
    // The Judge: first it empties the issue's Claude home of its sessions (as another worker's
    // clone would have none) and asks for changes; then it approves.
    const judge = `if [ -f "$LOOM_STATE_DIR/judged" ]; then echo 'VERDICT: APPROVE'; else rm -rf "$LOOM_STATE_DIR/claude/projects" && touch "$LOOM_STATE_DIR/judged" && echo 'Name someone.' && echo 'VERDICT: REQUEST_CHANGES'; fi`;
    repo = makeRepo({ testCommand: 'test -f GREETING.md', roles: { builder: { runtime: 'claude' }, judge: { runtime: 'command', command: judge }, doctor: { runtime: 'claude' } } });
    const tracker = repo.tracker();
    await tracker.createIssue({ title: 'Add a greeting file', body: 'Create GREETING.md saying hello.', labels: [Label.issue] });
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'loom-claude-home-'));
    const env = { PATH: `${path.dirname(bin('claude'))}:${process.env.PATH ?? ''}`, HOME: home, ANTHROPIC_BASE_URL: server.url, ANTHROPIC_API_KEY: 'test-key' };
    const r = await loomAsync(repo.root, ['shepherd', '1', '--force-merge'], env);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const runs = ledger(repo.root).filter((x) => x.runtime === 'claude');
    const builder = runs[0]!.session_id!;
    expect(r.stdout).toContain(`loom: could not resume the claude session ${builder} (`);
    expect(r.stdout).toMatch(/No conversation found with session ID/);
    expect(fs.readFileSync(path.join(repo.root, 'GREETING.md'), 'utf8')).toBe('Hello, Loom\n');
    expect((await tracker.getIssue(1))!.state).toBe('closed');
    // The builder's run, the refused resume (no model turn), the Doctor's new session.
    expect(runs.map((x) => [x.role, x.input_tokens > 0, x.session_id === builder])).toEqual([
      ['builder', true, true],
      ['doctor', false, true],
      ['doctor', true, false],
    ]);
    fs.rmSync(home, { recursive: true, force: true });
  });
});

describe('usage limits through the pipeline', () => {
  it('a 429 from Claude Code records the limit and the shepherd carries on with the fallback runtime', async () => {
    const server = await FakeAnthropicServer.start([]);
    server.failWith('rate-limit');
    closers.push(() => server.close());
    const fence = '```';
    repo = makeRepo({ cliRetries: 1, roles: { builder: { runtime: 'claude', fallback: 'script' }, judge: { runtime: 'script' }, doctor: { runtime: 'script' } } });
    const tracker = repo.tracker();
    await tracker.createIssue({ title: 'limited', labels: [Label.issue], body: `${fence}loom-script builder\nwrite done.txt <<EOF\ndone by the fallback\nEOF\n${fence}` });
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'loom-claude-home-'));
    const env = { PATH: `${path.dirname(bin('claude'))}:${process.env.PATH ?? ''}`, HOME: home, ANTHROPIC_BASE_URL: server.url, ANTHROPIC_API_KEY: 'test-key' };
    const r = await loomAsync(repo.root, ['shepherd', '1', '--force-merge'], env);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/runtime claude is limited until .*; failing over/);
    // cliRetries 1 from the config reached the CLI: the first request and one retry.
    expect(server.mainRequests()).toHaveLength(2);
    expect(fs.readFileSync(path.join(repo.root, 'done.txt'), 'utf8')).toBe('done by the fallback\n');
    const limit = JSON.parse(fs.readFileSync(path.join(repo.root, '.loom', 'limits', 'claude.json'), 'utf8'));
    expect(Date.parse(limit.until)).toBeGreaterThan(Date.now());
    const status = JSON.parse(loom(repo.root, ['status', '--json']).stdout);
    expect(status.runtime_limits.map((l: { runtime: string }) => l.runtime)).toEqual(['claude']);
    fs.rmSync(home, { recursive: true, force: true });
  });

  it('an overloaded provider pauses the runtime for a while and sends the issue back, instead of blocking it', async () => {
    const server = await FakeAnthropicServer.start([]);
    server.failWith('overloaded');
    closers.push(() => server.close());
    repo = makeRepo({ cliRetries: 0, roles: { builder: { runtime: 'claude' }, judge: { runtime: 'script' }, doctor: { runtime: 'script' } } });
    const tracker = repo.tracker();
    await tracker.createIssue({ title: 'busy provider', labels: [Label.issue] });
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'loom-claude-home-'));
    const env = { PATH: `${path.dirname(bin('claude'))}:${process.env.PATH ?? ''}`, HOME: home, ANTHROPIC_BASE_URL: server.url, ANTHROPIC_API_KEY: 'test-key' };
    const before = Date.now();
    const r = await loomAsync(repo.root, ['shepherd', '1'], env);
    // The shepherd stops (exit 6, as on shutdown): not the issue's fault, so nothing is blocked.
    expect(r.code, r.stdout + r.stderr).toBe(6);
    expect(r.stdout).toMatch(/runtime claude is overloaded; paused until /);
    expect(server.mainRequests()).toHaveLength(1);
    const limit = JSON.parse(fs.readFileSync(path.join(repo.root, '.loom', 'limits', 'claude.json'), 'utf8')) as { until: string; reason: string };
    expect(Date.parse(limit.until) - before).toBeGreaterThanOrEqual(5 * 60_000 - 1_000);
    expect(Date.parse(limit.until) - Date.now()).toBeLessThanOrEqual(5 * 60_000);
    expect(limit.reason).toMatch(/529|overloaded/i);
    const labels = (await tracker.getIssue(1))!.labels;
    expect(labels).not.toContain(Label.blocked);
    expect(labels).toContain(Label.issue);
    const status = JSON.parse(loom(repo.root, ['status', '--json']).stdout);
    expect(status.runtime_limits.map((l: { runtime: string }) => l.runtime)).toEqual(['claude']);
    fs.rmSync(home, { recursive: true, force: true });
  });
});

