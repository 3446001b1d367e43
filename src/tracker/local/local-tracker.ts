/**
 * `LocalTracker`: the `Tracker` port on a SQLite file (`.loom/tracker.db`), for repositories
 * without GitHub and for tests.
 *
 * Invariants owned here:
 * - Multi-process safety. Any number of processes (daemon, shepherds, `loom` commands) may open
 *   the same file at once. The database runs in WAL mode with a 10 s busy timeout, and every write
 *   is exactly ONE `BEGIN IMMEDIATE` transaction: the write lock is taken before anything is read,
 *   so a read-modify-write can never interleave with another process's write. Schema creation on
 *   first open is itself such a transaction, so racing first opens are safe too.
 * - Atomic claim. `claim` reads the issue and swaps `loom:issue` for `loom:building` inside one
 *   immediate transaction, so of any number of concurrent claimers exactly one sees `loom:issue`.
 * - Every label change goes through `applyLabelChange`, so state and verdict labels stay exclusive.
 *
 * Read-only mode (`loom status` promises to change nothing on disk): a read-only tracker never
 * hands the original files to SQLite; every read runs on a private copy checked for consistency
 * against concurrent writers (./read-consistent-copy.ts says why and how). A read costs a copy of
 * the file, which is fine for status reads but is why the daemon and shepherds open the tracker
 * writable. The file, its connection settings and schema are ./local-database.ts's; the queries
 * are ./local-store.ts's.
 */

import type { CheckResult } from '../../core/checks.js';
import type { HumanReview } from '../../core/reviews.js';
import { TrackerStorageError } from '../tracker-errors.js';
import fs from 'node:fs';
import path from 'node:path';
import { applyLabelChange, issueState, validateLabelName } from '../../core/labels.js';
import type { Comment, Issue, IssueFilter, ItemState, LinkedIssue, NewIssue, NewPullRequest, PullRequest, PullRequestState, SnapshotOptions, TrackerEvent, TrackerSnapshot } from '../../core/tracker-model.js';
import type { Tracker, TrackerHealth } from '../tracker.js';
import { SQLITE_MAGIC, openLocalDatabase } from './local-database.js';
import { LocalStore, toIssue, toPullRequest } from './local-store.js';
import { readConsistentCopy, readHead } from './read-consistent-copy.js';

export interface LocalTrackerOptions {
  /** The SQLite file. Its directory must exist; the file is created on first open unless read-only. */
  path: string;
  /** Recorded as author of items and comments and as actor of events. Defaults to `loom`. */
  actor?: string;
  /** Open without ever creating or modifying a file on disk (see the file header). */
  readonly?: boolean;
  /**
   * Called after each committed write transaction that changed something (a failed claim or a
   * no-op label change is not a write). Errors it throws are ignored: the write has already
   * committed, and a caller must not retry it because a notification failed.
   */
  onWrite?: () => void;
}

export class LocalTracker implements Tracker {
  readonly kind = 'local' as const;
  private readonly file: string;
  private readonly actor: string;
  private readonly onWrite: (() => void) | undefined;
  /** The writable store; null for a read-only tracker, which reads copies instead. */
  private readonly store: LocalStore | null;
  private disposed = false;

  constructor(options: LocalTrackerOptions) {
    this.file = path.resolve(options.path);
    this.actor = options.actor ?? 'loom';
    this.onWrite = options.onWrite;
    const dir = path.dirname(this.file);
    if (!fs.existsSync(dir)) {
      throw new TrackerStorageError(`cannot open the local tracker ${this.file}: directory ${dir} does not exist; run \`loom init\``);
    }
    if (options.readonly === true) {
      if (!fs.existsSync(this.file)) {
        throw new TrackerStorageError(`cannot open the local tracker ${this.file}: the file does not exist; run \`loom init\` to create it`);
      }
      this.store = null;
      // Fail here on a file that is not SQLite at all, without paying for a copy; the schema
      // version is checked on every read.
      if (readHead(this.file, SQLITE_MAGIC.length)?.equals(SQLITE_MAGIC) !== true && fs.statSync(this.file).size > 0) {
        throw new TrackerStorageError(`cannot open the local tracker ${this.file}: it is not an SQLite database; restore it from a backup, or move it aside and run \`loom init\` for an empty one`);
      }
    } else {
      this.store = new LocalStore(openLocalDatabase(this.file));
    }
  }

  /** A file on this machine has no rate limit and no outage. */
  health(): TrackerHealth {
    return { state: 'ok' };
  }

  /** Whoever can write the file may approve work. */
  isTrusted(_number: number): Promise<boolean> {
    return Promise.resolve(true);
  }

  /** Labels need no definition here. */
  ensureLabels(): Promise<{ created: string[]; differing: string[] }> {
    return Promise.resolve({ created: [], differing: [] });
  }

  /** With `options.page`, the bounded snapshot (`SnapshotPage`): its cost does not grow with the backlog. */
  snapshot(options: SnapshotOptions = {}): Promise<TrackerSnapshot> {
    const page = options.page;
    return this.read((s) => (page === undefined ? s.snapshot() : s.pagedSnapshot(page)));
  }

  /** The local tracker records no links between issues: `Depends on #N` lines are its way. */
  linkedIssues(): Promise<LinkedIssue[]> {
    return Promise.resolve([]);
  }

  getIssue(number: number): Promise<Issue | null> {
    return this.read((s) => {
      const item = s.item(number);
      return item?.kind === 'issue' ? toIssue(item) : null;
    });
  }

  listIssues(filter: IssueFilter = {}): Promise<Issue[]> {
    return this.read((s) => s.listIssues(filter));
  }

  listPullRequests(filter: { state?: ItemState | 'all' } = {}): Promise<PullRequest[]> {
    return this.read((s) => s.listPullRequests(filter.state ?? 'open'));
  }

  /** No branch protection on the local tracker. */
  requiredChecks(): Promise<string[] | null> {
    return Promise.resolve(null);
  }

  /** No human reviews on the local tracker: the Judge and comments are the review. */
  reviews(): Promise<HumanReview[]> {
    return Promise.resolve([]);
  }

  /** No CI on the local tracker: the test gate is the check. */
  checks(): Promise<CheckResult[]> {
    return Promise.resolve([]);
  }

  getPullRequest(number: number): Promise<PullRequest | null> {
    return this.read((s) => {
      const item = s.item(number);
      return item?.kind === 'pr' ? toPullRequest(item) : null;
    });
  }

  async pullRequestState(number: number): Promise<PullRequestState | null> {
    const pr = await this.getPullRequest(number);
    return pr === null ? null : { number: pr.number, state: pr.state, labels: pr.labels };
  }

  listComments(number: number): Promise<Comment[]> {
    return this.read((s) => {
      s.require(number);
      return s.comments(number);
    });
  }

  listEvents(number: number): Promise<TrackerEvent[]> {
    return this.read((s) => {
      s.require(number);
      return s.events(number);
    });
  }

  createIssue(issue: NewIssue): Promise<Issue> {
    return this.write((s, now) => {
      const labels = checkLabelNames(issue.labels ?? []);
      const number = s.insertItem({
        kind: 'issue',
        title: requireTitle(issue.title),
        body: issue.body ?? '',
        author: this.actor,
        now,
        head: null,
        base: null,
        closes_issue: null,
      });
      s.changeLabels(number, [], applyLabelChange([], labels, []), this.actor, now);
      return toIssue(s.require(number));
    });
  }

  createPullRequest(pr: NewPullRequest): Promise<PullRequest> {
    return this.write((s, now) => {
      if (pr.head.trim() === '' || pr.base.trim() === '') throw new Error('a pull request needs a head and a base branch');
      const labels = checkLabelNames(pr.labels ?? []);
      const number = s.insertItem({
        kind: 'pr',
        title: requireTitle(pr.title),
        body: pr.body ?? '',
        author: this.actor,
        now,
        head: pr.head,
        base: pr.base,
        closes_issue: pr.closesIssue ?? null,
      });
      s.changeLabels(number, [], applyLabelChange([], labels, []), this.actor, now);
      return toPullRequest(s.require(number));
    });
  }

  updateLabels(number: number, change: { add?: string[]; remove?: string[] }): Promise<string[]> {
    return this.write((s, now) => {
      const add = checkLabelNames(change.add ?? []);
      const remove = checkLabelNames(change.remove ?? []);
      const current = s.require(number).labels;
      const next = applyLabelChange(current, add, remove);
      s.changeLabels(number, current, next, this.actor, now);
      return next;
    });
  }

  claim(number: number): Promise<boolean> {
    return this.write((s, now) => {
      const item = s.item(number);
      if (item?.kind !== 'issue' || item.state !== 'open' || !item.labels.includes('loom:issue')) return false;
      s.changeLabels(number, item.labels, applyLabelChange(item.labels, ['loom:building'], []), this.actor, now);
      return true;
    });
  }

  release(number: number): Promise<boolean> {
    return this.write((s, now) => {
      const item = s.item(number);
      if (item?.kind !== 'issue' || item.state !== 'open' || issueState(item.labels) !== 'loom:building') return false;
      s.changeLabels(number, item.labels, applyLabelChange(item.labels, ['loom:issue'], []), this.actor, now);
      return true;
    });
  }

  /** A local claim is one transaction: it never leaves an issue without a state label. */
  restoreInterruptedClaim(): Promise<boolean> {
    return Promise.resolve(false);
  }

  comment(number: number, body: string): Promise<Comment> {
    return this.write((s, now) => {
      s.require(number);
      return s.insertComment(number, body, this.actor, now);
    });
  }

  close(number: number, comment?: string, reason: 'completed' | 'not-planned' = 'completed', seen?: { labels: readonly string[]; pr?: { number: number } }): Promise<void> {
    return this.write((s, now) => {
      const item = s.require(number);
      if (comment !== undefined) s.insertComment(number, comment, this.actor, now);
      // A merged PR stays merged: closing it only strips what is left of its workflow labels.
      if (item.state === 'open') s.setState(number, 'closed', 'closed', this.actor, now, reason);
      s.stripWorkflowLabels(item, this.actor, now);
      if (seen?.pr !== undefined) s.stripWorkflowLabels(s.require(seen.pr.number), this.actor, now);
    });
  }

  reopen(number: number): Promise<void> {
    return this.write((s, now) => {
      const item = s.require(number);
      if (item.state === 'merged') throw new Error(`#${number} is a merged pull request and cannot be reopened`);
      if (item.state === 'closed') s.setState(number, 'open', 'reopened', this.actor, now);
    });
  }

  markMerged(number: number): Promise<void> {
    return this.write((s, now) => {
      const item = s.require(number);
      if (item.kind !== 'pr') throw new Error(`#${number} is an issue, not a pull request; only pull requests merge`);
      if (item.state !== 'open') throw new Error(`pull request #${number} is ${item.state}; only an open pull request can be merged`);
      s.setState(number, 'merged', 'merged', this.actor, now);
      s.stripWorkflowLabels(item, this.actor, now);
    });
  }

  dispose(): void {
    this.disposed = true;
    if (this.store?.db.open === true) this.store.db.close();
  }

  /**
   * One consistent read: a read transaction on the live file, or a fresh consistent copy when
   * read-only. SQLite is synchronous; the promise only carries the result or error.
   */
  private read<T>(fn: (store: LocalStore) => T): Promise<T> {
    return settle(() => {
      this.assertUsable();
      if (this.store !== null) {
        const store = this.store;
        return store.db.transaction(() => fn(store))();
      }
      return readConsistentCopy(this.file, (db) => db.transaction(() => fn(new LocalStore(db)))());
    });
  }

  /** One `BEGIN IMMEDIATE` transaction; `onWrite` follows its commit if it changed any row. */
  private write<T>(fn: (store: LocalStore, now: string) => T): Promise<T> {
    return settle(() => {
      this.assertUsable();
      if (this.store === null) {
        throw new Error(`the local tracker ${this.file} was opened read-only; it cannot be changed`);
      }
      const store = this.store;
      const before = store.totalChanges();
      const result = store.db.transaction(() => fn(store, new Date().toISOString())).immediate();
      if (store.totalChanges() !== before && this.onWrite !== undefined) {
        try {
          this.onWrite();
        } catch {
          // See `LocalTrackerOptions.onWrite`: the write stands; only the notification was lost.
        }
      }
      return result;
    });
  }

  private assertUsable(): void {
    if (this.disposed) throw new Error(`the local tracker ${this.file} has been disposed`);
  }
}

/** The result of a synchronous step as a promise, its exception as a rejection. */
function settle<T>(fn: () => T): Promise<T> {
  try {
    return Promise.resolve(fn());
  } catch (error) {
    return Promise.reject(error instanceof Error ? error : new Error(String(error)));
  }
}

/** The names, if each passes `validateLabelName`; throws its message otherwise. */
function checkLabelNames(names: readonly string[]): readonly string[] {
  for (const name of names) {
    const problem = validateLabelName(name);
    if (problem !== undefined) throw new Error(problem);
  }
  return names;
}

function requireTitle(title: string): string {
  if (title.trim() === '') throw new Error('a title must not be empty');
  return title;
}
