/**
 * Overlap avoidance: two issues that touch the same files are not built at once. Pure: the
 * daemon's observation gathers the file facts (paths named in issue text, branch diffs, the
 * running shepherds' worktree changes, open Loom PRs' diffs) into `OverlapFacts`; the planner,
 * `loom why` and `loom status` decide from them with `overlapsOf`.
 *
 * Invariant owned here (with the planner): with `overlap: wait`, an issue never starts while its
 * predicted files overlap those of a running shepherd or of an open PR Loom itself moves on (in
 * review, changes requested, approved for the Champion). An issue in the way only of PRs waiting
 * for a person starts when nothing else does (`mayRunAnyway`).
 */
import type { LoomConfig } from './config-model.js';
import { Label } from './labels.js';
import { doctorLabelOf, holdOf } from './original-labels.js';

/** Work in progress that a ready issue must not collide with. */
export interface WorkInProgress {
  /** The issue the work is for. */
  issue: number;
  /** Its open pull request, if any. */
  pr: number | null;
  /** A shepherd works on it now (false: only its PR is open). */
  running: boolean;
  /** Only a person moves it on (held, blocked, manual merge, its role off): see `awaitsPerson`. */
  awaitsPerson: boolean;
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
  awaitsPerson: boolean;
  files: string[];
}

/** Words shaped like file names that are not: abbreviations and names of projects. */
const NOT_FILES = new Set(['e.g', 'i.e', 'etc', 'vs', 'a.k.a', 'n.b', 'p.s', 'node.js', 'next.js', 'nuxt.js', 'vue.js', 'react.js', 'express.js', 'angular.js', 'three.js', 'd3.js', 'chart.js', 'alpine.js', 'ember.js', 'backbone.js']);
/** Extensions of source, documentation and configuration files: a bare name with one is a file. */
const FILE_EXTENSIONS = new Set(
  'md markdown mdx txt rst adoc ts tsx mts cts js jsx mjs cjs json jsonc json5 yaml yml toml ini cfg conf properties env py pyi rb go rs java kt kts scala swift m mm c h cc cpp cxx hpp hh cs fs php sh bash zsh fish ps1 bat sql html htm css scss sass less vue svelte astro xml svg lock gradle tf hcl proto graphql gql csv tsv ex exs erl hrl hs ml mli clj cljs edn dart lua r jl zig nim pl pm ipynb dockerfile mk cmake nix el vim'.split(' '),
);
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

/**
 * Whether a bare name (no directory) from an issue's text is surely a file: its extension is one
 * source, documentation or configuration files have. Others (`console.log`, `path.join`) may be
 * code; a reader that can look at the repository keeps those only when it has such a file.
 */
export function looksLikeFile(name: string): boolean {
  const ext = name.slice(name.lastIndexOf('.') + 1);
  return name.includes('.') && FILE_EXTENSIONS.has(ext) && !NOT_FILES.has(name.toLowerCase());
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
    if (shared.length > 0) out.push({ issue: w.issue, pr: w.pr, running: w.running, awaitsPerson: w.awaitsPerson, files: shared });
  }
  return out.sort((a, b) => Number(b.running) - Number(a.running) || a.issue - b.issue);
}

/**
 * Whether an issue that overlaps only `overlaps` may start anyway: when no other ready issue starts
 * and everything in its way is an open PR that only a person moves on (held, manual merge, a role
 * that is switched off), waiting would leave Loom idle for as long as that person takes.
 */
export function mayRunAnyway(overlaps: readonly Overlap[], othersStarting: number): boolean {
  return othersStarting === 0 && overlaps.every((o) => !o.running && o.awaitsPerson);
}

/**
 * Whether an open PR waits for a person rather than for Loom: held for a human, its issue
 * blocked, `loom:manual-merge`, or in a state whose role (Judge, Doctor, Champion) is off.
 */
export function awaitsPerson(labels: readonly string[], issueLabels: readonly string[] | null, config: Pick<LoomConfig, 'roles'>): boolean {
  if (holdOf(labels) !== undefined || issueLabels?.includes(Label.blocked) === true) return true;
  if (labels.includes(Label.pr)) return labels.includes(Label.manualMerge) || !config.roles.champion.enabled;
  if (labels.includes(Label.changesRequested) || doctorLabelOf(labels) !== undefined) return !config.roles.doctor.enabled;
  if (labels.includes(Label.reviewRequested)) return !config.roles.judge.enabled;
  return true;
}

/** "#12 on src/x.ts, src/y.ts" / "PR #14 (#12) on src/x.ts", the first three files. */
export function describeOverlap(o: Overlap): string {
  const files = o.files.length > 3 ? `${o.files.slice(0, 3).join(', ')} (+${o.files.length - 3})` : o.files.join(', ');
  const who = o.running || o.pr === null ? `#${o.issue}` : `PR #${o.pr} (#${o.issue}${o.awaitsPerson ? ', waiting for a person' : ''})`;
  return `${who} on ${files}`;
}

/**
 * The ready issues that wait because of overlapping work, each with what it overlaps (as the
 * planner sees them before starting anything this tick). The first issue that would start anyway
 * (`mayRunAnyway`) does not wait.
 */
export function overlapWaits(facts: OverlapFacts | undefined, ready: readonly number[]): Map<number, Overlap[]> {
  const waits = new Map<number, Overlap[]>();
  if (facts === undefined) return waits;
  for (const n of ready) {
    const overlaps = overlapsOf(n, facts.predicted[String(n)] ?? [], facts.work);
    if (overlaps.length > 0) waits.set(n, overlaps);
  }
  // Only the oldest of the issues in the way of open PRs alone starts anyway when nothing runs.
  const first = [...waits.entries()].find(([, o]) => mayRunAnyway(o, ready.length - waits.size));
  if (first) waits.delete(first[0]);
  return waits;
}
