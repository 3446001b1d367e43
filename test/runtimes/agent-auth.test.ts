// Auth as the original Loom used it: Claude Code logged in with CLAUDE_CODE_OAUTH_TOKEN (what the
// original's account pool handed its workers) gets that token — the REAL claude CLI against the
// fake Anthropic server — and `loom doctor` calls a runtime's auth configured only for
// credentials its agent actually receives.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runDoctor } from '../../src/cli/doctor-command.js';
import { defaultConfig } from '../../src/core/config-model.js';
import { ClaudeRuntime } from '../../src/runtimes/claude-runtime.js';
import { FakeAnthropicServer } from '../fakes/anthropic-server.js';

const CLAUDE = path.resolve('node_modules/.bin/claude');
const ENV_KEYS = ['ANTHROPIC_BASE_URL', 'ANTHROPIC_API_KEY', 'ANTHROPIC_AUTH_TOKEN', 'CLAUDE_CODE_OAUTH_TOKEN'] as const;

let server: FakeAnthropicServer;
let cwd: string;
let home: string;
let saved: Partial<Record<(typeof ENV_KEYS)[number], string>>;

beforeEach(async () => {
  cwd = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'loom-auth-repo-')));
  execFileSync('git', ['init', '-q'], { cwd });
  home = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'loom-auth-home-')));
  server = await FakeAnthropicServer.start();
  saved = Object.fromEntries(ENV_KEYS.map((k) => [k, process.env[k]]));
  for (const k of ENV_KEYS) delete process.env[k];
  process.env.ANTHROPIC_BASE_URL = server.url;
});

afterEach(async () => {
  for (const key of ENV_KEYS) {
    if (saved[key] === undefined) delete process.env[key];
    else process.env[key] = saved[key];
  }
  await server.close();
  fs.rmSync(cwd, { recursive: true, force: true });
  fs.rmSync(home, { recursive: true, force: true });
});

describe('agent auth', () => {
  it('Claude Code gets CLAUDE_CODE_OAUTH_TOKEN and authenticates with it', async () => {
    process.env.CLAUDE_CODE_OAUTH_TOKEN = 'sk-ant-oat01-fixture-token';
    server.play([{ text: 'ok' }]);
    const result = await new ClaudeRuntime({ command: CLAUDE }).run({ role: 'builder', prompt: 'Build it.', cwd, vars: { state_dir: path.join(home, 'state'), issue: '7' }, instructions: 'An issue.', attempt: 1, stallTimeout: 20_000, timeout: 60_000 });
    expect(result.outcome, result.message).toBe('success');
    const main = server.mainRequests();
    expect(main.length).toBeGreaterThan(0);
    expect(main.every((r) => r.headers.authorization === 'Bearer sk-ant-oat01-fixture-token')).toBe(true);
  });

  it('loom doctor: configured for a credential the agent receives, not for a switch that needs credentials the agent does not get', async () => {
    const config = defaultConfig();
    const claude = async (env: NodeJS.ProcessEnv) => (await runDoctor(cwd, config, { PATH: process.env.PATH, HOME: home, ...env })).runtimes.find((r) => r.runtime === 'claude');
    expect(await claude({ CLAUDE_CODE_OAUTH_TOKEN: 'x' })).toMatchObject({ auth: true, authDetail: '$CLAUDE_CODE_OAUTH_TOKEN' });
    expect(await claude({ CLAUDE_CODE_USE_BEDROCK: '1' })).toMatchObject({ auth: false });
    const gemini = (await runDoctor(cwd, config, { PATH: process.env.PATH, HOME: home, GOOGLE_APPLICATION_CREDENTIALS: '/keys/sa.json' })).runtimes.find((r) => r.runtime === 'gemini');
    expect(gemini).toMatchObject({ auth: true, authDetail: '$GOOGLE_APPLICATION_CREDENTIALS' });
  });
});
