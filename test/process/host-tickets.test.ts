import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { endIdleHost, hostLockFile, requestStop, ticketsDir, writeTicket } from '../../src/process/host-tickets.js';
import { processStart } from '../../src/process/process-identity.js';

let dir: string | undefined;
afterEach(() => {
  if (dir !== undefined) fs.rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

const ticket = (task: string, hostPid: number, hostStart: string | null) => ({ issue: 1, task_id: task, output_file: '/dev/null', force_merge: false, host_pid: hostPid, host_pid_start: hostStart, written: new Date().toISOString() });

describe('the shepherd host files when the daemon stops', () => {
  it('a host killed with kill -9 leaves its lock and its tickets: the stop removes them, and only them', async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'loom-host-'));
    const host = path.join(dir, 'host');
    // A host that is gone: the pid of a process that has exited.
    const dead = spawnSync('true').pid;
    fs.mkdirSync(host, { recursive: true });
    fs.writeFileSync(hostLockFile(host), `${dead}`);
    writeTicket(host, ticket('deadbeef0001', dead, null));
    writeTicket(host, ticket('deadbeef0002', dead, null));
    fs.writeFileSync(path.join(ticketsDir(host), 'deadbeef0002.taken'), '');
    requestStop(host, 'deadbeef0002');
    // A stop request for a run whose ticket is already gone.
    requestStop(host, 'deadbeef0003');
    // A ticket addressed to a live process stays (its run is alive).
    writeTicket(host, ticket('a11ve0000001', process.pid, processStart(process.pid)));

    expect(await endIdleHost(host, 0, 0)).toBe('none');
    expect(fs.existsSync(hostLockFile(host))).toBe(false);
    expect(fs.readdirSync(ticketsDir(host)).sort()).toEqual(['a11ve0000001.json']);
  });
});
