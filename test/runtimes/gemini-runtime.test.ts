// GeminiRuntime end to end: the real `gemini` CLI (node_modules/.bin, pinned) against a fake
// Gemini API. A missing CLI fails these tests; it never skips them.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isProcessAlive } from '../../src/process/process-identity.js';
import { waitFor } from '../../src/process/wait.js';
import { GeminiRuntime, geminiSettingsWithRetries } from '../../src/runtimes/gemini-runtime.js';
import type { RunContext } from '../../src/runtimes/runtime.js';
import { startFakeGeminiServer } from '../fakes/gemini-server.js';
import type { FakeGeminiServer, FakeGeminiTurn } from '../fakes/gemini-server.js';
import { collectRun, isolateEnv, scratchRepo } from './cli-harness.js';
import type { Run } from './cli-harness.js';
import { fakeHome, probeRepo, probeReport, SANDBOXED } from '../helpers/sandbox-probe.js';
import { groupHasLiveMembers } from './process-group.js';

const GEMINI = path.resolve('node_modules/.bin/gemini');
const SAVED_ENV = ['GEMINI_API_KEY', 'GOOGLE_API_KEY', 'GOOGLE_GEMINI_BASE_URL', 'GOOGLE_GENAI_USE_VERTEXAI', 'GOOGLE_CLOUD_PROJECT', 'GEMINI_CLI_SYSTEM_SETTINGS_PATH', 'GITHUB_TOKEN', 'GH_TOKEN'] as const;

/**
 * Settings for the test home: API-key auth (the CLI rejects the "gateway" auth type it would pick
 * for GOOGLE_GEMINI_BASE_URL), no usage statistics sent to Google, and no retries, so failures
 * surface at once.
 */
const SETTINGS = JSON.stringify({ security: { auth: { selectedType: 'gemini-api-key' } }, privacy: { usageStatisticsEnabled: false }, general: { maxAttempts: 1 } });

let root: string;
let cwd: string;
let home: string;
let server: FakeGeminiServer | null = null;
let restoreEnv: () => void;

beforeEach(() => {
  restoreEnv = isolateEnv(SAVED_ENV);
  process.env.GEMINI_API_KEY = 'fake-gemini-key';
  ({ root, cwd, home } = scratchRepo('loom-gemini-test-', 'gemini-home'));
});

afterEach(async () => {
  restoreEnv();
  await server?.close();
  server = null;
  fs.rmSync(root, { recursive: true, force: true });
});

async function run(script: readonly FakeGeminiTurn[], overrides: Partial<RunContext> = {}, settings = SETTINGS): Promise<Run> {
  server ??= await startFakeGeminiServer(script);
  process.env.GOOGLE_GEMINI_BASE_URL = server.baseUrl;
  const runtime = new GeminiRuntime({ command: GEMINI, home: () => home, settings });
  return collectRun(runtime, {
    role: 'builder',
    prompt: 'Create hello.txt, please.',
    cwd,
    vars: { issue: '7' },
    instructions: 'An issue.',
    attempt: 1,
    model: 'gemini-fake-model',
    // Generous: on a loaded machine the CLI's start-up alone (a large bundle) can take tens of
    // seconds of silence. The tests of stalls and time-outs set their own short limits.
    stallTimeout: 120_000,
    timeout: 180_000,
    ...overrides,
  });
}

/** The `contents` of the n-th turn request, as JSON text. */
function contentsOf(n: number): string {
  const body = server!.turnRequests()[n]?.body as { contents?: unknown } | undefined;
  return JSON.stringify(body?.contents ?? []);
}

const UUID = /^[0-9a-f-]{36}$/;

describe('GeminiRuntime with the real gemini CLI', { timeout: 400_000 }, () => {
  it('has the pinned CLI installed', () => {
    expect(fs.existsSync(GEMINI)).toBe(true);
    expect(execFileSync(GEMINI, ['--version'], { encoding: 'utf8' })).toContain('0.61.0');
  });

  it('runs a write_file tool call that creates a file, and reports session id, tokens, events and the final text', async () => {
    const { result, events, streamed } = await run([
      { kind: 'tool', name: 'write_file', args: { file_path: 'hello.txt', content: 'hello from gemini' }, usage: { input: 100, cached: 40, output: 10 } },
      { kind: 'text', text: 'Created hello.txt.', usage: { input: 200, cached: 60, output: 20 } },
    ]);
    expect(result).toMatchObject({ outcome: 'success', exitCode: 0, output: 'Created hello.txt.', message: '' });
    expect(fs.readFileSync(path.join(cwd, 'hello.txt'), 'utf8')).toBe('hello from gemini');
    expect(result.sessionId).toMatch(UUID);
    expect(result.usage).toEqual({ inputTokens: 300, outputTokens: 30, cachedInputTokens: 100, costUsd: null });
    expect(events[0]).toEqual({ type: 'session', sessionId: result.sessionId, model: 'gemini-fake-model' });
    expect(events).toContainEqual({ type: 'tool_use', name: 'write_file', input: expect.stringContaining('hello.txt') });
    expect(events).toContainEqual({ type: 'tool_result', ok: true, output: expect.any(String) });
    expect(events).toContainEqual({ type: 'text', text: 'Created hello.txt.' });
    expect(events.at(-1)).toEqual({ type: 'result', ok: true, text: 'Created hello.txt.' });
    expect(streamed).toContain('[tool] write_file');
    expect(streamed).toContain('Created hello.txt.');
    // What the CLI sent: the model asked for, the key, the prompt, the tool offered, then its result.
    const [first, second] = server!.turnRequests();
    expect(first?.url).toBe('/v1beta/models/gemini-fake-model:streamGenerateContent?alt=sse');
    expect(first?.headers['x-goog-api-key']).toBe('fake-gemini-key');
    expect(contentsOf(0)).toContain('Create hello.txt, please.');
    const tools = (first?.body as { tools: Array<{ functionDeclarations?: Array<{ name: string }> }> }).tools.flatMap((t) => t.functionDeclarations ?? []);
    expect(tools.map((t) => t.name)).toContain('write_file');
    expect(JSON.stringify((second?.body as { contents?: unknown } | undefined)?.contents)).toContain('"functionResponse"');
    expect(server!.remaining()).toBe(0);
  });

  it('classifies a 401 as an auth failure (exit code 401 mod 256)', async () => {
    const { result } = await run([{ kind: 'error', status: 401, message: 'API key not valid. Please pass a valid API key.' }]);
    expect(result).toMatchObject({ outcome: 'failed', exitCode: 145, failure: { kind: 'auth' } });
    expect(result.message).toContain('401');
    expect(result.sessionId).toMatch(UUID);
  });

  it('classifies a 429 as a rate limit, with the reset time the API gave', async () => {
    const before = Date.now();
    const { result } = await run([{ kind: 'error', status: 429, message: 'Resource has been exhausted (e.g. check quota).', retryDelay: '3600s' }]);
    expect(result).toMatchObject({ outcome: 'failed', exitCode: 173, failure: { kind: 'rate-limit' } });
    const resetAt = Date.parse(result.failure?.resetAt ?? '');
    expect(resetAt).toBeGreaterThanOrEqual(before + 3_600_000);
    expect(resetAt).toBeLessThanOrEqual(Date.now() + 3_600_000);
  });

  it('classifies a 503 as overloaded', async () => {
    const { result } = await run([{ kind: 'error', status: 503, message: 'The model is overloaded. Please try again later.' }]);
    expect(result).toMatchObject({ outcome: 'failed', exitCode: 247, failure: { kind: 'overloaded' } });
  });

  const overloaded: FakeGeminiTurn = { kind: 'error', status: 503, message: 'The model is overloaded. Please try again later.' };
  // The user's settings leave maxAttempts at the CLI's default (10 attempts, with growing waits).
  const uncappedSettings = JSON.stringify({ security: { auth: { selectedType: 'gemini-api-key' } }, privacy: { usageStatisticsEnabled: false } });

  it("caps the CLI's own retries at cliRetries in the task's settings, keeping the rest of them", async () => {
    const { result, events } = await run([overloaded, overloaded, overloaded, overloaded], { cliRetries: 1 }, uncappedSettings);
    expect(result).toMatchObject({ outcome: 'failed', exitCode: 247, failure: { kind: 'overloaded' } });
    // The first attempt and one retry, reported as a retrying event.
    expect(server!.turnRequests()).toHaveLength(2);
    expect(events.filter((e) => e.type === 'retrying')).toEqual([{ type: 'retrying', attempt: 1, reason: expect.stringContaining('status 503') as string }]);
    const written = JSON.parse(fs.readFileSync(path.join(home, '.gemini', 'settings.json'), 'utf8')) as unknown;
    expect(written).toEqual({ ...(JSON.parse(uncappedSettings) as object), general: { maxAttempts: 2 } });
  });

  it('stops a run whose CLI retries more than cliRetries times in a row anyway (settings with comments are left alone)', async () => {
    const commented = `// mine\n${JSON.stringify({ ...(JSON.parse(uncappedSettings) as object), general: { maxAttempts: 6 } })}`;
    const { result, events, pid } = await run([overloaded, overloaded, overloaded, overloaded, overloaded, overloaded], { cliRetries: 1 }, commented);
    expect(fs.readFileSync(path.join(home, '.gemini', 'settings.json'), 'utf8')).toBe(commented);
    expect(result).toMatchObject({ outcome: 'failed', failure: { kind: 'overloaded' } });
    expect(result.message).toMatch(/^was stopped: the CLI retried its model request 2 times in a row \(cliRetries is 1\): status 503/);
    expect(events.filter((e) => e.type === 'retrying').map((e) => (e.type === 'retrying' ? e.attempt : 0))).toEqual([1, 2]);
    expect(server!.turnRequests()).toHaveLength(2);
    expect(await waitFor(() => !isProcessAlive(pid) && !groupHasLiveMembers(pid!), 5_000)).toBe(true);
  });

  it('is stalled when the model never answers, and its process group is killed', async () => {
    // 5 s, not 3: the CLI prints nothing for its first 2-4 s of start-up on a loaded machine.
    const { result, pid } = await run([{ kind: 'hang' }], { stallTimeout: 5_000 });
    expect(result).toMatchObject({ outcome: 'stalled', message: 'produced no output for 5s and was killed' });
    expect(server!.turnRequests()).toHaveLength(1);
    expect(result.sessionId).toMatch(UUID);
    expect(pid).toBeTypeOf('number');
    expect(await waitFor(() => !isProcessAlive(pid) && !groupHasLiveMembers(pid!), 5_000)).toBe(true);
  });

  it('does not pass tracker tokens to the agent, only its own key and Loom variables', async () => {
    process.env.GITHUB_TOKEN = 'ghp_must_not_leak';
    process.env.GH_TOKEN = 'gho_must_not_leak';
    const { result } = await run([{ kind: 'tool', name: 'run_shell_command', args: { command: 'env > env.txt' } }, { kind: 'text', text: 'Wrote env.txt.' }]);
    expect(result.outcome).toBe('success');
    const env = fs.readFileSync(path.join(cwd, 'env.txt'), 'utf8');
    expect(env).not.toContain('must_not_leak');
    expect(env).not.toMatch(/^(GITHUB_TOKEN|GH_TOKEN)=/m);
    expect(env).toMatch(/^GEMINI_API_KEY=fake-gemini-key$/m);
    expect(env).toMatch(/^LOOM_ISSUE=7$/m);
    expect(env).toMatch(/^LOOM_ROLE=builder$/m);
    expect(env).toContain(`GEMINI_CLI_HOME=${home}`);
  });

  it('resumes a session: the model sees the earlier conversation', async () => {
    const first = await run([
      { kind: 'text', text: 'First answer: 42.', usage: { input: 100, output: 10 } },
      { kind: 'text', text: 'Second answer: still 42.', usage: { input: 150, cached: 100, output: 5 } },
    ]);
    expect(first.result).toMatchObject({ outcome: 'success', output: 'First answer: 42.' });
    const second = await run([], { prompt: 'Check your answer.', resumeSessionId: first.result.sessionId });
    expect(second.result).toMatchObject({ outcome: 'success', output: 'Second answer: still 42.', sessionId: first.result.sessionId });
    expect(second.result.usage).toEqual({ inputTokens: 150, outputTokens: 5, cachedInputTokens: 100, costUsd: null });
    const resumed = contentsOf(1);
    expect(resumed).toContain('Create hello.txt, please.');
    expect(resumed).toContain('First answer: 42.');
    expect(resumed).toContain('Check your answer.');
  });

  it('hands a prompt too long for one argument over on stdin', async () => {
    const prompt = `${'Context line.\n'.repeat(10_000)}-- The end of a long prompt.`;
    const { result } = await run([{ kind: 'text', text: 'Read it all.' }], { prompt });
    expect(result).toMatchObject({ outcome: 'success', output: 'Read it all.' });
    expect(contentsOf(0)).toContain('-- The end of a long prompt.');
  });

  it('reports a missing CLI as a config failure', async () => {
    const runtime = new GeminiRuntime({ command: path.join(root, 'no-such-gemini'), home: () => home });
    const result = await runtime.run({ role: 'builder', prompt: 'x', cwd, vars: {}, instructions: '', attempt: 1, stallTimeout: 10_000, timeout: 10_000 });
    expect(result).toMatchObject({ outcome: 'failed', exitCode: 127, failure: { kind: 'config' } });
  });
});

describe('geminiSettingsWithRetries', () => {
  it('sets general.maxAttempts to the retries plus the first attempt, keeping other settings', () => {
    expect(JSON.parse(geminiSettingsWithRetries(undefined, 2)!)).toEqual({ general: { maxAttempts: 3 } });
    expect(JSON.parse(geminiSettingsWithRetries('{"general":{"vimMode":true},"tools":{"sandbox":true}}', 0)!)).toEqual({ general: { vimMode: true, maxAttempts: 1 }, tools: { sandbox: true } });
  });

  it("keeps a lower setting, and never goes above the CLI's limit of 10", () => {
    expect(JSON.parse(geminiSettingsWithRetries('{"general":{"maxAttempts":2}}', 5)!)).toEqual({ general: { maxAttempts: 2 } });
    expect(JSON.parse(geminiSettingsWithRetries('', 40)!)).toEqual({ general: { maxAttempts: 10 } });
  });

  it('leaves settings that are not plain JSON as they are', () => {
    expect(geminiSettingsWithRetries('{ // mine\n "general": {} }', 2)).toBeNull();
    expect(geminiSettingsWithRetries('[1, 2]', 2)).toBeNull();
  });
});

describe("GeminiRuntime in Loom's sandbox", () => {
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
    const { result, events } = await run([{ kind: 'tool', name: 'run_shell_command', args: { command: 'sh probe.sh' } }, { kind: 'text', text: 'Probed.' }], { cwd: worktree, vars: { repo_root: repoRoot }, sandbox: { type: 'bwrap', network: true, hide: [], repoRoot } });
    expect(result.outcome, result.message).toBe('success');
    expect(probeReport(events.flatMap((e) => (e.type === 'tool_result' ? [e.output] : [])).join('\n'))).toEqual(SANDBOXED);
    expect(execFileSync('git', ['log', '-1', '--format=%an: %s', 'loom/issue-1'], { cwd: repoRoot, encoding: 'utf8' }).trim()).toBe('Sandbox Probe: Probe commit');
  });
});
