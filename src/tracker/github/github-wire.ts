/**
 * The GitHub REST shapes the adapter reads, and their mapping to the tracker model.
 * Invariant: the only code that knows GitHub's JSON field names; everything past these
 * functions speaks `Issue`, `PullRequest`, `Comment` and `TrackerEvent`.
 */
import { canonicalLabel, canonicalLabels } from '../../core/labels.js';
import type { Comment, Issue, ItemState, PullRequest, TrackerEvent } from '../../core/tracker-model.js';

export interface GhUser {
  login: string;
}

export interface GhLabel {
  name: string;
  /** The label's GraphQL id. */
  node_id?: string;
  color?: string;
  description?: string | null;
}

/** An issue, or a pull request as the issues API shows it (`pull_request` set). */
export interface GhIssue {
  number: number;
  /** The item's GraphQL id (a PR read as an issue: the PR's). */
  node_id?: string;
  title: string;
  body?: string | null;
  state: string;
  labels: Array<GhLabel | string>;
  user: GhUser | null;
  created_at: string;
  updated_at: string;
  pull_request?: { merged_at?: string | null } | null;
  /** `completed`, `not_planned`, `reopened`, `duplicate` or null. */
  state_reason?: string | null;
  /** Sub-issues of this issue: how many, how many closed. */
  sub_issues_summary?: { total?: number; completed?: number } | null;
  /** Issue dependencies: `total_blocked_by` issues (open or closed) block this one. */
  issue_dependencies_summary?: { blocked_by?: number; total_blocked_by?: number; blocking?: number; total_blocking?: number } | null;
}

export interface GhPull {
  number: number;
  title: string;
  body?: string | null;
  state: string;
  labels: Array<GhLabel | string>;
  head: { ref: string; sha: string };
  base: { ref: string; sha: string };
  merged_at?: string | null;
  created_at: string;
  updated_at: string;
}

export interface GhComment {
  id: number;
  body?: string | null;
  user: GhUser | null;
  created_at: string;
}

export interface GhEvent {
  id: number;
  event: string;
  actor: GhUser | null;
  label?: { name: string } | null;
  created_at: string;
}

/**
 * A listing record Loom can map: the fields it reads have their documented types. A malformed
 * record (say `labels: null`) is skipped by the listing instead of failing the whole snapshot.
 */
export function isWellFormed(item: unknown): item is GhIssue & GhPull {
  if (typeof item !== 'object' || item === null) return false;
  const r = item as Record<string, unknown>;
  const labelsOk = Array.isArray(r.labels) && r.labels.every((l) => typeof l === 'string' || (typeof l === 'object' && l !== null && typeof (l as { name?: unknown }).name === 'string'));
  return Number.isInteger(r.number) && typeof r.title === 'string' && typeof r.state === 'string' && labelsOk && typeof r.created_at === 'string' && typeof r.updated_at === 'string';
}

export function isPull(item: GhIssue): boolean {
  return item.pull_request !== undefined && item.pull_request !== null;
}

/** Label names, sorted like `applyLabelChange` results so label sets compare equal. */
export function labelNames(labels: ReadonlyArray<GhLabel | string>): string[] {
  return canonicalLabels(labels.map((l) => (typeof l === 'string' ? l : l.name)));
}

export function toIssue(item: GhIssue): Issue {
  return {
    number: item.number,
    title: item.title,
    body: item.body ?? '',
    state: item.state === 'closed' ? 'closed' : 'open',
    labels: labelNames(item.labels),
    author: item.user?.login ?? 'ghost',
    createdAt: item.created_at,
    updatedAt: item.updated_at,
    ...(item.state === 'closed' && item.state_reason ? { closedAs: item.state_reason === 'not_planned' || item.state_reason === 'duplicate' ? 'not-planned' : 'completed' } : {}),
    ...linksOf(item),
  };
}

/** The link counts the issue carries, when GitHub sends both summaries. */
function linksOf(item: GhIssue): { links?: { blockedBy: number; subIssues: number } } {
  const blockedBy = item.issue_dependencies_summary?.total_blocked_by;
  const subIssues = item.sub_issues_summary?.total;
  return typeof blockedBy === 'number' && typeof subIssues === 'number' ? { links: { blockedBy, subIssues } } : {};
}

export function pullState(pull: GhPull): ItemState {
  if (pull.merged_at != null) return 'merged';
  return pull.state === 'closed' ? 'closed' : 'open';
}

export function toPullRequest(pull: GhPull): PullRequest {
  const body = pull.body ?? '';
  return {
    number: pull.number,
    title: pull.title,
    body,
    state: pullState(pull),
    labels: labelNames(pull.labels),
    head: pull.head.ref,
    base: pull.base.ref,
    closesIssue: closesIssueOf(body),
    createdAt: pull.created_at,
    updatedAt: pull.updated_at,
  };
}

export function toComment(comment: GhComment): Comment {
  return { id: comment.id, author: comment.user?.login ?? 'ghost', body: comment.body ?? '', createdAt: comment.created_at };
}

/** A timeline event Loom keeps (labels, closing, reopening, merging), or null for the others. */
export function toEvent(event: GhEvent): TrackerEvent | null {
  const type = toEventType(event.event);
  if (type === null) return null;
  return {
    id: event.id,
    type,
    label: type === 'labeled' || type === 'unlabeled' ? (event.label?.name === undefined ? null : canonicalLabel(event.label.name)) : null,
    actor: event.actor?.login ?? 'ghost',
    createdAt: event.created_at,
  };
}

function toEventType(event: string): TrackerEvent['type'] | null {
  switch (event) {
    case 'labeled':
    case 'unlabeled':
    case 'closed':
    case 'reopened':
    case 'merged':
      return event;
    default:
      return null;
  }
}

const CLOSING_KEYWORD = /\b(?:close[sd]?|fix(?:e[sd])?|resolve[sd]?)\s+#(\d+)\b/i;

/** The issue a PR body closes with a GitHub closing keyword (`Closes #N`), if any. */
export function closesIssueOf(body: string): number | null {
  const match = CLOSING_KEYWORD.exec(body);
  return match?.[1] === undefined ? null : Number(match[1]);
}

/** The body with a `Closes #N` line added, unless it already closes that issue. */
export function withClosesLine(body: string, closes: number | null): string {
  if (closes === null || closesIssueOf(body) === closes) return body;
  return body === '' ? `Closes #${closes}` : `${body}\n\nCloses #${closes}`;
}
