/**
 * Reads the state of every issue an issue waits for, into the `DependencyMap` the planner, `loom
 * why` and `loom status` decide from: those named on its `Depends on #N` / `Blocked by #N` lines,
 * and — for a ready issue (`loom:issue`, not being built) or an open dependency found on the way —
 * those the tracker itself links before it (`Tracker.linkedIssues`: GitHub's issue dependencies
 * and sub-issues). A number that is no issue may be a pull request: it is waited for until merged
 * (closed unmerged, it counts as not planned). Open dependencies outside the list are read too (their own dependencies may
 * close a cycle), up to `MAX_LOOKUPS` issue reads and `MAX_LINK_LOOKUPS` link reads per call. A dependency the tracker fails to read
 * counts as open: waiting one more iteration is safe, building too early is not. Links the tracker
 * fails to list are left out for this call.
 */
import type { DependencyMap, DependencyState, DependencyView } from '../core/dependencies.js';
import { parseDependencies } from '../core/dependencies.js';
import { Label } from '../core/labels.js';
import type { Issue, LinkedIssue } from '../core/tracker-model.js';
import type { Tracker } from './tracker.js';

/** How many requests for issues outside the list one call makes at most. */
export const MAX_LOOKUPS = 50;
/** How many issues one call asks the tracker for links at most (a GitHub without link summaries asks for each). */
export const MAX_LINK_LOOKUPS = 50;

/** Whether an issue of the list is about to be built: only those have their tracker links read. */
const buildable = (i: Issue) => i.labels.includes(Label.issue) && !i.labels.includes(Label.building);

/**
 * `complete`, when given, receives every open issue whose dependencies were all read this call —
 * none guessed open after a failed or skipped read, its tracker links listed — so that an issue
 * with none (no entry in the map) is known to have none.
 */
export async function readDependencies(tracker: Tracker, issues: readonly Issue[], complete?: Set<number>): Promise<DependencyMap> {
  const known = new Map<number, Issue | null>(issues.map((i) => [i.number, i]));
  /** The issue whose dependencies are being read, and whether a read for it failed or was skipped. */
  let current = 0;
  const incomplete = new Set<number>();
  const failedPulls = new Set<number>();
  const listed = new Set(issues.map((i) => i.number));
  const map: DependencyMap = {};
  const queue = [...issues];
  let lookups = 0;
  let linkLookups = 0;
  const read = async (n: number): Promise<Issue | null | 'unknown'> => {
    if (known.has(n)) return known.get(n) ?? null;
    if (lookups >= MAX_LOOKUPS) {
      incomplete.add(current);
      return 'unknown';
    }
    lookups += 1;
    try {
      const issue = await tracker.getIssue(n);
      known.set(n, issue);
      if (issue?.state === 'open') queue.push(issue);
      return issue;
    } catch {
      incomplete.add(current);
      return 'unknown';
    }
  };
  const pulls = new Map<number, DependencyState | null>();
  const readPullRequest = async (n: number): Promise<DependencyState | null> => {
    if (pulls.has(n)) {
      if (failedPulls.has(n)) incomplete.add(current);
      return pulls.get(n) ?? null;
    }
    if (lookups >= MAX_LOOKUPS) {
      incomplete.add(current);
      return 'open';
    }
    lookups += 1;
    let state: DependencyState | null;
    try {
      const pr = await tracker.getPullRequest(n);
      state = pr === null ? null : pr.state === 'open' ? 'open' : pr.state === 'merged' ? 'done' : 'not-planned';
    } catch {
      state = 'open';
      failedPulls.add(n);
      incomplete.add(current);
    }
    pulls.set(n, state);
    return state;
  };
  const links = async (issue: Issue): Promise<LinkedIssue[]> => {
    // Not read for a listed issue that is not about to be built: what it waits for is not known.
    if (listed.has(issue.number) && !buildable(issue)) {
      incomplete.add(current);
      return [];
    }
    // An issue that says it has no links costs no request; one that may have some counts as one.
    if (issue.links !== undefined && issue.links.blockedBy === 0 && issue.links.subIssues === 0) return [];
    if (linkLookups >= MAX_LINK_LOOKUPS) {
      incomplete.add(current);
      return [];
    }
    linkLookups += 1;
    try {
      return await tracker.linkedIssues(issue);
    } catch {
      incomplete.add(current);
      return [];
    }
  };
  for (let k = 0; k < queue.length; k += 1) {
    const issue = queue[k] as Issue;
    if (issue.state !== 'open') continue;
    current = issue.number;
    const views: DependencyView[] = [];
    for (const number of parseDependencies(issue.body, issue.number)) {
      const found = await read(number);
      // No issue by that number: it may be a pull request (issues and PRs share numbers), done once merged.
      const pr = found === null ? await readPullRequest(number) : null;
      views.push(pr !== null ? { number, state: pr, pullRequest: true } : { number, state: stateOf(found) });
    }
    for (const link of await links(issue)) {
      const n = link.issue.number;
      if (n === issue.number || views.some((v) => v.number === n)) continue;
      if (!known.has(n)) {
        known.set(n, link.issue);
        if (link.issue.state === 'open') queue.push(link.issue);
      }
      // A sub-issue closed as not planned was cut from the parent's scope: nothing to report.
      const state = stateOf(link.issue);
      views.push({ number: n, state: link.kind === 'sub-issue' && state === 'not-planned' ? 'done' : state, via: link.kind });
    }
    if (views.length > 0) map[String(issue.number)] = views;
    if (complete !== undefined && !incomplete.has(issue.number)) complete.add(issue.number);
  }
  return map;
}

function stateOf(issue: Issue | null | 'unknown'): DependencyState {
  if (issue === 'unknown') return 'open';
  if (issue === null) return 'missing';
  if (issue.state === 'open') return 'open';
  return issue.closedAs === 'not-planned' ? 'not-planned' : 'done';
}
