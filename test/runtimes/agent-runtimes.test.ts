// ScriptRuntime and CommandRuntime end to end: real agent processes, real watchdogs, real kills.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isProcessAlive } from '../../src/process/process-identity.js';
import { waitFor } from '../../src/process/wait.js';
import { CommandRuntime } from '../../src/runtimes/command-runtime.js';
import { varName } from '../../src/runtimes/loom-vars.js';
import { OUTPUT_LIMIT } from '../../src/runtimes/output-tail.js';
import type { AgentRuntime, RunContext, RunResult } from '../../src/runtimes/runtime.js';
import { ScriptRuntime } from '../../src/runtimes/script-runtime.js';
import { groupHasLiveMembers } from './process-group.js';

const fence = '```';
let cwd: string;

beforeEach(() => {
  cwd = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'loom-runtime-')));
});

afterEach(() => {
  fs.rmSync(cwd, { recursive: true, force: true });
});

/**
 * One agent program per runtime: the script runtime takes its steps from the instructions (a
 * builder block), the command runtime runs a shell command.
 */
interface Kind {
  name: string;
  make(program: { script: string[]; command: string }): { runtime: AgentRuntime; instructions: string };
}

const kinds: Kind[] = [
  {
    name: 'ScriptRuntime',
    make: ({ script }) => ({ runtime: new ScriptRuntime(), instructions: ['An issue.', `${fence}loom-script builder`, ...script, fence].join('\n') }),
  },
  {
    name: 'CommandRuntime',
    make: ({ command }) => ({ runtime: new CommandRuntime({ command }), instructions: 'An issue.' }),
  },
];

interface Run {
  result: RunResult;
  pid: number | undefined;
  streamed: string;
}

async function run(kind: Kind, program: { script: string[]; command: string }, overrides: Partial<RunContext> = {}): Promise<Run> {
  const { runtime, instructions } = kind.make(program);
  let pid: number | undefined;
  let streamed = '';
  const result = await runtime.run({
    role: 'builder',
    prompt: 'Build the thing.',
    cwd,
    vars: {},
    instructions,
    attempt: 1,
    stallTimeout: 30_000,
    timeout: 60_000,
    onStart: (p) => (pid = p),
    onOutput: (text) => (streamed += text),
    ...overrides,
  });
  return { result, pid, streamed };
}

/** The agent's process and everything in its group end, within a deadline. */
async function expectGroupGone(pid: number | undefined): Promise<void> {
  expect(pid).toBeTypeOf('number');
  const gone = await waitFor(() => !isProcessAlive(pid) && !groupHasLiveMembers(pid!), 5_000);
  expect(gone).toBe(true);
}

const readPid = (file: string) => Number(fs.readFileSync(path.join(cwd, file), 'utf8').trim());

describe.each(kinds)('$name', (kind) => {
  it('succeeds, working in cwd and streaming its output', async () => {
    const { result, pid, streamed } = await run(kind, {
      script: ['say hello from the agent', 'write out.txt <<EOF', 'hello', 'EOF'],
      command: 'echo hello from the agent; echo hello > out.txt',
    });
    expect(result).toMatchObject({ outcome: 'success', exitCode: 0, message: '' });
    expect(result.output).toContain('hello from the agent\n');
    expect(streamed).toBe(result.output);
    expect(fs.readFileSync(path.join(cwd, 'out.txt'), 'utf8')).toBe('hello\n');
    expect(result.duration).toBeGreaterThan(0);
    await expectGroupGone(pid);
  });

  it('fails on a non-zero exit, with the last output line in the message', async () => {
    const { result } = await run(kind, {
      script: ['say working', 'fail broken build'],
      command: 'echo working; echo broken build >&2; exit 3',
    });
    const code = kind.name === 'ScriptRuntime' ? 1 : 3;
    expect(result).toMatchObject({ outcome: 'failed', exitCode: code, message: `exited with code ${code}: broken build` });
    expect(result.output).toContain('working\n');
  });

  it('is stalled when silent for stallTimeout, and its process group is killed', async () => {
    const { result, pid } = await run(kind, { script: ['say started', 'hang'], command: 'sleep 30' }, { stallTimeout: 500 });
    expect(result).toMatchObject({ outcome: 'stalled', message: 'produced no output for 0.5s and was killed' });
    expect(result.duration).toBeLessThan(15_000);
    await expectGroupGone(pid);
  });

  it('kills what the agent started in the background too', async () => {
    const command = 'sleep 30 & echo $! > bg.pid; wait';
    const controller = new AbortController();
    let pid: number | undefined;
    const running = run(kind, { script: [`run ${command}`], command }, { signal: controller.signal, onStart: (p) => (pid = p) });
    const bgFile = path.join(cwd, 'bg.pid');
    expect(await waitFor(() => fs.existsSync(bgFile) && fs.readFileSync(bgFile, 'utf8').endsWith('\n'), 20_000)).toBe(true);
    const bg = readPid('bg.pid');
    expect(isProcessAlive(bg)).toBe(true);
    controller.abort();
    expect((await running).result.outcome).toBe('aborted');
    await expectGroupGone(pid);
    expect(await waitFor(() => !isProcessAlive(bg), 5_000)).toBe(true);
  });

  it('times out after timeout, and its process group is killed', async () => {
    const { result, pid } = await run(kind, { script: ['hang'], command: 'sleep 30' }, { timeout: 1_000 });
    expect(result).toMatchObject({ outcome: 'timeout', message: 'was still running after 1s and was killed' });
    await expectGroupGone(pid);
  });

  it('is aborted through its AbortSignal', async () => {
    const controller = new AbortController();
    const { runtime, instructions } = kind.make({ script: ['say started', 'hang'], command: 'echo started; sleep 30' });
    let pid: number | undefined;
    let streamed = '';
    const running = runtime.run({
      role: 'builder',
      prompt: 'p',
      cwd,
      vars: {},
      instructions,
      attempt: 1,
      stallTimeout: 30_000,
      timeout: 60_000,
      signal: controller.signal,
      onStart: (p) => (pid = p),
      onOutput: (text) => (streamed += text),
    });
    expect(await waitFor(() => streamed.includes('started'), 20_000)).toBe(true);
    expect(pid !== undefined && isProcessAlive(pid)).toBe(true);
    controller.abort();
    const result = await running;
    expect(result).toMatchObject({ outcome: 'aborted', message: 'was stopped' });
    await expectGroupGone(pid);
  });

  it('is aborted at once when the signal is already aborted', async () => {
    const { result, pid } = await run(kind, { script: ['hang'], command: 'sleep 30' }, { signal: AbortSignal.abort() });
    expect(result.outcome).toBe('aborted');
    await expectGroupGone(pid);
  });

  it('gets an allowlisted environment: no tracker tokens, Loom variables, prompt and instructions files', async () => {
    const saved = { GITHUB_TOKEN: process.env.GITHUB_TOKEN, GH_TOKEN: process.env.GH_TOKEN };
    process.env.GITHUB_TOKEN = 'secret-github-token';
    process.env.GH_TOKEN = 'secret-gh-token';
    try {
      const show = 'env; echo "prompt: $(cat "$LOOM_PROMPT_FILE")"; echo "instructions: $(head -n 1 "$LOOM_INSTRUCTIONS_FILE")"';
      const { result } = await run(kind, { script: [`run ${show}`], command: show }, { attempt: 2, vars: { issue: '42', issueTitle: 'Add sub', role: 'not-the-role' } });
      expect(result.outcome).toBe('success');
      expect(result.output).not.toContain('secret-');
      expect(result.output).not.toMatch(/^(GITHUB_TOKEN|GH_TOKEN)=/m);
      const env = Object.fromEntries(
        result.output
          .split('\n')
          .filter((l) => /^[A-Z_][A-Z0-9_]*=/.test(l))
          .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
      );
      expect(env).toMatchObject({ LOOM_ROLE: 'builder', LOOM_ATTEMPT: '2', LOOM_ISSUE: '42', LOOM_ISSUE_TITLE: 'Add sub', PATH: process.env.PATH });
      expect(result.output).toContain('prompt: Build the thing.\n');
      expect(result.output).toContain('instructions: An issue.\n');
      // The prompt and instructions live in a temp dir that is removed afterwards.
      expect(fs.existsSync(env.LOOM_PROMPT_FILE!)).toBe(false);
      expect(fs.existsSync(path.dirname(env.LOOM_INSTRUCTIONS_FILE!))).toBe(false);
    } finally {
      for (const [key, value] of Object.entries(saved)) {
        if (value === undefined) delete process.env[key];
        else process.env[key] = value;
      }
    }
  });
});

describe('CommandRuntime specifics', () => {
  it('keeps a chatty agent alive past stallTimeout: output renews the lease until the timeout', async () => {
    const runtime = new CommandRuntime({ command: 'while true; do echo tick; sleep 0.1; done' });
    let pid: number | undefined;
    const result = await runtime.run({ role: 'builder', prompt: '', cwd, vars: {}, instructions: '', attempt: 1, stallTimeout: 500, timeout: 2_000, onStart: (p) => (pid = p) });
    expect(result.outcome).toBe('timeout');
    expect(result.output.split('\n').filter((l) => l === 'tick').length).toBeGreaterThan(5);
    await expectGroupGone(pid);
  });

  it('keeps the end of the output, capped at 1 MB, while streaming all of it', async () => {
    const runtime = new CommandRuntime({ command: "head -c 3000000 /dev/zero | tr '\\0' x; echo; echo END" });
    let streamed = 0;
    const result = await runtime.run({ role: 'builder', prompt: '', cwd, vars: {}, instructions: '', attempt: 1, stallTimeout: 30_000, timeout: 60_000, onOutput: (t) => (streamed += t.length) });
    expect(result.outcome).toBe('success');
    expect(streamed).toBe(3_000_000 + '\nEND\n'.length);
    expect(result.output.length).toBe(OUTPUT_LIMIT);
    expect(result.output.endsWith('xxx\nEND\n')).toBe(true);
  });

  it('reports a command that cannot start as failed instead of throwing', async () => {
    const runtime = new CommandRuntime({ command: 'true' });
    const result = await runtime.run({ role: 'builder', prompt: '', cwd: path.join(cwd, 'missing'), vars: {}, instructions: '', attempt: 1, stallTimeout: 5_000, timeout: 5_000 });
    expect(result.outcome).toBe('failed');
    expect(result.message).toMatch(/^could not start: /);
  });

  it('survives a throwing onOutput or onStart callback and still supervises the agent', async () => {
    const runtime = new CommandRuntime({ command: 'echo hi; sleep 30' });
    let pid: number | undefined;
    const result = await runtime.run({
      role: 'builder',
      prompt: '',
      cwd,
      vars: {},
      instructions: '',
      attempt: 1,
      stallTimeout: 500,
      timeout: 30_000,
      onStart: (p) => {
        pid = p;
        throw new Error('listener bug');
      },
      onOutput: () => {
        throw new Error('listener bug');
      },
    });
    expect(result.outcome).toBe('stalled');
    expect(result.output).toBe('hi\n');
    await expectGroupGone(pid);
  });
});

describe('varName', () => {
  it('turns task variable keys into LOOM_ names', () => {
    expect(varName('issue')).toBe('LOOM_ISSUE');
    expect(varName('issueTitle')).toBe('LOOM_ISSUE_TITLE');
    expect(varName('issue_title')).toBe('LOOM_ISSUE_TITLE');
    expect(varName('pr-number')).toBe('LOOM_PR_NUMBER');
  });
});
