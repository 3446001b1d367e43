/**
 * The event log `.loom/events.jsonl`: one JSON line per daemon, shepherd and role event
 * (src/core/events.ts), appended by whichever process it happens in, read by `loom events`,
 * `loom logs`, the dashboard and the notifier.
 *
 * Invariants owned here:
 * - emitting never fails the caller: a log that cannot be written loses the event, nothing else;
 * - one event is one `write` of one line with O_APPEND, so concurrent writers never interleave;
 * - the log is rotated by size: past `maxBytes` it becomes `events.jsonl.1` (older generations
 *   shift up to `.3`, the oldest is dropped), under a lock file so two writers cannot rotate at
 *   once; readers follow a rotation through the file's inode (`EventCursor`).
 */
import fs from 'node:fs';
import path from 'node:path';
import type { EventFields, EventType, LoomEvent } from '../core/events.js';

/** Rotate past this many bytes (env `LOOM_EVENTS_MAX_BYTES` overrides it). */
export const DEFAULT_MAX_BYTES = 10 * 1024 * 1024;
/** Rotated generations kept: `events.jsonl.1` … `.3`. */
export const GENERATIONS = 3;
/** A message longer than this is cut, so one event stays one small write. */
const MAX_MESSAGE = 1_000;
/** A rotation lock older than this was left by a crashed writer, ms. */
const STALE_LOCK_MS = 30_000;

/** Where a reader is: the file (by inode) and the byte after the last complete line read. */
export interface EventCursor {
  ino: number;
  offset: number;
}

export class EventLog {
  private readonly maxBytes: number;

  constructor(
    readonly file: string,
    opts: { maxBytes?: number } = {},
  ) {
    const fromEnv = Number(process.env.LOOM_EVENTS_MAX_BYTES);
    this.maxBytes = opts.maxBytes ?? (Number.isInteger(fromEnv) && fromEnv > 0 ? fromEnv : DEFAULT_MAX_BYTES);
  }

  /** The event log of the `.loom/` directory `dir`. */
  static in(dir: string): EventLog {
    return new EventLog(path.join(dir, 'events.jsonl'));
  }

  /**
   * Appends one event, stamped with the time and (for processes the daemon started) its session.
   * Undefined and null fields are left out. Never throws.
   */
  emit(type: EventType, fields: EventFields = {}): void {
    try {
      const event: Record<string, unknown> = { at: new Date().toISOString(), type };
      const session = process.env.LOOM_DAEMON_SESSION;
      if (session !== undefined && session !== '' && fields.session === undefined) event.session = session;
      for (const [key, value] of Object.entries(fields)) {
        if (value === undefined || value === null) continue;
        event[key] = typeof value === 'string' && value.length > MAX_MESSAGE ? `${value.slice(0, MAX_MESSAGE)}…` : value;
      }
      fs.appendFileSync(this.file, `${JSON.stringify(event)}\n`);
      this.rotateIfLarge();
    } catch {
      // The event is lost; the work it describes is not.
    }
  }

  /** The rotated generations (oldest first) and the current file, as paths. */
  files(): string[] {
    return [...Array.from({ length: GENERATIONS }, (_, i) => `${this.file}.${GENERATIONS - i}`), this.file];
  }

  /** Every event still kept, oldest first (rotated generations included), and the cursor after them. */
  readAll(): { events: LoomEvent[]; cursor: EventCursor } {
    const oldest = this.files().map(statOf).find((st) => st !== null);
    return oldest === undefined || oldest === null ? { events: [], cursor: { ino: 0, offset: 0 } } : this.readSince({ ino: oldest.ino, offset: 0 });
  }

  /** The newest event that `matches`, reading the newest generation first and stopping there. */
  findLast(matches: (event: LoomEvent) => boolean): LoomEvent | null {
    for (const file of [...this.files()].reverse()) {
      const found = parseLines(readText(file, 0).text).findLast(matches);
      if (found !== undefined) return found;
    }
    return null;
  }

  /** A cursor at the end of the log: reading from it yields only events written afterwards. */
  end(): EventCursor {
    const st = statOf(this.file);
    return st === null ? { ino: 0, offset: 0 } : { ino: st.ino, offset: completeLength(this.file, st.size) };
  }

  /**
   * Events written since `cursor` (oldest first) and the cursor after them. A rotation since is
   * followed: the rest of the generation the cursor was in, then the newer ones. A cursor into a
   * generation no longer kept starts over at the oldest one still there.
   */
  readSince(cursor: EventCursor): { events: LoomEvent[]; cursor: EventCursor } {
    const files = this.files();
    const stats = files.map(statOf);
    let from = stats.findIndex((st) => st !== null && st.ino === cursor.ino);
    const events: LoomEvent[] = [];
    let offset = cursor.offset;
    if (from === -1) {
      from = stats.findIndex((st) => st !== null);
      offset = 0;
      if (cursor.ino === 0 || from === -1) from = files.length - 1;
    }
    let next: EventCursor = { ino: 0, offset: 0 };
    for (let i = from; i < files.length; i += 1) {
      const st = stats[i];
      const file = files[i] as string;
      if (st === null || st === undefined) continue;
      const start = i === from ? Math.min(offset, st.size) : 0;
      const read = readText(file, start);
      events.push(...parseLines(read.text));
      next = { ino: st.ino, offset: start + read.bytes };
    }
    if (next.ino === 0) next = cursor.ino === 0 ? { ino: 0, offset: 0 } : { ...cursor };
    return { events, cursor: next };
  }

  private rotateIfLarge(): void {
    const st = statOf(this.file);
    if (st === null || st.size <= this.maxBytes) return;
    const lock = `${this.file}.rotate-lock`;
    let fd: number;
    try {
      fd = fs.openSync(lock, 'wx');
    } catch {
      // Another writer rotates now (or crashed doing it long ago: clear that for the next one).
      const held = statOf(lock);
      if (held !== null && Date.now() - held.mtimeMs > STALE_LOCK_MS) fs.rmSync(lock, { force: true });
      return;
    }
    try {
      const again = statOf(this.file);
      if (again === null || again.size <= this.maxBytes) return;
      for (let g = GENERATIONS - 1; g >= 1; g -= 1) {
        if (fs.existsSync(`${this.file}.${g}`)) fs.renameSync(`${this.file}.${g}`, `${this.file}.${g + 1}`);
      }
      fs.renameSync(this.file, `${this.file}.1`);
    } finally {
      fs.closeSync(fd);
      fs.rmSync(lock, { force: true });
    }
  }
}

function statOf(file: string): fs.Stats | null {
  try {
    return fs.statSync(file);
  } catch {
    return null;
  }
}

/** The text of complete lines from byte `offset` on, and how many bytes that is. */
function readText(file: string, offset: number): { text: string; bytes: number } {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch {
    return { text: '', bytes: 0 };
  }
  try {
    const size = fs.fstatSync(fd).size;
    if (size <= offset) return { text: '', bytes: 0 };
    const buffer = Buffer.alloc(size - offset);
    const got = fs.readSync(fd, buffer, 0, buffer.length, offset);
    const end = buffer.subarray(0, got).lastIndexOf(0x0a) + 1;
    return { text: buffer.subarray(0, end).toString('utf8'), bytes: end };
  } finally {
    fs.closeSync(fd);
  }
}

/** The length of `file` up to its last complete line. */
function completeLength(file: string, size: number): number {
  if (size === 0) return 0;
  const fd = fs.openSync(file, 'r');
  try {
    const tail = Buffer.alloc(Math.min(size, 64 * 1024));
    let end = size;
    // Walk back to the last newline (a writer may be half way through a line).
    while (end > 0) {
      const start = Math.max(0, end - tail.length);
      const got = fs.readSync(fd, tail, 0, end - start, start);
      const nl = tail.subarray(0, got).lastIndexOf(0x0a);
      if (nl >= 0) return start + nl + 1;
      end = start;
    }
    return 0;
  } finally {
    fs.closeSync(fd);
  }
}

function parseLines(text: string): LoomEvent[] {
  const events: LoomEvent[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    try {
      const value = JSON.parse(line) as unknown;
      if (typeof value === 'object' && value !== null && typeof (value as LoomEvent).type === 'string' && typeof (value as LoomEvent).at === 'string') events.push(value as LoomEvent);
    } catch {
      // A torn line from a writer killed mid-write: skipped.
    }
  }
  return events;
}
