/**
 * Progress records under `.loom/progress/`: `shepherd-<issue>.json` and `role-<name>.json`.
 * One record per issue/role: the launcher creates it exclusively (`starting`), so two launchers
 * cannot both own an issue; from then on only the process it names writes it.
 */
import { listDir } from '../fs/list-dir.js';
import fs from 'node:fs';
import path from 'node:path';
import type { OriginalProgress, Progress } from '../core/progress.js';
import { asOriginalProgress, asProgress, isTerminal } from '../core/progress.js';
import { readJsonFile, writeFileAtomic } from '../fs/atomic-file.js';
import { isProcessAlive } from './process-identity.js';
import type { ProcessView } from '../core/planner.js';

/** A `starting` record whose launcher vanished counts as dead after this long, ms. */
export const STARTING_GRACE_MS = 30_000;

export class ProgressStore {
  constructor(readonly dir: string) {}

  shepherdFile(issue: number): string {
    return path.join(this.dir, `shepherd-${issue}.json`);
  }

  roleFile(role: string): string {
    return path.join(this.dir, `role-${role}.json`);
  }

  read(file: string): Progress | null {
    try {
      // A record of another schema (the original Loom's) is not one of ours: absent.
      return asProgress(readJsonFile(file));
    } catch {
      // A torn or foreign file is treated as absent; the writer replaces it atomically.
      return null;
    }
  }

  readShepherd(issue: number): Progress | null {
    return this.read(this.shepherdFile(issue));
  }

  readRole(role: string): Progress | null {
    return this.read(this.roleFile(role));
  }

  /** Creates the record only if none exists. Returns false when one does. */
  createExclusive(file: string, progress: Progress): boolean {
    fs.mkdirSync(this.dir, { recursive: true });
    const tmp = `${file}.${process.pid}.claim.tmp`;
    fs.writeFileSync(tmp, JSON.stringify(progress, null, 2));
    try {
      fs.linkSync(tmp, file);
      return true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw error;
    } finally {
      fs.rmSync(tmp, { force: true });
    }
  }

  write(file: string, progress: Progress): void {
    fs.mkdirSync(this.dir, { recursive: true });
    writeFileAtomic(file, JSON.stringify(progress, null, 2));
  }

  remove(file: string): void {
    fs.rmSync(file, { force: true });
  }

  /** The original Loom's shepherd records (`shepherd-<task id>.json`), which Loom leaves alone. */
  listOriginal(): OriginalProgress[] {
    let names: string[];
    try {
      names = fs.readdirSync(this.dir);
    } catch {
      return [];
    }
    const found: OriginalProgress[] = [];
    for (const name of names.filter((n) => /^shepherd-.+\.json$/.test(n)).sort()) {
      try {
        const record = asOriginalProgress(name, readJsonFile(path.join(this.dir, name)));
        if (record !== null) found.push(record);
      } catch {
        // torn or not JSON: nobody's record
      }
    }
    return found;
  }

  /** Every shepherd record on disk (Loom's own: records of another schema are skipped). */
  listShepherds(): Progress[] {
    return listDir(this.dir)
      .filter((n) => /^shepherd-\d+\.json$/.test(n))
      .map((n) => this.read(path.join(this.dir, n)))
      .filter((p): p is Progress => p !== null);
  }
}

/**
 * Liveness of the process behind a record: the worker's pid once it has started (and, for a run
 * in a shepherd host, its ticket); before that, the launcher's pid, or a short grace when the
 * launcher is gone.
 */
export function viewOf(progress: Progress | null, now: number, fallback?: { pid: number | null; pid_start: string | null }): ProcessView {
  if (progress !== null && isTerminal(progress.status)) return { alive: false, progress };
  if (progress?.host_ticket !== undefined && progress.pid) {
    // A hosted run: its host lives and holds its ticket (written just after this record: a
    // `starting` record is given the grace).
    const ticketed = fs.existsSync(progress.host_ticket) || (progress.status === 'starting' && now - Date.parse(progress.started) < STARTING_GRACE_MS);
    return { alive: ticketed && isProcessAlive(progress.pid, progress.pid_start), progress };
  }
  if (progress?.pid) return { alive: isProcessAlive(progress.pid, progress.pid_start), progress };
  if (fallback?.pid) return { alive: isProcessAlive(fallback.pid, fallback.pid_start), progress };
  if (progress?.status === 'starting') {
    const fresh = now - Date.parse(progress.started) < STARTING_GRACE_MS;
    return { alive: fresh || isProcessAlive(progress.launcher_pid), progress };
  }
  return { alive: false, progress };
}
