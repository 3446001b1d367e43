/**
 * `mergeLook` on GitHub: one GraphQL query in place of the REST reads a merge makes of a PR that
 * nobody reviewed and whose checks are settled — its reviews (1 point), its head's check runs and
 * commit statuses (2 points) and the base head's (2 points, kept for a while). The query costs one
 * point of GraphQL's own budget. Whatever the look cannot settle (a review exists, a check is
 * pending or failed) is read over REST as before, with each check's and review's detail.
 */
import type { ItemState, MergeLook } from '../../core/tracker-model.js';
import type { GitHubTransport } from './github-transport.js';

/** The query (its operation name is how GitHub's logs, and the test server, know it). */
export const MERGE_LOOK_QUERY = `query LoomMergeLook($owner: String!, $name: String!, $number: Int!, $base: String!, $head: String!) {
  repository(owner: $owner, name: $name) {
    pullRequest(number: $number) {
      state
      headRefOid
      labels(first: 100) { nodes { name } }
      reviews(first: 1) { totalCount }
    }
    ref(qualifiedName: $base) {
      target { oid ... on Commit { statusCheckRollup { state } } }
    }
    object(expression: $head) {
      oid ... on Commit { statusCheckRollup { state } }
    }
  }
}`;

/** The answer's `data`, as far as Loom reads it. */
interface MergeLookData {
  repository?: {
    pullRequest?: {
      state?: string;
      headRefOid?: string;
      labels?: { nodes?: ({ name?: string } | null)[] } | null;
      reviews?: { totalCount?: number } | null;
    } | null;
    ref?: { target?: { oid?: string; statusCheckRollup?: { state?: string } | null } | null } | null;
    object?: { oid?: string; statusCheckRollup?: { state?: string } | null } | null;
  } | null;
}

const STATES: Record<string, ItemState> = { OPEN: 'open', CLOSED: 'closed', MERGED: 'merged' };

/** The look, or null when it could not be had or its answer is not one Loom can read. */
export async function readMergeLook(transport: GitHubTransport, prNumber: number, base: string, head: string, now: () => number): Promise<MergeLook | null> {
  const at = now();
  let data: MergeLookData;
  try {
    data = await transport.graphql<MergeLookData>(MERGE_LOOK_QUERY, { owner: transport.owner, name: transport.repo, number: prNumber, base: `refs/heads/${base}`, head });
  } catch {
    // Any failure (GraphQL refused, its budget spent, no answer): the REST reads decide.
    return null;
  }
  const pr = data.repository?.pullRequest;
  const state = STATES[pr?.state ?? ''];
  const reviews = pr?.reviews?.totalCount;
  if (pr == null || state === undefined || typeof reviews !== 'number') return null;
  // The rollup of exactly the commit asked about; a commit GitHub does not know (not pushed yet) settles nothing.
  const commit = data.repository?.object;
  const checks = commit?.oid !== head ? 'other' : commit.statusCheckRollup == null ? 'none' : commit.statusCheckRollup.state === 'SUCCESS' ? 'success' : 'other';
  const target = data.repository?.ref?.target;
  return {
    at,
    state,
    head,
    labels: (pr.labels?.nodes ?? []).flatMap((l) => (typeof l?.name === 'string' ? [l.name] : [])),
    reviews,
    checks,
    base: typeof target?.oid === 'string' ? { sha: target.oid, checks: target.statusCheckRollup != null } : null,
  };
}
