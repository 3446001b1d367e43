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
 *   once; readers follow a rotation through the file's inode (`EventCursor`), reading each file
 *   through one descriptor (a rotation while they read cannot swap a file under them), and look
 *   once more at the file they left last, for a writer that opened it just before it rotated.
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

/**
 * Where a reader is: the file (by inode, and its birth time where the filesystem records one: an
 * inode number freed when the oldest generation is dropped may be given to a newer file) and the
 * byte after the last complete line read.
 */
export interface EventCursor {
  ino: number;
  offset: number;
  /** The file's birth time (ms); absent or 0: unknown, the inode alone names the file. */
  birth?: number;
  /** The file read before this one and where its reading ended: a late write there is read next time. */
  tail?: { ino: number; offset: number; birth?: number };
}

/** One generation, open: its inode, birth time and size when opened. */
interface Open {
  fd: number;
  ino: number;
  birth: number;
  size: number;
}

/** Whether the open generation `o` is the file `at` names. */
function isFile(o: Open, at: { ino: number; birth?: number }): boolean {
  return o.ino === at.ino && (at.birth === undefined || at.birth === 0 || o.birth === 0 || o.birth === at.birth);
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
    return this.readSince({ ino: 0, offset: 0 });
  }

  /** The newest event that `matches`, reading the newest generation first and stopping there. */
  findLast(matches: (event: LoomEvent) => boolean): LoomEvent | null {
    for (const file of [...this.files()].reverse()) {
      const found = parseLines(readText(file, 0).text).findLast(matches);
      if (found !== undefined) return found;
    }
    return null;
  }

  /**
   * Records the merge of PR `pr` unless the log already has it: one `pr.merged` per merge,
   * whoever records it (the merger, as soon as the tracker knows; its retry; the cleanup after a
   * kill in between), so `/metrics` and `loom events` count every merge once.
   */
  recordMerge(fields: { issue: number; pr: number; commit?: string }): void {
    if (this.findLast((e) => e.type === 'pr.merged' && e.pr === fields.pr) === null) this.emit('pr.merged', fields);
  }

  /** A cursor at the end of the log: reading from it yields only events written afterwards. */
  end(): EventCursor {
    const open = this.openAll();
    try {
      const last = open.at(-1);
      return last === undefined ? { ino: 0, offset: 0 } : { ino: last.ino, offset: completeLength(last.fd, last.size), birth: last.birth };
    } finally {
      for (const o of open) fs.closeSync(o.fd);
    }
  }

  /**
   * Events written since `cursor` (oldest first) and the cursor after them. A rotation since is
   * followed: the rest of the generation the cursor was in, then the newer ones. A cursor of
   * `{ ino: 0 }` (no log yet when it was taken) reads everything kept; a cursor into a
   * generation no longer kept starts over at the oldest one still there.
   */
  readSince(cursor: EventCursor): { events: LoomEvent[]; cursor: EventCursor } {
    const open = this.openAll();
    try {
      const events: LoomEvent[] = [];
      let tail = cursor.tail;
      if (tail !== undefined) {
        const at = tail;
        const late = open.find((o) => isFile(o, at) && !isFile(o, cursor));
        if (late !== undefined && late.size > at.offset) {
          const read = readFd(late, at.offset);
          events.push(...parseLines(read.text));
          tail = { ino: late.ino, offset: at.offset + read.bytes, birth: late.birth };
        }
      }
      let from = open.findIndex((o) => isFile(o, cursor));
      let offset = cursor.offset;
      if (from === -1) {
        from = 0;
        offset = 0;
      }
      let next: EventCursor = { ino: cursor.ino, offset: cursor.offset, ...(cursor.birth === undefined ? {} : { birth: cursor.birth }) };
      for (let i = from; i < open.length; i += 1) {
        const o = open[i] as Open;
        const start = i === from ? Math.min(offset, o.size) : 0;
        const read = readFd(o, start);
        events.push(...parseLines(read.text));
        if (i > from) tail = { ino: next.ino, offset: next.offset, ...(next.birth === undefined ? {} : { birth: next.birth }) };
        next = { ino: o.ino, offset: start + read.bytes, birth: o.birth };
      }
      return { events, cursor: tail === undefined ? next : { ...next, tail } };
    } finally {
      for (const o of open) fs.closeSync(o.fd);
    }
  }

  /**
   * Every generation there is, open, oldest first. Opened newest first: a rotation between two
   * opens shows a file twice (kept once) rather than skipping one; only a file newer than all
   * of them can be missed, and the next read finds it.
   */
  private openAll(): Open[] {
    const open: Open[] = [];
    for (const file of [...this.files()].reverse()) {
      let fd: number;
      try {
        fd = fs.openSync(file, 'r');
      } catch {
        continue;
      }
      const st = fs.fstatSync(fd);
      if (open.some((o) => o.ino === st.ino)) fs.closeSync(fd);
      else open.push({ fd, ino: st.ino, birth: st.birthtimeMs, size: st.size });
    }
    return open.reverse();
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

/** The text of complete lines of an open generation from byte `offset` on, and how many bytes that is. */
function readFd(o: Open, offset: number): { text: string; bytes: number } {
  if (o.size <= offset) return { text: '', bytes: 0 };
  const buffer = Buffer.alloc(o.size - offset);
  const got = fs.readSync(o.fd, buffer, 0, buffer.length, offset);
  const end = buffer.subarray(0, got).lastIndexOf(0x0a) + 1;
  return { text: buffer.subarray(0, end).toString('utf8'), bytes: end };
}

/** The same for a file by name (its whole current content from `offset`). */
function readText(file: string, offset: number): { text: string; bytes: number } {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch {
    return { text: '', bytes: 0 };
  }
  try {
    return readFd({ fd, ino: 0, birth: 0, size: fs.fstatSync(fd).size }, offset);
  } finally {
    fs.closeSync(fd);
  }
}

/** The length of an open file up to its last complete line. */
function completeLength(fd: number, size: number): number {
  if (size === 0) return 0;
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
