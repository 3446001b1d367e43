import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { HookFailedError, runHook } from '../../src/process/workspace-hooks.js';

const dir = () => fs.mkdtempSync(path.join(os.tmpdir(), 'loom-hook-'));

describe('runHook', () => {
  it('runs the command in the worktree with Loom context variables; an unset hook does nothing', async () => {
    const cwd = dir();
    const lines: string[] = [];
    await runHook({ timeout: 5_000, afterCreate: 'echo "$LOOM_HOOK $LOOM_ISSUE $(pwd)" > out.txt' }, 'afterCreate', cwd, { LOOM_ISSUE: '7' }, (l) => lines.push(l));
    expect(fs.readFileSync(path.join(cwd, 'out.txt'), 'utf8').trim()).toBe(`afterCreate 7 ${fs.realpathSync(cwd)}`);
    expect(lines).toEqual([expect.stringMatching(/^hooks\.afterCreate ran in \d+ ms$/)]);
    await runHook({ timeout: 5_000 }, 'beforeRun', cwd, {}, (l) => lines.push(l));
    expect(lines).toHaveLength(1);
  });

  it('a failing afterCreate or beforeRun throws with the exit code and the last output', async () => {
    for (const hook of ['afterCreate', 'beforeRun'] as const) {
      const error = await runHook({ timeout: 5_000, [hook]: 'echo "npm ci: lock file missing"; exit 3' }, hook, dir(), {}, () => {}).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(HookFailedError);
      expect((error as Error).message).toBe(`hooks.${hook} failed: exit 3: npm ci: lock file missing`);
    }
  });

  it('a failing afterRun or beforeRemove is logged and ignored', async () => {
    for (const hook of ['afterRun', 'beforeRemove'] as const) {
      const lines: string[] = [];
      await runHook({ timeout: 5_000, [hook]: 'exit 1' }, hook, dir(), {}, (l) => lines.push(l));
      expect(lines).toEqual([`hooks.${hook} failed (ignored): exit 1`]);
    }
  });

  it('a hook past its timeout is killed with what it started, and fails', async () => {
    const cwd = dir();
    const started = Date.now();
    const error = await runHook({ timeout: 500, beforeRun: 'sleep 30 & echo $! > child.pid; wait' }, 'beforeRun', cwd, {}, () => {}).catch((e: unknown) => e);
    expect((error as Error).message).toMatch(/^hooks\.beforeRun failed: timed out after 500 ms/);
    expect(Date.now() - started).toBeLessThan(15_000);
    const child = Number(fs.readFileSync(path.join(cwd, 'child.pid'), 'utf8'));
    const alive = () => {
      try {
        process.kill(child, 0);
        return true;
      } catch {
        return false;
      }
    };
    const deadline = Date.now() + 10_000;
    while (alive() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(alive()).toBe(false);
  });
});
