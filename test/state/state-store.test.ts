/**
 * `FileStateStore` (src/state/state-store.ts), the one writer of `.loom/daemon-state.json`, on
 * real files: loading a missing, corrupt, foreign or old-format file; saving atomically; and the
 * session guard that keeps a replaced daemon from writing over its successor's state.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import type { DaemonState } from '../../src/core/daemon-state.js';
import { emptyState, idleShepherd } from '../../src/core/daemon-state.js';
import { FileStateStore, SessionMismatchError } from '../../src/state/state-store.js';
import type { Child } from '../helpers/child-process.js';
import { deadPid, killAll, runFixture, waitForExit, waitUntil } from '../helpers/child-process.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const saveLoopScript = path.join(here, 'fixtures', 'save-loop.ts');

const NOW = new Date('2026-01-23T12:34:56.789Z');
const dirs: string[] = [];
const children: Child[] = [];

afterEach(async () => {
  await killAll(children);
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

/** A fresh directory and the store of `daemon-state.json` in it. */
function store(): { dir: string; file: string; store: FileStateStore } {
  const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'loom-state-')));
  dirs.push(dir);
  const file = path.join(dir, 'daemon-state.json');
  return { dir, file, store: new FileStateStore(file) };
}

/** A state with something in every kind of field. */
function busyState(session: string | null = 'session-a'): DaemonState {
  return {
    ...emptyState(),
    running: true,
    started_at: '2026-01-23T10:00:00.000Z',
    iteration: 7,
    daemon_session_id: session,
    daemon_pid: 1234,
    shepherds: {
      'shepherd-1': { ...idleShepherd(), status: 'working', issue: 5, task_id: 't5', pid: 4005, pid_start: '99', started: '2026-01-23T11:00:00.000Z' },
      'shepherd-2': { ...idleShepherd(), last_issue: 3 },
    },
    completed_issues: [1, 2, 3],
    total_prs_merged: 2,
    spawn_retry_queue: { '9': { failures: 1, last_failure: '2026-01-23T11:50:00.000Z', next_retry_at: '2026-01-23T12:20:00.000Z', last_error: 'boom' } },
    warnings: [{ time: '2026-01-23T11:00:00.000Z', message: 'something happened' }],
    custom_field_from_a_newer_loom: { keep: ['me'] },
  };
}

describe('FileStateStore.load', () => {
  it('a missing file is the empty state, without warnings, and is not created', () => {
    const s = store();
    expect(s.store.load(NOW)).toEqual({ state: emptyState(), warnings: [], movedTo: null });
    expect(fs.readdirSync(s.dir)).toEqual([]);
  });

  it.each([
    ['truncated JSON', '{"running": true, "shepherds": {"shepherd-1": {"status": "work'],
    ['an empty file', ''],
    ['binary garbage', '\u0000\u0001\u0002not json'],
  ])('%s is moved aside as .corrupt-<time> and loads as the empty state with one warning', (_what, content) => {
    const s = store();
    fs.writeFileSync(s.file, content);

    const loaded = s.store.load(NOW);

    const movedTo = `${s.file}.corrupt-2026-01-23T12-34-56-789Z`;
    expect(loaded.movedTo).toBe(movedTo);
    expect(fs.existsSync(s.file)).toBe(false);
    expect(fs.readFileSync(movedTo, 'utf8')).toBe(content);
    expect(loaded.warnings).toHaveLength(1);
    expect(loaded.warnings[0]).toMatch(/^daemon state was unreadable \(.+\); moved to .+ and rebuilt from the tracker and live processes$/);
    expect(loaded.warnings[0]).toContain(movedTo);
    expect(loaded.state).toEqual({ ...emptyState(), warnings: [{ time: NOW.toISOString(), message: loaded.warnings[0] }] });
    // The next load starts clean, and the state can be written again.
    expect(s.store.load(NOW)).toEqual({ state: emptyState(), warnings: [], movedTo: null });
    s.store.save(loaded.state);
    expect(s.store.load(NOW).state).toEqual(loaded.state);
  });

  it('a JSON value that is not an object loads as the empty state with a warning, and the file is left in place', () => {
    const s = store();
    fs.writeFileSync(s.file, '[1, 2, 3]');
    const loaded = s.store.load(NOW);
    expect(loaded.movedTo).toBeNull();
    expect(loaded.warnings).toEqual(['state file is not a JSON object']);
    expect(loaded.state).toEqual({ ...emptyState(), warnings: [{ time: NOW.toISOString(), message: 'state file: state file is not a JSON object' }] });
    expect(fs.readFileSync(s.file, 'utf8')).toBe('[1, 2, 3]');
  });

  it('loads the file of an earlier installation: old words and shapes, unknown fields kept, no warnings', () => {
    const s = store();
    const old = {
      running: true,
      iteration: '12',
      shepherds: { 'shepherd-1': { status: 'running', issue: '42', task_id: 'abc', execution_mode: 'direct' } },
      warnings: ['a plain string warning'],
      spawn_retry_queue: [7, { issue: 8, failures: 2 }],
      last_architect_trigger: '2026-01-23T09:00:00Z',
    };
    fs.writeFileSync(s.file, JSON.stringify(old));

    const loaded = s.store.load(NOW);

    expect(loaded.warnings).toEqual([]);
    expect(loaded.movedTo).toBeNull();
    expect(loaded.state.iteration).toBe(12);
    expect(loaded.state.shepherds['shepherd-1']).toMatchObject({ status: 'working', issue: 42, task_id: 'abc', execution_mode: 'direct' });
    expect(loaded.state.warnings).toEqual([{ time: '', message: 'a plain string warning' }]);
    expect(Object.keys(loaded.state.spawn_retry_queue).sort()).toEqual(['7', '8']);
    expect(loaded.state.spawn_retry_queue['8']?.failures).toBe(2);
    expect(loaded.state.last_architect_trigger).toBe('2026-01-23T09:00:00Z');
    // Saved back in the current shape, the unknown fields survive and nothing is reported any more.
    s.store.save(loaded.state);
    const again = s.store.load(NOW);
    expect(again).toEqual({ state: loaded.state, warnings: [], movedTo: null });
  });

  it('reports wrong-typed fields as warnings (returned, and added to the state with the load time) and resets them', () => {
    const s = store();
    fs.writeFileSync(s.file, JSON.stringify({ running: 'yes', iteration: 'many', completed_issues: 5, warnings: [] }));
    const loaded = s.store.load(NOW);
    expect(loaded.warnings).toEqual(['running is not true or false; reset', 'iteration is not a whole number; reset', 'completed_issues is not a list; reset']);
    expect(loaded.state.warnings).toEqual(loaded.warnings.map((w) => ({ time: NOW.toISOString(), message: `state file: ${w}` })));
    expect(loaded.state).toMatchObject({ running: false, iteration: 0, completed_issues: [] });
    expect(loaded.movedTo).toBeNull();
  });

  it('throws (rather than calling it corrupt) when the path cannot be read at all', () => {
    const s = store();
    fs.mkdirSync(s.file);
    expect(() => s.store.load(NOW)).toThrow(expect.objectContaining({ code: 'EISDIR' }));
    expect(fs.statSync(s.file).isDirectory()).toBe(true);
  });
});

describe('FileStateStore.save', () => {
  it('round-trips a state exactly, as indented JSON ending in a newline', () => {
    const s = store();
    const state = busyState();
    s.store.save(state);
    const text = fs.readFileSync(s.file, 'utf8');
    expect(text).toBe(`${JSON.stringify(state, null, 2)}\n`);
    expect(s.store.load(NOW)).toEqual({ state, warnings: [], movedTo: null });
    expect(s.store.peek()).toEqual(state);
  });

  it('replaces the file (a reader holding the old one still reads it whole) and leaves no temp file', () => {
    const s = store();
    s.store.save(busyState());
    const before = fs.readFileSync(s.file, 'utf8');
    const fd = fs.openSync(s.file, 'r');
    try {
      s.store.save({ ...busyState(), iteration: 8 });
      expect(fs.readFileSync(fd, 'utf8')).toBe(before);
    } finally {
      fs.closeSync(fd);
    }
    expect(s.store.peek()?.iteration).toBe(8);
    expect(fs.readdirSync(s.dir)).toEqual(['daemon-state.json']);
  });

  it('with a session: writes while the file names that session', () => {
    const s = store();
    s.store.save(busyState('session-a'));
    s.store.save({ ...busyState('session-a'), iteration: 99 }, 'session-a');
    expect(s.store.peek()?.iteration).toBe(99);
  });

  it('with a session: refuses, changing nothing, when the file names another session', () => {
    const s = store();
    s.store.save(busyState('session-b'));
    const before = fs.readFileSync(s.file, 'utf8');

    let error: unknown;
    try {
      s.store.save({ ...busyState('session-a'), iteration: 99 }, 'session-a');
    } catch (e) {
      error = e;
    }

    expect(error).toBeInstanceOf(SessionMismatchError);
    expect(error).toMatchObject({ code: 'session_mismatch', expected: 'session-a', found: 'session-b' });
    expect((error as Error).message).toBe('daemon state now belongs to session session-b, not session-a; another daemon took over');
    expect(fs.readFileSync(s.file, 'utf8')).toBe(before);
    expect(fs.readdirSync(s.dir)).toEqual(['daemon-state.json']);
  });

  it.each([
    ['there is no file yet', (_file: string) => {}],
    ['the file names no session', (file: string) => fs.writeFileSync(file, JSON.stringify(busyState(null)))],
    ['the file is corrupt (it names no session)', (file: string) => fs.writeFileSync(file, '{"daemon_session_id": "session-b"')],
  ])('with a session: writes when %s', (_what, prepare) => {
    const s = store();
    prepare(s.file);
    s.store.save(busyState('session-a'), 'session-a');
    expect(s.store.peek()).toEqual(busyState('session-a'));
  });

  it('without a session (the daemon taking over at start-up): writes whatever session the file names', () => {
    const s = store();
    s.store.save(busyState('session-old'));
    s.store.save(busyState('session-new'));
    expect(s.store.peek()?.daemon_session_id).toBe('session-new');
  });

  it('takes over the write lock a crashed writer left behind, and removes it after the write', async () => {
    const s = store();
    fs.writeFileSync(`${s.file}.lock`, String(await deadPid(children)));
    s.store.save(busyState('session-a'), 'session-a');
    expect(s.store.peek()).toEqual(busyState('session-a'));
    expect(fs.readdirSync(s.dir)).toEqual(['daemon-state.json']);
  });

  it('a writer in another process, busy saving, is refused from the moment a new daemon takes the state over', { timeout: 60_000 }, async () => {
    // Three takeovers, each of a writer that is in the middle of its save loop at that moment.
    for (let round = 1; round <= 3; round++) {
      const s = store();
      const old = `session-old-${round}`;
      const writer = runFixture(children, saveLoopScript, [s.file, old]);
      await waitUntil(() => writer.lines.includes('saved 3') || writer.exitCode !== undefined, 'the old writer to save a few times');
      expect(writer.exitCode).toBeUndefined();

      s.store.save(busyState('session-new'));
      // Either the old writer stops, or it writes its session back over the new one.
      await waitUntil(() => writer.exitCode !== undefined || s.store.peek()?.daemon_session_id !== 'session-new', 'the old writer to stop', 20_000);

      expect(s.store.peek()?.daemon_session_id, `round ${round}: the new daemon's state survives`).toBe('session-new');
      await waitForExit(writer);
      expect(writer.stderr).toBe('');
      expect(writer.lines.at(-1)).toBe('mismatch session-new');
      expect(s.store.peek()).toEqual(busyState('session-new'));
    }
  });
});

describe('FileStateStore.peek and isCorrupt', () => {
  it('peek reads without side effects: null for a missing or corrupt file, which stays where it is', () => {
    const s = store();
    expect(s.store.peek()).toBeNull();
    fs.writeFileSync(s.file, '{"running": tr');
    expect(s.store.peek()).toBeNull();
    expect(fs.readdirSync(s.dir)).toEqual(['daemon-state.json']);
    expect(fs.readFileSync(s.file, 'utf8')).toBe('{"running": tr');
  });

  it('peek normalizes like load, without adding warnings', () => {
    const s = store();
    fs.writeFileSync(s.file, JSON.stringify({ running: 'yes', shepherds: { 'shepherd-1': { status: 'active', issue: 4 } } }));
    const state = s.store.peek();
    expect(state?.running).toBe(false);
    expect(state?.shepherds['shepherd-1']).toMatchObject({ status: 'working', issue: 4 });
    expect(state?.warnings).toEqual([]);
  });

  it('isCorrupt: false for a missing or valid file, true for one that does not parse', () => {
    const s = store();
    expect(s.store.isCorrupt()).toBe(false);
    s.store.save(busyState());
    expect(s.store.isCorrupt()).toBe(false);
    fs.writeFileSync(s.file, '{');
    expect(s.store.isCorrupt()).toBe(true);
  });

  it('a reader in this process never finds the file corrupt while another process rewrites it, nor after that process is killed mid-run', { timeout: 60_000 }, async () => {
    const s = store();
    const writer = runFixture(children, saveLoopScript, [s.file, 'session-a']);
    await waitUntil(() => writer.lines.includes('saved 1') || writer.exitCode !== undefined, 'the writer to save once');
    let reads = 0;
    let corrupt = 0;
    const lastSaved = () => Number(writer.lines.filter((l) => l.startsWith('saved ')).at(-1)?.slice(6) ?? 0);
    const until = lastSaved() + 40;
    while (lastSaved() < until && writer.exitCode === undefined) {
      reads += 1;
      if (s.store.isCorrupt()) corrupt += 1;
      const state = s.store.peek();
      if (state === null || state.daemon_session_id !== 'session-a') corrupt += 1;
      await new Promise((resolve) => setImmediate(resolve));
    }
    writer.process.kill('SIGKILL');
    await waitForExit(writer);

    expect(writer.signal).toBe('SIGKILL');
    expect(reads).toBeGreaterThan(0);
    expect(corrupt).toBe(0);
    const loaded = s.store.load(NOW);
    expect(loaded.movedTo).toBeNull();
    expect(loaded.warnings).toEqual([]);
    expect(loaded.state.iteration).toBeGreaterThanOrEqual(until);
  });
});
