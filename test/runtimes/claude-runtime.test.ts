// ClaudeRuntime end to end: the REAL Claude Code CLI (node_modules/.bin/claude, pinned in
// package.json) against the fake Anthropic server — real tool calls in a temp git repo, real
// API errors, a real hang killed by the stall watchdog, a real resume. A missing CLI fails.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isProcessAlive } from '../../src/process/process-identity.js';
import { waitFor } from '../../src/process/wait.js';
import { ClaudeRuntime, claudeConfigDir, transcriptLine } from '../../src/runtimes/claude-runtime.js';
import type { AgentEvent, RunContext, RunResult } from '../../src/runtimes/runtime.js';
import { FakeAnthropicServer, RATE_LIMIT_RESET_UNIX } from '../fakes/anthropic-server.js';
import type { ScriptTurn } from '../fakes/anthropic-server.js';
import { fakeHome, probeRepo, probeReport, SANDBOXED, UNSANDBOXED } from '../helpers/sandbox-probe.js';
import { groupHasLiveMembers } from './process-group.js';

const CLAUDE = path.resolve('node_modules/.bin/claude');
const ENV_KEYS = ['ANTHROPIC_BASE_URL', 'ANTHROPIC_API_KEY', 'GITHUB_TOKEN', 'GH_TOKEN', 'HOME'] as const;

let server: FakeAnthropicServer;
let cwd: string;
let stateDir: string;
let userHome: string;
let savedEnv: Partial<Record<(typeof ENV_KEYS)[number], string>>;

beforeEach(async () => {
  cwd = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'loom-claude-repo-')));
  execFileSync('git', ['init', '-q'], { cwd });
  stateDir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'loom-claude-state-')));
  server = await FakeAnthropicServer.start();
  savedEnv = Object.fromEntries(ENV_KEYS.map((k) => [k, process.env[k]]));
  process.env.ANTHROPIC_BASE_URL = server.url;
  process.env.ANTHROPIC_API_KEY = 'test';
  process.env.GITHUB_TOKEN = 'ghp_must_not_leak';
  process.env.GH_TOKEN = 'gho_must_not_leak';
  // The CLI's Bash tool starts a login shell that sources ~/.profile and ~/.bashrc: the machine
  // user's own (a version manager's rehash waiting on a stale lock made every tool call hang)
  // must not decide these tests. An empty home, as on a clean machine.
  userHome = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'loom-claude-home-')));
  process.env.HOME = userHome;
});

afterEach(async () => {
  for (const key of ENV_KEYS) {
    if (savedEnv[key] === undefined) delete process.env[key];
    else process.env[key] = savedEnv[key];
  }
  await server.close();
  fs.rmSync(cwd, { recursive: true, force: true });
  fs.rmSync(stateDir, { recursive: true, force: true });
  fs.rmSync(userHome, { recursive: true, force: true });
});

interface Run {
  result: RunResult;
  events: AgentEvent[];
  transcript: string;
  pid: number | undefined;
}

async function run(script: ScriptTurn[] | null, overrides: Partial<RunContext> = {}): Promise<Run> {
  if (script !== null) server.play(script);
  const events: AgentEvent[] = [];
  let transcript = '';
  let pid: number | undefined;
  const result = await new ClaudeRuntime({ command: CLAUDE }).run({
    role: 'builder',
    prompt: 'Build the thing.',
    cwd,
    vars: { state_dir: stateDir, issue: '7' },
    instructions: 'An issue.',
    attempt: 1,
    stallTimeout: 20_000,
    timeout: 60_000,
    onEvent: (e) => events.push(e),
    onOutput: (text) => (transcript += text),
    onStart: (p) => (pid = p),
    ...overrides,
  });
  return { result, events, transcript, pid };
}

/** Text of every message part in a recorded request, for "did the CLI send X" checks. */
function requestText(body: unknown): string {
  return JSON.stringify(body);
}

describe('ClaudeRuntime with the real claude CLI', () => {
  it('has the pinned CLI installed (this suite fails, not skips, without it)', () => {
    expect(fs.existsSync(CLAUDE)).toBe(true);
    expect(execFileSync(CLAUDE, ['--version'], { encoding: 'utf8' })).toContain('2.1.328');
  });

  it('runs scripted tool calls that create and edit a file; reports session, usage, events and the result text', async () => {
    const file = path.join(cwd, 'hello.txt');
    const { result, events, transcript } = await run([
      { text: 'Creating the file.', tools: [{ tool: 'Write', input: { file_path: file, content: 'hello world\n' } }], usage: { inputTokens: 100, outputTokens: 10, cachedInputTokens: 0 } },
      { tool: 'Edit', input: { file_path: file, old_string: 'world', new_string: 'loom' }, usage: { inputTokens: 200, outputTokens: 20, cachedInputTokens: 50 } },
      { text: 'Done.\nVERDICT: pass', usage: { inputTokens: 300, outputTokens: 30, cachedInputTokens: 150 } },
    ]);
    expect(result.outcome, result.message).toBe('success');
    expect(result.exitCode).toBe(0);
    expect(fs.readFileSync(file, 'utf8')).toBe('hello loom\n');
    expect(result.output).toBe('Done.\nVERDICT: pass');

    const session = events.find((e) => e.type === 'session');
    expect(session).toBeDefined();
    expect(result.sessionId).toMatch(/^[0-9a-f-]{36}$/);
    expect(session).toMatchObject({ type: 'session', sessionId: result.sessionId });

    // The CLI's totals are exactly what the server reported, turn by turn.
    expect(server.mainRequests()).toHaveLength(3);
    expect(result.usage).toMatchObject({ inputTokens: 600, outputTokens: 60, cachedInputTokens: 200 });
    expect(result.usage?.costUsd).toBeGreaterThan(0);

    expect(events.filter((e) => e.type === 'tool_use').map((e) => (e.type === 'tool_use' ? e.name : ''))).toEqual(['Write', 'Edit']);
    expect(events.filter((e) => e.type === 'tool_result').every((e) => e.type === 'tool_result' && e.ok)).toBe(true);
    expect(events[events.length - 1]).toEqual({ type: 'result', ok: true, text: 'Done.\nVERDICT: pass' });
    expect(transcript).toContain('claude: text Creating the file.');
    expect(transcript).toContain(`claude: tool Write {"file_path":"${file}"`);
    expect(transcript).toContain('claude: result ok Done.');
    expect(transcript).toBe(events.map((e) => `${transcriptLine(e)}\n`).join(''));

    // Sessions live in the task's state dir, not in anyone's ~/.claude.
    expect(fs.existsSync(claudeConfigDir({ vars: { state_dir: stateDir } } as unknown as RunContext))).toBe(true);
    expect(server.requests.every((r) => r.body === null || r.headers['x-api-key'] === 'test')).toBe(true);
  });

  it('keeps tracker tokens out of the agent environment; passes its auth, Loom vars and the model', async () => {
    const { result } = await run([{ tool: 'Bash', input: { command: 'env > env.txt', description: 'dump env' } }, { text: 'ok' }], { model: 'claude-test-model' });
    expect(result.outcome, result.message).toBe('success');
    const env = fs.readFileSync(path.join(cwd, 'env.txt'), 'utf8');
    expect(env).not.toContain('GITHUB_TOKEN');
    expect(env).not.toContain('GH_TOKEN');
    expect(env).not.toContain('must_not_leak');
    expect(env).toContain('ANTHROPIC_API_KEY=test');
    expect(env).toContain('LOOM_ROLE=builder');
    expect(env).toContain('LOOM_ISSUE=7');
    expect(env).toContain(`CLAUDE_CONFIG_DIR=${path.join(stateDir, 'claude')}`);
    expect(server.mainRequests()[0]?.body?.model).toBe('claude-test-model');
  });

  it('a 401 fails the run as auth', async () => {
    server.failWith('auth');
    const { result } = await run(null);
    expect(result.outcome).toBe('failed');
    expect(result.failure).toEqual({ kind: 'auth' });
    expect(result.message).toMatch(/API key/i);
    expect(result.sessionId).toBeDefined();
  });

  it('a 429 fails the run as rate-limit after the CLI’s capped retries', async () => {
    server.failWith('rate-limit');
    const { result, events } = await run(null);
    expect(result.outcome).toBe('failed');
    expect(result.failure?.kind).toBe('rate-limit');
    // Through an API key the CLI does not surface the reset; when it does, it is this one.
    if (result.failure?.resetAt !== undefined) expect(result.failure.resetAt).toBe(new Date(RATE_LIMIT_RESET_UNIX * 1000).toISOString());
    // CLAUDE_CODE_MAX_RETRIES=2: the first try and two retries, each reported as an event.
    expect(server.mainRequests()).toHaveLength(3);
    expect(events.filter((e) => e.type === 'retrying')).toHaveLength(2);
  });

  it('a 529 fails the run as overloaded', async () => {
    server.failWith('overloaded');
    const { result } = await run(null);
    expect(result.outcome).toBe('failed');
    expect(result.failure).toEqual({ kind: 'overloaded' });
  });

  it('a hanging API is a stall: the whole process group is killed', async () => {
    server.failWith('hang');
    const { result, pid } = await run(null, { stallTimeout: 3_000 });
    expect(result.outcome).toBe('stalled');
    expect(result.message).toBe('produced no output for 3s and was killed');
    expect(pid).toBeTypeOf('number');
    expect(await waitFor(() => !isProcessAlive(pid) && !groupHasLiveMembers(pid!), 5_000)).toBe(true);
    expect(server.mainRequests().length).toBeGreaterThan(0);
  });

  it('resumes the previous session in the same cwd: the CLI sends the earlier conversation', async () => {
    const first = await run([{ text: 'The secret number is 4242.' }], { prompt: 'Remember the number 4242.' });
    expect(first.result.outcome, first.result.message).toBe('success');
    expect(first.result.sessionId).toBeDefined();
    const before = server.requests.length;

    const second = await run([{ text: 'It was 4242.' }], { prompt: 'What was the number?', resumeSessionId: first.result.sessionId! });
    expect(second.result.outcome, second.result.message).toBe('success');
    expect(second.result.output).toBe('It was 4242.');
    // Claude Code 2.1.328 continues the same session id on --resume.
    expect(second.result.sessionId).toBe(first.result.sessionId);
    const resumed = server.requests.slice(before).find((r) => r.main);
    expect(resumed).toBeDefined();
    const sent = requestText(resumed!.body?.messages);
    expect(sent).toContain('Remember the number 4242.');
    expect(sent).toContain('The secret number is 4242.');
    expect(sent).toContain('What was the number?');
  });

  it('takes any prompt: 200 KB (past the argument limit), or starting with "-"', async () => {
    const big = `--help is not an option here. ${'lorem ipsum '.repeat(17_000)} END-OF-PROMPT`;
    const { result } = await run([{ text: 'read it' }], { prompt: big });
    expect(result.outcome, result.message).toBe('success');
    expect(requestText(server.mainRequests()[0]?.body?.messages)).toContain('END-OF-PROMPT');
    expect(requestText(server.mainRequests()[0]?.body?.messages)).toContain('--help is not an option here.');
  });

  it('an unknown command fails as config, not as the agent', async () => {
    const result = await new ClaudeRuntime({ command: path.join(cwd, 'no-such-claude') }).run({
      role: 'builder',
      prompt: 'x',
      cwd,
      vars: { state_dir: stateDir },
      instructions: '',
      attempt: 1,
      stallTimeout: 5_000,
      timeout: 10_000,
    });
    expect(result.outcome).toBe('failed');
    expect(result.failure).toEqual({ kind: 'config' });
    expect(result.message).toMatch(/exited with code 127/);
  });
});

describe("ClaudeRuntime in Loom's sandbox", () => {
  let savedHome: string | undefined;
  let fakeUserHome: string;
  let repoRoot: string;
  let worktree: string;
  beforeEach(() => {
    savedHome = process.env.HOME;
    fakeUserHome = fakeHome();
    process.env.HOME = fakeUserHome;
    ({ repoRoot, worktree } = probeRepo(cwd));
  });
  afterEach(() => {
    if (savedHome === undefined) delete process.env.HOME;
    else process.env.HOME = savedHome;
    fs.rmSync(fakeUserHome, { recursive: true, force: true });
  });

  const probe = async (type: 'bwrap' | 'none') => {
    // As Loom runs it: the task's home under .loom/agent-homes/issue-1, the repository's root known.
    const { result, events } = await run([{ tool: 'Bash', input: { command: 'sh probe.sh', description: 'probe' } }, { text: 'Probed.' }], {
      cwd: worktree,
      vars: { state_dir: path.join(repoRoot, '.loom', 'agent-homes', 'issue-1'), repo_root: repoRoot },
      sandbox: { type, network: true, hide: [], repoRoot },
    });
    const output = events.flatMap((e) => (e.type === 'tool_result' ? [e.output] : [])).join('\n');
    return { result, report: probeReport(output) };
  };

  it("reaches nothing of the user's or Loom's, writes only its worktree, and commits there; the fake API on 127.0.0.1 still answers", async () => {
    const { result, report } = await probe('bwrap');
    expect(result.outcome, result.message).toBe('success');
    expect(result.output).toBe('Probed.');
    expect(report).toEqual(SANDBOXED);
    expect(execFileSync('git', ['log', '-1', '--format=%an: %s', 'loom/issue-1'], { cwd: repoRoot, encoding: 'utf8' }).trim()).toBe('Sandbox Probe: Probe commit');
    expect(fs.existsSync(path.join(repoRoot, 'OUTSIDE.txt'))).toBe(false);
    // Its session stayed in its task home, so a resume finds it.
    expect(fs.readdirSync(path.join(repoRoot, '.loom', 'agent-homes', 'issue-1', 'claude'))).toContain('projects');
  });

  it('with sandbox none the same probe reaches all of it', async () => {
    const { result, report } = await probe('none');
    expect(result.outcome, result.message).toBe('success');
    expect(report).toEqual(UNSANDBOXED);
  });
});

describe('the fake Anthropic server', () => {
  it('answers non-streaming requests as JSON and side requests without consuming the script', async () => {
    server.play([{ text: 'scripted' }]);
    const post = (url: string, body: unknown) => fetch(`${server.url}${url}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const count = (await (await post('/v1/messages/count_tokens', { model: 'm', messages: [{ role: 'user', content: 'hi' }] })).json()) as { input_tokens: number };
    expect(count.input_tokens).toBeGreaterThan(0);
    const side = (await (await post('/v1/messages', { model: 'm', max_tokens: 1, messages: [{ role: 'user', content: 'quota' }] })).json()) as { content: { text: string }[] };
    expect(side.content[0]?.text).toBe('ok');
    const main = (await (await post('/v1/messages', { model: 'm', max_tokens: 9, tools: [{ name: 'Bash' }], messages: [{ role: 'user', content: 'go' }] })).json()) as {
      content: { text: string }[];
      usage: { input_tokens: number };
    };
    expect(main.content[0]?.text).toBe('scripted');
    expect(main.usage.input_tokens).toBe(server.totalUsage().inputTokens);
    expect(server.requests.map((r) => r.main)).toEqual([false, false, true]);
  });

  it('streams SSE in the wire format: message_start … message_stop, tool input as input_json_delta', async () => {
    server.play([{ tool: 'Bash', input: { command: 'echo hello world' } }]);
    const res = await fetch(`${server.url}/v1/messages`, { method: 'POST', body: JSON.stringify({ model: 'm', stream: true, tools: [{ name: 'Bash' }], messages: [] }) });
    expect(res.headers.get('content-type')).toBe('text/event-stream');
    const frames = (await res.text()).trim().split('\n\n');
    const events = frames.map((f) => /^event: (\S+)$/m.exec(f)?.[1]);
    expect(events[0]).toBe('message_start');
    expect(events.slice(-2)).toEqual(['message_delta', 'message_stop']);
    const data = frames.map((f) => JSON.parse(/^data: (.*)$/m.exec(f)![1]!));
    const json = data.filter((d) => d.delta?.type === 'input_json_delta').map((d) => d.delta.partial_json as string);
    expect(json.length).toBeGreaterThan(1);
    expect(JSON.parse(json.join(''))).toEqual({ command: 'echo hello world' });
    expect(data.find((d) => d.type === 'message_delta').delta.stop_reason).toBe('tool_use');
  });
});
