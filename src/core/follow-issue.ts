/**
 * Following the issue: what people do to an issue while Loom works on it decides whether the work
 * goes on. Pure — callers pass the issue (and pull request) they just read from the tracker.
 *
 * - A shepherd owns its issue only while the issue is open and carries `loom:building`. Closed,
 *   gone, `loom:blocked`, `loom:abort` or `loom:building` taken away: it stops (`shepherdWithdrawal`).
 * - A support role (Judge, Doctor, Champion) acts on a PR only when its issue is open, not blocked,
 *   aborted or held for a human (the original Loom's `loom:operator*`, `loom:needs-capability`),
 *   and owned by no shepherd (`supportHold`).
 * - A merge happens only when, read again right before it, the PR is open and not held, and its
 *   issue still allows the merger to merge and is not held (`mergeHold`).
 */
import { Label } from './labels.js';
import { holdOf } from './original-labels.js';
import type { Issue, PullRequest } from './tracker-model.js';

export type WithdrawalKind = 'gone' | 'closed' | 'blocked' | 'aborted' | 'unclaimed';

/** Why a shepherd no longer owns its issue, in words for comments and logs. */
export interface Withdrawal {
  kind: WithdrawalKind;
  message: string;
}

/** Why a shepherd must stop working on issue `number` (`issue` as just read), or null to carry on. */
export function shepherdWithdrawal(number: number, issue: Issue | null): Withdrawal | null {
  if (issue === null) return { kind: 'gone', message: `issue #${number} no longer exists` };
  if (issue.state !== 'open') return { kind: 'closed', message: `issue #${number} was closed` };
  if (issue.labels.includes(Label.abort)) return { kind: 'aborted', message: `issue #${number} got \`${Label.abort}\`` };
  if (issue.labels.includes(Label.blocked)) return { kind: 'blocked', message: `issue #${number} was marked \`${Label.blocked}\`` };
  if (!issue.labels.includes(Label.building)) return { kind: 'unclaimed', message: `\`${Label.building}\` was removed from issue #${number}` };
  return null;
}

/** What this machine knows of an issue's shepherd besides the tracker's labels. */
export interface LocalShepherd {
  /** A live shepherd process has the issue (its progress record says so). */
  running: boolean;
  /** The issue has a checkpoint: a shepherd's run is unfinished and the next one resumes it. */
  checkpoint: boolean;
}

/**
 * Why a support role must leave alone a PR for issue `number` (`issue` as just read), or null
 * when it may act: the issue is open, not blocked or aborted, and no shepherd owns it — neither
 * by label (`loom:building`) nor on this machine (`local`: a live shepherd process, or a checkpoint
 * a shepherd resumes, as when a killed shepherd's issue went back to `loom:issue`).
 */
export function supportHold(number: number, issue: Issue | null, local: LocalShepherd = { running: false, checkpoint: false }): string | null {
  if (issue === null) return `issue #${number} does not exist`;
  if (issue.state !== 'open') return `issue #${number} is closed`;
  if (issue.labels.includes(Label.blocked)) return `issue #${number} is \`${Label.blocked}\``;
  if (issue.labels.includes(Label.abort)) return `issue #${number} has \`${Label.abort}\``;
  const held = holdOf(issue.labels);
  if (held !== undefined) return `issue #${number} is held for a human (\`${held}\`)`;
  if (issue.labels.includes(Label.building)) return `a shepherd owns issue #${number} (\`${Label.building}\`)`;
  if (local.running) return `a shepherd is working on issue #${number}`;
  if (local.checkpoint) return `issue #${number} has an unfinished shepherd run (a checkpoint) that its next shepherd resumes`;
  return null;
}

/** What stops a merge read right before it: the PR itself, or its issue. */
export type MergeHold = { on: 'pr' | 'issue'; message: string };

/**
 * Whether PR `prNumber` for issue `issueNumber` may be merged now by `by` — the shepherd that
 * owns the issue, or the Champion, which merges only PRs no shepherd owns — from the PR and the
 * issue read again right before the merge. Null: merge.
 */
export function mergeHold(input: { by: 'shepherd' | 'champion'; issueNumber: number; issue: Issue | null; prNumber: number; pr: Pick<PullRequest, 'state' | 'labels'> | null }): MergeHold | null {
  if (input.pr === null || input.pr.state !== 'open') return { on: 'pr', message: `PR #${input.prNumber} is no longer open` };
  // A hold (on the PR or the issue) withdraws the merge like a blocked issue does: nothing is merged, nothing given up.
  // `loom:manual-merge` put on the PR while a merge waited: a human merges it, never Loom.
  const prHeld = holdOf(input.pr.labels) ?? (input.pr.labels.includes(Label.manualMerge) ? Label.manualMerge : undefined);
  if (prHeld !== undefined) return { on: 'issue', message: `PR #${input.prNumber} is held for a human (\`${prHeld}\`)` };
  const issueHeld = input.issue === null ? undefined : holdOf(input.issue.labels);
  if (issueHeld !== undefined) return { on: 'issue', message: `issue #${input.issueNumber} is held for a human (\`${issueHeld}\`)` };
  const why = input.by === 'shepherd' ? shepherdWithdrawal(input.issueNumber, input.issue)?.message : supportHold(input.issueNumber, input.issue);
  return why === undefined || why === null ? null : { on: 'issue', message: why };
}
