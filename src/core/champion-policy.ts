/**
 * The Champion's merge policy — code, not an agent's judgement (PRODUCT.md §5). A PR is merged
 * only if the Judge approved it (`loom:pr`), no human reserved it (`loom:manual-merge`) or holds
 * it (the original Loom's `loom:operator*`, `loom:needs-capability`, on the PR or its issue) and
 * it is within the size limit — which the original's `loom:auto-merge-ok` override lifts;
 * "merges cleanly" and "checks green" are decided by the merge itself (rebase without conflict,
 * test gate after a rebase).
 */
import { Label } from './labels.js';
import { holdOf, liftsSizeLimit } from './original-labels.js';

export type ChampionDecision = { merge: true } | { merge: false; reason: string };

export function championDecision(pr: { labels: readonly string[]; issueLabels?: readonly string[]; changedLines: number; maxLines: number }): ChampionDecision {
  if (!pr.labels.includes(Label.pr)) return { merge: false, reason: `not approved (${Label.pr} missing)` };
  if (pr.labels.includes(Label.manualMerge)) return { merge: false, reason: `${Label.manualMerge}: a human merges it` };
  const hold = holdOf(pr.labels) ?? holdOf(pr.issueLabels ?? []);
  if (hold !== undefined) return { merge: false, reason: `${hold}: held for a human` };
  if (pr.changedLines > pr.maxLines && !liftsSizeLimit(pr.labels)) return { merge: false, reason: `${pr.changedLines} changed lines exceed maxMergeLines ${pr.maxLines}` };
  return { merge: true };
}
