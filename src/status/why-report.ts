/**
 * `loom why <issue>`: the issue's state first (being built, closed and how, in review, blocked,
 * a proposal, ready), then every gate between it and a shepherd, in the order the planner
 * applies them, each with whether it passes and what to do about it. Read-only, like status.
 */
import type { LoomConfig } from '../core/config-model.js';
import type { LoomPaths } from '../config/paths.js';
import type { DaemonState } from '../core/daemon-state.js';
import { activeShepherds } from '../core/daemon-state.js';
import { formatDuration } from '../core/duration.js';
import { Label, PROPOSAL_LABELS } from '../core/labels.js';
import { buildBlocker, originalLabel } from '../core/original-labels.js';
import { buildableQueue, buildOrder } from '../core/planner.js';
import type { Progress } from '../core/progress.js';
import { liveLock } from '../state/daemon-lock.js';
import { ProgressStore, viewOf } from '../process/progress-store.js';
import type { Issue, PullRequest, TrackerSnapshot } from '../core/tracker-model.js';
import type { Tracker } from '../tracker/tracker.js';
import { readDependencies } from '../tracker/dependency-states.js';
import { freeDiskBytes } from '../fs/free-disk.js';
import { formatSize } from '../core/size.js';
import type { DependencyMap } from '../core/dependencies.js';
import { dependencyCycles, openDependencies } from '../core/dependencies.js';
import type { OverlapFacts } from '../core/overlap.js';
import { describeOverlap, overlapWaits } from '../core/overlap.js';
import { readOverlap } from './collect-status.js';
import { mergingStatus, renderQueue } from './status-report.js';
import type { HumanReview } from '../core/reviews.js';
import { actionableReviews, approvedCommits, handledReviews, writerApproval } from '../core/reviews.js';
import { gitMaybe } from '../git/git.js';
import { approvalsOf } from '../git/merge.js';

export interface Gate {
  gate: string;
  ok: boolean;
  detail: string;
}

/** Where the issue is, in one word. */
export type WhyState = 'missing' | 'building' | 'closed' | 'in-review' | 'blocked' | 'proposal' | 'ready' | 'not-ready';

export interface WhyReport {
  issue: number;
  state: WhyState;
  /** One line: the issue's state first, then (while it waits to be built) the first gate that fails. */
  verdict: string;
  gates: Gate[];
}

/** What the tracker says beyond the snapshot: the pull requests for the issue, and its last comment. */
export interface WhyFacts {
  /** Pull requests that close the issue, any state. */
  pullRequests: PullRequest[];
  /** The last comment's text, if any (a closed issue's says why it was closed). */
  lastComment: string | null;
  /** The issue's declared dependencies and their states (and those of open dependencies, for cycles). */
  dependencies?: DependencyMap;
  /** The ready issues' predicted files and the work in progress (`overlap: wait` only). */
  overlap?: OverlapFacts;
  /** For an open PR: writers' reviews the Doctor has not had yet, and whether writers approve. */
  reviews?: { pending: HumanReview[]; approval: ReturnType<typeof writerApproval> };
}

/**
 * How many ready issues (in build order) `loom why` and the dashboard's issue page read: an issue
 * among them gets its exact place in line, one behind them "behind the first N of M". The read
 * costs the same whatever the backlog (a tracker may read everything).
 */
export const WHY_PAGE = 500;

/** Reads the facts `buildWhy` needs beyond the snapshot: only for an issue that is not open and ready. */
export async function whyFacts(tracker: Tracker, issue: Issue, snapshot: TrackerSnapshot, where?: { paths: LoomPaths; config: LoomConfig }): Promise<WhyFacts> {
  const open = snapshot.pullRequests.filter((p) => p.closesIssue === issue.number);
  const pullRequests = issue.state === 'closed' ? (await tracker.listPullRequests({ state: 'all' })).filter((p) => p.closesIssue === issue.number) : open;
  const comments = issue.state === 'closed' || issue.labels.includes(Label.blocked) ? await tracker.listComments(issue.number) : [];
  const dependencies = issue.state === 'open' ? await readDependencies(tracker, [issue]) : {};
  const ready = issue.state === 'open' && issue.labels.includes(Label.issue) && !issue.labels.includes(Label.building);
  const overlap = ready && where !== undefined && where.config.overlap === 'wait' ? await readOverlap(where.paths, where.config, tracker.kind, snapshot) : undefined;
  const pr = pullRequests.find((p) => p.state === 'open');
  let reviews: WhyFacts['reviews'];
  if (pr !== undefined && tracker.kind === 'github') {
    const all = await tracker.reviews(pr.number);
    const handled = handledReviews((await tracker.listComments(pr.number)).filter((c) => c.body.startsWith('**Loom')).map((c) => c.body));
    // An approval counts for the change the PR's branch on origin holds now (not for an older one a Doctor round replaced).
    const head = where?.config.requireApproval === true ? (await gitMaybe(where.paths.root, ['ls-remote', 'origin', `refs/heads/${pr.head}`]))?.split(/\s/)[0] : undefined;
    const current = where !== undefined && head !== undefined && head !== '' ? await approvalsOf(where.paths.root, `refs/remotes/origin/${pr.base}`, head, approvedCommits(all)) : null;
    reviews = { pending: actionableReviews(all, handled), approval: writerApproval(all, (id) => current === null || id === null || current.has(id)) };
  }
  return { pullRequests, lastComment: comments.at(-1)?.body ?? null, dependencies, ...(overlap ? { overlap } : {}), ...(reviews ? { reviews } : {}) };
}

export function buildWhy(input: { paths: LoomPaths; config: LoomConfig; state: DaemonState | null; snapshot: TrackerSnapshot; issue: Issue | null; number: number; now: Date; facts?: WhyFacts; cli?: string }): WhyReport {
  const { paths, config, state, snapshot, issue, number, now } = input;
  const cli = input.cli ?? 'loom';
  const facts = input.facts ?? { pullRequests: snapshot.pullRequests.filter((p) => p.closesIssue === number), lastComment: null };
  const gates: Gate[] = [];
  const openPr = facts.pullRequests.find((p) => p.state === 'open');
  const add = (gate: string, ok: boolean, detail: string) => gates.push({ gate, ok, detail });
  add('exists', issue !== null, issue ? `#${number}: ${issue.title}` : `#${number} does not exist on the tracker`);
  if (issue === null) return { issue: number, state: 'missing', verdict: `#${number} does not exist on the tracker`, gates };
  add('open', issue.state === 'open', issue.state === 'open' ? 'open' : 'closed: reopen it to build it');
  const record = new ProgressStore(paths.progress).readShepherd(number);
  const owned = viewOf(record, now.getTime()).alive;
  const building = issue.labels.includes(Label.building);
  add('not already owned', !owned && !building, owned ? `a shepherd is working on it (pid ${record?.pid ?? record?.launcher_pid ?? '?'}, phase ${record?.phase ?? '?'}); \`${cli} logs ${number}\`` : building ? `${Label.building} but no live shepherd: the next iteration returns it to ${Label.issue}` : 'no shepherd owns it');
  const proposal = PROPOSAL_LABELS.find((l) => issue.labels.includes(l));
  const ready = issue.labels.includes(Label.issue);
  add(
    `labelled ${Label.issue}`,
    ready || (proposal !== undefined && state?.force_mode === true),
    ready
      ? 'ready to build'
      : building
        ? `it carries ${Label.building} instead: a shepherd claimed it`
        : issue.labels.includes(Label.blocked)
          ? `${Label.blocked}: read its last comment, then \`${cli} issue label ${number} ${Label.issue}\``
          : proposal
            ? `a proposal (${proposal}): approve with \`${cli} issue label ${number} ${Label.issue}\` (force mode promotes it automatically)`
            : `has no ${Label.issue} label: \`${cli} issue label ${number} ${Label.issue}\``,
  );
  const deps = facts.dependencies?.[String(number)] ?? [];
  if (deps.length > 0) {
    const waiting = openDependencies(facts.dependencies, number);
    const cycle = dependencyCycles(facts.dependencies).find((c) => c.includes(number));
    const via = new Map(deps.map((d) => [d.number, d.pullRequest === true ? 'pr' : d.via]));
    const refs = (ns: number[]) => ns.map((n) => (via.get(n) === 'sub-issue' ? `sub-issue #${n}` : via.get(n) === 'pr' ? `PR #${n}` : `#${n}`)).join(', ');
    const numbers = (state: string, pr?: boolean) => deps.filter((d) => d.state === state && (pr === undefined || (d.pullRequest === true) === pr)).map((d) => d.number);
    const listed = (ns: number[], words: string) => (ns.length > 0 ? [`${refs(ns)} ${words}`] : []);
    const skipped = [
      ...listed(numbers('not-planned', false), 'closed as not planned'),
      ...listed(numbers('not-planned', true), 'closed unmerged'),
      ...(numbers('missing').length > 0 ? [`${refs(numbers('missing'))} ${numbers('missing').length === 1 ? 'does' : 'do'} not exist`] : []),
    ];
    const notWaited = skipped.length > 0 ? `; ${skipped.join(', ')} (not waited for)` : '';
    add(
      'dependencies done',
      waiting.length === 0,
      cycle
        ? `waits on ${refs(waiting)}: a cycle (${refs(cycle)}) — remove one \`Depends on\` line to break it`
        : waiting.length > 0
          ? `waits on ${refs(waiting)} (open); it is built once ${waiting.length === 1 ? 'that is' : 'those are'} ${waiting.every((n) => via.get(n) === 'pr') ? 'merged' : waiting.some((n) => via.get(n) === 'pr') ? 'closed or merged' : 'closed'}${notWaited}`
          : numbers('done').length > 0
            ? `${[...listed(numbers('done', false), 'closed'), ...listed(numbers('done', true), 'merged')].join(', ')}${notWaited}`
            : notWaited.slice(2),
    );
  }
  if (facts.overlap !== undefined && config.overlap === 'wait') {
    const queue = buildableQueue(snapshot.issues, facts.dependencies);
    const overlaps = overlapWaits(facts.overlap, queue.includes(number) ? queue : [...queue, number]).get(number) ?? [];
    const files = facts.overlap.predicted[String(number)] ?? [];
    add(
      'no overlapping work',
      overlaps.length === 0,
      overlaps.length > 0
        ? `overlaps ${overlaps.map(describeOverlap).join('; ')}: it starts once ${overlaps.length === 1 ? 'that is' : 'those are'} done (\`overlap: allow\` in .loom/config.json turns this off)`
        : files.length > 0
          ? `no running shepherd or open Loom PR touches ${files.length > 5 ? `${files.slice(0, 5).join(', ')} (+${files.length - 5})` : files.join(', ')}`
          : 'names no files and has no earlier attempt: nothing to overlap',
    );
  }
  const blocker = buildBlocker(issue.labels);
  add('not held', blocker === undefined, blocker ? `${blocker.label}: ${blocker.reason}; \`loom issue unlabel ${number} ${blocker.label}\` once it may be built` : 'no hold, epic or failure label');
  const others = issue.labels.filter((l) => originalLabel(l) !== undefined && l !== blocker?.label);
  if (others.length > 0) add('labels of the original Loom', true, others.map((l) => `${l}: ${originalLabel(l)?.meaning ?? ''}`).join('; '));
  const untrusted = state?.untrusted[String(number)];
  add('trusted', untrusted === undefined, untrusted ? `waiting for a maintainer: ${untrusted.reason} (checked ${untrusted.checked_at}); a maintainer re-applying ${Label.issue} makes it buildable` : 'no trust problem recorded');
  const retry = state?.spawn_retry_queue[String(number)];
  const notBefore = retry ? Date.parse(retry.next_retry_at) : NaN;
  add('not backing off', !(notBefore > now.getTime()), retry ? `${retry.failures} failed start(s), last: ${retry.last_error}; ${notBefore > now.getTime() ? `next try after ${retry.next_retry_at}` : 'may be retried now'}` : 'no failed starts');
  add('builder configured', config.roles.builder.enabled, config.roles.builder.enabled ? `builder runtime: ${config.roles.builder.runtime ?? '?'}` : 'no runtime for the builder: set "runtime" or roles.builder in .loom/config.json');
  const daemon = liveLock(paths.lock);
  add('daemon running', daemon?.holder === 'daemon', daemon?.holder === 'daemon' ? `pid ${daemon.pid}` : `no daemon: \`${cli} start\`, or \`${cli} spawn ${number}\` to build it now`);
  const free = freeDiskBytes(paths.root);
  const lowDisk = free !== null && free < config.minFreeDisk;
  add('disk space', !lowDisk, free === null ? 'free space unknown' : `${formatSize(free)} free${lowDisk ? `, below minFreeDisk (${formatSize(config.minFreeDisk)}): no new worktree starts until space is freed` : ` (minFreeDisk ${formatSize(config.minFreeDisk)})`}`);
  const active = state ? activeShepherds(state).length : 0;
  add('a shepherd slot is free', active < config.maxShepherds, `${active}/${config.maxShepherds} shepherds busy`);
  const queue = buildOrder(snapshot.issues.filter((i) => i.labels.includes(Label.issue) && buildBlocker(i.labels) === undefined));
  const position = queue.findIndex((i) => i.number === number);
  // A bounded snapshot holds the first ready issues in build order; the total is the tracker's count.
  const readyTotal = snapshot.page !== undefined ? Math.max(queue.length, snapshot.page.counts[Label.issue] ?? 0) : queue.length;
  const moveUp = issue.labels.includes(Label.urgent) ? '' : `; \`${cli} issue label ${number} ${Label.urgent}\` moves it up`;
  if (position >= 0) add('next in line', position < Math.max(1, config.maxShepherds - active), `position ${position + 1} of ${readyTotal} ready issues (${Label.urgent} first, then oldest)${moveUp}`);
  else if (snapshot.page !== undefined && issue.state === 'open' && issue.labels.includes(Label.issue) && blocker === undefined)
    add('next in line', false, `behind the first ${queue.length} of ${readyTotal} ready issues (${Label.urgent} first, then oldest)${moveUp}`);
  const { state: where, headline } = stateOf({ issue, record: owned ? record : null, facts, forceMode: state?.force_mode === true, now, cli });
  const mergeGates = openPr === undefined ? [] : [...reviewGates(config, facts.reviews), ...mergePathGates(paths, openPr, cli)];
  gates.push(...mergeGates);
  const failing = gates.find((g) => !g.ok);
  const mergeWait = mergeGates.find((g) => !g.ok);
  // An issue waiting to be built says which gate holds it; one in review, what its merge waits on; any other state is the answer itself.
  const verdict =
    where === 'ready'
      ? failing
        ? `${headline}, waiting: ${failing.gate} — ${failing.detail}`
        : `${headline} and passes every gate: the next iteration starts a shepherd for it`
      : mergeWait !== undefined && (where === 'in-review' || where === 'building')
        ? `${headline}; waiting: ${mergeWait.gate} — ${mergeWait.detail}`
        : headline;
  return { issue: number, state: where, verdict, gates };
}

/** Human reviews between an open PR and its merge (GitHub): changes a writer asked for, and `requireApproval`. */
function reviewGates(config: LoomConfig, reviews: WhyFacts['reviews']): Gate[] {
  if (reviews === undefined) return [];
  const gates: Gate[] = [];
  if (reviews.pending.length > 0) gates.push({ gate: 'human review', ok: false, detail: `${reviews.pending.map((r) => `@${r.author}`).join(', ')} asked for changes: the next merge attempt hands the review to the Doctor` });
  if (config.requireApproval) {
    const a = reviews.approval;
    const who = (names: string[]) => names.map((u) => `@${u}`).join(', ');
    const detail = a.approved
      ? `approved by ${who(a.by)}`
      : a.requesting.length > 0
        ? `changes requested by ${who(a.requesting)}; waiting for an approving review from a writer (requireApproval)`
        : a.stale.length > 0
          ? `the approval by ${who(a.stale)} is for an older change; waiting for an approving review of this one (requireApproval)`
          : 'waiting for an approving review from someone with write access (requireApproval)';
    gates.push({ gate: 'approving review', ok: a.approved, detail });
  }
  return gates;
}

/**
 * The gates between an open PR and its merge that Loom keeps itself: the base being green (the
 * post-merge guard's pause) and the merge queue (position, and what the holder waits on: which checks).
 */
function mergePathGates(paths: LoomPaths, pr: PullRequest, cli: string): Gate[] {
  const merging = mergingStatus(paths);
  const gates: Gate[] = [];
  const p = merging.paused;
  gates.push({ gate: 'base green', ok: p === null, detail: p === null ? 'no pause: the base was green after the last merge' : `${p.reason.replace(/`/g, '')}; \`${cli} status\` shows the failure` });
  const mine = merging.queue.find((q) => q.pr === pr.number);
  if (mine === undefined) {
    gates.push({ gate: 'merge queue', ok: true, detail: merging.queue.length === 0 ? 'not queued; the queue is empty' : `not queued; ${merging.queue.length} ahead: ${renderQueue(merging.queue)}` });
  } else if (mine.position === 1) {
    const waitingOnChecks = mine.step === 'waiting on checks';
    gates.push({ gate: 'merge queue', ok: !waitingOnChecks, detail: `holds the merge lock (${mine.step}${mine.detail ? `: ${mine.detail}` : ''})` });
    if (waitingOnChecks) gates.push({ gate: 'CI checks', ok: false, detail: `waiting on ${mine.detail ?? 'checks'}` });
  } else {
    const ahead = merging.queue.filter((q) => q.position < mine.position);
    gates.push({ gate: 'merge queue', ok: false, detail: `position ${mine.position} of ${merging.queue.length}: behind ${ahead.map((q) => `PR #${q.pr} (${q.step}${q.detail ? `: ${q.detail}` : ''})`).join(', ')}` });
  }
  return gates;
}

/** The issue's state as a headline: "#13 is being built by a shepherd (phase judge, 3m)", "#3 is closed: merged in PR #4", … */
function stateOf(o: { issue: Issue; record: Progress | null; facts: WhyFacts; forceMode: boolean; now: Date; cli: string }): { state: WhyState; headline: string } {
  const { issue, record, facts, cli } = o;
  const n = issue.number;
  if (issue.state === 'closed') {
    const merged = facts.pullRequests.find((p) => p.state === 'merged');
    if (merged) return { state: 'closed', headline: `#${n} is closed: merged in PR #${merged.number}` };
    const noChanges = /^Loom: no changes needed — (.*?)\.?(?:\s+Log: .*)?$/s.exec(facts.lastComment ?? '');
    if (noChanges) return { state: 'closed', headline: `#${n} is closed: no changes needed — ${noChanges[1]?.split('\n')[0] ?? ''}` };
    return { state: 'closed', headline: `#${n} is closed, without a merged pull request (\`${cli} issue show ${n}\` has its comments)` };
  }
  if (record !== null) {
    const ran = formatDuration(o.now.getTime() - Date.parse(record.started));
    return { state: 'building', headline: `#${n} is being built by a shepherd (phase ${record.phase}, ${ran}); \`${cli} logs ${n} -f\` follows it` };
  }
  if (issue.labels.includes(Label.building)) return { state: 'building', headline: `#${n} is marked ${Label.building} but no shepherd is alive: the next iteration returns it to ${Label.issue}` };
  if (issue.labels.includes(Label.blocked)) {
    // Loom's blocking comments say why: "Loom: <reason>; marking this issue `loom:blocked`. …".
    const reason = /^Loom: ([\s\S]+?)[;,]? (?:giving up and )?marking (?:this issue|it) `loom:blocked`/.exec(facts.lastComment ?? '')?.[1]?.replace(/\s+/g, ' ').replace(/\.$/, '');
    const why = reason === undefined ? `read its last comment (\`${cli} issue show ${n}\`), then` : `${reason.length > 160 ? `${reason.slice(0, 159)}…` : reason}; once that is dealt with,`;
    return { state: 'blocked', headline: `#${n} is blocked (${Label.blocked}): ${why} \`${cli} issue label ${n} ${Label.issue}\` retries it` };
  }
  const pr = facts.pullRequests.find((p) => p.state === 'open');
  if (pr) {
    const step = pr.labels.includes(Label.pr)
      ? pr.labels.includes(Label.manualMerge)
        ? `approved; a human merges it (${Label.manualMerge})`
        : `approved (${Label.pr}); the Champion merges it`
      : pr.labels.includes(Label.changesRequested)
        ? `changes requested; the Doctor works on it`
        : pr.labels.includes(Label.reviewRequested)
          ? `waiting for the Judge (${Label.reviewRequested})`
          : 'open';
    return { state: 'in-review', headline: `#${n} is in review: PR #${pr.number} is ${step}` };
  }
  const proposal = PROPOSAL_LABELS.find((l) => issue.labels.includes(l));
  if (proposal && !issue.labels.includes(Label.issue)) {
    return { state: 'proposal', headline: `#${n} is a proposal (${proposal}) awaiting approval: \`${cli} issue label ${n} ${Label.issue}\` approves it${o.forceMode ? '; the daemon in force mode promotes it by itself' : ''}` };
  }
  if (issue.labels.includes(Label.issue)) return { state: 'ready', headline: `#${n} is ready (${Label.issue})` };
  return { state: 'not-ready', headline: `#${n} is open but not ready: it has no ${Label.issue} label; \`${cli} issue label ${n} ${Label.issue}\` makes it ready` };
}

export function renderWhy(report: WhyReport): string {
  return [report.verdict, '', ...report.gates.map((g) => `  ${g.ok ? '✓' : '✗'} ${g.gate.padEnd(24)} ${g.detail}`)].join('\n');
}
