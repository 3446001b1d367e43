/**
 * `loom shepherd <issue>`: the process around one issue's lifecycle (lifecycle.ts) — taking over
 * the progress record (or claiming the issue when run by hand), the heartbeat, following the
 * issue (closed, `loom:blocked`, `loom:abort` or `loom:building` taken away: stop), graceful stop
 * on SIGTERM, and the terminal status written last.
 *
 * Exit codes are a contract with the daemon and with users (docs/shepherd.md): `ShepherdExit`.
 */
import type { LoomConfig } from '../core/config-model.js';
import type { LoomPaths } from '../config/paths.js';
import { Label } from '../core/labels.js';
import { ProgressStore } from '../process/progress-store.js';
import { TaskRecorder } from '../process/task-recorder.js';
import type { Tracker } from '../tracker/tracker.js';
import { newTaskId } from '../process/new-task.js';
import { claimIssue } from '../steps/claim-issue.js';
import { Follow } from '../steps/follow.js';
import { UserError } from '../core/errors.js';
import { missingDefaultBranch } from '../git/git.js';
import { builderCommandProblem } from '../runtimes/command-path.js';
import type { Withdrawal } from '../core/follow-issue.js';
import { shepherdWithdrawal } from '../core/follow-issue.js';
import { branchFor, Worktrees } from '../git/worktrees.js';
import type { LifecycleResult } from './lifecycle.js';
import { runLifecycle } from './lifecycle.js';
import { ShepherdExit } from './shepherd-exit.js';
import { IssueLease } from '../process/issue-lease.js';
import { worktreeHooks } from '../process/workspace-hooks.js';
import type { Checkpoint } from '../state/checkpoint-store.js';
import { CheckpointStore } from '../state/checkpoint-store.js';
import { dropRemoteCheckpoint, FencedError, publishCheckpoint, takeOver } from '../steps/remote-checkpoint.js';

export interface ShepherdOptions {
  paths: LoomPaths;
  config: LoomConfig;
  tracker: Tracker;
  issue: number;
  /** Task id given by the launcher; absent when a user runs `loom shepherd N` by hand. */
  taskId?: string;
  forceMerge: boolean;
  /**
   * Set when a `loom worker` runs this shepherd for a queue job (docs/distributed.md): the job's
   * fence. The shepherd takes the issue over from `origin` first (branch and checkpoint), pushes
   * both after every phase, and a stop for shutdown hands the issue over (work pushed, labels
   * untouched: the job goes back to the queue). The shepherd also stops when its worker dies
   * (its standard input closes).
   */
  fence?: string;
  log: (line: string) => void;
  /** Where the agents' output goes (default this process's stdout). */
  out?: (text: string) => void;
  /**
   * Asks this lifecycle to stop, as SIGTERM does (a shepherd host runs many lifecycles in one
   * process: each has its own signal, and the process's signals are the host's). When given, the
   * shepherd does not listen to SIGTERM and SIGINT itself.
   */
  signal?: AbortSignal;
}

export async function runShepherd(opts: ShepherdOptions): Promise<number> {
  const { paths, config, tracker, issue, log } = opts;
  const progress = new ProgressStore(paths.progress);
  const file = progress.shepherdFile(issue);
  let record = progress.read(file);

  if (opts.taskId === undefined) {
    // A default branch that does not exist, or a builder command that cannot run, would fail the build after the claim: refused before it.
    const baseProblem = (await missingDefaultBranch(paths.root, config.defaultBranch)) ?? builderCommandProblem(paths.root, config.roles.builder);
    if (baseProblem !== null) throw new UserError(baseProblem);
    // Run by hand: claim the issue the same way the daemon would.
    const claim = await claimIssue({ progress, tracker, issue, task_id: newTaskId(), output_file: '(terminal)', now: new Date() });
    if (!claim.ok && claim.reason === 'owned') throw new UserError(`#${issue} already has a shepherd (task ${claim.owner?.task_id ?? '?'}); see \`loom status\``);
    if (!claim.ok) throw new UserError(`#${issue} is not ready to build (it needs the ${Label.issue} label and must be open); see \`loom issue show ${issue}\``);
    record = claim.record;
  } else if (record === null || record.task_id !== opts.taskId) {
    log(`shepherd #${issue}: task ${opts.taskId} does not own this issue any more; exiting`);
    return ShepherdExit.skipped;
  }

  const recorder = new TaskRecorder(progress, file, record, paths.wake);
  const shutdown = new AbortController();
  const onSignal = () => {
    if (shutdown.signal.aborted) return;
    log(`shepherd #${issue}: asked to stop; stopping the agent`);
    shutdown.abort();
  };
  const external = opts.signal;
  if (external === undefined) {
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  } else if (external.aborted) onSignal();
  else external.addEventListener('abort', onSignal);
  const fence = opts.fence;
  if (fence !== undefined) {
    process.stdin.on('error', () => undefined);
    process.stdin.on('end', onSignal);
    process.stdin.resume();
  }
  const remote = { root: paths.root, checkpointsDir: paths.checkpoints, worktreesDir: paths.worktrees, issue };
  recorder.start('builder', config.heartbeatInterval);
  let follow: Follow<Withdrawal> | null = null;
  let lease: IssueLease | null = null;

  try {
    const current = await tracker.getIssue(issue);
    if (current === null || current.state !== 'open' || !current.labels.includes(Label.building)) {
      recorder.finish('skipped', { message: `#${issue} is not claimed (closed or relabelled)`, exit_code: ShepherdExit.skipped });
      return ShepherdExit.skipped;
    }
    if (fence !== undefined) {
      const resumed = await takeOver({ ...remote, fence });
      log(`shepherd #${issue}: took the issue over from origin (fence ${fence}${resumed ? `, resuming after ${resumed.phase}` : ''})`);
    }
    // Follow the issue: read it again every heartbeat; whatever a human did that takes it away
    // from this shepherd ends the agent's process group at once.
    follow = new Follow<Withdrawal>({
      every: config.heartbeatInterval,
      signal: shutdown.signal,
      check: async () => shepherdWithdrawal(issue, await tracker.getIssue(issue)),
    });
    // One process at a time in the issue's worktree: a support role working there finishes (it
    // stops within a heartbeat, now that the issue is claimed) before this shepherd starts; the
    // agent a killed predecessor left running is ended.
    const say = (line: string) => log(`shepherd #${issue}: ${line}`);
    lease = await IssueLease.take(paths.worktrees, issue, {
      log: say,
      signal: follow.signal,
      pollMs: Math.min(250, config.heartbeatInterval),
      onWait: (holder) => {
        recorder.phase('waiting');
        say(`waiting for process ${holder}, which works in the worktree of #${issue}, to finish`);
      },
    });
    // Stopped (shutdown, or the issue taken away) while waiting: nothing was touched.
    const result: LifecycleResult = lease === null ? { status: 'stopped', exit: ShepherdExit.shutdown, message: 'stopped before it started', merged: false, prNumber: new CheckpointStore(paths.checkpoints).read(issue)?.pr_number ?? null } : await runLifecycle(current, {
      paths,
      config,
      tracker,
      recorder,
      signal: follow.signal,
      forceMerge: opts.forceMerge,
      log: (line) => log(`shepherd #${issue}: ${line}`),
      ...(opts.out ? { out: opts.out } : {}),
      logFile: record.output_file === '(terminal)' ? null : record.output_file,
      lease,
      ...(fence !== undefined ? { publish: (checkpoint: Checkpoint, worktree: string) => publishCheckpoint({ ...remote, worktree, checkpoint }) } : {}),
    });
    follow.stop();
    if (result.status === 'stopped') {
      const now = await tracker.getIssue(issue);
      const withdrawal = shepherdWithdrawal(issue, now) ?? follow.reason;
      if (withdrawal !== null && withdrawal.kind !== 'aborted') {
        // On a worker, a closed issue's checkpoint goes from origin too: no later run resumes it, and
        // no ref is left there for ever (a blocked one keeps it: a human may hand the issue back).
        if (fence !== undefined && now?.state !== 'open') await dropRemoteCheckpoint(remote).catch(() => undefined);
        return await withdrawn(opts, recorder, withdrawal, result, lease !== null);
      }
      if (fence !== undefined && withdrawal === null && shutdown.signal.aborted) {
        // A worker's shutdown: the work goes to origin and the issue stays claimed for the next worker.
        await publishCheckpoint({ ...remote, worktree: new Worktrees(paths.root, paths.worktrees).pathFor(issue), checkpoint: new CheckpointStore(paths.checkpoints).read(issue) });
        recorder.finish('stopped', { message: 'handed over: its worker stopped', exit_code: ShepherdExit.shutdown, pr_number: result.prNumber });
        log(`shepherd #${issue}: handed over (work pushed to origin)`);
        return ShepherdExit.shutdown;
      }
      if (now?.state === 'open') {
        if (withdrawal?.kind === 'aborted') await tracker.comment(issue, `Loom: stopped by \`${Label.abort}\`; returned to \`${Label.issue}\`.${result.branchHasWork === true ? ` Work so far is kept on branch \`${branchFor(issue)}\`.` : ''}`);
        await tracker.updateLabels(issue, { add: [Label.issue], remove: [Label.abort] });
      }
      const why = withdrawal?.kind === 'aborted' ? 'aborted by loom:abort' : shutdown.signal.aborted ? 'stopped for shutdown' : result.message;
      recorder.finish('stopped', { message: why, exit_code: ShepherdExit.shutdown, pr_number: result.prNumber });
      return ShepherdExit.shutdown;
    }
    if (fence !== undefined) await dropRemoteCheckpoint(remote);
    recorder.finish(result.status, { message: result.message, exit_code: result.exit, merged: result.merged, pr_number: result.prNumber });
    log(`shepherd #${issue}: ${result.status}: ${result.message}`);
    return result.exit;
  } catch (error) {
    // A newer run of this issue owns it: stop here, touching neither the tracker nor origin.
    if (!(error instanceof FencedError)) {
      recorder.halt(error instanceof Error ? error.message.split('\n')[0] : String(error));
      throw error;
    }
    recorder.finish('stopped', { message: error.message, exit_code: ShepherdExit.shutdown });
    log(`shepherd #${issue}: ${error.message}`);
    return ShepherdExit.shutdown;
  } finally {
    if (fence !== undefined) process.stdin.off('end', onSignal);
    if (fence !== undefined) process.stdin.pause();
    follow?.stop();
    lease?.release();
    // A run that threw has no terminal status: its heartbeat stops (its process would have exited).
    recorder.halt();
    external?.removeEventListener('abort', onSignal);
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  }
}

/**
 * Someone closed the issue, marked it `loom:blocked` or took `loom:building` away while the
 * shepherd worked: the lifecycle has stopped its agent and saved the work on the branch. The
 * worktree goes (the branch stays), a comment says what happened, and no label is touched — the
 * human's labels are the issue's state now.
 */
async function withdrawn(opts: ShepherdOptions, recorder: TaskRecorder, withdrawal: Withdrawal, result: LifecycleResult, leased: boolean): Promise<number> {
  const { paths, tracker, issue, log } = opts;
  const phase = recorder.record.phase;
  // Without the lease another process works in the worktree: the daemon's cleanup removes it later.
  // `hooks.beforeRemove` runs first, as at every other removal.
  if (leased) {
    const hooks = worktreeHooks(opts.config.hooks, paths.root, (line) => log(`shepherd #${issue}: ${line}`));
    await new Worktrees(paths.root, paths.worktrees, { beforeRemove: hooks.beforeRemove }).remove(issue, { reason: withdrawal.message.replace(/`/g, '').slice(0, 72) });
  }
  if (withdrawal.kind !== 'gone') {
    const work = result.branchHasWork === true ? `its work so far is kept on branch \`${branchFor(issue)}\`` : result.branchHasWork === false ? 'it had committed nothing yet' : `its branch \`${branchFor(issue)}\` (if any) is kept as it was`;
    const held = withdrawal.kind === 'closed' ? 'closed' : withdrawal.kind === 'blocked' ? `\`${Label.blocked}\`` : null;
    const pr =
      result.prNumber === null
        ? 'No pull request was opened and nothing was merged.'
        : `Nothing was merged; PR #${result.prNumber} stays open${held === null ? ' for the support roles (Judge, Doctor, Champion)' : `; Loom will not review or merge it while the issue is ${held}`}.`;
    const resume = withdrawal.kind === 'closed' ? `Reopen it and add \`${Label.issue}\` to build it again.` : withdrawal.kind === 'blocked' ? `Add \`${Label.issue}\` (it replaces \`${Label.blocked}\`) to build it again.` : `Add \`${Label.issue}\` to build it again.`;
    await tracker.comment(issue, `Loom: stopped — ${withdrawal.message} while its shepherd was in the ${phase} phase. The agent was ended; ${work}. ${pr} ${resume}`);
  }
  const message = `stopped: ${withdrawal.message.replace(/`/g, '')}`;
  recorder.finish('stopped', { message, exit_code: ShepherdExit.withdrawn, pr_number: result.prNumber });
  log(`shepherd #${issue}: ${message}`);
  return ShepherdExit.withdrawn;
}
