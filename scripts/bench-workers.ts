// Workers fed by a Redis queue (docs/distributed.md): issues per minute with 1 worker vs 3
// workers, measured in one run with sleep agents (every builder sleeps the same fixed time), and
// the queue's own overhead per job (enqueued → running on a worker). Uses the same fleet as the
// end-to-end tests: a bare origin, the GitHub fake, a redis-server of its own, one clone per worker.
// Run by `npm run bench -- --only workers` (`--issues N`, `--sleep S` to change the load).
import { Queue } from 'bullmq';
import { Fleet, writes } from '../test/e2e/fleet.js';
import { loomAsync } from '../test/helpers/loom-repo.js';

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};
const issues = arg('issues', 9);
const sleep = arg('sleep', 8);

interface Run {
  workers: number;
  seconds: number;
  perMinute: number;
  overheads: number[];
}

async function run(workers: number): Promise<Run> {
  // One shepherd per worker: every job is enqueued when a worker is free, so enqueue → running is
  // the queue's own latency, not time spent waiting for capacity.
  const fleet = await Fleet.create({ maxShepherds: workers });
  const queue = new Queue('loom-shepherds', { connection: { url: fleet.redis.url } });
  const overhead = new Map<string, number>();
  let polling = true;
  const poll = (async () => {
    while (polling) {
      for (const job of await queue.getJobs(['active', 'completed']).catch(() => [])) {
        if (job?.id && job.processedOn && !overhead.has(job.id)) overhead.set(job.id, job.processedOn - job.timestamp);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  try {
    const numbers = await fleet.createIssues(issues, (i) => writes(`f${i}.txt`, sleep));
    for (let i = 1; i <= workers; i += 1) fleet.startWorker(`w${i}`, 1);
    const started = Date.now();
    fleet.startDaemon();
    for (;;) {
      let closed = 0;
      for (const n of numbers) if ((await fleet.owner.getIssue(n))?.state === 'closed') closed += 1;
      if (closed === numbers.length) break;
      if (Date.now() - started > 20 * 60_000) throw new Error(`not all issues merged after 20 minutes\n${fleet.outputs()}`);
      await new Promise((r) => setTimeout(r, 250));
    }
    const seconds = (Date.now() - started) / 1000;
    await loomAsync(fleet.root, ['stop']);
    return { workers, seconds, perMinute: (issues / seconds) * 60, overheads: [...overhead.values()] };
  } finally {
    polling = false;
    await poll;
    await queue.close();
    await fleet.close();
  }
}

const stats = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return { median: s[Math.floor(s.length / 2)] ?? NaN, max: s.at(-1) ?? NaN, n: s.length };
};

const one = await run(1);
const three = await run(3);
const overheads = stats([...one.overheads, ...three.overheads]);
console.log(`workers fed by Redis, ${issues} issues, sleep agents (builder sleeps ${sleep} s), one shepherd per worker:`);
for (const r of [one, three]) console.log(`  ${r.workers} worker(s): ${r.seconds.toFixed(1)} s, ${r.perMinute.toFixed(2)} issues/minute`);
console.log(`  speed-up 3 vs 1: ${(three.perMinute / one.perMinute).toFixed(2)}x (target >= 2.7x)`);
console.log(`  queue overhead per job (enqueued -> running on a worker): median ${overheads.median} ms, max ${overheads.max} ms over ${overheads.n} jobs (target < 100 ms)`);
