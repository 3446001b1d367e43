/**
 * The local tracker's SQLite file: its name, how a writable connection to it is opened, and its
 * schema.
 *
 * Invariants owned here:
 * - A writable connection runs in WAL mode with a 10 s busy timeout, so any number of processes
 *   (daemon, shepherds, `loom` commands) may have the file open at once.
 * - Racing first opens are safe: the schema is created in one `BEGIN IMMEDIATE` transaction, so
 *   exactly once; a file with a newer schema than this Loom understands is refused.
 */
import { TrackerStorageError } from '../tracker-errors.js';
import Database from 'better-sqlite3';

/** File name of the local tracker inside the `.loom` directory. */
export const LOCAL_TRACKER_FILE = 'tracker.db';
const SCHEMA_VERSION = 3;
/** The first 16 bytes of every SQLite database file. */
export const SQLITE_MAGIC = Buffer.from('SQLite format 3\0', 'latin1');
/** How long a connection waits for another process's lock (and copies retry), ms. */
export const BUSY_TIMEOUT_MS = 10_000;

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
    -- How a closed issue was closed (version 2): 'completed' or 'not-planned'; NULL while open.
    closed_as    TEXT CHECK (closed_as IN ('completed', 'not-planned')),
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
 * Version 3: what the snapshot needs without reading every open issue. Counts of open items per
 * kind and of open items per label, kept by triggers in the transaction of each change (a label
 * on a closed item is not counted; closing or reopening moves all its labels out or in), and
 * an index walking open issues in dispatch order (oldest first). A count row may reach 0; it is
 * never removed.
 */
const COUNTS_SCHEMA = `
  CREATE INDEX items_open_order ON items (state, kind, created_at, number);
  CREATE TABLE item_counts (
    kind  TEXT NOT NULL,
    state TEXT NOT NULL,
    n     INTEGER NOT NULL,
    PRIMARY KEY (kind, state)
  ) WITHOUT ROWID;
  CREATE TABLE label_counts (
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    open INTEGER NOT NULL,
    PRIMARY KEY (name, kind)
  ) WITHOUT ROWID;
  CREATE TRIGGER items_count_insert AFTER INSERT ON items BEGIN
    INSERT INTO item_counts (kind, state, n) VALUES (NEW.kind, NEW.state, 1)
      ON CONFLICT (kind, state) DO UPDATE SET n = n + 1;
  END;
  CREATE TRIGGER items_count_state AFTER UPDATE OF state ON items WHEN OLD.state <> NEW.state BEGIN
    UPDATE item_counts SET n = n - 1 WHERE kind = OLD.kind AND state = OLD.state;
    INSERT INTO item_counts (kind, state, n) VALUES (NEW.kind, NEW.state, 1)
      ON CONFLICT (kind, state) DO UPDATE SET n = n + 1;
    INSERT INTO label_counts (name, kind, open)
      SELECT name, NEW.kind, CASE WHEN NEW.state = 'open' THEN 1 ELSE -1 END FROM labels
      WHERE item = NEW.number AND (OLD.state = 'open') <> (NEW.state = 'open')
      ON CONFLICT (name, kind) DO UPDATE SET open = open + excluded.open;
  END;
  CREATE TRIGGER labels_count_insert AFTER INSERT ON labels BEGIN
    INSERT INTO label_counts (name, kind, open)
      SELECT NEW.name, kind, 1 FROM items WHERE number = NEW.item AND state = 'open'
      ON CONFLICT (name, kind) DO UPDATE SET open = open + 1;
  END;
  CREATE TRIGGER labels_count_delete AFTER DELETE ON labels BEGIN
    UPDATE label_counts SET open = open - 1
      WHERE name = OLD.name AND kind = (SELECT kind FROM items WHERE number = OLD.item AND state = 'open');
  END;
`;

/** Fills version 3's counts from the rows a version 1 or 2 file already has. */
const FILL_COUNTS = `
  INSERT INTO item_counts (kind, state, n) SELECT kind, state, count(*) FROM items GROUP BY kind, state;
  INSERT INTO label_counts (name, kind, open)
    SELECT l.name, i.kind, count(*) FROM labels l JOIN items i ON i.number = l.item
    WHERE i.state = 'open' GROUP BY l.name, i.kind;
`;

/** Opens (creating if needed) the shared file for reading and writing, with the schema in place. */
export function openLocalDatabase(file: string): Database.Database {
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

/**
 * Creates (or upgrades: version 1 gains `items.closed_as`, versions 1 and 2 the counts of
 * version 3) the schema in one immediate
 * transaction, so racing first opens create it exactly once.
 */
export function ensureSchema(db: Database.Database): void {
  db.transaction(() => {
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version === SCHEMA_VERSION) return;
    if (version > SCHEMA_VERSION) {
      throw new TrackerStorageError(`the local tracker has schema version ${version}; this loom understands up to ${SCHEMA_VERSION}: upgrade Loom`);
    }
    if (version === 0) db.exec(SCHEMA + COUNTS_SCHEMA);
    // Version 1 → 2: how a closed issue was closed. Issues closed before count as completed (NULL).
    if (version === 1) db.exec("ALTER TABLE items ADD COLUMN closed_as TEXT CHECK (closed_as IN ('completed', 'not-planned'))");
    // Version 2 → 3: the counts and the dispatch-order index, filled from the rows already there.
    if (version === 1 || version === 2) db.exec(COUNTS_SCHEMA + FILL_COUNTS);
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
  }).immediate();
}

function isBusy(error: unknown): boolean {
  const code = error instanceof Error ? (error as { code?: unknown }).code : undefined;
  return typeof code === 'string' && (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED'));
}

/** A short synchronous back-off between retries (the retried operations are synchronous). */
export function pause(attempt: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, Math.min(1 + attempt, 25));
}
