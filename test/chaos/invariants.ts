/**
 * What must hold after a chaos run, once the daemon was stopped: checked over the evidence the
 * run gathered (tracker, git, `.loom/`, processes, the agents' journal). Pure: evidence in,
 * violations out, each named by its invariant so runs over many seeds can be tallied.
 */
import { ISSUE_STATE_LABELS, Label } from '../../src/core/labels.js';
import type { Comment, Issue, PullRequest, TrackerEvent } from '../../src/core/tracker-model.js';
import type { MainMerge } from './chaos-world.js';
import type { HumanKind, IssuePlan, Mode } from './scenario.js';

/** A human action as it happened. */
export interface HumanRecord {
  kind: HumanKind;
  issue: number;
  /** Epoch ms when the tracker write was made. */
  at: number;
  /** `unclaim`: when `loom:issue` was put back. */
  requeuedAt: number | null;
}

export interface JournalEntry {
  word: string;
  role: string;
  issue: number;
  at: number;
}

export interface IssueEvidence {
  issue: Issue;
  plan: IssuePlan;
  comments: Comment[];
  events: TrackerEvent[];
}

export interface Evidence {
  mode: Mode;
  /** The tracker actor Loom writes as. */
  loomActor: string;
  issues: IssueEvidence[];
  prs: { pr: PullRequest; events: TrackerEvent[] }[];
  merges: MainMerge[];
  /** `chaos/issue-N.txt` on main, by issue. */
  files: Map<number, string | null>;
  /** `loom/issue-N` branches: issue → has commits main lacks. */
  branches: Map<number, boolean>;
  /** Names under `.loom/worktrees/`. */
  worktreeDirs: string[];
  /** Worktrees git has registered (besides the main one). */
  registered: { path: string; exists: boolean }[];
  worktreesDir: string;
  /** Names under `.loom/checkpoints/`. */
  checkpoints: string[];
  /** Temp files under `.loom/` (worktrees excluded), relative paths. */
  loomTemps: string[];
  /** Agent temp dirs left in the run's TMPDIR. */
  agentTemps: string[];
  /** Records left in `.loom/progress/`. */
  progress: string[];
  /** Lock files left in `.loom/`. */
  locks: string[];
  /** Files left in `.loom/host/tickets/` (shepherd-host tickets, their stop requests and marks). */
  tickets: string[];
  stateFile: string | null;
  status: string | null;
  /** Processes of the run still alive after the daemon stopped, described. */
  leftovers: string[];
  /** Daemon processes that ended on their own, or did not stop when asked. */
  daemonProblems: string[];
  humans: HumanRecord[];
  journal: JournalEntry[];
}

export interface Violation {
  invariant: string;
  issue: number | null;
  detail: string;
}

/**
 * Slack for "the work stops within two heartbeats" (0.5 s each in the run's config) plus process
 * scheduling on a loaded machine: an agent that starts later than this after the issue was
 * closed or blocked was started by something that did not look, ms.
 */
export const FOLLOW_TOLERANCE_MS = 3_000;
/**
 * Slack for "every merge re-reads the issue immediately before merging": main may move this long
 * after a human closed or blocked the issue (the re-read raced the human), no longer, ms.
 */
export const MERGE_TOLERANCE_MS = 1_000;

/** The invariants, by name, as the report and docs/RELIABILITY.md use them. */
export const INVARIANTS: Record<string, string> = {
  'merged-once': 'no issue has a second merge commit on main',
  'merge-recorded': 'work merged on main ⇒ the issue is closed and its PR is merged',
  'work-on-main': "a merged issue's change is on main",
  'unexpected-merge': 'only an issue whose builder made a change is merged',
  'merged-after-human': 'nothing is merged after a human closed or blocked the issue',
  'closed-with-reason': 'an issue closed without a merge was closed by the human, or as no-change with the builder’s reason',
  'one-state-label': 'an issue carries at most one state label',
  'no-owner-after-stop': 'no issue is loom:building once the daemon has stopped',
  'blocked-with-comment': 'a blocked issue has a comment saying why',
  'end-state': 'every open issue is blocked, back to loom:issue, or as the human left it',
  'agent-after-stop': 'no agent starts for an issue after it was closed or blocked (or taken back by the human)',
  'approved-after-stop': 'a PR gets no verdict after its issue was closed or blocked',
  'one-pr': 'an issue has at most one open PR, none once merged',
  'concurrent-agents': 'two agents never work on one issue at once',
  'orphan-worktree': 'no worktree is left but a ready issue’s, and none git has registered without its directory',
  'orphan-branch': 'no branch is left that is merged or holds no work, but a ready issue’s',
  'orphan-checkpoint': 'no checkpoint is left but a ready issue’s',
  'orphan-temp': 'no temp file is left under .loom/',
  'orphan-agent-temp': "no agent run's temp dir (prompt files) is left in TMPDIR",
  'orphan-progress': 'no progress record is left after the daemon stopped',
  'orphan-lock': 'no daemon, merge or shepherd-host lock is left after the daemon stopped',
  'orphan-ticket': 'no shepherd-host ticket is left after the daemon stopped',
  'orphan-process': 'no process of the run outlives the daemon',
  'state-file': 'the state file reads cleanly: not running, no busy slot',
  status: '`loom status` reads cleanly: exit 0, stopped, no problems',
  daemon: 'a daemon ends only when killed by the suite, or with exit 0 on `loom stop`',
};

const time = (iso: string) => Date.parse(iso);

export function checkInvariants(e: Evidence): Violation[] {
  const violations: Violation[] = [];
  const add = (invariant: keyof typeof INVARIANTS, issue: number | null, detail: string) => violations.push({ invariant, issue, detail });
  const slack = FOLLOW_TOLERANCE_MS + (e.mode === 'github' ? 1_000 : 0);
  const ready = new Set(e.issues.filter((x) => x.issue.state === 'open' && x.issue.labels.includes(Label.issue)).map((x) => x.issue.number));

  for (const { issue, plan, comments, events } of e.issues) {
    const n = issue.number;
    const human = e.humans.find((h) => h.issue === n);
    const merges = e.merges.filter((m) => m.issue === n);
    const prs = e.prs.filter((p) => p.pr.closesIssue === n || p.pr.head === `loom/issue-${n}`);
    const loomComments = comments.filter((c) => c.author === e.loomActor);
    const describe = `#${n} (${plan.builder}${plan.crash ? `, crash at ${plan.crash}` : ''}${human ? `, human ${human.kind}` : ''})`;

    if (merges.length > 1) add('merged-once', n, `${describe} has ${merges.length} merge commits on main: ${merges.map((m) => `${m.sha.slice(0, 10)} "${m.subject}"${m.empty ? ' (empty)' : ''}`).join(', ')}`);
    if (merges.length > 0) {
      if (issue.state !== 'closed') add('merge-recorded', n, `${describe} is merged on main (${merges[0]?.sha.slice(0, 10)}) but the issue is open [${issue.labels.join(', ')}]`);
      if (!prs.some((p) => p.pr.state === 'merged')) add('merge-recorded', n, `${describe} is merged on main but no PR of it is marked merged (${prs.map((p) => `#${p.pr.number} ${p.pr.state}`).join(', ') || 'no PR'})`);
      const file = e.files.get(n) ?? null;
      if (file !== `issue ${n}\n`) add('work-on-main', n, `${describe}: chaos/issue-${n}.txt on main is ${JSON.stringify(file)}`);
      if (plan.builder !== 'commit' && plan.builder !== 'uncommitted') add('unexpected-merge', n, `${describe} was merged although its builder makes no change`);
      if (human && (human.kind === 'close' || human.kind === 'block')) {
        const late = merges.filter((m) => m.time > human.at + MERGE_TOLERANCE_MS);
        if (late.length > 0) add('merged-after-human', n, `${describe}: merged at ${new Date(late[0]?.time ?? 0).toISOString()}, the human's ${human.kind} was at ${new Date(human.at).toISOString()}`);
      }
    } else if (issue.state === 'closed') {
      const byHuman = human?.kind === 'close';
      const noChange = loomComments.find((c) => /no changes needed/i.test(c.body));
      if (!byHuman && !(plan.builder === 'no-change' && noChange?.body.includes(plan.reason))) {
        add('closed-with-reason', n, `${describe} is closed without a merge; ${noChange ? `its comment: "${noChange.body.slice(0, 160)}"` : 'no no-change comment'}`);
      }
    } else {
      const states = issue.labels.filter((l) => ISSUE_STATE_LABELS.includes(l));
      if (states.length > 1) add('one-state-label', n, `${describe} carries ${states.join(' and ')}`);
      if (issue.labels.includes(Label.building)) add('no-owner-after-stop', n, `${describe} is still ${Label.building} after the daemon stopped`);
      if (issue.labels.includes(Label.blocked)) {
        const said = human?.kind === 'block' ? comments.some((c) => c.author !== e.loomActor) : loomComments.some((c) => c.body.includes(Label.blocked));
        if (!said) add('blocked-with-comment', n, `${describe} is ${Label.blocked} without a comment saying why`);
      } else if (!issue.labels.includes(Label.issue) && !issue.labels.includes(Label.building) && !(human && (human.kind === 'unready' || human.kind === 'unclaim'))) {
        add('end-state', n, `${describe} is open with [${issue.labels.join(', ')}]: neither blocked, ready, nor left so by the human`);
      }
    }

    // Following the issue: once it is closed or blocked for good (or taken back by the human), nothing more runs for it.
    const finalStop = stopTime(issue, events, human, merges.length > 0);
    if (finalStop !== null) {
      const late = e.journal.filter((j) => j.issue === n && j.word === 'start' && j.at > finalStop.at + slack && !(human?.requeuedAt != null && j.at > human.requeuedAt));
      if (late.length > 0) add('agent-after-stop', n, `${describe}: ${late.length} agent run(s) (${[...new Set(late.map((j) => j.role))].join(', ')}) started after it was ${finalStop.why} at ${new Date(finalStop.at).toISOString()}`);
      if (finalStop.why !== 'taken back by the human') {
        for (const { pr, events: prEvents } of prs) {
          const verdicts = prEvents.filter((ev) => ev.type === 'labeled' && ev.label === Label.pr && time(ev.createdAt) > finalStop.at + slack);
          if (verdicts.length > 0) add('approved-after-stop', n, `${describe}: PR #${pr.number} was labelled ${Label.pr} at ${verdicts[0]?.createdAt}, after the issue was ${finalStop.why}`);
        }
      }
    }

    const open = prs.filter((p) => p.pr.state === 'open');
    if (open.length > 1) add('one-pr', n, `${describe} has ${open.length} open PRs: ${open.map((p) => `#${p.pr.number} [${p.pr.labels.join(', ')}]`).join(', ')}`);
    else if (open.length === 1 && merges.length > 0) add('one-pr', n, `${describe} is merged but PR #${open[0]?.pr.number} is still open [${open[0]?.pr.labels.join(', ')}]`);

    const overlaps = e.journal.filter((j) => j.issue === n && j.word === 'overlap');
    if (overlaps.length > 0) add('concurrent-agents', n, `${describe}: a ${overlaps.map((o) => o.role).join(', ')} agent started while another agent of this issue still held its worktree`);

    const resumable = ready.has(n);
    if (e.worktreeDirs.includes(`issue-${n}`) && !resumable) add('orphan-worktree', n, `${describe}: .loom/worktrees/issue-${n} is left (issue ${issue.state} [${issue.labels.join(', ')}])`);
    if (e.checkpoints.includes(`issue-${n}.json`) && !resumable) add('orphan-checkpoint', n, `${describe}: .loom/checkpoints/issue-${n}.json is left (issue ${issue.state} [${issue.labels.join(', ')}])`);
    const branch = e.branches.get(n);
    if (branch !== undefined && !resumable && (merges.length > 0 || !branch)) add('orphan-branch', n, `${describe}: loom/issue-${n} is left ${merges.length > 0 ? 'after the merge' : 'with no work on it'}`);
  }

  const known = new Set(e.issues.map((x) => `issue-${x.issue.number}`));
  for (const name of e.worktreeDirs) if (!known.has(name)) add('orphan-worktree', null, `.loom/worktrees/${name} belongs to no issue`);
  for (const r of e.registered) {
    if (!r.exists) add('orphan-worktree', null, `git still registers the worktree ${r.path}, whose directory is gone`);
    else if (!r.path.startsWith(`${e.worktreesDir}/`)) add('orphan-worktree', null, `git registers a worktree outside .loom/worktrees: ${r.path}`);
  }
  for (const t of e.loomTemps) add('orphan-temp', null, `.loom/${t}`);
  if (e.agentTemps.length > 0) add('orphan-agent-temp', null, `${e.agentTemps.length} agent temp dir(s) left in TMPDIR: ${e.agentTemps.slice(0, 5).join(', ')}`);
  for (const p of e.progress) add('orphan-progress', null, `.loom/progress/${p}`);
  for (const l of e.locks) add('orphan-lock', null, `.loom/${l}`);
  for (const t of e.tickets) add('orphan-ticket', null, `.loom/host/tickets/${t}`);
  for (const p of e.leftovers) add('orphan-process', null, p);
  if (e.stateFile !== null) add('state-file', null, e.stateFile);
  if (e.status !== null) add('status', null, e.status);
  for (const d of e.daemonProblems) add('daemon', null, d);
  return violations;
}

/**
 * When the issue last stopped being Loom's to work on, if it ended so: closed without a merge,
 * blocked, or (human unclaim/unready) taken back — null when it ended merged, ready or requeued.
 */
function stopTime(issue: Issue, events: TrackerEvent[], human: HumanRecord | undefined, merged: boolean): { at: number; why: string } | null {
  if (merged) return null;
  const last = (pred: (ev: TrackerEvent) => boolean) => {
    const found = events.filter(pred).at(-1);
    return found ? time(found.createdAt) : null;
  };
  if (issue.state === 'closed') {
    const at = last((ev) => ev.type === 'closed');
    return at === null ? null : { at: human?.kind === 'close' ? Math.min(at, human.at) : at, why: 'closed' };
  }
  if (issue.labels.includes(Label.blocked)) {
    const at = last((ev) => ev.type === 'labeled' && ev.label === Label.blocked);
    return at === null ? null : { at: human?.kind === 'block' ? Math.min(at, human.at) : at, why: 'blocked' };
  }
  if (human && (human.kind === 'unready' || human.kind === 'unclaim') && !issue.labels.includes(Label.issue)) return { at: human.at, why: 'taken back by the human' };
  if (human?.kind === 'unclaim' && human.requeuedAt !== null) return { at: human.at, why: 'taken back by the human' };
  return null;
}
