/**
 * The tracker's domain: issues, pull requests, comments and events as Loom sees them, whichever
 * tracker holds them. Plain data; the `Tracker` port (src/tracker/tracker.ts) moves it.
 */
import { LoomError } from './errors.js';

export type ItemState = 'open' | 'closed' | 'merged';

export interface Issue {
  number: number;
  title: string;
  body: string;
  state: 'open' | 'closed';
  labels: string[];
  author: string;
  /** ISO-8601 time of creation. */
  createdAt: string;
  /** ISO-8601 time of the last change to labels, state or comments. */
  updatedAt: string;
  /** How a closed issue was closed, where the tracker records it (GitHub's `state_reason`). */
  closedAs?: 'completed' | 'not-planned';
  /**
   * How many issues the tracker itself links to this one, where it says so in the issue (GitHub's
   * `issue_dependencies_summary.total_blocked_by` and `sub_issues_summary.total`): lets a reader
   * skip asking for links an issue does not have. Absent: unknown.
   */
  links?: { blockedBy: number; subIssues: number };
}

/**
 * An issue the tracker itself records as standing before another: one it is blocked by (GitHub's
 * issue dependencies), or one of its sub-issues.
 */
export interface LinkedIssue {
  kind: 'blocked-by' | 'sub-issue';
  issue: Issue;
}

/** The part of a PR that following it needs (`Tracker.pullRequestState`). */
export type PullRequestState = Pick<PullRequest, 'number' | 'state' | 'labels'>;

/**
 * What merging a PR needs to know of it, in one look (`Tracker.mergeLook`): whether any review
 * exists (none: nothing to read), and whether the checks on its head and on the base's head are
 * settled — the fine detail (each check, each review) is read only when the look is not enough.
 */
export interface MergeLook {
  /** When the look was taken, epoch ms. */
  at: number;
  state: ItemState;
  /** The commit whose checks were looked at (the head to be merged). */
  head: string;
  labels: string[];
  /** Reviews of any state on the PR. */
  reviews: number;
  /** The checks on `head` as a whole: none reported, every one passed, or anything else (pending, failed, expected, a commit GitHub does not have). */
  checks: 'none' | 'success' | 'other';
  /** The base branch's head commit and whether any check reported on it; null when the branch is not there. */
  base: { sha: string; checks: boolean } | null;
}

export interface PullRequest {
  number: number;
  title: string;
  body: string;
  state: ItemState;
  labels: string[];
  /** Branch holding the change. */
  head: string;
  /** Branch the change merges into. */
  base: string;
  /** Issue this PR closes (`Closes #N`), if any. */
  closesIssue: number | null;
  createdAt: string;
  updatedAt: string;
}

export interface Comment {
  id: number;
  author: string;
  body: string;
  createdAt: string;
}

export interface TrackerEvent {
  id: number;
  type: 'labeled' | 'unlabeled' | 'closed' | 'reopened' | 'merged';
  /** The label for `labeled`/`unlabeled`, else null. */
  label: string | null;
  /** Who made the change (the tracker's actor name). */
  actor: string;
  createdAt: string;
}

/**
 * One consistent read of the open work: every open issue and PR that has a `loom:*` label — or,
 * when `page` says so, a bounded part of the issues (see `SnapshotPage`).
 */
export interface TrackerSnapshot {
  issues: Issue[];
  pullRequests: PullRequest[];
  /** Records the tracker had to skip (malformed), said once per snapshot. */
  warnings?: string[];
  /** Present when `issues` is not every labelled open issue but the part `SnapshotOptions.page` asked for. */
  page?: SnapshotPage;
}

/**
 * What a bounded snapshot says of the issues it left out. Its `issues` are then: every issue
 * labelled `loom:building`, every issue an open PR of the snapshot closes, the first `page` ready
 * issues (`loom:issue`) in build order (`loom:urgent` first, then oldest), and the `page` lowest
 * numbers of each proposal label and of `loom:blocked` (the other blocked issues only count).
 */
export interface SnapshotPage {
  /** The page size asked for. */
  size: number;
  /** Open issues per label (every label, not only `loom:*`; a label with none may be absent). */
  counts: Record<string, number>;
  /** The lowest numbers (at most `PIPELINE_LIST_LIMIT`) of the open issues carrying each Loom issue-state label. */
  lowest: Record<string, number[]>;
  /** Whether ready issues exist beyond those in `issues`: a larger page would show more. */
  moreReady: boolean;
}

/** How much of the backlog a snapshot reads. */
export interface SnapshotOptions {
  /**
   * Read only about this many ready issues (and proposals), plus the counts (`SnapshotPage`). A
   * tracker may ignore it and read everything; absent: everything.
   */
  page?: number;
}

export interface NewIssue {
  title: string;
  body?: string;
  labels?: string[];
}

export interface NewPullRequest {
  title: string;
  body?: string;
  head: string;
  base: string;
  labels?: string[];
  closesIssue?: number | null;
}

export interface IssueFilter {
  state?: 'open' | 'closed' | 'all';
  /** Only items carrying every one of these labels. */
  labels?: string[];
}

/** Thrown for a tracker item that does not exist. */
export class NotFoundError extends LoomError {
  constructor(readonly number: number) {
    super('not_found', `#${number} does not exist`, { userFixable: true });
  }
}
