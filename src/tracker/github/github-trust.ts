/**
 * `GitHubTrust`: who may approve work on GitHub (PRODUCT.md §11).
 *
 * Invariant: an issue is trusted only when whoever most recently applied `loom:issue` has write
 * access to the repository (admin, maintain or write) or is in the allow-list (`trustedUsers`).
 * An issue never approved is not trusted. Each user's permission is looked up at most once per
 * `PERMISSION_TTL_MS`: the answers are carried from one process to the next (in the cache file),
 * so a revoked collaborator's approval is honoured for at most that long.
 */
import { Label } from '../../core/labels.js';
import type { TrackerEvent } from '../../core/tracker-model.js';
import { statusOf, type GitHubTransport } from './github-transport.js';

const WRITE_PERMISSIONS = new Set(['admin', 'maintain', 'write']);
/** How long a collaborator-permission answer is used before GitHub is asked again, ms. */
export const PERMISSION_TTL_MS = 15 * 60_000;

/** One remembered permission answer: write access or not, and when GitHub said so (epoch ms). */
export interface KnownPermission {
  allowed: boolean;
  at: number;
}

export class GitHubTrust {
  private readonly allow: ReadonlySet<string>;
  private readonly permissions: Map<string, KnownPermission>;

  constructor(
    private readonly transport: GitHubTransport,
    allow: readonly string[] = [],
    private readonly now: () => number = Date.now,
    restored: readonly [string, KnownPermission][] = [],
  ) {
    this.allow = new Set(allow);
    this.permissions = new Map(restored.filter(isKnownPermission));
  }

  /**
   * The permission answers still fresh, for the next process: this process's and those `saved`
   * (left by processes that ended since it started), the newer answer for a user both have.
   */
  persisted(saved: readonly [string, KnownPermission][] = []): [string, KnownPermission][] {
    const merged = new Map<string, KnownPermission>();
    for (const [user, known] of [...saved.filter(isKnownPermission), ...this.permissions.entries()]) {
      const had = merged.get(user);
      if (had === undefined || known.at >= had.at) merged.set(user, known);
    }
    return [...merged.entries()].filter(([, known]) => this.fresh(known));
  }

  /** Whether the latest approval in an issue's timeline (oldest first) is by a trusted user. */
  async isTrusted(events: readonly TrackerEvent[]): Promise<boolean> {
    const approval = events.filter((e) => e.type === 'labeled' && e.label === Label.issue).at(-1);
    if (approval === undefined) return false;
    return this.isWriter(approval.actor);
  }

  /** Whether `user` may approve work: write access (admin, maintain, write), or on the allow-list. */
  async isWriter(user: string): Promise<boolean> {
    if (this.allow.has(user)) return true;
    const known = this.permissions.get(user);
    if (known !== undefined && this.fresh(known)) return known.allowed;
    let allowed = false;
    try {
      const res = await this.transport.send<{ permission?: string; role_name?: string }>(
        'GET',
        this.transport.repoPath(`/collaborators/${encodeURIComponent(user)}/permission`),
      );
      allowed = WRITE_PERMISSIONS.has(res.data.permission ?? '') || WRITE_PERMISSIONS.has(res.data.role_name ?? '');
    } catch (error) {
      if (statusOf(error) !== 404) throw error;
    }
    this.permissions.set(user, { allowed, at: this.now() });
    return allowed;
  }

  private fresh(known: KnownPermission): boolean {
    const age = this.now() - known.at;
    return age >= 0 && age < PERMISSION_TTL_MS;
  }
}

/** A remembered answer as a cache file holds it, when it is one (an older or torn file's may not be). */
function isKnownPermission(entry: readonly [string, KnownPermission]): boolean {
  const [user, known] = entry as readonly [unknown, Partial<KnownPermission> | undefined];
  return typeof user === 'string' && typeof known?.allowed === 'boolean' && typeof known.at === 'number';
}
