/**
 * `loom worker --redis URL`: runs shepherd jobs from the queue (queue/shepherd-queue.ts) in this
 * clone, for a daemon running elsewhere with the `bullmq` executor (docs/distributed.md).
 *
 * Each job is one `loom shepherd N` child of this worker — the same process, lifecycle and
 * progress record as a local shepherd — started with the job's fence, so it takes the issue over
 * from `origin` (branch and checkpoint), pushes both after every phase, and hands the issue over
 * when stopped for shutdown. The worker reports the shepherd's record as the job's progress (the
 * heartbeat the daemon shows), ends a shepherd whose heartbeat stalls, and registers itself (host,
 * jobs, last seen) for `loom status`.
 *
 * Draining (SIGTERM, or `loom stop` on the daemon): no new job; running ones get `shutdownGrace`
 * to finish, then are stopped (work pushed) and go back to the queue for another worker.
 */
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { LoomConfig } from '../core/config-model.js';
import type { LoomPaths } from '../config/paths.js';
import { isTerminal } from '../core/progress.js';
import { formatDuration } from '../core/duration.js';
import { loomCommand, logFileFor } from '../process/launcher.js';
import { newTaskId, startingRecord } from '../process/new-task.js';
import { ProgressStore } from '../process/progress-store.js';
import { terminateGroup } from '../process/wait.js';
import type { JobOutcome, RunningJob } from '../queue/shepherd-queue.js';
import { QueueWorker } from '../queue/shepherd-queue.js';
import { redact } from '../queue/queue-errors.js';
import { git, GitError } from '../git/git.js';
import { dropAgentHome, dropIdleAgentHomes } from '../runtimes/agent-homes.js';
import { pruneLogsHourly } from '../process/run-logs.js';
import { refreshUsageIndex } from '../usage/usage-index.js';

export interface WorkerOptions {
  paths: LoomPaths;
  config: LoomConfig;
  redis: string;
  concurrency: number;
  log: (line: string) => void;
  /** How long a job's lock lasts without renewal (a dead worker's jobs move on after it), ms. */
  lockDuration?: number;
}

interface Running {
  issue: number;
  child: ChildProcess;
  /** Set when this worker stopped the shepherd to hand its issue over. */
  handOver: boolean;
  /** Set when the job's lock was lost: the job is no longer this worker's. */
  lost: boolean;
}

/** How long a stopping worker with no job left waits for the queue to confirm its close, ms. */
const CLOSE_WAIT_MS = 10_000;

/** Default lock: a worker silent for this long is taken for dead, ms. */
const DEFAULT_LOCK_MS = 30_000;

/** How long the look at `origin` before a worker starts may take, s. */
const ORIGIN_LOOK_S = 30;

/**
 * Why this clone cannot serve as a worker's, or null: every job's shepherd fetches the issue's
 * branch and checkpoint from `origin` and pushes them there, so a clone with no `origin`, or one
 * that does not answer (a moved repository, no credentials, no network), would take jobs only to
 * fail them. Asked without a terminal prompt and with a time limit.
 */
export async function originProblem(root: string): Promise<string | null> {
  let url: string;
  try {
    url = await git(root, ['remote', 'get-url', 'origin']);
  } catch {
    return "this clone has no `origin` remote; a worker fetches and pushes the issue branches there: git remote add origin <the repository's URL>";
  }
  const env: NodeJS.ProcessEnv = { ...process.env, GIT_TERMINAL_PROMPT: '0', GIT_SSH_COMMAND: process.env.GIT_SSH_COMMAND ?? `ssh -o BatchMode=yes -o ConnectTimeout=${ORIGIN_LOOK_S}`, GIT_HTTP_LOW_SPEED_LIMIT: '1', GIT_HTTP_LOW_SPEED_TIME: String(ORIGIN_LOOK_S) };
  for (const key of ['GIT_DIR', 'GIT_WORK_TREE', 'GIT_INDEX_FILE', 'GIT_OBJECT_DIRECTORY']) delete env[key];
  try {
    await git(root, ['ls-remote', '--heads', 'origin'], { env, english: true });
    return null;
  } catch (error) {
    const said = error instanceof GitError ? (error.stderr.split('\n').find((l) => /^(fatal|error):/.test(l)) ?? error.stderr.split('\n').find((l) => l.trim() !== '') ?? '').replace(/^(fatal|error):\s*/, '').trim() : (error as Error).message;
    return `origin (${redact(url)}) is unreachable: ${said || 'git ls-remote failed'}; a worker fetches and pushes the issue branches there`;
  }
}

export async function runWorker(o: WorkerOptions): Promise<number> {
  const { paths, config, log } = o;
  const name = `${os.hostname()}:${process.pid}`;
  const progress = new ProgressStore(paths.progress);
  const running = new Map<string, Running>();
  const beat = Math.min(config.heartbeatInterval, 5_000);
  const lockMs = o.lockDuration ?? DEFAULT_LOCK_MS;
  let draining: { since: number; reason: string } | null = null;
  let exiting = false;

  const stopChild = (r: Running, handOver: boolean) => {
    r.handOver = r.handOver || handOver;
    if (r.child.exitCode === null && r.child.signalCode === null) r.child.kill('SIGTERM');
  };

  // Jobs this worker finished, by id: one finished while Redis was out of reach could not be
  // recorded, lost its lock, and comes back; its outcome is given again, not its shepherd run.
  const finished = new Map<string, JobOutcome>();
  const runJob = async (job: RunningJob): Promise<JobOutcome> => {
    const issue = job.data.issue;
    const earlier = finished.get(job.id);
    if (earlier !== undefined) {
      log(`job ${job.id}: #${issue} was finished here already (its result could not reach Redis then); reporting it again`);
      return earlier;
    }
    const taskId = newTaskId();
    const now = new Date();
    const logFile = logFileFor(paths.logs, 'shepherd', `issue-${issue}`, now);
    const file = progress.shepherdFile(issue);
    progress.write(file, startingRecord({ kind: 'shepherd', task_id: taskId, issue, role: null, output_file: logFile, now }));
    fs.mkdirSync(path.dirname(logFile), { recursive: true });
    const out = fs.openSync(logFile, 'a');
    const { command, args } = loomCommand();
    const child = spawn(command, [...args, 'shepherd', String(issue), '--task', taskId, '--fence', job.fence, ...(job.data.forceMerge ? ['--force-merge'] : [])], {
      cwd: paths.root,
      stdio: ['pipe', out, out],
      env: process.env,
    });
    fs.closeSync(out);
    child.on('error', () => undefined);
    child.stdin?.on('error', () => undefined);
    const r: Running = { issue, child, handOver: false, lost: false };
    running.set(job.id, r);
    log(`job ${job.id}: shepherd #${issue} started (fence ${job.fence}; log ${logFile})`);
    // A fleet draining already: this job gets the rest of the grace, like the others.
    const report = setInterval(() => {
      const record = progress.read(file);
      if (record === null || record.task_id !== taskId) return;
      job.report(record);
      const heartbeat = Date.parse(record.heartbeat);
      if (record.status === 'running' && Date.now() - heartbeat > config.stallTimeout) {
        log(`job ${job.id}: shepherd #${issue} stopped responding (no heartbeat for ${formatDuration(Date.now() - heartbeat)}); ending it`);
        child.kill('SIGKILL');
        if (record.agent_pid) void terminateGroup(record.agent_pid, record.agent_pid_start, 1_000);
      }
    }, beat);
    const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
    clearInterval(report);
    running.delete(job.id);
    const record = progress.read(file);
    const mine = record !== null && record.task_id === taskId;
    if (mine) progress.remove(file);
    if (r.lost) throw new Error(`the lock of job ${job.id} was lost; another worker owns #${issue} now`);
    if (mine && record.status === 'stopped' && r.handOver) {
      log(`job ${job.id}: #${issue} handed over (${record.message ?? 'stopped'})`);
      return { kind: 'hand-over' };
    }
    if (mine && isTerminal(record.status)) {
      log(`job ${job.id}: #${issue} ${record.status}${record.message ? `: ${record.message}` : ''}`);
      // Its shepherd's work here is done (merged, or an approved PR left to the daemon's Champion):
      // the agent homes this clone kept for it are of no further use (a closed issue's went already).
      if (record.status === 'completed' || record.status === 'no-changes') dropAgentHome(paths, issue, (line) => log(`job ${job.id}: ${line}`), 'its job is done');
      const outcome: JobOutcome = { kind: 'done', record };
      finished.set(job.id, outcome);
      if (finished.size > 1_000) finished.delete(finished.keys().next().value as string);
      return outcome;
    }
    log(`job ${job.id}: shepherd #${issue} exited (code ${code ?? 'signal'}) without finishing; log ${logFile}`);
    throw new Error(`the shepherd of #${issue} exited (code ${code ?? 'signal'}) without finishing; log ${logFile} on ${os.hostname()}`);
  };

  const worker = new QueueWorker({
    url: o.redis,
    name,
    concurrency: o.concurrency,
    lockDuration: lockMs,
    run: runJob,
    onLockLost: (ids) => {
      for (const id of ids) {
        const r = running.get(id);
        if (r === undefined) continue;
        log(`job ${id}: its lock was lost (Redis unreachable too long, or this worker stalled); stopping #${r.issue}, another worker resumes it`);
        r.lost = true;
        stopChild(r, false);
      }
    },
    onConnection: (state, message) => log(state === 'up' ? `Redis at ${redact(o.redis)} is available again; ${running.size} job(s) kept running` : `Redis at ${redact(o.redis)} is unavailable (${message}); running jobs carry on, new ones wait`),
  });

  const startDrain = (reason: string) => {
    if (draining !== null) return;
    draining = { since: Date.now(), reason };
    log(`draining (${reason}): no new jobs; ${running.size} running job(s) get ${formatDuration(config.shutdownGrace)} to finish, then go back to the queue`);
  };
  const onSignal = () => {
    if (exiting) {
      // A second signal: hand the jobs over now.
      for (const r of running.values()) stopChild(r, true);
      return;
    }
    exiting = true;
    startDrain('asked to stop');
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);

  log(`loom worker ${name} in ${paths.root}: taking shepherd jobs from ${redact(o.redis)} (concurrency ${o.concurrency})`);
  worker.start();

  let fleetDrain: string | null = null;
  try {
    for (;;) {
      const asked = await worker.drainRequested();
      if (asked !== fleetDrain) {
        fleetDrain = asked;
        if (asked !== null) startDrain(`the daemon asked the fleet to drain at ${asked}`);
        else if (!exiting && draining !== null) {
          draining = null;
          log('the fleet drain is over; taking jobs again');
        }
      }
      const d = draining as { since: number; reason: string } | null;
      if (d !== null && Date.now() - d.since >= config.shutdownGrace) for (const r of running.values()) stopChild(r, true);
      // This clone's run logs go after `logRetention`, as the daemon's do (one stat an hour); so do,
      // in the same look, the agent homes no run used as long (a worker learns of no issue's close).
      const now = Date.now();
      if (pruneLogsHourly(paths.logs, config.logRetention, now, log)) {
        dropIdleAgentHomes(paths, config.logRetention, now, new Set([...running.values()].map((r) => r.issue)), log);
        // No iteration runs in a clone: the worker keeps the usage index its shepherds' budget checks read.
        if (fs.existsSync(paths.usage)) {
          const problem = refreshUsageIndex(paths.usageIndex, paths.usage);
          if (problem !== null) log(problem);
        }
      }
      await worker.register({ concurrency: o.concurrency, lock_ms: lockMs, beat_ms: beat, jobs: [...running.values()].map((r) => r.issue), draining: d !== null });
      if (exiting) break;
      await new Promise((resolve) => setTimeout(resolve, beat));
    }
    // Stop taking jobs; running jobs end (finished, or handed over after the grace).
    const closing = worker.close();
    let idleSince: number | null = null;
    for (;;) {
      const done = await Promise.race([closing.then(() => true), new Promise<boolean>((resolve) => setTimeout(() => resolve(false), beat))]);
      if (done) break;
      // No job left to hand back: BullMQ's close waits for a Redis that is away (maybe for good);
      // the worker does not. A job it could not hand back is the stalled-job check's, once its lock runs out.
      idleSince = running.size > 0 ? null : (idleSince ?? Date.now());
      if (idleSince !== null && (!worker.available || Date.now() - idleSince >= CLOSE_WAIT_MS)) {
        log(`Redis at ${redact(o.redis)} ${worker.available ? 'did not confirm the close' : 'is unavailable'}; stopping without it`);
        break;
      }
      const d = draining as { since: number } | null;
      if (d !== null && Date.now() - d.since >= config.shutdownGrace) for (const r of running.values()) stopChild(r, true);
      await worker.register({ concurrency: o.concurrency, lock_ms: lockMs, beat_ms: beat, jobs: [...running.values()].map((r) => r.issue), draining: true });
    }
    await worker.register({ concurrency: o.concurrency, lock_ms: lockMs, beat_ms: beat, jobs: [], draining: true }, true);
    log(`worker ${name} stopped`);
    return 0;
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    worker.disconnect();
  }
}
