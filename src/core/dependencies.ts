/**
 * Dependencies between issues: an issue whose body has `Depends on #N` or `Blocked by #N` lines,
 * or that the tracker records as blocked by another issue or as the parent of sub-issues, is not
 * built while any of those issues is open. Pure: the daemon's observe step reads the state of
 * each dependency from the tracker into a `DependencyMap`; the planner and `loom why` decide from it.
 */

/**
 * - `open`: not done yet — the dependent waits;
 * - `done`: closed as completed (or, for a pull request, merged);
 * - `not-planned`: closed as not planned (GitHub's `not_planned` or `duplicate`; the local
 *   tracker's `loom issue close N --not-planned`): reported once, and no longer waited for;
 * - `missing`: no such issue: reported once, and not waited for.
 */
export type DependencyState = 'open' | 'done' | 'not-planned' | 'missing';

export interface DependencyView {
  number: number;
  state: DependencyState;
  /**
   * Where the tracker itself records the link (GitHub): `blocked-by` (an issue dependency) or
   * `sub-issue` (a parent waits for its sub-issues). Absent: a `Depends on` / `Blocked by` line.
   */
  via?: 'blocked-by' | 'sub-issue';
  /** The number is a pull request's: `done` once merged, `not-planned` when closed unmerged. */
  pullRequest?: true;
}

/** Issue number (as a string key) → its declared dependencies and their states. */
export type DependencyMap = Record<string, DependencyView[]>;

/** A `Depends on` / `Blocked by` line (also as a list item, a quote or a heading); group 1: the rest of it. */
const LINE = /^[ \t>*-]*(?:#{1,6}[ \t]+)?(?:\*\*|__)?(?:depends[ \t]+on|blocked[ \t]+by)\b(.*)$/i;
/** An item of the list under a bare `Depends on:` line: `- #3`, `* [ ] #4 the parser`, `1. #5`. */
const ITEM = /^[ \t>]*(?:[-*+]|\d+[.)])[ \t]+(?:\[[ xX]\][ \t]+)?#(\d+)\b/;
const REF = /(?:^|[\s,(:*[])#(\d+)\b/g;
const FENCE = /^[ \t>]*(?:```|~~~)/;

/**
 * The issue numbers named on `Depends on #N` / `Blocked by #N` lines (case-insensitive; a line may
 * name several: `Depends on #3, #4`; a bare `Depends on:` line takes the list that follows it, one
 * `#N` at the start of each item), in order, without repeats and without the issue itself. Lines in
 * fenced code blocks are not read.
 */
export function parseDependencies(body: string, self?: number): number[] {
  const out: number[] = [];
  const add = (n: number) => {
    if (n > 0 && n !== self && !out.includes(n)) out.push(n);
  };
  const lines = body.split(/\r?\n/);
  let fenced = false;
  for (let i = 0; i < lines.length; i += 1) {
    const line = lines[i] as string;
    if (FENCE.test(line)) {
      fenced = !fenced;
      continue;
    }
    if (fenced) continue;
    const match = LINE.exec(line);
    if (!match) continue;
    const refs = [...(match[1] ?? '').matchAll(REF)].map((r) => Number(r[1]));
    for (const n of refs) add(n);
    if (refs.length > 0 || !/^[ \t*_]*:?[ \t*_]*$/.test(match[1] ?? '')) continue;
    // A bare heading line: the list under it (blank lines before its first item allowed).
    let j = i + 1;
    while (j < lines.length && (lines[j] as string).trim() === '') j += 1;
    for (; j < lines.length; j += 1) {
      const item = ITEM.exec(lines[j] as string);
      if (!item) break;
      add(Number(item[1]));
    }
    i = j - 1;
  }
  return out;
}

/** The dependencies of `issue` that are still open, in the order they were declared. */
export function openDependencies(map: DependencyMap | undefined, issue: number): number[] {
  return (map?.[String(issue)] ?? []).filter((d) => d.state === 'open').map((d) => d.number);
}

/**
 * Cycles among open dependencies: each strongly connected group of two or more issues (Tarjan),
 * as its sorted issue numbers, the groups ordered by their smallest issue.
 */
export function dependencyCycles(map: DependencyMap | undefined): number[][] {
  if (!map) return [];
  const edges = (n: number) => openDependencies(map, n);
  const index = new Map<number, number>();
  const low = new Map<number, number>();
  const onStack = new Set<number>();
  const stack: number[] = [];
  const groups: number[][] = [];
  let next = 0;
  const visit = (v: number): void => {
    index.set(v, next);
    low.set(v, next);
    next += 1;
    stack.push(v);
    onStack.add(v);
    for (const w of edges(v)) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v) ?? 0, low.get(w) ?? 0));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v) ?? 0, index.get(w) ?? 0));
    }
    if (low.get(v) === index.get(v)) {
      const group: number[] = [];
      for (;;) {
        const w = stack.pop() as number;
        onStack.delete(w);
        group.push(w);
        if (w === v) break;
      }
      if (group.length > 1) groups.push(group.sort((a, b) => a - b));
    }
  };
  for (const key of Object.keys(map).map(Number).sort((a, b) => a - b)) if (!index.has(key)) visit(key);
  return groups.sort((a, b) => (a[0] ?? 0) - (b[0] ?? 0));
}

/** Something about an issue's dependencies a person must hear about, once. */
export interface DependencyProblem {
  /** The issue the report is about (for a cycle: its smallest issue). */
  issue: number;
  kind: 'cycle' | 'not-planned' | 'missing';
  /** The cycle's issues, or the dependencies closed as not planned / missing. */
  numbers: number[];
  /** Identifies the report: it is made once per key (`DaemonState.dependency_reports`). */
  key: string;
}

/** The problems among `issues` (the ready ones), cycles first, not yet in `reported`. */
export function dependencyProblems(map: DependencyMap | undefined, issues: readonly number[], reported: readonly string[]): DependencyProblem[] {
  const out: DependencyProblem[] = [];
  const relevant = new Set(issues);
  for (const cycle of dependencyCycles(map)) {
    if (!cycle.some((n) => relevant.has(n))) continue;
    out.push({ issue: cycle[0] as number, kind: 'cycle', numbers: cycle, key: `cycle:${cycle.join(',')}` });
  }
  for (const issue of [...relevant].sort((a, b) => a - b)) {
    for (const kind of ['not-planned', 'missing'] as const) {
      const numbers = (map?.[String(issue)] ?? []).filter((d) => d.state === kind).map((d) => d.number);
      if (numbers.length > 0) out.push({ issue, kind, numbers, key: `${kind}:${issue}:${numbers.join(',')}` });
    }
  }
  return out.filter((p) => !reported.includes(p.key));
}

/**
 * The reports among `reported` whose problem is known to be gone, to be forgotten so that the same
 * problem, back later, is reported again: a cycle whose issues all had their dependencies read in
 * full (`read`) and no longer form it; an issue read in full that no longer has those dependencies
 * in that state. A problem about an issue not read in full this time (a failed or skipped read
 * guesses "open") is not known to be gone.
 */
export function settledReports(map: DependencyMap | undefined, read: readonly number[], reported: readonly string[]): string[] {
  const full = new Set(read.map(String));
  if (full.size === 0) return [];
  const cycles = new Set(dependencyCycles(map).map((c) => `cycle:${c.join(',')}`));
  return reported.filter((key) => {
    const [kind, first = '', second = ''] = key.split(':');
    if (kind === 'cycle') return first.split(',').every((n) => full.has(n)) && !cycles.has(key);
    if ((kind !== 'not-planned' && kind !== 'missing') || !full.has(first)) return false;
    return (map?.[first] ?? []).filter((d) => d.state === kind).map((d) => d.number).join(',') !== second;
  });
}

/** The comment a dependency problem leaves on its issue. */
export function dependencyComment(p: DependencyProblem): string {
  const refs = p.numbers.map((n) => `#${n}`).join(', ');
  if (p.kind === 'cycle') return `Loom: the dependencies of ${refs} form a cycle: none of them can be built before another. Remove one \`Depends on\` / \`Blocked by\` line to break it.`;
  if (p.kind === 'not-planned') return `Loom: this issue depends on ${refs}, closed without being done (not planned). Loom no longer waits for it: remove the line, or label this issue \`loom:blocked\` if it cannot be built without it.`;
  return `Loom: this issue depends on ${refs}, which does not exist. Loom does not wait for it: correct or remove the line.`;
}
