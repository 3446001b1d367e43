/**
 * Shepherd checkpoints: `.loom/checkpoints/issue-N.json`, written (atomically) after every
 * completed phase, so a shepherd started again for the same issue — after a crash, a kill or a
 * shutdown — resumes where the last one stopped instead of starting over.
 */
import { listDir } from '../fs/list-dir.js';
import fs from 'node:fs';
import path from 'node:path';
import { readJsonFile, writeFileAtomic } from '../fs/atomic-file.js';
import { crashPoint } from '../process/crash-point.js';

/** The last phase completed. */
export type CheckpointPhase = 'built' | 'pr-opened' | 'judged' | 'doctored' | 'merged';

export interface Checkpoint {
  issue: number;
  phase: CheckpointPhase;
  branch: string;
  base: string;
  pr_number: number | null;
  /** Last verdict: the Judge approved (`approve`) or asked for changes (`changes`). */
  verdict: 'approve' | 'changes' | null;
  /** The review the Doctor must address. */
  review: string | null;
  /** Doctor rounds done so far. */
  doctor_rounds: number;
  /** Whether the last judge round failed on the test gate. */
  tests_failed: boolean;
  /**
   * Files that conflicted when the default branch moved on: the next doctor round gets the base
   * merged into the worktree (merge in progress) and resolves them.
   */
  conflict?: string[];
  /** Agent sessions by role, for resume on retries and doctor rounds. */
  sessions?: Record<string, string>;
  /** The runtime that made each of `sessions` (absent in a checkpoint from before: the role's own runtime is assumed). */
  session_runtimes?: Record<string, string>;
  updated_at: string;
}

export class CheckpointStore {
  constructor(readonly dir: string) {}

  file(issue: number): string {
    return path.join(this.dir, `issue-${issue}.json`);
  }

  read(issue: number): Checkpoint | null {
    try {
      return (readJsonFile(this.file(issue)) as Checkpoint | undefined) ?? null;
    } catch {
      return null; // a torn file means no usable checkpoint: the phase is simply redone
    }
  }

  write(checkpoint: Checkpoint): void {
    fs.mkdirSync(this.dir, { recursive: true });
    writeFileAtomic(this.file(checkpoint.issue), `${JSON.stringify({ ...checkpoint, updated_at: new Date().toISOString() }, null, 2)}\n`, { beforeRename: () => crashPoint('checkpoint:before-rename', checkpoint.issue) });
  }

  remove(issue: number): void {
    fs.rmSync(this.file(issue), { force: true });
  }

  /** Issues that have a checkpoint file. */
  list(): number[] {
    return listDir(this.dir)
      .map((n) => /^issue-(\d+)\.json$/.exec(n)?.[1])
      .filter((n): n is string => n !== undefined)
      .map(Number)
      .sort((a, b) => a - b);
  }
}
