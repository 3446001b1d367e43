// Every user error gets one actionable line, exit code 2, and changes nothing.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Label } from '../../src/core/labels.js';
import type { TestRepo } from '../helpers/loom-repo.js';
import { fingerprint, LOOM_BIN, loom, makeRepo, processesIn, startDaemon, until } from '../helpers/loom-repo.js';

let repo: TestRepo | undefined;
afterEach(() => repo?.cleanup());

function expectUserError(r: { code: number | null; stderr: string; stdout: string }, pattern: RegExp) {
  expect(r.code, r.stderr + r.stdout).toBe(2);
  const lines = r.stderr.trim().split('\n');
  expect(lines, r.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^loom: /);
  expect(lines[0]).toMatch(pattern);
  expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
}

describe('bad input', () => {
  it('loom init outside a git repository refuses and creates nothing', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'loom-nogit-'));
    const r = loom(dir, ['init']);
    expectUserError(r, /not inside a git repository.*git init/);
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('commands in a repository without .loom/ say to run loom init', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'loom-noinit-'));
    fs.mkdirSync(path.join(dir, '.git'));
    expectUserError(loom(dir, ['status']), /loom init/);
  });

  it('an invalid config lists every problem at once and changes nothing', () => {
    repo = makeRepo();
    fs.writeFileSync(repo.paths.config, JSON.stringify({ maxShepherds: 0, pollInterval: 'soon', roles: { wizard: {} }, colour: 'blue' }));
    const before = fingerprint(repo.paths.dir);
    for (const args of [['start'], ['iterate'], ['spawn', '1']]) {
      const r = loom(repo.root, args);
      expectUserError(r, /maxShepherds: must be a whole number ≥ 1/);
      for (const problem of [/pollInterval: must be seconds or a duration/, /roles\.wizard: unknown role/, /colour: unknown key/]) expect(r.stderr).toMatch(problem);
    }
    const env = loom(repo.root, ['iterate'], { LOOM_MAX_SHEPHERDS: 'many' });
    expectUserError(env, /env LOOM_MAX_SHEPHERDS: must be a whole number/);
    expect(fingerprint(repo.paths.dir)).toEqual(before);
    // status still works and reports the problem
    const status = loom(repo.root, ['status']);
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/maxShepherds/);
  });

  it('a bad overlap mode is one line that says what to write, exit 2, nothing changed', () => {
    repo = makeRepo({ overlap: 'sometimes' });
    const before = fingerprint(repo.paths.dir);
    expectUserError(loom(repo.root, ['iterate']), /overlap: must be "wait" or "allow", got "sometimes"/);
    expect(fingerprint(repo.paths.dir)).toEqual(before);
  });

  it('the bullmq executor with the local tracker, or a bad Redis URL, is refused in one line; a bad loom worker call too', () => {
    repo = makeRepo();
    // Everything but config.json, which this test rewrites itself.
    const others = () => Object.fromEntries(Object.entries(fingerprint((repo as TestRepo).paths.dir)).filter(([file]) => file !== 'config.json'));
    const before = others();
    const config = fs.readFileSync(repo.paths.config, 'utf8');
    fs.writeFileSync(repo.paths.config, JSON.stringify({ ...JSON.parse(config), executor: { kind: 'bullmq', redis: 'redis://127.0.0.1:6379' } }));
    for (const args of [['start'], ['iterate'], ['worker']]) expectUserError(loom(repo.root, args), /bullmq executor needs the GitHub tracker/);
    fs.writeFileSync(repo.paths.config, config);
    expectUserError(loom(repo.root, ['iterate'], { LOOM_REDIS_URL: 'redis://127.0.0.1:6379' }), /bullmq executor needs the GitHub tracker/);
    expectUserError(loom(repo.root, ['iterate'], { LOOM_REDIS_URL: 'localhost:6379' }), /env LOOM_REDIS_URL: must be a Redis URL like redis:\/\/HOST:6379/);
    fs.writeFileSync(repo.paths.config, JSON.stringify({ ...JSON.parse(config), executor: { kind: 'fleet' } }));
    expectUserError(loom(repo.root, ['iterate']), /executor: must be \{ "kind": "local" \} or/);
    fs.writeFileSync(repo.paths.config, config);
    expectUserError(loom(repo.root, ['worker']), /no Redis to take jobs from; pass --redis/);
    expectUserError(loom(repo.root, ['worker', '--redis', 'http://x', '--concurrency', '2']), /--redis must be a Redis URL/);
    expectUserError(loom(repo.root, ['worker', '--redis', 'redis://127.0.0.1:6379', '--concurrency', '0']), /--concurrency must be a positive whole number/);
    // Each of these once started a worker: a port that is not one (6379 used instead), a port
    // out of range, a database that is not a number (a stack trace on connect), no host.
    for (const url of ['redis://127.0.0.1:notaport', 'redis://127.0.0.1:99999', 'redis://127.0.0.1:6379/abc', 'redis://:6379']) {
      expectUserError(loom(repo.root, ['worker', '--redis', url]), /--redis must be a Redis URL like redis:\/\/HOST:6379/);
      expectUserError(loom(repo.root, ['iterate'], { LOOM_REDIS_URL: url }), /env LOOM_REDIS_URL: must be a Redis URL/);
    }
    for (const n of ['0x2', '1e1', '2.0']) expectUserError(loom(repo.root, ['worker', '--redis', 'redis://127.0.0.1:6379', '--concurrency', n]), /--concurrency must be a positive whole number/);
    expectUserError(loom(repo.root, ['worker', '--redis', 'redis://127.0.0.1:6379']), /loom worker needs the GitHub tracker/);
    expect(others()).toEqual(before);
  });

  it('requireApproval with the local tracker (which has no reviews, so nothing would ever merge) is refused in one line, nothing changed', () => {
    repo = makeRepo({ requireApproval: true });
    const before = fingerprint(repo.paths.dir);
    for (const args of [['start'], ['iterate'], ['spawn', '1']]) expectUserError(loom(repo.root, args), /requireApproval: needs the GitHub tracker \(the local tracker has no reviews/);
    expect(fingerprint(repo.paths.dir)).toEqual(before);
    fs.writeFileSync(repo.paths.config, JSON.stringify({ ...JSON.parse(fs.readFileSync(repo.paths.config, 'utf8')), requireApproval: false }));
    expectUserError(loom(repo.root, ['iterate'], { LOOM_REQUIRE_APPROVAL: 'true' }), /requireApproval: needs the GitHub tracker/);
  });

  it('an env override with a bad value is reported by name', () => {
    repo = makeRepo();
    const r = loom(repo.root, ['iterate'], { LOOM_POLL_INTERVAL: '-3' });
    expectUserError(r, /env LOOM_POLL_INTERVAL/);
  });

  it('loom spawn refuses an unknown, closed or already-owned issue', async () => {
    repo = makeRepo({ roles: { builder: { command: 'sleep 30' } } });
    const tracker = repo.tracker();
    await tracker.createIssue({ title: 'open', labels: [Label.issue] });
    const closed = await tracker.createIssue({ title: 'closed' });
    await tracker.close(closed.number);
    const pr = await tracker.createPullRequest({ title: 'the change', head: 'feature', base: 'main', closesIssue: 1 });
    // The tracker's content (SQLite may checkpoint its WAL on close) plus every other file.
    const everything = async () => {
      const files = Object.entries(fingerprint(repo!.paths.dir)).filter(([name]) => !name.startsWith('tracker.db'));
      const issues = await tracker.listIssues({ state: 'all' });
      const timeline = await Promise.all(issues.map(async (i) => [await tracker.listEvents(i.number), await tracker.listComments(i.number)]));
      return JSON.stringify({ files, issues, timeline });
    };
    const before = await everything();
    expectUserError(loom(repo.root, ['spawn', '99']), /#99 does not exist/);
    expectUserError(loom(repo.root, ['spawn', 'abc']), /not an issue number/);
    expectUserError(loom(repo.root, ['spawn', String(pr.number)]), new RegExp(`^loom: #${pr.number} is a pull request, not an issue .*; it is for issue #1: \`loom spawn 1\`$`));
    expectUserError(loom(repo.root, ['spawn', String(closed.number)]), /closed/);
    expect(await everything()).toBe(before);

    const first = loom(repo.root, ['spawn', '1']);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toMatch(/Spawned shepherd for #1/);
    expectUserError(loom(repo.root, ['spawn', '1']), /already (owned|claimed)/);
    const building = await tracker.getIssue(1);
    const logs = fs.readdirSync(repo.paths.logs).map((n) => fs.readFileSync(path.join(repo!.paths.logs, n), 'utf8'));
    expect(building!.labels, logs.join('\n')).toEqual([Label.building]);
    const claims = (await tracker.listEvents(1)).filter((e) => e.label === Label.building && e.type === 'labeled');
    expect(claims).toHaveLength(1);
  });

  it('a second daemon refuses to start, naming the first one; a stale lock is taken over', async () => {
    repo = makeRepo({ pollInterval: '1s' });
    // A lock left by a crashed daemon (a pid that does not exist).
    fs.writeFileSync(repo.paths.lock, JSON.stringify({ pid: 999_999_99, pid_start: null, session_id: 'old', started_at: '2026-01-01T00:00:00Z', holder: 'daemon' }));
    const daemon = startDaemon(repo.root);
    await until(() => /Iteration 1:/.test(daemon.output()), 20_000, 'first iteration');
    const second = loom(repo.root, ['start']);
    expectUserError(second, new RegExp(`already running .*pid ${daemon.child.pid}`));
    expectUserError(loom(repo.root, ['iterate']), new RegExp(`pid ${daemon.child.pid}`));
    loom(repo.root, ['stop']);
    expect(await daemon.exited(30_000)).toBe(0);
  });

  it('a corrupt or truncated state file is moved aside and rebuilt from the tracker, with a warning', async () => {
    for (const garbage of ['{"started_at": "2026-01-', 'not json at all \u0000\u0001']) {
      repo = makeRepo({ roles: { builder: { command: 'sleep 30' } } });
      const tracker = repo.tracker();
      await tracker.createIssue({ title: 'orphan', labels: [Label.building] });
      fs.writeFileSync(repo.paths.state, garbage);
      // status only reads: it reports the problem and leaves the file where it is
      const status = loom(repo.root, ['status']);
      expect(status.code).toBe(0);
      expect(status.stdout).toMatch(/unreadable/);
      expect(fs.readFileSync(repo.paths.state, 'utf8')).toBe(garbage);

      const r = loom(repo.root, ['iterate']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/released=#1/);
      const aside = fs.readdirSync(repo.paths.dir).filter((n) => n.startsWith('daemon-state.json.corrupt-'));
      expect(aside).toHaveLength(1);
      expect(fs.readFileSync(path.join(repo.paths.dir, aside[0]!), 'utf8')).toBe(garbage);
      const state = JSON.parse(fs.readFileSync(repo.paths.state, 'utf8'));
      expect(state.warnings.map((w: { message: string }) => w.message).join('\n')).toMatch(/unreadable.*moved to/);
      expect((await tracker.getIssue(1))!.labels).toEqual([Label.issue]);
      repo.cleanup();
      repo = undefined;
    }
  });

  it('reads a state file written by an earlier Loom installation', () => {
    repo = makeRepo();
    const legacy = {
      started_at: '2026-01-23T10:00:00Z',
      running: false,
      shepherds: { 'shepherd-1': { status: 'idle', issue: null, idle_since: '2026-01-23T11:00:00Z', idle_reason: 'no_ready_issues' } },
      support_roles: { guide: { status: 'idle', task_id: null, last_completed: '2026-01-23T11:00:00Z' } },
      completed_issues: [100, 101, 102],
      total_prs_merged: 3,
      last_architect_trigger: '2026-01-23T09:00:00Z',
      warnings: ['an old plain-string warning'],
    };
    fs.writeFileSync(repo.paths.state, JSON.stringify(legacy));
    const status = JSON.parse(loom(repo.root, ['status', '--json']).stdout);
    expect(status.session).toEqual({ completed_issues: 3, prs_merged: 3 });
    const r = loom(repo.root, ['iterate']);
    expect(r.code, r.stderr).toBe(0);
    const state = JSON.parse(fs.readFileSync(repo.paths.state, 'utf8'));
    expect(state.completed_issues).toEqual([100, 101, 102]);
    expect(state.last_architect_trigger).toBe('2026-01-23T09:00:00Z');
    expect(state.shepherds['shepherd-1'].idle_reason).toBe('no_ready_issues');
  });

  it('loom status modifies no file (stopped, and after a crash)', async () => {
    repo = makeRepo({ pollInterval: '1s', roles: { builder: { command: 'true' } } });
    expect(loom(repo.root, ['issue', 'create', 'x', '--label', Label.issue]).code).toBe(0);
    let before = fingerprint(repo.paths.dir);
    for (const args of [['status'], ['status', '--json'], ['issue', 'list'], ['issue', 'show', '1', '--json']]) expect(loom(repo.root, args).code).toBe(0);
    expect(fingerprint(repo.paths.dir)).toEqual(before);

    // The shepherd host the daemon started outlives it until it has been idle LOOM_HOST_IDLE_MS.
    const daemon = startDaemon(repo.root, ['start'], { LOOM_HOST_IDLE_MS: '500' });
    await until(() => /Iteration 2:/.test(daemon.output()), 20_000, 'two iterations');
    daemon.child.kill('SIGKILL');
    await daemon.exited(10_000);
    await until(() => processesIn(repo!.root).length === 0, 20_000, 'every Loom process in the repository has exited');
    before = fingerprint(repo.paths.dir);
    const status = JSON.parse(loom(repo.root, ['status', '--json']).stdout);
    expect(status.daemon.status).toBe('crashed');
    expect(fingerprint(repo.paths.dir)).toEqual(before);
  });

  it('unknown commands, options and issue numbers are usage errors', () => {
    repo = makeRepo();
    expect(loom(repo.root, ['frobnicate']).code).toBe(2);
    expect(loom(repo.root, ['status', '--bogus']).code).toBe(2);
    expectUserError(loom(repo.root, ['issue', 'show', '42']), /#42 does not exist/);
    expectUserError(loom(repo.root, ['issue', 'label', '42', 'loom:issue']), /#42 does not exist/);
    expectUserError(loom(repo.root, ['role', 'wizard']), /unknown role/);
    expectUserError(loom(repo.root, ['logs', 'wizard']), /"wizard" is neither an issue number nor a role; use a number like 12, `daemon` or one of builder, /);
    expectUserError(loom(repo.root, ['issue', 'create', 'x', '--label', ' spaced ']), /whitespace/);
  });

  it('a mistyped option or subcommand gets its "did you mean" on the same one line', () => {
    repo = makeRepo();
    expectUserError(loom(repo.root, ['status', '--jsn']), /^loom: unknown option '--jsn' \(did you mean --json\?\); run `loom --help` for usage$/);
    expectUserError(loom(repo.root, ['issue', 'list', '--stat', 'all']), /unknown option '--stat' \(did you mean --state\?\)/);
    expectUserError(loom(repo.root, ['issue', 'lsit']), /unknown command 'lsit' \(did you mean list\?\)/);
    // A top-level command too (a swap of two letters is one edit); a word near nothing gets no guess.
    expectUserError(loom(repo.root, ['stauts']), /^loom: unknown command "stauts" \(did you mean status\?\); run `loom --help` for the commands$/);
    expectUserError(loom(repo.root, ['wrker']), /unknown command "wrker" \(did you mean worker\?\)/);
    expectUserError(loom(repo.root, ['frobnicate']), /^loom: unknown command "frobnicate"; run `loom --help` for the commands$/);
  });
});

describe('bad input: each problem named by its source, nothing silently ignored', () => {
  it('an environment-only knob with a bad value (LOOM_EVENTS_MAX_BYTES=abc, LOOM_HOST_IDLE_MS=-5, …) is refused by name, not silently replaced by its default', () => {
    repo = makeRepo();
    for (const [name, value, least] of [
      ['LOOM_DAEMON_LOG_MAX_BYTES', '10MB', 1],
      ['LOOM_EVENTS_MAX_BYTES', 'abc', 1],
      ['LOOM_HOST_IDLE_MS', '-5', 0],
      ['LOOM_WORKER_LOCK_MS', '0', 1],
      ['LOOM_MIN_ITERATION_GAP_MS', '1.5', 0],
    ] as const) {
      expectUserError(loom(repo.root, ['iterate'], { [name]: value }), new RegExp(`^loom: env ${name}: must be a whole number ≥ ${least}, got "${value.replace('.', '\\.')}"$`));
    }
    expect(loom(repo.root, ['iterate'], { LOOM_EVENTS_MAX_BYTES: '1000000', LOOM_HOST_IDLE_MS: '0' }).code).toBe(0);
  });

  it('an env value is reported as the env variable, not as a config.json problem', () => {
    repo = makeRepo();
    const r = loom(repo.root, ['iterate'], { LOOM_MAX_SHEPHERDS: 'abc' });
    expectUserError(r, /^loom: env LOOM_MAX_SHEPHERDS: must be a whole number/);
    expect(r.stderr).not.toMatch(/config\.json/);
  });

  it('a role file problem names the role file, not config.json', () => {
    repo = makeRepo();
    fs.writeFileSync(path.join(repo.paths.roles, 'builder.md'), '---\ntimeout: soon\n---\nBuild it.\n');
    const r = loom(repo.root, ['iterate']);
    expectUserError(r, /^loom: \.loom\/roles\/builder\.md:2: bad value for timeout/);
    expect(r.stderr).not.toMatch(/config\.json/);
  });

  it('a misspelt role file is an error with the likely name, not silently ignored', () => {
    repo = makeRepo();
    fs.writeFileSync(path.join(repo.paths.roles, 'bulider.md'), '---\ntimeout: 10m\n---\nBuild it.\n');
    expectUserError(loom(repo.root, ['iterate']), /\.loom\/roles\/bulider\.md: not a role, so it would be ignored .*did you mean builder\.md\?/);
  });

  it('an empty config.json is an error that says how to get the defaults', () => {
    repo = makeRepo();
    fs.writeFileSync(repo.paths.config, '');
    expectUserError(loom(repo.root, ['iterate']), /config\.json: \(root\): the file is empty; write \{\} to use the defaults/);
  });

  it('loom issue list with an invalid config is an error, not the local tracker by guess', () => {
    repo = makeRepo();
    fs.writeFileSync(repo.paths.config, JSON.stringify({ tracker: { type: 'gitlab' } }));
    expectUserError(loom(repo.root, ['issue', 'list']), /tracker\.type: must be "local" or "github"/);
  });

  it('an unknown loom: label is refused; Loom labels are taken in any case', async () => {
    repo = makeRepo();
    const tracker = repo.tracker();
    await tracker.createIssue({ title: 'x' });
    expectUserError(loom(repo.root, ['issue', 'label', '1', 'loom:bogus']), /"loom:bogus" is not a Loom label/);
    expectUserError(loom(repo.root, ['issue', 'create', 'y', '--label', 'loom:isue']), /"loom:isue" is not a Loom label/);
    expect((await tracker.getIssue(1))!.labels).toEqual([]);
    expect(loom(repo.root, ['issue', 'label', '1', 'LOOM:Issue', 'Bug']).code).toBe(0);
    expect((await tracker.getIssue(1))!.labels).toEqual(['Bug', Label.issue]);
    expect(loom(repo.root, ['issue', 'unlabel', '1', 'Loom:Issue']).code).toBe(0);
    expect((await tracker.getIssue(1))!.labels).toEqual(['Bug']);
  });

  it('a closed issue: loom issue label … loom:issue refuses and names loom issue reopen, which reopens it; reopening an open issue is refused', async () => {
    repo = makeRepo();
    const tracker = repo.tracker();
    await tracker.createIssue({ title: 'x', labels: [Label.issue] });
    await tracker.close(1, "Won't do.");
    expectUserError(loom(repo.root, ['issue', 'label', '1', 'loom:issue']), /issue #1 is closed; reopen it first: `loom issue reopen 1`/);
    expectUserError(loom(repo.root, ['spawn', '1']), /issue #1 is closed; reopen it before spawning a shepherd/);
    const reopened = loom(repo.root, ['issue', 'reopen', '1']);
    expect(reopened.code, reopened.stderr).toBe(0);
    expect(reopened.stdout).toMatch(/^Reopened #1\./);
    expect((await tracker.getIssue(1))!.state).toBe('open');
    expectUserError(loom(repo.root, ['issue', 'reopen', '1']), /issue #1 is open already/);
    expect(loom(repo.root, ['issue', 'label', '1', 'loom:issue']).code).toBe(0);
    expect((await tracker.getIssue(1))!.labels).toEqual([Label.issue]);
  });

  it('loom issue unlabel and loom issue list --label refuse an unknown loom: label or a malformed name in one line, as loom issue label does', async () => {
    repo = makeRepo();
    const tracker = repo.tracker();
    await tracker.createIssue({ title: 'x', labels: [Label.urgent] });
    expectUserError(loom(repo.root, ['issue', 'unlabel', '1', 'loom:urgnet']), /"loom:urgnet" is not a Loom label/);
    expectUserError(loom(repo.root, ['issue', 'unlabel', '1', 'bad label,x']), /must not contain a comma/);
    expectUserError(loom(repo.root, ['issue', 'list', '--label', 'loom:bogus']), /"loom:bogus" is not a Loom label/);
    expectUserError(loom(repo.root, ['issue', 'list', '--label', 'a,b']), /must not contain a comma/);
    expect((await tracker.getIssue(1))!.labels).toEqual([Label.urgent]);
    const listed = loom(repo.root, ['issue', 'list', '--label', 'LOOM:URGENT']);
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout).toMatch(/^#1 +x \[loom:urgent\]$/m);
  });

  it('extra words after a command are refused', () => {
    repo = makeRepo();
    for (const args of [['status', 'extra'], ['stop', 'now'], ['issue', 'list', 'all']]) {
      const r = loom(repo.root, args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(/too many arguments/);
    }
    const r = loom(repo.root, ['issue', 'comment', '1', 'looks', 'good']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('loom: too many arguments for \'comment\'. Expected 2 arguments but got 3 (quote a text of several words: "like this"); run `loom --help` for usage\n');
    expect(fs.existsSync(repo.paths.stopSignal)).toBe(false);
  });

  it('a corrupt tracker database is one line saying how to recover, exit 2', () => {
    repo = makeRepo();
    for (const suffix of ['-wal', '-shm']) fs.rmSync(repo.paths.trackerDb + suffix, { force: true });
    fs.writeFileSync(repo.paths.trackerDb, 'this is not a database '.repeat(400));
    for (const args of [['issue', 'list'], ['issue', 'create', 'x'], ['iterate']]) expectUserError(loom(repo.root, args), /not (readable|an SQLite database).*move it aside and run `loom init`/);
  });

  it('a file where .loom/worktrees should be is one line naming it, exit 2 — not a stack trace called a bug', async () => {
    repo = makeRepo({ runtime: 'script' });
    await repo.tracker().createIssue({ title: 'x', labels: [Label.issue] });
    fs.rmSync(repo.paths.worktrees, { recursive: true, force: true });
    fs.writeFileSync(repo.paths.worktrees, 'not a directory\n');
    expectUserError(loom(repo.root, ['shepherd', '1']), /cannot use \.loom\/worktrees \(EEXIST\): a file is where Loom needs a directory; move it aside/);
    expect(fs.readFileSync(repo.paths.worktrees, 'utf8')).toBe('not a directory\n');
  });

  it('a defaultBranch that is not a branch (a typo) starts no shepherd and blocks no issue: loom shepherd refuses in one line, the iteration says so once', async () => {
    repo = makeRepo({ runtime: 'script', defaultBranch: 'mian', roles: { architect: { enabled: false }, hermit: { enabled: false }, guide: { enabled: false }, curator: { enabled: false } } });
    const tracker = repo.tracker();
    await tracker.createIssue({ title: 'x', labels: [Label.issue] });
    expectUserError(loom(repo.root, ['shepherd', '1']), /defaultBranch "mian" \(\.loom\/config\.json or LOOM_DEFAULT_BRANCH\) is not a branch of this repository/);
    expect((await tracker.getIssue(1))!.labels).toEqual([Label.issue]);
    for (const args of [['spawn', '1'], ['start']]) expectUserError(loom(repo.root, args), /defaultBranch "mian" .* is not a branch of this repository/);
    expect((await tracker.getIssue(1))!.labels).toEqual([Label.issue]);
    for (let i = 0; i < 2; i += 1) {
      const r = loom(repo.root, ['iterate']);
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(r.stdout).toMatch(/shepherds=0\/3 .*!base=mian/);
    }
    expect((await tracker.getIssue(1))!.labels).toEqual([Label.issue]);
    const status = loom(repo.root, ['status', '--json']);
    const warnings = (JSON.parse(status.stdout) as { warnings: { message: string }[] }).warnings.filter((w) => w.message.includes('defaultBranch "mian"'));
    expect(warnings).toHaveLength(1);
    repo.writeConfig({ runtime: 'script', defaultBranch: 'main' });
    expect(loom(repo.root, ['iterate']).stdout).toMatch(/\+shepherd=#1/);
  });

  it('a builder command whose program is a path that does not exist starts no shepherd and blocks no issue', async () => {
    const roles = { builder: { command: './scripts/agnet.sh' }, architect: { enabled: false }, hermit: { enabled: false }, guide: { enabled: false }, curator: { enabled: false } };
    repo = makeRepo({ sandbox: 'none', roles });
    const tracker = repo.tracker();
    await tracker.createIssue({ title: 'x', labels: [Label.issue] });
    expectUserError(loom(repo.root, ['shepherd', '1']), /the builder's command: \.\/scripts\/agnet\.sh \(.*\) does not exist; no shepherd starts until it is fixed/);
    const r = loom(repo.root, ['iterate']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/shepherds=0\/3 .*!builder-command/);
    expect((await tracker.getIssue(1))!.labels).toEqual([Label.issue]);
    fs.mkdirSync(path.join(repo.root, 'scripts'));
    fs.writeFileSync(path.join(repo.root, 'scripts', 'agnet.sh'), '#!/bin/sh\nexit 0\n', { mode: 0o755 });
    expect(loom(repo.root, ['iterate']).stdout).toMatch(/\+shepherd=#1/);
  });

  it('an unwritable .loom/ is one line naming what cannot be written, exit 2', () => {
    repo = makeRepo();
    // Run as an unprivileged user (root may write anywhere): the repository stays root's.
    fs.chmodSync(repo.root, 0o755);
    const asNobody = (args: string[]) => {
      const r = spawnSync(process.execPath, [LOOM_BIN, ...args], {
        cwd: repo!.root,
        encoding: 'utf8',
        uid: 65534,
        gid: 65534,
        env: { PATH: process.env.PATH, HOME: os.tmpdir(), GIT_CONFIG_COUNT: '1', GIT_CONFIG_KEY_0: 'safe.directory', GIT_CONFIG_VALUE_0: '*' },
      });
      return { code: r.status, stdout: r.stdout, stderr: r.stderr };
    };
    expectUserError(asNobody(['stop']), /cannot write \.loom\/stop-daemon \(EACCES\): check that \.loom\/ and its files are writable/);
    expectUserError(asNobody(['issue', 'create', 'x']), /cannot write the local tracker database|not readable|cannot open the local tracker/);
  });
});
