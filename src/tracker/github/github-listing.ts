/**
 * `GitHubListing`: the open `loom:*`-labelled issues and PRs as the last snapshot knew them, kept
 * up to date by applying the change probe's items (everything updated since the last read)
 * instead of reading the whole open-issue listing again after any change.
 *
 * Invariants owned here:
 * - `watermark` is the newest `updated_at` of the probe read before (or as) the last read, so
 *   every change made after that read has `updated_at >= watermark`; a delta is complete once the
 *   probe's pages reach an item older than the watermark (or run out).
 * - Only open items with a `loom:` label are kept; an item that closes or loses its last `loom:`
 *   label leaves the listing.
 * - The listing lives in its own file, read only by a snapshot (a shepherd that never takes one
 *   never parses it), and is written only when it changed. A missing or torn file is a cold
 *   start (one full read), never an error.
 */
import fs from 'node:fs';
import { writeFileAtomic } from '../../fs/atomic-file.js';
import { labelNames, type GhIssue } from './github-wire.js';

interface SavedListing {
  /** The ETag of the probe answer this listing is current with. */
  probeEtag: string | null;
  watermark: string | null;
  /** When the open-issue listing itself was last read, epoch ms. */
  listedAt: number | null;
  /** The last probe page held one second's changes only: a same-second change could hide behind it. */
  saturated: boolean;
  items: GhIssue[];
}

export class GitHubListing {
  probeEtag: string | null = null;
  watermark: string | null = null;
  listedAt: number | null = null;
  saturated = false;
  private items: Map<number, GhIssue> | null = null;
  private dirty = false;
  private loaded = false;

  constructor(private readonly file: string | undefined) {}

  /** Reads the saved listing once (on the first snapshot); false when there is none to build on. */
  load(): boolean {
    if (!this.loaded) {
      this.loaded = true;
      const saved = this.file === undefined ? null : readSaved(this.file);
      if (saved !== null) {
        this.items = new Map(saved.items.map((i) => [i.number, i]));
        this.probeEtag = saved.probeEtag;
        this.watermark = saved.watermark;
        this.listedAt = saved.listedAt;
        this.saturated = saved.saturated;
      }
    }
    return this.items !== null;
  }

  /** Replaces the whole listing with a full read's items. */
  replace(items: readonly GhIssue[], watermark: string | null, listedAt: number): void {
    this.items = new Map();
    for (const item of items) this.put(item);
    this.watermark = watermark;
    this.listedAt = listedAt;
    this.dirty = true;
  }

  /** Applies items read after the listing (newer states of the same items): open loom items stay or enter, the rest leave. */
  apply(items: readonly GhIssue[], watermark: string | null): void {
    if (this.items === null) return;
    for (const item of items) {
      if (isKept(item)) this.put(item);
      else this.items.delete(item.number);
    }
    if (watermark !== null && (this.watermark === null || watermark > this.watermark)) this.watermark = watermark;
    this.dirty = true;
  }

  /** Forgets one item (GitHub says it is gone: deleted or transferred). */
  drop(number: number): void {
    if (this.items?.delete(number) === true) this.dirty = true;
  }

  /** Notes the probe answer the listing is now current with. */
  current(probeEtag: string | null, saturated: boolean): void {
    if (probeEtag !== this.probeEtag || saturated !== this.saturated) this.dirty = true;
    this.probeEtag = probeEtag;
    this.saturated = saturated;
  }

  all(): GhIssue[] {
    return [...(this.items?.values() ?? [])];
  }

  /** Writes the listing if it changed since it was read. */
  save(): void {
    if (this.file === undefined || !this.dirty || this.items === null) return;
    const saved: SavedListing = { probeEtag: this.probeEtag, watermark: this.watermark, listedAt: this.listedAt, saturated: this.saturated, items: [...this.items.values()] };
    try {
      writeFileAtomic(this.file, JSON.stringify(saved));
      this.dirty = false;
    } catch {
      // a lost listing costs one full read, nothing more
    }
  }

  private put(item: GhIssue): void {
    if (!isKept(item)) return;
    // Only what the snapshot maps: the rest of GitHub's record is not kept.
    const kept: GhIssue = {
      number: item.number,
      title: item.title,
      body: item.body ?? null,
      state: item.state,
      labels: labelNames(item.labels),
      user: item.user === null ? null : { login: item.user.login },
      created_at: item.created_at,
      updated_at: item.updated_at,
      ...(item.pull_request === undefined || item.pull_request === null ? {} : { pull_request: { merged_at: item.pull_request.merged_at ?? null } }),
      // GitHub's own dependency and sub-issue counts: whether the links are worth reading.
      ...(item.sub_issues_summary ? { sub_issues_summary: { total: item.sub_issues_summary.total } } : {}),
      ...(item.issue_dependencies_summary ? { issue_dependencies_summary: { total_blocked_by: item.issue_dependencies_summary.total_blocked_by } } : {}),
    };
    this.items?.set(item.number, kept);
  }
}

function isKept(item: GhIssue): boolean {
  return item.state === 'open' && labelNames(item.labels).some((l) => l.startsWith('loom:'));
}

function readSaved(file: string): SavedListing | null {
  try {
    const saved = JSON.parse(fs.readFileSync(file, 'utf8')) as SavedListing;
    return Array.isArray(saved.items) ? saved : null;
  } catch {
    return null;
  }
}
