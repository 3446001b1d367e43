/**
 * Merging an approved PR into the default branch, shared by the shepherd (force mode or
 * `--force-merge`) and the Champion: under the merge lock, rebase the branch if the default
 * branch moved on (and run the test gate again if it did), merge with a merge commit, then mark
 * the PR merged, close the issue, and remove the worktree, branch and checkpoint — in that order,
 * so that whatever a kill leaves half-done, a later run (or the daemon's cleanup) can finish.
 */
import { worktreeHooks } from '../process/workspace-hooks.js';
import fs from 'node:fs';
import path from 'node:path';
import type { LoomConfig } from '../core/config-model.js';
import type { LoomPaths } from '../config/paths.js';
import { git, gitMaybe } from '../git/git.js';
import { approvalsOf, branchInBase, conflictingFiles, mergeIntoBase, mergePushedWork, rebaseIfBehind, withMergeLock } from '../git/merge.js';
import { MergeRejectedError, TrackerUnavailableError } from '../tracker/tracker-errors.js';
import { branchFor, WorkspaceRefusedError, Worktrees } from '../git/worktrees.js';
import type { Tracker } from '../tracker/tracker.js';
import type { Issue, MergeLook, PullRequest } from '../core/tracker-model.js';
import { CheckpointStore } from '../state/checkpoint-store.js';
import { mergeHold } from '../core/follow-issue.js';
import { runTestGate } from './judge-round.js';
import { NO_CHECK_YET, waitForChecks } from './wait-for-checks.js';
import { formatDuration } from '../core/duration.js';
import { failingChecksReview } from '../core/checks.js';
import { actionableReviews, approvedCommits, handledReviews, reviewsForDoctor, writerApproval } from '../core/reviews.js';
import { crashPoint } from '../process/crash-point.js';
import { EventLog } from '../process/event-log.js';
import { MergeQueue } from '../process/merge-queue.js';
import { BaseGuardStore } from '../state/base-guard-store.js';
import { dropAgentHome } from '../runtimes/agent-homes.js';
import { baseHasChecks, guardAfterMerge, guardBeforeMerge, type GuardContext, type GuardVerdict } from './base-guard.js';

/**
 * `withdrawn`: the issue no longer allows the merge (closed, blocked, aborted, or its ownership
 * changed); `pr-closed`: the PR is no longer open. Both are found by the re-read right before
 * the merge and change nothing. `missing-branch`: the issue branch is gone (and not merged).
 */
export type MergeOutcome =
  /** `already`: an earlier, interrupted run had merged it; this run only recorded the merge. */
  | { ok: true; commit: string; already: boolean; /** What the post-merge guard found (absent: nothing new merged). */ guard?: GuardVerdict }
  | {
      ok: false;
      /**
       * `paused`: the post-merge guard found the base red; nothing merges until it is green again.
       * `review`: a writer's review asks for changes (`review`: the Doctor's work list).
       * `approval`: `requireApproval` and no writer approves yet.
       * `base-moved`: GitHub: the base moved on while the checks ran (a merger in another clone):
       *   not merged on checks of a head tested against an older base; the next attempt updates the branch.
       * `head-moved`: GitHub: someone pushed to the PR's branch while its checks ran: not merged on
       *   the older head's checks; the next attempt follows the branch and waits for the new head's.
       */
      reason: 'conflict' | 'tests' | 'checks' | 'dirty-main' | 'locked' | 'withdrawn' | 'pr-closed' | 'missing-branch' | 'paused' | 'review' | 'approval' | 'base-moved' | 'head-moved';
      message: string;
      /** With `conflict` when the branch does not rebase onto the moved base: the files that conflict. */
      files?: string[];
      /** With `checks`: the Doctor's work list when checks failed (absent when they never finished); with `review`: the reviews to address. */
      review?: string;
    };

/** How long a merger waits for the lock before `beforeWait` runs, ms. */
const LOCK_PATIENCE_MS = 5_000;
/** How long a merger waits for another merge to finish, ms. */
const MERGE_LOCK_WAIT_MS = 10 * 60_000;
/** Merge requests sent to a host before a run gives up on an unavailable tracker. */
const MERGE_ATTEMPTS = 4;
/** First wait before a failed merge request is sent again (doubling), ms. */
const MERGE_RETRY_MS = 500;
/** A look at the issue that took longer than this is taken again before a host merges, ms. */
const FRESH_LOOK_MS = 1_000;
/** Looks taken before merging on the last one, however slow the tracker answers. */
const FRESH_LOOK_TRIES = 3;
/**
 * How old the merge look (`Tracker.mergeLook`, taken before the merge lock) may be and still
 * settle the checks and say "no review", ms: the lock taken at once, a fetch and a push. After a
 * longer wait for the lock, or a test gate after a rebase, another look is taken.
 */
const LOOK_REUSE_MS = 15_000;

/**
 * Every step first asks whether its effect already happened, so a run killed anywhere in here
 * and started again finishes the merge exactly once (docs/shepherd.md, crash windows):
 * the branch already in the base → the merge is only recorded; the PR already merged → not
 * merged again; the issue already closed → not closed (or commented on) again.
 */
export async function mergePullRequest(opts: {
  paths: LoomPaths;
  config: LoomConfig;
  tracker: Tracker;
  /** The PR as far as merging needs it (the shepherd knows it without reading the PR). */
  pr: Pick<PullRequest, 'number' | 'state' | 'title'>;
  issue: number;
  base: string;
  /** Who merges: the shepherd that owns the issue, or the Champion (PRs no shepherd owns). */
  by: 'shepherd' | 'champion';
  signal?: AbortSignal;
  /** Where the workspace hooks' failures and timings are logged. */
  log?: (line: string) => void;
  /** Run before the merge waits: behind another merger in the queue, or on pending checks (the shepherd labels a deferred approval then). */
  beforeWait?: () => Promise<void>;
  /** Other clones merge into this base too (a worker's shepherd; the daemon's Champion with the `bullmq` executor). */
  fleet?: boolean;
}): Promise<MergeOutcome> {
  const { paths, config, tracker, pr, issue, base } = opts;
  // The Champion may create the worktree (and removes it once merged): the workspace hooks run as for a shepherd's.
  const worktrees = new Worktrees(paths.root, paths.worktrees, { ...worktreeHooks(config.hooks, paths.root, opts.log ?? (() => undefined)), ...(opts.log ? { log: opts.log } : {}) });
  const branch = branchFor(issue);
  const remote = tracker.kind === 'github';
  const baseRef = remote ? `origin/${base}` : base;
  /**
   * `recorded`: the merge happened earlier (an interrupted run, or someone else): the issue is
   * read first, and one already closed only loses what is left of its workflow labels (GitHub
   * closes the issue itself when a PR saying `Closes #N` merges into the default branch, and
   * leaves its labels). `seen`: the issue as read right before this run's host merge — one write
   * closes it and takes the labels off, with no read and no comment (GitHub's timeline links the
   * merged PR).
   */
  const closeIssue = async (commit: string, recorded: boolean, seen?: Issue | null, prLabels?: readonly string[]) => {
    // `prLabels`: the merged PR's labels as last looked at, when its workflow labels are still to come off (with the issue's, in one write where the tracker can).
    if (!recorded && remote && seen?.state === 'open') {
      await tracker.close(issue, undefined, 'completed', { labels: seen.labels, ...(prLabels !== undefined ? { pr: { number: pr.number, labels: prLabels } } : {}) });
      return;
    }
    // A merged PR stays merged: closing it only takes off what is left of its workflow labels.
    if (prLabels !== undefined || (recorded && remote)) await tracker.close(pr.number);
    const now = seen !== undefined ? seen : recorded ? await tracker.getIssue(issue) : undefined;
    if (now === null) return;
    if (now !== undefined && now.state !== 'open') {
      await tracker.close(issue);
      return;
    }
    await tracker.close(issue, `Loom: merged PR #${pr.number} into \`${base}\`${remote ? '' : ` as ${commit.slice(0, 12)}`}.`);
  };
  // GitHub: one look at the PR in place of the reads it settles — no review to read, checks
  // passed or none on its head and the base's (src/tracker/github/github-merge-look.ts).
  // Each look costs a point: none before the reviews when an approval must be read anyway, or
  // while merging is paused (an attempt that ends at once, and comes again).
  const takeLook = async (head: string | null) => (remote && tracker.mergeLook !== undefined && head !== null ? await tracker.mergeLook(pr.number, base, head) : null);
  const localHead = () => gitMaybe(paths.root, ['rev-parse', '--verify', '-q', `refs/heads/${branch}^{commit}`]);
  /** The look saw no review, and none has to be read for an approval. */
  const noReview = (l: MergeLook | null) => l !== null && l.reviews === 0 && !config.requireApproval;
  const lookFirst = remote && !config.requireApproval && new BaseGuardStore(paths.baseGuard).read().paused === null;
  let look = lookFirst ? await takeLook(await localHead()) : null;
  // Human reviews first, outside the queue: a PR a writer wants changed (or, with requireApproval, none approved yet) does not wait for the lock.
  const reviewed = noReview(look) ? null : await humanReviewGate(tracker, config, pr.number, { root: paths.root, baseRef, sha: localHead });
  if (reviewed !== null) return reviewed;
  // Not the merger's signal: a shepherd's aborts once the merge closes its issue, and the guard must finish after that.
  const guard: GuardContext = { paths, config, tracker, base, fleet: opts.fleet === true || config.executor.kind === 'bullmq', ...(opts.log ? { log: opts.log } : {}) };
  // In the queue from now until done: `loom status` shows who waits for the lock, in order.
  const queue = new MergeQueue(paths.mergeQueue);
  const guardStore = new BaseGuardStore(paths.baseGuard);
  const ticket = queue.join({ pr: pr.number, issue, by: opts.by });
  // A wait for the lock longer than a moment (another merger waiting on its checks) runs `beforeWait` meanwhile; a failure there is left to its later calls.
  let waited: Promise<void> | null = null;
  const patience = opts.beforeWait === undefined ? null : setTimeout(() => {
    waited = opts.beforeWait!().catch(() => undefined);
  }, LOCK_PATIENCE_MS);
  // The merge's event is written as soon as the tracker knows of the merge, before the issue
  // closes: whoever sees the issue closed finds the merge in the event log. A new merge has no
  // event yet; one an earlier, interrupted run made may have it.
  const events = new EventLog(paths.events);
  const recordMergeEvent = (commit: string, already: boolean) => {
    if (already) events.recordMerge({ issue, pr: pr.number, commit });
    else events.emit('pr.merged', { issue, pr: pr.number, commit });
  };
  // Set when this run wrote the issue's checkpoint (a merger other than its shepherd: the Champion).
  let wroteCheckpoint = false;
  const result = await withMergeLock(path.join(paths.dir, 'merge.lock'), MERGE_LOCK_WAIT_MS, async (): Promise<MergeOutcome> => {
    if (patience !== null) clearTimeout(patience);
    if (waited !== null) await waited;
    queue.update(ticket, 'merging');
    if (remote) await git(paths.root, ['fetch', '-q', 'origin', base]);
    // What the PR's branch holds on origin: a branch made on another machine, or a push to the PR (a human's commit is merged with it, never pushed over).
    if (remote) await followRemoteBranch(paths.root, branch, worktrees.pathFor(issue));
    const inBase = await branchInBase(paths.root, branch, baseRef);
    if (pr.state === 'merged' || (!remote && inBase.state === 'merged')) {
      // Merged by an earlier run that was killed before it recorded everything.
      const commit = inBase.state === 'merged' ? inBase.commit : await git(paths.root, ['rev-parse', baseRef]);
      if (pr.state === 'open' && (await tracker.getPullRequest(pr.number))?.state === 'open') await tracker.markMerged(pr.number);
      recordMergeEvent(commit, true);
      await closeIssue(commit, true);
      return { ok: true, commit, already: true };
    }
    if (inBase.state === 'missing') return { ok: false, reason: 'missing-branch', message: `branch ${branch} no longer exists` };
    // The post-merge guard first: a merge a killed merger left unverified is verified now, and
    // nothing merges onto a base that went red.
    queue.update(ticket, 'verifying the base');
    const paused = await guardBeforeMerge(guard);
    if (paused !== null) return { ok: false, reason: 'paused', message: paused };
    queue.update(ticket, 'merging');
    // The worktree is needed to rebase (and run the test gate) when the base moved on, and on a
    // host to push from; a local merge of a branch that contains the base needs neither.
    const behind = inBase.state === 'unmerged' && inBase.behind;
    const worktree = remote || behind ? await worktrees.ensure(issue, baseRef) : null;
    const rebase = worktree !== null && behind ? await rebaseIfBehind(worktree, baseRef, config.updateStrategy) : { rebased: false, conflict: false };
    if (worktree !== null && rebase.conflict) {
      const files = await conflictingFiles(worktree, baseRef);
      return { ok: false, reason: 'conflict', message: `${branch} does not ${config.updateStrategy === 'merge' ? 'merge cleanly with' : 'rebase cleanly onto'} ${base}${files.length ? ` (conflicts in ${files.map((f) => `\`${f}\``).join(', ')})` : ''}`, files };
    }
    if (worktree !== null && rebase.rebased) {
      const gate = await runTestGate(config, worktree, opts.signal);
      if (!gate.passed) return { ok: false, reason: 'tests', message: `after rebasing onto ${base} the test gate fails:\n\n\`\`\`\n${gate.output}\n\`\`\`` };
    }
    // The host's own record of the merge (fetched base, the issue closed unless it is already).
    const recordHostMerge = async (already: boolean): Promise<MergeOutcome> => {
      await git(paths.root, ['fetch', '-q', 'origin', base]);
      const commit = await git(paths.root, ['rev-parse', `origin/${base}`]);
      recordMergeEvent(commit, already);
      await closeIssue(commit, already);
      crashPoint('merge:issue-closed', issue);
      return { ok: true, commit, already };
    };
    const { held } = await heldRightBeforeMerge(tracker, pr.number, issue, opts.by);
    // Merged meanwhile on the host (by anyone): only recorded.
    if (held === 'merged') return remote ? await recordHostMerge(true) : { ok: false, reason: 'pr-closed', message: `PR #${pr.number} is no longer open` };
    if (held !== null) return held;
    // Before the base can move: the issue's checkpoint names the PR, so whoever finds this merge
    // half-recorded after a kill (a resumed shepherd, the daemon's cleanup) knows which PR it was.
    const checkpoints = new CheckpointStore(paths.checkpoints);
    const cp = checkpoints.read(issue);
    if (cp?.pr_number !== pr.number) {
      wroteCheckpoint = true;
      checkpoints.write({ issue, branch, base, pr_number: pr.number, phase: 'judged', verdict: 'approve', review: null, doctor_rounds: cp?.doctor_rounds ?? 0, tests_failed: false, updated_at: '' });
    }
    if (remote && worktree !== null) {
      // The host merges: push the (possibly rebased) branch, merge through the API, then learn the result.
      if ((await mergePushedWork(worktree, branch)) !== null) opts.log?.(`merged the commits pushed to ${branch} meanwhile`);
      // What origin's branch held before this push: the PR's head, the commit CI has had time to run on.
      const prior = await gitMaybe(paths.root, ['rev-parse', '--verify', '-q', `refs/remotes/origin/${branch}^{commit}`]);
      await git(worktree, ['push', '-q', '--force-with-lease', 'origin', `HEAD:refs/heads/${branch}`]);
      // Only on green CI for exactly this commit (on this base): a result from an older head never counts.
      const sha = await git(worktree, ['rev-parse', 'HEAD']);
      const onPending = async (names: readonly string[]) => {
        queue.update(ticket, 'waiting on checks', names.join(', '));
        opts.log?.(`PR #${pr.number}: waiting on checks ${names.join(', ')}`);
        // A failure there is left to its later calls: the wait goes on.
        await opts.beforeWait?.().catch(() => undefined);
      };
      // Branch protection's required checks when the token can read them; else every check that reports.
      const required = await tracker.requiredChecks(base);
      // A head that was there before this push: the look at its checks settles them when none is
      // pending or failed and branch protection names none that may not have reported yet. A head
      // this push made (a rebase onto a moved base, a pushed commit merged in) has no CI result
      // yet, whatever a look says: what CI did on the PR's head before it decides — checks there,
      // and the new head's are waited for even before any shows; none there and none on the base,
      // and none will come. The look is taken again when it saw another commit, or is too old.
      const pushedNew = prior !== sha;
      const about = pushedNew ? prior : sha;
      if (about === null) look = null;
      else if (look === null || look.head !== about || Date.now() - look.at > LOOK_REUSE_MS) look = await takeLook(about);
      const unrequired = required === null || required.length === 0;
      const settled = look === null || !unrequired ? null : !pushedNew ? (look.checks === 'other' ? null : look.checks) : look.checks === 'none' && look.base?.checks === false ? 'none' : null;
      // Without a look (GitHub did not answer it): the previous head's checks are read instead.
      const expectNew = pushedNew && (look !== null ? look.checks !== 'none' : prior !== null && (await tracker.checks(prior)).length > 0);
      const checks = settled !== null ? { state: settled } : await waitForChecks({ tracker, sha, pollMs: config.checksPollInterval, timeoutMs: config.checksTimeout, onPending, required, expectChecks: expectNew, ...(opts.signal ? { signal: opts.signal } : {}) });
      if (checks.state === 'aborted') return { ok: false, reason: 'withdrawn', message: 'stopped while waiting on checks' };
      if (checks.state === 'timeout') return { ok: false, reason: 'checks', message: checksTimedOut(checks, config.checksTimeout, required) };
      if (checks.state === 'failure') {
        const review = failingChecksReview(checks.failing, sha);
        return { ok: false, reason: 'checks', message: `checks failed: ${checks.failing.map((c) => `${c.name} (${c.conclusion})`).join(', ')}`, review };
      }
      // Read again right before the merge: a review may have come in while the checks ran.
      // (Not when the look settled the checks: no time passed since it saw no review.)
      const late = settled !== null && noReview(look) ? null : await humanReviewGate(tracker, config, pr.number, { root: paths.root, baseRef, sha: () => Promise.resolve(sha) });
      if (late !== null) return late;
      // The base must still be the one CI tested this head on: a merger in another clone (a
      // worker on another machine) is not held by this clone's lock and may have merged meanwhile.
      // (No CI: no result to be stale; the merge goes on as it did.)
      if (checks.state === 'success') {
        await git(paths.root, ['fetch', '-q', 'origin', base]);
        if ((await gitMaybe(worktree, ['merge-base', '--is-ancestor', baseRef, 'HEAD'])) === null) {
          return { ok: false, reason: 'base-moved', message: `\`${base}\` moved on while the checks ran; the branch is brought up to date and its checks are waited for again` };
        }
      }
      // CI that runs on the base only (not on PRs) reports on the base's new head a moment after
      // the merge: the guard expects checks there when the PR had some or the base's head had.
      const expectChecks = checks.state !== 'none' || (await baseHasChecks({ paths, tracker }, await git(paths.root, ['rev-parse', `${baseRef}^{commit}`]), look?.base ?? null));
      // The host merges whatever the issue has become meanwhile, so the merge follows a fresh look
      // at the issue and the PR, and a merge request that failed is sent again only after another.
      // A request whose answer was lost may have merged it: a look that finds it merged records it.
      let seen: Issue | null = null;
      let prLabels: readonly string[] = [];
      for (let attempt = 1; ; attempt += 1) {
        const look = await heldOnFreshLook(tracker, pr.number, issue, opts.by);
        const again = look.held;
        seen = look.issue;
        prLabels = look.prLabels;
        if (again === 'merged') break;
        if (again !== null) return again;
        try {
          // Pinned to the head the checks passed on: GitHub refuses (409) a head that moved since.
          // The PR's workflow labels come off with the issue's close below (one write for both).
          await tracker.markMerged(pr.number, { sha });
          break;
        } catch (error) {
          // 409: the head is not (yet, for GitHub) the one the checks passed on. Someone pushed to
          // the branch: its new head is followed and its own checks waited for, never merged on these.
          if (error instanceof MergeRejectedError && error.retryable) {
            const there = (await gitMaybe(paths.root, ['ls-remote', 'origin', `refs/heads/${branch}`]))?.split(/\s/)[0];
            if (there !== undefined && there !== '' && there !== sha) return { ok: false, reason: 'head-moved', message: `\`${branch}\` moved on (to ${there.slice(0, 12)}) while the checks of ${sha.slice(0, 12)} ran; the new head's checks are waited for` };
          }
          // Otherwise looked at and sent again, then a refusal.
          if (error instanceof MergeRejectedError && (!error.retryable || attempt >= MERGE_ATTEMPTS)) return { ok: false, reason: 'conflict', message: error.message };
          if (!(error instanceof MergeRejectedError) && (!(error instanceof TrackerUnavailableError) || attempt >= MERGE_ATTEMPTS)) throw error;
          await sleep(MERGE_RETRY_MS * 2 ** (attempt - 1));
        }
      }
      crashPoint('merge:pr-marked', issue);
      await git(paths.root, ['fetch', '-q', 'origin', base]);
      const commit = await git(paths.root, ['rev-parse', `origin/${base}`]);
      recordMergeEvent(commit, false);
      const toVerify = { base, commit, pr: pr.number, issue, title: pr.title, had_checks: expectChecks, since: new Date().toISOString() };
      guardStore.update(() => ({ verifying: toVerify }));
      await closeIssue(commit, false, seen, prLabels);
      crashPoint('merge:issue-closed', issue);
      queue.update(ticket, 'verifying the base');
      const verdict = await guardAfterMerge(guard, toVerify);
      return { ok: true, commit, already: false, guard: verdict };
    }
    const merged = await mergeIntoBase(paths.root, base, branch, `Merge #${issue}: ${pr.title.replace(/^#\d+:\s*/, '')} (PR #${pr.number})`, !rebase.rebased && inBase.state === 'unmerged' ? inBase.tips : null);
    if (!merged.ok) return merged;
    const toVerify = { base, commit: merged.commit, pr: pr.number, issue, title: pr.title, had_checks: false, since: new Date().toISOString() };
    // Before anything else can stop this run: the guard must verify this merge (a later merge finishes it otherwise).
    if (!merged.already) guardStore.update(() => ({ verifying: toVerify }));
    crashPoint('merge:base-moved', issue);
    await tracker.markMerged(pr.number);
    recordMergeEvent(merged.commit, merged.already);
    crashPoint('merge:pr-marked', issue);
    await closeIssue(merged.commit, false);
    crashPoint('merge:issue-closed', issue);
    if (merged.already) return { ok: true, commit: merged.commit, already: true };
    queue.update(ticket, 'verifying the base');
    const verdict = await guardAfterMerge(guard, toVerify);
    return { ok: true, commit: merged.commit, already: false, guard: verdict };
  }, { queue, ticket }).finally(() => {
    if (patience !== null) clearTimeout(patience);
    queue.leave(ticket);
  });
  if (result === 'locked') return { ok: false, reason: 'locked', message: 'another merge held the merge lock for too long' };
  // Not merged, and known not to be (an answer, not a kill): the checkpoint this run wrote names
  // a merge that did not happen, and would hold the PR from the Doctor and the Champion for a
  // shepherd that never comes.
  if (!result.ok && wroteCheckpoint) new CheckpointStore(paths.checkpoints).remove(issue);
  if (result.ok) {
    // The post-merge guard fired: one event (and so one notification) per reverted merge.
    if (result.guard?.result === 'red') events.emit('guard.reverted', { issue, pr: pr.number, commit: result.commit, message: result.guard.detail.replace(/`/g, ''), ...(result.guard.revert !== null ? { revert: result.guard.revert } : {}), paused: result.guard.paused });
    try {
      await worktrees.remove(issue, { deleteBranch: true, reason: 'merged' });
    } catch (error) {
      // Not Loom's worktree (a link, another checkout): left alone; the branch goes all the same.
      if (!(error instanceof WorkspaceRefusedError)) throw error;
      await gitMaybe(paths.root, ['branch', '-D', branch]);
    }
    new CheckpointStore(paths.checkpoints).remove(issue);
    // Merged and closed: the homes its agents had (sessions, login copies) are of no further use.
    // Outside the merge lock: removing a large home holds no other merger up.
    dropAgentHome(paths, issue, opts.log);
  }
  return result;
}

/** What a wait on checks that timed out tells a human: which checks, which never reported, and what to do. */
function checksTimedOut(wait: { pending: readonly string[]; silent: readonly string[] }, timeoutMs: number, required: readonly string[] | null): string {
  const running = wait.pending.filter((n) => !wait.silent.includes(n));
  const silent = wait.silent.filter((n) => n !== NO_CHECK_YET);
  const parts = [
    running.length > 0 ? `still running: ${running.join(', ')}` : '',
    silent.length > 0 ? `never reported: ${silent.join(', ')}${required !== null && required.length > 0 ? ' (required by branch protection: is a CI set up to report it on this branch?)' : ''}` : '',
  ].filter(Boolean);
  return `checks still pending after ${formatDuration(timeoutMs)} (checksTimeout): ${parts.length > 0 ? parts.join('; ') : wait.pending.join(', ')}`;
}

/**
 * A merger (the Champion, or the shepherd) merges what the PR's branch holds on `origin`: a branch
 * made on another machine (a `loom worker`'s shepherd left the PR to the Champion) is brought into
 * this clone, and one that moved on there (a human's push to the PR) is fast-forwarded; a local branch ahead of origin's, or
 * apart from it, is left as it is.
 */
async function followRemoteBranch(root: string, branch: string, worktree: string): Promise<void> {
  const tracking = `refs/remotes/origin/${branch}`;
  if ((await gitMaybe(root, ['fetch', '-q', 'origin', `+refs/heads/${branch}:${tracking}`])) === null) return;
  const there = await gitMaybe(root, ['rev-parse', '--verify', '-q', `${tracking}^{commit}`]);
  if (there === null) return;
  const here = await gitMaybe(root, ['rev-parse', '--verify', '-q', `refs/heads/${branch}^{commit}`]);
  if (here === null) {
    await git(root, ['update-ref', `refs/heads/${branch}`, there, '']);
    return;
  }
  if (here === there || (await gitMaybe(root, ['merge-base', '--is-ancestor', here, there])) === null) return;
  const checkedOut = fs.existsSync(worktree) && (await gitMaybe(worktree, ['symbolic-ref', '-q', 'HEAD'])) === `refs/heads/${branch}`;
  if (checkedOut) await gitMaybe(worktree, ['merge', '-q', '--ff-only', there]);
  else await git(root, ['update-ref', `refs/heads/${branch}`, there, here]);
}

/**
 * What human reviews say about merging now (core/reviews.ts): null to go on; `review` with the
 * Doctor's work list when a writer asks for changes not handed over yet; `approval` when
 * `requireApproval` is on and writers do not approve the change of `head.sha` (the head to be
 * merged; null: not known yet, and the gate right before the merge decides).
 */
/** `head.sha`: the PR head's commit, looked up only when an approval must be matched to it (no git call otherwise). */
async function humanReviewGate(tracker: Tracker, config: LoomConfig, prNumber: number, head: { root: string; baseRef: string; sha: () => Promise<string | null> }): Promise<MergeOutcome | null> {
  if (tracker.kind === 'local') return null;
  const reviews = await tracker.reviews(prNumber);
  if (reviews.length === 0 && !config.requireApproval) return null;
  const handled = handledReviews((await tracker.listComments(prNumber)).filter((c) => c.body.startsWith('**Loom')).map((c) => c.body));
  const todo = actionableReviews(reviews, handled);
  if (todo.length > 0) return { ok: false, reason: 'review', message: `review by ${[...new Set(todo.map((r) => `@${r.author}`))].join(', ')} asks for changes`, review: reviewsForDoctor(todo) };
  if (!config.requireApproval) return null;
  // An approval given on an older head counts only for the same change (the base merged in, or rebased onto, since).
  const sha = await head.sha();
  const current = sha === null ? new Set<string>() : await approvalsOf(head.root, head.baseRef, sha, approvedCommits(reviews));
  const approval = writerApproval(reviews, (id) => sha === null || id === null || current.has(id));
  if (approval.approved) return null;
  const who = (names: string[]) => names.map((a) => `@${a}`).join(', ');
  return {
    ok: false,
    reason: 'approval',
    message:
      approval.requesting.length > 0
        ? `waiting for an approving review: changes requested by ${who(approval.requesting)} (requireApproval)`
        : approval.stale.length > 0
          ? `waiting for an approving review: the approval by ${who(approval.stale)} is for an older change (requireApproval)`
          : 'waiting for an approving review from someone with write access (requireApproval)',
  };
}

// ── Follow the issue ────────────────────────────────────────────────────────────────────────
// Every merge reads the issue and the PR again immediately before merging (under the merge
// lock, after any wait for it and any test gate): a PR closed, or an issue closed, blocked,
// aborted or taken over meanwhile, is not merged. The rule is `mergeHold` (core/follow-issue.ts).
/**
 * `heldRightBeforeMerge`, taken again while the answer was slow: what the host merges on must be
 * what the issue was at most `FRESH_LOOK_MS` before (a slow tracker answers with an old state).
 */
async function heldOnFreshLook(tracker: Tracker, prNumber: number, issueNumber: number, by: 'shepherd' | 'champion'): Promise<Look> {
  for (let tries = 1; ; tries += 1) {
    const started = Date.now();
    const look = await heldRightBeforeMerge(tracker, prNumber, issueNumber, by);
    if (look.held !== null || Date.now() - started <= FRESH_LOOK_MS || tries >= FRESH_LOOK_TRIES) return look;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A look before merging: the hold that stops the merge, `merged` when the PR is merged already, or null to merge; the issue and the PR's labels as read. */
interface Look {
  held: MergeOutcome | 'merged' | null;
  issue: Issue | null;
  prLabels: string[];
}

async function heldRightBeforeMerge(tracker: Tracker, prNumber: number, issueNumber: number, by: 'shepherd' | 'champion'): Promise<Look> {
  // The PR's state and labels only (GitHub: read as an issue, which another merge moving the base does not change).
  const [pr, issue] = await Promise.all([tracker.pullRequestState(prNumber), tracker.getIssue(issueNumber)]);
  const prLabels = pr?.labels ?? [];
  if (pr?.state === 'merged') return { held: 'merged', issue, prLabels };
  const hold = mergeHold({ by, issueNumber, issue, prNumber, pr });
  if (hold === null) return { held: null, issue, prLabels };
  return { held: { ok: false, reason: hold.on === 'pr' ? 'pr-closed' : 'withdrawn', message: hold.message }, issue, prLabels };
}
