/**
 * `.loom/base-guard.json`: what the post-merge guard (src/steps/base-guard.ts) must remember
 * across processes and crashes.
 *
 * Invariants owned here: `verifying` is written right after a merge and cleared only once the
 * guard has finished with it (green, or red and fully handled), so a merger killed in between
 * leaves the verification for the next merge to finish; a merge commit in `reverted` is never
 * reverted again; while `paused` is set no merge happens. A missing or unreadable file is an
 * empty state.
 */
import fs from 'node:fs';
import { writeFileAtomic } from '../fs/atomic-file.js';

export interface GuardedMerge {
  base: string;
  /** The merge commit on the base (GitHub: the base's head right after the merge). */
  commit: string;
  pr: number;
  issue: number;
  title: string;
  /** GitHub: whether the PR's head had CI checks (the base's new head is then expected to get some). */
  had_checks: boolean;
  since: string;
}

export interface BaseGuardState {
  verifying: GuardedMerge | null;
  /** Merging is paused: the base went red after `merge`. */
  paused: {
    since: string;
    merge: GuardedMerge;
    /** The base head found red (the merge, or a later head re-verified). */
    red_head: string;
    /** What failed: the test output or the failing checks, bounded. */
    failure: string;
    /** The revert: `commit <sha>` (local) or `PR #<n>` (GitHub); null until made. */
    revert: string | null;
    /** GitHub: the revert PR was closed without being merged (a person chose another fix). */
    revert_closed?: boolean;
  } | null;
  /** Merge commits already reverted. */
  reverted: string[];
  /** The last verdict, for `loom status`. */
  last: {
    at: string;
    commit: string;
    pr: number;
    result: 'green' | 'red' | 'unverified';
    detail: string;
  } | null;
  /**
   * GitHub: whether CI reports on the base's head `commit`, and when GitHub last said so about
   * the base (`read_at`, carried over to the head of a merge the guard did not need to read).
   */
  ci: { commit: string; checks: boolean; read_at: string } | null;
}

export function emptyGuardState(): BaseGuardState {
  return { verifying: null, paused: null, reverted: [], last: null, ci: null };
}

export class BaseGuardStore {
  constructor(readonly file: string) {}

  read(): BaseGuardState {
    try {
      const saved = JSON.parse(fs.readFileSync(this.file, 'utf8')) as Partial<BaseGuardState>;
      return { ...emptyGuardState(), ...saved, reverted: Array.isArray(saved.reverted) ? saved.reverted : [] };
    } catch {
      return emptyGuardState();
    }
  }

  /** Applies `change` to the current state and writes it atomically; returns the new state. */
  update(change: (state: BaseGuardState) => Partial<BaseGuardState>): BaseGuardState {
    const current = this.read();
    const next = { ...current, ...change(current) };
    writeFileAtomic(this.file, `${JSON.stringify(next, null, 2)}\n`);
    return next;
  }
}
