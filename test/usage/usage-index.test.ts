// The usage index sums the ledger by issue and day up to an offset; a budget check or `loom status`
// takes its sums and reads only the ledger lines after it, so they cost the same with a ledger of
// months as with a day's. Where the index cannot answer (none yet, a replaced ledger, a file that is
// not a database) the ledger alone answers, and every answer equals a sum over the whole ledger.
import Database from 'better-sqlite3';
import fc from 'fast-check';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { indexUsage, usageSpent } from '../../src/usage/usage-index.js';
import { UsageLedger, type LedgerEntry } from '../../src/usage/usage-ledger.js';
import { countBytesRead } from '../helpers/bytes-read.js';

const dirs: string[] = [];
afterEach(() => {
  vi.restoreAllMocks();
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

function files(): { ledger: UsageLedger; index: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'loom-usage-'));
  dirs.push(dir);
  return { ledger: new UsageLedger(path.join(dir, 'usage.jsonl')), index: path.join(dir, 'usage-index.db') };
}

const run = (issue: number | null, at: string, cost = 1): LedgerEntry => ({
  at,
  issue,
  role: 'builder',
  runtime: 'claude',
  model: null,
  session_id: 's',
  outcome: 'success',
  input_tokens: 100,
  output_tokens: 10,
  cached_input_tokens: 5,
  cost_usd: cost,
  priced: false,
});

/** Bytes read from `file` while `fn` runs (a failing `fn` leaves the count to afterEach's restore). */
function bytesReadFrom<T>(file: string, fn: () => T): { value: T; bytes: number } {
  const counting = countBytesRead(file);
  const value = fn();
  return { value, bytes: counting.stop() };
}

const day = '2026-12-01';
const at = (i: number) => new Date(Date.parse(`${day}T00:00:00.000Z`) + i * 1000).toISOString();

describe('usage index', () => {
  it('a reader takes the sums up to the last indexing and reads only the lines after it', () => {
    const { ledger, index } = files();
    for (let i = 0; i < 5000; i += 1) ledger.append(run(i % 300, at(i)));
    expect(indexUsage(index, ledger.file)).toBe(5000);
    const tail = [run(7, at(6000), 2), run(null, at(6001), 3)];
    for (const entry of tail) ledger.append(entry);

    const { value, bytes } = bytesReadFrom(ledger.file, () => usageSpent(index, ledger.file, day, [7, 8, 9999]));
    expect(bytes).toBe(tail.reduce((n, e) => n + Buffer.byteLength(`${JSON.stringify(e)}\n`), 0));
    // The same as the whole ledger summed.
    expect(value).toEqual(ledger.sums(day, [7, 8, 9999]));
    expect(value.total).toMatchObject({ runs: 5002, cost_usd: 5005, input_tokens: 500200 });
    expect(value.byIssue['7']).toEqual({ input_tokens: 1800, output_tokens: 180, cached_input_tokens: 90, cost_usd: 19, runs: 18 });
    expect(value.byIssue['9999']).toMatchObject({ runs: 0 });
    // Indexed again, nothing is left to read.
    expect(indexUsage(index, ledger.file)).toBe(2);
    expect(bytesReadFrom(ledger.file, () => usageSpent(index, ledger.file, day, [7])).bytes).toBe(0);
  });

  it('indexing the same lines twice counts them once; the index of a replaced ledger starts over', () => {
    const { ledger, index } = files();
    for (let i = 0; i < 3; i += 1) ledger.append(run(1, at(i)));
    indexUsage(index, ledger.file);
    expect(indexUsage(index, ledger.file)).toBe(0);
    expect(usageSpent(index, ledger.file, day, [1]).byIssue['1']).toMatchObject({ runs: 3, cost_usd: 3 });
    fs.writeFileSync(ledger.file, `${JSON.stringify(run(1, at(9), 5))}\n`);
    // Before the next indexing the reader sees the index is ahead of the ledger and reads the ledger.
    expect(usageSpent(index, ledger.file, day, [1]).total).toMatchObject({ runs: 1, cost_usd: 5 });
    indexUsage(index, ledger.file);
    expect(usageSpent(index, ledger.file, day, [1]).byIssue['1']).toMatchObject({ runs: 1, cost_usd: 5 });
  });

  it('without an index, or with a file that is not one, the whole ledger answers and nothing is written', () => {
    const { ledger, index } = files();
    ledger.append(run(4, at(0), 2));
    expect(usageSpent(index, ledger.file, day, [4]).byIssue['4']).toMatchObject({ runs: 1, cost_usd: 2 });
    expect(fs.existsSync(index)).toBe(false);
    fs.writeFileSync(index, 'not a database');
    expect(usageSpent(index, ledger.file, day, [4]).byIssue['4']).toMatchObject({ runs: 1, cost_usd: 2 });
    expect(fs.readFileSync(index, 'utf8')).toBe('not a database');
  });

  it('a reader answers while an indexing holds the write lock, from the sums committed before it', () => {
    const { ledger, index } = files();
    ledger.append(run(1, at(0)));
    indexUsage(index, ledger.file);
    ledger.append(run(1, at(1)));
    // A writer holding the index's write lock: the reader still answers, from the committed sums
    // and the ledger after their offset.
    const writer = new Database(index);
    writer.exec('BEGIN IMMEDIATE');
    writer.prepare("UPDATE meta SET value = value WHERE key = 'offset'").run();
    try {
      expect(usageSpent(index, ledger.file, day, [1]).byIssue['1']).toMatchObject({ runs: 2 });
    } finally {
      writer.exec('ROLLBACK');
      writer.close();
    }
  });

  it('whatever lines were indexed when, the answer equals the whole ledger summed', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ issue: fc.option(fc.integer({ min: 1, max: 6 }), { nil: null }), day: fc.integer({ min: 0, max: 3 }), cost: fc.integer({ min: 0, max: 1000 }), indexAfter: fc.boolean() }), { maxLength: 40 }),
        fc.integer({ min: 0, max: 3 }),
        (runs, askDay) => {
          const { ledger, index } = files();
          for (const r of runs) {
            ledger.append(run(r.issue, `2026-12-0${r.day + 1}T12:00:00.000Z`, r.cost / 100));
            if (r.indexAfter) indexUsage(index, ledger.file);
          }
          const asked = `2026-12-0${askDay + 1}`;
          expect(usageSpent(index, ledger.file, asked, [1, 2, 3, 4, 5, 6])).toEqual(ledger.sums(asked, [1, 2, 3, 4, 5, 6]));
        },
      ),
      { numRuns: 60 },
    );
  });
});
