// CodexRuntime end to end: the real `codex` CLI (node_modules/.bin, pinned) against a fake
// OpenAI Responses API. A missing CLI fails these tests; it never skips them.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isProcessAlive } from '../../src/process/process-identity.js';
import { waitFor } from '../../src/process/wait.js';
import { codexHome } from '../../src/runtimes/codex-home.js';
import { CodexRuntime, codexSandboxMode } from '../../src/runtimes/codex-runtime.js';
import type { RunContext } from '../../src/runtimes/runtime.js';
import { startFakeOpenAIServer } from '../fakes/openai-server.js';
import type { FakeOpenAIServer, FakeTurn } from '../fakes/openai-server.js';
import { fakeHome, probeRepo, probeReport, SANDBOXED, UNSANDBOXED } from '../helpers/sandbox-probe.js';
import { collectRun, isolateEnv, scratchRepo } from './cli-harness.js';
import type { Run } from './cli-harness.js';
import { groupHasLiveMembers } from './process-group.js';

const CODEX = path.resolve('node_modules/.bin/codex');
const SAVED_ENV = ['CODEX_API_KEY', 'OPENAI_API_KEY', 'OPENAI_BASE_URL', 'GITHUB_TOKEN', 'GH_TOKEN'] as const;

let root: string;
let cwd: string;
let home: string;
let server: FakeOpenAIServer | null = null;
let restoreEnv: () => void;

beforeEach(() => {
  restoreEnv = isolateEnv(SAVED_ENV);
  process.env.CODEX_API_KEY = 'sk-fake-codex-key';
  ({ root, cwd, home } = scratchRepo('loom-codex-test-', 'codex-home'));
  // As Loom gives it (src/runtimes/codex-home.ts): never under the temp directory, where Codex
  // refuses to link its sandbox helper when bubblewrap is installed.
  home = codexHome(home);
});

afterEach(async () => {
  restoreEnv();
  await server?.close();
  server = null;
  fs.rmSync(root, { recursive: true, force: true });
  fs.rmSync(home, { recursive: true, force: true });
});

async function run(script: readonly FakeTurn[], overrides: Partial<RunContext> = {}, config?: (s: FakeOpenAIServer) => string): Promise<Run> {
  server ??= await startFakeOpenAIServer(script);
  const runtime = new CodexRuntime({ command: CODEX, home: () => home, config: config?.(server) ?? server.codexConfig() });
  return collectRun(runtime, {
    role: 'builder',
    prompt: 'Create hello.txt, please.',
    cwd,
    vars: { issue: '7' },
    instructions: 'An issue.',
    attempt: 1,
    stallTimeout: 20_000,
    timeout: 30_000,
    ...overrides,
  });
}

/** The input items of the n-th `/responses` request. */
function inputOf(n: number): Array<Record<string, unknown>> {
  const body = server!.responsesRequests()[n]?.body as { input?: Array<Record<string, unknown>> } | undefined;
  return body?.input ?? [];
}

describe('CodexRuntime with the real codex CLI', () => {
  it('has the pinned CLI installed', () => {
    expect(fs.existsSync(CODEX)).toBe(true);
    expect(execFileSync(CODEX, ['--version'], { encoding: 'utf8' })).toContain('0.169.0');
  });

  it('runs a tool call that creates a file, and reports thread id, tokens, events and the final message', async () => {
    const { result, events, streamed } = await run(
      [
        { kind: 'shell', cmd: "printf 'hello from codex' > hello.txt", usage: { input: 100, cached: 40, output: 10 } },
        { kind: 'text', text: 'Created hello.txt.', usage: { input: 200, cached: 60, output: 20 } },
      ],
      { model: 'gpt-fake-model' },
    );
    expect(result).toMatchObject({ outcome: 'success', exitCode: 0, output: 'Created hello.txt.', message: '' });
    expect(fs.readFileSync(path.join(cwd, 'hello.txt'), 'utf8')).toBe('hello from codex');
    expect(result.sessionId).toMatch(/^[0-9a-f-]{36}$/);
    expect(result.usage).toEqual({ inputTokens: 300, outputTokens: 30, cachedInputTokens: 100, costUsd: null });
    expect(events[0]).toEqual({ type: 'session', sessionId: result.sessionId });
    expect(events).toContainEqual({ type: 'tool_use', name: 'shell', input: expect.stringContaining('hello.txt') });
    // (Output is whatever the login shell printed; the sandbox keeps it from writing outside the repo.)
    expect(events).toContainEqual({ type: 'tool_result', ok: true, output: expect.any(String) });
    expect(events).toContainEqual({ type: 'text', text: 'Created hello.txt.' });
    expect(events.at(-1)).toEqual({ type: 'result', ok: true, text: 'Created hello.txt.' });
    expect(streamed).toMatch(/^\$ .*printf 'hello from codex' > hello\.txt/m);
    expect(streamed).toContain('Created hello.txt.');
    // What the CLI sent: the model asked for, the prompt, the tool offered, then the tool's output.
    const [first, second] = server!.responsesRequests();
    expect(first?.body).toMatchObject({ model: 'gpt-fake-model', stream: true });
    expect(first?.headers.authorization).toBe('Bearer sk-fake-codex-key');
    expect(JSON.stringify(inputOf(0))).toContain('Create hello.txt, please.');
    expect((first?.body as { tools: Array<{ name?: string }> }).tools.map((t) => t.name)).toContain('exec_command');
    expect(second).toBeDefined();
    expect(inputOf(1)).toContainEqual(expect.objectContaining({ type: 'function_call_output', call_id: 'call_1' }));
    expect(server!.remaining()).toBe(0);
  });

  it('runs the agent in the workspace-write sandbox: it cannot write outside the repository', async () => {
    // In the home directory: workspace-write lets the agent use /tmp and $TMPDIR (where the repo
    // is, and where a CI checkout may be), but not the user's home.
    const outside = fs.mkdtempSync(path.join(os.homedir(), '.loom-sandbox-probe-'));
    try {
      const { result } = await run([{ kind: 'shell', cmd: `echo in > inside.txt; echo out > ${outside}/outside.txt` }, { kind: 'text', text: 'Tried both.' }]);
      expect(result.outcome).toBe('success');
      expect(fs.readFileSync(path.join(cwd, 'inside.txt'), 'utf8')).toBe('in\n');
      expect(fs.existsSync(path.join(outside, 'outside.txt'))).toBe(false);
    } finally {
      fs.rmSync(outside, { recursive: true, force: true });
    }
  });

  it('classifies a 401 as an auth failure', async () => {
    const { result } = await run([{ kind: 'error', status: 401, code: 'invalid_api_key', type: 'invalid_request_error', message: 'Incorrect API key provided: sk-fake.' }]);
    expect(result).toMatchObject({ outcome: 'failed', failure: { kind: 'auth' } });
    expect(result.message).toContain('401');
    expect(result.sessionId).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('classifies a 429 as a rate limit', async () => {
    const { result } = await run([{ kind: 'error', status: 429, retryAfter: 20, code: 'rate_limit_exceeded', type: 'tokens', message: 'Rate limit reached. Please try again in 20s.' }]);
    expect(result).toMatchObject({ outcome: 'failed', failure: { kind: 'rate-limit' } });
    expect(result.message).toContain('429');
  });

  it('reads the reset time of a rate limit the stream reports', async () => {
    const before = Date.now();
    const { result } = await run([{ kind: 'failed', code: 'rate_limit_exceeded', message: 'Rate limit reached for gpt-fake. Please try again in 20s.' }]);
    expect(result).toMatchObject({ outcome: 'failed', failure: { kind: 'rate-limit' } });
    const resetAt = Date.parse(result.failure?.resetAt ?? '');
    expect(resetAt).toBeGreaterThanOrEqual(before + 20_000);
    expect(resetAt).toBeLessThanOrEqual(Date.now() + 20_000);
  });

  it('classifies a 500 as overloaded', async () => {
    const { result } = await run([{ kind: 'error', status: 500, type: 'server_error', message: 'The server had an error while processing your request.' }]);
    expect(result).toMatchObject({ outcome: 'failed', failure: { kind: 'overloaded' } });
  });

  const serverError: FakeTurn = { kind: 'error', status: 500, type: 'server_error', message: 'The server had an error while processing your request.' };

  it("caps a declared provider's own retries at cliRetries (-c overrides)", async () => {
    // The config leaves the retries at the CLI's defaults: 4 request retries within each of 5 stream retries.
    const { result, events } = await run(Array(30).fill(serverError), { cliRetries: 1 }, (s) => s.codexConfig({ retries: null }));
    expect(result).toMatchObject({ outcome: 'failed', failure: { kind: 'overloaded' } });
    expect(result.message).not.toContain('was stopped');
    // One stream retry, each stream attempt with one request retry: 2 × 2 requests, not 5 × 5.
    expect(server!.responsesRequests()).toHaveLength(4);
    expect(events.filter((e) => e.type === 'retrying')).toHaveLength(1);
  });

  it('stops a run of the built-in provider, whose retries cannot be set, once it retries more than cliRetries times in a row', async () => {
    // The built-in provider first tries the Responses WebSocket, which the fake refuses (404): the
    // CLI reconnects, falls back to HTTPS, and there retries the 500s 5 × 5 times by default. The
    // WebSocket reconnects are not counted; the HTTPS retries are.
    const { result, events, pid } = await run(Array(30).fill(serverError), { cliRetries: 1 }, (s) => s.codexBuiltinConfig());
    expect(result).toMatchObject({ outcome: 'failed', failure: { kind: 'overloaded' } });
    expect(result.message).toMatch(/^was stopped: the CLI retried its model request 2 times in a row \(cliRetries is 1\)/);
    expect(result.message).not.toContain('ws://');
    const retries = events.filter((e) => e.type === 'retrying');
    expect(retries.filter((e) => e.type === 'retrying' && e.fallback === true).length).toBeGreaterThan(0);
    expect(retries.filter((e) => e.type === 'retrying' && e.fallback !== true)).toHaveLength(2);
    // Over HTTPS it got as far as the second retry, far short of its own 25 attempts.
    expect(server!.responsesRequests().length).toBeGreaterThanOrEqual(2);
    expect(server!.responsesRequests().length).toBeLessThan(25);
    expect(await waitFor(() => !isProcessAlive(pid) && !groupHasLiveMembers(pid!), 5_000)).toBe(true);
  });

  it('classifies a missing API key as an auth failure', async () => {
    delete process.env.CODEX_API_KEY;
    const { result } = await run([{ kind: 'text', text: 'never asked' }]);
    expect(result).toMatchObject({ outcome: 'failed', failure: { kind: 'auth' } });
    expect(result.message).toContain('CODEX_API_KEY');
    expect(server!.responsesRequests()).toHaveLength(0);
  });

  it('hands a prompt too long for one argument over on stdin', async () => {
    const prompt = `${'Context line.\n'.repeat(10_000)}-- The end of a long prompt.`;
    const { result } = await run([{ kind: 'text', text: 'Read it all.' }], { prompt });
    expect(result).toMatchObject({ outcome: 'success', output: 'Read it all.' });
    expect(JSON.stringify(inputOf(0))).toContain('-- The end of a long prompt.');
  });

  it('is stalled when the model never answers, and its process group is killed', async () => {
    const { result, pid } = await run([{ kind: 'hang' }], { stallTimeout: 3_000 });
    expect(result).toMatchObject({ outcome: 'stalled', message: 'produced no output for 3s and was killed' });
    expect(result.sessionId).toMatch(/^[0-9a-f-]{36}$/);
    expect(pid).toBeTypeOf('number');
    expect(await waitFor(() => !isProcessAlive(pid) && !groupHasLiveMembers(pid!), 5_000)).toBe(true);
  });

  it('resumes a thread: the model sees the earlier conversation, and only this run is counted', async () => {
    const first = await run([
      { kind: 'text', text: 'First answer: 42.', usage: { input: 100, cached: 0, output: 10 } },
      { kind: 'text', text: 'Second answer: still 42.', usage: { input: 150, cached: 100, output: 5 } },
    ]);
    expect(first.result).toMatchObject({ outcome: 'success', output: 'First answer: 42.' });
    const second = await run([], { prompt: 'Check your answer.', resumeSessionId: first.result.sessionId });
    expect(second.result).toMatchObject({ outcome: 'success', output: 'Second answer: still 42.', sessionId: first.result.sessionId });
    expect(second.result.usage).toEqual({ inputTokens: 150, outputTokens: 5, cachedInputTokens: 100, costUsd: null });
    const resumed = JSON.stringify(inputOf(1));
    expect(resumed).toContain('Create hello.txt, please.');
    expect(resumed).toContain('First answer: 42.');
    expect(resumed).toContain('Check your answer.');
  });

  it('does not pass tracker tokens to the agent, only its own key and Loom variables', async () => {
    process.env.GITHUB_TOKEN = 'ghp_must_not_leak';
    process.env.GH_TOKEN = 'gho_must_not_leak';
    // Codex itself drops *TOKEN* variables from its shell by default: turn that off, so the
    // test sees exactly what Loom gave the CLI.
    const withFullShellEnv = (s: FakeOpenAIServer) => `${s.codexConfig()}\n[shell_environment_policy]\ninherit = "all"\nignore_default_excludes = true\n`;
    const { result } = await run([{ kind: 'shell', cmd: 'env > env.txt' }, { kind: 'text', text: 'Wrote env.txt.' }], {}, withFullShellEnv);
    expect(result.outcome).toBe('success');
    const env = fs.readFileSync(path.join(cwd, 'env.txt'), 'utf8');
    expect(env).not.toContain('must_not_leak');
    expect(env).not.toMatch(/^(GITHUB_TOKEN|GH_TOKEN)=/m);
    expect(env).toMatch(/^CODEX_API_KEY=sk-fake-codex-key$/m);
    expect(env).toMatch(/^LOOM_ISSUE=7$/m);
    expect(env).toMatch(/^LOOM_ROLE=builder$/m);
    expect(env).toContain(`CODEX_HOME=${home}`);
  });

  it('reports a missing CLI as a config failure', async () => {
    server = await startFakeOpenAIServer([]);
    const runtime = new CodexRuntime({ command: path.join(root, 'no-such-codex'), home: () => home });
    const result = await runtime.run({ role: 'builder', prompt: 'x', cwd, vars: {}, instructions: '', attempt: 1, stallTimeout: 10_000, timeout: 10_000 });
    expect(result).toMatchObject({ outcome: 'failed', exitCode: 127, failure: { kind: 'config' } });
  });
});

describe("CodexRuntime inside Loom's sandbox", () => {
  let savedHome: string | undefined;
  let fakeUserHome: string;
  let repoRoot: string;
  let worktree: string;
  beforeEach(() => {
    savedHome = process.env.HOME;
    fakeUserHome = fakeHome();
    process.env.HOME = fakeUserHome;
    ({ repoRoot, worktree } = probeRepo(root));
    // Where Loom puts the task's CODEX_HOME (run-role-agent.ts, codex-home.ts).
    home = codexHome(path.join(repoRoot, '.loom', 'agent-homes', 'issue-1', 'codex'));
  });
  afterEach(() => {
    if (savedHome === undefined) delete process.env.HOME;
    else process.env.HOME = savedHome;
    fs.rmSync(fakeUserHome, { recursive: true, force: true });
  });

  const probe = async (sandbox: RunContext['sandbox']) => {
    const { result, events } = await run([{ kind: 'shell', cmd: 'sh probe.sh' }, { kind: 'text', text: 'Probed.' }], { cwd: worktree, vars: { repo_root: repoRoot }, ...(sandbox ? { sandbox } : {}) });
    const output = events.flatMap((e) => (e.type === 'tool_result' ? [e.output] : [])).join('\n');
    return { result, report: probeReport(output) };
  };

  it("runs with its own sandbox off inside Loom's: it reaches nothing of the user's or Loom's, and its own git commit succeeds", async () => {
    const { result, report } = await probe({ type: 'bwrap', network: true, hide: [], repoRoot });
    expect(result.outcome, result.output).toBe('success');
    expect(report).toEqual(SANDBOXED);
    expect(execFileSync('git', ['log', '-1', '--format=%an: %s', 'loom/issue-1'], { cwd: repoRoot, encoding: 'utf8' }).trim()).toBe('Sandbox Probe: Probe commit');
    expect(fs.existsSync(path.join(repoRoot, 'OUTSIDE.txt'))).toBe(false);
  });

  it("with sandbox none only its own workspace-write sandbox applies: it reads the user's home and .loom/, and its commit fails", async () => {
    const { result, report } = await probe({ type: 'none', network: true, hide: [], repoRoot });
    expect(result.outcome, result.output).toBe('success');
    // workspace-write also lets the agent write in the temp directory — where this repository is,
    // git hooks included — and keeps it out of the worktree's git metadata, so the commit fails.
    expect(report).toEqual({ ...UNSANDBOXED, commit: 'failed' });
  });

  it('takes -s danger-full-access only inside a bubblewrap sandbox of Loom', () => {
    const base = { role: 'builder', prompt: '', cwd: '/', vars: {}, instructions: '', attempt: 1, stallTimeout: 1, timeout: 1 };
    expect(codexSandboxMode(base)).toBe('workspace-write');
    expect(codexSandboxMode({ ...base, sandbox: { type: 'none', network: true, hide: [], repoRoot: '/' } })).toBe('workspace-write');
    expect(codexSandboxMode({ ...base, sandbox: { type: 'bwrap', network: true, hide: [], repoRoot: '/' } })).toBe('danger-full-access');
  });
});
