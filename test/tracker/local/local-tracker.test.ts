/**
 * LocalTracker: the shared contract plus what only a local SQLite file has to prove —
 * real multi-process safety (atomic claim across processes, concurrent writers), the read-only
 * promise to leave every file untouched, write notifications and snapshot scale.
 */

import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { LOCAL_TRACKER_FILE } from '../../../src/tracker/local/local-database.js';
import { LocalTracker } from '../../../src/tracker/local/local-tracker.js';
import { describeTrackerContract } from '../tracker-contract.js';
import { dropVersion3 } from './fixtures/schema-versions.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const projectRoot = path.resolve(here, '../../..');
const claimOnceScript = path.join(here, 'fixtures', 'claim-once.ts');
const createIssuesScript = path.join(here, 'fixtures', 'create-issues.ts');

function makeTempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'loom-'));
}

describeTrackerContract('LocalTracker', () => {
  const dir = makeTempDir();
  const tracker = new LocalTracker({ path: path.join(dir, LOCAL_TRACKER_FILE) });
  return Promise.resolve({
    tracker,
    cleanup: () => Promise.resolve(fs.rmSync(dir, { recursive: true, force: true })),
  });
});

/** Temp dirs and open trackers of the current test, released even when it fails. */
const toRemove: string[] = [];
const toDispose: LocalTracker[] = [];
const children: Child[] = [];

afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === undefined) child.process.kill('SIGKILL');
  for (const tracker of toDispose.splice(0)) tracker.dispose();
  for (const dir of toRemove.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = makeTempDir();
  toRemove.push(dir);
  return dir;
}

function open(options: ConstructorParameters<typeof LocalTracker>[0]): LocalTracker {
  const tracker = new LocalTracker(options);
  toDispose.push(tracker);
  return tracker;
}

/** Resolves once `condition` holds; polls, and fails with `what` after `timeoutMs`. */
async function waitUntil(condition: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

interface Child {
  process: ReturnType<typeof spawn>;
  lines: string[];
  stderr: string;
  exitCode: number | null | undefined;
  signal: NodeJS.Signals | null;
}

/** Runs a TypeScript fixture in its own Node process, collecting its output lines. */
function runFixture(script: string, args: string[]): Child {
  const child: Child = {
    process: spawn(process.execPath, ['--import', 'tsx', script, ...args], { cwd: projectRoot, stdio: ['ignore', 'pipe', 'pipe'] }),
    lines: [],
    stderr: '',
    exitCode: undefined,
    signal: null,
  };
  let partial = '';
  child.process.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    const parts = (partial + chunk).split('\n');
    partial = parts.pop() ?? '';
    child.lines.push(...parts);
  });
  child.process.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    child.stderr += chunk;
  });
  child.process.on('exit', (code, signal) => {
    child.exitCode = code;
    child.signal = signal;
  });
  children.push(child);
  return child;
}

async function waitForExit(child: Child, timeoutMs = 60_000): Promise<void> {
  await waitUntil(() => child.exitCode !== undefined, `fixture ${child.process.pid} to exit`, timeoutMs);
}

/** Every file in `dir` with size, mtime and content hash: the read-only promise is that this never changes. */
function directoryState(dir: string): Record<string, string> {
  const state: Record<string, string> = {};
  for (const name of fs.readdirSync(dir).sort()) {
    const file = path.join(dir, name);
    const stat = fs.statSync(file, { bigint: true });
    const hash = crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
    state[name] = `size=${stat.size} mtime=${stat.mtimeNs} ino=${stat.ino} sha256=${hash}`;
  }
  return state;
}

describe('LocalTracker across processes', () => {
  it('lets exactly one of 8 racing processes claim each of 20 issues', { timeout: 120_000 }, async () => {
    const dir = tempDir();
    const dbPath = path.join(dir, LOCAL_TRACKER_FILE);
    const signals = path.join(dir, 'signals');
    fs.mkdirSync(signals);
    const setup = open({ path: dbPath });
    const numbers: number[] = [];
    for (let i = 0; i < 20; i++) numbers.push((await setup.createIssue({ title: `race ${i}`, labels: ['loom:issue'] })).number);
    setup.dispose();

    const racers = Array.from({ length: 8 }, () => runFixture(claimOnceScript, [dbPath, numbers.join(','), signals]));
    await waitUntil(() => racers.every((r) => r.lines.includes('ready')), 'all racers to open the tracker', 60_000);

    // One race per issue: release all racers together, and start the next race only when all
    // have answered, so every race is a real 8-way contention.
    for (const number of numbers) {
      fs.writeFileSync(path.join(signals, `go-${number}`), '');
      await waitUntil(
        () => racers.every((r) => r.lines.some((l) => l.startsWith(`${number} `)) || r.exitCode !== undefined),
        `all racers to answer for #${number}`,
      );
    }
    for (const racer of racers) {
      await waitForExit(racer);
      expect(racer.stderr).toBe('');
      expect(racer.exitCode).toBe(0);
    }

    const tracker = open({ path: dbPath });
    for (const number of numbers) {
      const winners = racers.filter((r) => r.lines.includes(`${number} won`));
      const losers = racers.filter((r) => r.lines.includes(`${number} lost`));
      expect(winners, `winners of #${number}`).toHaveLength(1);
      expect(losers).toHaveLength(7);

      const claims = (await tracker.listEvents(number)).filter((e) => e.type === 'labeled' && e.label === 'loom:building');
      expect(claims).toHaveLength(1);
      expect(claims[0]!.actor).toBe(`racer-${winners[0]!.process.pid}`);
      expect((await tracker.getIssue(number))?.labels).toEqual(['loom:building']);
    }
  });

  it('serializes concurrent writers from 4 processes, including the first open that creates the file', { timeout: 120_000 }, async () => {
    const dir = tempDir();
    const dbPath = path.join(dir, LOCAL_TRACKER_FILE);
    const signal = path.join(dir, 'go');
    const writers = Array.from({ length: 4 }, () => runFixture(createIssuesScript, [dbPath, '50', signal, 'dispose']));
    await waitUntil(() => writers.every((w) => w.lines.includes('ready')), 'all writers to start', 60_000);
    expect(fs.existsSync(dbPath)).toBe(false);
    fs.writeFileSync(signal, '');

    const created: number[] = [];
    for (const writer of writers) {
      await waitForExit(writer);
      expect(writer.stderr).toBe('');
      expect(writer.exitCode).toBe(0);
      const done = writer.lines.find((l) => l.startsWith('done '));
      created.push(...done!.slice('done '.length).split(',').map(Number));
    }
    expect(created).toHaveLength(200);
    expect(new Set(created).size).toBe(200);

    const tracker = open({ path: dbPath });
    const issues = await tracker.listIssues();
    expect(issues.map((i) => i.number)).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
    expect(new Set(issues.map((i) => i.author)).size).toBe(4);
  });
});

describe('LocalTracker read-only', () => {
  /** Runs every read method on a fresh read-only tracker and returns what it saw. */
  async function readEverything(dbPath: string, number: number) {
    const tracker = new LocalTracker({ path: dbPath, readonly: true });
    try {
      return {
        snapshot: await tracker.snapshot(),
        issue: await tracker.getIssue(number),
        issues: await tracker.listIssues({ state: 'all' }),
        comments: await tracker.listComments(number),
        events: await tracker.listEvents(number),
        pr: await tracker.getPullRequest(number + 1),
      };
    } finally {
      tracker.dispose();
    }
  }

  async function populate(tracker: LocalTracker): Promise<number> {
    const issue = await tracker.createIssue({ title: 'seen read-only', labels: ['loom:issue'] });
    await tracker.claim(issue.number);
    await tracker.comment(issue.number, 'working on it');
    await tracker.createPullRequest({ title: 'pr', head: 'loom/ro', base: 'main', labels: ['loom:review-requested'] });
    return issue.number;
  }

  it('changes no file when the last writer closed cleanly (no -wal/-shm)', async () => {
    const dir = tempDir();
    const dbPath = path.join(dir, LOCAL_TRACKER_FILE);
    const writer = new LocalTracker({ path: dbPath });
    const number = await populate(writer);
    writer.dispose();
    expect(fs.readdirSync(dir)).toEqual([LOCAL_TRACKER_FILE]);

    const before = directoryState(dir);
    const seen = await readEverything(dbPath, number);
    expect(directoryState(dir)).toEqual(before);

    expect(seen.issue).toMatchObject({ number, labels: ['loom:building'] });
    expect(seen.snapshot.issues.map((i) => i.number)).toEqual([number]);
    expect(seen.snapshot.pullRequests.map((p) => p.number)).toEqual([number + 1]);
    expect(seen.comments.map((c) => c.body)).toEqual(['working on it']);
    expect(seen.events.map((e) => e.type)).toEqual(['labeled', 'unlabeled', 'labeled']);
    expect(seen.pr).toMatchObject({ head: 'loom/ro' });
  });

  it('changes no file while a writer has the database open, and sees its latest commits', async () => {
    const dir = tempDir();
    const dbPath = path.join(dir, LOCAL_TRACKER_FILE);
    const writer = open({ path: dbPath });
    const number = await populate(writer);
    expect(fs.readdirSync(dir).sort()).toEqual([LOCAL_TRACKER_FILE, `${LOCAL_TRACKER_FILE}-shm`, `${LOCAL_TRACKER_FILE}-wal`]);
    expect(fs.statSync(`${dbPath}-wal`).size).toBeGreaterThan(0);

    const before = directoryState(dir);
    const seen = await readEverything(dbPath, number);
    expect(directoryState(dir)).toEqual(before);
    expect(seen.issue).toMatchObject({ number, labels: ['loom:building'] });
    expect(seen.comments.map((c) => c.body)).toEqual(['working on it']);

    // A long-lived read-only tracker reads the current state on every call, not a stale copy.
    const reader = open({ path: dbPath, readonly: true });
    await writer.updateLabels(number, { add: ['loom:blocked'] });
    expect((await reader.getIssue(number))?.labels).toEqual(['loom:blocked']);
  });

  it('changes no file after a writer crashed, leaving -wal/-shm behind, and sees its commits', { timeout: 60_000 }, async () => {
    const dir = tempDir();
    const dbPath = path.join(dir, LOCAL_TRACKER_FILE);
    const signal = path.join(os.tmpdir(), `loom-signal-${process.pid}-${Date.now()}`);
    fs.writeFileSync(signal, '');
    try {
      const writer = runFixture(createIssuesScript, [dbPath, '5', signal, 'crash']);
      await waitForExit(writer);
      expect(writer.signal).toBe('SIGKILL');
      expect(writer.stderr).toBe('');
    } finally {
      fs.rmSync(signal, { force: true });
    }
    expect(fs.readdirSync(dir).sort()).toEqual([LOCAL_TRACKER_FILE, `${LOCAL_TRACKER_FILE}-shm`, `${LOCAL_TRACKER_FILE}-wal`]);
    expect(fs.statSync(`${dbPath}-wal`).size).toBeGreaterThan(0);

    const before = directoryState(dir);
    const seen = await readEverything(dbPath, 5);
    expect(directoryState(dir)).toEqual(before);
    expect(seen.issues.map((i) => i.number)).toEqual([1, 2, 3, 4, 5]);
    expect(seen.snapshot.issues).toHaveLength(5);
  });

  it('changes no file when an empty -wal/-shm were left behind by another read-only client', async () => {
    const dir = tempDir();
    const dbPath = path.join(dir, LOCAL_TRACKER_FILE);
    const writer = new LocalTracker({ path: dbPath });
    const number = await populate(writer);
    writer.dispose();
    // What a plain read-only SQLite connection leaves behind (see src/tracker/local/read-consistent-copy.ts).
    const plain = new Database(dbPath, { readonly: true, fileMustExist: true });
    plain.prepare('SELECT count(*) FROM items').get();
    plain.close();
    expect(fs.statSync(`${dbPath}-wal`).size).toBe(0);

    const before = directoryState(dir);
    const seen = await readEverything(dbPath, number);
    expect(directoryState(dir)).toEqual(before);
    expect(seen.issue).toMatchObject({ number, labels: ['loom:building'] });
  });

  it('refuses every write and changes nothing', async () => {
    const dir = tempDir();
    const dbPath = path.join(dir, LOCAL_TRACKER_FILE);
    const writer = new LocalTracker({ path: dbPath });
    const number = await populate(writer);
    writer.dispose();
    const before = directoryState(dir);

    const reader = open({ path: dbPath, readonly: true });
    const writes: Array<() => Promise<unknown>> = [
      () => reader.createIssue({ title: 'no' }),
      () => reader.createPullRequest({ title: 'no', head: 'a', base: 'b' }),
      () => reader.updateLabels(number, { add: ['loom:blocked'] }),
      () => reader.claim(number),
      () => reader.comment(number, 'no'),
      () => reader.close(number),
      () => reader.reopen(number),
      () => reader.markMerged(number + 1),
    ];
    for (const write of writes) await expect(write()).rejects.toThrow(/opened read-only/);
    expect(directoryState(dir)).toEqual(before);
  });

  it('does not create a missing file, and rejects a file that is not SQLite', () => {
    const dir = tempDir();
    const dbPath = path.join(dir, LOCAL_TRACKER_FILE);
    expect(() => new LocalTracker({ path: dbPath, readonly: true })).toThrow(/does not exist/);
    expect(fs.readdirSync(dir)).toEqual([]);

    fs.writeFileSync(dbPath, 'not a database at all, just some text');
    expect(() => new LocalTracker({ path: dbPath, readonly: true })).toThrow(/not an SQLite database/);
  });

  it('stops reading once disposed', async () => {
    const dir = tempDir();
    const dbPath = path.join(dir, LOCAL_TRACKER_FILE);
    new LocalTracker({ path: dbPath }).dispose();
    const reader = new LocalTracker({ path: dbPath, readonly: true });
    reader.dispose();
    await expect(reader.snapshot()).rejects.toThrow(/disposed/);
  });
});

describe('LocalTracker on its own', () => {
  it('creates the file with schema version 3 in WAL mode, and requires its directory', () => {
    const dir = tempDir();
    const missing = path.join(dir, 'no-such-dir', LOCAL_TRACKER_FILE);
    expect(() => new LocalTracker({ path: missing })).toThrow(/directory .*no-such-dir does not exist/);
    expect(fs.existsSync(path.dirname(missing))).toBe(false);

    const dbPath = path.join(dir, LOCAL_TRACKER_FILE);
    open({ path: dbPath }).dispose();
    const db = new Database(dbPath, { readonly: true });
    try {
      expect(db.pragma('user_version', { simple: true })).toBe(3);
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    } finally {
      db.close();
    }
    // Reopening an existing file keeps its data and schema.
    const again = open({ path: dbPath });
    expect(again).toBeInstanceOf(LocalTracker);
  });

  it('upgrades a version 1 file in place: its issues kept, closed ones read as completed, close reasons recorded from then on', async () => {
    const dir = tempDir();
    const dbPath = path.join(dir, LOCAL_TRACKER_FILE);
    const old = open({ path: dbPath });
    const kept = await old.createIssue({ title: 'closed before the upgrade' });
    await old.close(kept.number);
    const later = await old.createIssue({ title: 'closed after' });
    old.dispose();
    // Make it a version 1 file, as an earlier Loom wrote it: no closed_as column, no counts.
    const raw = new Database(dbPath);
    dropVersion3(raw);
    raw.exec('ALTER TABLE items DROP COLUMN closed_as');
    raw.pragma('user_version = 1');
    raw.close();
    const tracker = open({ path: dbPath });
    expect(await tracker.getIssue(kept.number)).toMatchObject({ state: 'closed', title: 'closed before the upgrade' });
    expect((await tracker.getIssue(kept.number))?.closedAs).toBeUndefined();
    await tracker.close(later.number, undefined, 'not-planned');
    expect((await tracker.getIssue(later.number))?.closedAs).toBe('not-planned');
    const db = new Database(dbPath, { readonly: true });
    try {
      expect(db.pragma('user_version', { simple: true })).toBe(3);
    } finally {
      db.close();
    }
  });

  it('trusts every approval and has no label definitions to create', async () => {
    const dir = tempDir();
    const tracker = open({ path: path.join(dir, LOCAL_TRACKER_FILE) });
    const issue = await tracker.createIssue({ title: 'approved', labels: ['loom:issue'] });
    expect(await tracker.isTrusted(issue.number)).toBe(true);
    expect(await tracker.ensureLabels()).toEqual({ created: [], differing: [] });
    expect(tracker.health()).toEqual({ state: 'ok' });
  });

  it('rejects (never throws synchronously) invalid input and use after dispose', async () => {
    const dir = tempDir();
    const tracker = new LocalTracker({ path: path.join(dir, LOCAL_TRACKER_FILE) });
    await expect(tracker.createIssue({ title: '  ' })).rejects.toThrow(/title/);
    await expect(tracker.createIssue({ title: 'x', labels: ['a,b'] })).rejects.toThrow(/comma/);
    await expect(tracker.createPullRequest({ title: 'x', head: '', base: 'main' })).rejects.toThrow(/head and a base/);
    expect(await tracker.listIssues({ state: 'all' })).toEqual([]);
    tracker.dispose();
    await expect(tracker.snapshot()).rejects.toThrow(/disposed/);
    await expect(tracker.createIssue({ title: 'late' })).rejects.toThrow(/disposed/);
  });

  it('records its actor on items, comments and events (default "loom")', async () => {
    const dir = tempDir();
    const dbPath = path.join(dir, LOCAL_TRACKER_FILE);
    const shepherd = open({ path: dbPath, actor: 'shepherd-7' });
    const issue = await shepherd.createIssue({ title: 'who', labels: ['loom:issue'] });
    expect(issue.author).toBe('shepherd-7');
    expect(await shepherd.claim(issue.number)).toBe(true);
    expect((await shepherd.comment(issue.number, 'mine')).author).toBe('shepherd-7');
    expect(new Set((await shepherd.listEvents(issue.number)).map((e) => e.actor))).toEqual(new Set(['shepherd-7']));

    const daemon = open({ path: dbPath });
    await daemon.close(issue.number);
    expect((await daemon.listEvents(issue.number)).at(-1)?.actor).toBe('loom');
    expect(issue.createdAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  });

  it('calls onWrite after each committed change, never after reads or no-op writes', async () => {
    const dir = tempDir();
    let writes = 0;
    const tracker = open({ path: path.join(dir, LOCAL_TRACKER_FILE), onWrite: () => writes++ });
    expect(writes).toBe(0);

    const issue = await tracker.createIssue({ title: 'notify', labels: ['loom:issue'] });
    expect(writes).toBe(1);
    await tracker.snapshot();
    await tracker.getIssue(issue.number);
    await tracker.listIssues({ state: 'all' });
    await tracker.listComments(issue.number);
    await tracker.listEvents(issue.number);
    await tracker.getPullRequest(issue.number);
    expect(writes).toBe(1);

    expect(await tracker.claim(issue.number)).toBe(true);
    expect(writes).toBe(2);
    expect(await tracker.claim(issue.number)).toBe(false);
    await tracker.updateLabels(issue.number, { add: ['loom:building'] });
    await expect(tracker.updateLabels(issue.number + 100, { add: ['x'] })).rejects.toThrow();
    expect(writes).toBe(2);

    await tracker.comment(issue.number, 'hi');
    await tracker.close(issue.number);
    await tracker.reopen(issue.number);
    expect(writes).toBe(5);

    // A failing notification does not turn a committed write into an error.
    const failing = open({
      path: path.join(dir, LOCAL_TRACKER_FILE),
      onWrite: () => {
        throw new Error('wake file unavailable');
      },
    });
    await expect(failing.comment(issue.number, 'still saved')).resolves.toMatchObject({ body: 'still saved' });
  });

  it('snapshots 10,000 open labelled issues', { timeout: 120_000 }, async () => {
    const dir = tempDir();
    const tracker = open({ path: path.join(dir, LOCAL_TRACKER_FILE) });
    const labelSets = [['loom:issue'], ['loom:building', 'loom:urgent'], ['loom:blocked', 'bug']];
    for (let i = 0; i < 10_000; i++) await tracker.createIssue({ title: `issue ${i}`, labels: labelSets[i % labelSets.length] });
    await tracker.createIssue({ title: 'unlabelled' });
    await tracker.createIssue({ title: 'foreign', labels: ['bug'] });
    await tracker.createPullRequest({ title: 'pr', head: 'loom/p', base: 'main', labels: ['loom:review-requested'] });

    const snapshot = await tracker.snapshot();
    expect(snapshot.issues).toHaveLength(10_000);
    expect(snapshot.pullRequests).toHaveLength(1);
    expect(snapshot.issues[0]).toMatchObject({ number: 1, labels: ['loom:issue'] });
    expect(snapshot.issues[1]).toMatchObject({ number: 2, labels: ['loom:building', 'loom:urgent'] });
    expect(snapshot.issues[9_999]).toMatchObject({ number: 10_000, labels: ['loom:issue'] });
    const numbers = snapshot.issues.map((i) => i.number);
    expect(numbers).toEqual(Array.from({ length: 10_000 }, (_, i) => i + 1));
  });
});
