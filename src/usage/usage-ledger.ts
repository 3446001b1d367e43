/**
 * The usage ledger `.loom/usage.jsonl`: one line per agent run (role, runtime, session, tokens,
 * cost, issue), appended by whichever process ran the agent. Appends of one short line with
 * O_APPEND are atomic, so shepherds and roles write it concurrently without a lock; iterations
 * fold new lines into the state file incrementally (from a byte offset), and budget checks read
 * the totals for one issue and one day.
 */
import fs from 'node:fs';
import type { RunRecord, UsageTotals } from '../core/usage.js';
import { addRun, dayOf, emptyTotals } from '../core/usage.js';

export interface LedgerEntry extends RunRecord {
  issue: number | null;
}

export class UsageLedger {
  constructor(readonly file: string) {}

  append(entry: LedgerEntry): void {
    fs.appendFileSync(this.file, `${JSON.stringify(entry)}\n`);
  }

  /** Complete lines written after byte `offset`, and the offset after the last complete one. */
  readFrom(offset: number): { entries: LedgerEntry[]; offset: number } {
    let size: number;
    try {
      size = fs.statSync(this.file).size;
    } catch {
      return { entries: [], offset: 0 };
    }
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

  /** Totals for one issue (all time) and for one UTC day (all issues and roles). */
  totals(issue: number | null, day: string): { issue: UsageTotals; day: UsageTotals } {
    let forIssue = emptyTotals();
    let forDay = emptyTotals();
    for (const entry of this.readFrom(0).entries) {
      if (issue !== null && entry.issue === issue) forIssue = addRun(forIssue, entry);
      if (dayOf(entry.at) === day) forDay = addRun(forDay, entry);
    }
    return { issue: forIssue, day: forDay };
  }
}
