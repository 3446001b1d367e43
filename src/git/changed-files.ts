/**
 * The files a branch or a worktree changes, for overlap avoidance. A branch's files are those of
 * `git diff base...head` (what the branch changed since it left the base), kept in
 * `.loom/diff-cache.json` by base and head commit: a branch whose head did not move costs no
 * diff. A worktree adds what is changed but not committed yet (`git status`).
 */
import { readJsonFile, writeFileAtomic } from '../fs/atomic-file.js';
import { git, gitMaybe } from './git.js';

/** Cache entries kept at most (oldest dropped first). */
const MAX_ENTRIES = 500;

export class ChangedFiles {
  private cache: Map<string, string[]>;
  private dirty = false;

  constructor(
    /** The repository's main working tree. */
    private readonly root: string,
    /** `.loom/diff-cache.json`; null: keep nothing between calls. */
    private readonly cacheFile: string | null,
  ) {
    let stored: unknown = null;
    try {
      stored = cacheFile === null ? null : readJsonFile(cacheFile);
    } catch {
      // A damaged cache is rebuilt: it only saves diffs.
    }
    const entries = stored !== null && typeof stored === 'object' && !Array.isArray(stored) ? Object.entries(stored as Record<string, unknown>) : [];
    this.cache = new Map(entries.filter((e): e is [string, string[]] => Array.isArray(e[1]) && e[1].every((f) => typeof f === 'string')));
  }

  /** Every branch under the given ref prefixes with its head commit, in one git call. */
  async heads(prefixes: readonly string[]): Promise<Map<string, string>> {
    const out = await gitMaybe(this.root, ['for-each-ref', '--format=%(objectname) %(refname)', ...prefixes]);
    const map = new Map<string, string>();
    for (const line of (out ?? '').split('\n')) {
      const [sha, ref] = line.split(' ');
      if (sha && ref) map.set(ref, sha);
    }
    return map;
  }

  /** The commit `ref` names, or null when it names none. */
  async resolve(ref: string): Promise<string | null> {
    return gitMaybe(this.root, ['rev-parse', '--verify', '--quiet', `${ref}^{commit}`]);
  }

  /** The files `head` changed since it left `base` (commits), from the cache when it has them. */
  async branchFiles(base: string, head: string): Promise<string[]> {
    const key = `${base}..${head}`;
    const cached = this.cache.get(key);
    if (cached) return cached;
    const out = await gitMaybe(this.root, ['diff', '--name-only', '--no-renames', '-z', `${base}...${head}`]);
    if (out === null) return [];
    const files = out.split('\0').filter(Boolean);
    this.cache.set(key, files);
    this.dirty = true;
    return files;
  }

  /** Files changed in a worktree and not committed yet: modified, staged, deleted, untracked. */
  async uncommitted(dir: string): Promise<string[]> {
    const out = await git(dir, ['status', '--porcelain=v1', '-z', '--untracked-files=all', '--no-renames']).catch(() => '');
    return out
      .split('\0')
      .filter((entry) => entry.length > 3)
      .map((entry) => entry.slice(3));
  }

  /**
   * Which of the bare file names (`planner.ts`, no directory) name a file the repository tracks,
   * in any directory: one `git ls-files` call with a glob pathspec per name.
   */
  async trackedNames(names: readonly string[]): Promise<Set<string>> {
    if (names.length === 0) return new Set();
    // `**/` matches any directory, the top one included; glob characters in a name are escaped.
    const specs = names.map((n) => `:(glob)**/${n.replace(/[*?[\]\\]/g, '\\$&')}`);
    const out = await gitMaybe(this.root, ['ls-files', '-z', '--', ...specs]);
    const found = new Set<string>();
    for (const file of (out ?? '').split('\0').filter(Boolean)) found.add(file.split('/').pop() ?? file);
    return new Set(names.filter((n) => found.has(n)));
  }

  /** Writes the cache back (the newest `MAX_ENTRIES` entries) if anything was added. */
  save(): void {
    if (!this.dirty || this.cacheFile === null) return;
    const entries = [...this.cache.entries()].slice(-MAX_ENTRIES);
    writeFileAtomic(this.cacheFile, JSON.stringify(Object.fromEntries(entries)));
    this.dirty = false;
  }
}
