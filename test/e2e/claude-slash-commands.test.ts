// The slash commands `loom init --claude` writes, run by the REAL Claude Code CLI (pinned dev
// dependency) against the fake Messages API, which answers with the tool calls each command asks
// for: `/loom` starts the daemon in the background and shows the status, and the session returns
// while the daemon keeps running; `/loom status` and `/loom stop` work the same way; the commands
// may run `loom` and nothing else without asking; `/shepherd N` starts a detached shepherd.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Label } from '../../src/core/labels.js';
import { isProcessAlive } from '../../src/process/process-identity.js';
import { FakeAnthropicServer } from '../fakes/anthropic-server.js';
import type { ScriptTurn } from '../fakes/anthropic-server.js';
import type { TestRepo } from '../helpers/loom-repo.js';
import { LOOM_BIN, killLeftovers, loom, makeRepo, until } from '../helpers/loom-repo.js';

const CLAUDE = path.resolve('node_modules/.bin/claude');

let repo: TestRepo | undefined;
let server: FakeAnthropicServer | undefined;
let home: string;
let shims: string;

beforeEach(() => {
  home = fs.mkdtempSync(path.join(os.tmpdir(), 'loom-claude-home-'));
  // `loom` on the PATH Claude Code's shell sees, as `npm link` would put it there.
  shims = fs.mkdtempSync(path.join(os.tmpdir(), 'loom-shims-'));
  fs.writeFileSync(path.join(shims, 'loom'), `#!/bin/sh\nexec "${process.execPath}" "${LOOM_BIN}" "$@"\n`, { mode: 0o755 });
});

afterEach(async () => {
  // The daemon and shepherds a command started in the background, whatever the test's outcome.
  if (repo) killLeftovers(repo.paths);
  repo?.cleanup();
  repo = undefined;
  await server?.close();
  server = undefined;
  fs.rmSync(home, { recursive: true, force: true });
  fs.rmSync(shims, { recursive: true, force: true });
});

interface StreamEvent {
  type: string;
  subtype?: string;
  is_error?: boolean;
  message?: { content?: { type: string; content?: unknown; is_error?: boolean; tool_use_id?: string }[] };
  [key: string]: unknown;
}

interface Session {
  code: number | null;
  events: StreamEvent[];
  ms: number;
  stderr: string;
}

function claudeEnv(): NodeJS.ProcessEnv {
  return {
    ...process.env,
    PATH: `${shims}:${path.dirname(CLAUDE)}:${process.env.PATH ?? ''}`,
    HOME: home,
    CLAUDE_CONFIG_DIR: path.join(home, '.claude'),
    ANTHROPIC_BASE_URL: server!.url,
    ANTHROPIC_API_KEY: 'test-key',
    CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
    DISABLE_AUTOUPDATER: '1',
  };
}

/** `claude -p <prompt>` in the repository, in Claude Code's default permission mode; its stream parsed. */
function claude(prompt: string, script: ScriptTurn[]): Promise<Session> {
  server!.play(script);
  sessionStart = server!.mainRequests().length;
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(CLAUDE, ['-p', prompt, '--output-format', 'stream-json', '--verbose'], { cwd: repo!.root, env: claudeEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      const events = stdout
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as StreamEvent);
      resolve({ code, events, ms: Date.now() - started, stderr });
    });
  });
}

/** The text of each tool result, in order. */
function toolResults(session: Session): { text: string; error: boolean }[] {
  return session.events
    .filter((e) => e.type === 'user')
    .flatMap((e) => e.message?.content ?? [])
    .filter((c) => c.type === 'tool_result')
    .map((c) => ({ text: typeof c.content === 'string' ? c.content : JSON.stringify(c.content), error: c.is_error === true }));
}

const bash = (command: string): ScriptTurn => ({ tool: 'Bash', input: { command, description: command } });
const result = (session: Session) => session.events.find((e) => e.type === 'result');
const denied = (session: Session) => session.events.filter((e) => e.subtype === 'permission_denied');
/** Main requests served before the latest session. */
let sessionStart = 0;
/** What the CLI sent as the user's turn in the latest session's first request: the expanded command. */
const firstPrompt = () => JSON.stringify(server!.mainRequests()[sessionStart]?.body?.messages?.[0]?.content ?? '');

async function setUp(config: Record<string, unknown>) {
  expect(fs.existsSync(CLAUDE), 'the pinned @anthropic-ai/claude-code must be installed').toBe(true);
  server = await FakeAnthropicServer.start();
  repo = makeRepo(config);
  const init = loom(repo.root, ['init', '--claude']);
  expect(init.code, init.stderr).toBe(0);
}

describe('/loom and /shepherd in the real Claude Code CLI', () => {
  it('/loom starts the daemon in the background and shows the status; the session returns while the daemon keeps running', async () => {
    await setUp({ pollInterval: '1s' });
    const start = await claude('/loom', [bash('loom start --detach'), bash('loom status'), { text: 'Loom is running in the background.' }]);
    expect(start.code, start.stderr).toBe(0);
    expect(result(start)?.is_error).toBe(false);
    // The CLI expanded our command file: its table of what to run for no arguments.
    expect(firstPrompt()).toContain('`loom start --detach`, then `loom status`');
    expect(denied(start)).toEqual([]);
    const [started, shown] = toolResults(start);
    expect(started?.error).toBe(false);
    const pid = Number(/Loom daemon running in the background \(pid (\d+)\)/.exec(started?.text ?? '')?.[1]);
    expect(pid, started?.text).toBeGreaterThan(0);
    expect(shown?.text).toContain('LOOM DAEMON STATUS');
    expect(shown?.text).toContain(`Status: Running (pid ${pid})`);
    // The session is over; the daemon it started is not — and it did not hold the session up.
    expect(start.ms).toBeLessThan(60_000);
    expect(isProcessAlive(pid)).toBe(true);
    expect(JSON.parse(loom(repo!.root, ['status', '--json']).stdout).daemon).toMatchObject({ status: 'running', pid });
    await until(() => /Iteration 2:/.test(fs.readFileSync(repo!.paths.daemonLog, 'utf8')), 30_000, 'the daemon keeps iterating after the session ended');

    // `/loom status` runs `loom status`; anything but `loom` is not allowed without asking.
    const status = await claude('/loom status', [bash('touch escaped.txt'), bash('loom status'), { text: 'Shown.' }]);
    expect(status.code, status.stderr).toBe(0);
    expect(firstPrompt()).toContain('The arguments are: \\"status\\"');
    expect(denied(status).map((e) => e.tool_name)).toEqual(['Bash']);
    expect(fs.existsSync(path.join(repo!.root, 'escaped.txt'))).toBe(false);
    expect(toolResults(status)[1]?.text).toContain(`Status: Running (pid ${pid})`);

    // `/loom stop` ends it.
    const stop = await claude('/loom stop', [bash('loom stop'), { text: 'Stopping.' }]);
    expect(stop.code, stop.stderr).toBe(0);
    expect(toolResults(stop)[0]?.text).toContain(`the daemon (pid ${pid}) finishes active shepherds and exits`);
    await until(() => !isProcessAlive(pid), 60_000, 'the daemon stopped');
  });

  it('/shepherd N starts the shepherd in the background and shows its log so far', async () => {
    await setUp({ roles: { builder: { command: 'echo building; sleep 60' } } });
    await repo!.tracker().createIssue({ title: 'slow', labels: [Label.issue] });
    const session = await claude('/shepherd 1', [bash('loom spawn 1'), bash('loom logs 1'), { text: 'Started.' }]);
    expect(session.code, session.stderr).toBe(0);
    expect(firstPrompt()).toContain('Run `loom spawn 1`');
    expect(firstPrompt()).toContain('Run `loom logs N` (without `-f`), N being the issue number');
    expect(denied(session)).toEqual([]);
    const [spawned, logs] = toolResults(session);
    const pid = Number(/Spawned shepherd for #1 \((?:in the shepherd host, )?pid (\d+)\)/.exec(spawned?.text ?? '')?.[1]);
    expect(pid, spawned?.text).toBeGreaterThan(0);
    expect(logs?.error).toBe(false);
    expect(session.ms).toBeLessThan(60_000);
    // The shepherd outlives the session and works on the issue.
    expect(isProcessAlive(pid)).toBe(true);
    await until(async () => (await repo!.tracker().getIssue(1))?.labels.includes(Label.building), 30_000, '#1 claimed');
  });

  it('Claude Code reads the front matter: /loom and /shepherd are listed with their description and argument hint', async () => {
    await setUp({});
    const child = spawn(CLAUDE, ['-p', '--input-format', 'stream-json', '--output-format', 'stream-json', '--verbose'], { cwd: repo!.root, env: claudeEnv(), stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stdin.write(`${JSON.stringify({ type: 'control_request', request_id: 'init-1', request: { subtype: 'initialize' } })}\n`);
    try {
      const line = await until(() => stdout.split('\n').find((l) => l.includes('"control_response"')), 60_000, 'the CLI answered initialize');
      const commands = (JSON.parse(line) as { response: { response: { commands: { name: string; description: string; argumentHint: string }[] } } }).response.response.commands;
      const loomCommand = commands.find((c) => c.name === 'loom');
      const shepherd = commands.find((c) => c.name === 'shepherd');
      expect(loomCommand?.description).toMatch(/^Run Loom for this repository/);
      expect(loomCommand?.argumentHint).toBe('[status | stop | iterate | spawn <issue> | why <issue> | logs <issue|role|daemon> | --force]');
      expect(shepherd?.description).toMatch(/^Start a Loom shepherd for one issue in the background/);
      expect(shepherd?.argumentHint).toBe('<issue> [--force-merge]');
    } finally {
      child.stdin.end();
      child.kill('SIGKILL');
    }
  });
});
