/**
 * `GitHubCacheFile`: what one process of the GitHub adapter leaves for the next — the
 * conditional-request cache, the circuit breaker, the loom pull requests of the last snapshot
 * and our login — because every iteration (and `loom status`) is a fresh process; without it
 * every poll would be unconditional and cost rate limit, and a pause would be forgotten.
 *
 * Invariant: the file is replaced atomically, and a missing or torn file is a cold start, never
 * an error; a lost write costs one unconditional poll, nothing more.
 */
import fs from 'node:fs';
import { writeFileAtomic } from '../../fs/atomic-file.js';
import type { CachedResponse } from './github-transport.js';
import type { KnownPermission } from './github-trust.js';
import type { GhPull } from './github-wire.js';

export interface PersistedCache {
  entries: [string, CachedResponse][];
  openUntil: number | null;
  pulls: [number, GhPull][];
  /** When the snapshot that read `pulls` was taken, epoch ms; absent in older files. */
  pullsAt?: number;
  /** PRs created after that snapshot (number, the creation's answer, when, epoch ms); absent when none, and in older files. */
  created?: [number, GhPull, number][];
  actor: string | null;
  /** Collaborator-permission answers and when they were given; absent in older files. */
  permissions?: [string, KnownPermission][];
}

export class GitHubCacheFile {
  constructor(readonly file: string) {}

  /** What the last process saved, or null (no file yet, a torn one, or not this shape). */
  read(): PersistedCache | null {
    try {
      const saved = JSON.parse(fs.readFileSync(this.file, 'utf8')) as PersistedCache;
      if (!Array.isArray(saved.entries) || !Array.isArray(saved.pulls)) return null;
      // Created PRs of another shape (a file edited by hand, another version) are left out, not a failure.
      const created: unknown = saved.created;
      if (created !== undefined) saved.created = Array.isArray(created) ? created.filter(isCreatedEntry) : [];
      return saved;
    } catch {
      return null;
    }
  }

  write(saved: PersistedCache): void {
    try {
      writeFileAtomic(this.file, JSON.stringify(saved));
    } catch {
      // a lost cache costs one unconditional poll, nothing more
    }
  }
}

function isCreatedEntry(entry: unknown): entry is [number, GhPull, number] {
  if (!Array.isArray(entry) || entry.length !== 3) return false;
  const [number, pull, at] = entry as unknown[];
  const head = typeof pull === 'object' && pull !== null ? (pull as { head?: unknown }).head : undefined;
  return Number.isInteger(number) && typeof at === 'number' && typeof head === 'object' && head !== null && typeof (head as { ref?: unknown }).ref === 'string';
}
