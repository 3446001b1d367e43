// The shared lock file (merge lock, state writer, issue leases): one holder, and a stale lock taken
// over by exactly one of the processes that find it at once.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { clearStaleLock, tryLock, unlock } from '../../src/process/lock-file.js';
import type { Child } from '../helpers/child-process.js';
import { deadPid, killAll, runFixture, waitForExit, waitUntil } from '../helpers/child-process.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const racerScript = path.join(here, 'fixtures', 'try-lock-racer.ts');
const dirs: string[] = [];
const children: Child[] = [];

afterEach(async () => {
  await killAll(children);
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

function scratch(): { dir: string; file: string } {
  const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'loom-lock-file-')));
  dirs.push(dir);
  return { dir, file: path.join(dir, 'merge.lock') };
}

describe('tryLock', () => {
  it('takes a free lock once: the holder itself finds it held; unlock frees it', () => {
    const { dir, file } = scratch();
    expect(tryLock(file)).toBe(true);
    expect(tryLock(file)).toBe(false);
    unlock(file);
    expect(fs.readdirSync(dir)).toEqual([]);
    expect(tryLock(file)).toBe(true);
  });

  it("takes over a dead process's lock and leaves no helper file behind", async () => {
    const { dir, file } = scratch();
    fs.writeFileSync(file, `${await deadPid(children)} 1`);
    expect(tryLock(file)).toBe(true);
    expect(fs.readdirSync(dir)).toEqual(['merge.lock']);
  });

  it('removes a breaker left by a process that died while clearing a stale lock', async () => {
    const { file } = scratch();
    const dead = await deadPid(children);
    fs.writeFileSync(file, `${dead} 1`);
    fs.writeFileSync(`${file}.breaker`, `${dead} 1`);
    expect(tryLock(file)).toBe(true);
    expect(fs.existsSync(`${file}.breaker`)).toBe(false);
  });

  it('clearStaleLock leaves a lock its judge finds live, and reports a breaker held by a live process', () => {
    const { file } = scratch();
    expect(tryLock(file)).toBe(true);
    expect(clearStaleLock(file, () => false)).toBe(true);
    expect(fs.existsSync(file)).toBe(true);
    fs.writeFileSync(`${file}.breaker`, `${process.pid}`);
    expect(clearStaleLock(file, () => true)).toBe(false);
    expect(fs.existsSync(file)).toBe(true);
  });

  // Moving a stale lock aside and putting back a live one moved by mistake let a third process
  // take the lock in the gap: about one round in 150 had two winners.
  it('lets exactly one of 8 processes racing for a stale lock win, round after round', { timeout: 240_000 }, async () => {
    const { dir, file } = scratch();
    const signals = path.join(dir, 'signals');
    fs.mkdirSync(signals);
    const rounds = 150;
    const racers = Array.from({ length: 8 }, () => runFixture(children, racerScript, [file, String(rounds), signals]));
    await waitUntil(() => racers.every((r) => r.lines.includes('ready') || r.exitCode !== undefined), 'every racer to start', 60_000);
    const dead = await deadPid(children);
    for (let round = 1; round <= rounds; round++) {
      fs.writeFileSync(file, `${dead} 1`);
      fs.writeFileSync(path.join(signals, `go-${round}`), '');
      const answer = (r: Child) => r.lines.find((l) => l.startsWith(`${round} `));
      await waitUntil(() => racers.every((r) => answer(r) !== undefined || r.exitCode !== undefined), `every racer to answer in round ${round}`);
      const answers = racers.map((r) => answer(r)?.slice(`${round} `.length) ?? `exited ${r.exitCode} ${r.stderr}`);
      expect(answers.filter((a) => a === 'won'), `round ${round}: ${answers.join(' | ')}`).toHaveLength(1);
      expect(answers.filter((a) => a !== 'won' && a !== 'held'), `round ${round}`).toEqual([]);
      fs.writeFileSync(path.join(signals, `end-${round}`), '');
      await waitUntil(() => !fs.existsSync(file), `the winner of round ${round} to unlock`);
    }
    for (const r of racers) await waitForExit(r);
    for (const r of racers) expect({ code: r.exitCode, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
    expect(fs.readdirSync(dir)).toEqual(['signals']);
  });
});
