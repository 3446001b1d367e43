/**
 * Configuration (PRODUCT.md §9): defaults, `.loom/config.json`, `LOOM_*` env overrides, and the
 * promise that an invalid config lists every problem at once as `path: message` (§11).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { LoomConfig } from '../../src/core/config-model.js';
import { ConfigError, envName, lastGoodConfig, loadConfig, resolveConfig } from '../../src/config/config.js';
import { loomPaths } from '../../src/config/paths.js';
import { defaultConfig } from '../../src/core/config-model.js';
import { GENERATOR_ROLES, ROLE_NAMES, SUPPORT_ROLES } from '../../src/core/vocabulary.js';
import { defaultRolesDir, loadRole } from '../../src/config/role-file.js';

const SEC = 1000;
const MIN = 60 * SEC;

/** Resolves and fails the test with the problems if the config is invalid. */
function ok(raw: unknown, env: Record<string, string | undefined> = {}): LoomConfig {
  const result = resolveConfig(raw, env);
  if (!result.ok) throw new Error(`expected a valid config, got: ${result.problems.join('; ')}`);
  return result.value;
}

/** Resolves and fails the test if the config is valid. */
function problemsOf(raw: unknown, env: Record<string, string | undefined> = {}): string[] {
  const result = resolveConfig(raw, env);
  if (result.ok) throw new Error('expected problems, the config was accepted');
  return result.problems;
}

describe('defaults (PRODUCT.md §9)', () => {
  it('match the product brief', () => {
    const c = defaultConfig();
    expect(c.maxShepherds).toBe(3);
    expect(c.pollInterval).toBe(30 * SEC);
    expect(c.issueThreshold).toBe(3);
    expect(c.maxProposals).toBe(5);
    expect(c.roles.architect.interval).toBe(30 * MIN);
    expect(c.roles.hermit.interval).toBe(30 * MIN);
    expect(c.roles.guide.interval).toBe(15 * MIN);
    expect(c.roles.champion.interval).toBe(10 * MIN);
    expect(c.roles.doctor.interval).toBe(5 * MIN);
    expect(c.roles.judge.interval).toBe(5 * MIN);
    expect(c.maxDoctorRounds).toBe(3);
    expect(c.stallTimeout).toBe(10 * MIN);
    expect(c.shutdownGrace).toBe(5 * MIN);
    expect(c.spawnFailureLimit).toBe(3);
    expect(c.tracker).toEqual({ type: 'local' });
  });

  it('every role is configured; the daemon roles are the generators plus the support roles', () => {
    const c = defaultConfig();
    expect(Object.keys(c.roles).sort()).toEqual([...ROLE_NAMES].sort());
    expect([...SUPPORT_ROLES].sort()).toEqual(['champion', 'curator', 'doctor', 'guide', 'judge']);
    expect([...GENERATOR_ROLES].sort()).toEqual(['architect', 'hermit']);
    for (const name of ROLE_NAMES) expect(c.roles[name].timeout, name).toBeGreaterThan(0);
  });

  it('an empty file and no env resolve to the defaults', () => {
    expect(ok({})).toEqual(defaultConfig());
  });

  it('defaultConfig returns a fresh object each time', () => {
    const a = defaultConfig();
    a.roles.guide.interval = 1;
    a.maxShepherds = 99;
    expect(defaultConfig().roles.guide.interval).toBe(15 * MIN);
    expect(defaultConfig().maxShepherds).toBe(3);
  });

  it('a "$schema" key is allowed', () => {
    expect(ok({ $schema: './loom.schema.json' })).toEqual(defaultConfig());
  });
});

describe('values in the file', () => {
  it('counts accept whole numbers within range', () => {
    const c = ok({ maxShepherds: 8, issueThreshold: 0, maxProposals: 0, maxDoctorRounds: 5, spawnFailureLimit: 1 });
    expect(c).toMatchObject({ maxShepherds: 8, issueThreshold: 0, maxProposals: 0, maxDoctorRounds: 5, spawnFailureLimit: 1 });
  });

  it.each([
    ['maxShepherds', 0, 'maxShepherds: must be a whole number ≥ 1, got 0'],
    ['spawnFailureLimit', 0, 'spawnFailureLimit: must be a whole number ≥ 1, got 0'],
    ['maxShepherds', 2.5, 'maxShepherds: must be a whole number ≥ 1, got 2.5'],
    ['issueThreshold', -1, 'issueThreshold: must be a whole number ≥ 0, got -1'],
    ['maxProposals', 'lots', 'maxProposals: must be a whole number ≥ 0, got "lots"'],
    ['maxDoctorRounds', true, 'maxDoctorRounds: must be a whole number ≥ 0, got true'],
    ['maxShepherds', null, 'maxShepherds: must be a whole number ≥ 1, got null'],
  ])('%s = %j is rejected', (key, value, message) => {
    expect(problemsOf({ [key]: value })).toEqual([message]);
  });

  it('durations are seconds when numbers', () => {
    const c = ok({ pollInterval: 45, stallTimeout: 600, shutdownGrace: 0, iterationTimeout: 1.5 });
    expect(c.pollInterval).toBe(45 * SEC);
    expect(c.stallTimeout).toBe(10 * MIN);
    expect(c.shutdownGrace).toBe(0);
    expect(c.iterationTimeout).toBe(1500);
  });

  it('durations accept strings with units, or digit strings as seconds', () => {
    const c = ok({ pollInterval: '1m30s', stallTimeout: '15m', shutdownGrace: '2h', heartbeatInterval: '500ms', iterationTimeout: '90' });
    expect(c.pollInterval).toBe(90 * SEC);
    expect(c.stallTimeout).toBe(15 * MIN);
    expect(c.shutdownGrace).toBe(120 * MIN);
    expect(c.heartbeatInterval).toBe(500);
    expect(c.iterationTimeout).toBe(90 * SEC);
  });

  it('rejects unreadable durations, and zero where a positive one is needed', () => {
    expect(problemsOf({ pollInterval: 'fast' })).toEqual(['pollInterval: must be seconds or a duration like "30s", "10m", "1h", got "fast"']);
    expect(problemsOf({ pollInterval: 0 })).toEqual(['pollInterval: must be greater than zero']);
    expect(problemsOf({ stallTimeout: '0s' })).toEqual(['stallTimeout: must be greater than zero']);
    expect(problemsOf({ shutdownGrace: -5 })).toEqual(['shutdownGrace: must be seconds or a duration like "30s", "10m", "1h", got -5']);
  });

  it('requireApproval is false by default, true or false from the file or LOOM_REQUIRE_APPROVAL; anything else is one problem', () => {
    expect(resolveConfig({}, {})).toMatchObject({ ok: true, value: { requireApproval: false } });
    const github = { type: 'github', owner: 'acme', repo: 'widgets' };
    expect(resolveConfig({ tracker: github, requireApproval: true }, {})).toMatchObject({ ok: true, value: { requireApproval: true } });
    expect(resolveConfig({ requireApproval: true }, { LOOM_REQUIRE_APPROVAL: 'false' })).toMatchObject({ ok: true, value: { requireApproval: false } });
    // The local tracker has no reviews: nothing could ever be approved.
    expect(problemsOf({ requireApproval: true })).toEqual([expect.stringMatching(/^requireApproval: needs the GitHub tracker/)]);
    expect(problemsOf({ requireApproval: 'yes' })).toEqual(['requireApproval: must be true or false, got "yes"']);
    expect(problemsOf({}, { LOOM_REQUIRE_APPROVAL: '1' })).toEqual(['env LOOM_REQUIRE_APPROVAL: must be "true" or "false", got "1"']);
  });

  it('updateStrategy is rebase (default) or merge, from the file or LOOM_UPDATE_STRATEGY; anything else is one problem', () => {
    expect(resolveConfig({}, {})).toMatchObject({ ok: true, value: { updateStrategy: 'rebase' } });
    expect(resolveConfig({ updateStrategy: 'merge' }, {})).toMatchObject({ ok: true, value: { updateStrategy: 'merge' } });
    expect(resolveConfig({ updateStrategy: 'merge' }, { LOOM_UPDATE_STRATEGY: 'rebase' })).toMatchObject({ ok: true, value: { updateStrategy: 'rebase' } });
    expect(problemsOf({ updateStrategy: 'squash' })).toEqual(['updateStrategy: must be "rebase" or "merge", got "squash"']);
    expect(problemsOf({}, { LOOM_UPDATE_STRATEGY: 'ff' })).toEqual(['env LOOM_UPDATE_STRATEGY: must be "rebase" or "merge", got "ff"']);
  });

  it('rejects unknown keys, naming the known ones', () => {
    const [problem, ...rest] = problemsOf({ maxShepherd: 4 });
    expect(rest).toEqual([]);
    expect(problem).toMatch(/^maxShepherd: unknown key \(known: .*maxShepherds.*\)$/);
  });

  it('tracker is local or github (with owner and repo)', () => {
    expect(ok({ tracker: { type: 'local' } }).tracker).toEqual({ type: 'local' });
    expect(problemsOf({ tracker: { type: 'jira' } })).toEqual(['tracker.type: must be "local" or "github"']);
    expect(problemsOf({ tracker: 'local' })).toEqual(['tracker.type: must be "local" or "github"']);
    expect(ok({ tracker: { type: 'github', owner: 'acme', repo: 'widgets' } }).tracker).toEqual({ type: 'github', owner: 'acme', repo: 'widgets', baseUrl: undefined, trustedUsers: [] });
    expect(problemsOf({ tracker: { type: 'github', baseUrl: 'ftp://x', trustedUsers: 'me' } })).toEqual([
      'tracker.owner: the GitHub owner (user or organisation) is required for the github tracker',
      'tracker.repo: the GitHub repository name is required for the github tracker',
      'tracker.baseUrl: must be an http(s) URL (GitHub Enterprise API root)',
      'tracker.trustedUsers: must be a list of GitHub logins',
    ]);
  });

  it.each([
    ['an array', []],
    ['null', null],
    ['a string', 'x'],
    ['a number', 3],
  ])('a document that is %s is rejected', (_what, raw) => {
    expect(problemsOf(raw)).toEqual(['(root): must be a JSON object']);
  });
});

describe('roles', () => {
  it('a role with a command is enabled; interval, cooldown and timeout are durations', () => {
    const c = ok({
      roles: {
        guide: { command: 'echo guide', interval: '20m', timeout: 600 },
        architect: { command: 'echo arch', cooldown: '1h' },
      },
    });
    expect(c.roles.guide).toEqual({ enabled: true, runtime: 'command', model: undefined, args: [], fallback: undefined, command: 'echo guide', interval: 20 * MIN, timeout: 10 * MIN, template: '', roleFile: null, sandbox: { type: 'none', network: true, hide: [] } });
    expect(c.roles.architect).toMatchObject({ enabled: true, command: 'echo arch', interval: 60 * MIN });
    expect(c.roles.judge.enabled).toBe(false);
  });

  it('a role without a command is disabled', () => {
    expect(ok({}).roles.builder.enabled).toBe(false);
    expect(ok({ roles: { judge: { interval: 60 } } }).roles.judge).toMatchObject({ enabled: false, interval: MIN });
  });

  it('enabled: false switches a role with a command off', () => {
    expect(ok({ roles: { guide: { command: 'echo', enabled: false } } }).roles.guide).toMatchObject({ enabled: false, command: 'echo' });
  });

  it('reports bad role entries', () => {
    const problems = problemsOf({
      roles: {
        wizard: {},
        judge: 'x',
        guide: { enabled: 'yes', command: '  ', interval: 0, timeout: 'soon', colour: 'red' },
      },
    });
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^roles\.wizard: unknown role \(known: builder, /),
        'roles.judge: must be an object',
        'roles.guide.enabled: must be true or false',
        'roles.guide.command: must be a non-empty shell command string',
        'roles.guide.interval: must be greater than zero',
        'roles.guide.timeout: must be seconds or a duration like "30s", "10m", "1h", got "soon"',
        'roles.guide.colour: unknown key (known: enabled, runtime, model, args, fallback, command, interval, cooldown, timeout, sandbox)',
      ]),
    );
    expect(problems).toHaveLength(7);
  });

  it('roles must be an object', () => {
    expect(problemsOf({ roles: ['guide'] })).toEqual(['roles: must be an object keyed by role name']);
  });
});

describe('every problem at once', () => {
  it('lists all problems of file and env in one result, each as `path: message`', () => {
    const problems = problemsOf(
      {
        maxShepherds: 0,
        pollInterval: 'fast',
        issueThreshold: -1,
        stallTimeout: 0,
        bogus: true,
        tracker: { type: 'jira' },
        roles: { guide: { interval: 0 }, wizard: {} },
      },
      { LOOM_MAX_PROPOSALS: 'many', LOOM_SHUTDOWN_GRACE: 'later' },
    );
    expect(problems).toHaveLength(10);
    for (const p of problems) expect(p).toMatch(/^[^\s:]+(?: [A-Z_]+)?: \S/);
    const paths = problems.map((p) => p.slice(0, p.indexOf(': ')));
    expect(paths.sort()).toEqual(
      ['bogus', 'env LOOM_MAX_PROPOSALS', 'env LOOM_SHUTDOWN_GRACE', 'issueThreshold', 'maxShepherds', 'pollInterval', 'roles.guide.interval', 'roles.wizard', 'stallTimeout', 'tracker.type'].sort(),
    );
  });

  it('reports the same key from file and env separately', () => {
    const problems = problemsOf({ maxShepherds: 0 }, { LOOM_MAX_SHEPHERDS: '0' });
    expect(problems).toEqual(['maxShepherds: must be a whole number ≥ 1, got 0', 'env LOOM_MAX_SHEPHERDS: must be a whole number ≥ 1, got "0"']);
  });
});

describe('environment overrides', () => {
  it('env names are LOOM_ plus the key in SCREAMING_SNAKE_CASE', () => {
    expect(envName('maxShepherds')).toBe('LOOM_MAX_SHEPHERDS');
    expect(envName('pollInterval')).toBe('LOOM_POLL_INTERVAL');
    expect(envName('spawnFailureLimit')).toBe('LOOM_SPAWN_FAILURE_LIMIT');
    expect(envName('stallTimeout')).toBe('LOOM_STALL_TIMEOUT');
  });

  it('win over the file', () => {
    const c = ok({ maxShepherds: 2, pollInterval: 10 }, { LOOM_MAX_SHEPHERDS: '5', LOOM_POLL_INTERVAL: '2m' });
    expect(c.maxShepherds).toBe(5);
    expect(c.pollInterval).toBe(2 * MIN);
  });

  it.each([
    ['LOOM_MAX_SHEPHERDS', '7', 'maxShepherds', 7],
    ['LOOM_POLL_INTERVAL', '45', 'pollInterval', 45 * SEC],
    ['LOOM_POLL_INTERVAL', '500ms', 'pollInterval', 500],
    ['LOOM_ISSUE_THRESHOLD', '0', 'issueThreshold', 0],
    ['LOOM_MAX_PROPOSALS', '9', 'maxProposals', 9],
    ['LOOM_MAX_DOCTOR_ROUNDS', '1', 'maxDoctorRounds', 1],
    ['LOOM_STALL_TIMEOUT', '20m', 'stallTimeout', 20 * MIN],
    ['LOOM_SHUTDOWN_GRACE', '0', 'shutdownGrace', 0],
    ['LOOM_SPAWN_FAILURE_LIMIT', '5', 'spawnFailureLimit', 5],
    ['LOOM_MAX_RETRY_BACKOFF', '2h', 'maxRetryBackoff', 120 * MIN],
    ['LOOM_ITERATION_TIMEOUT', '1h', 'iterationTimeout', 60 * MIN],
    ['LOOM_HEARTBEAT_INTERVAL', '2s', 'heartbeatInterval', 2 * SEC],
  ] as const)('%s=%s sets %s', (name, value, key, expected) => {
    expect(ok({}, { [name]: value })[key]).toBe(expected);
  });

  it('tolerates surrounding whitespace in numeric env values', () => {
    expect(ok({}, { LOOM_MAX_SHEPHERDS: ' 4 ' }).maxShepherds).toBe(4);
  });

  it('ignores empty and unset variables', () => {
    expect(ok({ maxShepherds: 2 }, { LOOM_MAX_SHEPHERDS: '', LOOM_POLL_INTERVAL: undefined })).toMatchObject({ maxShepherds: 2, pollInterval: 30 * SEC });
  });

  it('ignores unrelated variables', () => {
    expect(ok({}, { LOOM_SOMETHING_ELSE: 'x', PATH: '/bin' })).toEqual(defaultConfig());
  });

  it.each([
    ['LOOM_MAX_SHEPHERDS', 'abc', 'env LOOM_MAX_SHEPHERDS: must be a whole number ≥ 1, got "abc"'],
    ['LOOM_MAX_SHEPHERDS', '0', 'env LOOM_MAX_SHEPHERDS: must be a whole number ≥ 1, got "0"'],
    ['LOOM_MAX_SHEPHERDS', '-2', 'env LOOM_MAX_SHEPHERDS: must be a whole number ≥ 1, got "-2"'],
    ['LOOM_MAX_SHEPHERDS', '2.5', 'env LOOM_MAX_SHEPHERDS: must be a whole number ≥ 1, got "2.5"'],
    ['LOOM_POLL_INTERVAL', 'soon', 'env LOOM_POLL_INTERVAL: must be seconds or a duration like "30s", "10m", "1h", got "soon"'],
    ['LOOM_POLL_INTERVAL', '0', 'env LOOM_POLL_INTERVAL: must be greater than zero'],
  ])('a bad %s=%s is reported naming the variable', (name, value, message) => {
    expect(problemsOf({}, { [name]: value })).toEqual([message]);
  });

  it('role command and interval variables', () => {
    const c = ok({ roles: { guide: { command: 'from-file', interval: '30m' } } }, { LOOM_GUIDE_COMMAND: 'from-env', LOOM_GUIDE_INTERVAL: '5m', LOOM_JUDGE_COMMAND: 'judge.sh' });
    expect(c.roles.guide).toMatchObject({ enabled: true, command: 'from-env', interval: 5 * MIN });
    expect(c.roles.judge).toMatchObject({ enabled: true, command: 'judge.sh', interval: 5 * MIN });
    // The Champion's merge decision is code: it needs no runtime and is on unless switched off.
    expect(c.roles.champion.enabled).toBe(true);
    expect(ok({ roles: { champion: { enabled: false } } }).roles.champion.enabled).toBe(false);
  });

  it('an explicit enabled: false in the file keeps a role off even with a command from env', () => {
    expect(ok({ roles: { guide: { enabled: false } } }, { LOOM_GUIDE_COMMAND: 'x' }).roles.guide.enabled).toBe(false);
  });

  it('a bad role interval variable is reported naming it', () => {
    expect(problemsOf({}, { LOOM_JUDGE_INTERVAL: 'often' })).toEqual(['env LOOM_JUDGE_INTERVAL: must be seconds or a duration like "30s", "10m", "1h", got "often"']);
  });
});

describe('loadConfig', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
  });
  const tempFile = (content?: string): string => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'loom-config-'));
    dirs.push(dir);
    const file = path.join(dir, 'config.json');
    if (content !== undefined) fs.writeFileSync(file, content);
    return file;
  };
  const thrown = (fn: () => unknown): unknown => {
    try {
      fn();
    } catch (error) {
      return error;
    }
    throw new Error('expected an error');
  };

  /** The defaults, with each role's prompt from its built-in role file (the loader reads them once). */
  const defaultsWithRoleFiles = () => {
    const expected = defaultConfig();
    for (const name of ROLE_NAMES) {
      const file = loadRole(name, [defaultRolesDir()]);
      expected.roles[name] = { ...expected.roles[name], template: file.template, roleFile: file.file };
    }
    return expected;
  };

  it('a missing file gives the defaults, and every role its built-in prompt', () => {
    const c = loadConfig(tempFile(), {});
    expect(c).toEqual(defaultsWithRoleFiles());
    for (const name of ROLE_NAMES) expect(c.roles[name].template.length).toBeGreaterThan(0);
  });

  it('an empty or blank file is an error that says how to get the defaults', () => {
    for (const text of ['', '  \n']) {
      const error = (() => {
        try {
          loadConfig(tempFile(text), {});
        } catch (e) {
          return e;
        }
        throw new Error('expected an error');
      })();
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).problems).toEqual(['(root): the file is empty; write {} to use the defaults, or delete the file']);
    }
    expect(loadConfig(tempFile('{}'), {})).toEqual(defaultsWithRoleFiles());
  });

  it('reads a valid file and applies env on top', () => {
    const file = tempFile(JSON.stringify({ maxShepherds: 2, pollInterval: '10s', roles: { judge: { command: 'judge.sh' } } }));
    const c = loadConfig(file, { LOOM_POLL_INTERVAL: '20' });
    expect(c.maxShepherds).toBe(2);
    expect(c.pollInterval).toBe(20 * SEC);
    expect(c.roles.judge).toMatchObject({ enabled: true, command: 'judge.sh' });
  });

  it('env applies when the file is missing', () => {
    expect(loadConfig(tempFile(), { LOOM_MAX_SHEPHERDS: '6' }).maxShepherds).toBe(6);
  });

  it('invalid JSON throws a ConfigError naming the file', () => {
    const file = tempFile('{ "maxShepherds": 3, }');
    const error = thrown(() => loadConfig(file, {}));
    expect(error).toBeInstanceOf(ConfigError);
    const e = error as ConfigError;
    expect(e.code).toBe('config_invalid');
    expect(e.file).toBe(file);
    expect(e.problems).toHaveLength(1);
    expect(e.problems[0]).toMatch(/^\(root\): not valid JSON \(.+\)$/);
    expect(e.message).toContain(file);
  });

  it('invalid values throw a ConfigError with every problem', () => {
    const file = tempFile(JSON.stringify({ maxShepherds: 0, pollInterval: 'fast', nope: 1 }));
    const error = thrown(() => loadConfig(file, { LOOM_STALL_TIMEOUT: 'x' }));
    expect(error).toBeInstanceOf(ConfigError);
    const e = error as ConfigError;
    expect(e.problems).toHaveLength(4);
    expect(e.problems).toEqual(
      expect.arrayContaining([
        'maxShepherds: must be a whole number ≥ 1, got 0',
        'pollInterval: must be seconds or a duration like "30s", "10m", "1h", got "fast"',
        expect.stringMatching(/^nope: unknown key/),
        'env LOOM_STALL_TIMEOUT: must be seconds or a duration like "30s", "10m", "1h", got "x"',
      ]),
    );
    for (const p of e.problems) expect(e.message).toContain(p);
  });

  it('a JSON document that is not an object is a ConfigError', () => {
    const error = thrown(() => loadConfig(tempFile('[1, 2]'), {}));
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems).toEqual(['(root): must be a JSON object']);
  });
});

describe('runtimes, gates and role files', () => {
  it('the top-level runtime enables every role that names none; a role can choose another or be switched off', () => {
    const c = ok({ runtime: 'script', roles: { judge: { command: 'judge.sh' }, guide: { enabled: false } } });
    expect(c.roles.builder).toMatchObject({ enabled: true, runtime: 'script' });
    expect(c.roles.judge).toMatchObject({ enabled: true, runtime: 'command', command: 'judge.sh' });
    expect(c.roles.guide.enabled).toBe(false);
    expect(ok({}).roles.builder.enabled).toBe(false);
  });

  it('validates runtime names, the command runtime without a command, and the string keys', () => {
    expect(problemsOf({ runtime: 'magic', testCommand: '', roles: { doctor: { runtime: 'command' } } })).toEqual([
      'runtime: must be one of script, command, claude, codex, gemini, opencode',
      'testCommand: must be a non-empty string',
      'roles.doctor.runtime: "command" needs roles.doctor.command',
    ]);
    expect(problemsOf({}, { LOOM_RUNTIME: 'magic' })).toEqual(['env LOOM_RUNTIME: must be one of script, command, claude, codex, gemini, opencode']);
    expect(ok({ testCommand: 'npm test', defaultBranch: 'trunk', agentRetries: 0 })).toMatchObject({ testCommand: 'npm test', defaultBranch: 'trunk', agentRetries: 0 });
    expect(ok({}, { LOOM_TEST_COMMAND: 'make check', LOOM_AGENT_RETRIES: '5' })).toMatchObject({ testCommand: 'make check', agentRetries: 5 });
  });

  it("takes cliRetries, the cap on an agent CLI's own retries: 2 by default, 0 allowed", () => {
    expect(ok({})).toMatchObject({ cliRetries: 2 });
    expect(ok({ cliRetries: 0 })).toMatchObject({ cliRetries: 0 });
    expect(ok({ cliRetries: 1 }, { LOOM_CLI_RETRIES: '4' })).toMatchObject({ cliRetries: 4 });
    expect(problemsOf({ cliRetries: -1 })).toEqual(['cliRetries: must be a whole number ≥ 0, got -1']);
  });

  it('role file front matter sits below config.json and env', () => {
    const files = { guide: { interval: 20 * MIN, runtime: 'script', timeout: 7 * MIN }, architect: { cooldown: 45 * MIN } };
    const fromFiles = resolveConfig({}, {}, files);
    expect(fromFiles.ok && fromFiles.value.roles.guide).toMatchObject({ enabled: true, runtime: 'script', interval: 20 * MIN, timeout: 7 * MIN });
    expect(fromFiles.ok && fromFiles.value.roles.architect.interval).toBe(45 * MIN);
    const overridden = resolveConfig({ roles: { guide: { interval: '1h' } } }, { LOOM_GUIDE_RUNTIME: 'command', LOOM_GUIDE_COMMAND: 'g.sh' }, files);
    expect(overridden.ok && overridden.value.roles.guide).toMatchObject({ interval: 60 * MIN, runtime: 'command', command: 'g.sh' });
  });

  it('loadConfig reads .loom/roles/ beside the config and reports a malformed role file by file and line', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'loom-roles-'));
    fs.mkdirSync(path.join(dir, 'roles'));
    const file = path.join(dir, 'config.json');
    fs.writeFileSync(file, '{}');
    fs.writeFileSync(path.join(dir, 'roles', 'guide.md'), '---\nruntime: script\ninterval: 2m\n---\nTriage {{ open_issues }}\n');
    expect(loadConfig(file, {}).roles.guide).toMatchObject({ enabled: true, runtime: 'script', interval: 2 * MIN });
    fs.writeFileSync(path.join(dir, 'roles', 'doctor.md'), '---\ninterval: soon\n---\nFix it\n');
    expect(() => loadConfig(file, {})).toThrow(/roles\/doctor\.md:2: /);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});

describe('budgets, pricing, fallbacks', () => {
  it('accepts budgets, prices, a fallback runtime and args; reports every bad value', () => {
    const c = ok({ budget: { perIssueUsd: 2, perDayTokens: 1e6 }, pricing: { 'my-model': { input: 1, output: 2 } }, roles: { builder: { runtime: 'claude', fallback: 'codex', args: '--max-turns 40' } } });
    expect(c.budget).toEqual({ perIssueUsd: 2, perDayUsd: undefined, perIssueTokens: undefined, perDayTokens: 1e6 });
    expect(c.pricing['my-model']).toEqual({ input: 1, output: 2, cachedInput: 1 });
    expect(c.roles.builder).toMatchObject({ runtime: 'claude', fallback: 'codex', args: ['--max-turns', '40'] });
    expect(problemsOf({ budget: { perIssueUsd: -1, perWeek: 3 }, pricing: { x: { input: 'cheap' } }, roles: { judge: { fallback: 'magic' } } })).toEqual([
      'budget.perIssueUsd: must be a number greater than zero',
      'budget.perWeek: unknown key (known: perIssueUsd, perDayUsd, perIssueTokens, perDayTokens)',
      'pricing.x: must be { "input": USD per million tokens, "output": ..., "cachedInput": ... (optional) }',
      'roles.judge.fallback: must be one of script, command, claude, codex, gemini, opencode',
    ]);
    expect(ok({}, { LOOM_BUDGET_PER_DAY_USD: '25' }).budget.perDayUsd).toBe(25);
  });
});

describe('notify', () => {
  it('takes a command, a webhook and the kinds that notify; env sets command and webhook', () => {
    expect(defaultConfig().notify).toEqual({ command: undefined, webhook: undefined, on: ['blocked', 'budget', 'limited', 'crashed', 'guard'] });
    expect(ok({ notify: { command: 'notify-send Loom', webhook: 'https://hooks.example.com/x', on: ['blocked', 'crashed'] } }).notify).toEqual({ command: 'notify-send Loom', webhook: 'https://hooks.example.com/x', on: ['blocked', 'crashed'] });
    expect(ok({}, { LOOM_NOTIFY_COMMAND: 'true', LOOM_NOTIFY_WEBHOOK: 'http://127.0.0.1:9/h' }).notify).toMatchObject({ command: 'true', webhook: 'http://127.0.0.1:9/h' });
  });

  it('reports every bad value', () => {
    expect(problemsOf({ notify: { command: '', webhook: 'ftp://x', on: ['blocked', 'sometimes'], email: 'me@example.com' } })).toEqual([
      'notify.command: must be a non-empty shell command string',
      'notify.webhook: must be an http(s) URL',
      'notify.on: must be a list of blocked, budget, limited, crashed, guard',
      'notify.email: unknown key (known: command, webhook, on)',
    ]);
    expect(problemsOf({ notify: 'yes' })).toEqual(['notify: must be an object with "command" and/or "webhook" (and optionally "on")']);
    expect(problemsOf({}, { LOOM_NOTIFY_WEBHOOK: 'not a url' })).toEqual(['env LOOM_NOTIFY_WEBHOOK: must be an http(s) URL']);
  });
});

describe('minFreeDisk', () => {
  it('defaults to 2 GB and takes bytes or a size with a unit, from the file or LOOM_MIN_FREE_DISK', () => {
    expect(ok({}).minFreeDisk).toBe(2e9);
    expect(ok({ minFreeDisk: 0 }).minFreeDisk).toBe(0);
    expect(ok({ minFreeDisk: '500MB' }).minFreeDisk).toBe(5e8);
    expect(ok({ minFreeDisk: '1.5 GiB' }).minFreeDisk).toBe(1.5 * 2 ** 30);
    expect(ok({ minFreeDisk: '1GB' }, { LOOM_MIN_FREE_DISK: '1024' }).minFreeDisk).toBe(1024);
  });

  it('reports a bad size with the other problems', () => {
    expect(problemsOf({ minFreeDisk: '2 parsecs', maxShepherds: 0 }, { LOOM_MIN_FREE_DISK: '-1' })).toEqual(
      expect.arrayContaining([expect.stringMatching(/^minFreeDisk: must be bytes or a size like "500MB", "2GB", got "2 parsecs"/), expect.stringMatching(/^maxShepherds:/), expect.stringMatching(/^env LOOM_MIN_FREE_DISK: must be bytes/)]),
    );
  });
});

describe('overlap', () => {
  it('defaults to wait; takes wait or allow from the file or LOOM_OVERLAP; anything else is a problem', () => {
    expect(ok({}).overlap).toBe('wait');
    expect(ok({ overlap: 'allow' }).overlap).toBe('allow');
    expect(ok({ overlap: 'allow' }, { LOOM_OVERLAP: 'wait' }).overlap).toBe('wait');
    expect(problemsOf({ overlap: 'sometimes', maxShepherds: 0 }, { LOOM_OVERLAP: 'never' })).toEqual(
      expect.arrayContaining(['overlap: must be "wait" or "allow", got "sometimes"', 'env LOOM_OVERLAP: must be "wait" or "allow", got "never"', expect.stringMatching(/^maxShepherds:/)]),
    );
  });
});

describe('hooks', () => {
  it('takes the four hooks as shell commands and a timeout (default 60 s)', () => {
    expect(ok({}).hooks).toEqual({ timeout: 60 * SEC });
    expect(ok({ hooks: { afterCreate: 'npm ci', beforeRemove: 'rm -rf tmp', timeout: '10m' } }).hooks).toEqual({ afterCreate: 'npm ci', beforeRemove: 'rm -rf tmp', timeout: 10 * MIN });
  });

  it('reports every bad hook key at once', () => {
    expect(problemsOf({ hooks: { afterCreat: 'x', beforeRun: '', timeout: 0 } })).toEqual([
      'hooks.afterCreat: unknown key (known: afterCreate, beforeRun, afterRun, beforeRemove, timeout)',
      'hooks.beforeRun: must be a non-empty shell command',
      'hooks.timeout: must be greater than zero',
    ]);
    expect(problemsOf({ hooks: 'npm ci' })).toEqual(['hooks: must be an object with afterCreate, beforeRun, afterRun, beforeRemove and timeout']);
  });
});

describe('sandbox', () => {
  it('is none by default, for every role, with the network on and nothing more hidden', () => {
    const c = ok({ runtime: 'claude' });
    expect(c.sandbox).toEqual({ type: 'none', network: true, hide: [] });
    for (const role of ROLE_NAMES) expect(c.roles[role].sandbox).toEqual({ type: 'none', network: true, hide: [] });
  });

  it('"bwrap" or an object at the top level applies to every role', () => {
    expect(ok({ sandbox: 'bwrap' }).roles.builder.sandbox).toEqual({ type: 'bwrap', network: true, hide: [] });
    const c = ok({ sandbox: { type: 'bwrap', network: false, hide: ['~/.aws', '/srv/secrets', '.env'] } });
    for (const role of ROLE_NAMES) expect(c.roles[role].sandbox).toEqual({ type: 'bwrap', network: false, hide: ['~/.aws', '/srv/secrets', '.env'] });
  });

  it("a role's own keys win over the top level's; its hide list adds to the top level's", () => {
    const c = ok({ sandbox: { type: 'bwrap', hide: ['~/.aws'] }, roles: { judge: { sandbox: { network: false, hide: ['.env'] } }, architect: { sandbox: 'none' } } });
    expect(c.roles.judge.sandbox).toEqual({ type: 'bwrap', network: false, hide: ['~/.aws', '.env'] });
    expect(c.roles.architect.sandbox).toEqual({ type: 'none', network: true, hide: ['~/.aws'] });
    expect(c.roles.builder.sandbox).toEqual({ type: 'bwrap', network: true, hide: ['~/.aws'] });
  });

  it('LOOM_SANDBOX sets the top-level type; a role that sets its own keeps it', () => {
    const c = ok({ sandbox: 'none', roles: { judge: { sandbox: 'none' } } }, { LOOM_SANDBOX: 'bwrap' });
    expect(c.sandbox.type).toBe('bwrap');
    expect(c.roles.builder.sandbox.type).toBe('bwrap');
    expect(c.roles.judge.sandbox.type).toBe('none');
    expect(ok({ sandbox: 'bwrap' }, { LOOM_SANDBOX: 'none' }).roles.builder.sandbox.type).toBe('none');
  });

  it('reports every bad sandbox value at once, top level, roles and env', () => {
    const problems = problemsOf(
      {
        sandbox: { type: 'docker', network: 'no', hide: ['ok', 3], colour: 'red' },
        roles: { builder: { sandbox: 'firejail' }, judge: { sandbox: { hide: '~/.ssh' } }, doctor: { sandbox: { hide: ['../other', '~bob/.ssh'] } }, guide: { sandbox: 7 } },
      },
      { LOOM_SANDBOX: 'yes' },
    );
    expect(problems).toEqual([
      'sandbox.type: must be "bwrap" or "none", got "docker"',
      'sandbox.network: must be true or false',
      'sandbox.hide: must be a list of paths (absolute, "~/…" or relative to the worktree)',
      'sandbox.colour: unknown key (known: type, network, hide)',
      'roles.builder.sandbox: must be "bwrap", "none" or { "type": "bwrap" | "none", "network": true | false, "hide": [paths] }, got "firejail"',
      'roles.judge.sandbox.hide: must be a list of paths (absolute, "~/…" or relative to the worktree)',
      'roles.doctor.sandbox.hide: "../other": a relative path must stay inside the worktree (no "..")',
      'roles.doctor.sandbox.hide: "~bob/.ssh": only "~/…" (your own home) is understood, not another user\'s home',
      'roles.guide.sandbox: must be "bwrap", "none" or { "type": "bwrap" | "none", "network": true | false, "hide": [paths] }',
      'env LOOM_SANDBOX: must be "bwrap" or "none", got "yes"',
    ]);
  });

  it('an invalid sandbox in config.json is a ConfigError naming the file, like every other key', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'loom-config-sandbox-'));
    try {
      const file = path.join(dir, 'config.json');
      fs.writeFileSync(file, JSON.stringify({ sandbox: 'on' }));
      expect(() => loadConfig(file, {})).toThrow(ConfigError);
      expect(() => loadConfig(file, {})).toThrow(/config\.json\): sandbox: must be "bwrap", "none"/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("a daemon's last good configuration saved before sandboxes existed runs unsandboxed, as it did", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'loom-config-lastgood-'));
    try {
      const paths = loomPaths(dir);
      fs.mkdirSync(paths.dir);
      const saved = JSON.parse(JSON.stringify(ok({ runtime: 'script', sandbox: 'bwrap' }))) as Record<string, unknown> & { roles: Record<string, Record<string, unknown>> };
      delete saved.sandbox;
      for (const role of Object.values(saved.roles)) delete role.sandbox;
      fs.writeFileSync(paths.lastGoodConfig, JSON.stringify(saved));
      const config = lastGoodConfig(paths);
      expect(config?.sandbox).toEqual({ type: 'none', network: true, hide: [] });
      expect(config?.roles.builder.sandbox).toEqual({ type: 'none', network: true, hide: [] });
      expect(config?.roles.builder.runtime).toBe('script');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('executor (docs/distributed.md)', () => {
  const github = { type: 'github', owner: 'acme', repo: 'widgets' };

  it('is local by default; bullmq with a Redis URL for the GitHub tracker; LOOM_REDIS_URL sets it', () => {
    expect(ok({}).executor).toEqual({ kind: 'local', shepherds: 'host' });
    expect(ok({ tracker: github, executor: { kind: 'bullmq', redis: 'redis://queue:6379' } }).executor).toEqual({ kind: 'bullmq', redis: 'redis://queue:6379' });
    expect(ok({ tracker: github }, { LOOM_REDIS_URL: 'rediss://:pw@queue:6380' }).executor).toEqual({ kind: 'bullmq', redis: 'rediss://:pw@queue:6380' });
    // The environment wins over the file.
    expect(ok({ tracker: github, executor: { kind: 'local' } }, { LOOM_REDIS_URL: 'redis://other:6379' }).executor).toEqual({ kind: 'bullmq', redis: 'redis://other:6379' });
  });

  it('runs local shepherds in one host by default (also with kind "local" alone), one process each with shepherds "process" or LOOM_SHEPHERDS=process', () => {
    expect(ok({ executor: { kind: 'local' } }).executor).toEqual({ kind: 'local', shepherds: 'host' });
    expect(ok({ executor: { kind: 'local', shepherds: 'process' } }).executor).toEqual({ kind: 'local', shepherds: 'process' });
    expect(ok({}, { LOOM_SHEPHERDS: 'process' }).executor).toEqual({ kind: 'local', shepherds: 'process' });
    expect(ok({}, { LOOM_SHEPHERDS: 'host' }).executor).toEqual({ kind: 'local', shepherds: 'host' });
    expect(ok({ executor: { kind: 'local', shepherds: 'host' } }, { LOOM_SHEPHERDS: 'process' }).executor).toEqual({ kind: 'local', shepherds: 'process' });
    expect(problemsOf({ executor: { kind: 'local', shepherds: 'threads' } })).toEqual(['executor.shepherds: must be "process" or "host", got "threads"']);
    expect(problemsOf({}, { LOOM_SHEPHERDS: 'many' })).toEqual(['env LOOM_SHEPHERDS: must be "process" or "host", got "many"']);
    expect(problemsOf({ tracker: github, executor: { kind: 'bullmq', redis: 'redis://queue:6379' } }, { LOOM_SHEPHERDS: 'host' })).toEqual([expect.stringMatching(/^env LOOM_SHEPHERDS: applies to the local executor only/)]);
  });

  it('refuses the local tracker, an unknown kind and a bad URL, each in one line', () => {
    expect(problemsOf({ executor: { kind: 'bullmq', redis: 'redis://queue:6379' } })).toEqual([expect.stringMatching(/^executor: the bullmq executor needs the GitHub tracker/)]);
    expect(problemsOf({}, { LOOM_REDIS_URL: 'redis://queue:6379' })).toEqual([expect.stringMatching(/bullmq executor needs the GitHub tracker/)]);
    expect(problemsOf({ tracker: github, executor: { kind: 'k8s' } })).toEqual([expect.stringMatching(/^executor: must be \{ "kind": "local" \} or \{ "kind": "bullmq"/)]);
    expect(problemsOf({ tracker: github, executor: { kind: 'bullmq', redis: 'queue:6379' } })).toEqual(['executor.redis: must be a Redis URL like redis://HOST:6379, got "queue:6379"']);
    expect(problemsOf({ tracker: github }, { LOOM_REDIS_URL: 'queue' })).toEqual(['env LOOM_REDIS_URL: must be a Redis URL like redis://HOST:6379, got "queue"']);
  });
});
