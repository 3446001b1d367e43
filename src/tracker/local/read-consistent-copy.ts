/**
 * `readConsistentCopy`: how a read-only local tracker reads without changing a file.
 *
 * Invariant: the original files are never handed to SQLite, and every read sees a state some
 * writer committed (a copy that may be torn is thrown away and taken again).
 *
 * Why (`loom status` promises to change nothing on disk). What SQLite does, measured with the
 * bundled SQLite 3.53 (test/tracker/local/local-tracker.test.ts holds the promise):
 * - When the last writer closed cleanly there is no `-wal`/`-shm`; a connection opened with
 *   `{ readonly: true, fileMustExist: true }` then CREATES both files (an empty `-wal` and a 32 KiB
 *   `-shm`) and leaves them behind on close, since a read-only connection cannot checkpoint.
 * - When the files exist and a writer is running, a read-only connection writes its read mark
 *   into `-shm`; when they were left by a crashed writer, it re-initialises `-shm`.
 * - The SQLite remedies (`?immutable=1`, `?readonly_shm=1`) are URI parameters, and this
 *   better-sqlite3 build has URI filenames disabled (`SQLITE_USE_URI=0`, no `SQLITE_OPEN_URI`).
 *   Keeping the writer from deleting its WAL needs `SQLITE_FCNTL_PERSIST_WAL` (not exposed by
 *   better-sqlite3; `journal_size_limit` does not prevent the delete) and would not stop the
 *   `-shm` writes anyway.
 * So a read-only tracker never hands the original files to SQLite. Each read copies `tracker.db`
 * (and its `-wal`, if any) into a fresh temp directory, lets SQLite recover and read the copy, and
 * deletes the directory; no handle stays open between reads, so every read sees current data.
 * The copy is checked for consistency against concurrent writers:
 * - with a WAL: its 32-byte header (salts, checkpoint sequence) is read before copying the
 *   database and must be unchanged after copying the WAL. Then no WAL restart happened in
 *   between, so every page a concurrent checkpoint may have written into our database copy is
 *   also in our WAL copy and wins on recovery; frames half-written during the copy fail their
 *   checksums and are ignored, exactly as after a crash.
 * - without a WAL (or an empty one): the database file's inode, size, mtime and ctime must be
 *   unchanged and no WAL may have appeared. (Residual risk: a writer that opens, checkpoints and
 *   closes entirely within one file-timestamp tick of the previous checkpoint, while a copy is in
 *   flight, would go unnoticed.)
 * An inconsistent copy is thrown away and retried (10 s deadline, like the busy timeout). A read
 * costs a copy of the file, which is fine for status reads but is why the daemon and shepherds
 * open the tracker writable.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { BUSY_TIMEOUT_MS, LOCAL_TRACKER_FILE, ensureSchema, pause } from './local-database.js';

/**
 * Runs `fn` on a private copy of `file` (and its WAL) that is consistent with some committed state
 * of the original; see the file header for why and how. The copy lives in a temp directory that is
 * always removed.
 */
export function readConsistentCopy<T>(file: string, fn: (db: Database.Database) => T): T {
  const deadline = Date.now() + BUSY_TIMEOUT_MS;
  for (let attempt = 0; ; attempt++) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'loom-tracker-read-'));
    try {
      const copy = path.join(dir, LOCAL_TRACKER_FILE);
      if (copyConsistently(file, copy)) {
        // The copy is ours: opening it writable lets SQLite replay the copied WAL and lets a file
        // caught before its schema was committed read as an empty tracker.
        const db = new Database(copy, { fileMustExist: true });
        try {
          ensureSchema(db);
          return fn(db);
        } finally {
          db.close();
        }
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
    if (Date.now() > deadline) {
      throw new Error(`could not read a consistent copy of ${file}: it kept changing for ${BUSY_TIMEOUT_MS / 1000} s`);
    }
    pause(attempt);
  }
}

const WAL_HEADER_BYTES = 32;

/** Copies `file` and its WAL to `copy`; false if a concurrent writer may have made the copy inconsistent. */
function copyConsistently(file: string, copy: string): boolean {
  const wal = `${file}-wal`;
  const walBefore = readHead(wal, WAL_HEADER_BYTES);
  const fileBefore = fileIdentity(file);
  if (fileBefore === null) throw new Error(`the local tracker ${file} does not exist`);
  try {
    fs.copyFileSync(file, copy);
    if (walBefore !== null && walBefore.length === WAL_HEADER_BYTES) fs.copyFileSync(wal, `${copy}-wal`);
  } catch (error) {
    if (isMissingFile(error)) return false; // the WAL was deleted by a closing writer: retry
    throw error;
  }
  const walAfter = readHead(wal, WAL_HEADER_BYTES);
  if (walBefore !== null && walBefore.length === WAL_HEADER_BYTES) {
    return walAfter !== null && walAfter.equals(walBefore);
  }
  // No usable WAL: the database file alone is the state, so it must not have changed at all.
  const walStillEmpty = walAfter === null || walAfter.length < WAL_HEADER_BYTES;
  return walStillEmpty && fileIdentity(file) === fileBefore;
}

/** The first `bytes` bytes of a file, or null if it does not exist. */
export function readHead(file: string, bytes: number): Buffer | null {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (error) {
    if (isMissingFile(error)) return null;
    throw error;
  }
  try {
    const buffer = Buffer.alloc(bytes);
    const read = fs.readSync(fd, buffer, 0, bytes, 0);
    return buffer.subarray(0, read);
  } finally {
    fs.closeSync(fd);
  }
}

function fileIdentity(file: string): string | null {
  const stat = fs.statSync(file, { bigint: true, throwIfNoEntry: false });
  if (stat === undefined) return null;
  return `${stat.ino}:${stat.size}:${stat.mtimeNs}:${stat.ctimeNs}`;
}

function isMissingFile(error: unknown): boolean {
  return error instanceof Error && (error as NodeJS.ErrnoException).code === 'ENOENT';
}
