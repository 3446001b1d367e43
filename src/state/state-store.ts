/**
 * `FileStateStore`: the one writer of `.loom/daemon-state.json`.
 *
 * Invariants owned here:
 * - every write is temp file + fsync + rename, so a crash leaves the old or the new file;
 * - a writer that belongs to a daemon session only writes while the file still names that
 *   session (`daemon_session_id`), so an iteration of a replaced daemon cannot clobber the state
 *   (writers serialise on `<file>.lock`, so the check and the write are one step);
 * - a corrupt or truncated file never crashes Loom: it is moved aside as `.corrupt-<time>` and an
 *   empty state is returned with a warning; the iteration then rebuilds ownership from the tracker
 *   and the live progress records.
 */
import { LoomError } from '../core/errors.js';
import fs from 'node:fs';
import type { DaemonState } from '../core/daemon-state.js';
import { addWarning, emptyState, normalizeState } from '../core/daemon-state.js';
import { writeFileAtomic } from '../fs/atomic-file.js';
import { tryLock, unlock } from '../process/lock-file.js';

/** How long a save waits for another writer of the state file, ms (a write takes milliseconds). */
const SAVE_LOCK_WAIT_MS = 10_000;

export interface LoadedState {
  state: DaemonState;
  /** Human-readable problems found while loading (already added to `state.warnings`). */
  warnings: string[];
  /** Where a corrupt file was moved, if it was. */
  movedTo: string | null;
}

export class SessionMismatchError extends LoomError {
  constructor(
    readonly expected: string,
    readonly found: string | null,
  ) {
    super('session_mismatch', `daemon state now belongs to session ${found ?? '(none)'}, not ${expected}; another daemon took over`);
  }
}

export class FileStateStore {
  constructor(readonly file: string) {}

  /** Reads without side effects; a corrupt file yields null (used by read-only `loom status`). */
  peek(): DaemonState | null {
    try {
      const text = fs.readFileSync(this.file, 'utf8');
      return normalizeState(JSON.parse(text)).state;
    } catch {
      return null;
    }
  }

  /** Whether the file exists but cannot be parsed. */
  isCorrupt(): boolean {
    try {
      JSON.parse(fs.readFileSync(this.file, 'utf8'));
      return false;
    } catch (error) {
      return (error as NodeJS.ErrnoException).code !== 'ENOENT';
    }
  }

  load(now: Date = new Date()): LoadedState {
    let text: string;
    try {
      text = fs.readFileSync(this.file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { state: emptyState(), warnings: [], movedTo: null };
      throw error;
    }
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch (error) {
      const movedTo = `${this.file}.corrupt-${now.toISOString().replace(/[:.]/g, '-')}`;
      fs.renameSync(this.file, movedTo);
      const message = `daemon state was unreadable (${(error as Error).message}); moved to ${movedTo} and rebuilt from the tracker and live processes`;
      const state = emptyState();
      addWarning(state, now.toISOString(), message);
      return { state, warnings: [message], movedTo };
    }
    const { state, problems } = normalizeState(raw);
    for (const p of problems) addWarning(state, now.toISOString(), `state file: ${p}`);
    return { state, warnings: problems, movedTo: null };
  }

  /**
   * Writes the state; with `session`, refuses if the file on disk names another session. Writers
   * take `<file>.lock` for the check and the write, so a daemon taking the state over cannot slip
   * its write between a replaced writer's check and that writer's write.
   */
  save(state: DaemonState, session?: string): void {
    const lock = `${this.file}.lock`;
    const deadline = Date.now() + SAVE_LOCK_WAIT_MS;
    while (!tryLock(lock)) {
      if (Date.now() >= deadline) throw new Error(`could not take ${lock} within ${SAVE_LOCK_WAIT_MS} ms to write the daemon state`);
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5); // a short synchronous pause
    }
    try {
      if (session !== undefined) {
        const current = this.peek();
        if (current !== null && current.daemon_session_id !== null && current.daemon_session_id !== session) {
          throw new SessionMismatchError(session, current.daemon_session_id);
        }
      }
      writeFileAtomic(this.file, `${JSON.stringify(state, null, 2)}\n`);
    } finally {
      unlock(lock);
    }
  }
}
