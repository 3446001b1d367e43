/**
 * Overlap avoidance: two issues that touch the same files are not built at once. Pure: the
 * daemon's observation gathers the file facts (paths named in issue text, branch diffs, the
 * running shepherds' worktree changes, open Loom PRs' diffs) into `OverlapFacts`; the planner,
 * `loom why` and `loom status` decide from them with `overlapsOf`.
 *
 * Invariant owned here (with the planner): with `overlap: wait`, an issue never starts while its
 * predicted files overlap those of a running shepherd, except when nothing else can run at all
 * (`mayRunAnyway`).
 */

/** `wait`: an issue overlapping running work waits; `allow`: files are not looked at. */
export const OVERLAP_MODES = ['wait', 'allow'] as const;
export type OverlapMode = (typeof OVERLAP_MODES)[number];

/** Work in progress that a ready issue must not collide with. */
export interface WorkInProgress {
  /** The issue the work is for. */
  issue: number;
  /** Its open pull request, if any. */
  pr: number | null;
  /** A shepherd works on it now (false: only its PR is open). */
  running: boolean;
  /** Files it touches: named in its text, changed on its branch or in its worktree. */
  files: string[];
}

export interface OverlapFacts {
  /** Issue number (string key) → the files it is predicted to touch, for the ready issues. */
  predicted: Record<string, string[]>;
  work: WorkInProgress[];
}

/** A collision of one ready issue with one piece of work. */
export interface Overlap {
  issue: number;
  pr: number | null;
  running: boolean;
  files: string[];
}

/** Words shaped like file names that are not: abbreviations and version-like tokens. */
const NOT_FILES = new Set(['e.g', 'i.e', 'etc', 'vs', 'a.k.a', 'n.b', 'p.s']);
/** A path-like token: segments of word characters, dots and dashes, with a slash or an extension. */
const TOKEN = /(?:^|[\s`'"(<[{,;:*])((?:\.{0,2}\/)?(?:[\w@+-][\w.@+-]*\/)*[\w@+-][\w.@+-]*(?:\/|\.[A-Za-z][A-Za-z0-9]{0,7}))(?=$|[\s`'")>\]},;:!?*]|\.(?:$|\s))/gm;

/**
 * The file paths named in an issue's title and body, in order, without repeats: tokens with a
 * slash (`src/core/planner.ts`, a directory `src/tracker/` ending in one) or a file extension
 * (`README.md`). URLs, `#12` references and abbreviations are not paths. A leading `./` is dropped.
 */
export function namedPaths(text: string): string[] {
  const out: string[] = [];
  const withoutUrls = text.replace(/\b[a-z][a-z0-9+.-]*:\/\/\S+/gi, ' ');
  for (const match of withoutUrls.matchAll(TOKEN)) {
    let p = match[1] ?? '';
    p = p.replace(/^\.\//, '');
    if (p.startsWith('../') || p.startsWith('/') || p.includes('//') || p === '') continue;
    const bare = !p.includes('/');
    if (bare && (NOT_FILES.has(p.toLowerCase()) || /^\d/.test(p) || !/[A-Za-z]/.test(p.slice(0, p.lastIndexOf('.'))))) continue;
    if (!out.includes(p)) out.push(p);
  }
  return out;
}

const basename = (p: string) => p.replace(/\/$/, '').split('/').pop() ?? p;

/**
 * Whether two paths name the same file: equal; one a directory (`src/x/`) holding the other; or
 * one a bare file name (`planner.ts`) and the other a path ending in it.
 */
export function samePath(a: string, b: string): boolean {
  if (a === b) return true;
  if (a.endsWith('/') && b.startsWith(a)) return true;
  if (b.endsWith('/') && a.startsWith(b)) return true;
  if (a.endsWith('/') || b.endsWith('/')) return false;
  if (!a.includes('/') || !b.includes('/')) return basename(a) === basename(b);
  return false;
}

/** The files of `mine` that `theirs` also touches (as `mine` names them), in `mine`'s order. */
export function sharedFiles(mine: readonly string[], theirs: readonly string[]): string[] {
  return mine.filter((m) => theirs.some((t) => samePath(m, t)));
}

/** The work `issue` (with `files`) overlaps, other than its own; running shepherds first. */
export function overlapsOf(issue: number, files: readonly string[], work: readonly WorkInProgress[]): Overlap[] {
  const out: Overlap[] = [];
  for (const w of work) {
    if (w.issue === issue) continue;
    const shared = sharedFiles(files, w.files);
    if (shared.length > 0) out.push({ issue: w.issue, pr: w.pr, running: w.running, files: shared });
  }
  return out.sort((a, b) => Number(b.running) - Number(a.running) || a.issue - b.issue);
}

/**
 * Whether an issue that overlaps only `overlaps` may start anyway: when no shepherd runs at all and
 * no other ready issue starts, the work it waits for is open PRs nobody is building (waiting for a
 * review, a human or a merge), and waiting would leave Loom idle.
 */
export function mayRunAnyway(overlaps: readonly Overlap[], shepherdsRunning: number, othersStarting: number): boolean {
  return shepherdsRunning === 0 && othersStarting === 0 && overlaps.every((o) => !o.running);
}

/** "#12 on src/x.ts, src/y.ts" / "PR #14 (#12) on src/x.ts", the first three files. */
export function describeOverlap(o: Overlap): string {
  const files = o.files.length > 3 ? `${o.files.slice(0, 3).join(', ')} (+${o.files.length - 3})` : o.files.join(', ');
  const who = o.running || o.pr === null ? `#${o.issue}` : `PR #${o.pr} (#${o.issue})`;
  return `${who} on ${files}`;
}

/**
 * The ready issues that wait because of overlapping work, each with what it overlaps (as the
 * planner sees them before starting anything this tick). An issue that would start anyway
 * (`mayRunAnyway`: only open PRs in the way and nothing running) does not wait.
 */
export function overlapWaits(facts: OverlapFacts | undefined, ready: readonly number[]): Map<number, Overlap[]> {
  const waits = new Map<number, Overlap[]>();
  if (facts === undefined) return waits;
  const running = facts.work.filter((w) => w.running).length;
  for (const n of ready) {
    const overlaps = overlapsOf(n, facts.predicted[String(n)] ?? [], facts.work);
    if (overlaps.length > 0) waits.set(n, overlaps);
  }
  // Only the oldest of the issues in the way of open PRs alone starts anyway when nothing runs.
  const first = [...waits.entries()].find(([, o]) => mayRunAnyway(o, running, ready.length - waits.size));
  if (first) waits.delete(first[0]);
  return waits;
}
