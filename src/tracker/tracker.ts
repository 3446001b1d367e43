/**
 * The `Tracker` port: where issues, labels, comments and pull requests live.
 *
 * Contract (held by the shared suite in test/tracker/tracker-contract.ts):
 * - Issues and pull requests share one number space, as on GitHub.
 * - Label changes go through the label state machine (`applyLabelChange`): adding a state or
 *   verdict label replaces the previous one of its group.
 * - `claim` is atomic: of any number of concurrent claimers of one `loom:issue`, exactly one
 *   gets `true`; the issue then carries `loom:building`.
 * - `snapshot` is one consistent read of every open issue and PR carrying a `loom:*` label.
 * Deliberately excluded: assignees, milestones, reactions, editing titles/bodies, deleting.
 */

import type { Comment, Issue, IssueFilter, ItemState, NewIssue, NewPullRequest, PullRequest, TrackerEvent, TrackerSnapshot } from '../core/tracker-model.js';

export interface Tracker {
  /**
   * `local`: PRs are local branches that Loom merges itself. `github`: branches are pushed to the
   * `origin` remote before a PR is opened, and `markMerged` merges through the API.
   */
  readonly kind: 'local' | 'github';
  /** Every open issue and PR with at least one `loom:*` label. */
  snapshot(): Promise<TrackerSnapshot>;
  getIssue(number: number): Promise<Issue | null>;
  listIssues(filter?: IssueFilter): Promise<Issue[]>;
  createIssue(issue: NewIssue): Promise<Issue>;
  /** Adds and removes labels in one step; returns the resulting label set. */
  updateLabels(number: number, change: { add?: string[]; remove?: string[] }): Promise<string[]>;
  /**
   * Atomically swaps `loom:issue` for `loom:building` on an open issue.
   * Returns false (and changes nothing) if the issue is not open or not `loom:issue`.
   */
  claim(number: number): Promise<boolean>;
  comment(number: number, body: string): Promise<Comment>;
  listComments(number: number): Promise<Comment[]>;
  /** Closes an issue or PR, removing its state/verdict labels; an optional comment is added first. */
  close(number: number, comment?: string): Promise<void>;
  reopen(number: number): Promise<void>;
  getPullRequest(number: number): Promise<PullRequest | null>;
  /** Pull requests by state (default: open), ordered by number. */
  listPullRequests(filter?: { state?: ItemState | 'all' }): Promise<PullRequest[]>;
  createPullRequest(pr: NewPullRequest): Promise<PullRequest>;
  /** Marks a PR merged (the branch merge itself is the caller's job for the local tracker). */
  markMerged(number: number): Promise<void>;
  /** The timeline of an item: label changes, closing, reopening, merging, oldest first. */
  listEvents(number: number): Promise<TrackerEvent[]>;
  /** Releases resources (database handles). */
  dispose(): void;
}
