// `loom doctor` reports what each role will actually run — the executable, on the PATH agents
// get, and a login that reaches the agent — without calling any API.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { TestRepo } from '../helpers/loom-repo.js';
import { loom, makeRepo } from '../helpers/loom-repo.js';
import { loginShell } from '../../src/cli/doctor-command.js';

let repo: TestRepo | undefined;
const homes: string[] = [];
afterEach(() => {
  repo?.cleanup();
  for (const h of homes.splice(0)) fs.rmSync(h, { recursive: true, force: true });
});

/** The pinned agent CLIs (dev dependencies) are here; agents find them only when it is on PATH. */
const pinned = path.resolve('node_modules/.bin');
const withPinned = `${pinned}${path.delimiter}${process.env.PATH ?? ''}`;

/** An empty home, and no login from the machine running the tests. */
function cleanEnv(): { home: string; env: Record<string, string> } {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'loom-home-'));
  homes.push(home);
  const env: Record<string, string> = { HOME: home, XDG_DATA_HOME: '', XDG_CONFIG_HOME: '' };
  for (const name of Object.keys(process.env)) if (/^(ANTHROPIC|CLAUDE_CODE|OPENAI|CODEX|GEMINI|GOOGLE|OPENROUTER)_/.test(name)) env[name] = '';
  return { home, env };
}

interface Report {
  runtimes: { runtime: string; version: string | null }[];
  roles: { role: string }[];
  problems: string[];
}
const doctor = (root: string, env: Record<string, string>) => JSON.parse(loom(root, ['doctor', '--json'], env).stdout) as Report;
const runtimeOf = (report: Report, name: string) => report.runtimes.find((r) => r.runtime === name);
const roleOf = (report: Report, name: string) => report.roles.find((r) => r.role === name);

describe('loom doctor', () => {
  it('finds the CLIs on the PATH agents get, their versions, and whether a login reaches them; flags a role whose runtime cannot run', () => {
    repo = makeRepo({ roles: { builder: { runtime: 'claude' }, judge: { runtime: 'codex', fallback: 'claude' } } });
    const { home, env: clean } = cleanEnv();
    const env = { ...clean, PATH: withPinned };
    const without = doctor(repo.root, env);
    const claude = runtimeOf(without, 'claude');
    expect(claude).toMatchObject({ installed: true, auth: false, path: path.join(pinned, 'claude') });
    expect(claude?.version).toMatch(/Claude Code/);
    expect(runtimeOf(without, 'codex')).toMatchObject({ installed: true, auth: false });
    expect(without.problems).toEqual([
      expect.stringMatching(/^role builder: claude has no login that reaches the agent: set \$ANTHROPIC_API_KEY or \$ANTHROPIC_AUTH_TOKEN, or log in with `claude` \(~\/\.claude\/\.credentials\.json\)$/),
      expect.stringMatching(/^role judge: codex has no login that reaches the agent/),
    ]);

    const withKeys = doctor(repo.root, { ...env, ANTHROPIC_API_KEY: 'x' });
    expect(runtimeOf(withKeys, 'claude')).toMatchObject({ auth: true, authDetail: '$ANTHROPIC_API_KEY' });
    expect(withKeys.problems).toEqual([]); // the judge falls back to claude
    expect(roleOf(withKeys, 'judge')).toMatchObject({ usable: true, problem: expect.stringMatching(/^codex has no login/) });
    expect(roleOf(withKeys, 'builder')).toMatchObject({ usable: true, problem: null, runs: path.join(pinned, 'claude') });
    fs.mkdirSync(path.join(home, '.codex'));
    fs.writeFileSync(path.join(home, '.codex', 'auth.json'), '{}');
    const text = loom(repo.root, ['doctor'], { ...env, ANTHROPIC_API_KEY: 'x' });
    expect(text.stdout).toMatch(/codex\s+codex-cli [\d.]+ at .*\n\s+auth: configured \(~\/\.codex\/auth\.json\)/);
    expect(text.stdout).toMatch(/\n {2}builder {3}claude → .*node_modules\/\.bin\/claude\n/);
    expect(text.stdout).toMatch(/Everything each role runs is in place\.\n$/);
  });

  it('a CLI that only sits in a node_modules/.bin is not what agents run: doctor says where it is, and loom start refuses in one line', () => {
    repo = makeRepo({ roles: { builder: { runtime: 'claude' } } });
    // A PATH without the pinned CLIs (and without any claude of the machine's).
    const env = { ...cleanEnv().env, ANTHROPIC_API_KEY: 'x', PATH: '/usr/bin:/bin' };
    const report = doctor(repo.root, env);
    expect(runtimeOf(report, 'claude')).toMatchObject({ installed: false, path: null, elsewhere: path.join(pinned, 'claude') });
    expect(report.problems).toEqual([`role builder: \`claude\` is not found on PATH (it is at ${path.join(pinned, 'claude')}: set roles.builder.command to that path, or put its folder on PATH)`]);
    const start = loom(repo.root, ['start'], env);
    expect(start.code).toBe(2);
    expect(start.stderr).toBe('loom: cannot start: role builder: `claude` is not found on PATH (`loom doctor` checks every role)\n');
    expect(fs.existsSync(repo.paths.state)).toBe(false);
  });

  it('a login Loom does not pass to the agent does not count: doctor names the variable', () => {
    repo = makeRepo({ roles: { builder: { runtime: 'claude' } } });
    const env = { ...cleanEnv().env, PATH: withPinned, ANTHROPIC_OTHER_KEY: 'sk-ant-x' };
    const report = doctor(repo.root, env);
    expect(runtimeOf(report, 'claude')).toMatchObject({ auth: false });
    expect(report.problems).toEqual([expect.stringMatching(/^role builder: claude has no login that reaches the agent: .*; \$ANTHROPIC_OTHER_KEY is set but Loom does not pass it to the agent$/)]);
    // The original Loom's account pool logged Claude Code in with CLAUDE_CODE_OAUTH_TOKEN: Loom passes it.
    const oauth = doctor(repo.root, { ...cleanEnv().env, PATH: withPinned, CLAUDE_CODE_OAUTH_TOKEN: 'sk-ant-oat-x' });
    expect(runtimeOf(oauth, 'claude')).toMatchObject({ auth: true });
    expect(oauth.problems).toEqual([]);
  });

  it('a login shell slow to start (agents start it for every shell command) is a problem, named with its time; a quick one is shown', () => {
    repo = makeRepo({ roles: { builder: { runtime: 'claude' } } });
    const { home, env: clean } = cleanEnv();
    const env = { ...clean, PATH: withPinned, ANTHROPIC_API_KEY: 'x', SHELL: '/bin/bash' };
    const quick = loom(repo.root, ['doctor'], env).stdout;
    expect(quick).toMatch(/^Login shell \(agents run their shell commands in it\): \/bin\/bash -l starts in \d+\.\d\d s$/m);
    expect(quick).toMatch(/^Everything each role runs is in place\.$/m);

    // A start-up file that waits (a version manager's stale lock, say).
    fs.writeFileSync(path.join(home, '.bash_profile'), 'sleep 2.5\n');
    const slow = doctor(repo.root, env) as Report & { shell?: { path: string; ms: number | null } };
    expect(slow.shell).toMatchObject({ path: '/bin/bash', ms: expect.any(Number) });
    expect(slow.problems).toEqual([expect.stringMatching(/^the login shell `\/bin\/bash -l` takes 2\.\d s to start: every shell command an agent runs waits as long .*~\/\.bash_profile/)]);

    // Only where an agent CLI runs: the script and command runtimes start no login shell.
    repo.cleanup();
    repo = makeRepo({ runtime: 'script' });
    const scripted = doctor(repo.root, env) as Report & { shell?: unknown };
    expect(scripted.shell).toBeUndefined();
    expect(scripted.problems).toEqual([]);
  });

  it('a login shell that never starts (it waits on a lock nobody releases) is ended at the deadline with what its start-up files started', async () => {
    const { home, env: clean } = cleanEnv();
    fs.writeFileSync(path.join(home, '.bash_profile'), 'sleep 599.25\n');
    // The doctor waits 10 s; the same check with a 1 s deadline.
    const stuck = await loginShell({ ...clean, PATH: withPinned, SHELL: '/bin/bash' }, 1_000);
    expect(stuck).toMatchObject({ path: '/bin/bash', ms: null });
    expect(stuck.problem).toMatch(/^the login shell `\/bin\/bash -l` did not start within 1 s: .*~\/\.bash_profile/);
    expect(processesRunning(['sleep', '599.25'])).toEqual([]);
  });
});

/** Pids of the processes whose command line is exactly `argv`. */
function processesRunning(argv: string[]): number[] {
  const found: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').filter((a) => a !== '');
      const state = fs.readFileSync(`/proc/${entry}/stat`, 'utf8').split(') ')[1]?.[0];
      if (state !== 'Z' && cmdline.length === argv.length && cmdline.every((a, i) => a === argv[i])) found.push(Number(entry));
    } catch {
      // gone while we looked
    }
  }
  return found;
}
