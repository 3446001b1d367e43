/**
 * After a merge on GitHub: the merged PR's workflow labels off, and its issue closed with its own
 * off, in one GraphQL request (one point of GraphQL's budget) in place of two REST writes (a `PUT`
 * of the PR's labels and a `PATCH` of the issue). Each label comes off by itself
 * (`removeLabelsFromLabelable`), so a label a person added since the caller's look stays.
 *
 * It needs the node ids of both items and of each label to take off, which the REST answers this
 * process already read carry (`node_id`); without one of them, or on any failure, the caller does
 * the same with REST writes — every part is idempotent, so a part that went through before a
 * failure is only done again.
 */
import type { GitHubTransport } from './github-transport.js';

/** The mutation (its operation name is how GitHub's logs, and the test server, know it). */
export const CLOSE_MERGED_MUTATION = `mutation LoomCloseMerged($pr: ID!, $prLabels: [ID!]!, $withPrLabels: Boolean!, $issue: ID!, $issueLabels: [ID!]!, $withIssueLabels: Boolean!, $reason: IssueClosedStateReason!) {
  prLabels: removeLabelsFromLabelable(input: {labelableId: $pr, labelIds: $prLabels}) @include(if: $withPrLabels) { clientMutationId }
  issueLabels: removeLabelsFromLabelable(input: {labelableId: $issue, labelIds: $issueLabels}) @include(if: $withIssueLabels) { clientMutationId }
  close: closeIssue(input: {issueId: $issue, stateReason: $reason}) { issue { state } }
}`;

interface CloseMergedData {
  close?: { issue?: { state?: string } | null } | null;
}

/** The node ids the request needs. */
export interface CloseMergedIds {
  pr: string;
  prLabels: string[];
  issue: string;
  issueLabels: string[];
}

/** True when GitHub answered that the issue is closed (and so every part went through); false on any failure. */
export async function closeMergedInOne(transport: GitHubTransport, ids: CloseMergedIds, reason: 'completed' | 'not-planned'): Promise<boolean> {
  try {
    const data = await transport.graphql<CloseMergedData>(CLOSE_MERGED_MUTATION, {
      pr: ids.pr,
      prLabels: ids.prLabels,
      withPrLabels: ids.prLabels.length > 0,
      issue: ids.issue,
      issueLabels: ids.issueLabels,
      withIssueLabels: ids.issueLabels.length > 0,
      reason: reason === 'not-planned' ? 'NOT_PLANNED' : 'COMPLETED',
    });
    return data.close?.issue?.state === 'CLOSED';
  } catch {
    return false;
  }
}
