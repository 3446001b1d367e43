/**
 * The labels of the original Loom (rjwalters/loom) that are not Loom's own, and what each one
 * means here. Repositories that ran the original keep them on their issues and pull requests;
 * every one has a defined effect, so none is ignored by accident (docs/state-machine.md, "Labels
 * of the original Loom").
 *
 * Invariants owned here: a held item (`loom:operator*`, `loom:needs-capability`) is never built,
 * reviewed, treated or merged; an issue marked as an epic or as failed is never built; a PR
 * marked `loom:merge-conflict` or `loom:ci-failure` goes to the Doctor.
 */

export type OriginalLabelEffect =
  /** A human hold: nothing is built, reviewed, treated or merged until a human removes it. */
  | 'hold'
  /** Not buildable by one shepherd (an epic): never built, shown. */
  | 'never-build'
  /** The original's failure marks: the issue needs a human, like `loom:blocked`. */
  | 'blocked'
  /** The PR needs fixes: the Doctor takes it, like `loom:changes-requested`. */
  | 'doctor'
  /** The original's override of the Champion's merge-risk hold: lifts the size limit. */
  | 'lift-size-limit'
  /** A claim label of one of the original's agents: nothing here uses it; shown. */
  | 'stale-claim'
  /** New issue awaiting the Curator. */
  | 'triage'
  /** Shown only. */
  | 'shown';

/** The original's "new issue awaiting the Curator"; the Curator removes it when it curates. */
export const ORIGINAL_TRIAGE_LABEL = 'loom:triage';

export interface OriginalLabel {
  /** The label name, or a prefix ending in `*`. */
  name: string;
  effect: OriginalLabelEffect;
  /** What the original meant by it and what Loom does with it, in one line. */
  meaning: string;
}

export const ORIGINAL_LABELS: readonly OriginalLabel[] = [
  { name: 'loom:operator', effect: 'hold', meaning: 'a human hold: never built, reviewed, treated or merged until a human removes the label' },
  { name: 'loom:operator-*', effect: 'hold', meaning: 'a kind of human hold (operator-only, operator-blocked, -mechanical, -decision, -objective): as loom:operator' },
  { name: 'loom:needs-capability', effect: 'hold', meaning: 'waits for a missing tool or agent capability: held as loom:operator' },
  { name: 'loom:epic', effect: 'never-build', meaning: 'a multi-phase epic, too big for one pull request: never built itself; its phase issues are' },
  { name: 'loom:failed:*', effect: 'blocked', meaning: "the original's per-phase failure mark: needs a human, like loom:blocked; never built" },
  { name: 'failed:*', effect: 'blocked', meaning: 'a failure mark: needs a human, like loom:blocked; never built' },
  { name: 'loom:needs-fix', effect: 'blocked', meaning: "the original's test-failure mark: needs a human, like loom:blocked; never built" },
  { name: 'needs-fix', effect: 'blocked', meaning: 'a test-failure mark: needs a human, like loom:blocked; never built' },
  { name: 'loom:merge-conflict', effect: 'doctor', meaning: 'the PR does not merge cleanly: the Doctor updates it, then back to review' },
  { name: 'loom:ci-failure', effect: 'doctor', meaning: 'the PR fails its checks: the Doctor fixes it, then back to review' },
  { name: 'loom:auto-merge-ok', effect: 'lift-size-limit', meaning: 'a human or Judge override: the Champion merges it whatever its size (maxMergeLines)' },
  { name: 'loom:triage', effect: 'triage', meaning: 'a new issue awaiting the Curator: curated like an unlabelled issue (the label is removed then)' },
  { name: 'loom:curating', effect: 'stale-claim', meaning: "the original Curator's claim: nothing here uses it; shown" },
  { name: 'loom:treating', effect: 'stale-claim', meaning: "the original Doctor's claim: nothing here uses it; shown" },
  { name: 'loom:reviewing', effect: 'stale-claim', meaning: "the original Judge's claim: nothing here uses it; shown" },
  { name: 'loom:evaluating', effect: 'stale-claim', meaning: "the original Champion's claim: nothing here uses it; shown" },
  { name: 'loom:in-progress', effect: 'stale-claim', meaning: "the earliest original's claim label: nothing here uses it; shown" },
  { name: 'loom:epic-phase', effect: 'shown', meaning: 'an issue that is one phase of an epic: built like any other; shown' },
  { name: 'loom:auditor', effect: 'shown', meaning: "a bug the original's Auditor found: built once approved (loom:issue), like any issue; shown" },
  { name: 'loom:auditor-capability-request', effect: 'shown', meaning: "the original Auditor's request for tooling: shown" },
];

function matches(entry: OriginalLabel, name: string): boolean {
  const lower = name.toLowerCase();
  return entry.name.endsWith('*') ? lower.startsWith(entry.name.slice(0, -1)) && lower.length > entry.name.length - 1 : lower === entry.name;
}

/** The original label `name` is, if any (case-insensitive, as on GitHub). */
export function originalLabel(name: string): OriginalLabel | undefined {
  return ORIGINAL_LABELS.find((entry) => matches(entry, name));
}

function firstWith(labels: readonly string[], effects: readonly OriginalLabelEffect[]): string | undefined {
  return labels.find((l) => {
    const entry = originalLabel(l);
    return entry !== undefined && effects.includes(entry.effect);
  });
}

/** The hold label among `labels`, if any: the item is left alone (not built, reviewed, treated or merged). */
export function holdOf(labels: readonly string[]): string | undefined {
  return firstWith(labels, ['hold']);
}

/** Why an issue with these labels is never built, or undefined when nothing of the original's forbids it. */
export function buildBlocker(labels: readonly string[]): { label: string; reason: string } | undefined {
  const label = firstWith(labels, ['hold', 'never-build', 'blocked']);
  if (label === undefined) return undefined;
  const entry = originalLabel(label);
  return { label, reason: entry?.meaning ?? '' };
}

/** The label that sends a PR to the Doctor (`loom:merge-conflict`, `loom:ci-failure`), if any. */
export function doctorLabelOf(labels: readonly string[]): string | undefined {
  return firstWith(labels, ['doctor']);
}

/** Labels the Doctor clears when it sends a PR back to review. */
export function doctorLabels(labels: readonly string[]): string[] {
  return labels.filter((l) => originalLabel(l)?.effect === 'doctor');
}

/** Whether the PR carries the original's override of the merge-risk hold (`loom:auto-merge-ok`). */
export function liftsSizeLimit(labels: readonly string[]): boolean {
  return firstWith(labels, ['lift-size-limit']) !== undefined;
}

/** Whether the labels mark a failure of the original (counted with `loom:blocked`). */
export function markedFailed(labels: readonly string[]): boolean {
  return firstWith(labels, ['blocked']) !== undefined;
}
