/**
 * The post-merge guard: after every merge the base is verified — local tracker: `testCommand` on
 * the new base, in a detached worktree; GitHub: the CI checks on the base's new head. Red → the
 * merge is reverted (local: a revert commit on the base; GitHub: a revert PR for a human to
 * merge), the issue is reopened as `loom:blocked` with a comment quoting the failure, and merging
 * pauses until the base is green again.
 *
 * Invariants owned here (state in src/state/base-guard-store.ts): everything runs under the merge
 * lock; a merge is recorded as `verifying` before its verification starts and cleared only once
 * it is handled, so a merger killed in between leaves it to the next merge; a merge commit is
 * never reverted twice (the state says so, and the base's history or the revert PR is checked
 * too, for a kill between the revert and the state write); no merge while paused.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { LoomConfig } from '../core/config-model.js';
import type { LoomPaths } from '../config/paths.js';
import { Label } from '../core/labels.js';
import { checksVerdict, failingChecksReview } from '../core/checks.js';
import { git, gitMaybe } from '../git/git.js';
import { moveBase } from '../git/merge.js';
import type { Tracker } from '../tracker/tracker.js';
import { BaseGuardStore, type BaseGuardState, type GuardedMerge } from '../state/base-guard-store.js';
import { runTestGate } from './judge-round.js';
import { waitForChecks } from './wait-for-checks.js';

export interface GuardContext {
  paths: LoomPaths;
  config: LoomConfig;
  tracker: Tracker;
  base: string;
  signal?: AbortSignal;
  log?: (line: string) => void;
  /** Other clones merge into this base too (workers of the `bullmq` executor): a pause may begin on any of them. */
  fleet?: boolean;
}

/** What the guard found after a merge. */
export type GuardVerdict = { result: 'green' | 'unverified'; detail: string } | { result: 'red'; detail: string; revert: string | null; paused: boolean };

/** `unknown` with `interrupted`: stopped from outside; the merge stays `verifying` for the next merger. */
/** `checks`: whether CI checks reported on the commit (absent: not known); `read`: false when that is inferred, not read. */
type Verification = { state: 'green'; detail: string; checks?: boolean; read?: boolean } | { state: 'red'; failure: string } | { state: 'unknown'; detail: string; interrupted?: boolean };

/** Bound on the failure quoted in comments and kept in the state file, characters. */
const FAILURE_CHARS = 4000;

/** The branch a GitHub revert PR is pushed on. */
export const revertBranch = (commit: string): string => `${REVERT_PREFIX}${commit.slice(0, 12)}`;
const REVERT_PREFIX = 'loom/revert-';

/**
 * Before a merge (under the lock): finishes a verification a killed merger left, then, when
 * merging is paused, looks at the base again (local: when its head moved; GitHub: its checks,
 * one conditional read). Null: merge. Otherwise why not.
 */
export async function guardBeforeMerge(ctx: GuardContext): Promise<string | null> {
  const store = new BaseGuardStore(ctx.paths.baseGuard);
  const left = store.read().verifying;
  if (left !== null && left.base === ctx.base) await guardAfterMerge(ctx, left);
  if (store.read().paused === null && ctx.tracker.kind === 'github' && ctx.fleet === true) await adoptRemotePause(ctx, store);
  const { paused } = store.read();
  if (paused === null || paused.merge.base !== ctx.base) return null;
  await followRevertPr(ctx, store);
  const head = await baseHead(ctx);
  const local = ctx.tracker.kind === 'local';
  const check: Verification = local && head === paused.red_head ? { state: 'red', failure: paused.failure } : await verify(ctx, head, paused.merge.had_checks, false);
  if (check.state === 'green') {
    store.update(() => ({ paused: null, last: { at: new Date().toISOString(), commit: head, pr: paused.merge.pr, result: 'green', detail: `\`${ctx.base}\` is green again at ${head.slice(0, 12)}: merging resumed` } }));
    ctx.log?.(`${ctx.base} is green again at ${head.slice(0, 12)}; merging resumed`);
    return null;
  }
  if (check.state === 'red' && head !== paused.red_head) store.update((s) => ({ paused: s.paused === null ? null : { ...s.paused, red_head: head, failure: check.failure } }));
  return pauseMessage(ctx.base, store.read());
}

/**
 * GitHub: the pause another clone's guard began (a worker on another machine, the daemon's
 * Champion) is not in this clone's state, but its revert PR is on GitHub: an open one into this
 * base, while the base's head is not green, pauses merging here too (adopted into this clone's
 * state, so `loom status` shows it and the merge is never reverted again from here).
 */
async function adoptRemotePause(ctx: GuardContext, store: BaseGuardStore): Promise<void> {
  const revert = (await ctx.tracker.listPullRequests({ state: 'open' })).find((p) => p.base === ctx.base && p.head.startsWith(REVERT_PREFIX));
  if (revert === undefined) return;
  const head = await baseHead(ctx);
  const check = await verify(ctx, head, true, false);
  if (check.state === 'green') return;
  const issue = Number(/^Revert #(\d+):/.exec(revert.title)?.[1] ?? 0);
  const found = /^Reverts PR #(\d+) \(merge ([0-9a-f]+)\)/.exec(revert.body);
  const short = found?.[2] ?? revert.head.slice(REVERT_PREFIX.length);
  const commit = (await gitMaybe(ctx.paths.root, ['rev-parse', '--verify', '-q', `${short}^{commit}`])) ?? short;
  const since = revert.createdAt;
  const merge: GuardedMerge = { base: ctx.base, commit, pr: Number(found?.[1] ?? 0), issue, title: revert.title.replace(/^Revert #\d+:\s*/, ''), had_checks: true, since };
  const failure = check.state === 'red' ? check.failure : `${check.detail} (the revert PR #${revert.number} is still open)`;
  store.update((s) => ({ paused: s.paused ?? { since, merge, red_head: head, failure, revert: `PR #${revert.number}` }, reverted: s.reverted.includes(commit) ? s.reverted : [...s.reverted, commit] }));
  ctx.log?.(`post-merge guard: ${ctx.base} is red at ${head.slice(0, 12)} and the revert PR #${revert.number} is open; merging paused here too`);
}

/**
 * GitHub, while paused: whether a person closed the revert PR without merging it (one
 * conditional read), so that `loom status` no longer calls the merge reverted and stops advising
 * to merge that PR. Reopened: as before.
 */
async function followRevertPr(ctx: GuardContext, store: BaseGuardStore): Promise<void> {
  const number = Number(/^PR #(\d+)$/.exec(store.read().paused?.revert ?? '')?.[1] ?? 0);
  if (ctx.tracker.kind !== 'github' || number === 0) return;
  const closed = (await ctx.tracker.pullRequestState(number))?.state === 'closed';
  if (closed !== (store.read().paused?.revert_closed === true)) {
    store.update((s) => ({ paused: s.paused === null ? null : { ...s.paused, revert_closed: closed } }));
    if (closed) ctx.log?.(`post-merge guard: the revert PR #${number} was closed without merging; merging stays paused until ${ctx.base} is green`);
  }
}

/** Why merging is paused, in one line (also for `loom status` and `loom why`). */
export function pauseMessage(base: string, state: BaseGuardState): string {
  const p = state.paused;
  if (p === null) return '';
  const reverted = p.revert === null ? 'not reverted (see the issue)' : p.revert_closed === true ? `not reverted: its revert ${p.revert} was closed without merging` : `reverted in ${p.revert}`;
  return `merging is paused: \`${base}\` went red after PR #${p.merge.pr} (issue #${p.merge.issue}, ${reverted}); merges resume once \`${base}\` is green again (red at ${p.red_head.slice(0, 12)})`;
}

/**
 * How long GitHub's word that no CI reports on the base holds: a base head the guard did not need
 * to read (no checks on the PR's head, none on the base before it) inherits it, and once it is
 * older the base's head is read again — so CI added to the default branch only is noticed within
 * this time, at one look per period instead of one per merge.
 */
export const BASE_CI_KNOWN_MS = 15 * 60_000;

/**
 * Whether CI checks report on `head` of the base: known without a request when the guard handled
 * that very commit after the merge that made it (every merge by Loom in a row) and either checks
 * reported there or GitHub said "none" less than `BASE_CI_KNOWN_MS` ago; else read (and kept).
 */
export async function baseHasChecks(ctx: Pick<GuardContext, 'paths' | 'tracker'>, head: string, seen: { sha: string; checks: boolean } | null = null, now = Date.now()): Promise<boolean> {
  const store = new BaseGuardStore(ctx.paths.baseGuard);
  const ci = store.read().ci;
  if (ci !== null && ci.commit === head && (ci.checks || now - Date.parse(ci.read_at) < BASE_CI_KNOWN_MS)) return ci.checks;
  // `seen`: what the merge look (Tracker.mergeLook) saw on the base a moment ago; it answers for that commit.
  const checks = seen !== null && seen.sha === head ? seen.checks : (await ctx.tracker.checks(head)).length > 0;
  store.update(() => ({ ci: { commit: head, checks, read_at: new Date(now).toISOString() } }));
  return checks;
}

/** After a merge (under the lock): verifies the base; red → revert, reopen the issue blocked, pause. */
export async function guardAfterMerge(ctx: GuardContext, merge: GuardedMerge): Promise<GuardVerdict> {
  const store = new BaseGuardStore(ctx.paths.baseGuard);
  store.update(() => ({ verifying: merge }));
  const result = store.read().reverted.includes(merge.commit) ? ({ state: 'red', failure: store.read().paused?.failure ?? 'reverted earlier' } as const) : await verify(ctx, merge.commit, merge.had_checks, true);
  const at = new Date().toISOString();
  if (result.state === 'unknown' && result.interrupted === true) {
    ctx.log?.(`post-merge guard: stopped before ${ctx.base} at ${merge.commit.slice(0, 12)} was verified; the next merge verifies it first`);
    return { result: 'unverified', detail: result.detail };
  }
  if (result.state !== 'red') {
    const verdict = result.state === 'green' ? 'green' : 'unverified';
    const known = result.state === 'green' ? result.checks : undefined;
    const read = result.state === 'green' && result.read !== false;
    store.update((s) => ({
      verifying: null,
      last: { at, commit: merge.commit, pr: merge.pr, result: verdict, detail: result.detail },
      ...(known === undefined ? {} : { ci: { commit: merge.commit, checks: known, read_at: read ? at : (s.ci?.read_at ?? new Date(0).toISOString()) } }),
    }));
    ctx.log?.(`post-merge guard: ${ctx.base} at ${merge.commit.slice(0, 12)} is ${verdict} (${result.detail})`);
    return { result: verdict, detail: result.detail };
  }
  const failure = result.failure.length > FAILURE_CHARS ? `${result.failure.slice(0, FAILURE_CHARS)}\n… (cut)` : result.failure;
  ctx.log?.(`post-merge guard: ${ctx.base} is red after PR #${merge.pr}; reverting it and pausing merges`);
  store.update((s) => ({ paused: { since: s.paused?.since ?? at, merge, red_head: s.paused?.red_head ?? merge.commit, failure, revert: s.paused?.revert ?? null } }));
  const revert = await revertOnce(ctx, merge, failure);
  store.update((s) => ({ reverted: revert.ok && !s.reverted.includes(merge.commit) ? [...s.reverted, merge.commit] : s.reverted, paused: s.paused === null ? null : { ...s.paused, revert: revert.ok ? revert.ref : null } }));
  await blockIssue(ctx, merge, failure, revert.ok ? revert.ref : null, revert.ok ? null : revert.message);
  let paused = true;
  if (revert.ok && revert.head !== null) {
    // Local: the reverted base is verified at once; green lifts the pause.
    const head = revert.head;
    const again = await verify(ctx, head, false, true);
    paused = again.state !== 'green';
    store.update((s) => ({ paused: paused && s.paused !== null ? { ...s.paused, red_head: head, failure: again.state === 'red' ? again.failure : s.paused.failure } : null }));
  }
  const detail = `PR #${merge.pr} turned \`${ctx.base}\` red; ${revert.ok ? `reverted in ${revert.ref}` : `not reverted: ${revert.message}`}; issue #${merge.issue} reopened as \`${Label.blocked}\`${paused ? '; merging paused' : `; \`${ctx.base}\` is green again`}`;
  store.update(() => ({ verifying: null, last: { at, commit: merge.commit, pr: merge.pr, result: 'red', detail } }));
  ctx.log?.(`post-merge guard: ${detail.replace(/`/g, '')}`);
  return { result: 'red', detail, revert: revert.ok ? revert.ref : null, paused };
}

async function baseHead(ctx: GuardContext): Promise<string> {
  if (ctx.tracker.kind === 'local') return git(ctx.paths.root, ['rev-parse', `refs/heads/${ctx.base}`]);
  await git(ctx.paths.root, ['fetch', '-q', 'origin', ctx.base]);
  return git(ctx.paths.root, ['rev-parse', `origin/${ctx.base}`]);
}

/** Local: `testCommand` on `sha`; GitHub: its checks (waited for with `wait`, else read once). */
async function verify(ctx: GuardContext, sha: string, hadChecks: boolean, wait: boolean): Promise<Verification> {
  if (ctx.tracker.kind === 'local') {
    if (ctx.config.testCommand === undefined) return { state: 'green', detail: 'no testCommand to run' };
    const dir = await guardWorktree(ctx, sha);
    try {
      const gate = await runTestGate(ctx.config, dir, ctx.signal);
      if (gate.aborted === true) return { state: 'unknown', detail: 'stopped before the tests finished', interrupted: true };
      return gate.passed ? { state: 'green', detail: `\`${ctx.config.testCommand}\` passes` } : { state: 'red', failure: `\`${ctx.config.testCommand}\` fails on \`${ctx.base}\` at ${sha.slice(0, 12)}:\n\n\`\`\`\n${gate.output}\n\`\`\`` };
    } finally {
      await dropGuardWorktree(ctx);
    }
  }
  if (!wait) {
    const verdict = checksVerdict(await ctx.tracker.checks(sha));
    if (verdict.state === 'success' || (verdict.state === 'none' && !hadChecks)) return { state: 'green', detail: verdict.state === 'none' ? 'no CI checks' : 'checks passed', checks: verdict.state === 'success' };
    if (verdict.state === 'failure') return { state: 'red', failure: failingChecksReview(verdict.failing, sha) };
    return { state: 'unknown', detail: verdict.state === 'pending' ? `checks pending: ${verdict.pending.join(', ')}` : 'no check reported yet' };
  }
  // Nothing to wait for: no checks on the PR's head and none on the base before it. A look right
  // after the push would find none whatever the CI does (it reports seconds later), so none is
  // made; the base's head is read again once GitHub's "none" is older than BASE_CI_KNOWN_MS.
  if (!hadChecks) return { state: 'green', detail: 'no CI checks expected', checks: false, read: false };
  const checks = await waitForChecks({ tracker: ctx.tracker, sha, pollMs: ctx.config.checksPollInterval, timeoutMs: ctx.config.checksTimeout, expectChecks: hadChecks, ...(ctx.signal ? { signal: ctx.signal } : {}) });
  if (checks.state === 'success') return { state: 'green', detail: 'checks passed', checks: true };
  if (checks.state === 'none') return { state: 'green', detail: 'no CI checks', checks: false };
  if (checks.state === 'failure') return { state: 'red', failure: failingChecksReview(checks.failing, sha) };
  if (checks.state === 'aborted') return { state: 'unknown', detail: 'stopped while waiting on checks', interrupted: true };
  return { state: 'unknown', detail: `checks still pending after ${Math.round(ctx.config.checksTimeout / 60_000)} min: ${checks.pending.join(', ')}` };
}

const guardDir = (ctx: GuardContext) => path.join(ctx.paths.worktrees, 'base-guard');

/** A detached worktree at `sha` (one a killed guard left is replaced). */
async function guardWorktree(ctx: GuardContext, sha: string): Promise<string> {
  const dir = guardDir(ctx);
  await dropGuardWorktree(ctx);
  await git(ctx.paths.root, ['worktree', 'add', '-q', '--detach', dir, sha]);
  return dir;
}

async function dropGuardWorktree(ctx: GuardContext): Promise<void> {
  const dir = guardDir(ctx);
  await gitMaybe(ctx.paths.root, ['worktree', 'remove', '--force', dir]);
  if (fs.existsSync(dir)) fs.rmSync(dir, { recursive: true, force: true });
  await gitMaybe(ctx.paths.root, ['worktree', 'prune']);
}

/**
 * Reverts `merge` unless it was already: local → a revert commit on the base (`head`: the new
 * base head); GitHub → a revert PR (`head` null: the base changes when someone merges it).
 */
async function revertOnce(ctx: GuardContext, merge: GuardedMerge, failure: string): Promise<{ ok: true; ref: string; head: string | null } | { ok: false; message: string }> {
  const { paths, base, tracker } = ctx;
  const short = merge.commit.slice(0, 12);
  if (tracker.kind === 'local') {
    const done = await gitMaybe(paths.root, ['log', '--format=%H', `--grep=This reverts commit ${merge.commit}`, `refs/heads/${base}`]);
    if (done !== null && done !== '') {
      const commit = done.split('\n')[0] ?? '';
      return { ok: true, ref: `commit ${commit.slice(0, 12)}`, head: await git(paths.root, ['rev-parse', `refs/heads/${base}`]) };
    }
  } else {
    const open = (await tracker.listPullRequests({ state: 'all' })).find((p) => p.head === revertBranch(merge.commit));
    if (open !== undefined) return { ok: true, ref: `PR #${open.number}`, head: null };
  }
  const head = await baseHead(ctx);
  const dir = await guardWorktree(ctx, head);
  try {
    const parents = (await git(paths.root, ['rev-list', '--parents', '-n', '1', merge.commit])).split(' ').length - 1;
    try {
      await git(dir, ['revert', '--no-edit', ...(parents > 1 ? ['-m', '1'] : []), merge.commit], { asLoom: true });
    } catch {
      await gitMaybe(dir, ['revert', '--abort']);
      return { ok: false, message: `\`git revert ${short}\` does not apply cleanly on \`${base}\`` };
    }
    const reverted = await git(dir, ['rev-parse', 'HEAD']);
    if (tracker.kind === 'local') {
      const moved = await moveBase(paths.root, base, head, reverted, 'revert');
      if (!moved.ok) return { ok: false, message: moved.message };
      return { ok: true, ref: `commit ${reverted.slice(0, 12)}`, head: reverted };
    }
    const branch = revertBranch(merge.commit);
    await git(dir, ['push', '-q', '--force', 'origin', `HEAD:refs/heads/${branch}`]);
    const pr = await tracker.createPullRequest({
      title: `Revert #${merge.issue}: ${merge.title.replace(/^#\d+:\s*/, '')}`,
      body: `Reverts PR #${merge.pr} (merge ${short}): \`${base}\` is red after it.\n\n${failure}\n\nOpened by Loom's post-merge guard; Loom merges nothing into \`${base}\` until it is green again.`,
      head: branch,
      base,
    });
    return { ok: true, ref: `PR #${pr.number}`, head: null };
  } finally {
    await dropGuardWorktree(ctx);
  }
}

/** Reopens the merge's issue as `loom:blocked` with a comment quoting the failure; done once. */
async function blockIssue(ctx: GuardContext, merge: GuardedMerge, failure: string, revert: string | null, revertProblem: string | null): Promise<void> {
  const issue = await ctx.tracker.getIssue(merge.issue);
  if (issue === null) return;
  if (issue.state === 'open' && issue.labels.includes(Label.blocked)) return;
  if (issue.state !== 'open') await ctx.tracker.reopen(merge.issue);
  const what = revert !== null ? `Loom reverted it in ${revert}${ctx.tracker.kind === 'github' ? ` (merge that PR, or fix \`${ctx.base}\`)` : ''}` : `Loom could not revert it (${revertProblem ?? 'unknown'}): fix \`${ctx.base}\` by hand`;
  await ctx.tracker.comment(merge.issue, `Loom: \`${ctx.base}\` went red after PR #${merge.pr} was merged (${merge.commit.slice(0, 12)}) and ${what}; merges into \`${ctx.base}\` pause until it is green again; marking this issue \`${Label.blocked}\`.\n\n${failure}`);
  await ctx.tracker.updateLabels(merge.issue, { add: [Label.blocked] });
}
