/**
 * `LocalStore`: the local tracker's queries and row changes on one SQLite connection.
 *
 * Invariants owned here:
 * - Callers provide the transaction: a store method never begins or commits one, so a
 *   `LocalTracker` write is exactly one immediate transaction however many rows it changes.
 * - A label change writes the difference between two sets with one event per real change;
 *   a no-op writes nothing.
 * - The snapshot is one set-based statement per kind, never one query per item: it must scale
 *   to thousands of items. A bounded snapshot (`pagedSnapshot`) costs the same whatever the
 *   backlog: counts come from the tables the schema's triggers keep (./local-database.ts), the
 *   issues it reads from index walks that stop after a page.
 */
import type Database from 'better-sqlite3';
import { PIPELINE_LIST_LIMIT } from '../../core/daemon-state.js';
import { ISSUE_STATE_LABELS, Label, PROPOSAL_LABELS, WORKFLOW_LABELS, applyLabelChange } from '../../core/labels.js';
import { NotFoundError, type Comment, type Issue, type IssueFilter, type ItemState, type PullRequest, type SnapshotPage, type TrackerEvent, type TrackerSnapshot } from '../../core/tracker-model.js';

/**
 * Item reads (one item, issue lists) select these columns, labels included, as raw arrays
 * (`ItemTuple`): one statement per read and no per-row object keys. Labels are joined with
 * commas, which `validateLabelName` forbids inside a name.
 */
const ITEM_SELECT = `SELECT i.number, i.kind, i.title, i.body, i.state, i.author, i.created_at, i.updated_at,
    i.head, i.base, i.closes_issue, i.closed_as, (SELECT group_concat(l.name, ',') FROM labels l WHERE l.item = i.number)
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
  closedAs: 'completed' | 'not-planned' | null,
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

/** The issues of a bounded snapshot, by number (a JSON array), as `SNAPSHOT_ISSUES` reads them. */
const PAGE_ISSUES = `SELECT i.number, i.title, i.body, i.author, i.created_at, i.updated_at,
    (SELECT group_concat(l.name, ',') FROM labels l WHERE l.item = i.number)
  FROM items i WHERE i.number IN (SELECT value FROM json_each(?)) AND i.kind = 'issue' AND ${SNAPSHOT_FILTER} ORDER BY i.number`;

/** Open issues carrying a label, lowest number first (`labels_name` holds them in that order). */
const OPEN_ISSUES_WITH_LABEL = `SELECT l.item FROM labels l CROSS JOIN items i ON i.number = l.item
  WHERE l.name = ? AND i.state = 'open' AND i.kind = 'issue' ORDER BY l.item LIMIT ?`;

const IS_READY = `EXISTS (SELECT 1 FROM labels r WHERE r.item = i.number AND r.name = '${Label.issue}')`;
const IS_URGENT = `EXISTS (SELECT 1 FROM labels u WHERE u.item = i.number AND u.name = '${Label.urgent}')`;

/** Urgent ready issues in build order, from the urgent label's entries (few, as a rule). */
const URGENT_READY = `SELECT i.number FROM labels g CROSS JOIN items i ON i.number = g.item
  WHERE g.name = '${Label.urgent}' AND i.state = 'open' AND i.kind = 'issue' AND ${IS_READY}
  ORDER BY i.created_at, i.number LIMIT ?`;

/**
 * The other ready issues in build order, two ways to the same rows: walking the open issues oldest
 * first until enough are ready (cheap when ready issues are common), or sorting the ready label's
 * entries (cheap when they are rare). `pagedSnapshot` picks the cheaper from the counts.
 */
const READY_BY_AGE = `SELECT i.number FROM items i INDEXED BY items_open_order
  WHERE i.state = 'open' AND i.kind = 'issue' AND ${IS_READY} AND NOT ${IS_URGENT}
  ORDER BY i.created_at, i.number LIMIT ?`;
const READY_BY_LABEL = `SELECT i.number FROM labels g CROSS JOIN items i ON i.number = g.item
  WHERE g.name = '${Label.issue}' AND i.state = 'open' AND i.kind = 'issue' AND NOT ${IS_URGENT}
  ORDER BY i.created_at, i.number LIMIT ?`;

/** The issues open PRs with a Loom label close: the support roles ask whether each is held. */
const CLOSED_BY_OPEN_PRS = `SELECT DISTINCT i.closes_issue FROM items i
  WHERE i.kind = 'pr' AND ${SNAPSHOT_FILTER} AND i.closes_issue IS NOT NULL`;

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
  /** How a closed issue was closed (null: open, or closed before this was recorded). */
  closedAs: 'completed' | 'not-planned' | null;
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

/** Queries and row changes on one connection; callers provide the transaction. */
export class LocalStore {
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

  /** Sets the state (and, for an issue, how it was closed: null when opened again). */
  setState(number: number, state: ItemState, event: TrackerEvent['type'], actor: string, now: string, closedAs: 'completed' | 'not-planned' | null = null): void {
    this.stmt.setState.run(state, closedAs, now, number);
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
    const issues = this.stmt.snapshotIssues.all().map(toSnapshotIssue);
    return { issues, pullRequests: this.snapshotPullRequests().pullRequests };
  }

  private snapshotPullRequests(): { pullRequests: PullRequest[] } {
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
    return { pullRequests };
  }

  /**
   * The bounded snapshot (`SnapshotPage`): the issues Loom owns or may dispatch next, and counts
   * for the rest. PRs are all read, as in `snapshot`: they are Loom's own work in progress.
   */
  pagedSnapshot(page: number): TrackerSnapshot {
    const size = Math.max(1, Math.floor(page));
    const counts: Record<string, number> = {};
    for (const [name, open] of this.stmt.labelCounts.all()) if (open > 0) counts[name] = open;
    const openIssues = this.stmt.openIssueCount.get() ?? 0;
    const numbers = new Set<number>(this.stmt.openWithLabel.all(Label.building, -1));
    for (const n of this.stmt.closedByOpenPrs.all()) numbers.add(n);
    const urgent = this.stmt.urgentReady.all(size);
    const readyCount = counts[Label.issue] ?? 0;
    // Walking by age reads about size × open / ready rows, sorting the label's entries all ready ones.
    const byLabel = readyCount * readyCount <= size * openIssues;
    const rest = urgent.length < size ? (byLabel ? this.stmt.readyByLabel : this.stmt.readyByAge).all(size - urgent.length) : [];
    for (const n of [...urgent, ...rest]) numbers.add(n);
    for (const label of PROPOSAL_LABELS) for (const n of this.stmt.openWithLabel.all(label, size)) numbers.add(n);
    const lowest: Record<string, number[]> = {};
    for (const label of ISSUE_STATE_LABELS) lowest[label] = this.stmt.openWithLabel.all(label, PIPELINE_LIST_LIMIT);
    for (const n of (lowest[Label.blocked] ?? []).slice(0, size)) numbers.add(n);
    const pageInfo: SnapshotPage = { size, counts, lowest, moreReady: readyCount > urgent.length + rest.length };
    const { pullRequests } = this.snapshotPullRequests();
    const issues = this.stmt.pageIssues.all(JSON.stringify([...numbers])).map(toSnapshotIssue);
    return { issues, pullRequests, page: pageInfo };
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
    setState: db.prepare<[ItemState, string | null, string, number]>("UPDATE items SET state = ?, closed_as = CASE WHEN kind = 'issue' THEN ? END, updated_at = ? WHERE number = ?"),
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
    labelCounts: db.prepare<[], [string, number]>("SELECT name, open FROM label_counts WHERE kind = 'issue'").raw(),
    openIssueCount: db.prepare<[], number>("SELECT n FROM item_counts WHERE kind = 'issue' AND state = 'open'").pluck(),
    openWithLabel: db.prepare<[string, number], number>(OPEN_ISSUES_WITH_LABEL).pluck(),
    closedByOpenPrs: db.prepare<[], number>(CLOSED_BY_OPEN_PRS).pluck(),
    urgentReady: db.prepare<[number], number>(URGENT_READY).pluck(),
    readyByAge: db.prepare<[number], number>(READY_BY_AGE).pluck(),
    readyByLabel: db.prepare<[number], number>(READY_BY_LABEL).pluck(),
    pageIssues: db.prepare<[string], SnapshotIssueTuple>(PAGE_ISSUES).raw(),
  };
}

function toSnapshotIssue([number, title, body, author, createdAt, updatedAt, labels]: SnapshotIssueTuple): Issue {
  return { number, title, body, state: 'open', labels: labels.split(',').sort(), author, createdAt, updatedAt };
}

function toItem(tuple: ItemTuple): Item {
  const [number, kind, title, body, state, author, createdAt, updatedAt, head, base, closesIssue, closedAs, labels] = tuple;
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
    closedAs,
    labels: labels === null ? [] : labels.split(',').sort(),
  };
}

export function toIssue(item: Item): Issue {
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
    ...(item.state === 'closed' && item.closedAs !== null ? { closedAs: item.closedAs } : {}),
  };
}

export function toPullRequest(item: Item): PullRequest {
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
