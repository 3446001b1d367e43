/**
 * The shepherd queue on Redis (BullMQ), for the `bullmq` executor (docs/distributed.md): the
 * daemon enqueues one job per dispatched issue, `loom worker`s take them. Only this folder names
 * BullMQ or Redis.
 *
 * - A job's id is `issue-<N>-attempt-<A>`: adding a job whose id exists adds nothing, so a job is
 *   never enqueued twice.
 * - A worker holds a lock on each job it runs, renewed while it runs; a worker that dies loses it,
 *   and BullMQ's stalled-job check puts the job back for another worker.
 * - A worker reports its shepherd's progress record as the job's progress (the heartbeat), and
 *   itself in the worker registry (a hash: host, jobs, last seen).
 * - `drain` (a key holding the time it was asked) makes every worker hand its jobs over.
 */
import os from 'node:os';
import { Queue, WaitingError, Worker } from 'bullmq';
import type { Job } from 'bullmq';
import { Redis } from 'ioredis';
import type { RedisOptions } from 'ioredis';
import { QueueUnavailableError } from './queue-errors.js';
import type { Progress } from '../core/progress.js';
import { asProgress } from '../core/progress.js';
import { FORGET_WORKER_MS } from '../core/worker-liveness.js';

const QUEUE = 'loom-shepherds';
const REGISTRY = `${QUEUE}:workers`;
const COORDINATOR = `${QUEUE}:coordinator`;
const DRAIN = `${QUEUE}:drain`;

export interface ShepherdJobData {
  issue: number;
  attempt: number;
  forceMerge: boolean;
}

export const jobIdFor = (issue: number, attempt: number): string => `issue-${issue}-attempt-${attempt}`;

export type JobState = 'waiting' | 'active' | 'completed' | 'failed' | 'missing';

/** One job as the daemon sees it. */
export interface JobView {
  id: string;
  issue: number;
  attempt: number;
  state: JobState;
  /** The worker running (or that ran) it. */
  worker: string | null;
  /** The shepherd's record last reported by its worker (its heartbeat), or its final record. */
  progress: Progress | null;
  failedReason: string | null;
  enqueuedAt: string;
}

/** A worker as it reports itself. */
export interface WorkerInfo {
  name: string;
  host: string;
  pid: number;
  concurrency: number;
  /** Issues it runs now. */
  jobs: number[];
  draining: boolean;
  last_seen: string;
  /** How long its job locks last without renewal, ms (older workers: absent). */
  lock_ms?: number;
  /** How often it reports itself, ms (older workers: absent). */
  beat_ms?: number;
}

/** The daemon coordinating a queue: its clone (`id`: host and directory), and since when. */
export interface CoordinatorInfo {
  id: string;
  host: string;
  root: string;
  pid: number;
  since: string;
}


function fromJob(job: Job<ShepherdJobData>, state: JobState): JobView {
  const result = state === 'completed' ? asProgress(job.returnvalue) : null;
  const reported = typeof job.progress === 'object' && job.progress !== null ? asProgress((job.progress as { record?: unknown }).record) : null;
  return {
    id: job.id ?? '',
    issue: job.data.issue,
    attempt: job.data.attempt,
    state,
    worker: job.processedBy ?? null,
    progress: result ?? reported,
    failedReason: job.failedReason || null,
    enqueuedAt: new Date(job.timestamp).toISOString(),
  };
}

/** The daemon's side: fail-fast calls (an unavailable Redis throws `QueueUnavailableError` at once). */
export class ShepherdQueue {
  private readonly redis: Redis;
  private readonly queue: Queue<ShepherdJobData>;

  constructor(private readonly url: string) {
    const options: RedisOptions = { maxRetriesPerRequest: 1, enableOfflineQueue: false, connectTimeout: 2_000, lazyConnect: true, retryStrategy: () => null };
    this.redis = new Redis(url, options);
    this.redis.on('error', () => undefined);
    this.queue = new Queue<ShepherdJobData>(QUEUE, { connection: this.redis });
    this.queue.on('error', () => undefined);
  }

  private ready(): Promise<void> {
    const redis = this.redis;
    if (redis.status === 'ready') return Promise.resolve();
    if (redis.status === 'end' || redis.status === 'close') return Promise.reject(new Error('connection closed'));
    if (redis.status === 'wait') redis.connect().catch(() => undefined);
    return new Promise((resolve, reject) => {
      const done = (error?: Error) => {
        clearTimeout(timer);
        redis.off('ready', onReady);
        redis.off('error', onError);
        redis.off('end', onEnd);
        if (error) reject(error);
        else resolve();
      };
      const onReady = () => done();
      const onError = (error: Error) => done(error);
      const onEnd = () => done(new Error('connection closed'));
      const timer = setTimeout(() => done(new Error('no answer within 3 s')), 3_000);
      redis.on('ready', onReady);
      redis.on('error', onError);
      redis.on('end', onEnd);
    });
  }

  private async call<T>(fn: () => Promise<T>): Promise<T> {
    try {
      await this.ready();
      return await fn();
    } catch (error) {
      throw new QueueUnavailableError(this.url, error);
    }
  }

  /** Adds the job for `data` unless one with its id exists; returns the id. */
  enqueue(data: ShepherdJobData): Promise<string> {
    const id = jobIdFor(data.issue, data.attempt);
    return this.call(async () => {
      await this.queue.add('shepherd', data, { jobId: id, attempts: 1, removeOnComplete: false, removeOnFail: false });
      return id;
    });
  }

  /** Every job in the queue, by state. */
  jobs(): Promise<JobView[]> {
    return this.call(async () => {
      const views: JobView[] = [];
      for (const [types, state] of [
        [['waiting', 'prioritized', 'delayed'], 'waiting'],
        [['active'], 'active'],
        [['completed'], 'completed'],
        [['failed'], 'failed'],
      ] as const) {
        for (const job of (await this.queue.getJobs([...types])) as Job<ShepherdJobData>[]) if (job?.data) views.push(fromJob(job, state));
      }
      return views;
    });
  }

  /** Forgets a finished job (an active job's lock keeps it: it is left alone). */
  remove(id: string): Promise<void> {
    return this.call(async () => {
      await this.queue.remove(id).catch(() => 0);
    });
  }

  workers(now: number): Promise<WorkerInfo[]> {
    return this.call(async () => {
      const all = await this.redis.hgetall(REGISTRY);
      const workers: WorkerInfo[] = [];
      for (const [name, text] of Object.entries(all)) {
        try {
          const info = JSON.parse(text) as WorkerInfo;
          if (now - Date.parse(info.last_seen) > FORGET_WORKER_MS) await this.redis.hdel(REGISTRY, name);
          else workers.push(info);
        } catch {
          await this.redis.hdel(REGISTRY, name);
        }
      }
      return workers.sort((a, b) => a.name.localeCompare(b.name));
    });
  }

  /**
   * Takes, or renews, the coordinator's claim on this queue for `holder` (one daemon per queue:
   * a second one would adopt the first's jobs and undo its drain); the claim lapses `ttlMs` after
   * its last renewal (a daemon gone). Returns null when `holder` has it, else who has it.
   */
  coordinate(holder: CoordinatorInfo, ttlMs: number): Promise<CoordinatorInfo | null> {
    return this.call(async () => {
      const text = JSON.stringify(holder);
      if ((await this.redis.set(COORDINATOR, text, 'PX', ttlMs, 'NX')) === 'OK') return null;
      const current = await this.redis.get(COORDINATOR);
      let other: CoordinatorInfo | null = null;
      try {
        other = current === null ? null : (JSON.parse(current) as CoordinatorInfo);
      } catch {
        other = null;
      }
      if (other !== null && other.id !== holder.id) return other;
      // Ours (renewed, keeping when it was first taken), or lapsed or unreadable meanwhile: taken.
      await this.redis.set(COORDINATOR, JSON.stringify({ ...holder, since: other?.since ?? holder.since }), 'PX', ttlMs);
      return null;
    });
  }

  /**
   * Asks the fleet to drain (`since`: the time of the request) — no new jobs, running ones handed
   * over after the workers' grace — or, with null, to work again.
   */
  drain(since: string | null): Promise<void> {
    return this.call(async () => {
      if (since === null) {
        await this.redis.del(DRAIN);
        await this.queue.resume();
      } else {
        await this.redis.set(DRAIN, since, 'NX');
        await this.queue.pause();
      }
    });
  }

  async close(): Promise<void> {
    await this.queue.close().catch(() => undefined);
    this.redis.disconnect();
  }
}

/** How long a worker waits for one of its own Redis calls (the registry, the drain key), ms. */
const CALL_WAIT_MS = 2_000;

/** `call`'s answer, or `fallback` when it fails or takes longer than `CALL_WAIT_MS`. */
function bounded<T>(call: Promise<T>, fallback: T): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<T>((resolve) => {
    timer = setTimeout(() => resolve(fallback), CALL_WAIT_MS);
  });
  return Promise.race([call.catch(() => fallback), late]).finally(() => clearTimeout(timer));
}

/** A job as a worker runs it. */
export interface RunningJob {
  id: string;
  data: ShepherdJobData;
  /** Orders the runs of one issue: `<enqueued at>.<times started>` (steps/remote-checkpoint.ts). */
  fence: string;
  /** Reports the shepherd's record as the job's progress; never throws, never waits for Redis. */
  report(record: Progress): void;
}

/** What a job's run came to: its final record, or a hand-over (back to the queue for another worker). */
export type JobOutcome = { kind: 'done'; record: Progress } | { kind: 'hand-over' };

export interface QueueWorkerOptions {
  url: string;
  name: string;
  concurrency: number;
  /** How long a job's lock lasts without renewal, ms (renewed at half). */
  lockDuration: number;
  run: (job: RunningJob) => Promise<JobOutcome>;
  /** Jobs whose lock could not be renewed: another worker may get them. */
  onLockLost: (ids: string[]) => void;
  /** Redis went away (`down`) or came back (`up`). */
  onConnection: (state: 'up' | 'down', message: string) => void;
}

/** The worker's side: a BullMQ worker that keeps waiting for Redis when it goes away. */
export class QueueWorker {
  private readonly redis: Redis;
  private readonly worker: Worker<ShepherdJobData, Progress>;
  private up = true;

  constructor(private readonly o: QueueWorkerOptions) {
    this.redis = new Redis(o.url, { maxRetriesPerRequest: null, retryStrategy: (times) => Math.min(times * 200, 2_000) });
    this.redis.on('error', (error: Error) => this.connection('down', error.message));
    this.redis.on('ready', () => this.connection('up', 'connected'));
    this.worker = new Worker<ShepherdJobData, Progress>(QUEUE, (job, token) => this.process(job, token), {
      connection: this.redis,
      name: o.name,
      concurrency: o.concurrency,
      lockDuration: o.lockDuration,
      stalledInterval: Math.max(1_000, Math.floor(o.lockDuration / 2)),
      // A job survives any number of dead workers: each resumes it from its checkpoint.
      maxStalledCount: 1_000,
      autorun: false,
    });
    // BullMQ's errors are not all about the connection (a lock this worker could not renew
    // because it was frozen, say): only the connection's own state says whether Redis is away.
    this.worker.on('error', (error: Error) => this.connection('down', error.message));
    this.worker.on('lockRenewalFailed', (ids: string[]) => o.onLockLost(ids));
  }

  /** Whether Redis answers: the connection is ready (once `ready` after an error, up again). */
  private get connected(): boolean {
    return this.redis.status === 'ready';
  }

  private connection(state: 'up' | 'down', message: string): void {
    if (state === 'down' && this.connected) return;
    if ((state === 'up') === this.up) return;
    this.up = state === 'up';
    this.o.onConnection(state, message);
  }

  private async process(job: Job<ShepherdJobData, Progress>, token: string | undefined): Promise<Progress> {
    let pending = false;
    const running: RunningJob = {
      id: job.id ?? '',
      data: job.data,
      fence: `${job.timestamp}.${job.attemptsStarted}`,
      report: (record) => {
        if (pending || !this.connected) return;
        pending = true;
        job
          .updateProgress({ record, worker: this.o.name, at: new Date().toISOString() })
          .catch(() => undefined)
          .finally(() => {
            pending = false;
          });
      },
    };
    const outcome = await this.o.run(running);
    if (outcome.kind === 'done') return outcome.record;
    await job.moveToWait(token);
    throw new WaitingError();
  }

  start(): void {
    void this.worker.run().catch((error: Error) => this.connection('down', error.message));
  }

  /** Takes no new job; resolves once the running ones have ended (their hand-over included). */
  async close(): Promise<void> {
    await this.worker.close();
  }

  /** Whether Redis answers (as last seen by the connection). */
  get available(): boolean {
    return this.connected;
  }

  /**
   * Whether the fleet was asked to drain, and since when (null: no, or Redis did not answer
   * within `CALL_WAIT_MS`: a command sent as Redis goes away waits for it to come back, and the
   * worker's loop must go on meanwhile — to drain on SIGTERM, above all).
   */
  async drainRequested(): Promise<string | null> {
    if (!this.connected) return null;
    return bounded(this.redis.get(DRAIN), null);
  }

  /** Writes this worker's registry entry (skipped while Redis is away; not waited for longer than `CALL_WAIT_MS`). */
  async register(info: Omit<WorkerInfo, 'name' | 'host' | 'pid' | 'last_seen'>, gone = false): Promise<void> {
    if (!this.connected) return;
    const entry: WorkerInfo = { name: this.o.name, host: os.hostname(), pid: process.pid, last_seen: new Date().toISOString(), ...info };
    await bounded<unknown>(gone ? this.redis.hdel(REGISTRY, this.o.name) : this.redis.hset(REGISTRY, this.o.name, JSON.stringify(entry)), undefined);
  }

  disconnect(): void {
    this.redis.disconnect();
  }
}
