/**
 * `.loom/daemon.lock` (src/state/daemon-lock.ts): one daemon per repository. Real lock files and
 * real processes — a live holder refuses, a dead one (or one whose pid now names another process)
 * is taken over, and of several processes racing for a stale lock exactly one wins.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import type { LockInfo } from '../../src/state/daemon-lock.js';
import { LockHeldError, acquireLock, liveLock, readLock, releaseLock } from '../../src/state/daemon-lock.js';
import { processStart } from '../../src/process/process-identity.js';
import type { Child } from '../helpers/child-process.js';
import { deadPid, killAll, runFixture, runIdleProcess, waitForExit, waitUntil } from '../helpers/child-process.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const racerScript = path.join(here, 'fixtures', 'lock-racer.ts');

const dirs: string[] = [];
const children: Child[] = [];

afterEach(async () => {
  await killAll(children);
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

function lockPath(): { dir: string; file: string } {
  const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'loom-lock-')));
  dirs.push(dir);
  return { dir, file: path.join(dir, 'daemon.lock') };
}

function lockOf(pid: number, over: Partial<LockInfo> = {}): LockInfo {
  return { pid, pid_start: processStart(pid), session_id: `session-of-${pid}`, started_at: '2026-01-23T12:00:00.000Z', holder: 'daemon', ...over };
}

const writeLock = (file: string, info: unknown): void => fs.writeFileSync(file, typeof info === 'string' ? info : JSON.stringify(info));

/** A live process other than this one, and its lock info. */
async function liveOther(): Promise<Child> {
  const child = runIdleProcess(children);
  await waitUntil(() => child.lines.includes('up'), 'the other process to start');
  return child;
}

/** Takes the lock, expecting it to be refused; returns the error. */
function refused(file: string, session = 'mine'): LockHeldError {
  try {
    acquireLock(file, session, 'daemon');
  } catch (error) {
    if (error instanceof LockHeldError) return error;
    throw error;
  }
  throw new Error('acquireLock succeeded; expected LockHeldError');
}

describe('acquireLock', () => {
  it('takes a free lock: the file names this process, its start identity, the session and the holder', () => {
    const { dir, file } = lockPath();
    const before = Date.now();
    const info = acquireLock(file, 'session-1', 'daemon');
    expect(info).toEqual({ pid: process.pid, pid_start: processStart(process.pid), session_id: 'session-1', started_at: expect.any(String), holder: 'daemon' });
    expect(Date.parse(info.started_at)).toBeGreaterThanOrEqual(before - 1000);
    expect(Date.parse(info.started_at)).toBeLessThanOrEqual(Date.now() + 1000);
    expect(JSON.parse(fs.readFileSync(file, 'utf8'))).toEqual(info);
    expect(fs.readdirSync(dir)).toEqual(['daemon.lock']);
    expect(liveLock(file)).toEqual(info);
  });

  it('refuses while this same process holds it, naming the holder; the lock is unchanged', () => {
    const { file } = lockPath();
    const info = acquireLock(file, 'session-1', 'iterate');
    const text = fs.readFileSync(file, 'utf8');
    const error = refused(file, 'session-2');
    expect(error.code).toBe('lock_held');
    expect(error.info).toEqual(info);
    expect(error.message).toBe(`a \`loom iterate\` is running for this repository (pid ${process.pid}); wait for it to finish`);
    expect(fs.readFileSync(file, 'utf8')).toBe(text);
  });

  it('refuses while another live process holds it, and takes it over once that process has died', async () => {
    const { dir, file } = lockPath();
    const other = await liveOther();
    const theirs = lockOf(other.pid);
    writeLock(file, theirs);

    const error = refused(file);
    expect(error.info).toEqual(theirs);
    expect(error.message).toBe(`a Loom daemon is already running for this repository (pid ${other.pid}); stop it with \`loom stop\` or watch it with \`loom status\``);
    expect(liveLock(file)).toEqual(theirs);

    other.process.kill('SIGKILL');
    await waitForExit(other);
    await waitUntil(() => liveLock(file) === null, 'the lock to be stale');
    const mine = acquireLock(file, 'mine', 'daemon');
    expect(mine.pid).toBe(process.pid);
    expect(readLock(file)).toEqual(mine);
    expect(fs.readdirSync(dir)).toEqual(['daemon.lock']);
  });

  it('takes over the lock of a process that is gone', async () => {
    const { dir, file } = lockPath();
    writeLock(file, lockOf(await deadPid(children), { pid_start: '12345' }));
    expect(liveLock(file)).toBeNull();
    expect(acquireLock(file, 'mine', 'daemon').session_id).toBe('mine');
    expect(readLock(file)?.pid).toBe(process.pid);
    expect(fs.readdirSync(dir)).toEqual(['daemon.lock']);
  });

  it('takes over a lock whose pid now belongs to another process (pid reused: other start identity)', async () => {
    const { file } = lockPath();
    const other = await liveOther();
    const start = processStart(other.pid);
    expect(start).not.toBeNull();
    writeLock(file, lockOf(other.pid, { pid_start: String(Number(start) - 1) }));
    expect(liveLock(file)).toBeNull();
    expect(acquireLock(file, 'mine', 'daemon').pid).toBe(process.pid);
    // The other process itself is not touched.
    expect(other.exitCode).toBeUndefined();
  });

  it('takes over a lock naming this very pid with another start identity (a lock from before a pid reuse)', () => {
    const { file } = lockPath();
    writeLock(file, lockOf(process.pid, { pid_start: 'an-earlier-process', session_id: 'old' }));
    expect(acquireLock(file, 'new', 'daemon').session_id).toBe('new');
  });

  it('treats a lock without a start identity as held by its pid', async () => {
    const { file } = lockPath();
    const other = await liveOther();
    writeLock(file, lockOf(other.pid, { pid_start: null }));
    const error = refused(file);
    expect(error.info.pid).toBe(other.pid);
    // Nothing proves the pid is still a Loom daemon: the message says how to tell and what to do.
    expect(error.message).toMatch(new RegExp(`records no start identity.*\\\`ps -p ${other.pid}\\\` shows another program, remove \\.loom/daemon\\.lock`));
  });

  it.each([
    ['garbage', 'not json at all'],
    ['JSON without a numeric pid', { pid: 'x', session_id: 's' }],
    ['an empty file', ''],
  ])('takes over an unreadable lock (%s)', (_what, content) => {
    const { dir, file } = lockPath();
    writeLock(file, content);
    expect(readLock(file)).toBeNull();
    expect(acquireLock(file, 'mine', 'daemon').pid).toBe(process.pid);
    expect(fs.readdirSync(dir)).toEqual(['daemon.lock']);
  });

  it('throws the file system error (not LockHeldError) when the directory does not exist', () => {
    const { dir } = lockPath();
    expect(() => acquireLock(path.join(dir, 'missing', 'daemon.lock'), 'mine', 'daemon')).toThrow(expect.objectContaining({ code: 'ENOENT' }));
  });

  it('lets exactly one of 6 processes racing for a stale lock win, round after round', { timeout: 120_000 }, async () => {
    const { dir, file } = lockPath();
    const signals = path.join(dir, 'signals');
    fs.mkdirSync(signals);
    const rounds = 60;
    const racers = Array.from({ length: 6 }, () => runFixture(children, racerScript, [file, String(rounds), signals]));
    await waitUntil(() => racers.every((r) => r.lines.includes('ready') || r.exitCode !== undefined), 'every racer to start', 60_000);

    for (let round = 1; round <= rounds; round++) {
      // Each round starts from the lock of a daemon that crashed.
      writeLock(file, lockOf(await deadPid(children), { pid_start: '1' }));
      fs.writeFileSync(path.join(signals, `go-${round}`), '');
      const answer = (r: Child) => r.lines.find((l) => l.startsWith(`${round} `));
      await waitUntil(() => racers.every((r) => answer(r) !== undefined || r.exitCode !== undefined), `every racer to answer in round ${round}`);

      const answers = racers.map((r) => answer(r)?.slice(`${round} `.length) ?? `exited ${r.exitCode} ${r.stderr}`);
      const winners = racers.filter((_r, i) => answers[i] === 'won');
      expect(winners, `round ${round}: ${answers.join(' | ')}`).toHaveLength(1);
      const winner = winners[0]!;
      expect(answers.filter((a) => a !== 'won'), `round ${round}`).toEqual(Array.from({ length: racers.length - 1 }, () => `held ${winner.pid}`));
      expect(readLock(file)?.pid).toBe(winner.pid);
      expect(fs.readdirSync(dir).sort()).toEqual(['daemon.lock', 'signals']);

      fs.writeFileSync(path.join(signals, `end-${round}`), '');
      await waitUntil(() => !fs.existsSync(file), `the winner of round ${round} to release the lock`);
    }
    for (const r of racers) await waitForExit(r);
    for (const r of racers) expect({ code: r.exitCode, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
  });
});

describe('releaseLock', () => {
  it('removes the lock this process holds for the session', () => {
    const { file } = lockPath();
    acquireLock(file, 'session-1', 'daemon');
    releaseLock(file, 'session-1');
    expect(fs.existsSync(file)).toBe(false);
  });

  it('keeps a lock of another session of this process (a later daemon start)', () => {
    const { file } = lockPath();
    const info = acquireLock(file, 'session-2', 'daemon');
    releaseLock(file, 'session-1');
    expect(readLock(file)).toEqual(info);
  });

  it("keeps another process's lock, even with the same session id", async () => {
    const { file } = lockPath();
    const other = await liveOther();
    const theirs = lockOf(other.pid, { session_id: 'session-1' });
    writeLock(file, theirs);
    releaseLock(file, 'session-1');
    expect(readLock(file)).toEqual(theirs);
  });

  it('does nothing when there is no lock, or an unreadable one', () => {
    const { dir, file } = lockPath();
    expect(() => releaseLock(file, 'session-1')).not.toThrow();
    expect(fs.readdirSync(dir)).toEqual([]);
    writeLock(file, 'garbage');
    releaseLock(file, 'session-1');
    expect(fs.readFileSync(file, 'utf8')).toBe('garbage');
  });

  it('frees the lock for the next taker', () => {
    const { file } = lockPath();
    acquireLock(file, 'session-1', 'daemon');
    releaseLock(file, 'session-1');
    expect(acquireLock(file, 'session-2', 'iterate')).toMatchObject({ session_id: 'session-2', holder: 'iterate' });
  });
});

describe('readLock and liveLock', () => {
  it('readLock: null for a missing, non-JSON or pid-less file; the info otherwise', () => {
    const { file } = lockPath();
    expect(readLock(file)).toBeNull();
    writeLock(file, '{"pid": 12');
    expect(readLock(file)).toBeNull();
    writeLock(file, { pid: '12' });
    expect(readLock(file)).toBeNull();
    writeLock(file, 'null');
    expect(readLock(file)).toBeNull();
    const info = lockOf(12);
    writeLock(file, info);
    expect(readLock(file)).toEqual(info);
  });

  it('liveLock: the info only while its process runs with the recorded start identity', async () => {
    const { file } = lockPath();
    expect(liveLock(file)).toBeNull();
    const other = await liveOther();
    writeLock(file, lockOf(other.pid));
    expect(liveLock(file)?.pid).toBe(other.pid);
    writeLock(file, lockOf(other.pid, { pid_start: 'someone-else' }));
    expect(liveLock(file)).toBeNull();
    writeLock(file, lockOf(other.pid));
    other.process.kill('SIGKILL');
    await waitForExit(other);
    await waitUntil(() => liveLock(file) === null, 'the lock to go stale');
    // Stale is not removed by looking at it.
    expect(readLock(file)?.pid).toBe(other.pid);
  });
});
