/**
 * `GitHubTrust`: who may approve work on GitHub (PRODUCT.md §11).
 *
 * Invariant: an issue is trusted only when whoever most recently applied `loom:issue` has write
 * access to the repository (admin, maintain or write) or is in the allow-list (`trustedUsers`).
 * An issue never approved is not trusted. Each user's permission is looked up once per process.
 */
import { Label } from '../../core/labels.js';
import type { TrackerEvent } from '../../core/tracker-model.js';
import { statusOf, type GitHubTransport } from './github-transport.js';

const WRITE_PERMISSIONS = new Set(['admin', 'maintain', 'write']);

export class GitHubTrust {
  private readonly allow: ReadonlySet<string>;
  private readonly permissions = new Map<string, boolean>();

  constructor(
    private readonly transport: GitHubTransport,
    allow: readonly string[] = [],
  ) {
    this.allow = new Set(allow);
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
    if (known !== undefined) return known;
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
    this.permissions.set(user, allowed);
    return allowed;
  }
}
