/** Waiting on a condition with a deadline — never a fixed sleep standing in for an event. */
import { groupExists, isProcessAlive, processExists, signalGroup } from './process-identity.js';

export const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `condition` every `intervalMs` until it holds (true) or `timeoutMs` passes (false). */
export async function waitFor(condition: () => boolean | Promise<boolean>, timeoutMs: number, intervalMs = 50): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await condition()) return true;
    if (Date.now() >= deadline) return false;
    await delay(Math.min(intervalMs, Math.max(1, deadline - Date.now())));
  }
}

/**
 * How a stop ended: the process (group) was already `gone`, was `ended` by the signals, `survived`
 * even SIGKILL, or was `not-ours` and left alone — a pid whose start identity is unknown or does
 * not match what was recorded may belong to an unrelated process that reused the pid.
 */
export type TerminateResult = 'gone' | 'ended' | 'survived' | 'not-ours';

/**
 * Stops the process group led by `pid`: SIGCONT (a stopped process cannot handle SIGTERM),
 * SIGTERM, and SIGKILL to whatever is left after `graceMs`.
 *
 * Only what is provably ours is signalled: the leader must still carry the recorded start
 * identity `start`. When the leader has died, its group can outlive it (an agent's child
 * processes): a group whose id is `pid` while no process has that pid is the leader's own group
 * (the kernel does not reuse a pid while a group of that id exists), so it is ended too.
 * `ownChild` marks a child this process spawned and has not reaped: its pid cannot have been
 * reused, so no start identity is needed. A record read from a file written by an older Loom may
 * lack the start identity altogether (`undefined`, not `null`): unknown just the same.
 */
export async function terminateGroup(pid: number, recorded: string | null | undefined, graceMs: number, opts: { ownChild?: boolean } = {}): Promise<TerminateResult> {
  const start = typeof recorded === 'string' && recorded !== '' ? recorded : null;
  const state = groupState(pid, start, opts.ownChild === true);
  if (state === 'gone' || state === 'not-ours') return state;
  signalGroup(pid, 'SIGCONT');
  signalGroup(pid, 'SIGTERM');
  const over = () => groupState(pid, start, opts.ownChild === true) === 'gone';
  if (await waitFor(over, graceMs)) return 'ended';
  signalGroup(pid, 'SIGKILL');
  return (await waitFor(over, 5_000)) ? 'ended' : 'survived';
}

/** Whether the group led by `pid` still has members, and whether it is provably the recorded one. */
function groupState(pid: number, start: string | null, ownChild: boolean): 'leader' | 'orphans' | 'gone' | 'not-ours' {
  if (processExists(pid)) {
    if (isProcessAlive(pid, start) && (start !== null || ownChild)) return 'leader';
    // A zombie leader still holds its pid; anything else with this pid is someone else's.
    if (!isProcessAlive(pid) && groupExists(pid)) return start !== null || ownChild ? 'orphans' : 'not-ours';
    if (!isProcessAlive(pid)) return 'gone';
    return 'not-ours';
  }
  if (!groupExists(pid)) return 'gone';
  return start !== null || ownChild ? 'orphans' : 'not-ours';
}

/** Resolves on the first SIGINT (Ctrl+C) or SIGTERM, keeping the process alive until then. */
export function untilInterrupted(): Promise<void> {
  return new Promise<void>((resolve) => {
    // A signal handler alone does not keep the process alive while it waits.
    const alive = setInterval(() => undefined, 60_000);
    const stop = () => {
      clearInterval(alive);
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}
