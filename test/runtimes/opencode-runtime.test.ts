// OpencodeRuntime end to end: the real `opencode` CLI (tools/opencode, pinned) against the fake
// Anthropic Messages API through a custom provider. A missing CLI fails these tests; it never skips them.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isProcessAlive } from '../../src/process/process-identity.js';
import { waitFor } from '../../src/process/wait.js';
import { OpencodeRuntime } from '../../src/runtimes/opencode-runtime.js';
import type { OpencodeRuntimeOptions } from '../../src/runtimes/opencode-runtime.js';
import type { RunContext } from '../../src/runtimes/runtime.js';
import { DEFAULT_USAGE, FakeAnthropicServer, RATE_LIMIT_RESET_UNIX } from '../fakes/anthropic-server.js';
import type { ScriptTurn } from '../fakes/anthropic-server.js';
import { fakeStepCost, OPENCODE_FAKE_MODEL, OPENCODE_FAKE_PROVIDER, opencodeFakeConfig } from '../fakes/opencode-provider.js';
import { collectRun, isolateEnv, scratchRepo } from './cli-harness.js';
import type { Run } from './cli-harness.js';
import { fakeHome, probeRepo, probeReport, SANDBOXED } from '../helpers/sandbox-probe.js';
import { groupHasLiveMembers } from './process-group.js';

// Installed by the test command into tools/opencode (the root lock file cannot hold it).
const OPENCODE = path.resolve('tools/opencode/node_modules/.bin/opencode');
const MODEL = `${OPENCODE_FAKE_PROVIDER}/${OPENCODE_FAKE_MODEL}`;
const SAVED_ENV = ['ANTHROPIC_API_KEY', 'OPENAI_API_KEY', 'OPENCODE_DISABLE_MODELS_FETCH', 'GITHUB_TOKEN', 'GH_TOKEN'] as const;

let root: string;
let cwd: string;
let home: string;
let server: FakeAnthropicServer | null = null;
let restoreEnv: () => void;

beforeEach(() => {
  restoreEnv = isolateEnv(SAVED_ENV);
  process.env.ANTHROPIC_API_KEY = 'sk-ant-fake-opencode-key';
  // No models.dev catalog download: the fake provider's model is declared in the config.
  process.env.OPENCODE_DISABLE_MODELS_FETCH = '1';
  ({ root, cwd, home } = scratchRepo('loom-opencode-test-', 'opencode-home'));
});

afterEach(async () => {
  restoreEnv();
  await server?.close();
  server = null;
  fs.rmSync(root, { recursive: true, force: true });
});

async function run(script: ScriptTurn[], overrides: Partial<RunContext> = {}, options: OpencodeRuntimeOptions = {}): Promise<Run> {
  server ??= await FakeAnthropicServer.start(script);
  const runtime = new OpencodeRuntime({ command: OPENCODE, home: () => home, config: opencodeFakeConfig(server.url), seedFrom: null, ...options });
  return collectRun(runtime, {
    role: 'builder',
    prompt: 'Create hello.txt, please.',
    cwd,
    vars: { issue: '7' },
    instructions: 'An issue.',
    attempt: 1,
    model: MODEL,
    stallTimeout: 30_000,
    timeout: 50_000,
    ...overrides,
  });
}

/** All the text the n-th agent turn sent as its conversation. */
function conversationOf(n: number): string {
  return JSON.stringify(server!.mainRequests()[n]?.body?.messages ?? []);
}

describe('OpencodeRuntime with the real opencode CLI', () => {
  it('has the pinned CLI installed', () => {
    expect(fs.existsSync(OPENCODE)).toBe(true);
    expect(execFileSync(OPENCODE, ['--version'], { encoding: 'utf8' })).toContain('1.18.33');
  });

  it('runs a tool call that writes a file, and reports session id, tokens, summed cost, events and the final text', async () => {
    const { result, events, streamed } = await run([
      { tool: 'bash', input: { command: "printf 'hello from opencode' > hello.txt", description: 'Write hello.txt' } },
      { text: 'Created hello.txt.', usage: { inputTokens: 200, outputTokens: 20, cachedInputTokens: 100 } },
    ]);
    expect(result).toMatchObject({ outcome: 'success', exitCode: 0, output: 'Created hello.txt.', message: '' });
    expect(fs.readFileSync(path.join(cwd, 'hello.txt'), 'utf8')).toBe('hello from opencode');
    expect(result.sessionId).toMatch(/^ses_[A-Za-z0-9]+$/);
    const second = { inputTokens: 200, outputTokens: 20, cachedInputTokens: 100 };
    expect(result.usage).toMatchObject({
      inputTokens: DEFAULT_USAGE.inputTokens + second.inputTokens,
      outputTokens: DEFAULT_USAGE.outputTokens + second.outputTokens,
      cachedInputTokens: DEFAULT_USAGE.cachedInputTokens + second.cachedInputTokens,
    });
    // Each step's cost comes from the CLI (the model's price in the config); the run's is their sum.
    expect(result.usage?.costUsd).toBeCloseTo(fakeStepCost(DEFAULT_USAGE) + fakeStepCost(second), 9);
    expect(events[0]).toEqual({ type: 'session', sessionId: result.sessionId });
    expect(events.filter((e) => e.type === 'session')).toHaveLength(1);
    expect(events).toContainEqual({ type: 'tool_use', name: 'bash', input: "printf 'hello from opencode' > hello.txt" });
    expect(events).toContainEqual({ type: 'tool_result', ok: true, output: expect.any(String) });
    expect(events).toContainEqual({ type: 'text', text: 'Created hello.txt.' });
    expect(events.filter((e) => e.type === 'usage')).toHaveLength(2);
    expect(events.at(-1)).toEqual({ type: 'result', ok: true, text: 'Created hello.txt.' });
    expect(streamed).toContain("$ printf 'hello from opencode' > hello.txt");
    expect(streamed).toContain('opencode: text Created hello.txt.');
    // What the CLI sent: the model asked for, the key, the prompt exactly (from stdin), tools offered.
    const [first, after] = server!.mainRequests();
    expect(first?.body).toMatchObject({ model: OPENCODE_FAKE_MODEL, stream: true });
    expect(first?.headers['x-api-key']).toBe('sk-ant-fake-opencode-key');
    expect(conversationOf(0)).toContain('Create hello.txt, please.');
    expect(conversationOf(0)).not.toContain('\\"Create hello.txt');
    expect(JSON.stringify(after?.body?.messages)).toMatch(/"tool_result","tool_use_id":"toolu_fake\d+_0"/);
  });

  it('classifies a 401 as an auth failure', async () => {
    server = await FakeAnthropicServer.start([]);
    server.failWith('auth');
    const { result } = await run([]);
    expect(result).toMatchObject({ outcome: 'failed', exitCode: 1, failure: { kind: 'auth' } });
    expect(result.message).toContain('401');
    expect(result.message).toContain('invalid x-api-key');
    expect(result.sessionId).toMatch(/^ses_/);
  });

  it('classifies a 429 as a rate limit, with the reset time from the response headers', async () => {
    server = await FakeAnthropicServer.start([]);
    server.failWith('rate-limit', { retryAfterMs: 50 });
    // The CLI retries a 429 too; with retries enough it gives up on its own and reports the headers.
    const { result } = await run([], { cliRetries: 10 });
    expect(result).toMatchObject({ outcome: 'failed', failure: { kind: 'rate-limit', resetAt: new Date(RATE_LIMIT_RESET_UNIX * 1000).toISOString() } });
    expect(result.message).toContain('429');
  });

  // opencode 1.18 retries a 5xx on its own, 5 times (with backoff 2+4+8+16+32 s when the response
  // has no retry-after; here the answer asks for 50 ms), and its JSON stream says nothing until it
  // gives up; its error log on stderr has a "stream error" line for each failed request.
  it('classifies a 529 as overloaded, once the CLI has given up retrying', async () => {
    server = await FakeAnthropicServer.start([]);
    server.failWith('overloaded', { retryAfterMs: 50 });
    // cliRetries above the CLI's own 5: the CLI gives up first.
    const { result, events } = await run([], { cliRetries: 6, stallTimeout: 110_000, timeout: 130_000 });
    expect(result).toMatchObject({ outcome: 'failed', failure: { kind: 'overloaded' } });
    expect(result.message).toContain('529');
    expect(server.mainRequests()).toHaveLength(6);
    expect(events.filter((e) => e.type === 'retrying')).toHaveLength(6);
  }, 150_000);

  it('stops a run whose CLI retries more than cliRetries times in a row, read from its error log', async () => {
    server = await FakeAnthropicServer.start([]);
    // A second between retries (not the CLI's own 2 + 4 s): time enough to stop it at the second.
    server.failWith('overloaded', { retryAfterMs: 1_000 });
    const { result, events, streamed, pid } = await run([], { cliRetries: 1 });
    expect(result).toMatchObject({ outcome: 'failed', failure: { kind: 'overloaded' } });
    expect(result.message).toBe('was stopped: the CLI retried its model request 2 times in a row (cliRetries is 1): AI_APICallError: Overloaded');
    // Stopped at the second; the CLI may get one more request out while it shuts down.
    expect(events.filter((e) => e.type === 'retrying').slice(0, 2)).toEqual([
      { type: 'retrying', attempt: 1, reason: 'AI_APICallError: Overloaded' },
      { type: 'retrying', attempt: 2, reason: 'AI_APICallError: Overloaded' },
    ]);
    expect(streamed).toContain('retrying (attempt 1: AI_APICallError: Overloaded)');
    expect(server.mainRequests().length).toBeGreaterThanOrEqual(2);
    expect(server.mainRequests().length).toBeLessThanOrEqual(3);
    expect(await waitFor(() => !isProcessAlive(pid) && !groupHasLiveMembers(pid!), 5_000)).toBe(true);
  });

  it('is stalled when the model never answers, and its process group is killed', async () => {
    server = await FakeAnthropicServer.start([]);
    server.failWith('hang');
    const { result, pid } = await run([], { stallTimeout: 3_000 });
    expect(result).toMatchObject({ outcome: 'stalled', message: 'produced no output for 3s and was killed' });
    expect(pid).toBeTypeOf('number');
    expect(await waitFor(() => !isProcessAlive(pid) && !groupHasLiveMembers(pid!), 5_000)).toBe(true);
  });

  it('resumes a session: the model sees the earlier conversation, and only this run is counted', async () => {
    const first = await run([{ text: 'First answer: 42.' }]);
    expect(first.result).toMatchObject({ outcome: 'success', output: 'First answer: 42.' });
    server!.play([{ text: 'Second answer: still 42.', usage: { inputTokens: 300, outputTokens: 5, cachedInputTokens: 0 } }]);
    const second = await run([], { prompt: 'Check your answer.', resumeSessionId: first.result.sessionId });
    expect(second.result).toMatchObject({ outcome: 'success', output: 'Second answer: still 42.', sessionId: first.result.sessionId });
    expect(second.result.usage).toMatchObject({ inputTokens: 300, outputTokens: 5, cachedInputTokens: 0 });
    const resumed = conversationOf(1);
    expect(resumed).toContain('Create hello.txt, please.');
    expect(resumed).toContain('First answer: 42.');
    expect(resumed).toContain('Check your answer.');
  });

  it('does not pass tracker tokens to the agent, only its provider key, its own dirs and Loom variables', async () => {
    process.env.GITHUB_TOKEN = 'ghp_must_not_leak';
    process.env.GH_TOKEN = 'gho_must_not_leak';
    const { result } = await run([{ tool: 'bash', input: { command: 'env > env.txt', description: 'Dump env' } }, { text: 'Wrote env.txt.' }]);
    expect(result.outcome).toBe('success');
    const env = fs.readFileSync(path.join(cwd, 'env.txt'), 'utf8');
    expect(env).not.toContain('must_not_leak');
    expect(env).not.toMatch(/^(GITHUB_TOKEN|GH_TOKEN)=/m);
    expect(env).toMatch(/^ANTHROPIC_API_KEY=sk-ant-fake-opencode-key$/m);
    expect(env).toMatch(/^LOOM_ISSUE=7$/m);
    expect(env).toMatch(/^LOOM_ROLE=builder$/m);
    expect(env).toContain(`XDG_DATA_HOME=${path.join(home, 'data')}`);
  });

  it("seeds a new home once from the user's opencode config and login", async () => {
    server = await FakeAnthropicServer.start([{ text: 'Seeded.' }]);
    const user = path.join(root, 'user');
    fs.mkdirSync(path.join(user, 'config'), { recursive: true });
    fs.mkdirSync(path.join(user, 'data'), { recursive: true });
    // The provider comes only from the user's own config this time.
    fs.writeFileSync(path.join(user, 'config', 'opencode.json'), opencodeFakeConfig(server.url));
    fs.writeFileSync(path.join(user, 'data', 'auth.json'), '{}');
    const { result } = await run([], {}, { seedFrom: { configDir: path.join(user, 'config'), dataDir: path.join(user, 'data') }, config: undefined });
    expect(result).toMatchObject({ outcome: 'success', output: 'Seeded.' });
    expect(fs.readFileSync(path.join(home, 'data', 'opencode', 'auth.json'), 'utf8')).toBe('{}');
    // Once: a later change to the user's file does not overwrite the task's copy.
    fs.writeFileSync(path.join(user, 'data', 'auth.json'), '{"changed":true}');
    server.play([{ text: 'Again.' }]);
    const again = await run([], {}, { seedFrom: { configDir: path.join(user, 'config'), dataDir: path.join(user, 'data') }, config: undefined });
    expect(again.result.outcome).toBe('success');
    expect(fs.readFileSync(path.join(home, 'data', 'opencode', 'auth.json'), 'utf8')).toBe('{}');
  });

  it('reports a missing CLI as a config failure', async () => {
    const runtime = new OpencodeRuntime({ command: path.join(root, 'no-such-opencode'), home: () => home, seedFrom: null });
    const result = await runtime.run({ role: 'builder', prompt: 'x', cwd, vars: {}, instructions: '', attempt: 1, stallTimeout: 10_000, timeout: 10_000 });
    expect(result).toMatchObject({ outcome: 'failed', exitCode: 127, failure: { kind: 'config' } });
  });
});

describe("OpencodeRuntime in Loom's sandbox", () => {
  let savedHome: string | undefined;
  let fakeUserHome: string;
  beforeEach(() => {
    savedHome = process.env.HOME;
    fakeUserHome = fakeHome();
    process.env.HOME = fakeUserHome;
  });
  afterEach(() => {
    if (savedHome === undefined) delete process.env.HOME;
    else process.env.HOME = savedHome;
    fs.rmSync(fakeUserHome, { recursive: true, force: true });
  });

  it("runs its shell tool in the worktree, reaching nothing of the user's or Loom's, and commits there", async () => {
    const { repoRoot, worktree } = probeRepo(root);
    const { result, events } = await run([{ tool: 'bash', input: { command: 'sh probe.sh', description: 'Probe' } }, { text: 'Probed.' }], { cwd: worktree, vars: { repo_root: repoRoot }, sandbox: { type: 'bwrap', network: true, hide: [], repoRoot } });
    expect(result.outcome, result.message).toBe('success');
    expect(probeReport(events.flatMap((e) => (e.type === 'tool_result' ? [e.output] : [])).join('\n'))).toEqual(SANDBOXED);
    expect(execFileSync('git', ['log', '-1', '--format=%an: %s', 'loom/issue-1'], { cwd: repoRoot, encoding: 'utf8' }).trim()).toBe('Sandbox Probe: Probe commit');
  });
});
