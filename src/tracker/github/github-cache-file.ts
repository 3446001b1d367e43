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
      return Array.isArray(saved.entries) && Array.isArray(saved.pulls) ? saved : null;
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
