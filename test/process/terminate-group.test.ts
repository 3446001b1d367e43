/**
 * Only what is provably Loom's is signalled: a recorded pid is ended only when its start identity
 * matches, and an agent's process group is ended even after its leader died.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { groupExists, isProcessAlive, processStart } from '../../src/process/process-identity.js';
import { terminateGroup, waitFor } from '../../src/process/wait.js';

const children: ChildProcess[] = [];
const strays: number[] = [];
afterEach(() => {
  for (const child of children.splice(0)) if (child.pid !== undefined) try { process.kill(-child.pid, 'SIGKILL'); } catch { /* gone */ }
  for (const pid of strays.splice(0)) try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
});

/** A detached process group leader running `script` (its own group, like an agent). */
function leader(script: string): ChildProcess & { pid: number } {
  const child = spawn('sh', ['-c', script], { detached: true, stdio: ['ignore', 'pipe', 'ignore'] });
  children.push(child);
  if (child.pid === undefined) throw new Error('spawn failed');
  return child as ChildProcess & { pid: number };
}

function firstLine(child: ChildProcess): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      if (text.includes('\n')) resolve(text.split('\n')[0] ?? '');
    });
  });
}

describe('terminateGroup', () => {
  it('ends a live group whose leader carries the recorded start identity', async () => {
    const child = leader('sleep 300 & wait');
    await waitFor(() => processStart(child.pid) !== null, 5_000);
    const start = processStart(child.pid);
    expect(await terminateGroup(child.pid, start, 2_000)).toBe('ended');
    expect(groupExists(child.pid)).toBe(false);
  });

  it('ends the rest of the group when the leader already died (the agent\'s children survive it)', async () => {
    // The leader starts a grandchild in its group, prints its pid and exits at once.
    const child = leader('sleep 300 & echo $!');
    const grandchild = Number(await firstLine(child));
    strays.push(grandchild);
    await waitFor(() => !isProcessAlive(child.pid), 5_000);
    const start = 'recorded-before-it-died';
    expect(isProcessAlive(grandchild)).toBe(true);
    expect(groupExists(child.pid)).toBe(true);
    expect(await terminateGroup(child.pid, start, 2_000)).toBe('ended');
    expect(await waitFor(() => !isProcessAlive(grandchild), 5_000)).toBe(true);
  });

  it('never signals a pid whose start identity is unknown: it may be an unrelated process', async () => {
    const child = leader('sleep 300');
    await waitFor(() => processStart(child.pid) !== null, 5_000);
    expect(await terminateGroup(child.pid, null, 500)).toBe('not-ours');
    expect(isProcessAlive(child.pid)).toBe(true);
  });

  it('never signals a pid whose start identity differs (the pid was reused)', async () => {
    const child = leader('sleep 300');
    await waitFor(() => processStart(child.pid) !== null, 5_000);
    expect(await terminateGroup(child.pid, '1', 500)).toBe('not-ours');
    expect(isProcessAlive(child.pid)).toBe(true);
  });

  it('a process that is gone is reported gone without signalling anything', async () => {
    const child = leader('exit 0');
    await waitFor(() => !isProcessAlive(child.pid) && !groupExists(child.pid), 5_000);
    expect(await terminateGroup(child.pid, 'whatever', 500)).toBe('gone');
  });
});
