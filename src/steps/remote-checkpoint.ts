/**
 * Checkpoints on `origin`, for shepherds run by `loom worker`s (docs/distributed.md): after every
 * phase the branch and the checkpoint are pushed together, so any worker can resume the issue.
 *
 * The checkpoint lives in `refs/loom/checkpoints/issue-N`, a commit with the empty tree whose
 * message is `{ "fence": "...", "checkpoint": {...} | null, "push": "<host>:<pid>:<uuid>" }` (the
 * last makes every push's commit its own, so a lease never finds its push already done). The fence orders the runs of one
 * issue (`<dispatch time>.<start count>` of the queue job): a worker taking an issue over writes its
 * fence first, and every later push is made with `--force-with-lease` on that ref, atomically with
 * the branch. A stale worker (its lock lost, its job handed to another) therefore cannot push over
 * the new owner: its lease fails and it stops (`FencedError`) without touching the tracker.
 */
import { mergePushedWork } from '../git/merge.js';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LoomError } from '../core/errors.js';
import { readJsonFile, writeFileAtomic } from '../fs/atomic-file.js';
import { git, gitMaybe } from '../git/git.js';
import { branchFor } from '../git/worktrees.js';
import type { Checkpoint } from '../state/checkpoint-store.js';
import { CheckpointStore } from '../state/checkpoint-store.js';

/** Git's empty tree: every checkpoint commit has it, the data is in the message. */
const EMPTY_TREE = '4b825dc642cb6eb9a060e54bf8d69288fbee4904';

export class FencedError extends LoomError {
  constructor(issue: number, detail: string) {
    super('fenced', `#${issue}: another worker owns this issue now (${detail}); this run stops without touching it`);
  }
}

export const checkpointRef = (issue: number): string => `refs/loom/checkpoints/issue-${issue}`;

/** Compares two fences `<a>.<b>` numerically, part by part. */
export function compareFence(a: string, b: string): number {
  const [a1 = 0, a2 = 0] = a.split('.').map(Number);
  const [b1 = 0, b2 = 0] = b.split('.').map(Number);
  return a1 !== b1 ? a1 - b1 : a2 - b2;
}

/** What this clone last wrote to the issue's ref: the lease of its next push. */
interface Lease {
  fence: string;
  sha: string;
}

const leaseFile = (checkpoints: string, issue: number) => path.join(checkpoints, `issue-${issue}.lease.json`);

function readLease(checkpoints: string, issue: number): Lease | null {
  try {
    return (readJsonFile(leaseFile(checkpoints, issue)) as Lease | undefined) ?? null;
  } catch {
    return null;
  }
}

function writeLease(checkpoints: string, issue: number, lease: Lease): void {
  fs.mkdirSync(checkpoints, { recursive: true });
  writeFileAtomic(leaseFile(checkpoints, issue), `${JSON.stringify(lease)}\n`);
}

async function remoteRefs(root: string, issue: number): Promise<{ branch: string | null; checkpoint: string | null }> {
  const out = await git(root, ['ls-remote', 'origin', `refs/heads/${branchFor(issue)}`, checkpointRef(issue)]);
  const sha = (ref: string) => out.split('\n').find((l) => l.endsWith(`\t${ref}`))?.split('\t')[0] ?? null;
  return { branch: sha(`refs/heads/${branchFor(issue)}`), checkpoint: sha(checkpointRef(issue)) };
}

async function readRemote(root: string, issue: number, sha: string): Promise<{ fence: string; checkpoint: Checkpoint | null }> {
  await git(root, ['fetch', '-q', 'origin', `+${checkpointRef(issue)}:${checkpointRef(issue)}`]);
  try {
    const body = JSON.parse(await git(root, ['log', '-1', '--format=%B', sha])) as { fence?: unknown; checkpoint?: Checkpoint | null };
    return { fence: typeof body.fence === 'string' ? body.fence : '0.0', checkpoint: body.checkpoint ?? null };
  } catch {
    return { fence: '0.0', checkpoint: null };
  }
}

async function push(cwd: string, issue: number, fence: string, checkpoint: Checkpoint | null, expected: string | null, withBranch: boolean, checkpoints: string): Promise<void> {
  // Commits someone pushed to the branch meanwhile (a human's, on the PR) are merged in, never pushed over.
  if (withBranch) await mergePushedWork(cwd, branchFor(issue));
  // `push`: what makes each push's commit its own. Two takers of one run (one fence, no checkpoint
  // yet) in the same second would make the same commit, and the later push would find it there
  // already ("Everything up-to-date") instead of being refused by the lease: both would take the run.
  const sha = await git(cwd, ['commit-tree', EMPTY_TREE, '-m', JSON.stringify({ fence, checkpoint, push: `${os.hostname()}:${process.pid}:${randomUUID()}` })], { asLoom: true });
  const refspecs = [...(withBranch ? [`+HEAD:refs/heads/${branchFor(issue)}`] : []), `${sha}:${checkpointRef(issue)}`];
  try {
    await git(cwd, ['push', '-q', '--atomic', `--force-with-lease=${checkpointRef(issue)}:${expected ?? ''}`, 'origin', ...refspecs]);
  } catch (error) {
    throw new FencedError(issue, `the push of its checkpoint was refused: ${(error as Error).message.split('\n')[0]}`);
  }
  writeLease(checkpoints, issue, { fence, sha });
}

/**
 * Takes `issue` over for a run with `fence`: the branch and checkpoint on `origin` become this
 * clone's (a local worktree of an older run goes first), and the fence is written to `origin`.
 * Throws `FencedError` when a newer run holds the issue. Returns the checkpoint resumed from.
 */
export async function takeOver(opts: { root: string; checkpointsDir: string; worktreesDir: string; issue: number; fence: string }): Promise<Checkpoint | null> {
  const { root, issue, fence } = opts;
  const remote = await remoteRefs(root, issue);
  const current = remote.checkpoint !== null ? await readRemote(root, issue, remote.checkpoint) : { fence: '0.0', checkpoint: null };
  // A fence names one run (a job's attempt): a run with the same fence already on `origin` took it
  // first, whenever that was — of two takers with one fence exactly one wins, at once or not.
  const order = remote.checkpoint === null ? 1 : compareFence(fence, current.fence);
  if (order < 0) throw new FencedError(issue, `a newer run (${current.fence}) holds it`);
  if (order === 0) throw new FencedError(issue, `another worker took this run (${fence}) over first`);
  const branch = branchFor(issue);
  const local = await gitMaybe(root, ['rev-parse', '--verify', '--quiet', `refs/heads/${branch}`]);
  if (local !== remote.branch) {
    // The origin's branch is the truth: this clone's older worktree and branch make way for it.
    const worktree = path.join(opts.worktreesDir, `issue-${issue}`);
    if (fs.existsSync(worktree)) {
      await gitMaybe(root, ['worktree', 'remove', '--force', worktree]);
      fs.rmSync(worktree, { recursive: true, force: true });
      await gitMaybe(root, ['worktree', 'prune']);
    }
    if (remote.branch !== null) await git(root, ['fetch', '-q', 'origin', `+refs/heads/${branch}:refs/heads/${branch}`]);
    else if (local !== null) await git(root, ['branch', '-q', '-D', branch]);
  }
  const store = new CheckpointStore(opts.checkpointsDir);
  if (current.checkpoint !== null) store.write(current.checkpoint);
  else store.remove(issue);
  await push(root, issue, fence, current.checkpoint, remote.checkpoint, false, opts.checkpointsDir);
  return current.checkpoint;
}

/** Pushes the worktree's branch and `checkpoint` to `origin` under this clone's lease. */
export async function publishCheckpoint(opts: { root: string; checkpointsDir: string; worktree: string; issue: number; checkpoint: Checkpoint | null }): Promise<void> {
  const lease = readLease(opts.checkpointsDir, opts.issue);
  if (lease === null) throw new FencedError(opts.issue, 'this clone never took it over');
  const withBranch = fs.existsSync(opts.worktree);
  await push(withBranch ? opts.worktree : opts.root, opts.issue, lease.fence, opts.checkpoint, lease.sha, withBranch, opts.checkpointsDir);
}

/** The issue is finished: its checkpoint ref goes from `origin` (only under this clone's lease). */
export async function dropRemoteCheckpoint(opts: { root: string; checkpointsDir: string; issue: number }): Promise<void> {
  const lease = readLease(opts.checkpointsDir, opts.issue);
  fs.rmSync(leaseFile(opts.checkpointsDir, opts.issue), { force: true });
  if (lease === null) return;
  await gitMaybe(opts.root, ['push', '-q', `--force-with-lease=${checkpointRef(opts.issue)}:${lease.sha}`, 'origin', `:${checkpointRef(opts.issue)}`]);
}
