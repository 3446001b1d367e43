/**
 * The issue lease: at most one Loom process — the issue's shepherd, or a Judge, Doctor or
 * Champion run — works in an issue's worktree at a time, and the agent process group it starts
 * there is recorded, so whoever comes next ends it when its starter died without doing so.
 *
 * Two files beside the worktree, in `.loom/worktrees/`:
 * - `issue-N.lock`: the holder, `<pid> <start identity>` (lock-file.ts: taken atomically; a
 *   holder that is gone, or whose pid now belongs to another process, holds nothing);
 * - `issue-N.agent`: the agent last started under the lease. Before it starts: `pending
 *   <token>`, a random token the agent gets in its environment (`LOOM_AGENT_TOKEN`); as soon as
 *   its process exists: `<pid> <start identity> <token>` (the leader of its process group).
 *   Removed once that agent is over.
 *
 * Invariants owned here:
 * - a lease taken over from a dead holder first ends the agent that holder recorded: its process
 *   group, if it still runs and is provably that group (its leader still has the recorded start
 *   identity, or the group outlived such a leader — `terminateGroup`), and every process that
 *   carries its token (an agent killed before its pid was written, or a descendant that left the
 *   group); a pid that is not provably ours is never signalled;
 * - before an agent starts under a lease, the agent recorded there before it is over (ended if
 *   need be): two agents never run for one issue;
 * - nothing but the holder writes the agent file.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../fs/atomic-file.js';
import { isProcessAlive, processStart } from './process-identity.js';
import { tryLock, unlock } from './lock-file.js';
import { delay, terminateGroup } from './wait.js';

/** How long a leftover agent group gets after SIGTERM before SIGKILL, ms. */
const AGENT_GRACE_MS = 5_000;

/** An agent as recorded: its group leader's pid and start identity (null while pending), and its token. */
interface AgentRecord {
  pid: number | null;
  start: string | null;
  token: string | null;
}

/** The environment variable that marks every process of an agent run with the run's token. */
const AGENT_TOKEN_VAR = 'LOOM_AGENT_TOKEN';

/** Live processes (this one aside) whose environment carries `LOOM_AGENT_TOKEN=<token>`. */
function processesWithToken(token: string): number[] {
  let entries: string[];
  try {
    entries = fs.readdirSync('/proc');
  } catch {
    return [];
  }
  const marker = Buffer.from(`${AGENT_TOKEN_VAR}=${token}\0`);
  const found: number[] = [];
  for (const name of entries) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    let environ: Buffer;
    try {
      environ = fs.readFileSync(`/proc/${name}/environ`);
    } catch {
      continue;
    }
    if (environ.includes(marker) && isProcessAlive(Number(name))) found.push(Number(name));
  }
  return found;
}

/** Ends every process carrying the token (SIGTERM, then SIGKILL after the grace); how many there were. */
async function endTokenProcesses(token: string): Promise<number> {
  const first = processesWithToken(token);
  if (first.length === 0) return 0;
  const signal = (sig: NodeJS.Signals) => {
    for (const pid of processesWithToken(token)) {
      try {
        process.kill(pid, 'SIGCONT');
        process.kill(pid, sig);
      } catch {
        // gone meanwhile
      }
    }
  };
  signal('SIGTERM');
  const deadline = Date.now() + AGENT_GRACE_MS;
  while (processesWithToken(token).length > 0 && Date.now() < deadline) await delay(50);
  signal('SIGKILL');
  return first.length;
}

function lockFile(dir: string, issue: number): string {
  return path.join(dir, `issue-${issue}.lock`);
}

function agentFile(dir: string, issue: number): string {
  return path.join(dir, `issue-${issue}.agent`);
}

function readAgent(file: string): AgentRecord | null {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return null;
  }
  const [first = '', second, third] = text.trim().split(/\s+/);
  if (first === 'pending') return second === undefined ? null : { pid: null, start: null, token: second };
  const n = Number(first);
  return Number.isSafeInteger(n) && n > 0 ? { pid: n, start: second ?? null, token: third ?? null } : null;
}

/** The live holder of issue `issue`'s lease (`<pid>`), or null when nobody holds it. */
export function leaseHolder(dir: string, issue: number): number | null {
  let text: string;
  try {
    text = fs.readFileSync(lockFile(dir, issue), 'utf8');
  } catch {
    return null;
  }
  const [pid = '', start] = text.trim().split(/\s+/);
  return isProcessAlive(Number(pid), start ?? null) ? Number(pid) : null;
}

/**
 * Ends the agent group recorded in `file` if it still runs (provably ours), then forgets it.
 * Returns a line saying what was done, or null when there was nothing to end.
 */
async function endRecordedAgent(file: string, what: string): Promise<string | null> {
  const agent = readAgent(file);
  if (agent === null) {
    fs.rmSync(file, { force: true });
    return null;
  }
  const result = agent.pid === null ? 'gone' : await terminateGroup(agent.pid, agent.start, AGENT_GRACE_MS);
  const marked = agent.token === null ? 0 : await endTokenProcesses(agent.token);
  fs.rmSync(file, { force: true });
  const lines: string[] = [];
  if (result === 'not-ours') lines.push(`pid ${agent.pid} is not provably Loom's any more (its start identity differs); not signalled`);
  if (result === 'ended' || result === 'survived') lines.push(`ended its process group (pid ${agent.pid})${result === 'survived' ? ', which survived SIGKILL' : ''}`);
  if (marked > 0) lines.push(`ended ${marked} process${marked === 1 ? '' : 'es'} of it outside that group${agent.pid === null ? ' (its pid was never recorded)' : ''}`);
  return lines.length === 0 ? null : `${what}: ${lines.join('; ')}`;
}

export class IssueLease {
  private constructor(
    private readonly dir: string,
    readonly issue: number,
    private readonly log: (line: string) => void,
  ) {}

  /**
   * Takes the lease if nobody alive holds it; null when someone does. Taken over from a dead
   * holder, the agent group it left running is ended first.
   */
  static async tryTake(dir: string, issue: number, log: (line: string) => void): Promise<IssueLease | null> {
    fs.mkdirSync(dir, { recursive: true });
    if (!tryLock(lockFile(dir, issue))) return null;
    const lease = new IssueLease(dir, issue, log);
    try {
      const ended = await endRecordedAgent(agentFile(dir, issue), `a leftover agent of #${issue}`);
      if (ended !== null) log(ended);
    } catch (error) {
      lease.release();
      throw error;
    }
    return lease;
  }

  /**
   * Takes the lease, waiting while a live process holds it (checked every `pollMs`); null if
   * `signal` is aborted first. `onWait` is called once, with the holder's pid, when it must wait.
   */
  static async take(dir: string, issue: number, opts: { log: (line: string) => void; signal?: AbortSignal; pollMs?: number; onWait?: (holder: number) => void }): Promise<IssueLease | null> {
    let waited = false;
    for (;;) {
      if (opts.signal?.aborted === true) return null;
      const lease = await IssueLease.tryTake(dir, issue, opts.log);
      if (lease !== null) return lease;
      const holder = leaseHolder(dir, issue);
      if (!waited && holder !== null) {
        waited = true;
        opts.onWait?.(holder);
      }
      await delay(opts.pollMs ?? 250);
    }
  }

  private token: string | null = null;

  /**
   * Before an agent starts: the one recorded before it (this holder's or a dead one's) is over,
   * and the new one is recorded as pending. Returns its token, for its environment (`AGENT_TOKEN_VAR`).
   */
  async beforeAgent(): Promise<string> {
    const ended = await endRecordedAgent(agentFile(this.dir, this.issue), `an earlier agent of #${this.issue} still ran`);
    if (ended !== null) this.log(ended);
    this.token = randomBytes(12).toString('hex');
    writeFileAtomic(agentFile(this.dir, this.issue), `pending ${this.token}`, { durable: false });
    return this.token;
  }

  /** Records the agent group just started (synchronously: called right after the spawn). */
  agentStarted(pid: number): void {
    writeFileAtomic(agentFile(this.dir, this.issue), `${pid} ${processStart(pid) ?? '-'} ${this.token ?? ''}`.trim(), { durable: false });
  }

  /** The agent has ended: nothing to end any more. */
  agentEnded(): void {
    fs.rmSync(agentFile(this.dir, this.issue), { force: true });
  }

  /** Gives the lease up (the agent record goes with it: the agent is over when its starter lets go). */
  release(): void {
    fs.rmSync(agentFile(this.dir, this.issue), { force: true });
    unlock(lockFile(this.dir, this.issue));
  }
}

/**
 * Ends the agent groups that dead lease holders left running, and removes their lease files:
 * for the daemon's iterations and its stop, so no agent outlives its starter and the daemon.
 * Returns one line per agent ended (or not signalled because it is not provably ours).
 */
export async function endLeftoverAgents(dir: string): Promise<string[]> {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  const lines: string[] = [];
  for (const name of names) {
    const issue = Number(/^issue-(\d+)\.(?:agent|lock)$/.exec(name)?.[1] ?? NaN);
    if (!Number.isSafeInteger(issue) || !fs.existsSync(path.join(dir, name))) continue;
    const lease = await IssueLease.tryTake(dir, issue, (line) => lines.push(line));
    lease?.release();
  }
  return lines;
}
