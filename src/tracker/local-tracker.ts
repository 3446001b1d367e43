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
 * Read-only mode (`loom status` promises to change nothing on disk). What SQLite does, measured
 * with the bundled SQLite 3.53 (test/tracker/local-tracker.test.ts holds the promise):
 * - When the last writer closed cleanly there is no `-wal`/`-shm`; a connection opened with
 *   `{ readonly: true, fileMustExist: true }` then CREATES both files (an empty `-wal` and a 32 KiB
 *   `-shm`) and leaves them behind on close, since a read-only connection cannot checkpoint.
 * - When the files exist and a writer is running, a read-only connection writes its read mark
 *   into `-shm`; when they were left by a crashed writer, it re-initialises `-shm`.
 * - The SQLite remedies (`?immutable=1`, `?readonly_shm=1`) are URI parameters, and this
 *   better-sqlite3 build has URI filenames disabled (`SQLITE_USE_URI=0`, no `SQLITE_OPEN_URI`).
 *   Keeping the writer from deleting its WAL needs `SQLITE_FCNTL_PERSIST_WAL` (not exposed by
 *   better-sqlite3; `journal_size_limit` does not prevent the delete) and would not stop the
 *   `-shm` writes anyway.
 * So a read-only tracker never hands the original files to SQLite. Each read copies `tracker.db`
 * (and its `-wal`, if any) into a fresh temp directory, lets SQLite recover and read the copy, and
 * deletes the directory; no handle stays open between reads, so every read sees current data.
 * The copy is checked for consistency against concurrent writers:
 * - with a WAL: its 32-byte header (salts, checkpoint sequence) is read before copying the
 *   database and must be unchanged after copying the WAL. Then no WAL restart happened in
 *   between, so every page a concurrent checkpoint may have written into our database copy is
 *   also in our WAL copy and wins on recovery; frames half-written during the copy fail their
 *   checksums and are ignored, exactly as after a crash.
 * - without a WAL (or an empty one): the database file's inode, size, mtime and ctime must be
 *   unchanged and no WAL may have appeared. (Residual risk: a writer that opens, checkpoints and
 *   closes entirely within one file-timestamp tick of the previous checkpoint, while a copy is in
 *   flight, would go unnoticed.)
 * An inconsistent copy is thrown away and retried (10 s deadline, like the busy timeout). A read
 * costs a copy of the file, which is fine for status reads but is why the daemon and shepherds
 * open the tracker writable.
 */

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { ISSUE_STATE_LABELS, PR_VERDICT_LABELS, applyLabelChange, validateLabelName } from '../core/labels.js';
import type { Tracker, TrackerHealth } from './tracker.js';
import { NotFoundError, type Comment, type Issue, type IssueFilter, type ItemState, type NewIssue, type NewPullRequest, type PullRequest, type TrackerEvent, type TrackerSnapshot } from '../core/tracker-model.js';

/** File name of the local tracker inside the `.loom` directory. */
export const LOCAL_TRACKER_FILE = 'tracker.db';

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

const SCHEMA_VERSION = 1;
/** The first 16 bytes of every SQLite database file. */
const SQLITE_MAGIC = Buffer.from('SQLite format 3\0', 'latin1');
const BUSY_TIMEOUT_MS = 10_000;

/** Labels a closed or merged item no longer carries: it is no longer anywhere in the workflow. */
const WORKFLOW_LABELS: readonly string[] = [...ISSUE_STATE_LABELS, ...PR_VERDICT_LABELS];

const SCHEMA = `
  CREATE TABLE items (
    number       INTEGER PRIMARY KEY,
    kind         TEXT NOT NULL CHECK (kind IN ('issue', 'pr')),
    title        TEXT NOT NULL,
    body         TEXT NOT NULL,
    state        TEXT NOT NULL CHECK (state IN ('open', 'closed', 'merged')),
    author       TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    head         TEXT,
    base         TEXT,
    closes_issue INTEGER,
    CHECK (kind = 'pr' OR state <> 'merged'),
    CHECK ((kind = 'pr') = (head IS NOT NULL AND base IS NOT NULL))
  );
  -- Entries with one state and kind are in number order, so listing them needs no sort.
  CREATE INDEX items_state ON items (state, kind);
  CREATE TABLE labels (
    item     INTEGER NOT NULL REFERENCES items (number),
    name     TEXT NOT NULL,
    added_at TEXT NOT NULL,
    added_by TEXT NOT NULL,
    PRIMARY KEY (item, name)
  ) WITHOUT ROWID;
  CREATE INDEX labels_name ON labels (name);
  CREATE TABLE comments (
    id         INTEGER PRIMARY KEY,
    item       INTEGER NOT NULL REFERENCES items (number),
    author     TEXT NOT NULL,
    body       TEXT NOT NULL,
    created_at TEXT NOT NULL
  );
  CREATE INDEX comments_item ON comments (item, id);
  CREATE TABLE events (
    id         INTEGER PRIMARY KEY,
    item       INTEGER NOT NULL REFERENCES items (number),
    type       TEXT NOT NULL CHECK (type IN ('labeled', 'unlabeled', 'closed', 'reopened', 'merged')),
    label      TEXT,
    actor      TEXT NOT NULL,
    created_at TEXT NOT NULL
  );
  CREATE INDEX events_item ON events (item, id);
`;

/**
 * Item reads (one item, issue lists) select these columns, labels included, as raw arrays
 * (`ItemTuple`): one statement per read and no per-row object keys. Labels are joined with
 * commas, which `validateLabelName` forbids inside a name.
 */
const ITEM_SELECT = `SELECT i.number, i.kind, i.title, i.body, i.state, i.author, i.created_at, i.updated_at,
    i.head, i.base, i.closes_issue, (SELECT group_concat(l.name, ',') FROM labels l WHERE l.item = i.number)
  FROM items i`;

type ItemTuple = [
  number: number,
  kind: 'issue' | 'pr',
  title: string,
  body: string,
  state: ItemState,
  author: string,
  createdAt: string,
  updatedAt: string,
  head: string | null,
  base: string | null,
  closesIssue: number | null,
  labels: string | null,
];

/** Open items carrying a `loom:*` label. `;` follows `:` in ASCII, so the range is the prefix. */
const SNAPSHOT_FILTER = `i.state = 'open' AND EXISTS (
  SELECT 1 FROM labels l WHERE l.item = i.number AND l.name >= 'loom:' AND l.name < 'loom;')`;

/**
 * The snapshot is the hot read (every daemon tick), so it selects per kind only the columns that
 * kind needs, `state` being known: every value costs a JS conversion, and at 10,000 items those
 * conversions, not SQLite, dominate.
 */
const SNAPSHOT_ISSUES = `SELECT i.number, i.title, i.body, i.author, i.created_at, i.updated_at,
    (SELECT group_concat(l.name, ',') FROM labels l WHERE l.item = i.number)
  FROM items i WHERE i.kind = 'issue' AND ${SNAPSHOT_FILTER} ORDER BY i.number`;

type SnapshotIssueTuple = [
  number: number,
  title: string,
  body: string,
  author: string,
  createdAt: string,
  updatedAt: string,
  labels: string,
];

const SNAPSHOT_PULL_REQUESTS = `SELECT i.number, i.title, i.body, i.head, i.base, i.closes_issue, i.created_at, i.updated_at,
    (SELECT group_concat(l.name, ',') FROM labels l WHERE l.item = i.number)
  FROM items i WHERE i.kind = 'pr' AND ${SNAPSHOT_FILTER} ORDER BY i.number`;

type SnapshotPullRequestTuple = [
  number: number,
  title: string,
  body: string,
  head: string,
  base: string,
  closesIssue: number | null,
  createdAt: string,
  updatedAt: string,
  labels: string,
];

/** An item as stored, issue or pull request. */
interface Item {
  number: number;
  kind: 'issue' | 'pr';
  title: string;
  body: string;
  state: ItemState;
  author: string;
  createdAt: string;
  updatedAt: string;
  head: string | null;
  base: string | null;
  closesIssue: number | null;
  /** Sorted, like `applyLabelChange` results, so label sets compare equal. */
  labels: string[];
}

interface NewItemRow {
  kind: 'issue' | 'pr';
  title: string;
  body: string;
  author: string;
  now: string;
  head: string | null;
  base: string | null;
  closes_issue: number | null;
}

interface CommentRow {
  id: number;
  author: string;
  body: string;
  created_at: string;
}

interface EventRow {
  id: number;
  type: TrackerEvent['type'];
  label: string | null;
  actor: string;
  created_at: string;
}

export class LocalTracker implements Tracker {
  readonly kind = 'local' as const;
  private readonly file: string;
  private readonly actor: string;
  private readonly onWrite: (() => void) | undefined;
  /** The writable store; null for a read-only tracker, which reads copies instead. */
  private readonly store: Store | null;
  private disposed = false;

  constructor(options: LocalTrackerOptions) {
    this.file = path.resolve(options.path);
    this.actor = options.actor ?? 'loom';
    this.onWrite = options.onWrite;
    const dir = path.dirname(this.file);
    if (!fs.existsSync(dir)) {
      throw new Error(`cannot open the local tracker ${this.file}: directory ${dir} does not exist`);
    }
    if (options.readonly === true) {
      if (!fs.existsSync(this.file)) {
        throw new Error(`cannot open the local tracker ${this.file} read-only: the file does not exist`);
      }
      this.store = null;
      // Fail here on a file that is not SQLite at all, without paying for a copy; the schema
      // version is checked on every read.
      if (readHead(this.file, SQLITE_MAGIC.length)?.equals(SQLITE_MAGIC) !== true && fs.statSync(this.file).size > 0) {
        throw new Error(`cannot open the local tracker ${this.file}: it is not an SQLite database`);
      }
    } else {
      this.store = new Store(openWritable(this.file));
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
  ensureLabels(): Promise<{ created: string[]; updated: string[] }> {
    return Promise.resolve({ created: [], updated: [] });
  }

  snapshot(): Promise<TrackerSnapshot> {
    return this.read((s) => s.snapshot());
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

  getPullRequest(number: number): Promise<PullRequest | null> {
    return this.read((s) => {
      const item = s.item(number);
      return item?.kind === 'pr' ? toPullRequest(item) : null;
    });
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

  comment(number: number, body: string): Promise<Comment> {
    return this.write((s, now) => {
      s.require(number);
      return s.insertComment(number, body, this.actor, now);
    });
  }

  close(number: number, comment?: string): Promise<void> {
    return this.write((s, now) => {
      const item = s.require(number);
      if (comment !== undefined) s.insertComment(number, comment, this.actor, now);
      // A merged PR stays merged: closing it only strips what is left of its workflow labels.
      if (item.state === 'open') s.setState(number, 'closed', 'closed', this.actor, now);
      s.stripWorkflowLabels(item, this.actor, now);
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
  private read<T>(fn: (store: Store) => T): Promise<T> {
    return settle(() => {
      this.assertUsable();
      if (this.store !== null) {
        const store = this.store;
        return store.db.transaction(() => fn(store))();
      }
      return readConsistentCopy(this.file, (db) => db.transaction(() => fn(new Store(db)))());
    });
  }

  /** One `BEGIN IMMEDIATE` transaction; `onWrite` follows its commit if it changed any row. */
  private write<T>(fn: (store: Store, now: string) => T): Promise<T> {
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

/** Queries and row changes on one connection; callers provide the transaction. */
class Store {
  private readonly stmt: Statements;

  constructor(readonly db: Database.Database) {
    this.stmt = prepareStatements(db);
  }

  totalChanges(): number {
    return this.stmt.totalChanges.get() ?? 0;
  }

  item(number: number): Item | undefined {
    const tuple = this.stmt.item.get(number);
    return tuple === undefined ? undefined : toItem(tuple);
  }

  require(number: number): Item {
    const item = this.item(number);
    if (item === undefined) throw new NotFoundError(number);
    return item;
  }

  insertItem(row: NewItemRow): number {
    return Number(this.stmt.insertItem.run(row).lastInsertRowid);
  }

  /** Writes the difference between two label sets, with one event per real change. */
  changeLabels(number: number, current: readonly string[], next: readonly string[], actor: string, now: string): void {
    const removed = current.filter((l) => !next.includes(l));
    const added = next.filter((l) => !current.includes(l));
    for (const name of removed) {
      this.stmt.removeLabel.run(number, name);
      this.stmt.event.run(number, 'unlabeled', name, actor, now);
    }
    for (const name of added) {
      this.stmt.addLabel.run(number, name, now, actor);
      this.stmt.event.run(number, 'labeled', name, actor, now);
    }
    if (removed.length > 0 || added.length > 0) this.stmt.touch.run(now, number);
  }

  stripWorkflowLabels(item: Item, actor: string, now: string): void {
    this.changeLabels(item.number, item.labels, applyLabelChange(item.labels, [], WORKFLOW_LABELS), actor, now);
  }

  setState(number: number, state: ItemState, event: TrackerEvent['type'], actor: string, now: string): void {
    this.stmt.setState.run(state, now, number);
    this.stmt.event.run(number, event, null, actor, now);
  }

  insertComment(number: number, body: string, author: string, now: string): Comment {
    const id = Number(this.stmt.insertComment.run(number, author, body, now).lastInsertRowid);
    this.stmt.touch.run(now, number);
    return { id, author, body, createdAt: now };
  }

  comments(number: number): Comment[] {
    return this.stmt.comments.all(number).map((r) => ({ id: r.id, author: r.author, body: r.body, createdAt: r.created_at }));
  }

  events(number: number): TrackerEvent[] {
    return this.stmt.events
      .all(number)
      .map((r) => ({ id: r.id, type: r.type, label: r.label, actor: r.actor, createdAt: r.created_at }));
  }

  /** One set-based statement per kind, never one query per item: it must scale to thousands. */
  snapshot(): TrackerSnapshot {
    const issues = this.stmt.snapshotIssues.all().map(
      ([number, title, body, author, createdAt, updatedAt, labels]): Issue => ({
        number,
        title,
        body,
        state: 'open',
        labels: labels.split(',').sort(),
        author,
        createdAt,
        updatedAt,
      }),
    );
    const pullRequests = this.stmt.snapshotPullRequests.all().map(
      ([number, title, body, head, base, closesIssue, createdAt, updatedAt, labels]): PullRequest => ({
        number,
        title,
        body,
        state: 'open',
        labels: labels.split(',').sort(),
        head,
        base,
        closesIssue,
        createdAt,
        updatedAt,
      }),
    );
    return { issues, pullRequests };
  }

  listPullRequests(state: ItemState | 'all'): PullRequest[] {
    const where = state === 'all' ? "i.kind = 'pr'" : "i.kind = 'pr' AND i.state = ?";
    const statement = this.db.prepare<string[], ItemTuple>(`${ITEM_SELECT} WHERE ${where} ORDER BY i.number`);
    return statement
      .raw()
      .all(...(state === 'all' ? [] : [state]))
      .map((tuple) => toPullRequest(toItem(tuple)));
  }

  listIssues(filter: IssueFilter): Issue[] {
    const state = filter.state ?? 'open';
    const conditions = ["i.kind = 'issue'"];
    const params: string[] = [];
    if (state !== 'all') {
      conditions.push('i.state = ?');
      params.push(state);
    }
    for (const name of new Set(filter.labels ?? [])) {
      conditions.push('EXISTS (SELECT 1 FROM labels f WHERE f.item = i.number AND f.name = ?)');
      params.push(name);
    }
    const statement = this.db.prepare<string[], ItemTuple>(`${ITEM_SELECT} WHERE ${conditions.join(' AND ')} ORDER BY i.number`);
    return statement
      .raw()
      .all(...params)
      .map((tuple) => toIssue(toItem(tuple)));
  }
}

type Statements = ReturnType<typeof prepareStatements>;

/** Prepared once per connection: preparing on every call would dominate small transactions. */
function prepareStatements(db: Database.Database) {
  return {
    item: db.prepare<[number], ItemTuple>(`${ITEM_SELECT} WHERE i.number = ?`).raw(),
    insertItem: db.prepare<NewItemRow>(
      `INSERT INTO items (kind, title, body, state, author, created_at, updated_at, head, base, closes_issue)
       VALUES (@kind, @title, @body, 'open', @author, @now, @now, @head, @base, @closes_issue)`,
    ),
    addLabel: db.prepare<[number, string, string, string]>(
      'INSERT INTO labels (item, name, added_at, added_by) VALUES (?, ?, ?, ?)',
    ),
    removeLabel: db.prepare<[number, string]>('DELETE FROM labels WHERE item = ? AND name = ?'),
    event: db.prepare<[number, TrackerEvent['type'], string | null, string, string]>(
      'INSERT INTO events (item, type, label, actor, created_at) VALUES (?, ?, ?, ?, ?)',
    ),
    touch: db.prepare<[string, number]>('UPDATE items SET updated_at = ? WHERE number = ?'),
    setState: db.prepare<[ItemState, string, number]>('UPDATE items SET state = ?, updated_at = ? WHERE number = ?'),
    insertComment: db.prepare<[number, string, string, string]>(
      'INSERT INTO comments (item, author, body, created_at) VALUES (?, ?, ?, ?)',
    ),
    comments: db.prepare<[number], CommentRow>(
      'SELECT id, author, body, created_at FROM comments WHERE item = ? ORDER BY id',
    ),
    events: db.prepare<[number], EventRow>(
      'SELECT id, type, label, actor, created_at FROM events WHERE item = ? ORDER BY id',
    ),
    snapshotIssues: db.prepare<[], SnapshotIssueTuple>(SNAPSHOT_ISSUES).raw(),
    snapshotPullRequests: db.prepare<[], SnapshotPullRequestTuple>(SNAPSHOT_PULL_REQUESTS).raw(),
    totalChanges: db.prepare<[], number>('SELECT total_changes()').pluck(),
  };
}

/** Opens (creating if needed) the shared file for reading and writing, with the schema in place. */
function openWritable(file: string): Database.Database {
  const db = new Database(file, { timeout: BUSY_TIMEOUT_MS });
  try {
    setWalMode(db);
    db.pragma('synchronous = NORMAL');
    db.pragma('foreign_keys = ON');
    ensureSchema(db);
    return db;
  } catch (error) {
    db.close();
    throw error;
  }
}

/**
 * Switching to WAL needs an exclusive lock; when several processes create the file at once, SQLite
 * can report SQLITE_BUSY for it without waiting on the busy handler, so retry until the deadline.
 */
function setWalMode(db: Database.Database): void {
  const deadline = Date.now() + BUSY_TIMEOUT_MS;
  for (let attempt = 0; ; attempt++) {
    try {
      const mode = db.pragma('journal_mode = WAL', { simple: true });
      if (mode === 'wal') return;
      throw new Error(`the local tracker could not switch to WAL mode (journal_mode is ${String(mode)})`);
    } catch (error) {
      if (!isBusy(error) || Date.now() > deadline) throw error;
      pause(attempt);
    }
  }
}

/** Creates the schema in one immediate transaction, so racing first opens create it exactly once. */
function ensureSchema(db: Database.Database): void {
  db.transaction(() => {
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version === SCHEMA_VERSION) return;
    if (version > SCHEMA_VERSION) {
      throw new Error(`the local tracker has schema version ${version}; this loom understands up to ${SCHEMA_VERSION}`);
    }
    if (version === 0) {
      db.exec(SCHEMA);
      db.pragma(`user_version = ${SCHEMA_VERSION}`);
    }
  }).immediate();
}

/**
 * Runs `fn` on a private copy of `file` (and its WAL) that is consistent with some committed state
 * of the original; see the file header for why and how. The copy lives in a temp directory that is
 * always removed.
 */
function readConsistentCopy<T>(file: string, fn: (db: Database.Database) => T): T {
  const deadline = Date.now() + BUSY_TIMEOUT_MS;
  for (let attempt = 0; ; attempt++) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'loom-tracker-read-'));
    try {
      const copy = path.join(dir, LOCAL_TRACKER_FILE);
      if (copyConsistently(file, copy)) {
        // The copy is ours: opening it writable lets SQLite replay the copied WAL and lets a file
        // caught before its schema was committed read as an empty tracker.
        const db = new Database(copy, { fileMustExist: true });
        try {
          ensureSchema(db);
          return fn(db);
        } finally {
          db.close();
        }
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
    if (Date.now() > deadline) {
      throw new Error(`could not read a consistent copy of ${file}: it kept changing for ${BUSY_TIMEOUT_MS / 1000} s`);
    }
    pause(attempt);
  }
}

const WAL_HEADER_BYTES = 32;

/** Copies `file` and its WAL to `copy`; false if a concurrent writer may have made the copy inconsistent. */
function copyConsistently(file: string, copy: string): boolean {
  const wal = `${file}-wal`;
  const walBefore = readHead(wal, WAL_HEADER_BYTES);
  const fileBefore = fileIdentity(file);
  if (fileBefore === null) throw new Error(`the local tracker ${file} does not exist`);
  try {
    fs.copyFileSync(file, copy);
    if (walBefore !== null && walBefore.length === WAL_HEADER_BYTES) fs.copyFileSync(wal, `${copy}-wal`);
  } catch (error) {
    if (isMissingFile(error)) return false; // the WAL was deleted by a closing writer: retry
    throw error;
  }
  const walAfter = readHead(wal, WAL_HEADER_BYTES);
  if (walBefore !== null && walBefore.length === WAL_HEADER_BYTES) {
    return walAfter !== null && walAfter.equals(walBefore);
  }
  // No usable WAL: the database file alone is the state, so it must not have changed at all.
  const walStillEmpty = walAfter === null || walAfter.length < WAL_HEADER_BYTES;
  return walStillEmpty && fileIdentity(file) === fileBefore;
}

/** The first `bytes` bytes of a file, or null if it does not exist. */
function readHead(file: string, bytes: number): Buffer | null {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (error) {
    if (isMissingFile(error)) return null;
    throw error;
  }
  try {
    const buffer = Buffer.alloc(bytes);
    const read = fs.readSync(fd, buffer, 0, bytes, 0);
    return buffer.subarray(0, read);
  } finally {
    fs.closeSync(fd);
  }
}

function fileIdentity(file: string): string | null {
  const stat = fs.statSync(file, { bigint: true, throwIfNoEntry: false });
  if (stat === undefined) return null;
  return `${stat.ino}:${stat.size}:${stat.mtimeNs}:${stat.ctimeNs}`;
}

function isMissingFile(error: unknown): boolean {
  return error instanceof Error && (error as NodeJS.ErrnoException).code === 'ENOENT';
}

function isBusy(error: unknown): boolean {
  const code = error instanceof Error ? (error as { code?: unknown }).code : undefined;
  return typeof code === 'string' && (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED'));
}

/** A short synchronous back-off between retries (the retried operations are synchronous). */
function pause(attempt: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, Math.min(1 + attempt, 25));
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

function toItem(tuple: ItemTuple): Item {
  const [number, kind, title, body, state, author, createdAt, updatedAt, head, base, closesIssue, labels] = tuple;
  return {
    number,
    kind,
    title,
    body,
    state,
    author,
    createdAt,
    updatedAt,
    head,
    base,
    closesIssue,
    labels: labels === null ? [] : labels.split(',').sort(),
  };
}

function toIssue(item: Item): Issue {
  return {
    number: item.number,
    title: item.title,
    body: item.body,
    // Issues are never merged (a CHECK constraint holds it); the cast narrows for the type.
    state: item.state as 'open' | 'closed',
    labels: item.labels,
    author: item.author,
    createdAt: item.createdAt,
    updatedAt: item.updatedAt,
  };
}

function toPullRequest(item: Item): PullRequest {
  return {
    number: item.number,
    title: item.title,
    body: item.body,
    state: item.state,
    labels: item.labels,
    head: item.head ?? '',
    base: item.base ?? '',
    closesIssue: item.closesIssue,
    createdAt: item.createdAt,
    updatedAt: item.updatedAt,
  };
}
