/**
 * The Champion's merge policy — code, not an agent's judgement (PRODUCT.md §5). A PR is merged
 * only if its issue allows it (open, not `loom:blocked` or `loom:abort`, owned by no shepherd),
 * the Judge approved it (`loom:pr`), no human reserved it (`loom:manual-merge`) and it is within
 * the size limit; "merges cleanly" and "checks green" are decided by the merge itself (rebase
 * without conflict, test gate after a rebase), which also reads the issue again right before.
 */
import { supportHold } from './follow-issue.js';
import { Label } from './labels.js';
import type { Issue } from './tracker-model.js';

export type ChampionDecision = { merge: true } | { merge: false; reason: string };

export function championDecision(pr: { labels: readonly string[]; changedLines: number; maxLines: number; issueNumber: number; issue: Issue | null }): ChampionDecision {
  const hold = supportHold(pr.issueNumber, pr.issue);
  if (hold !== null) return { merge: false, reason: hold };
  if (!pr.labels.includes(Label.pr)) return { merge: false, reason: `not approved (${Label.pr} missing)` };
  if (pr.labels.includes(Label.manualMerge)) return { merge: false, reason: `${Label.manualMerge}: a human merges it` };
  if (pr.changedLines > pr.maxLines) return { merge: false, reason: `${pr.changedLines} changed lines exceed maxMergeLines ${pr.maxLines}` };
  return { merge: true };
}
