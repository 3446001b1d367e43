// Checkpoints on origin (steps/remote-checkpoint.ts) with real git: a bare origin and two clones
// standing for two workers. The newer run's fence wins; a stale run can neither take the issue
// back nor push over the new owner, and its refused push changes nothing on origin.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CheckpointStore } from '../../src/state/checkpoint-store.js';
import type { Checkpoint } from '../../src/state/checkpoint-store.js';
import { checkpointRef, compareFence, dropRemoteCheckpoint, FencedError, publishCheckpoint, takeOver } from '../../src/steps/remote-checkpoint.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

const git = (cwd: string, ...args: string[]) => {
  const r = spawnSync('git', ['-c', 'user.name=Loom Tests', '-c', 'user.email=tests@localhost', ...args], { cwd, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`git ${args.join(' ')}: ${r.stderr}`);
  return r.stdout.trim();
};

function world() {
  const base = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'loom-remote-cp-')));
  dirs.push(base);
  const bare = path.join(base, 'origin.git');
  git(base, 'init', '-q', '--bare', '-b', 'main', bare);
  const seed = path.join(base, 'seed');
  git(base, 'clone', '-q', bare, seed);
  fs.writeFileSync(path.join(seed, 'README.md'), 'x\n');
  git(seed, 'add', '.');
  git(seed, 'commit', '-qm', 'initial');
  git(seed, 'push', '-q', 'origin', 'main');
  const clone = (name: string) => {
    const root = path.join(base, name);
    git(base, 'clone', '-q', bare, root);
    const loom = path.join(root, '.loom');
    return { root, checkpointsDir: path.join(loom, 'checkpoints'), worktreesDir: path.join(loom, 'worktrees'), issue: 7 };
  };
  return { bare, a: clone('a'), b: clone('b') };
}

/** Makes a worktree on loom/issue-7 with one commit, as a shepherd's builder would. */
function build(c: { root: string; worktreesDir: string }, file: string): string {
  const worktree = path.join(c.worktreesDir, 'issue-7');
  const exists = spawnSync('git', ['rev-parse', '--verify', '--quiet', 'refs/heads/loom/issue-7'], { cwd: c.root }).status === 0;
  if (!fs.existsSync(worktree)) git(c.root, 'worktree', 'add', '-q', ...(exists ? [worktree, 'loom/issue-7'] : ['-b', 'loom/issue-7', worktree, 'origin/main']));
  fs.writeFileSync(path.join(worktree, file), file);
  git(worktree, 'add', '.');
  git(worktree, 'commit', '-qm', file);
  return worktree;
}

const checkpoint = (phase: Checkpoint['phase'], pr: number | null = null): Checkpoint => ({ issue: 7, phase, branch: 'loom/issue-7', base: 'main', pr_number: pr, verdict: null, review: null, doctor_rounds: 0, tests_failed: false, updated_at: '' });
const remoteMessage = (bare: string) => JSON.parse(git(bare, 'log', '-1', '--format=%B', checkpointRef(7))) as { fence: string; checkpoint: Checkpoint | null };

describe('checkpoints on origin, fenced by the run', () => {
  it('orders fences by dispatch time, then by start count', () => {
    expect(compareFence('1700000000000.2', '1700000000000.1')).toBeGreaterThan(0);
    expect(compareFence('1700000000001.1', '1700000000000.9')).toBeGreaterThan(0);
    expect(compareFence('5.1', '5.1')).toBe(0);
  });

  it('a second worker resumes from what the first pushed; the first, now stale, is refused and changes nothing', async () => {
    const { bare, a, b } = world();
    expect(await takeOver({ ...a, fence: '100.1' })).toBeNull();
    const wa = build(a, 'one.txt');
    await publishCheckpoint({ ...a, worktree: wa, checkpoint: checkpoint('built') });
    expect(remoteMessage(bare)).toMatchObject({ fence: '100.1', checkpoint: { phase: 'built' } });
    expect(git(bare, 'show', 'loom/issue-7:one.txt')).toBe('one.txt');

    // Worker a stops answering; the job is started again on b.
    const resumed = await takeOver({ ...b, fence: '100.2' });
    expect(resumed).toMatchObject({ phase: 'built' });
    expect(new CheckpointStore(b.checkpointsDir).read(7)).toMatchObject({ phase: 'built' });
    expect(git(b.root, 'show', 'loom/issue-7:one.txt')).toBe('one.txt');
    const wb = build(b, 'two.txt');
    await publishCheckpoint({ ...b, worktree: wb, checkpoint: checkpoint('pr-opened', 3) });
    const owned = git(bare, 'rev-parse', checkpointRef(7));
    const branch = git(bare, 'rev-parse', 'loom/issue-7');

    // a comes back and tries to push its next phase: refused, origin untouched.
    build(a, 'stale.txt');
    await expect(publishCheckpoint({ ...a, worktree: wa, checkpoint: checkpoint('judged', 3) })).rejects.toBeInstanceOf(FencedError);
    expect(git(bare, 'rev-parse', checkpointRef(7))).toBe(owned);
    expect(git(bare, 'rev-parse', 'loom/issue-7')).toBe(branch);
    // Nor can it take the issue back with its older fence.
    await expect(takeOver({ ...a, fence: '100.1' })).rejects.toBeInstanceOf(FencedError);
    expect(remoteMessage(bare)).toMatchObject({ fence: '100.2', checkpoint: { phase: 'pr-opened', pr_number: 3 } });

    // The owner finishes: the checkpoint ref goes; the stale lease cannot delete a newer one.
    await dropRemoteCheckpoint({ root: a.root, checkpointsDir: a.checkpointsDir, issue: 7 });
    expect(git(bare, 'rev-parse', checkpointRef(7))).toBe(owned);
    await dropRemoteCheckpoint({ root: b.root, checkpointsDir: b.checkpointsDir, issue: 7 });
    expect(git(bare, 'for-each-ref', 'refs/loom/')).toBe('');
  });

  it('two workers taking the same issue over at once: exactly one wins', async () => {
    const { bare, a, b } = world();
    const results = await Promise.allSettled([takeOver({ ...a, fence: '200.1' }), takeOver({ ...b, fence: '200.1' })]);
    const won = results.filter((r) => r.status === 'fulfilled');
    expect(won).toHaveLength(1);
    expect((results.find((r) => r.status === 'rejected') as PromiseRejectedResult).reason).toBeInstanceOf(FencedError);
    expect(remoteMessage(bare).fence).toBe('200.1');
  });

  it('two workers taking one run over, the second one reading origin before the first pushes and pushing after: exactly one wins, though their checkpoint commits would be alike', async () => {
    // One fence, no checkpoint yet, one second: the two checkpoint commits were the same commit, so
    // the second push found it there ("Everything up-to-date") and both workers took the run.
    // A git in PATH holds worker b's push until worker a is done; the dates are pinned.
    const { bare, a, b } = world();
    const real = spawnSync('sh', ['-c', 'command -v git'], { encoding: 'utf8' }).stdout.trim();
    const bin = fs.mkdtempSync(path.join(os.tmpdir(), 'loom-git-hold-'));
    dirs.push(bin);
    const gate = path.join(bin, 'go');
    fs.writeFileSync(
      path.join(bin, 'git'),
      `#!/bin/sh\ncase " $* " in *" push "*) case "$(pwd -P)" in "${b.root}"*) touch "${gate}.held"; i=0; while [ ! -e "${gate}" ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done;; esac;; esac\nexec "${real}" "$@"\n`,
      { mode: 0o755 },
    );
    const saved = { PATH: process.env.PATH, GIT_AUTHOR_DATE: process.env.GIT_AUTHOR_DATE, GIT_COMMITTER_DATE: process.env.GIT_COMMITTER_DATE };
    process.env.PATH = `${bin}:${process.env.PATH ?? ''}`;
    process.env.GIT_AUTHOR_DATE = process.env.GIT_COMMITTER_DATE = '2026-01-01T00:00:00Z';
    try {
      const second = takeOver({ ...b, fence: '400.1' }).then(
        () => 'took it',
        (error: unknown) => error,
      );
      const deadline = Date.now() + 20_000;
      while (!fs.existsSync(`${gate}.held`) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
      expect(fs.existsSync(`${gate}.held`), "worker b's push held").toBe(true);
      expect(await takeOver({ ...a, fence: '400.1' })).toBeNull();
      const owned = git(bare, 'rev-parse', checkpointRef(7));
      fs.writeFileSync(gate, '');
      expect(await second).toBeInstanceOf(FencedError);
      expect(git(bare, 'rev-parse', checkpointRef(7))).toBe(owned);
    } finally {
      for (const [key, value] of Object.entries(saved)) {
        if (value === undefined) delete process.env[key];
        else process.env[key] = value;
      }
    }
  });

  it('of two workers taking one run over (one fence), the later one is refused however late it comes', async () => {
    const { bare, a, b } = world();
    expect(await takeOver({ ...a, fence: '300.1' })).toBeNull();
    const pushed = git(bare, 'rev-parse', checkpointRef(7));
    await expect(takeOver({ ...b, fence: '300.1' })).rejects.toBeInstanceOf(FencedError);
    expect(git(bare, 'rev-parse', checkpointRef(7))).toBe(pushed);
    // A later run (the job started again) still takes it.
    await takeOver({ ...b, fence: '300.2' });
    expect(remoteMessage(bare).fence).toBe('300.2');
  });
});
