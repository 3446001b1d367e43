/**
 * The usage ledger `.loom/usage.jsonl`: one line per agent run (role, runtime, session, tokens,
 * cost, issue), appended by whichever process ran the agent. Appends of one short line with
 * O_APPEND are atomic, so shepherds and roles write it concurrently without a lock; iterations
 * fold new lines into the state file and into the usage index (`usage-index.ts`) incrementally,
 * from a byte offset; budget checks and `loom status` add to the index's sums the lines written
 * since.
 */
import fs from 'node:fs';
import { fileSize } from '../fs/file-size.js';
import type { RunRecord, UsageTotals } from '../core/usage.js';
import { addRun, dayOf, emptyTotals } from '../core/usage.js';

export interface LedgerEntry extends RunRecord {
  issue: number | null;
}

/** Sums of the ledger up to byte `offset`: in all, for one UTC day, and by issue. */
export interface LedgerSums {
  offset: number;
  total: UsageTotals;
  day: UsageTotals;
  byIssue: Record<string, UsageTotals>;
}

export class UsageLedger {
  constructor(readonly file: string) {}

  append(entry: LedgerEntry): void {
    fs.appendFileSync(this.file, `${JSON.stringify(entry)}\n`);
  }

  /** Bytes in the ledger; 0 while there is none. */
  size(): number {
    return fileSize(this.file);
  }

  /** Complete lines written after byte `offset`, and the offset after the last complete one. */
  readFrom(offset: number): { entries: LedgerEntry[]; offset: number } {
    const size = this.size();
    if (size < offset) offset = 0; // the ledger was replaced: start over
    if (size === offset) return { entries: [], offset };
    const fd = fs.openSync(this.file, 'r');
    try {
      const buffer = Buffer.alloc(size - offset);
      fs.readSync(fd, buffer, 0, buffer.length, offset);
      const text = buffer.toString('utf8');
      const end = text.lastIndexOf('\n') + 1;
      const entries: LedgerEntry[] = [];
      for (const line of text.slice(0, end).split('\n')) {
        if (line.trim() === '') continue;
        try {
          entries.push(JSON.parse(line) as LedgerEntry);
        } catch {
          // a torn line from a crashed writer: skipped
        }
      }
      return { entries, offset: offset + Buffer.byteLength(text.slice(0, end)) };
    } finally {
      fs.closeSync(fd);
    }
  }

  /**
   * What was spent in all, on `day`, and by each of `issues`: `from` (sums of the ledger up to its
   * `offset`, kept by the usage index) plus the lines after it; without `from`, or with one past
   * the ledger's end (the ledger was replaced since), the whole ledger.
   */
  sums(day: string, issues: readonly number[], base?: LedgerSums): LedgerSums {
    const from = base !== undefined && base.offset <= this.size() ? base : undefined;
    let total = from?.total ?? emptyTotals();
    let forDay = from?.day ?? emptyTotals();
    const byIssue: Record<string, UsageTotals> = {};
    for (const n of issues) byIssue[String(n)] = from?.byIssue[String(n)] ?? emptyTotals();
    const read = this.readFrom(from?.offset ?? 0);
    for (const entry of read.entries) {
      total = addRun(total, entry);
      if (dayOf(entry.at) === day) forDay = addRun(forDay, entry);
      const mine = entry.issue === null ? undefined : byIssue[String(entry.issue)];
      if (mine !== undefined) byIssue[String(entry.issue)] = addRun(mine, entry);
    }
    return { offset: read.offset, total, day: forDay, byIssue };
  }
}
