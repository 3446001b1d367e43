/** Waiting on a condition with a deadline — never a fixed sleep standing in for an event. */
import { isProcessAlive, signalGroup } from './process-identity.js';

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
 * Stops a process group: SIGCONT (a stopped process cannot handle SIGTERM), SIGTERM, and SIGKILL
 * if it is still alive after `graceMs`. Resolves true once the process is gone.
 */
export async function terminateGroup(pid: number, start: string | null, graceMs: number): Promise<boolean> {
  if (!isProcessAlive(pid, start)) return true;
  signalGroup(pid, 'SIGCONT');
  signalGroup(pid, 'SIGTERM');
  if (await waitFor(() => !isProcessAlive(pid, start), graceMs)) return true;
  signalGroup(pid, 'SIGKILL');
  return waitFor(() => !isProcessAlive(pid, start), 5_000);
}
