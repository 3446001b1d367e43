/**
 * The issue lifecycle a shepherd drives: builder → PR → judge → (doctor → judge)* → merge, in the
 * issue's own worktree, with a checkpoint after every completed phase.
 *
 * Invariants owned here:
 * - a phase recorded in the checkpoint is never redone; a restarted shepherd resumes after it;
 * - work is never lost: anything an interrupted agent left uncommitted is committed before the
 *   next phase, and before giving up (WIP commit);
 * - agents only produce (commits, review text); every tracker write happens here.
 */
import type { LoomConfig } from '../core/config-model.js';
import type { LoomPaths } from '../config/paths.js';
import { Label } from '../core/labels.js';
import { holdOf } from '../core/original-labels.js';
import type { ProgressStatus } from '../core/progress.js';
import { defaultBranch, git } from '../git/git.js';
import { branchFor, WorkspaceRefusedError, Worktrees } from '../git/worktrees.js';
import { runHook, worktreeHooks } from '../process/workspace-hooks.js';
import { concludeMerge, filesWithConflictMarkers, mergeBaseForDoctor, mergePushedWork, PushedWorkConflictError } from '../git/merge.js';
import { OriginalWorkError } from '../git/original-worktree.js';
import type { TaskRecorder } from '../process/task-recorder.js';
import type { IssueLease } from '../process/issue-lease.js';
import { fenceUntrusted, parseNoChanges } from '../core/output-contracts.js';
import { shepherdWithdrawal } from '../core/follow-issue.js';
import { freshRead } from '../steps/follow.js';
import { RoleFileError } from '../config/role-file.js';
import { BudgetExceededError, RuntimeLimitedError, runRoleAgent } from '../steps/run-role-agent.js';
import { RuntimeConfigError } from '../runtimes/create-runtime.js';
import type { RunResult } from '../runtimes/runtime.js';
import type { Tracker } from '../tracker/tracker.js';
import type { Issue } from '../core/tracker-model.js';
import type { Checkpoint } from '../state/checkpoint-store.js';
import { CheckpointStore } from '../state/checkpoint-store.js';
import { judgeRound } from '../steps/judge-round.js';
import { mergePullRequest } from '../steps/merge-pull-request.js';
import { ShepherdExit } from './shepherd-exit.js';
import { crashPoint } from '../process/crash-point.js';
import { dropAgentHome } from '../runtimes/agent-homes.js';

export interface LifecycleResult {
  status: ProgressStatus;
  exit: number;
  message: string;
  merged: boolean;
  prNumber: number | null;
  /** Set when stopped: whether the branch holds commits beyond the base (work kept on it). */
  branchHasWork?: boolean;
}

export interface LifecycleDeps {
  paths: LoomPaths;
  config: LoomConfig;
  tracker: Tracker;
  recorder: TaskRecorder;
  signal: AbortSignal;
  forceMerge: boolean;
  log: (line: string) => void;
  /** Where the agents' output goes (default this process's stdout: the log file of a detached shepherd). */
  out?: (text: string) => void;
  /** Log file of this run, for comments. */
  logFile: string | null;
  /** The lease on the issue's worktree, held for the whole run (its agents are recorded there). */
  lease?: IssueLease;
  /**
   * Called after every checkpoint is written (a worker's shepherd pushes the branch and the
   * checkpoint to `origin` here, steps/remote-checkpoint.ts); a throw ends the run.
   */
  publish?: (checkpoint: Checkpoint, worktree: string) => Promise<void>;
}

/** Merge attempts started again because the base moved on while the checks ran (GitHub, mergers in other clones), before giving up. */
const MAX_BASE_MOVES = 5;

/** Thrown inside the lifecycle when the shepherd must stop (shutdown, or someone took the issue away). */
class Stopped extends Error {}

export async function runLifecycle(issue: Issue, deps: LifecycleDeps): Promise<LifecycleResult> {
  const { paths, config, tracker, recorder, log } = deps;
  const hookContext = { LOOM_ISSUE: String(issue.number), LOOM_REPO_ROOT: paths.root };
  const worktrees = new Worktrees(paths.root, paths.worktrees, { ...worktreeHooks(config.hooks, paths.root, log), log });
  const checkpoints = new CheckpointStore(paths.checkpoints);
  const n = issue.number;
  const branch = branchFor(n);
  const logRef = deps.logFile ? ` Log: \`${deps.logFile}\`` : '';

  const base = config.defaultBranch ?? (await defaultBranch(paths.root));
  // With a hosted tracker the truth is the remote's default branch; locally it is the branch itself.
  const remote = tracker.kind === 'github';
  if (remote) await git(paths.root, ['fetch', '-q', 'origin', base]);
  const baseRef = remote ? `origin/${base}` : base;
  let cp: Checkpoint | null = checkpoints.read(n);
  if (cp) log(`resuming #${n} from its checkpoint (last completed phase: ${cp.phase})`);
  /**
   * True until this run completes a phase of its own: the tracker effects of the phase a killed
   * run had recorded may be half-applied, so they are re-applied only after checking each one.
   */
  let resumed = cp !== null;

  /** Marks the issue blocked with `reason`; the comment says where the work is only when there is some. */
  const block = async (exit: number, reason: string, workNote: string): Promise<LifecycleResult> => {
    checkpoints.remove(n);
    await tracker.comment(n, `Loom: ${reason}; marking this issue \`${Label.blocked}\`. ${workNote}${logRef}`);
    await tracker.updateLabels(n, { add: [Label.blocked] });
    return { status: 'blocked', exit, message: reason, merged: false, prNumber: cp?.pr_number ?? null };
  };

  /** Not Loom's worktree: refuse it, touch nothing there, and say why. */
  const refuse = (error: WorkspaceRefusedError) =>
    block(ShepherdExit.needsHuman, `refusing to work in \`${error.where}\`: ${error.reason}`, `Loom works only in its own worktree of this repository on \`${branch}\`; nothing was changed or committed there. Move it aside, then add \`${Label.issue}\` to try again.`);

  recorder.phase('worktree');
  let prepared: Awaited<ReturnType<Worktrees['prepare']>>;
  try {
    prepared = await worktrees.prepare(n, baseRef);
  } catch (error) {
    // The original Loom's worktree needs a human (still in use, or diverged): left exactly as it is.
    if (error instanceof OriginalWorkError) return await block(ShepherdExit.needsHuman, error.message, 'Nothing was changed there.');
    if (!(error instanceof WorkspaceRefusedError)) throw error;
    return await refuse(error);
  }
  const worktree = prepared.dir;
  // A new worktree has nothing uncommitted; one an interrupted shepherd left may.
  if (prepared.existed && (await worktrees.saveWip(n, 'work left uncommitted by an interrupted shepherd'))) log(`saved uncommitted work left in ${worktree} as a WIP commit`);

  const save = async (next: Partial<Checkpoint> & { phase: Checkpoint['phase'] }): Promise<Checkpoint> => {
    const saved: Checkpoint = { issue: n, branch, base, pr_number: null, verdict: null, review: null, doctor_rounds: 0, tests_failed: false, updated_at: '', ...cp, ...next, sessions, session_runtimes: sessionRuntimes };
    cp = saved;
    checkpoints.write(saved);
    resumed = false;
    await deps.publish?.(saved, worktree);
    return saved;
  };
  const check = <R extends RunResult>(run: R): R => {
    if (run.outcome === 'aborted' || deps.signal.aborted) throw new Stopped();
    return run;
  };
  const vars = (extra: Record<string, string> = {}) => ({
    'issue.number': String(n),
    'issue.title': issue.title,
    'issue.body': fenceUntrusted(`issue #${n}`, issue.body),
    branch,
    base,
    test_command: config.testCommand ?? '(none configured)',
    ...extra,
  });
  /** Agent sessions of this issue and the runtimes that made them (kept in the checkpoint once there is one). */
  const sessions: Record<string, string> = { ...(cp?.sessions ?? {}) };
  const sessionRuntimes: Record<string, string> = { ...(cp?.session_runtimes ?? {}) };
  /**
   * Runs a role's agent; a stall or timeout is retried (WIP kept) up to `agentRetries` times,
   * resuming the agent's session where the runtime supports it (a doctor resumes the builder's).
   */
  const runAgent = async (role: 'builder' | 'doctor', attempt: number, extra: Record<string, string> = {}): Promise<RunResult> => {
    for (let retry = 0; ; retry += 1) {
      const from = role === 'doctor' && sessions.doctor === undefined ? 'builder' : role;
      const resume = sessions[from];
      const resumeRuntime = sessionRuntimes[from];
      await runHook(config.hooks, 'beforeRun', worktree, { ...hookContext, LOOM_ROLE: role }, log);
      const run = check(
        await runRoleAgent({ paths, config, role, cwd: worktree, vars: vars(extra), instructions: issue.body, attempt, issue: n, signal: deps.signal, recorder, ...(deps.lease ? { lease: deps.lease } : {}), ...(resume ? { resumeSessionId: resume, ...(resumeRuntime !== undefined ? { resumeRuntime } : {}) } : {}), ...(deps.out ? { out: deps.out } : {}) }),
      );
      await runHook(config.hooks, 'afterRun', worktree, { ...hookContext, LOOM_ROLE: role }, log);
      if (run.sessionId) {
        sessions[role] = run.sessionId;
        sessionRuntimes[role] = run.runtime;
      }
      if ((run.outcome !== 'stalled' && run.outcome !== 'timeout') || retry >= config.agentRetries) return run;
      await worktrees.saveWip(n, `${role} ${run.outcome}`);
      log(`the ${role} ${run.message}; retrying (${retry + 1} of ${config.agentRetries})`);
    }
  };
  /** Gives up: WIP saved, worktree removed, the branch kept only if it has work, the issue blocked. */
  const giveUp = async (exit: number, reason: string): Promise<LifecycleResult> => {
    const { branchDeleted } = await worktrees.remove(n, { deleteBranch: 'if-no-work', base: baseRef, reason: reason.slice(0, 72) });
    return block(exit, reason, branchDeleted ? 'No work was committed, so no branch was kept.' : `The work so far is on branch \`${branch}\`.`);
  };
  /**
   * An approval whose `loom:pr` label is not written yet: with `--force-merge` the shepherd merges
   * its approved PR at once, and the merge takes the label off again, so the label is written
   * only when the merge does not follow at once (`publishApproval`).
   */
  let approvalPending: number | null = null;
  /** Posts the verdict in the checkpoint on the PR and labels it; after a resume, only what is missing. `defer`: an approval's label waits (see `approvalPending`). */
  const publishVerdict = async (prNumber: number, at: Checkpoint, checkFirst: boolean, defer = false) => {
    const review = at.review ?? '';
    const posted = checkFirst && (await tracker.listComments(prNumber)).filter((c) => c.body.startsWith('**Loom')).at(-1)?.body === review;
    if (!posted) await tracker.comment(prNumber, review);
    crashPoint('judge:reviewed', n);
    if (defer && at.verdict === 'approve') {
      approvalPending = prNumber;
      return;
    }
    await tracker.updateLabels(prNumber, { add: [at.verdict === 'approve' ? Label.pr : Label.changesRequested] });
  };
  /** Writes a deferred approval's `loom:pr`: before the merge waits (for another merger, on checks) and whenever it does not happen. */
  const publishApproval = async () => {
    if (approvalPending === null) return;
    const prNumber = approvalPending;
    await tracker.updateLabels(prNumber, { add: [Label.pr] });
    approvalPending = null;
  };
  /** Pushes the branch to the host, with what others pushed to it meanwhile (a human's commits) merged in first. */
  const pushBranch = async () => {
    if (await mergePushedWork(worktree, branch)) log(`merged the commits pushed to ${branch} meanwhile`);
    await git(worktree, ['push', '-q', '--force-with-lease', 'origin', `HEAD:refs/heads/${branch}`]);
  };
  /** Publishes a doctor round: the branch (pushed to the host) and the PR back to review. Idempotent. */
  const publishDoctored = async (prNumber: number) => {
    if (remote) await pushBranch();
    await tracker.updateLabels(prNumber, { add: [Label.reviewRequested] });
  };

  /** Reads the issue again before a step others would see; stops when someone took it away. */
  const stillOurs = async () => {
    if (deps.signal.aborted || shepherdWithdrawal(n, await freshRead(() => tracker.getIssue(n))) !== null) throw new Stopped();
  };

  try {
    // Builder. No new commit is a decision only when the builder says so (`NO CHANGES NEEDED:
    // <reason>`); a builder that made no commit and said nothing failed, and is retried.
    if (cp === null) {
      // A retry starts from the current base, keeping what an earlier attempt committed.
      if (prepared.branchExisted) {
        const update = await worktrees.updateFromBase(n, baseRef);
        if (update === 'rebased') log(`rebased ${branch} onto ${base}`);
        if (update === 'merged') log(`merged ${base} into ${branch} (the earlier work does not rebase cleanly)`);
        if (update === 'conflict') return await giveUp(ShepherdExit.needsHuman, `the work on branch \`${branch}\` conflicts with \`${base}\` (it neither rebases nor merges cleanly); resolve the conflict on the branch, or delete the branch to start over`);
      }
      recorder.phase('builder');
      log(`builder started in ${worktree}`);
      for (let attempt = 1; ; attempt += 1) {
        const run = await runAgent('builder', attempt);
        if (run.outcome !== 'success') return await giveUp(ShepherdExit.builderFailed, `the builder ${run.message}${run.outcome === 'stalled' || run.outcome === 'timeout' ? ` (after ${config.agentRetries + 1} attempts)` : ''}`);
        // A commit Loom has just made is one the base lacks; only otherwise is the branch counted.
        const committed = await worktrees.commitAll(n, `#${n}: ${issue.title}\n\nChanges the builder left uncommitted, committed by Loom.`);
        const commits = committed ? 1 : Number(await git(worktree, ['rev-list', '--count', `${baseRef}..HEAD`]));
        if (commits > 0) break;
        const reason = parseNoChanges(run.output);
        if (reason !== null) {
          await stillOurs();
          await tracker.close(n, `Loom: no changes needed — ${reason}.${logRef}`);
          await worktrees.remove(n, { deleteBranch: true, reason: 'no changes needed' });
          checkpoints.remove(n);
          dropAgentHome(paths, n, log);
          return { status: 'no-changes', exit: ShepherdExit.noChanges, message: reason, merged: false, prNumber: null };
        }
        const silent = `the builder made no commit and did not say \`NO CHANGES NEEDED: <reason>\``;
        if (attempt > config.agentRetries) return await giveUp(ShepherdExit.builderFailed, `${silent} (after ${attempt} attempts)`);
        log(`${silent}; retrying (${attempt} of ${config.agentRetries})`);
      }
      cp = await save({ phase: 'built' });
    }

    // Pull request: the one already open for this branch (an earlier run opened it) or a new one.
    if (cp.phase === 'built') {
      recorder.phase('pr');
      await stillOurs();
      if (remote) await pushBranch();
      const open = prepared.branchExisted || resumed ? (await tracker.listPullRequests({ state: 'open' })).find((p) => p.head === branch && p.base === base) : undefined;
      let prNumber: number;
      if (open !== undefined) {
        if (!open.labels.includes(Label.reviewRequested)) await tracker.updateLabels(open.number, { add: [Label.reviewRequested] });
        prNumber = open.number;
        log(`reusing the open PR #${open.number} for ${branch}`);
      } else {
        const pr = await tracker.createPullRequest({
          title: `#${n}: ${issue.title}`,
          body: `Closes #${n}\n\nBuilt by Loom on branch \`${branch}\`.`,
          head: branch,
          base,
          labels: [Label.reviewRequested],
          closesIssue: n,
        });
        crashPoint('pr:created', n);
        prNumber = pr.number;
        log(`opened PR #${pr.number}`);
      }
      cp = await save({ phase: 'pr-opened', pr_number: prNumber });
    }

    let baseMoves = 0;
    for (;;) {
      const prNumber = cp.pr_number as number;
      // Judge: the verdict is recorded first, then published, so a kill in between is finished on resume.
      if (cp.phase === 'pr-opened' || cp.phase === 'doctored') {
        if (resumed && cp.phase === 'doctored') await publishDoctored(prNumber);
        recorder.phase('judge');
        const round = cp.doctor_rounds + 1;
        // The judge round runs the test command in the worktree: it gets the same hooks as an agent run.
        await runHook(config.hooks, 'beforeRun', worktree, { ...hookContext, LOOM_ROLE: 'judge' }, log);
        const outcome = await judgeRound({ paths, config, issue, prNumber, worktree, base: baseRef, branch, attempt: round, signal: deps.signal, recorder, ...(deps.lease ? { lease: deps.lease } : {}), ...(deps.out ? { out: deps.out } : {}) });
        await runHook(config.hooks, 'afterRun', worktree, { ...hookContext, LOOM_ROLE: 'judge' }, log);
        if (deps.signal.aborted) throw new Stopped();
        if (outcome.agentError !== null) return await giveUp(ShepherdExit.needsHuman, outcome.agentError);
        log(`judge round ${round}: ${outcome.verdict === 'approve' ? 'approved' : 'changes requested'}`);
        cp = await save({ phase: 'judged', verdict: outcome.verdict, review: outcome.review, tests_failed: outcome.gate.ran && !outcome.gate.passed });
        await publishVerdict(prNumber, cp, false, deps.forceMerge);
      } else if (resumed && cp.phase === 'judged') {
        await publishVerdict(prNumber, cp, true);
        resumed = false;
      }

      // Doctor.
      if (cp.verdict === 'changes') {
        if (cp.doctor_rounds >= config.maxDoctorRounds) {
          const exit = cp.tests_failed ? ShepherdExit.testsFailed : ShepherdExit.needsHuman;
          return await giveUp(exit, `the judge still requests changes after ${cp.doctor_rounds} doctor round(s)${cp.tests_failed ? ' (the test gate fails)' : ''}`);
        }
        recorder.phase('doctor');
        const attempt = cp.doctor_rounds + 1;
        // A conflict with the moved base: the Doctor works with the base merged in (merge in progress).
        const conflict = cp.conflict ?? [];
        if (conflict.length > 0) {
          const unmerged = await mergeBaseForDoctor(worktree, baseRef);
          log(`merged ${base} into ${branch} for the doctor${unmerged.length ? `; conflicts in ${unmerged.join(', ')}` : ''}`);
        }
        log(`doctor round ${attempt}`);
        const run = await runAgent('doctor', attempt, { 'pr.number': String(prNumber), review: fenceUntrusted('review', cp.review ?? '') });
        if (run.outcome !== 'success') return await giveUp(ShepherdExit.builderFailed, `the doctor ${run.message}`);
        await concludeMerge(worktree, `Merge ${base} into ${branch}\n\nConflicts resolved by the doctor (round ${attempt}), committed by Loom.`);
        await worktrees.commitAll(n, `#${n}: address review (doctor round ${attempt})\n\nChanges the doctor left uncommitted, committed by Loom.`);
        const markers = await filesWithConflictMarkers(worktree, conflict);
        if (markers.length > 0) {
          // Never judged, never merged while a conflict marker is left: another doctor round.
          const review = `conflict markers are still in ${markers.map((f) => `\`${f}\``).join(', ')} after doctor round ${attempt}: resolve them (keep both changes' intent) and commit.`;
          cp = await save({ phase: 'judged', verdict: 'changes', review, doctor_rounds: attempt, tests_failed: false, conflict: markers });
          if (remote) await pushBranch();
          await tracker.comment(prNumber, `**Loom** — ${review}`);
          continue;
        }
        cp = await save({ phase: 'doctored', doctor_rounds: attempt, verdict: null, conflict: [] });
        await publishDoctored(prNumber);
        continue;
      }

      // Approved: merge, or leave it to the Champion (always when a human holds it).
      await stillOurs();
      const held = deps.forceMerge ? await heldFor(tracker, n, prNumber) : undefined;
      if (held !== undefined) log(`PR #${prNumber} is held (${held}); not merging it`);
      if (!deps.forceMerge || held !== undefined) {
        await publishApproval();
        const note =
          held === Label.manualMerge
            ? `Loom: PR #${prNumber} is approved (\`${Label.pr}\`) and marked \`${Label.manualMerge}\`: a human merges it.`
            : held !== undefined
              ? `Loom: PR #${prNumber} is approved (\`${Label.pr}\`) but held (\`${held}\`); it is merged once a human removes the hold.`
              : `Loom: PR #${prNumber} is approved (\`${Label.pr}\`); the Champion merges it.`;
        if (!resumed || (await tracker.listComments(n)).at(-1)?.body !== note) await tracker.comment(n, note);
        // Finished here: the worktree goes (the branch stays for the PR), then the claim, then the checkpoint.
        // Approved as committed: what the test gate and the judge left uncommitted is not part of it.
        await worktrees.remove(n, { reason: 'approved', discard: true });
        await tracker.updateLabels(n, { remove: [Label.building] });
        checkpoints.remove(n);
        log(`PR #${prNumber} approved; left for the Champion`);
        return { status: 'completed', exit: ShepherdExit.success, message: `PR #${prNumber} approved; awaiting merge`, merged: false, prNumber };
      }
      recorder.phase('merge');
      // A worker's shepherd checks it still owns the issue on origin right before merging.
      await deps.publish?.(cp, worktree);
      // Its state and labels only (GitHub: read as an issue, so a base another merge moved does not make it a new answer).
      const look = await tracker.pullRequestState(prNumber);
      if (look === null || look.state === 'closed') return await giveUp(ShepherdExit.needsHuman, `PR #${prNumber} was closed without being merged`);
      const pr = { number: prNumber, state: look.state, title: `#${n}: ${issue.title}` };
      // A shepherd that publishes its checkpoints to origin runs on a worker, one of several clones.
      const merged = await mergePullRequest({ paths, config, tracker, pr, issue: n, base, by: 'shepherd', signal: deps.signal, log, beforeWait: publishApproval, fleet: deps.publish !== undefined });
      // Not merged (whatever follows): the approval is on the PR first, as it would have been all along.
      if (!merged.ok) await publishApproval();
      if (merged.ok) {
        log(merged.already ? `PR #${prNumber} was already merged into ${base} (as ${merged.commit.slice(0, 12)}) by an interrupted run; recorded the merge` : `merged PR #${prNumber} as ${merged.commit.slice(0, 12)}`);
        if (merged.guard?.result === 'red') return { status: 'completed', exit: ShepherdExit.success, message: `merged PR #${prNumber}, then ${merged.guard.detail.replace(/`/g, '')}`, merged: true, prNumber };
        return { status: 'completed', exit: ShepherdExit.success, message: `merged PR #${prNumber}`, merged: true, prNumber };
      }
      if (merged.reason === 'paused' || merged.reason === 'approval') {
        // The base is red (post-merge guard): the approved PR waits for the Champion, which merges it once the base is green.
        // requireApproval: the PR waits for a writer's approving review, which may take days: the Champion merges it then.
        log(`PR #${prNumber} approved, not merged: ${merged.message.replace(/`/g, '')}`);
        await tracker.comment(n, `Loom: PR #${prNumber} is approved (\`${Label.pr}\`) but not merged: ${merged.message}. The Champion merges it then.`);
        await worktrees.remove(n, { reason: merged.reason === 'paused' ? 'approved; merging paused' : 'approved; awaiting a review', discard: true });
        await tracker.updateLabels(n, { remove: [Label.building] });
        checkpoints.remove(n);
        return { status: 'completed', exit: ShepherdExit.success, message: `PR #${prNumber} approved; ${merged.reason === 'paused' ? 'merging is paused' : 'awaiting an approving review'}`, merged: false, prNumber };
      }
      if ((merged.reason === 'base-moved' || merged.reason === 'head-moved') && baseMoves < MAX_BASE_MOVES) {
        // Merged elsewhere meanwhile (another clone), or pushed to by someone: the next attempt
        // follows the branch, rebases, pushes and waits for the new head's checks.
        baseMoves += 1;
        log(`PR #${prNumber}: ${merged.message.replace(/`/g, '')}`);
        continue;
      }
      // Someone took the issue away while the merge waited (or ran its test gate): not merged.
      if (merged.reason === 'withdrawn' || deps.signal.aborted) throw new Stopped();
      if (merged.reason === 'pr-closed') return await giveUp(ShepherdExit.needsHuman, merged.message);
      if (merged.reason === 'conflict' && merged.files !== undefined && merged.files.length > 0) {
        // The default branch moved on and the branch does not rebase onto it: a doctor round with
        // the base merged in resolves the conflicting files, then the gates run again.
        const review = `\`${base}\` moved on and \`${branch}\` no longer applies cleanly on it. Loom merged \`${base}\` into this worktree; the merge is in progress with conflicts in ${merged.files.map((f) => `\`${f}\``).join(', ')}. Resolve each conflict keeping the intent of both sides (this issue's change and what \`${base}\` gained), remove every conflict marker, run the tests, and commit.`;
        await tracker.comment(prNumber, `**Loom** — ${review}`);
        await tracker.updateLabels(prNumber, { add: [Label.changesRequested] });
        // Out of doctor rounds: blocked for what it is (not for a judge that approved).
        if (cp.doctor_rounds >= config.maxDoctorRounds) return await giveUp(ShepherdExit.needsHuman, `\`${branch}\` still conflicts with \`${base}\` (in ${merged.files.map((f) => `\`${f}\``).join(', ')}) after ${cp.doctor_rounds} doctor round(s)`);
        log(`PR #${prNumber} conflicts with ${base} in ${merged.files.join(', ')}; a doctor round resolves it`);
        cp = await save({ phase: 'judged', verdict: 'changes', review, tests_failed: false, conflict: merged.files });
        continue;
      }
      if (merged.reason === 'review' && merged.review !== undefined) {
        // A human with write access asked for changes: a doctor round with their review.
        await tracker.comment(prNumber, `**Loom** — ${merged.review}`);
        await tracker.updateLabels(prNumber, { add: [Label.changesRequested] });
        if (cp.doctor_rounds >= config.maxDoctorRounds) return await giveUp(ShepherdExit.needsHuman, `a human review still asks for changes after ${cp.doctor_rounds} doctor round(s): ${merged.message}`);
        log(`PR #${prNumber}: ${merged.message}; a doctor round addresses it`);
        cp = await save({ phase: 'judged', verdict: 'changes', review: merged.review, tests_failed: false });
        continue;
      }
      if (merged.reason === 'checks' && merged.review !== undefined) {
        // CI failed on the pushed head: a doctor round with the failing checks and their output.
        await tracker.comment(prNumber, `**Loom** — ${merged.review}`);
        await tracker.updateLabels(prNumber, { add: [Label.changesRequested] });
        if (cp.doctor_rounds >= config.maxDoctorRounds) return await giveUp(ShepherdExit.testsFailed, `CI checks still fail after ${cp.doctor_rounds} doctor round(s): ${merged.message.replace(/^checks failed: /, '')} (their output is on PR #${prNumber})`);
        log(`PR #${prNumber}: ${merged.message}; a doctor round fixes it`);
        cp = await save({ phase: 'judged', verdict: 'changes', review: merged.review, tests_failed: true });
        continue;
      }
      if (merged.reason === 'tests') {
        // The default branch moved on and the rebased branch fails: another doctor round.
        cp = await save({ phase: 'judged', verdict: 'changes', review: `**Loom** — ${merged.message}`, tests_failed: true });
        await publishVerdict(prNumber, cp, false);
        continue;
      }
      return await giveUp(ShepherdExit.needsHuman, `PR #${prNumber} could not be merged: ${merged.message}`);
    }
  } catch (error) {
    if (error instanceof Stopped) {
      // Taken away before the merge: the PR shows its approval as it would have without the deferral.
      await publishApproval().catch(() => undefined);
      await worktrees.saveWip(n, 'stopped');
      const branchHasWork = Number(await git(worktree, ['rev-list', '--count', `${baseRef}..HEAD`])) > 0;
      return { status: 'stopped', exit: ShepherdExit.shutdown, message: 'stopped', merged: false, prNumber: cp?.pr_number ?? null, branchHasWork };
    }
    // The worktree path stopped being Loom's worktree while this run used it.
    if (error instanceof WorkspaceRefusedError) return refuse(error);
    // A human's commits on the branch that do not merge with this run's: theirs to sort out.
    if (error instanceof PushedWorkConflictError) return giveUp(ShepherdExit.needsHuman, error.message);
    // A broken role file or runtime setting, or a spent budget, needs a human, not more attempts.
    if (error instanceof RoleFileError || error instanceof RuntimeConfigError || error instanceof BudgetExceededError) return giveUp(ShepherdExit.needsHuman, error.message);
    // A rate/usage limit is not the issue's fault: back to the queue, resumed once the limit ends.
    if (error instanceof RuntimeLimitedError) {
      await worktrees.saveWip(n, 'runtime limited');
      log(error.message);
      return { status: 'stopped', exit: ShepherdExit.shutdown, message: error.message, merged: false, prNumber: cp?.pr_number ?? null };
    }
    throw error;
  }
}

/** The hold label (the original Loom's `loom:operator*`) on the PR or its issue, if any. */
async function heldFor(tracker: Tracker, issue: number, prNumber: number): Promise<string | undefined> {
  const [pr, current] = await Promise.all([tracker.pullRequestState(prNumber), tracker.getIssue(issue)]);
  // `loom:manual-merge`: a human merges the PR; never merged automatically, not even by --force-merge.
  return holdOf(pr?.labels ?? []) ?? (pr?.labels.includes(Label.manualMerge) === true ? Label.manualMerge : undefined) ?? holdOf(current?.labels ?? []);
}
