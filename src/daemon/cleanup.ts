/**
 * Leave nothing behind: what a finished, closed, blocked or abandoned issue left — its worktree,
 * its branch (once merged, or when it has no commit of its own), its checkpoint — and the temp
 * files of killed writers are removed, whatever moment a kill interrupted. Run by every iteration
 * (after the executor's actions) and once at daemon start.
 *
 * Invariants owned here:
 * - nothing of an issue a live shepherd owns, or that one is about to resume (`loom:building`,
 *   `loom:issue`), is touched; nothing at all while a Judge, Doctor or Champion run (they work in
 *   issue worktrees), and nothing of an issue whose worktree lease another process holds;
 * - a merge lock whose holder died is removed;
 * - an agent group whose starter died is ended (`endLeftoverAgents`), and a stale `index.lock`
 *   in a worktree it removes is removed first (`Worktrees.removeStaleLocks`, also a stale `HEAD.lock` and the branch's ref lock);
 * - work is never lost: uncommitted changes are saved as a WIP commit first, and a branch with
 *   commits the base lacks is kept;
 * - a merge a kill left half-recorded (the base moved or the PR was marked merged, the issue
 *   still open) is finished: the PR marked merged, the issue closed;
 * - a path at `.loom/worktrees/issue-N` that is not Loom's worktree is never touched, only reported
 *   (the original Loom's worktree on `feature/issue-N` not even that: it is adopted when built).
 *
 * Run logs past `logRetention` (30 days) are removed too, looked for at most once an hour.
 *
 * Cost: one `git for-each-ref` per call when there is nothing to clean (and a marker file's stat);
 * the tracker is asked only about issues with leftovers that the iteration's snapshot does not
 * already describe.
 */
import path from 'node:path';
import type { LoomConfig } from '../core/config-model.js';
import { worktreeHooks } from '../process/workspace-hooks.js';
import type { LoomPaths } from '../config/paths.js';
import { ISSUE_STATE_LABELS, Label, WORKFLOW_LABELS } from '../core/labels.js';
import type { Issue, PullRequest, TrackerSnapshot } from '../core/tracker-model.js';
import { removeStaleTempFiles } from '../fs/atomic-file.js';
import { defaultBranch, git, gitMaybe } from '../git/git.js';
import { branchFor, WorkspaceRefusedError, Worktrees } from '../git/worktrees.js';
import { isOriginalWorktree } from '../git/original-worktree.js';
import { removeStaleLock } from '../process/lock-file.js';
import { isProcessAlive } from '../process/process-identity.js';
import { ProgressStore, viewOf } from '../process/progress-store.js';
import { endLeftoverAgents, IssueLease } from '../process/issue-lease.js';
import { removeOrphanAgentFiles } from '../runtimes/with-agent-files.js';
import { dropAgentHome, issuesWithAgentHomes } from '../runtimes/agent-homes.js';
import { EventLog } from '../process/event-log.js';
import { pruneLogsHourly } from '../process/run-logs.js';
import { CheckpointStore } from '../state/checkpoint-store.js';
import type { Tracker } from '../tracker/tracker.js';

/** Roles whose runs work inside issue worktrees. */
const WORKTREE_ROLES = ['judge', 'doctor', 'champion'];

export interface CleanupOptions {
  paths: LoomPaths;
  config: LoomConfig;
  tracker: Tracker;
  /** The iteration's snapshot; null (at start-up) asks the tracker about each issue. */
  snapshot: TrackerSnapshot | null;
  now: number;
  /** What was done, one line each, with the issue it was done for (none: not one issue's). */
  log: (line: string, issue?: number) => void;
  /** A problem a human must look at. */
  warn: (message: string) => void;
}

/** Cleans up; returns the issues something was removed (or recorded) for. */
export async function cleanupLeftovers(o: CleanupOptions): Promise<number[]> {
  const { paths, tracker } = o;
  // The issue being cleaned up, for the lines logged meanwhile (by the worktrees, hooks and leases too).
  let current: number | undefined;
  const log = (line: string) => o.log(line, current);
  for (const dir of [paths.dir, paths.checkpoints, paths.progress, paths.limits, paths.worktrees, paths.mergeQueue, paths.host, path.join(paths.host, 'tickets')]) {
    for (const name of removeStaleTempFiles(dir, (pid) => isProcessAlive(pid))) log(`removed ${name}, left by a killed writer`);
  }
  for (const name of removeOrphanAgentFiles((pid) => isProcessAlive(pid))) log(`removed the agent files ${name}, left by a killed run`);
  pruneLogsHourly(paths.logs, o.config.logRetention, o.now, log);
  // A merger killed while holding the merge lock: the next merger would take the lock over anyway;
  // removing it here leaves nothing behind once the daemon stops.
  if (removeStaleLock(path.join(paths.dir, 'merge.lock'))) log('removed .loom/merge.lock, left by a merger that was killed');
  // Agent groups whose starter died (it recorded them in its issue lease) end here at the latest.
  for (const line of await endLeftoverAgents(paths.worktrees)) log(line);
  const progress = new ProgressStore(paths.progress);
  if (WORKTREE_ROLES.some((role) => viewOf(progress.readRole(role), o.now).alive)) return [];

  const worktrees = new Worktrees(paths.root, paths.worktrees, { beforeRemove: worktreeHooks(o.config.hooks, paths.root, log).beforeRemove, log });
  const checkpoints = new CheckpointStore(paths.checkpoints);
  const branches = new Set(refsToIssues(await git(paths.root, ['for-each-ref', '--format=%(refname:short)', 'refs/heads/loom/'])));
  const withWorktree = new Set(worktrees.list());
  const withCheckpoint = new Set(checkpoints.list());
  const candidates = [...new Set([...branches, ...withWorktree, ...withCheckpoint])].sort((a, b) => a - b);
  const todo = candidates.filter((n) => !viewOf(progress.readShepherd(n), o.now).alive);
  // The issues the loop below cleans up as closed when they are: those with a worktree or checkpoint.
  const withWork = new Set(candidates.filter((n) => withWorktree.has(n) || withCheckpoint.has(n)));
  const homesCleaned = await removeClosedIssueHomes(o, progress, withWork);
  if (todo.length === 0) return homesCleaned;

  const base = o.config.defaultBranch ?? (await defaultBranch(paths.root));
  const remote = tracker.kind === 'github';
  const baseRef = remote ? `origin/${base}` : base;
  const merged = new Set(refsToIssues((await gitMaybe(paths.root, ['for-each-ref', `--merged=${baseRef}`, '--format=%(refname:short)', 'refs/heads/loom/'])) ?? ''));
  const issueOf = async (n: number): Promise<Issue | null> => (o.snapshot === null ? null : (o.snapshot.issues.find((i) => i.number === n) ?? null)) ?? tracker.getIssue(n);
  const prOf = async (number: number): Promise<PullRequest | null> => o.snapshot?.pullRequests.find((p) => p.number === number) ?? tracker.getPullRequest(number);

  // A merger killed between the merge and its close leaves the merged PR's workflow labels (they come off with the issue's close).
  const stripMergedPr = async (pr: PullRequest) => {
    if (pr.state === 'merged' && pr.labels.some((l) => WORKFLOW_LABELS.includes(l))) await tracker.close(pr.number);
  };

  const cleaned: number[] = [];
  const events = new EventLog(paths.events);
  let fetched = false;
  for (const n of todo) {
    current = n;
    const branch = branchFor(n);
    // Never beside another Loom process in the issue's worktree (a shepherd just started, a role).
    const lease = await IssueLease.tryTake(paths.worktrees, n, log);
    if (lease === null) continue;
    try {
      // Only a branch: no work of its own (merged, or never built on) means nothing to keep.
      if (!withWorktree.has(n) && !withCheckpoint.has(n)) {
        if (!merged.has(n)) continue;
        if ((await gitMaybe(paths.root, ['branch', '-D', branch])) !== null) {
          cleaned.push(n);
          log(`deleted ${branch} (no work of its own left on it)`);
        }
        continue;
      }
      // The original Loom's worktree (feature/issue-N) stays as it is until Loom builds the issue.
      if (withWorktree.has(n) && isOriginalWorktree(paths.root, worktrees.pathFor(n), n)) continue;
      let issue = await issueOf(n);
      if (issue?.state === 'open' && (issue.labels.includes(Label.building) || issue.labels.includes(Label.issue))) continue;

      // A merge a kill left half-recorded: the base moved (or the PR is merged) but the issue is open.
      const cp = withCheckpoint.has(n) ? checkpoints.read(n) : null;
      if (issue?.state === 'open' && cp?.pr_number) {
        const pr = await prOf(cp.pr_number);
        const landed = pr !== null && (pr.state === 'merged' || (pr.state === 'open' && !remote && merged.has(n)));
        if (landed) {
          if (pr.state === 'open') await tracker.markMerged(pr.number);
          else await stripMergedPr(pr);
          events.recordMerge({ issue: n, pr: pr.number });
          await tracker.close(n, `Loom: merged PR #${pr.number} into \`${base}\`.`);
          log(`#${n}: PR #${pr.number} was merged but not recorded; marked it merged and closed the issue`);
          issue = { ...issue, state: 'closed' };
        }
      } else if (issue === null && cp?.pr_number) {
        // The issue is gone (deleted, transferred): a PR merged for it still loses its workflow labels.
        const pr = await prOf(cp.pr_number);
        if (pr !== null) await stripMergedPr(pr);
      } else if (issue?.state === 'closed' && cp?.pr_number) {
        const pr = await prOf(cp.pr_number);
        if (pr?.state === 'open' && !remote && merged.has(n)) {
          // The base moved, the merger was killed before recording it, and a human closed the issue
          // meanwhile: the work is on the base, so the PR is merged (else it stays open for ever).
          await tracker.markMerged(pr.number);
          events.recordMerge({ issue: n, pr: pr.number });
          log(`#${n}: PR #${pr.number} was merged but not recorded (the issue was closed since); marked it merged`);
        } else if (pr?.state === 'merged') {
          // A merger killed between the merge and its event: the merge is counted all the same.
          events.recordMerge({ issue: n, pr: pr.number });
          await stripMergedPr(pr);
          if (issue.labels.some((l) => ISSUE_STATE_LABELS.includes(l))) {
            // Closed by the merge itself (GitHub closes the issue a merged PR's `Closes #N` names, and
            // leaves its labels) before the merger took `loom:building` off: only the labels go.
            await tracker.close(n);
            log(`#${n}: closed by the merge of PR #${cp.pr_number}; took its workflow labels off`);
          }
          // Merged on the host by a merger killed before it fetched: the base is fetched once, so
          // the branch is seen merged (and deleted) instead of kept as work of its own.
          if (remote && !fetched) fetched = (await gitMaybe(paths.root, ['fetch', '-q', 'origin', base])) !== null;
        }
      }

      // A shepherd started meanwhile (a manual spawn) writes its progress record first: look again.
      if (viewOf(progress.readShepherd(n), Date.now()).alive) continue;
      const reason = issue === null || issue.state === 'closed' ? 'issue closed' : issue.labels.includes(Label.blocked) ? 'issue blocked' : 'no shepherd owns it';
      const dirty = await worktrees.isDirty(n);
      const hadWorktree = withWorktree.has(n);
      let refused: string | null = null;
      try {
        await worktrees.remove(n, { deleteBranch: 'if-no-work', base: baseRef, reason });
      } catch (error) {
        if (!(error instanceof WorkspaceRefusedError)) throw error;
        refused = error.message;
      }
      checkpoints.remove(n);
      if (reason === 'issue closed') dropAgentHome(paths, n, log);
      if (refused === null || withCheckpoint.has(n)) cleaned.push(n);
      if (refused !== null) o.warn(`${refused}; left alone`);
      else if (hadWorktree) log(`removed the worktree of #${n} (${reason})${dirty ? '; its uncommitted work was saved as a WIP commit on its branch' : ''}`);
      else log(`removed what was left of #${n} (${reason})`);
    } catch (error) {
      o.warn(`could not clean up after #${n}: ${(error as Error).message}`);
    } finally {
      lease.release();
      current = undefined;
    }
  }
  return [...new Set([...homesCleaned, ...cleaned])].sort((a, b) => a - b);
}

/**
 * The agent homes of closed issues that nothing else was left of (a shepherd or Champion removes
 * the home as it closes the issue, and this cleanup when it removes a closed issue's worktree; a
 * merger killed in between, or a blocked issue a person closed later, leaves it). Which issues
 * are open: an iteration's snapshot where it lists every labelled open issue (GitHub's) — no
 * request, and a home whose issue lost its labels goes too (no checkpoint is left for a session
 * to be resumed from); else the tracker, at start-up only, where a read is a row (local).
 */
async function removeClosedIssueHomes(o: CleanupOptions, progress: ProgressStore, handled: ReadonlySet<number>): Promise<number[]> {
  const { paths, tracker, snapshot } = o;
  const listed = snapshot !== null && snapshot.page === undefined ? new Set(snapshot.issues.filter((i) => i.state === 'open').map((i) => i.number)) : null;
  if (listed === null && (snapshot !== null || tracker.kind === 'github')) return [];
  const removed: number[] = [];
  for (const n of issuesWithAgentHomes(paths)) {
    if (handled.has(n) || listed?.has(n) === true || viewOf(progress.readShepherd(n), o.now).alive) continue;
    let lease: IssueLease | null = null;
    try {
      if (listed === null) {
        const issue = await tracker.getIssue(n);
        if (issue !== null && issue.state === 'open') continue;
      }
      // Never beside a process that works on the issue (one started since, for a reopened issue).
      lease = await IssueLease.tryTake(paths.worktrees, n, (line) => o.log(line, n));
      if (lease === null || viewOf(progress.readShepherd(n), Date.now()).alive) continue;
      dropAgentHome(paths, n, (line) => o.log(line, n), listed === null ? 'issue closed' : 'issue closed, or no longer labelled');
      removed.push(n);
    } catch (error) {
      o.warn(`could not clean up the agent home of #${n}: ${(error as Error).message}`);
    } finally {
      lease?.release();
    }
  }
  return removed;
}

function refsToIssues(text: string): number[] {
  return text
    .split('\n')
    .map((line) => /^loom\/issue-(\d+)$/.exec(line.trim())?.[1])
    .filter((n): n is string => n !== undefined)
    .map(Number);
}
