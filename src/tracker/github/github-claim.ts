/**
 * The claim protocol on GitHub, and `claimVerdict`, the rule that decides who won.
 *
 * GitHub has no compare-and-swap on labels. `GitHubTracker.claim` uses the closest thing it has:
 * after checking the issue is open and `loom:issue` (from the timeline the trust check read a
 * moment before, when it says so; else by reading the issue), it DELETEs the `loom:issue` label. GitHub
 * answers 404 ("Label does not exist") when the label is no longer there, so of concurrent
 * claimers only the first removal succeeds; the others return false having changed nothing. The
 * winner then adds `loom:building`. A removal GitHub answered 200 is the claim: the winner is
 * done (GitHub documents the removal as answered 404 when the label is not there, so a
 * concurrent removal of the same approval cannot also be answered 200).
 *
 * Only a removal whose answer was lost (5xx, no answer) and that the timeline then showed was
 * ours is verified after `loom:building` is added, by reading the issue events again
 * (`claimVerdict`): the first `labeled loom:building` after the latest `labeled loom:issue` must
 * be by our actor, and only one `unlabeled loom:issue` may follow that approval. If another
 * actor won, we return false and leave its claim alone; if two removals by the same actor (one
 * token shared by several processes) both succeeded, neither can tell which is its own, so both
 * return false and put `loom:issue` back for a later tick.
 *
 * Remaining race: a human re-approving (`labeled loom:issue` again) in the tenth of a second
 * between a claimer's removal and its `loom:building`, with a second claimer (another Loom
 * daemon on the same repository, or `loom claim` by hand) taking that new approval in the same
 * window: both claims stand (the verification, read once per claim before, caught that; it
 * cost a rate-limit point on every claim). Nor is the label DELETE documented as linearizable:
 * two removals it let both succeed would both stand. Crash recovery (PRODUCT.md §4) is the
 * backstop for an orphaned `loom:building`.
 */
import { ISSUE_STATE_LABELS, Label } from '../../core/labels.js';
import type { TrackerEvent } from '../../core/tracker-model.js';

/**
 * Who won a claim, from the issue's timeline (oldest first) after our removal of `loom:issue`
 * and addition of `loom:building`; `me` is our login (null when the token cannot tell).
 * `ambiguous`: several removals by us (or by someone we cannot tell from us) succeeded.
 */
export function claimVerdict(events: readonly TrackerEvent[], me: string | null): 'won' | 'lost' | 'ambiguous' {
  const approvedAt = events.findLastIndex((e) => e.type === 'labeled' && e.label === Label.issue);
  const since = events.slice(approvedAt + 1);
  const firstBuilding = since.find((e) => e.type === 'labeled' && e.label === Label.building);
  if (firstBuilding !== undefined && me !== null && firstBuilding.actor !== me) return 'lost';
  const removals = since.filter((e) => e.type === 'unlabeled' && e.label === Label.issue);
  if (removals.length > 1 && (me === null || removals.every((e) => e.actor === me))) return 'ambiguous';
  if (removals.length > 1) return removals[0]?.actor === me ? 'won' : 'lost';
  return 'won';
}

/** Whether an event changes an issue-state label (`loom:issue`, `loom:building`, `loom:blocked`, proposals). */
function touchesState(e: TrackerEvent): boolean {
  return (e.type === 'labeled' || e.type === 'unlabeled') && e.label !== null && ISSUE_STATE_LABELS.includes(e.label);
}

/**
 * After a removal of `loom:issue` whose answer was lost (5xx, no answer): whether the removal
 * that took effect was ours — the first `unlabeled loom:issue` since the latest approval is by
 * `me`, and no one else has added `loom:building` since. False when we cannot tell who we are.
 */
export function ourRemoval(events: readonly TrackerEvent[], me: string | null): boolean {
  if (me === null) return false;
  const approvedAt = events.findLastIndex((e) => e.type === 'labeled' && e.label === Label.issue);
  const since = events.slice(approvedAt + 1);
  const removal = since.find((e) => e.type === 'unlabeled' && e.label === Label.issue);
  if (removal?.actor !== me) return false;
  return !since.some((e) => e.type === 'labeled' && e.label === Label.building && e.actor !== me);
}

/**
 * Whether an issue with no state label was left so by an interrupted claim of ours: the last
 * change to its state labels is our own removal of `loom:issue` (a claim that never added
 * `loom:building`). A human's removal, or ours of `loom:building` (an approved PR left for the
 * Champion), is not one.
 */
export function interruptedClaim(events: readonly TrackerEvent[], me: string | null): boolean {
  if (me === null) return false;
  const last = events.findLast(touchesState);
  return last !== undefined && last.type === 'unlabeled' && last.label === Label.issue && last.actor === me;
}
