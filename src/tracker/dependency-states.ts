/**
 * Reads the state of every issue named on a `Depends on #N` / `Blocked by #N` line of the given
 * issues, into the `DependencyMap` the planner, `loom why` and `loom status` decide from. Open
 * dependencies outside the list are read too (their own dependencies may close a cycle), up to
 * `MAX_LOOKUPS` issues per call. A dependency the tracker fails to read counts as open: waiting
 * one more iteration is safe, building too early is not.
 */
import type { DependencyMap, DependencyState } from '../core/dependencies.js';
import { parseDependencies } from '../core/dependencies.js';
import type { Issue } from '../core/tracker-model.js';
import type { Tracker } from './tracker.js';

/** How many issues outside the list one call reads at most. */
export const MAX_LOOKUPS = 50;

export async function readDependencies(tracker: Tracker, issues: readonly Issue[]): Promise<DependencyMap> {
  const known = new Map<number, Issue | null>(issues.map((i) => [i.number, i]));
  const map: DependencyMap = {};
  const queue = [...issues];
  let lookups = 0;
  const read = async (n: number): Promise<Issue | null | 'unknown'> => {
    if (known.has(n)) return known.get(n) ?? null;
    if (lookups >= MAX_LOOKUPS) return 'unknown';
    lookups += 1;
    try {
      const issue = await tracker.getIssue(n);
      known.set(n, issue);
      if (issue?.state === 'open') queue.push(issue);
      return issue;
    } catch {
      return 'unknown';
    }
  };
  for (let k = 0; k < queue.length; k += 1) {
    const issue = queue[k] as Issue;
    if (issue.state !== 'open') continue;
    const numbers = parseDependencies(issue.body, issue.number);
    if (numbers.length === 0) continue;
    const views = [];
    for (const number of numbers) views.push({ number, state: stateOf(await read(number)) });
    map[String(issue.number)] = views;
  }
  return map;
}

function stateOf(issue: Issue | null | 'unknown'): DependencyState {
  if (issue === 'unknown') return 'open';
  if (issue === null) return 'missing';
  if (issue.state === 'open') return 'open';
  return issue.closedAs === 'not-planned' ? 'not-planned' : 'done';
}
