/**
 * The local tracker's bounded snapshot (`snapshot({ page })`): the same answers as the full
 * snapshot for what the planner reads (the first ready issues in build order, the issues Loom
 * owns, the issues open PRs close) and label counts kept by the schema's triggers through every
 * kind of change, including on a file upgraded from version 2.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { PIPELINE_LIST_LIMIT } from '../../../src/core/daemon-state.js';
import { ISSUE_STATE_LABELS, Label, PROPOSAL_LABELS } from '../../../src/core/labels.js';
import { buildOrder } from '../../../src/core/planner.js';
import type { TrackerSnapshot } from '../../../src/core/tracker-model.js';
import { LOCAL_TRACKER_FILE } from '../../../src/tracker/local/local-database.js';
import { LocalTracker } from '../../../src/tracker/local/local-tracker.js';
import { dropVersion3 } from './fixtures/schema-versions.js';

const toRemove: string[] = [];
const toDispose: LocalTracker[] = [];
afterEach(() => {
  for (const tracker of toDispose.splice(0)) tracker.dispose();
  for (const dir of toRemove.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

function fresh(): { tracker: LocalTracker; file: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'loom-page-'));
  toRemove.push(dir);
  const file = path.join(dir, LOCAL_TRACKER_FILE);
  const tracker = new LocalTracker({ path: file });
  toDispose.push(tracker);
  return { tracker, file };
}

/** A deterministic pseudo-random sequence (the same cases on every run). */
function random(seed: number): () => number {
  let s = seed;
  return () => {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    return s / 2 ** 31;
  };
}

/** What the page must say, derived from the full snapshot. */
function expected(full: TrackerSnapshot, size: number) {
  const counts: Record<string, number> = {};
  for (const issue of full.issues) for (const l of issue.labels) if (l.startsWith('loom:')) counts[l] = (counts[l] ?? 0) + 1;
  const ready = buildOrder(full.issues.filter((i) => i.labels.includes(Label.issue)));
  const lowest = Object.fromEntries(
    ISSUE_STATE_LABELS.map((l) => [l, full.issues.filter((i) => i.labels.includes(l)).map((i) => i.number).slice(0, PIPELINE_LIST_LIMIT)]),
  );
  const closed = new Set(full.pullRequests.map((p) => p.closesIssue));
  const must = new Set([
    ...ready.slice(0, size).map((i) => i.number),
    ...full.issues.filter((i) => i.labels.includes(Label.building) || closed.has(i.number)).map((i) => i.number),
    ...PROPOSAL_LABELS.flatMap((l) => full.issues.filter((i) => i.labels.includes(l)).slice(0, size).map((i) => i.number)),
    ...(lowest[Label.blocked] ?? []).slice(0, size),
  ]);
  return { counts, ready, lowest, must, moreReady: ready.length > size };
}

function loomCounts(counts: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(counts).filter(([l]) => l.startsWith('loom:')));
}

async function checkPages(tracker: LocalTracker, sizes: number[]): Promise<void> {
  const full = await tracker.snapshot();
  for (const size of sizes) {
    const paged = await tracker.snapshot({ page: size });
    const want = expected(full, size);
    expect(paged.page, `page ${size}`).toBeDefined();
    expect(loomCounts(paged.page!.counts)).toEqual(want.counts);
    expect(paged.page!.lowest).toEqual(want.lowest);
    expect(paged.page!.moreReady).toBe(want.moreReady);
    // The ready issues it read are the first ones in build order, each as the full snapshot has it.
    const pagedReady = buildOrder(paged.issues.filter((i) => i.labels.includes(Label.issue)));
    expect(pagedReady.map((i) => i.number)).toEqual(want.ready.slice(0, size).map((i) => i.number));
    expect(paged.issues.map((i) => i.number).sort((a, b) => a - b)).toEqual([...want.must].sort((a, b) => a - b));
    const byNumber = new Map(full.issues.map((i) => [i.number, i]));
    for (const issue of paged.issues) expect(issue).toEqual(byNumber.get(issue.number));
    expect(paged.pullRequests).toEqual(full.pullRequests);
  }
}

/** Sets creation times that do not follow the numbers (another process's clock, an import). */
function shuffleCreation(file: string, next: () => number): void {
  const db = new Database(file);
  try {
    const numbers = db.prepare<[], number>("SELECT number FROM items WHERE kind = 'issue'").pluck().all();
    const set = db.prepare('UPDATE items SET created_at = ? WHERE number = ?');
    for (const n of numbers) set.run(new Date(Date.UTC(2026, 0, 1) + Math.floor(next() * 50) * 60_000).toISOString(), n);
  } finally {
    db.close();
  }
}

describe('LocalTracker bounded snapshot', () => {
  it('reads the first ready issues in build order (urgent, then oldest, then lowest number), owned ones, and counts the rest', async () => {
    const { tracker, file } = fresh();
    const next = random(7);
    const labelSets = [[Label.issue], [Label.issue], [Label.issue, Label.urgent], [Label.blocked], [Label.architect], [Label.curated], [Label.hermit], [Label.building], ['bug'], [Label.issue, 'loom:operator'], []];
    for (let i = 0; i < 300; i++) await tracker.createIssue({ title: `issue ${i}`, body: `body ${i}`, labels: labelSets[Math.floor(next() * labelSets.length)] ?? [] });
    // PRs closing a blocked issue and an unlabelled one; a merged PR; a PR without a Loom label.
    const blocked = (await tracker.listIssues({ labels: [Label.blocked] }))[0]!;
    await tracker.createPullRequest({ title: 'fix', head: 'loom/a', base: 'main', closesIssue: blocked.number, labels: [Label.reviewRequested] });
    await tracker.createPullRequest({ title: 'other', head: 'loom/b', base: 'main', closesIssue: 299, labels: [Label.pr] });
    const merged = await tracker.createPullRequest({ title: 'done', head: 'loom/c', base: 'main', closesIssue: 1, labels: [Label.pr] });
    await tracker.markMerged(merged.number);
    await tracker.createPullRequest({ title: 'foreign', head: 'x', base: 'main', closesIssue: 2 });
    shuffleCreation(file, next);
    await checkPages(tracker, [1, 5, 40, 1000]);
  });

  it('picks the same issues whether ready issues are rare or common among the open ones', async () => {
    const { tracker, file } = fresh();
    const next = random(11);
    for (let i = 0; i < 400; i++) await tracker.createIssue({ title: `blocked ${i}`, labels: [Label.blocked] });
    for (let i = 0; i < 6; i++) await tracker.createIssue({ title: `ready ${i}`, labels: [Label.issue] });
    shuffleCreation(file, next);
    await checkPages(tracker, [2, 10]);
    for (let i = 0; i < 200; i++) await tracker.updateLabels(1 + i * 2, { add: [Label.issue] });
    shuffleCreation(file, next);
    await checkPages(tracker, [2, 10, 300]);
  });

  it('keeps its counts through relabels, closes, reopens, merges and a read-only reader', async () => {
    const { tracker, file } = fresh();
    const a = await tracker.createIssue({ title: 'a', labels: [Label.issue, Label.urgent] });
    const b = await tracker.createIssue({ title: 'b', labels: [Label.architect] });
    const c = await tracker.createIssue({ title: 'c', labels: [Label.blocked, 'bug'] });
    await tracker.claim(a.number);
    await tracker.updateLabels(b.number, { add: [Label.issue] });
    await tracker.close(c.number);
    await tracker.reopen(c.number);
    await tracker.updateLabels(c.number, { add: [Label.issue] });
    const pr = await tracker.createPullRequest({ title: 'p', head: 'loom/p', base: 'main', closesIssue: a.number, labels: [Label.reviewRequested] });
    await tracker.updateLabels(pr.number, { add: [Label.pr] });
    const page = (await tracker.snapshot({ page: 10 })).page!;
    expect(page.counts).toEqual({ [Label.building]: 1, [Label.urgent]: 1, [Label.issue]: 2, bug: 1 });
    await tracker.close(a.number, 'done');
    await tracker.markMerged(pr.number);
    expect((await tracker.snapshot({ page: 10 })).page!.counts).toEqual({ [Label.issue]: 2, bug: 1 });
    await checkPages(tracker, [1, 10]);
    // A read-only reader (`loom status`) gets the same page from its copy, and writes nothing.
    const reader = new LocalTracker({ path: file, readonly: true });
    toDispose.push(reader);
    expect(await reader.snapshot({ page: 1 })).toEqual(await tracker.snapshot({ page: 1 }));
  });

  it('fills the counts when it upgrades a version 2 file', async () => {
    const { tracker, file } = fresh();
    for (let i = 0; i < 30; i++) await tracker.createIssue({ title: `i${i}`, labels: [[Label.issue], [Label.blocked], [Label.curated]][i % 3] });
    await tracker.close(3);
    await tracker.createPullRequest({ title: 'p', head: 'loom/p', base: 'main', closesIssue: 2, labels: [Label.pr] });
    tracker.dispose();
    const raw = new Database(file);
    dropVersion3(raw);
    raw.close();
    const upgraded = new LocalTracker({ path: file });
    toDispose.push(upgraded);
    await checkPages(upgraded, [3, 100]);
    const db = new Database(file, { readonly: true });
    try {
      expect(db.pragma('user_version', { simple: true })).toBe(3);
    } finally {
      db.close();
    }
  });
});
