/**
 * `loom role <name>`: runs one support or generator role once. The agent produces (proposals,
 * reviews, triage lines, commits); this file parses its output and makes every tracker write.
 * The Champion is code only: its merge decision is `championDecision`.
 *
 * The Judge, Doctor and Champion act only on PRs whose issue is open, not blocked or aborted, and
 * owned by no shepherd (`supportHold`); while the Judge or Doctor works on one, it reads the
 * issue and the PR again every heartbeat and stops its agent when that no longer holds.
 */
import type { LoomConfig } from '../core/config-model.js';
import type { RoleName } from '../core/vocabulary.js';
import type { LoomPaths } from '../config/paths.js';
import { ISSUE_STATE_LABELS, Label } from '../core/labels.js';
import { newTaskId, startingRecord } from '../process/new-task.js';
import { defaultBranch, git, GitError } from '../git/git.js';
import { branchFor, WorkspaceRefusedError, Worktrees } from '../git/worktrees.js';
import { concludeMerge, conflictingFiles, filesWithConflictMarkers, mergeBaseForDoctor, mergePushedWork } from '../git/merge.js';
import { ProgressStore } from '../process/progress-store.js';
import { TaskRecorder } from '../process/task-recorder.js';
import { judgeRound } from '../steps/judge-round.js';
import { mergePullRequest } from '../steps/merge-pull-request.js';
import type { Tracker } from '../tracker/tracker.js';
import type { Issue, PullRequest } from '../core/tracker-model.js';
import { UserError } from '../core/errors.js';
import { championDecision } from '../core/champion-policy.js';
import { ORIGINAL_TRIAGE_LABEL, doctorLabelOf, doctorLabels, holdOf } from '../core/original-labels.js';
import type { LocalShepherd } from '../core/follow-issue.js';
import { supportHold } from '../core/follow-issue.js';
import { IssueLease } from '../process/issue-lease.js';
import { viewOf } from '../process/progress-store.js';
import { CheckpointStore } from '../state/checkpoint-store.js';
import { Follow } from '../steps/follow.js';
import { fenceUntrusted, parseCuration, parseGuideActions, parseProposals } from '../core/output-contracts.js';
import { BudgetExceededError, RuntimeLimitedError, runRoleAgent } from '../steps/run-role-agent.js';
import { RuntimeConfigError } from '../runtimes/create-runtime.js';
import { HookFailedError, runHook, worktreeHooks } from '../process/workspace-hooks.js';

export interface RoleRun {
  paths: LoomPaths;
  config: LoomConfig;
  tracker: Tracker;
  role: RoleName;
  taskId?: string;
  log: (line: string) => void;
}

interface RoleContext extends RoleRun {
  recorder: TaskRecorder;
  signal: AbortSignal;
}

/** Result of one role run: a one-line summary (and the PRs it merged), or a failure. */
type RoleOutcome = { ok: true; summary: string; merged?: number[] } | { ok: false; message: string };

export async function runRole(run: RoleRun): Promise<number> {
  const { paths, config, role, log } = run;
  if (role === 'builder') throw new UserError('the builder runs inside a shepherd; use `loom shepherd N` or `loom spawn N`');
  if (!config.roles[role].enabled && role !== 'champion') throw new UserError(`role ${role} has no runtime; set roles.${role}.runtime (or the top-level "runtime") in .loom/config.json`);
  const progress = new ProgressStore(paths.progress);
  const file = progress.roleFile(role);
  let record = progress.read(file);
  if (run.taskId === undefined) {
    record = startingRecord({ kind: 'role', task_id: newTaskId(), issue: null, role, output_file: '(terminal)', now: new Date() });
  } else if (record === null || record.task_id !== run.taskId) {
    log(`role ${role}: task ${run.taskId} is not the current run; exiting`);
    return 0;
  }
  const recorder = new TaskRecorder(progress, file, record, paths.wake);
  const controller = new AbortController();
  const onSignal = () => controller.abort();
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  recorder.start(role, config.heartbeatInterval);
  try {
    let outcome: RoleOutcome;
    try {
      outcome = await perform({ ...run, recorder, signal: controller.signal });
    } catch (error) {
      // Expected trouble (budget, limits, configuration, a git remote that cannot be reached, a worktree path that is not Loom's, a failing workspace hook) is a failed run, not a crash.
      if (!(error instanceof BudgetExceededError || error instanceof RuntimeLimitedError || error instanceof RuntimeConfigError || error instanceof GitError || error instanceof WorkspaceRefusedError || error instanceof HookFailedError)) throw error;
      outcome = { ok: false, message: error.message };
    }
    const message = outcome.ok ? outcome.summary : outcome.message;
    recorder.finish(controller.signal.aborted ? 'stopped' : outcome.ok ? 'completed' : 'failed', { message, exit_code: outcome.ok ? 0 : 1, ...(outcome.ok && outcome.merged ? { merged_prs: outcome.merged } : {}) });
    log(`role ${role}: ${message}`);
    return outcome.ok ? 0 : 1;
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  }
}

function perform(ctx: RoleContext): Promise<RoleOutcome> {
  switch (ctx.role) {
    case 'architect':
    case 'hermit':
      return generate(ctx, ctx.role);
    case 'guide':
      return guide(ctx);
    case 'curator':
      return curate(ctx);
    case 'champion':
      return champion(ctx);
    case 'judge':
      return judgeOpenPullRequests(ctx);
    case 'doctor':
      return doctorOpenPullRequests(ctx);
    case 'builder':
      throw new UserError('the builder runs inside a shepherd');
  }
}

const listIssues = (issues: readonly Issue[]) => (issues.length === 0 ? '(none)' : issues.map((i) => `- #${i.number} ${i.title}${i.labels.length ? ` [${i.labels.join(', ')}]` : ''}`).join('\n'));

async function agent(ctx: RoleContext, vars: Record<string, string>, cwd = ctx.paths.root, attempt = 1, instructions?: string) {
  return runRoleAgent({ paths: ctx.paths, config: ctx.config, role: ctx.role, cwd, vars, attempt, signal: ctx.signal, recorder: ctx.recorder, ...(instructions !== undefined ? { instructions } : {}) });
}

async function generate(ctx: RoleContext, role: 'architect' | 'hermit'): Promise<RoleOutcome> {
  const open = await ctx.tracker.listIssues();
  const proposals = open.filter((i) => i.labels.includes(Label.architect) || i.labels.includes(Label.hermit));
  const room = ctx.config.maxProposals - proposals.length;
  if (room <= 0) return { ok: true, summary: `${proposals.length} proposals already open; none added` };
  const run = await agent(ctx, { open_issues: listIssues(open.filter((i) => !proposals.includes(i))), open_proposals: listIssues(proposals), max_proposals: String(room) });
  if (run.outcome !== 'success') return { ok: false, message: `agent ${run.message}` };
  const existing = new Set(open.map((i) => i.title.trim().toLowerCase()));
  const created: number[] = [];
  for (const p of parseProposals(run.output).slice(0, room)) {
    if (existing.has(p.title.toLowerCase())) continue;
    existing.add(p.title.toLowerCase());
    const issue = await ctx.tracker.createIssue({ title: p.title, body: p.body, labels: [role === 'architect' ? Label.architect : Label.hermit] });
    created.push(issue.number);
  }
  return { ok: true, summary: created.length ? `proposed ${created.map((n) => `#${n}`).join(', ')}` : 'no proposals' };
}

async function guide(ctx: RoleContext): Promise<RoleOutcome> {
  const open = await ctx.tracker.listIssues();
  const run = await agent(ctx, { open_issues: listIssues(open) });
  if (run.outcome !== 'success') return { ok: false, message: `agent ${run.message}` };
  const known = new Set(open.map((i) => i.number));
  let done = 0;
  for (const action of parseGuideActions(run.output)) {
    if (!known.has(action.issue)) continue;
    if (action.type === 'urgent') {
      await ctx.tracker.updateLabels(action.issue, { add: [Label.urgent] });
      await ctx.tracker.comment(action.issue, `Loom Guide: marked \`${Label.urgent}\` — ${action.reason}`);
    } else await ctx.tracker.comment(action.issue, `Loom Guide: ${action.text}`);
    done += 1;
  }
  return { ok: true, summary: `${done} triage action(s)` };
}

async function curate(ctx: RoleContext): Promise<RoleOutcome> {
  const candidates = (await ctx.tracker.listIssues()).filter((i) => !i.labels.some((l) => ISSUE_STATE_LABELS.includes(l)) && holdOf(i.labels) === undefined);
  if (candidates.length === 0) return { ok: true, summary: 'nothing to curate' };
  const run = await agent(ctx, { open_issues: candidates.map((i) => `#${i.number} ${i.title}\n${fenceUntrusted(`issue #${i.number}`, i.body)}`).join('\n\n') });
  if (run.outcome !== 'success') return { ok: false, message: `agent ${run.message}` };
  const allowed = new Set(candidates.map((i) => i.number));
  let done = 0;
  for (const c of parseCuration(run.output)) {
    if (!allowed.has(c.issue)) continue;
    allowed.delete(c.issue);
    await ctx.tracker.comment(c.issue, `Loom Curator:\n\n${c.text}`);
    // The original Loom's `loom:triage` ("awaiting the Curator") is done with once curated.
    await ctx.tracker.updateLabels(c.issue, { add: [Label.curated], remove: [ORIGINAL_TRIAGE_LABEL] });
    done += 1;
  }
  return { ok: true, summary: `curated ${done} issue(s)` };
}

/** A PR a support role may look at: open, with `label`, closing an issue (as read now; null: gone). */
interface Candidate {
  pr: PullRequest;
  issueNumber: number;
  issue: Issue | null;
}

/**
 * Open PRs with `label` (or that `also` accepts) that close an issue, each with its issue read
 * now. A PR held for a human (the original Loom's `loom:operator*`) is left alone: not listed.
 */
async function pullRequestsWith(ctx: RoleContext, label: string, also: (labels: readonly string[]) => boolean = () => false): Promise<Candidate[]> {
  // Only the PRs are needed: the bounded snapshot reads them all and as few issues as it can.
  const { pullRequests } = await ctx.tracker.snapshot({ page: 1 });
  const result: Candidate[] = [];
  for (const pr of pullRequests) {
    if (!(pr.labels.includes(label) || also(pr.labels)) || pr.closesIssue === null || holdOf(pr.labels) !== undefined) continue;
    result.push({ pr, issueNumber: pr.closesIssue, issue: await ctx.tracker.getIssue(pr.closesIssue) });
  }
  return result;
}

/**
 * The candidates a Judge or Doctor may act on. A PR whose issue a shepherd owns is the shepherd's
 * (not mentioned); one whose issue is closed, gone, blocked or aborted is skipped and listed.
 */
function actionable(ctx: RoleContext, candidates: Candidate[], skipped: string[]): (Candidate & { issue: Issue })[] {
  const result: (Candidate & { issue: Issue })[] = [];
  for (const c of candidates) {
    const hold = supportHold(c.issueNumber, c.issue, localShepherd(ctx, c.issueNumber));
    if (hold === null && c.issue !== null) result.push({ ...c, issue: c.issue });
    else if (!c.issue?.labels.includes(Label.building)) skipped.push(`#${c.pr.number} (${hold ?? 'not actionable'})`);
  }
  return result;
}

/** Whether a shepherd process of this machine has issue `n`, or will resume it from its checkpoint. */
function localShepherd(ctx: RoleContext, n: number): LocalShepherd {
  return { running: viewOf(new ProgressStore(ctx.paths.progress).readShepherd(n), Date.now()).alive, checkpoint: new CheckpointStore(ctx.paths.checkpoints).read(n) !== null };
}

/**
 * The lease on issue `n`'s worktree for this role's work on one PR, or null (and the PR listed
 * as skipped) while another Loom process — the issue's shepherd, say — works there.
 */
async function leaseFor(ctx: RoleContext, n: number, prNumber: number, skipped: string[]): Promise<IssueLease | null> {
  const lease = await IssueLease.tryTake(ctx.paths.worktrees, n, (line) => ctx.log(`role ${ctx.role}: ${line}`));
  if (lease === null) skipped.push(`#${prNumber} (another Loom process works in the worktree of #${n})`);
  return lease;
}

/** Reads the PR and its issue every heartbeat while a role works on it; stops it when `supportHold` no longer allows the work. */
function followPullRequest(ctx: RoleContext, prNumber: number, issueNumber: number): Follow<string> {
  return new Follow<string>({
    every: ctx.config.heartbeatInterval,
    signal: ctx.signal,
    check: async () => {
      const [issue, pr] = await Promise.all([ctx.tracker.getIssue(issueNumber), ctx.tracker.getPullRequest(prNumber)]);
      return supportHold(issueNumber, issue, localShepherd(ctx, issueNumber)) ?? (pr === null || pr.state !== 'open' ? `PR #${prNumber} is no longer open` : null);
    },
    onStop: (why) => ctx.log(`role ${ctx.role}: ${why.replace(/`/g, '')}; stopping the work on PR #${prNumber}`),
  });
}

/** `<done>; skipped #N (why), …; stopped #M (why)`. */
function summary(done: string, skipped: string[], stopped: string[]): string {
  return [done, skipped.length ? `skipped ${skipped.join(', ')}` : '', stopped.length ? `stopped ${stopped.join(', ')}` : ''].filter(Boolean).join('; ');
}

async function base(ctx: RoleContext): Promise<string> {
  return ctx.config.defaultBranch ?? defaultBranch(ctx.paths.root);
}

async function champion(ctx: RoleContext): Promise<RoleOutcome> {
  const target = await base(ctx);
  const remote = ctx.tracker.kind === 'github';
  if (remote) await git(ctx.paths.root, ['fetch', '-q', 'origin']);
  const ref = (branch: string) => (remote ? `origin/${branch}` : branch);
  const merged: number[] = [];
  const skipped: string[] = [];
  const notes: string[] = [];
  for (const { pr, issueNumber, issue } of await pullRequestsWith(ctx, Label.pr)) {
    // A PR a shepherd owns is the shepherd's to merge: not the Champion's business, not listed.
    if (issue?.labels.includes(Label.building) === true) continue;
    const local = supportHold(issueNumber, issue, localShepherd(ctx, issueNumber));
    if (issue !== null && supportHold(issueNumber, issue) === null && local !== null) {
      skipped.push(`#${pr.number} (${local})`);
      continue;
    }
    const stat = await git(ctx.paths.root, ['diff', '--numstat', `${ref(target)}...${ref(pr.head)}`]);
    const changedLines = stat.split('\n').reduce((sum, line) => sum + line.split('\t').slice(0, 2).reduce((s, v) => s + (Number(v) || 0), 0), 0);
    const decision = championDecision({ labels: pr.labels, changedLines, maxLines: ctx.config.maxMergeLines, issueNumber, issue });
    if (!decision.merge) {
      skipped.push(`#${pr.number} (${decision.reason})`);
      continue;
    }
    const lease = await leaseFor(ctx, issueNumber, pr.number, skipped);
    if (lease === null) continue;
    let result: Awaited<ReturnType<typeof mergePullRequest>>;
    try {
      result = await mergePullRequest({ paths: ctx.paths, config: ctx.config, tracker: ctx.tracker, pr, issue: issueNumber, base: target, by: 'champion', signal: ctx.signal, log: ctx.log });
    } finally {
      lease.release();
    }
    if (result.ok) {
      merged.push(pr.number);
      if (result.guard?.result === 'red') {
        notes.push(`post-merge guard: ${result.guard.detail.replace(/`/g, '')}`);
        if (result.guard.paused) break;
      }
      continue;
    }
    skipped.push(`#${pr.number} (${result.reason === 'withdrawn' || result.reason === 'pr-closed' ? result.message : result.reason})`);
    if (result.reason === 'paused') {
      // Every other PR would wait the same way: the base must be green first.
      notes.push(result.message.replace(/`/g, ''));
      break;
    }
    if (result.reason === 'conflict' || result.reason === 'tests' || ((result.reason === 'checks' || result.reason === 'review') && result.review !== undefined)) {
      await ctx.tracker.comment(pr.number, `**Loom Champion** — not merged: ${result.review ?? result.message}. The Doctor will update the branch.`);
      await ctx.tracker.updateLabels(pr.number, { add: [Label.changesRequested] });
    }
  }
  return { ok: true, summary: [`merged ${merged.length ? merged.map((n) => `#${n}`).join(', ') : 'nothing'}${skipped.length ? `; skipped ${skipped.join(', ')}` : ''}`, ...notes].join('; '), merged };
}

async function judgeOpenPullRequests(ctx: RoleContext): Promise<RoleOutcome> {
  const target = await base(ctx);
  const worktrees = new Worktrees(ctx.paths.root, ctx.paths.worktrees, worktreeHooks(ctx.config.hooks, ctx.paths.root, ctx.log));
  const judged: string[] = [];
  const skipped: string[] = [];
  const stopped: string[] = [];
  for (const { pr, issue } of actionable(ctx, await pullRequestsWith(ctx, Label.reviewRequested), skipped)) {
    const lease = await leaseFor(ctx, issue.number, pr.number, skipped);
    if (lease === null) continue;
    const follow = followPullRequest(ctx, pr.number, issue.number);
    try {
      // Read again now that the worktree is this run's: a shepherd may have claimed the issue meanwhile.
      const before = await follow.now();
      if (before !== null) {
        skipped.push(`#${pr.number} (${before})`);
        continue;
      }
      const worktree = await worktrees.ensure(issue.number, target);
      const rounds = (await ctx.tracker.listComments(pr.number)).filter((c) => c.body.startsWith('**Loom Judge')).length;
      const hookContext = { LOOM_ISSUE: String(issue.number), LOOM_REPO_ROOT: ctx.paths.root, LOOM_ROLE: 'judge' };
      await runHook(ctx.config.hooks, 'beforeRun', worktree, hookContext, ctx.log);
      const outcome = await judgeRound({ paths: ctx.paths, config: ctx.config, issue, prNumber: pr.number, worktree, base: target, branch: branchFor(issue.number), attempt: rounds + 1, signal: follow.signal, recorder: ctx.recorder, lease });
      await runHook(ctx.config.hooks, 'afterRun', worktree, hookContext, ctx.log);
      if (ctx.signal.aborted) break;
      const held = await follow.now();
      if (held !== null) {
        await worktrees.remove(issue.number, { reason: held.replace(/`/g, '').slice(0, 72) });
        stopped.push(`#${pr.number} (${held})`);
        continue;
      }
      if (outcome.agentError !== null) return { ok: false, message: outcome.agentError };
      await ctx.tracker.comment(pr.number, outcome.review);
      await ctx.tracker.updateLabels(pr.number, { add: [outcome.verdict === 'approve' ? Label.pr : Label.changesRequested] });
      judged.push(`#${pr.number} ${outcome.verdict}`);
    } finally {
      follow.stop();
      lease.release();
    }
  }
  return { ok: true, summary: summary(judged.length ? `judged ${judged.join(', ')}` : 'no PR waits for review', skipped, stopped) };
}

async function doctorOpenPullRequests(ctx: RoleContext): Promise<RoleOutcome> {
  const target = await base(ctx);
  const worktrees = new Worktrees(ctx.paths.root, ctx.paths.worktrees, worktreeHooks(ctx.config.hooks, ctx.paths.root, ctx.log));
  const treated: number[] = [];
  const skipped: string[] = [];
  const stopped: string[] = [];
  // The original Loom's `loom:merge-conflict` and `loom:ci-failure` ask for the Doctor as well.
  for (const { pr, issue } of actionable(ctx, await pullRequestsWith(ctx, Label.changesRequested, (labels) => doctorLabelOf(labels) !== undefined), skipped)) {
    const comments = await ctx.tracker.listComments(pr.number);
    const reviews = comments.filter((c) => c.body.startsWith('**Loom') && !c.body.startsWith('**Loom Doctor'));
    const rounds = comments.filter((c) => c.body.startsWith('**Loom Doctor')).length;
    if (rounds >= ctx.config.maxDoctorRounds) {
      if (!issue.labels.includes(Label.blocked)) {
        await ctx.tracker.comment(issue.number, `Loom: PR #${pr.number} still has changes requested after ${rounds} doctor round(s); marking this issue \`${Label.blocked}\`.`);
        await ctx.tracker.updateLabels(issue.number, { add: [Label.blocked] });
      }
      continue;
    }
    const lease = await leaseFor(ctx, issue.number, pr.number, skipped);
    if (lease === null) continue;
    const follow = followPullRequest(ctx, pr.number, issue.number);
    try {
      const before = await follow.now();
      if (before !== null) {
        skipped.push(`#${pr.number} (${before})`);
        continue;
      }
      const worktree = await worktrees.ensure(issue.number, target);
      await worktrees.saveWip(issue.number, 'work left uncommitted before a doctor round');
      // A branch that conflicts with the moved base: the Doctor resolves it with the base merged in.
      const baseRef = ctx.tracker.kind === 'github' ? `origin/${target}` : target;
      if (ctx.tracker.kind === 'github') await git(ctx.paths.root, ['fetch', '-q', 'origin', target]);
      const conflict = await conflictingFiles(worktree, baseRef);
      let review = reviews.at(-1)?.body ?? '';
      if (conflict.length > 0) {
        await mergeBaseForDoctor(worktree, baseRef);
        review = `${review}\n\n\`${target}\` moved on and \`${pr.head}\` no longer applies cleanly on it. Loom merged \`${target}\` into this worktree; the merge is in progress with conflicts in ${conflict.map((f) => `\`${f}\``).join(', ')}. Resolve each conflict keeping the intent of both sides, remove every conflict marker, run the tests, and commit.`.trim();
      }
      const vars = { 'issue.number': String(issue.number), 'issue.title': issue.title, 'issue.body': fenceUntrusted(`issue #${issue.number}`, issue.body), 'pr.number': String(pr.number), branch: pr.head, base: target, review, test_command: ctx.config.testCommand ?? '(none configured)' };
      const hookContext = { LOOM_ISSUE: String(issue.number), LOOM_REPO_ROOT: ctx.paths.root, LOOM_ROLE: 'doctor' };
      await runHook(ctx.config.hooks, 'beforeRun', worktree, hookContext, ctx.log);
      const run = await runRoleAgent({ paths: ctx.paths, config: ctx.config, role: ctx.role, cwd: worktree, vars, attempt: rounds + 1, signal: follow.signal, recorder: ctx.recorder, instructions: issue.body, lease });
      await runHook(ctx.config.hooks, 'afterRun', worktree, hookContext, ctx.log);
      if (ctx.signal.aborted) break;
      const held = await follow.now();
      if (held !== null) {
        // The work so far is kept on the branch (WIP commit); the PR is left as it was.
        await worktrees.remove(issue.number, { reason: held.replace(/`/g, '').slice(0, 72) });
        stopped.push(`#${pr.number} (${held})`);
        continue;
      }
      if (run.outcome !== 'success') return { ok: false, message: `agent ${run.message}` };
      await concludeMerge(worktree, `Merge ${target} into ${pr.head}\n\nConflicts resolved by the doctor (round ${rounds + 1}), committed by Loom.`);
      await worktrees.commitAll(issue.number, `#${issue.number}: address review (doctor round ${rounds + 1})`);
      // On GitHub the PR is the pushed branch: the round's commits go there before anyone looks again.
      if (ctx.tracker.kind === 'github') {
        // What others pushed to the PR meanwhile (a human's commits) goes along, merged in, never pushed over.
        await mergePushedWork(worktree, pr.head);
        await git(worktree, ['push', '-q', '--force-with-lease', 'origin', `HEAD:refs/heads/${pr.head}`]);
      }
      // Every file the branch changes: a marker committed in an earlier round is caught too.
      const changed = (await git(worktree, ['diff', '--name-only', baseRef, 'HEAD'])).split('\n').filter(Boolean);
      const markers = await filesWithConflictMarkers(worktree, changed);
      if (markers.length > 0) {
        // Not back to review while a conflict marker is left: the PR stays with the Doctor.
        await ctx.tracker.comment(pr.number, `**Loom Doctor** — round ${rounds + 1} done; conflict markers are still in ${markers.map((f) => `\`${f}\``).join(', ')}: resolve them (keep both changes' intent) and commit.`);
        treated.push(pr.number);
        continue;
      }
      await ctx.tracker.comment(pr.number, `**Loom Doctor** — round ${rounds + 1} done; back to review.`);
      await ctx.tracker.updateLabels(pr.number, { add: [Label.reviewRequested], remove: doctorLabels(pr.labels) });
      treated.push(pr.number);
    } finally {
      follow.stop();
      lease.release();
    }
  }
  return { ok: true, summary: summary(treated.length ? `updated ${treated.map((n) => `#${n}`).join(', ')}` : 'no PR waits for changes', skipped, stopped) };
}
