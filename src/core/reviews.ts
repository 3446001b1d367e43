/**
 * Human reviews of a pull request (GitHub reviews and their inline comments) and what the merge
 * path makes of them. Pure: the adapter reads them, this decides.
 *
 * - A review asks for the Doctor when its author can write to the repository and it requests
 *   changes, or comments (a body or inline comments); once Loom has handed it to the Doctor (its
 *   id is in a Loom comment, `reviewMarker`) it is handled and never handed over again.
 * - With `requireApproval`, a PR merges only when some writer's latest verdict (approve or
 *   request changes; comments do not count) approves and no writer's latest verdict requests
 *   changes. An approval of an older head whose change differs from the head's (a Doctor round
 *   pushed since) is stale: it approves nothing that would be merged.
 */

export interface ReviewComment {
  path: string;
  line: number | null;
  body: string;
}

export interface HumanReview {
  id: number;
  author: string;
  /** Whether the author has write access (admin, maintain, write). */
  writer: boolean;
  state: 'approved' | 'changes_requested' | 'commented' | 'dismissed' | 'pending';
  body: string;
  submittedAt: string;
  /** Inline comments made with this review. */
  comments: ReviewComment[];
  /** The head commit the review was given on (GitHub's `commit_id`), when known. */
  commitId?: string | null;
}

/** The hidden line in Loom's comment that marks review `id` as handed to the Doctor. */
export const reviewMarker = (id: number): string => `<!-- loom:review ${id} -->`;

/** Review ids already handed to the Doctor, from Loom's comments on the PR. */
export function handledReviews(commentBodies: readonly string[]): Set<number> {
  const ids = new Set<number>();
  for (const body of commentBodies) for (const m of body.matchAll(/<!-- loom:review (\d+) -->/g)) ids.add(Number(m[1]));
  return ids;
}

/** Writers' reviews the Doctor has not had yet: changes requested, or comments with something in them. */
export function actionableReviews(reviews: readonly HumanReview[], handled: ReadonlySet<number>): HumanReview[] {
  return reviews.filter((r) => r.writer && !handled.has(r.id) && (r.state === 'changes_requested' || (r.state === 'commented' && (r.body.trim() !== '' || r.comments.length > 0))));
}

/**
 * Whether writers approve: some writer's latest verdict approves (and is `current`: given on a
 * head with the change that would be merged) and none's requests changes. `stale`: writers whose
 * latest verdict approves an older change.
 */
export function writerApproval(reviews: readonly HumanReview[], current: (commitId: string | null) => boolean = () => true): { approved: boolean; by: string[]; requesting: string[]; stale: string[] } {
  const latest = new Map<string, HumanReview>();
  for (const r of [...reviews].sort((a, b) => a.submittedAt.localeCompare(b.submittedAt) || a.id - b.id)) {
    if (!r.writer || (r.state !== 'approved' && r.state !== 'changes_requested' && r.state !== 'dismissed')) continue;
    latest.set(r.author, r);
  }
  const approving = [...latest.values()].filter((r) => r.state === 'approved');
  const by = approving.filter((r) => current(r.commitId ?? null)).map((r) => r.author);
  const stale = approving.filter((r) => !current(r.commitId ?? null)).map((r) => r.author);
  const requesting = [...latest.values()].filter((r) => r.state === 'changes_requested').map((r) => r.author);
  return { approved: by.length > 0 && requesting.length === 0, by, requesting, stale };
}

/** The commits writers' approvals were given on. */
export function approvedCommits(reviews: readonly HumanReview[]): string[] {
  return [...new Set(reviews.flatMap((r) => (r.writer && r.state === 'approved' && typeof r.commitId === 'string' ? [r.commitId] : [])))];
}

/** The Doctor's work list from human reviews: each review's verdict, body and inline comments. */
export function reviewsForDoctor(reviews: readonly HumanReview[]): string {
  const parts = reviews.map((r) => {
    const verdict = r.state === 'changes_requested' ? 'requested changes' : 'commented';
    const inline = r.comments.map((c) => `- \`${c.path}${c.line === null ? '' : `:${c.line}`}\`: ${c.body.trim()}`);
    return [`### @${r.author} ${verdict}`, r.body.trim() === '' ? '' : r.body.trim(), inline.length > 0 ? inline.join('\n') : '', reviewMarker(r.id)].filter(Boolean).join('\n\n');
  });
  return `Human review on this PR: address every point below, run the tests, and commit.\n\n${parts.join('\n\n')}`;
}
