// The event log: one JSON line per event, concurrent writers in several processes, rotation by
// size that a reader follows without losing or repeating an event.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import type { LoomEvent } from '../../src/core/events.js';
import { EventLog, GENERATIONS } from '../../src/process/event-log.js';
import type { Child } from '../helpers/child-process.js';
import { killAll, runFixture, waitUntil } from '../helpers/child-process.js';

const emitScript = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'emit-events.ts');
const dirs: string[] = [];
const children: Child[] = [];
afterEach(async () => {
  await killAll(children);
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function tempLog(maxBytes?: number): EventLog {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'loom-events-'));
  dirs.push(dir);
  return new EventLog(path.join(dir, 'events.jsonl'), maxBytes === undefined ? {} : { maxBytes });
}

describe('event log', () => {
  it('writes one JSON line per event with its time, type, session and the fields that are set', () => {
    const log = tempLog();
    const before = process.env.LOOM_DAEMON_SESSION;
    process.env.LOOM_DAEMON_SESSION = 'sess-1';
    try {
      log.emit('task.phase', { issue: 7, phase: 'judge', role: undefined, message: 'x'.repeat(5000) });
    } finally {
      if (before === undefined) delete process.env.LOOM_DAEMON_SESSION;
      else process.env.LOOM_DAEMON_SESSION = before;
    }
    const lines = fs.readFileSync(log.file, 'utf8').split('\n');
    expect(lines).toHaveLength(2);
    const event = JSON.parse(lines[0]!);
    expect(Object.keys(event)).toEqual(['at', 'type', 'session', 'issue', 'phase', 'message']);
    expect(event).toMatchObject({ type: 'task.phase', session: 'sess-1', issue: 7, phase: 'judge' });
    expect(Date.parse(event.at)).toBeGreaterThan(Date.now() - 60_000);
    expect(event.message.length).toBeLessThan(1100);
  });

  it('never throws when the log cannot be written', () => {
    const log = new EventLog(path.join(os.tmpdir(), 'no-such-dir-for-loom', 'events.jsonl'));
    expect(() => log.emit('warning', { message: 'lost' })).not.toThrow();
    expect(log.readAll().events).toEqual([]);
  });

  it('rotates by size, keeps the newest generations in order, and a cursor follows the rotation', () => {
    const log = tempLog(2_000);
    let cursor = log.end();
    const seen: LoomEvent[] = [];
    for (let n = 0; n < 200; n += 1) {
      log.emit('warning', { message: `event ${n}` });
      // Read every few events: the cursor must cross rotations without loss or repetition.
      if (n % 7 === 0) {
        const next = log.readSince(cursor);
        seen.push(...next.events);
        cursor = next.cursor;
      }
    }
    seen.push(...log.readSince(cursor).events);
    expect(seen.map((e) => e.message)).toEqual(Array.from({ length: 200 }, (_, n) => `event ${n}`));
    for (let g = 1; g <= GENERATIONS; g += 1) expect(fs.statSync(`${log.file}.${g}`).size).toBeLessThan(2_200);
    expect(fs.existsSync(`${log.file}.${GENERATIONS + 1}`)).toBe(false);
    const kept = log.readAll().events.map((e) => Number(String(e.message).split(' ')[1]));
    expect(kept.at(-1)).toBe(199);
    expect(kept).toEqual(Array.from({ length: kept.length }, (_, i) => kept[0]! + i));
    expect(kept.length).toBeGreaterThan(40);
    expect(kept.length).toBeLessThan(200);
  });

  it('a reader still gets a line written late into a file that rotated away (a writer that opened it just before)', () => {
    const log = tempLog(500);
    log.emit('warning', { message: 'first' });
    let cursor = log.end();
    // A writer opens the current file, is paused, and writes only after another writer rotated it.
    const late = fs.openSync(log.file, 'a');
    for (let n = 0; n < 8; n += 1) log.emit('warning', { message: `filler ${n}` });
    // Rotated once: the late writer's file is now events.jsonl.1.
    expect([fs.existsSync(`${log.file}.1`), fs.existsSync(`${log.file}.2`)]).toEqual([true, false]);
    const first = log.readSince(cursor);
    cursor = first.cursor;
    expect(first.events.map((e) => e.message)).toEqual(Array.from({ length: 8 }, (_, n) => `filler ${n}`));
    fs.writeSync(late, `${JSON.stringify({ at: new Date().toISOString(), type: 'warning', message: 'late' })}\n`);
    fs.closeSync(late);
    log.emit('warning', { message: 'after' });
    const second = log.readSince(cursor);
    expect(second.events.map((e) => e.message).sort()).toEqual(['after', 'late']);
    expect(log.readSince(second.cursor).events).toEqual([]);
  });

  it('a cursor whose file rotated away for good is not mistaken for a newer file given the same inode number', () => {
    const log = tempLog();
    for (let n = 0; n < 3; n += 1) log.emit('warning', { message: `old ${n}` });
    const cursor = log.end();
    expect(cursor.birth).toBeGreaterThan(0);
    // The reader's file is dropped, and a file born later gets its inode number (the filesystem
    // reuses freed ones): as if every generation had rotated away while the reader was gone.
    const reused = { ...cursor, birth: cursor.birth! - 60_000 };
    log.emit('warning', { message: 'new 0' });
    log.emit('warning', { message: 'new 1' });
    // Not read from the old file's offset (which would lose or repeat lines): from the oldest kept.
    expect(log.readSince(reused).events.map((e) => e.message)).toEqual(['old 0', 'old 1', 'old 2', 'new 0', 'new 1']);
    expect(log.readSince(cursor).events.map((e) => e.message)).toEqual(['new 0', 'new 1']);
  });

  it('a late-write tail naming an inode number a newer generation reuses is not read again', () => {
    const log = tempLog(300);
    for (let n = 0; n < 6; n += 1) log.emit('warning', { message: `event ${n}` });
    expect(fs.existsSync(`${log.file}.1`)).toBe(true);
    const rotated = fs.statSync(`${log.file}.1`);
    const end = log.end();
    expect(log.readSince({ ...end, tail: { ino: rotated.ino, offset: 0, birth: rotated.birthtimeMs } }).events.length).toBeGreaterThan(0);
    // The same inode number, another file: nothing of it is read as a late write.
    expect(log.readSince({ ...end, tail: { ino: rotated.ino, offset: 0, birth: rotated.birthtimeMs - 60_000 } }).events).toEqual([]);
  });

  it('keeps every event of four processes writing at once, across rotations, for a reader following along', async () => {
    // About 450 KB in all: three rotations, and no generation dropped however slowly the reader reads.
    const log = tempLog(120_000);
    const writers = ['a', 'b', 'c', 'd'].map((w) => runFixture(children, emitScript, [log.file, w, '600', '120000']));
    let cursor = log.end();
    const seen: LoomEvent[] = [];
    const done = () => writers.every((w) => w.exitCode !== undefined);
    while (!done()) {
      const next = log.readSince(cursor);
      seen.push(...next.events);
      cursor = next.cursor;
      await new Promise((r) => setTimeout(r, 2));
    }
    await waitUntil(done, 'the writers to finish');
    for (const w of writers) expect(w.exitCode, w.stderr).toBe(0);
    seen.push(...log.readSince(cursor).events);
    const messages = seen.map((e) => String(e.message));
    expect(new Set(messages).size).toBe(messages.length);
    for (const w of ['a', 'b', 'c', 'd']) {
      const mine = messages.filter((m) => m.startsWith(`${w}:`)).map((m) => Number(m.split(':')[1]));
      expect(mine).toEqual(Array.from({ length: 600 }, (_, n) => n));
    }
    expect(fs.existsSync(`${log.file}.3`)).toBe(true);
    expect(fs.existsSync(`${log.file}.rotate-lock`)).toBe(false);
    expect(log.readAll().events).toHaveLength(2400);
  });
});
