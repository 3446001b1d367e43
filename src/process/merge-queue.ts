/**
 * The merge queue: one ticket file per merger (shepherd or Champion) from the moment it asks for
 * `.loom/merge.lock` until it lets go, in `.loom/merge-queue/`. `loom status` and `loom why` read
 * it to show which PRs wait for the lock, in what order, and what the holder is doing.
 *
 * Invariant owned here: the order shown is the order served — a waiter takes the lock only when
 * no live ticket is older than its own (first come, first served). A ticket whose process is
 * gone (a crash) neither holds the queue up nor shows; the next `join` removes it.
 */
import fs from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../fs/atomic-file.js';
import { listDir } from '../fs/list-dir.js';
import { isProcessAlive, processStart } from './process-identity.js';

/** What a queued merger is doing: waiting for the lock, or holding it (and at which step). */
export type MergeStep = 'waiting' | 'merging' | 'waiting on checks' | 'verifying the base';

export interface MergeTicket {
  pr: number;
  issue: number;
  by: 'shepherd' | 'champion';
  pid: number;
  pid_start: string | null;
  /** When it joined the queue (ISO 8601). */
  since: string;
  step: MergeStep;
  /** With `waiting on checks`: which checks are still pending. */
  detail?: string;
  /** Orders tickets that joined in the same millisecond. */
  seq: string;
}

let counter = 0;

export class MergeQueue {
  constructor(readonly dir: string) {}

  /** Adds this process's ticket for `pr`; returns its file (for `update` and `leave`). */
  join(entry: { pr: number; issue: number; by: 'shepherd' | 'champion' }, now = new Date()): string {
    fs.mkdirSync(this.dir, { recursive: true });
    for (const { file, ticket } of this.read()) if (!isProcessAlive(ticket.pid, ticket.pid_start)) fs.rmSync(file, { force: true });
    counter += 1;
    const seq = `${String(now.getTime()).padStart(15, '0')}-${String(process.pid).padStart(8, '0')}-${String(counter).padStart(6, '0')}`;
    const file = path.join(this.dir, `${seq}.json`);
    const ticket: MergeTicket = { ...entry, pid: process.pid, pid_start: processStart(process.pid), since: now.toISOString(), step: 'waiting', seq };
    writeFileAtomic(file, JSON.stringify(ticket), { durable: false });
    return file;
  }

  /** Records what the holder is doing now. */
  update(file: string, step: MergeStep, detail?: string): void {
    const ticket = this.readOne(file);
    if (ticket === null) return;
    const next: MergeTicket = { ...ticket, step };
    if (detail === undefined) delete next.detail;
    else next.detail = detail;
    writeFileAtomic(file, JSON.stringify(next), { durable: false });
  }

  leave(file: string): void {
    fs.rmSync(file, { force: true });
  }

  /** Whether the ticket at `file` is the oldest live one (its turn for the lock). */
  isFirst(file: string): boolean {
    return this.list()[0]?.seq === path.basename(file, '.json');
  }

  /** Live tickets, first served first. Read-only. */
  list(): MergeTicket[] {
    return this.read()
      .map((t) => t.ticket)
      .filter((t) => isProcessAlive(t.pid, t.pid_start))
      .sort((a, b) => (a.seq < b.seq ? -1 : a.seq > b.seq ? 1 : 0));
  }

  private read(): { file: string; ticket: MergeTicket }[] {
    const result: { file: string; ticket: MergeTicket }[] = [];
    for (const name of listDir(this.dir)) {
      if (!name.endsWith('.json')) continue;
      const file = path.join(this.dir, name);
      const ticket = this.readOne(file);
      if (ticket !== null) result.push({ file, ticket });
    }
    return result;
  }

  private readOne(file: string): MergeTicket | null {
    try {
      const ticket = JSON.parse(fs.readFileSync(file, 'utf8')) as MergeTicket;
      return typeof ticket.pid === 'number' && typeof ticket.pr === 'number' ? { ...ticket, seq: path.basename(file, '.json') } : null;
    } catch {
      return null;
    }
  }
}
