/**
 * The Champion's merge policy — code, not an agent's judgement (PRODUCT.md §5). A PR is merged
 * only if its issue allows it (open, not `loom:blocked` or `loom:abort`, not held for a human by
 * the original Loom's `loom:operator*` or `loom:needs-capability`, owned by no shepherd), the Judge
 * approved it (`loom:pr`), no human reserved it (`loom:manual-merge`) or holds it (the same hold
 * labels on the PR) and it is within the size limit — which the original's `loom:auto-merge-ok`
 * override lifts; "merges cleanly" and "checks green" are decided by the merge itself (rebase
 * without conflict, test gate after a rebase), which also reads the issue again right before.
 */
import { supportHold } from './follow-issue.js';
import { Label } from './labels.js';
import { holdOf, liftsSizeLimit } from './original-labels.js';
import type { Issue } from './tracker-model.js';

export type ChampionDecision = { merge: true } | { merge: false; reason: string };

export function championDecision(pr: { labels: readonly string[]; changedLines: number; maxLines: number; issueNumber: number; issue: Issue | null }): ChampionDecision {
  const hold = supportHold(pr.issueNumber, pr.issue);
  if (hold !== null) return { merge: false, reason: hold };
  if (!pr.labels.includes(Label.pr)) return { merge: false, reason: `not approved (${Label.pr} missing)` };
  if (pr.labels.includes(Label.manualMerge)) return { merge: false, reason: `${Label.manualMerge}: a human merges it` };
  const held = holdOf(pr.labels);
  if (held !== undefined) return { merge: false, reason: `${held}: held for a human` };
  if (pr.changedLines > pr.maxLines && !liftsSizeLimit(pr.labels)) return { merge: false, reason: `${pr.changedLines} changed lines exceed maxMergeLines ${pr.maxLines}` };
  return { merge: true };
}
