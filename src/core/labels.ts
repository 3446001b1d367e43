/**
 * The label state machine (PRODUCT.md §4). The original Loom's other labels and their meaning
 * here are in `original-labels.ts`.
 *
 * Invariant owned here: an issue carries at most one issue-state label and a PR carries at most
 * one verdict label. Every tracker adapter applies label changes through `applyLabelChange`, so
 * adding a state label always replaces the previous one.
 */

import { originalLabel } from './original-labels.js';

export const Label = {
  architect: 'loom:architect',
  hermit: 'loom:hermit',
  curated: 'loom:curated',
  issue: 'loom:issue',
  building: 'loom:building',
  blocked: 'loom:blocked',
  reviewRequested: 'loom:review-requested',
  changesRequested: 'loom:changes-requested',
  pr: 'loom:pr',
  urgent: 'loom:urgent',
  abort: 'loom:abort',
  manualMerge: 'loom:manual-merge',
} as const;

export type LoomLabel = (typeof Label)[keyof typeof Label];

/** Mutually exclusive labels describing where an issue is in the workflow. */
export const ISSUE_STATE_LABELS: readonly string[] = [
  Label.architect,
  Label.hermit,
  Label.curated,
  Label.issue,
  Label.building,
  Label.blocked,
];

/** Mutually exclusive verdict labels on a pull request. */
export const PR_VERDICT_LABELS: readonly string[] = [Label.reviewRequested, Label.changesRequested, Label.pr];

/** The labels a closed issue or a merged PR no longer carries: its state and verdict labels. */
export const WORKFLOW_LABELS: readonly string[] = [...ISSUE_STATE_LABELS, ...PR_VERDICT_LABELS];

/** Proposals awaiting approval; force mode promotes them to `loom:issue`. */
export const PROPOSAL_LABELS: readonly string[] = [Label.architect, Label.hermit, Label.curated];

/** Description and color of every label, used by `loom init` and the docs. */
export const LABEL_INFO: Readonly<Record<LoomLabel, { color: string; description: string }>> = {
  'loom:architect': { color: 'c5def5', description: 'Proposal from the Architect, awaiting approval' },
  'loom:hermit': { color: 'c5def5', description: 'Simplification proposal from the Hermit, awaiting approval' },
  'loom:curated': { color: 'bfd4f2', description: 'Enriched by the Curator, awaiting approval' },
  'loom:issue': { color: '0e8a16', description: 'Approved and ready for a shepherd to build' },
  'loom:building': { color: 'fbca04', description: 'Claimed: a shepherd is working on it' },
  'loom:blocked': { color: 'b60205', description: 'Needs a human; the reason is in a comment' },
  'loom:review-requested': { color: '1d76db', description: 'Pull request ready for the Judge' },
  'loom:changes-requested': { color: 'e99695', description: 'The Judge asked for changes; the Doctor will address them' },
  'loom:pr': { color: '0e8a16', description: 'Approved pull request, ready to merge' },
  'loom:urgent': { color: 'd93f0b', description: 'Build before other ready issues' },
  'loom:abort': { color: '000000', description: "Stop this issue's shepherd and return it to loom:issue" },
  'loom:manual-merge': { color: '5319e7', description: 'A human merges this pull request; never auto-merged' },
};

export function isLoomLabel(name: string): name is LoomLabel {
  return Object.prototype.hasOwnProperty.call(LABEL_INFO, name);
}

/**
 * The label set after adding `add` and removing `remove`. Adding a state (or verdict) label
 * removes every other label of the same exclusive group. Order of the result is sorted so that
 * equal sets compare equal.
 */
export function applyLabelChange(current: Iterable<string>, add: readonly string[], remove: readonly string[]): string[] {
  const next = new Set(current);
  for (const name of remove) next.delete(name);
  for (const name of add) {
    for (const group of [ISSUE_STATE_LABELS, PR_VERDICT_LABELS]) {
      if (group.includes(name)) for (const other of group) if (other !== name) next.delete(other);
    }
    next.add(name);
  }
  return [...next].sort();
}

/** The issue-state label of a label set, if any. */
export function issueState(labels: readonly string[]): string | undefined {
  return labels.find((l) => ISSUE_STATE_LABELS.includes(l));
}

/** The verdict label of a PR's label set, if any. */
export function prVerdict(labels: readonly string[]): string | undefined {
  return labels.find((l) => PR_VERDICT_LABELS.includes(l));
}

/** Labels a name must look like before a tracker accepts it: non-empty, no whitespace at the ends, ≤ 50 chars. */
export function validateLabelName(name: string): string | undefined {
  if (name.length === 0) return 'label must not be empty';
  if (name.trim() !== name) return `label "${name}" must not start or end with whitespace`;
  if (name.length > 50) return `label "${name}" is longer than 50 characters`;
  if (name.includes(',')) return `label "${name}" must not contain a comma`;
  return undefined;
}

const LOOM_LABELS: readonly string[] = Object.values(Label);

/** A Loom label or one of the original Loom's (`original-labels.ts`). */
function known(lower: string): boolean {
  return LOOM_LABELS.includes(lower) || originalLabel(lower) !== undefined;
}

/**
 * Loom's own labels compare case-insensitively, as GitHub's do: `LOOM:Issue` is `loom:issue`.
 * So do the original Loom's labels. Any other label keeps its spelling.
 */
export function canonicalLabel(name: string): string {
  const lower = name.toLowerCase();
  return known(lower) ? lower : name;
}

/** Every label of a list in its canonical spelling, sorted, without duplicates. */
export function canonicalLabels(names: readonly string[]): string[] {
  return [...new Set(names.map(canonicalLabel))].sort();
}

/** A problem when `name` is in Loom's namespace (`loom:`) but is not one of its labels (a typo). */
export function unknownLoomLabel(name: string): string | undefined {
  const lower = name.toLowerCase();
  if (!lower.startsWith('loom:') || known(lower)) return undefined;
  return `"${name}" is not a Loom label (Loom's labels: ${LOOM_LABELS.join(', ')}; the original Loom's are in docs/state-machine.md)`;
}
