// The issue worktree lease with real processes: one holder at a time, a dead holder's lease free
// and its agent group ended on take-over, and an agent still recorded ended before the next starts.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { IssueLease, endLeftoverAgents, leaseHolder } from '../../src/process/issue-lease.js';
import { processStart } from '../../src/process/process-identity.js';
import { until } from '../helpers/loom-repo.js';
import { groupHasLiveMembers } from '../runtimes/process-group.js';
import { killGroups } from '../helpers/child-process.js';

const dirs: string[] = [];
const groups: number[] = [];
afterEach(() => {
  killGroups(groups);
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function leaseDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'loom-lease-unit-'));
  dirs.push(dir);
  return dir;
}

/** A detached process group (`sleep`), as an agent runs. */
async function agentGroup(): Promise<number> {
  const child = spawn('sleep', ['600'], { detached: true, stdio: 'ignore' });
  groups.push(child.pid!);
  await until(() => processStart(child.pid!) !== null, 5_000, 'the agent to start');
  return child.pid!;
}

/** Another process that takes the lease of issue 3 in `dir`, records `agent` under it, and stays. */
async function otherHolder(dir: string, agent: number): Promise<{ pid: number; kill(): Promise<void> }> {
  const code = `const { IssueLease } = await import(${JSON.stringify(new URL('../../src/process/issue-lease.ts', import.meta.url).href)});
const lease = await IssueLease.tryTake(${JSON.stringify(dir)}, 3, () => {});
lease.agentStarted(${agent});
console.log('held');
setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
  return {
    pid: child.pid!,
    kill: async () => {
      child.kill('SIGKILL');
      await until(() => child.signalCode !== null, 5_000, 'the holder to die');
    },
  };
}

describe('the issue worktree lease', () => {
  it('has one holder at a time; a dead holder holds nothing, and its agent group is ended when the lease is taken over', async () => {
    const dir = leaseDir();
    const agent = await agentGroup();
    const holder = await otherHolder(dir, agent);
    expect(leaseHolder(dir, 3)).toBe(holder.pid);
    expect(await IssueLease.tryTake(dir, 3, () => {})).toBeNull();
    expect(groupHasLiveMembers(agent)).toBe(true);

    await holder.kill();
    expect(leaseHolder(dir, 3)).toBeNull();
    const lines: string[] = [];
    const lease = await IssueLease.tryTake(dir, 3, (l) => lines.push(l));
    expect(lease).not.toBeNull();
    expect(groupHasLiveMembers(agent)).toBe(false);
    expect(lines).toEqual([`a leftover agent of #3: ended its process group (pid ${agent})`]);
    lease!.release();
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('ends the agent recorded before it when the holder starts another one', async () => {
    const dir = leaseDir();
    const lease = (await IssueLease.tryTake(dir, 5, () => {}))!;
    const first = await agentGroup();
    lease.agentStarted(first);
    await lease.beforeAgent();
    expect(groupHasLiveMembers(first)).toBe(false);
    lease.release();
  });

  it('ends by its token an agent whose starter died before writing its pid, and a process of an agent that left its group', async () => {
    const dir = leaseDir();
    const token = 'a1b2c3d4e5f6a1b2c3d4e5f6';
    // Two processes of that run, each in a session and process group of its own (detached: setsid).
    const marked = () => spawn('sleep', ['600'], { detached: true, stdio: 'ignore', env: { ...process.env, LOOM_AGENT_TOKEN: token } });
    const spawned = [marked(), marked()];
    for (const child of spawned) groups.push(child.pid!);
    const unrelated = await agentGroup();
    await until(() => spawned.every((c) => processStart(c.pid!) !== null && fs.readFileSync(`/proc/${c.pid!}/cmdline`, 'utf8').startsWith('sleep')), 5_000, 'the agent processes to start');
    fs.writeFileSync(path.join(dir, 'issue-4.lock'), '999999999 1');
    fs.writeFileSync(path.join(dir, 'issue-4.agent'), `pending ${token}`);
    const lines: string[] = [];
    const lease = await IssueLease.tryTake(dir, 4, (l) => lines.push(l));
    expect(lease).not.toBeNull();
    await until(() => spawned.every((c) => c.exitCode !== null || c.signalCode !== null), 10_000, 'the agent processes to end');
    expect(lines).toEqual(['a leftover agent of #4: ended 2 processes of it outside that group (its pid was never recorded)']);
    expect(groupHasLiveMembers(unrelated)).toBe(true);
    lease!.release();
  });

  it('endLeftoverAgents ends what dead holders left and leaves a live holder alone', async () => {
    const dir = leaseDir();
    const agent = await agentGroup();
    const holder = await otherHolder(dir, agent);
    expect(await endLeftoverAgents(dir)).toEqual([]);
    expect(groupHasLiveMembers(agent)).toBe(true);
    await holder.kill();
    expect(await endLeftoverAgents(dir)).toEqual([`a leftover agent of #3: ended its process group (pid ${agent})`]);
    expect(groupHasLiveMembers(agent)).toBe(false);
    expect(fs.readdirSync(dir)).toEqual([]);
  });
});
