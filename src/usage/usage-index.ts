/**
 * `.loom/usage-index.db`: the usage ledger summed by issue and by UTC day, up to a byte offset of
 * the ledger. The ledger stays the record; the index is a cache of its sums that each iteration
 * brings up to date in one transaction (the new lines' sums with the offset after them, so a crash
 * leaves the old sums with the old offset, and a writer that comes second finds the lines already
 * counted). Readers — the budget check before every agent run, `loom status` — open it read-only,
 * take the rows they need and add the ledger lines after its offset: what they read follows the
 * runs since the last iteration, not the ledger's length. Without an index (no iteration has run
 * yet) they read the whole ledger, as the ledger alone answers.
 */
import type Database from 'better-sqlite3';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import type { UsageTotals } from '../core/usage.js';
import { addRun, dayOf, emptyTotals } from '../core/usage.js';
import type { LedgerSums } from './usage-ledger.js';
import { UsageLedger } from './usage-ledger.js';

/** The sums each row keeps, `UsageTotals`' fields. */
const FIELDS = ['input_tokens', 'output_tokens', 'cached_input_tokens', 'cost_usd', 'runs'] as const;
const SUMS = FIELDS.map((f) => `${f} ${f === 'cost_usd' ? 'REAL' : 'INTEGER'} NOT NULL`).join(', ');
const SCHEMA = `
  CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
  CREATE TABLE IF NOT EXISTS by_issue (issue INTEGER PRIMARY KEY, ${SUMS});
  CREATE TABLE IF NOT EXISTS by_day (day TEXT PRIMARY KEY, ${SUMS});
`;
const COLUMNS = FIELDS.join(', ');
/** How long a reader or a second writer waits for a write in progress, ms (a write takes milliseconds). */
const BUSY_MS = 10_000;

/** better-sqlite3, loaded at the first use: a status or an agent run without an index never loads it. */
function sqlite(): typeof Database {
  return createRequire(import.meta.url)('better-sqlite3') as typeof Database;
}

/**
 * Adds the ledger lines written since the index's offset to its sums; creates the index (from the
 * whole ledger) when missing, and starts it over when the ledger is shorter than its offset (the
 * ledger was replaced). Returns how many runs it added.
 */
export function indexUsage(indexFile: string, ledgerFile: string): number {
  const db = new (sqlite())(indexFile, { timeout: BUSY_MS });
  try {
    db.exec(SCHEMA);
    const ledger = new UsageLedger(ledgerFile);
    const add = (table: 'by_issue' | 'by_day', key: string) => {
      const statement = db.prepare(`INSERT INTO ${table} (${key}, ${COLUMNS}) VALUES (?, ${FIELDS.map(() => '?').join(', ')}) ON CONFLICT(${key}) DO UPDATE SET ${FIELDS.map((f) => `${f} = ${f} + excluded.${f}`).join(', ')}`);
      return (k: number | string, t: UsageTotals) => statement.run(k, ...FIELDS.map((f) => t[f]));
    };
    const addIssue = add('by_issue', 'issue');
    const addDay = add('by_day', 'day');
    const run = db.transaction((): number => {
      let offset = Number((db.prepare("SELECT value FROM meta WHERE key = 'offset'").get() as { value: number } | undefined)?.value ?? 0);
      if (ledger.size() < offset) {
        db.exec('DELETE FROM by_issue; DELETE FROM by_day;');
        offset = 0;
      }
      const read = ledger.readFrom(offset);
      const issues = new Map<number, UsageTotals>();
      const days = new Map<string, UsageTotals>();
      for (const entry of read.entries) {
        if (entry.issue !== null) issues.set(entry.issue, addRun(issues.get(entry.issue) ?? emptyTotals(), entry));
        days.set(dayOf(entry.at), addRun(days.get(dayOf(entry.at)) ?? emptyTotals(), entry));
      }
      for (const [issue, t] of issues) addIssue(issue, t);
      for (const [day, t] of days) addDay(day, t);
      db.prepare("INSERT INTO meta (key, value) VALUES ('offset', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value").run(read.offset);
      return read.entries.length;
    });
    return run.immediate();
  } finally {
    db.close();
  }
}

/**
 * `indexUsage` for the daemon's iteration and a worker's clone: what went wrong, or null. The index
 * is a cache of the ledger's sums: one that cannot be read is removed, to be rebuilt from the
 * ledger next time; until then its readers read the ledger itself.
 */
export function refreshUsageIndex(indexFile: string, ledgerFile: string): string | null {
  try {
    indexUsage(indexFile, ledgerFile);
    return null;
  } catch (error) {
    const code = (error as { code?: string }).code ?? '';
    const unreadable = code === 'SQLITE_NOTADB' || code.startsWith('SQLITE_CORRUPT');
    if (unreadable) fs.rmSync(indexFile, { force: true });
    return `usage index ${indexFile}: ${(error as Error).message}${unreadable ? '; removed, the next iteration rebuilds it from the ledger' : ''}`;
  }
}

/**
 * What was spent in all, on `day`, and by each of `issues`: the index's sums plus the ledger lines
 * after its offset; the whole ledger where there is no index yet or the ledger was replaced since
 * (`UsageLedger.sums`).
 * Writes nothing.
 */
export function usageSpent(indexFile: string, ledgerFile: string, day: string, issues: readonly number[] = []): LedgerSums {
  return new UsageLedger(ledgerFile).sums(day, issues, readIndex(indexFile, day, issues) ?? undefined);
}

/** The index's sums for `day` and `issues`, read in one transaction; null without an index. */
function readIndex(indexFile: string, day: string, issues: readonly number[]): LedgerSums | null {
  if (!fs.existsSync(indexFile)) return null;
  let db: Database.Database;
  try {
    db = new (sqlite())(indexFile, { readonly: true, fileMustExist: true, timeout: BUSY_MS });
  } catch {
    return null; // removed meanwhile, or not a database: the ledger alone answers
  }
  try {
    return db.transaction((): LedgerSums | null => {
      const offset = (db.prepare("SELECT value FROM meta WHERE key = 'offset'").get() as { value: number } | undefined)?.value;
      if (offset === undefined) return null;
      const row = (r: unknown): UsageTotals => (r === undefined ? emptyTotals() : rounded(r as UsageTotals));
      const byIssue: Record<string, UsageTotals> = {};
      const oneIssue = db.prepare(`SELECT ${COLUMNS} FROM by_issue WHERE issue = ?`);
      for (const n of issues) byIssue[String(n)] = row(oneIssue.get(n));
      const total = db.prepare(`SELECT ${FIELDS.map((f) => `COALESCE(SUM(${f}), 0) AS ${f}`).join(', ')} FROM by_day`).get();
      return { offset: Number(offset), total: row(total), day: row(db.prepare(`SELECT ${COLUMNS} FROM by_day WHERE day = ?`).get(day)), byIssue };
    })();
  } catch {
    return null; // an index this build cannot read: the ledger alone answers
  } finally {
    db.close();
  }
}

/** Sums as the ledger's arithmetic gives them: costs to the millionth of a dollar. */
function rounded(t: UsageTotals): UsageTotals {
  return { input_tokens: t.input_tokens, output_tokens: t.output_tokens, cached_input_tokens: t.cached_input_tokens, cost_usd: Math.round(t.cost_usd * 1e6) / 1e6, runs: t.runs };
}
