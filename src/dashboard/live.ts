/**
 * What keeps the board live: one loop (every `intervalMs`) that tails the event log (each new
 * event goes to the metrics, the per-issue index and every event-stream client), notices changes
 * to the files that make up the board (state file, progress records, lock, stop signal, wake
 * file, limits, usage ledger, config, the local tracker's database), rebuilds the board then and
 * every few seconds anyway (a remote tracker changes without a file here changing), and
 * sends it to the clients when it differs; and, for clients on an issue page, the new lines of
 * that issue's latest run log.
 *
 * It reads only files, so it shows the same whether the daemon runs, stopped or crashed.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type http from 'node:http';
import type { LoomPaths } from '../config/paths.js';
import type { LoomEvent } from '../core/events.js';
import { describeEvent, isIdleIteration } from '../core/events.js';
import type { EventCursor } from '../process/event-log.js';
import { EventLog } from '../process/event-log.js';
import { isProcessAlive } from '../process/process-identity.js';
import { latestRun } from '../process/run-logs.js';
import { fileSize } from '../fs/file-size.js';
import type { Gauges } from './metrics.js';
import { LoomMetrics } from './metrics.js';

/** The board as the dashboard needs it: JSON for the page, plus the gauges of `/metrics`. */
export interface BoardView {
  generated_at: string;
  gauges: Gauges;
  /**
   * The processes the board shows as running (the daemon, the working shepherds): one dying
   * changes no file — a killed daemon leaves its lock — so the loop watches them too.
   */
  processes: number[];
}

/** Rebuild the board at least this often even when no file changed (tracker changes by others), ms. */
const REFRESH_MS = 5_000;
/** Keep-alive comment on idle streams, ms. */
const PING_MS = 15_000;
/** Events kept in memory for the feed, and per issue for its timeline. */
const RECENT_EVENTS = 200;
const EVENTS_PER_ISSUE = 500;
const ISSUES_KEPT = 2_000;
/** A client that does not read this much of its stream is dropped. */
const MAX_BACKLOG_BYTES = 4 * 1024 * 1024;
/** The first log view of an issue page shows at most this much of the log's end. */
const LOG_TAIL_BYTES = 64 * 1024;

/** An event as taken, with its number in this dashboard's stream (the `id` its clients resume from). */
interface Numbered {
  seq: number;
  event: LoomEvent;
}

interface Client {
  res: http.ServerResponse;
  issue: number | null;
  log: { file: string; offset: number } | null;
}

export class LiveBoard<B extends BoardView> {
  readonly metrics: LoomMetrics;
  private readonly log: EventLog;
  private cursor: EventCursor = { ino: 0, offset: 0 };
  private readonly recent: Numbered[] = [];
  private readonly byIssue = new Map<number, Numbered[]>();
  /** Names this process's numbering: an id from another (an earlier dashboard) cannot resume here. */
  private readonly instance = randomBytes(4).toString('hex');
  private seq = 0;
  /** The number of the newest event no longer kept for the feed, and for each issue's stream. */
  private recentFloor = 0;
  private readonly issueFloor = new Map<number, number>();
  private readonly clients = new Set<Client>();
  private current: B | null = null;
  private currentKey = '';
  private lastBuilt = 0;
  private lastPrint = '';
  private timer: NodeJS.Timeout | null = null;
  private pinger: NodeJS.Timeout | null = null;
  private stopped = false;
  private building: Promise<void> | null = null;
  /** Events were taken outside a tick (a request caught up): the next tick rebuilds the board. */
  private pendingRebuild = false;

  constructor(
    private readonly paths: LoomPaths,
    private readonly buildBoard: () => Promise<B>,
    private readonly intervalMs = 250,
  ) {
    this.log = new EventLog(paths.events);
    this.metrics = new LoomMetrics(() => this.current?.gauges ?? null);
  }

  /** Folds the kept event log and builds the first board. */
  async start(): Promise<void> {
    const all = this.log.readAll();
    for (const e of all.events) this.take(e);
    this.cursor = all.cursor;
    await this.rebuild();
    this.timer = setTimeout(() => void this.tick(), this.intervalMs);
    this.pinger = setInterval(() => {
      for (const c of this.clients) this.write(c, ': ping\n\n');
    }, PING_MS);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.pinger) clearInterval(this.pinger);
    for (const c of this.clients) c.res.end();
    this.clients.clear();
  }

  /**
   * The board as of now: the events written so far taken, and the board rebuilt when they or
   * its files changed since it was built. For answers that must not lag the loop (`/metrics`,
   * `/api/v1/board`).
   */
  async fresh(): Promise<B> {
    // A build under way may have read the files before a change this answer must show: it ends first.
    if (this.building !== null) await this.building.catch(() => undefined);
    const took = this.catchUp();
    const print = this.fingerprint();
    if (this.current === null || took > 0 || this.pendingRebuild || print !== this.lastPrint) {
      this.pendingRebuild = false;
      this.lastPrint = print;
      await this.rebuild();
    }
    return this.current as B;
  }

  /** Issue `n`'s events (newest `EVENTS_PER_ISSUE`). */
  issueEvents(n: number): LoomEvent[] {
    return (this.byIssue.get(n) ?? []).map((x) => x.event);
  }

  /**
   * Serves the event stream: `hello` (whether it resumes), the board now, the events — after the
   * one its `Last-Event-ID` names when this process sent that one and still keeps every event
   * since (a reconnect then misses and repeats nothing), else the last 100 — then everything new.
   */
  subscribe(req: http.IncomingMessage, res: http.ServerResponse, issue: number | null): void {
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    res.write('retry: 1000\n\n');
    const client: Client = { res, issue, log: null };
    this.clients.add(client);
    req.on('close', () => this.clients.delete(client));
    const history = issue === null ? this.recent : (this.byIssue.get(issue) ?? []);
    const floor = issue === null ? this.recentFloor : (this.issueFloor.get(issue) ?? 0);
    const last = this.resumeFrom(req.headers['last-event-id']);
    const resumed = last !== null && last >= floor;
    this.send(client, 'hello', { resumed });
    if (this.current !== null) this.send(client, 'state', this.current);
    for (const x of resumed ? history.filter((h) => h.seq > last) : history.slice(-100)) this.sendEvent(client, x);
    if (issue !== null) {
      const run = latestRun(this.paths.logs, this.log, { issue });
      if (run !== null) {
        const size = fileSize(run.file);
        client.log = { file: run.file, offset: Math.max(0, size - LOG_TAIL_BYTES) };
        this.send(client, 'log', { file: path.basename(run.file), reset: true, text: '' });
        this.pumpLog(client);
      }
    }
  }

  /** The event number a `Last-Event-ID` of this process names; null for none or another process's. */
  private resumeFrom(header: string | string[] | undefined): number | null {
    const match = typeof header === 'string' ? /^([0-9a-f]+)-(\d+)$/.exec(header.trim()) : null;
    if (match === null || match[1] !== this.instance) return null;
    const n = Number(match[2]);
    return n <= this.seq ? n : null;
  }

  private take(e: LoomEvent): Numbered {
    this.metrics.fold(e);
    const x: Numbered = { seq: (this.seq += 1), event: e };
    if (!isIdleIteration(e)) this.recent.push(x);
    if (this.recent.length > RECENT_EVENTS) this.recentFloor = this.recent.shift()?.seq ?? this.recentFloor;
    if (typeof e.issue === 'number') {
      const list = this.byIssue.get(e.issue) ?? [];
      this.byIssue.delete(e.issue); // re-inserted as the most recently active
      list.push(x);
      if (list.length > EVENTS_PER_ISSUE) this.issueFloor.set(e.issue, list.shift()?.seq ?? 0);
      this.byIssue.set(e.issue, list);
      if (this.byIssue.size > ISSUES_KEPT) {
        const oldest = this.byIssue.keys().next();
        // Its events are forgotten: a stream of it cannot resume from before now.
        if (oldest.done !== true) {
          this.byIssue.delete(oldest.value);
          this.issueFloor.set(oldest.value, this.seq);
        }
      }
    }
    return x;
  }

  /**
   * Takes every event written since the last look (metrics, per-issue index, stream clients) and
   * returns how many. The loop calls it each tick; `/metrics` and the issue route call it before
   * answering, so what they say includes every event written before the request, not only those
   * the last tick saw.
   */
  catchUp(): number {
    let next: ReturnType<EventLog['readSince']>;
    try {
      next = this.log.readSince(this.cursor);
    } catch {
      return 0; // a torn read: the next look tries again
    }
    this.cursor = next.cursor;
    for (const e of next.events) {
      const x = this.take(e);
      for (const c of this.clients) {
        if (c.issue !== null && e.issue !== c.issue) continue;
        this.sendEvent(c, x);
        // A new run of the issue: follow its log from the start.
        if (c.issue !== null && e.type === 'task.started' && e.kind === 'shepherd' && typeof e.output_file === 'string') {
          c.log = { file: e.output_file, offset: 0 };
          this.send(c, 'log', { file: path.basename(e.output_file), reset: true, text: '' });
        }
      }
    }
    if (next.events.length > 0) this.pendingRebuild = true;
    return next.events.length;
  }

  private async tick(): Promise<void> {
    if (this.stopped) return;
    try {
      const took = this.catchUp();
      const print = this.fingerprint();
      if (took > 0 || this.pendingRebuild || print !== this.lastPrint || Date.now() - this.lastBuilt > REFRESH_MS) {
        this.pendingRebuild = false;
        this.lastPrint = print;
        await this.rebuild();
      }
      for (const c of this.clients) this.pumpLog(c);
    } catch {
      // A torn read or a tracker hiccup: the next tick tries again.
    } finally {
      if (!this.stopped) this.timer = setTimeout(() => void this.tick(), this.intervalMs);
    }
  }

  private rebuild(): Promise<void> {
    // A build already under way read the files before this change: another follows it.
    if (this.building !== null) {
      this.pendingRebuild = true;
      return this.building;
    }
    this.building = (async () => {
      try {
        const board = await this.buildBoard();
        this.lastBuilt = Date.now();
        const key = steadyKey(board);
        this.current = board;
        if (key !== this.currentKey) {
          this.currentKey = key;
          for (const c of this.clients) this.send(c, 'state', board);
        }
      } finally {
        this.building = null;
      }
    })();
    return this.building;
  }

  /** Sizes and times of every file the board is made of, and whether its processes live: it changes when the board may have. */
  private fingerprint(): string {
    const p = this.paths;
    const parts: string[] = [];
    // The local tracker's files too: a write by any client changes the database or its WAL.
    for (const file of [p.state, p.lock, p.stopSignal, p.wake, p.config, p.usage, p.trackerDb, `${p.trackerDb}-wal`]) parts.push(stamp(file));
    for (const dir of [p.progress, p.limits]) {
      let names: string[] = [];
      try {
        names = fs.readdirSync(dir);
      } catch {
        // not there yet
      }
      for (const name of names.sort()) parts.push(`${name}:${stamp(path.join(dir, name))}`);
    }
    for (const pid of this.current?.processes ?? []) parts.push(`${pid}:${isProcessAlive(pid) ? 'up' : 'gone'}`);
    return parts.join('|');
  }

  private pumpLog(c: Client): void {
    if (c.log === null) return;
    const size = fileSize(c.log.file);
    if (size <= c.log.offset) return;
    const fd = fs.openSync(c.log.file, 'r');
    try {
      const buffer = Buffer.alloc(Math.min(size - c.log.offset, LOG_TAIL_BYTES));
      const got = fs.readSync(fd, buffer, 0, buffer.length, c.log.offset);
      // Whole UTF-8 characters only: a cut one waits for the next read.
      const end = wholeChars(buffer, got);
      if (end === 0) return;
      c.log.offset += end;
      this.send(c, 'log', { file: path.basename(c.log.file), reset: false, text: buffer.subarray(0, end).toString('utf8') });
    } finally {
      fs.closeSync(fd);
    }
  }

  /** An event with its line of text (what `loom events` prints), and its id to resume after it. */
  private sendEvent(c: Client, x: Numbered): void {
    if (isIdleIteration(x.event)) return;
    this.send(c, 'event', { ...x.event, text: describeEvent(x.event) }, `${this.instance}-${x.seq}`);
  }

  private send(c: Client, type: string, data: unknown, id?: string): void {
    this.write(c, `${id === undefined ? '' : `id: ${id}\n`}event: ${type}\ndata: ${JSON.stringify(data)}\n\n`);
  }

  private write(c: Client, text: string): void {
    if (c.res.writableLength > MAX_BACKLOG_BYTES) {
      c.res.destroy();
      this.clients.delete(c);
      return;
    }
    c.res.write(text);
  }
}

function stamp(file: string): string {
  try {
    const st = fs.statSync(file);
    return `${st.size}:${st.mtimeMs}`;
  } catch {
    return '-';
  }
}

/** The length of the longest prefix of `buf[0..n)` that ends on a character boundary. */
function wholeChars(buf: Buffer, n: number): number {
  let i = n - 1;
  while (i >= 0 && i > n - 4 && ((buf[i] ?? 0) & 0xc0) === 0x80) i -= 1;
  if (i < 0) return n;
  const lead = buf[i] ?? 0;
  const len = lead < 0x80 ? 1 : lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
  return i + len <= n ? n : i;
}

/** The board without what changes by itself every second (times since, the build time). */
function steadyKey(board: BoardView): string {
  return JSON.stringify(board, (key, value: unknown) => (key === 'generated_at' || key.endsWith('_ms') ? undefined : value));
}
