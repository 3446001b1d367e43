/**
 * The `Tracker` port: where issues, labels, comments and pull requests live.
 *
 * Contract (held by the shared suite in test/tracker/tracker-contract.ts):
 * - Issues and pull requests share one number space, as on GitHub.
 * - Label changes go through the label state machine (`applyLabelChange`): adding a state or
 *   verdict label replaces the previous one of its group.
 * - `claim` is atomic: of any number of concurrent claimers of one `loom:issue`, exactly one
 *   gets `true`; the issue then carries `loom:building`. A claim that fails part-way (GitHub: two
 *   writes) puts `loom:issue` back, or leaves what `restoreInterruptedClaim` repairs.
 * - `snapshot` is one consistent read of every open issue and PR carrying a `loom:*` label.
 * - `health` never makes a request: it says what the adapter already knows, so it is cheap
 *   enough to ask after every iteration and answers in a process that has not talked to the
 *   tracker yet (`loom status`) from what an earlier process left behind.
 * - Failures of the tracker itself are the `TrackerError`s of ./tracker-errors.ts; a missing
 *   item is `NotFoundError`.
 * Deliberately excluded: assignees, milestones, reactions, editing titles/bodies, deleting.
 */

import type { CheckResult } from '../core/checks.js';
import type { HumanReview } from '../core/reviews.js';
import type { Comment, Issue, IssueFilter, ItemState, LinkedIssue, MergeLook, NewIssue, NewPullRequest, PullRequest, PullRequestState, SnapshotOptions, TrackerEvent, TrackerSnapshot } from '../core/tracker-model.js';

/** A request budget: `remaining` of `limit` requests left in the current window. */
export interface TrackerBudget {
  readonly remaining: number;
  readonly limit: number;
}

/**
 * What the tracker can take right now, discriminated by `state`:
 * - `ok`: poll at the configured interval.
 * - `slow-down`: requests go through, but the request budget is running low; the daemon polls
 *   less often until it recovers.
 * - `unavailable`: nothing is sent before `until` (ISO 8601): every call fails fast with a
 *   retryable `TrackerError` and the daemon resumes by itself afterwards. `lowBudget` is the
 *   budget when it is running low as well (an exhausted one always is), else null.
 */
export type TrackerHealth =
  | { readonly state: 'ok' }
  | ({ readonly state: 'slow-down' } & TrackerBudget)
  | { readonly state: 'unavailable'; readonly until: string; readonly lowBudget: TrackerBudget | null };

export interface Tracker {
  /**
   * `local`: PRs are local branches that Loom merges itself. `github`: branches are pushed to the
   * `origin` remote before a PR is opened, and `markMerged` merges through the API.
   */
  readonly kind: 'local' | 'github';
  /**
   * Every open issue and PR with at least one `loom:*` label; with `options.page`, the tracker may
   * read a bounded part of the issues instead and say so in `TrackerSnapshot.page`.
   */
  snapshot(options?: SnapshotOptions): Promise<TrackerSnapshot>;
  getIssue(number: number): Promise<Issue | null>;
  /**
   * The issues the tracker itself links before `issue`: those it is blocked by and its sub-issues
   * (GitHub's issue dependencies and sub-issues), in any state. Only asked for issues about to be
   * built; an adapter may answer from what `issue.links` says without a request. The local
   * tracker records no links (dependencies there are `Depends on #N` lines): always empty.
   */
  linkedIssues(issue: Issue): Promise<LinkedIssue[]>;
  listIssues(filter?: IssueFilter): Promise<Issue[]>;
  createIssue(issue: NewIssue): Promise<Issue>;
  /** Adds and removes labels in one step; returns the resulting label set. */
  updateLabels(number: number, change: { add?: string[]; remove?: string[] }): Promise<string[]>;
  /**
   * Atomically swaps `loom:issue` for `loom:building` on an open issue.
   * Returns false (and changes nothing) if the issue is not open or not `loom:issue`.
   */
  claim(number: number): Promise<boolean>;
  /**
   * Gives a claimed issue back: `loom:building` → `loom:issue`, only if `loom:building` is still
   * the open issue's only state label when the change is made (a human's `loom:blocked`, close or relabel
   * in the meantime is never overwritten). Returns whether it did.
   */
  release(number: number): Promise<boolean>;
  /**
   * Puts `loom:issue` back on an open issue that a claim of ours left with no state label at all
   * (interrupted between its writes: the claimer killed, or the tracker failing while the claim
   * was undone). Never undoes a human's change: the last state-label change must be the claim's
   * own removal of `loom:issue`. Returns whether it did. A tracker whose claim is one transaction
   * (local) never leaves that: always false there.
   */
  restoreInterruptedClaim(number: number): Promise<boolean>;
  comment(number: number, body: string): Promise<Comment>;
  listComments(number: number): Promise<Comment[]>;
  /**
   * Closes an issue or PR, removing its state/verdict labels; an optional comment is added first.
   * `reason` (default `completed`) is how an issue was closed: `not-planned` for work that will
   * not be done (GitHub's "close as not planned"); `Issue.closedAs` reads it back.
   * `seen`: an open issue's labels as the caller read them a moment ago; a tracker that would
   * read the issue before writing uses them instead (GitHub: one `PATCH`, no read). `seen.pr`:
   * the PR just merged for this issue, with its labels from the same look: its workflow labels
   * come off too (GitHub: one GraphQL request for both items, else a REST write each).
   */
  close(number: number, comment?: string, reason?: 'completed' | 'not-planned', seen?: { labels: readonly string[]; pr?: { number: number; labels: readonly string[] } }): Promise<void>;
  reopen(number: number): Promise<void>;
  getPullRequest(number: number): Promise<PullRequest | null>;
  /**
   * What following a PR closely needs — its state and labels — or null when there is no such PR.
   * GitHub: the PR read as an issue, conditionally; unlike the PR itself, that answer does not
   * change when the base branch moves, so a look after another merge is still a 304.
   */
  pullRequestState(number: number): Promise<PullRequestState | null>;
  /** Pull requests by state (default: open), ordered by number. */
  listPullRequests(filter?: { state?: ItemState | 'all' }): Promise<PullRequest[]>;
  createPullRequest(pr: NewPullRequest): Promise<PullRequest>;
  /**
   * Marks a PR merged (the branch merge itself is the caller's job for the local tracker).
   * `seen`: the head commit the caller's gates judged and the PR's labels from its look a moment
   * ago. GitHub then merges only that head (409 when it moved: `MergeRejectedError`) with no read
   * of the PR before the request, and takes the workflow labels `seen` names off afterwards —
   * unless `seen.labels` is left out, when the caller's `close` of the issue takes them off
   * (`seen.pr` there).
   */
  markMerged(number: number, seen?: { sha: string; labels?: readonly string[] }): Promise<void>;
  /**
   * The CI checks on a commit (GitHub: its check runs and commit statuses, read with conditional
   * requests, so asking again about an unchanged commit costs no rate limit). The local tracker
   * has no CI: always empty.
   */
  checks(sha: string): Promise<CheckResult[]>;
  /**
   * Human reviews of a PR with their inline comments, each saying whether its author can write
   * to the repository (GitHub: reviews and review comments, read with conditional requests). The
   * local tracker has no reviews: always empty.
   */
  reviews(prNumber: number): Promise<HumanReview[]>;
  /**
   * One look before merging a PR into `base`: its state, labels and number of reviews, and the
   * checks on commit `head` and on the base's head as a whole (GitHub: one GraphQL query in place
   * of the reads it settles). Null when it could not be had: the caller reads as without it.
   * Absent for a tracker with no reviews or CI (local).
   */
  mergeLook?(prNumber: number, base: string, head: string): Promise<MergeLook | null>;
  /**
   * The checks branch protection requires on `branch`, or null when there is no such rule or the
   * token may not read it (GitHub: `GET /branches/{b}/protection/required_status_checks`; 404
   * and 403 are null). The local tracker: null.
   */
  requiredChecks(branch: string): Promise<string[] | null>;
  /** The timeline of an item: label changes, closing, reopening, merging, oldest first. */
  listEvents(number: number): Promise<TrackerEvent[]>;
  /**
   * How the tracker is doing, from what the adapter already knows (no request). In a process
   * that has made no request yet, a remote adapter answers from its persisted state (GitHub: the
   * circuit breaker in `.loom/github-cache.json`). The local tracker is always `ok`.
   */
  health(): TrackerHealth;
  /**
   * Whether an approved issue may be built: whoever most recently applied `loom:issue` may
   * approve work (PRODUCT.md §11; GitHub: write access or `trustedUsers`). Everyone who can
   * write the local tracker may: always true there.
   */
  isTrusted(number: number): Promise<boolean>;
  /**
   * Creates the `loom:*` labels that are missing where the tracker keeps label definitions, and
   * never changes an existing one: those whose colour or description differ from Loom's are
   * reported in `differing`. Idempotent. The local tracker has none: empty lists.
   */
  ensureLabels(): Promise<{ created: string[]; differing: string[] }>;
  /** Releases resources (database handles) and saves what the next process reuses. */
  dispose(): void;
}
