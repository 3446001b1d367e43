/**
 * `GitHubTracker`: the `Tracker` port on a GitHub repository through the REST API (and one GraphQL query, the merge look).
 *
 * Invariants owned here (the HTTP policies — conditional requests, rate limits, retries, typed
 * errors — are `GitHubTransport`'s, the claim protocol is described in ./github-claim.ts):
 * - An idle poll costs no rate limit. Every poll-path GET (`snapshot`, `getIssue`, lists, events,
 *   comments) is conditional. A snapshot starts with one probe of the most recently updated
 *   items; a 304 there means the listing kept by the last snapshot (`GitHubListing`) still
 *   holds, and a 200 is applied to it as a delta — the whole open listing is read only on a cold
 *   start and hourly. The pulls list (for head/base) is only read when a `loom:*` pull request in
 *   the issues list changed since the last snapshot; a PR's labels, title and body always come
 *   from the issues list just read (updated_at has one-second resolution: a relabel in the same
 *   second as the kept pull does not change it).
 * - Label changes go through `applyLabelChange` and are written as the whole resulting set in ONE
 *   `PUT /issues/{n}/labels`, so a state or verdict label replaces the others of its group in the
 *   same operation. No-op changes send nothing (and so create no events).
 * - What the next process needs (cache, circuit breaker, last snapshot's pulls, our login,
 *   permission answers, the listing) is saved on `dispose`, and read back by the constructor —
 *   except by a read-only tracker (`loom status`), which writes nothing.
 * - Trust (PRODUCT.md §11) is `GitHubTrust`'s rule over the issue's events.
 */

import type { CheckResult } from '../../core/checks.js';
import { checkRunState, commitStatusState, jobLogExcerpt } from '../../core/checks.js';
import type { HumanReview } from '../../core/reviews.js';
import path from 'node:path';
import { ISSUE_STATE_LABELS, LABEL_INFO, Label, WORKFLOW_LABELS, applyLabelChange, canonicalLabel, issueState, validateLabelName } from '../../core/labels.js';
import { NotFoundError, type Comment, type Issue, type IssueFilter, type ItemState, type LinkedIssue, type MergeLook, type NewIssue, type NewPullRequest, type PullRequest, type PullRequestState, type TrackerEvent, type TrackerSnapshot } from '../../core/tracker-model.js';
import type { Tracker, TrackerBudget, TrackerHealth } from '../tracker.js';
import { MergeRejectedError, RateLimitedError, TrackerAuthError, TrackerError, TrackerUnavailableError } from '../tracker-errors.js';
import { GitHubCacheFile } from './github-cache-file.js';
import { GitHubListing } from './github-listing.js';
import { claimVerdict, interruptedClaim, ourRemoval } from './github-claim.js';
import { GitHubTransport, SERVICE, isGone, listUrl, messageOf, nextLink, statusOf, type RateLimitState } from './github-transport.js';
import { GitHubTrust } from './github-trust.js';
import { readMergeLook } from './github-merge-look.js';
import { closeMergedInOne, type CloseMergedIds } from './github-close-merged.js';
import { isPull, isWellFormed, labelNames, pullState, toComment, toEvent, toIssue, toPullRequest, withClosesLine, type GhComment, type GhEvent, type GhIssue, type GhLabel, type GhPull, type GhUser } from './github-wire.js';

export interface GitHubTrackerOptions {
  owner: string;
  repo: string;
  token: string;
  /** REST API root; defaults to https://api.github.com. */
  baseUrl?: string;
  /** Our login, used to verify claims; looked up with `GET /user` when absent. */
  actor?: string;
  /** Clock in epoch milliseconds (circuit breaker, rate-limit reset). */
  now?: () => number;
  trust?: { allow?: string[] };
  /** First delay of the 5xx retry backoff (doubles per retry); default 500 ms. */
  retryDelayMs?: number;
  /**
   * File that carries the conditional-request cache, the circuit breaker and our login from one
   * process to the next (each iteration is a fresh process; without it every poll would be
   * unconditional and cost rate limit).
   */
  cacheFile?: string;
  /** Told, once at `dispose`, how many requests this tracker sent and the rate limit it last saw. */
  onDispose?: (usage: { requests: number; conditionalHits: number; rateLimit: RateLimitState }) => void;
  /** Read-only use (`loom status`): nothing is written back to the cache files. */
  readonly?: boolean;
}

/** Below this fraction of the rate limit left, `health` asks to slow down. */
const SLOW_DOWN_FRACTION = 0.1;

/** Items in the snapshot's change probe: every item updated in the latest second shows, up to this many. */
const PROBE_SIZE = 100;
/** How many times a non-idempotent write (the claim's label removal) is sent again after a 5xx or a lost answer. */
const WRITE_RETRIES = 3;
/** The snapshot reads the open-issue listing itself at least this often, probe or not, ms. */
const FULL_LISTING_INTERVAL_MS = 60 * 60_000;
/** ... and this often while the probe's page is one second's changes (see `snapshot`), ms. */
const SATURATED_LISTING_INTERVAL_MS = 10 * 60_000;
/** A delta longer than this many probe pages is read as the whole listing instead. */
const MAX_DELTA_PAGES = 5;
/** How long a trust check's read of an issue's timeline stands in for reading the issue before a claim, ms. */
const TIMELINE_LOOK_MS = 5_000;

export class GitHubTracker implements Tracker {
  readonly kind = 'github' as const;
  readonly owner: string;
  readonly repo: string;

  private readonly transport: GitHubTransport;
  private readonly trust: GitHubTrust;
  private readonly now: () => number;
  private readonly retryDelayMs: number;
  /** The loom PRs of the last snapshot, by number, as the pulls API returned them. */
  private snapshotPulls = new Map<number, GhPull>();
  /** The PRs this process created, and when: kept in the cache file until a snapshot taken after has them. */
  private readonly createdPulls = new Map<number, { pull: GhPull; at: number }>();
  /** When this process last took a snapshot (its pulls are as of then), epoch ms; null: never. */
  private snapshotAt: number | null = null;
  /** The open loom items as of the last snapshot, kept current by the probe's deltas. */
  private readonly listing: GitHubListing;
  /** Writes nothing on dispose (`loom status`). */
  private readonly readonly: boolean;
  private actor: string | null | undefined;
  /** GraphQL ids of the items and labels this process read (`node_id`), for a write GraphQL does in one request. */
  private readonly nodeIds = new Map<number, string>();
  private readonly labelIds = new Map<string, string>();
  /** The timeline the last trust check read (`claim` uses it right after, instead of reading the issue). */
  private trustRead: { number: number; events: TrackerEvent[]; at: number } | null = null;
  private disposed = false;
  private readonly cacheFile: GitHubCacheFile | undefined;
  private readonly onDispose: GitHubTrackerOptions['onDispose'];

  constructor(options: GitHubTrackerOptions) {
    this.onDispose = options.onDispose;
    this.cacheFile = options.cacheFile === undefined ? undefined : new GitHubCacheFile(options.cacheFile);
    const saved = this.cacheFile?.read() ?? null;
    if (saved !== null) {
      this.snapshotPulls = new Map(saved.pulls);
      for (const [number, pull] of saved.created ?? []) if (!this.snapshotPulls.has(number)) this.snapshotPulls.set(number, pull);
    }
    this.listing = new GitHubListing(options.cacheFile === undefined ? undefined : listingFileFor(options.cacheFile));
    this.readonly = options.readonly ?? false;
    this.owner = options.owner;
    this.repo = options.repo;
    this.now = options.now ?? Date.now;
    this.retryDelayMs = options.retryDelayMs ?? 500;
    this.actor = options.actor ?? (saved?.actor || undefined);
    this.transport = new GitHubTransport({
      owner: options.owner,
      repo: options.repo,
      token: options.token,
      ...(options.baseUrl === undefined ? {} : { baseUrl: options.baseUrl }),
      now: this.now,
      ...(options.retryDelayMs === undefined ? {} : { retryDelayMs: options.retryDelayMs }),
      ...(saved === null ? {} : { restored: { entries: saved.entries, openUntil: saved.openUntil } }),
    });
    this.trust = new GitHubTrust(this.transport, options.trust?.allow ?? [], this.now, Array.isArray(saved?.permissions) ? saved.permissions : []);
  }

  /** Requests actually sent (retries included; fast rejections by the open circuit excluded). */
  get requests(): number {
    return this.transport.requests;
  }

  /** Conditional requests answered 304 (served from the cache at no rate-limit cost). */
  get conditionalHits(): number {
    return this.transport.conditionalHits;
  }

  /** The last rate-limit state GitHub reported. */
  rateLimit(): RateLimitState {
    return this.transport.rateLimit();
  }

  /** When the rate-limit circuit breaker is open, the epoch ms it closes; else null. */
  circuitOpenUntil(): number | null {
    return this.transport.circuitOpenUntil();
  }

  /**
   * Unavailable while the circuit breaker is open (restored from the cache file by a fresh
   * process), slow-down below `SLOW_DOWN_FRACTION` of the rate limit, else ok.
   */
  health(): TrackerHealth {
    const { remaining, limit } = this.transport.rateLimit();
    const low: TrackerBudget | null = remaining !== null && limit !== null && limit > 0 && remaining < limit * SLOW_DOWN_FRACTION ? { remaining, limit } : null;
    const until = this.transport.circuitOpenUntil();
    if (until !== null) return { state: 'unavailable', until: new Date(until).toISOString(), lowBudget: low };
    return low === null ? { state: 'ok' } : { state: 'slow-down', ...low };
  }

  async snapshot(): Promise<TrackerSnapshot> {
    const t = this.transport;
    // What this snapshot knows is as of its probe: a PR created after this moment may be missing from it.
    const takenAt = this.now();
    // One conditional probe first: the most recently updated issues and PRs, open or closed. Any
    // change Loom cares about (labels, open/closed, a new issue, a push to a PR) bumps an item's
    // updated_at, which changes this page: a 304 means the listing the last snapshot left still
    // holds, so an idle poll is one request at no rate-limit cost, however long the backlog. A 200
    // is applied to that listing as a delta (everything updated since the last read, one page
    // unless more than 100 items changed), so a change costs about one point, not one per 100
    // open issues. The probe's ETag is trusted only with the listing it was current with.
    const probeUrl = listUrl(t.repoPath('/issues'), { state: 'all', sort: 'updated', direction: 'desc', per_page: PROBE_SIZE });
    const hasListing = this.listing.load();
    const remembered = t.forget(probeUrl);
    if (remembered !== undefined && hasListing && remembered.etag === this.listing.probeEtag) t.remember(probeUrl, remembered);
    const probe = await t.send<GhIssue[]>('GET', probeUrl, undefined, undefined, true);
    const probeEtag = t.forget(probeUrl)?.etag ?? null;
    const warnings: string[] = [];
    const wellFormed = (records: readonly unknown[]): GhIssue[] =>
      records.filter((item): item is GhIssue => {
        if (isWellFormed(item)) return true;
        warnings.push(`GitHub returned a malformed record${typeof (item as { number?: unknown }).number === 'number' ? ` for #${String((item as { number: number }).number)}` : ''}; skipped it this time`);
        return false;
      });
    const changed = probe.status === 304 ? [] : (probe.data as unknown[]);
    // Timestamps have one-second resolution: when the whole probe page is one second's changes, a
    // change in that same second could hide behind it (and the probe answer 304), so the listing
    // is read again every so often then; otherwise only rarely (deleted or transferred issues
    // show in no probe).
    const saturated = probe.status === 304 ? this.listing.saturated : changed.length >= PROBE_SIZE && updatedAt(changed.at(-1)) === updatedAt(changed[0]);
    const interval = saturated ? SATURATED_LISTING_INTERVAL_MS : FULL_LISTING_INTERVAL_MS;
    // A read-only process (`loom status`) builds on whatever listing there is.
    const due = !hasListing || (!this.readonly && (this.listing.listedAt === null || this.now() - this.listing.listedAt >= interval));
    const delta = due ? null : probe.status === 304 ? [] : await this.probeDelta(probe.data, probe.headers.link);
    if (delta === null) {
      const startedAt = this.now();
      // Not remembered: the pages shift whenever anything opens or closes, and deltas keep the listing current.
      const fetched = await t.getAll<GhIssue>(t.repoPath('/issues'), { state: 'open', per_page: 100 }, undefined, false);
      // Anything changed while the pages were read is newer than the probe's newest item: the next probe shows it.
      this.listing.replace(uniqueByNumber(wellFormed(fetched)), probe.status === 304 ? this.listing.watermark : newestUpdate(changed), startedAt);
    } else if (delta.length > 0) {
      this.listing.apply(uniqueByNumber(wellFormed(delta)), newestUpdate(changed));
      for (const item of delta) if (!isWellFormed(item) && typeof (item as { number?: unknown }).number === 'number') this.listing.drop((item as { number: number }).number);
    }
    this.listing.current(probeEtag, saturated);
    // Only the ETag matters (a 304 reads the listing, not the probe's body): the cache file stays small.
    if (probeEtag !== null) t.remember(probeUrl, { etag: probeEtag, data: [], link: undefined });
    const items = this.listing.all();
    const loom = items.filter((i) => i.state === 'open' && labelNames(i.labels).some((l) => l.startsWith('loom:')));
    const issues = loom.filter((i) => !isPull(i)).map(toIssue);
    const loomPulls = loom.filter(isPull);
    const pullRequests: PullRequest[] = [];
    // Head and base come from the pulls API, the rest from the listing. A PR's head branch never
    // changes, so the pulls list is read only when a loom PR appears that no snapshot kept and
    // no process of this clone created (`createdPulls`). (A base a person changes afterwards is
    // not followed here: the merge uses the configured default branch; only `loom why`'s
    // approval check with `requireApproval` reads it.)
    const fresh = loomPulls.every((i) => this.snapshotPulls.has(i.number));
    let byNumber = this.snapshotPulls;
    if (!fresh) {
      const pulls = await t.getAll<GhPull>(t.repoPath('/pulls'), { state: 'open', per_page: 100 });
      byNumber = new Map(pulls.filter((p) => isWellFormed(p)).map((p) => [p.number, p]));
    }
    const kept = new Map<number, GhPull>();
    for (const item of loomPulls) {
      const pull = byNumber.get(item.number) ?? (await this.fetchPull(item.number));
      if (pull === null || pull.state !== 'open') continue;
      if (!isWellFormed(pull)) {
        warnings.push(`GitHub returned a malformed record for pull request #${item.number}; skipped it this time`);
        continue;
      }
      kept.set(pull.number, pull);
      // Labels, title and body as listed now: updated_at has one-second resolution, so a pull kept
      // from a snapshot in the same second as a relabel looks unchanged but holds the old labels.
      pullRequests.push(toPullRequest({ ...pull, title: item.title, body: item.body ?? null, labels: item.labels, updated_at: item.updated_at }));
    }
    this.snapshotPulls = kept;
    this.snapshotAt = takenAt;
    issues.sort(byNumberAsc);
    pullRequests.sort(byNumberAsc);
    return { issues, pullRequests, ...(warnings.length > 0 ? { warnings } : {}) };
  }

  async getIssue(number: number): Promise<Issue | null> {
    const item = await this.fetchIssue(number, true);
    return item === null || isPull(item) ? null : toIssue(item);
  }

  /**
   * GitHub's own links before an issue: `GET …/issues/{n}/dependencies/blocked_by` and
   * `GET …/issues/{n}/sub_issues`, each a conditional request (a 304 costs no rate limit), and
   * neither sent when the issue's summaries say it has none.
   */
  async linkedIssues(issue: Issue): Promise<LinkedIssue[]> {
    const read = async (kind: LinkedIssue['kind'], path: string): Promise<LinkedIssue[]> => {
      let items: GhIssue[];
      try {
        items = await this.transport.getAll<GhIssue>(this.transport.repoPath(`/issues/${issue.number}/${path}`), { per_page: 100 });
      } catch (error) {
        // A GitHub without the endpoint (an older Enterprise Server) has no such links.
        if (statusOf(error) === 404) return [];
        throw error;
      }
      return items.filter((i) => isWellFormed(i) && !isPull(i)).map((i) => ({ kind, issue: toIssue(i) }));
    };
    const blockedBy = issue.links === undefined || issue.links.blockedBy > 0 ? await read('blocked-by', 'dependencies/blocked_by') : [];
    const subIssues = issue.links === undefined || issue.links.subIssues > 0 ? await read('sub-issue', 'sub_issues') : [];
    return [...blockedBy, ...subIssues];
  }

  async listIssues(filter: IssueFilter = {}): Promise<Issue[]> {
    const wanted = [...new Set(filter.labels ?? [])];
    const params: Record<string, string | number> = { state: filter.state ?? 'open', per_page: 100 };
    if (wanted.length > 0) params.labels = wanted.join(',');
    const items = uniqueByNumber(await this.transport.getAll<GhIssue>(this.transport.repoPath('/issues'), params));
    return items
      .filter((i) => !isPull(i))
      .map(toIssue)
      .filter((i) => wanted.every((l) => i.labels.includes(l)))
      .sort(byNumberAsc);
  }

  async createIssue(issue: NewIssue): Promise<Issue> {
    const labels = applyLabelChange([], checkLabelNames(issue.labels ?? []), []);
    const res = await this.transport.send<GhIssue>('POST', this.transport.repoPath('/issues'), {
      title: requireTitle(issue.title),
      body: issue.body ?? '',
      labels,
    });
    return toIssue(res.data);
  }

  async updateLabels(number: number, change: { add?: string[]; remove?: string[] }): Promise<string[]> {
    const add = checkLabelNames(change.add ?? []);
    const remove = checkLabelNames(change.remove ?? []);
    const item = await this.requireItem(number);
    const current = labelNames(item.labels);
    const next = applyLabelChange(current, add, remove);
    await this.writeLabels(number, current, next);
    return next;
  }

  async claim(number: number): Promise<boolean> {
    // The trust check just read the issue's timeline: when it says the issue is open and
    // `loom:issue`, that read stands in for reading the issue (the removal below is the mutex
    // either way). Otherwise the issue itself is read.
    const seen = this.trustRead?.number === number && this.now() - this.trustRead.at <= TIMELINE_LOOK_MS ? this.trustRead.events : null;
    this.trustRead = null;
    if (seen === null || !readyInTimeline(seen)) {
      const item = await this.fetchIssue(number, false);
      if (item === null || isPull(item) || item.state !== 'open' || !labelNames(item.labels).includes(Label.issue)) return false;
    }
    const removal = await this.removeReadyLabel(number);
    if (removal === false) return false;
    // loom:issue is off the issue now: the claim either completes or puts it back, so the issue is
    // never left without a state label (if putting it back fails too, `restoreInterruptedClaim`
    // finds it later from the events).
    try {
      const added = await this.transport.send<GhLabel[]>('POST', this.transport.repoPath(`/issues/${number}/labels`), { labels: [Label.building] });
      // Anything else of the state group (a human's concurrent change) goes in one more write.
      const now = labelNames(added.data);
      await this.writeLabels(number, now, applyLabelChange(now, [Label.building], []));
    } catch (error) {
      await this.putBackReady(number).catch(() => undefined);
      throw error;
    }

    // A removal GitHub answered 200 took the label off itself (a concurrent one is answered 404):
    // the claim is ours, no timeline to read. Only one whose answer was lost is verified.
    if (removal === 'clean') return true;
    const me = await this.login();
    const verdict = claimVerdict(await this.listEvents(number), me);
    if (verdict === 'won') return true;
    if (verdict === 'ambiguous') {
      const latest = await this.requireItem(number);
      const labels = labelNames(latest.labels);
      await this.writeLabels(number, labels, applyLabelChange(labels, [Label.issue], []));
    }
    return false;
  }

  /**
   * Read, then one write of the whole label set: the check is as fresh as one request allows
   * (GitHub has no conditional label write), far fresher than the caller's earlier read.
   */
  async release(number: number): Promise<boolean> {
    const item = await this.fetchIssue(number, false);
    if (item === null || isPull(item) || item.state !== 'open') return false;
    const labels = labelNames(item.labels);
    if (!onlyBuilding(labels)) return false;
    await this.writeLabels(number, labels, applyLabelChange(labels, [Label.issue], []));
    return true;
  }

  /**
   * Puts `loom:issue` back on an open issue that a claim of ours left without any state label
   * (killed, or the tracker failing, between taking `loom:issue` off and adding
   * `loom:building`): the last state-label change in its timeline must be our own removal of
   * `loom:issue`, so a human's removal is never undone. Returns whether it did.
   */
  async restoreInterruptedClaim(number: number): Promise<boolean> {
    const item = await this.fetchIssue(number, false);
    if (item === null || isPull(item) || item.state !== 'open') return false;
    const labels = labelNames(item.labels);
    if (issueState(labels) !== undefined) return false;
    if (!interruptedClaim(await this.listEvents(number), await this.login())) return false;
    await this.writeLabels(number, labels, applyLabelChange(labels, [Label.issue], []));
    return true;
  }

  async comment(number: number, body: string): Promise<Comment> {
    const res = await this.transport.send<GhComment>('POST', this.transport.repoPath(`/issues/${number}/comments`), { body }, number);
    return toComment(res.data);
  }

  async listComments(number: number): Promise<Comment[]> {
    const comments = await this.transport.getAll<GhComment>(this.transport.repoPath(`/issues/${number}/comments`), { per_page: 100 }, number);
    return comments.map(toComment);
  }

  async close(number: number, comment?: string, reason: 'completed' | 'not-planned' = 'completed', seen?: { labels: readonly string[]; pr?: { number: number; labels: readonly string[] } }): Promise<void> {
    if (seen !== undefined) {
      // The caller's look of a moment ago stands in for the read: one write, whether GitHub has
      // closed the issue meanwhile (a merged PR's `Closes #N`) or not. Its answer is the issue.
      if (comment !== undefined) await this.comment(number, comment);
      if (seen.pr !== undefined) {
        // With the merged PR's labels: one GraphQL request for both when the ids are known, else a REST write for the PR's first.
        const ids = this.closeMergedIds(number, seen.labels, seen.pr);
        if (ids !== null && (await closeMergedInOne(this.transport, ids, reason))) return;
        const prLabels = labelNames([...seen.pr.labels]);
        await this.writeLabels(seen.pr.number, prLabels, applyLabelChange(prLabels, [], WORKFLOW_LABELS));
      }
      const labels = applyLabelChange([...seen.labels], [], WORKFLOW_LABELS);
      const res = await this.transport.send<GhIssue>('PATCH', this.transport.repoPath(`/issues/${number}`), { state: 'closed', state_reason: reason === 'not-planned' ? 'not_planned' : 'completed', labels }, number);
      if (res.data.state !== 'closed') throw new TrackerError('github_api_error', `GitHub did not close #${number}`, { retryable: true });
      return;
    }
    const item = await this.requireItem(number);
    if (comment !== undefined) await this.comment(number, comment);
    const current = labelNames(item.labels);
    const next = applyLabelChange(current, [], WORKFLOW_LABELS);
    if (item.state === 'open') {
      const body: Record<string, unknown> = { state: 'closed', ...(isPull(item) ? {} : { state_reason: reason === 'not-planned' ? 'not_planned' : 'completed' }) };
      if (!sameSet(current, next)) body.labels = next;
      await this.transport.send('PATCH', this.transport.repoPath(`/issues/${number}`), body, number);
    } else {
      await this.writeLabels(number, current, next);
    }
  }

  /** The ids `closeMergedInOne` needs — the issue's, the PR's and those of each workflow label to take off — or null when one is not known. */
  private closeMergedIds(issue: number, issueLabels: readonly string[], pr: { number: number; labels: readonly string[] }): CloseMergedIds | null {
    const issueId = this.nodeIds.get(issue);
    const prId = this.nodeIds.get(pr.number);
    const idsOf = (labels: readonly string[]) => labelNames([...labels]).filter((l) => WORKFLOW_LABELS.includes(l)).map((l) => this.labelIds.get(l));
    const fromIssue = idsOf(issueLabels);
    const fromPr = idsOf(pr.labels);
    if (issueId === undefined || prId === undefined || [...fromIssue, ...fromPr].some((id) => id === undefined)) return null;
    return { issue: issueId, issueLabels: fromIssue as string[], pr: prId, prLabels: fromPr as string[] };
  }

  async reopen(number: number): Promise<void> {
    const item = await this.requireItem(number);
    if (isPull(item) && item.pull_request?.merged_at != null) {
      throw new Error(`#${number} is a merged pull request and cannot be reopened`);
    }
    if (item.state === 'closed') await this.transport.send('PATCH', this.transport.repoPath(`/issues/${number}`), { state: 'open' }, number);
  }

  async checks(sha: string): Promise<CheckResult[]> {
    // Two conditional GETs: answered 304 (free) while nothing about the commit changed.
    const runs = await this.transport.send<{ check_runs?: GhCheckRun[] }>('GET', listUrl(this.transport.repoPath(`/commits/${sha}/check-runs`), { per_page: 100 }), undefined, undefined, true);
    const status = await this.transport.send<{ statuses?: GhStatus[] }>('GET', listUrl(this.transport.repoPath(`/commits/${sha}/status`), { per_page: 100 }), undefined, undefined, true);
    const checkRuns: CheckResult[] = [];
    for (const r of runs.data.check_runs ?? []) {
      const state = checkRunState(r.status, r.conclusion);
      // A failing run's annotations (file, lines, message) are what the Doctor needs most: read them (conditionally) only then.
      const annotations = state === 'failure' && (r.output?.annotations_count ?? 0) > 0 ? await this.annotations(r.id) : null;
      // A failing GitHub Actions job: the end of its log too (the check run's id is the job's).
      const log = state === 'failure' && r.app?.slug === 'github-actions' ? await this.jobLog(r.id) : null;
      checkRuns.push({
        name: r.name,
        state,
        conclusion: r.conclusion ?? r.status,
        details: [r.output?.title, r.output?.summary, r.output?.text, annotations, r.details_url ? `Details: ${r.details_url}` : null].filter((t): t is string => typeof t === 'string' && t !== '').join('\n\n'),
        ...(log !== null ? { log } : {}),
      });
    }
    return [
      ...checkRuns,
      ...(status.data.statuses ?? []).map((s) => ({
        name: s.context,
        state: commitStatusState(s.state),
        conclusion: s.state,
        details: [s.description, s.target_url ? `Details: ${s.target_url}` : null].filter((t): t is string => typeof t === 'string' && t !== '').join('\n\n'),
      })),
    ];
  }

  /**
   * The end of an Actions job's log (`GET /actions/jobs/{id}/logs`, a redirect to the text), or
   * null when the API does not give it: logs expired or deleted (404, 410), a token without
   * `actions: read` (403), or no answer. Not remembered: a finished job's log does not change.
   */
  private async jobLog(jobId: number): Promise<string | null> {
    try {
      const res = await this.transport.send<unknown>('GET', this.transport.repoPath(`/actions/jobs/${jobId}/logs`));
      const text = typeof res.data === 'string' ? res.data : res.data instanceof ArrayBuffer ? new TextDecoder().decode(res.data) : null;
      return text === null ? null : jobLogExcerpt(text);
    } catch (error) {
      if (error instanceof RateLimitedError || error instanceof TrackerAuthError) throw error;
      return null;
    }
  }

  private async annotations(checkRunId: number): Promise<string | null> {
    const list = await this.transport.getAll<GhAnnotation>(this.transport.repoPath(`/check-runs/${checkRunId}/annotations`), { per_page: 50 });
    if (list.length === 0) return null;
    return `Annotations:\n${list.map((a) => `- \`${a.path}:${a.start_line}${a.end_line !== a.start_line ? `-${a.end_line}` : ''}\` ${a.annotation_level}${a.title ? ` — ${a.title}` : ''}: ${a.message}`).join('\n')}`;
  }

  async requiredChecks(branch: string): Promise<string[] | null> {
    try {
      const res = await this.transport.send<{ contexts?: string[]; checks?: { context: string }[] }>('GET', this.transport.repoPath(`/branches/${encodeURIComponent(branch)}/protection/required_status_checks`), undefined, undefined, true);
      const names = [...(res.data.contexts ?? []), ...(res.data.checks ?? []).map((c) => c.context)];
      return [...new Set(names)];
    } catch (error) {
      // Not protected (404), or a token that may not read protection (403): every check that reports counts.
      if (statusOf(error) === 404 || statusOf(error) === 403) return null;
      throw error;
    }
  }

  async reviews(prNumber: number): Promise<HumanReview[]> {
    // Conditional reads (free while nothing changed); each author's permission once per process.
    const reviews = await this.transport.getAll<GhReview>(this.transport.repoPath(`/pulls/${prNumber}/reviews`), { per_page: 100 }, prNumber);
    // Every inline comment belongs to a review (a lone one makes a COMMENTED review): no review, no comments to read.
    const comments = reviews.length === 0 ? [] : await this.transport.getAll<GhReviewComment>(this.transport.repoPath(`/pulls/${prNumber}/comments`), { per_page: 100 }, prNumber);
    const result: HumanReview[] = [];
    for (const r of reviews) {
      const author = r.user?.login ?? 'ghost';
      const state = REVIEW_STATES[r.state] ?? 'commented';
      if (state === 'pending') continue;
      result.push({
        id: r.id,
        author,
        writer: author !== 'ghost' && (await this.trust.isWriter(author)),
        state,
        body: r.body ?? '',
        submittedAt: r.submitted_at ?? '',
        comments: comments.filter((c) => c.pull_request_review_id === r.id).map((c) => ({ path: c.path, line: c.line ?? c.original_line ?? null, body: c.body })),
        commitId: r.commit_id ?? null,
      });
    }
    return result;
  }

  mergeLook(prNumber: number, base: string, head: string): Promise<MergeLook | null> {
    return readMergeLook(this.transport, prNumber, base, head, this.now);
  }

  async getPullRequest(number: number): Promise<PullRequest | null> {
    const pull = await this.fetchPull(number);
    return pull === null ? null : toPullRequest(pull);
  }

  /** The PR read as an issue (conditional): a moved base does not change that answer, so re-reads stay 304s. */
  async pullRequestState(number: number): Promise<PullRequestState | null> {
    const item = await this.fetchIssue(number, true);
    if (item === null || !isPull(item)) return null;
    return { number, state: item.pull_request?.merged_at != null ? 'merged' : item.state === 'closed' ? 'closed' : 'open', labels: labelNames(item.labels) };
  }

  async listPullRequests(filter: { state?: ItemState | 'all' } = {}): Promise<PullRequest[]> {
    const state = filter.state ?? 'open';
    const apiState = state === 'merged' ? 'closed' : state;
    const pulls = uniqueByNumber(await this.transport.getAll<GhPull>(this.transport.repoPath('/pulls'), { state: apiState, per_page: 100 }));
    return pulls
      .map(toPullRequest)
      .filter((p) => state === 'all' || p.state === state)
      .sort(byNumberAsc);
  }

  async createPullRequest(pr: NewPullRequest): Promise<PullRequest> {
    if (pr.head.trim() === '' || pr.base.trim() === '') throw new Error('a pull request needs a head and a base branch');
    const labels = applyLabelChange([], checkLabelNames(pr.labels ?? []), []);
    let created: GhPull;
    try {
      created = (
        await this.transport.send<GhPull>('POST', this.transport.repoPath('/pulls'), {
          title: requireTitle(pr.title),
          head: pr.head,
          base: pr.base,
          body: withClosesLine(pr.body ?? '', pr.closesIssue ?? null),
        })
      ).data;
    } catch (error) {
      // A creation answered 5xx (or not at all) after GitHub made the PR is retried into 422 "a
      // pull request already exists": the open PR of this head and base is the one we made.
      const open = statusOf(error) === 422 ? (await this.transport.getAll<GhPull>(this.transport.repoPath('/pulls'), { state: 'open', per_page: 100 })).find((p) => p.head.ref === pr.head && p.base.ref === pr.base) : undefined;
      if (open === undefined) throw error;
      created = open;
    }
    const number = created.number;
    if (labels.length === 0) return toPullRequest(created);
    // The label answer is the PR's whole label set: no need to read the PR again.
    const labelled = await this.transport.send<GhLabel[]>('POST', this.transport.repoPath(`/issues/${number}/labels`), { labels });
    // Labelled, it is a loom PR: the next snapshot (another process: through the cache file) knows its head and base without the pulls list.
    this.createdPulls.set(number, { pull: created, at: this.now() });
    this.snapshotPulls.set(number, created);
    this.saveCreated(number, created);
    return toPullRequest({ ...created, labels: Array.isArray(labelled.data) ? labelled.data : labels });
  }

  /**
   * On GitHub this merges: `PUT /pulls/{n}/merge` pinned to a head sha — `seen.sha`, the one the
   * caller's gates judged (no read before the request), else the one a read of the PR finds. Each request is
   * sent once, without the transport's backoff: the merge must follow the caller's last look at
   * the issue closely, so a 5xx is handed back (retryable) for the caller to look again first.
   */
  async markMerged(number: number, seen?: { sha: string; labels?: readonly string[] }): Promise<void> {
    if (seen !== undefined) {
      await this.mergeSeen(number, seen);
      return;
    }
    // Conditional: right after the caller's own look at the PR this is a 304 (GitHub's word that it is current), at no cost.
    const pull = await this.fetchPull(number, true, true);
    if (pull === null) {
      if ((await this.fetchIssue(number, false)) !== null) {
        throw new Error(`#${number} is an issue, not a pull request; only pull requests merge`);
      }
      throw new NotFoundError(number);
    }
    const state = pullState(pull);
    if (state !== 'open') throw new Error(`pull request #${number} is ${state}; only an open pull request can be merged`);
    try {
      await this.transport.sendOnce('PUT', this.transport.repoPath(`/pulls/${number}/merge`), { sha: pull.head.sha, merge_method: 'merge' });
    } catch (error) {
      // A merge answered 5xx, or not at all, may have happened, and then the retried request is
      // refused (405 "not mergeable", 409): whatever the failure, the PR read again decides. Merged
      // is merged (by us or anyone): recorded, never reported as a refusal.
      const after = await this.fetchPull(number, false);
      if (after === null || pullState(after) !== 'merged') {
        const status = statusOf(error);
        if (status === 405 || status === 409) throw new MergeRejectedError({ service: SERVICE, number, status, detail: messageOf(error), retryable: status === 409 });
        throw error;
      }
    }
    const current = labelNames(pull.labels);
    await this.writeLabels(number, current, applyLabelChange(current, [], WORKFLOW_LABELS));
  }

  /**
   * The merge request pinned to the head the caller's gates judged, with no read before it: GitHub
   * answers 409 when the head moved and 405 when the PR cannot be merged (closed, conflicting),
   * and either, like a 5xx or a lost answer, is decided by reading the PR once: merged is merged.
   */
  private async mergeSeen(number: number, seen: { sha: string; labels?: readonly string[] }): Promise<void> {
    try {
      await this.transport.sendOnce('PUT', this.transport.repoPath(`/pulls/${number}/merge`), { sha: seen.sha, merge_method: 'merge' });
    } catch (error) {
      const after = await this.fetchPull(number, false);
      if (after === null) throw statusOf(error) === 404 ? new NotFoundError(number) : error;
      const state = pullState(after);
      if (state === 'closed') throw new Error(`pull request #${number} is closed; only an open pull request can be merged`);
      if (state !== 'merged') {
        const status = statusOf(error);
        if (status === 405 || status === 409) throw new MergeRejectedError({ service: SERVICE, number, status, detail: messageOf(error), retryable: status === 409 });
        throw error;
      }
    }
    // Without labels: the caller's `close` of the issue takes them off with it.
    if (seen.labels === undefined) return;
    const current = labelNames([...seen.labels]);
    await this.writeLabels(number, current, applyLabelChange(current, [], WORKFLOW_LABELS));
  }

  async listEvents(number: number): Promise<TrackerEvent[]> {
    const events = await this.transport.getAll<GhEvent>(this.transport.repoPath(`/issues/${number}/events`), { per_page: 100 }, number);
    const result: TrackerEvent[] = [];
    for (const e of events) {
      const event = toEvent(e);
      if (event !== null) result.push(event);
    }
    return result.sort((a, b) => a.id - b.id);
  }

  /**
   * Whether the issue may be built: the actor who most recently applied `loom:issue` has write
   * access to the repository (or is allow-listed); see `GitHubTrust`.
   */
  async isTrusted(number: number): Promise<boolean> {
    const events = await this.listEvents(number);
    this.trustRead = { number, events, at: this.now() };
    return this.trust.isTrusted(events);
  }

  /**
   * Creates every `loom:*` label that is missing. A label that exists — in any spelling, as
   * GitHub compares names case-insensitively — is left exactly as it is (a repository's own or the
   * original Loom's colours and words); those whose colour or description differ from Loom's are
   * returned in `differing`. Idempotent.
   */
  async ensureLabels(): Promise<{ created: string[]; differing: string[] }> {
    const existing = await this.transport.getAll<GhLabel>(this.transport.repoPath('/labels'), { per_page: 100 });
    const byName = new Map(existing.map((l) => [l.name.toLowerCase(), l]));
    const created: string[] = [];
    const differing: string[] = [];
    for (const [name, info] of Object.entries(LABEL_INFO)) {
      const have = byName.get(name.toLowerCase());
      if (have === undefined) {
        await this.transport.send('POST', this.transport.repoPath('/labels'), { name, color: info.color, description: info.description });
        created.push(name);
      } else if (have.color?.toLowerCase() !== info.color.toLowerCase() || (have.description ?? '') !== info.description) differing.push(have.name);
    }
    return { created, differing };
  }

  dispose(): void {
    if (!this.disposed) this.onDispose?.({ requests: this.transport.requests, conditionalHits: this.transport.conditionalHits, rateLimit: this.transport.rateLimit() });
    if (this.cacheFile !== undefined && !this.disposed && !this.readonly) {
      // The listing first: the probe ETag in the cache file is trusted only with the listing it vouches for.
      this.listing.save();
      // Merged with what the processes that ended since this one started left: what this one did
      // not read itself stays theirs (docs/trackers.md, "The cache file").
      const saved = this.cacheFile.read();
      const { entries, openUntil } = this.transport.persisted(saved);
      // The pulls of the newer snapshot: a role that took one when it started and ends much later does not bring its older ones back.
      const mine = saved === null || (this.snapshotAt !== null && this.snapshotAt >= (saved.pullsAt ?? 0));
      const pulls = mine ? [...this.snapshotPulls.entries()] : saved.pulls;
      const pullsAt = mine ? (this.snapshotAt ?? undefined) : saved.pullsAt;
      // PRs created since that snapshot, by this process or another: the next snapshot needs no pulls list for them.
      const created = new Map<number, [number, GhPull, number]>();
      for (const entry of [...(saved?.created ?? []), ...[...this.createdPulls].map(([n, c]): [number, GhPull, number] => [n, c.pull, c.at])]) {
        if (entry[2] >= (pullsAt ?? 0) && !pulls.some(([n]) => n === entry[0])) created.set(entry[0], entry);
      }
      this.cacheFile.write({ entries, openUntil, pulls, ...(pullsAt !== undefined ? { pullsAt } : {}), ...(created.size > 0 ? { created: [...created.values()] } : {}), actor: this.actor ?? saved?.actor ?? null, permissions: this.trust.persisted(saved?.permissions ?? []) });
    }
    this.disposed = true;
    this.transport.dispose();
  }

  /**
   * A PR this process created goes into the cache file at once, not when the process ends: the
   * daemon's next iterations see it (labelled) while its shepherd still runs. Another process's
   * write at the same moment may lose it, which costs one read of the pulls list.
   */
  private saveCreated(number: number, pull: GhPull): void {
    if (this.cacheFile === undefined || this.readonly) return;
    const saved = this.cacheFile.read() ?? { entries: [], openUntil: null, pulls: [], actor: this.actor ?? null };
    const created: [number, GhPull, number][] = [...(saved.created ?? []).filter(([n]) => n !== number), [number, pull, this.now()]];
    this.cacheFile.write({ ...saved, created });
  }

  /** Our login: the configured actor, else `GET /user` once (null if the token cannot tell). */
  private async login(): Promise<string | null> {
    if (this.actor !== undefined) return this.actor;
    try {
      this.actor = (await this.transport.send<GhUser>('GET', '/user')).data.login;
    } catch (error) {
      if (error instanceof TrackerError && error.retryable) throw error;
      this.actor = null;
    }
    return this.actor;
  }

  /**
   * The rest of a delta after the probe's first page: the next pages while each is full and
   * still newer than the watermark (every change since the last read has updated_at at or after
   * it). Null when there is nothing to build on or the delta is too long: read the whole listing.
   */
  private async probeDelta(first: unknown[], link: unknown): Promise<unknown[] | null> {
    const watermark = this.listing.watermark;
    if (watermark === null) return null;
    const all = [...first];
    let page = first;
    let next = nextLink(link);
    for (let pages = 1; page.length >= PROBE_SIZE && updatedAt(page.at(-1)) >= watermark && next !== null; pages += 1) {
      if (pages >= MAX_DELTA_PAGES) return null;
      const res = await this.transport.send<unknown[]>('GET', next);
      page = res.data;
      next = nextLink(res.headers.link);
      all.push(...page);
    }
    return all;
  }

  /** The issue (or PR, as an issue) or null if absent; a conditional GET when `conditional`. */
  private async fetchIssue(number: number, conditional: boolean): Promise<GhIssue | null> {
    try {
      const item = (await this.transport.send<GhIssue>('GET', this.transport.repoPath(`/issues/${number}`), undefined, undefined, conditional)).data;
      this.learnIds(item);
      return item;
    } catch (error) {
      if (isGone(error)) {
        this.listing.drop(number); // deleted or transferred: no probe will show it
        return null;
      }
      throw error;
    }
  }

  /** Keeps the GraphQL ids an answer carries: the item's and its labels'. */
  private learnIds(item: GhIssue): void {
    if (typeof item?.node_id === 'string') this.nodeIds.set(item.number, item.node_id);
    for (const label of Array.isArray(item?.labels) ? item.labels : []) {
      if (typeof label === 'object' && label !== null && typeof label.name === 'string' && typeof label.node_id === 'string') this.labelIds.set(canonicalLabel(label.name), label.node_id);
    }
  }

  /** The item read before a write: conditional, so an item this process read and nobody changed since costs nothing (a 304 is GitHub's word that it is current). */
  private async requireItem(number: number): Promise<GhIssue> {
    const item = await this.fetchIssue(number, true);
    if (item === null) throw new NotFoundError(number);
    return item;
  }

  private async fetchPull(number: number, conditional = true, once = false): Promise<GhPull | null> {
    const url = this.transport.repoPath(`/pulls/${number}`);
    try {
      return (once ? await this.transport.sendOnce<GhPull>('GET', url, undefined, conditional) : await this.transport.send<GhPull>('GET', url, undefined, undefined, conditional)).data;
    } catch (error) {
      if (isGone(error)) return null;
      throw error;
    }
  }

  /**
   * Takes `loom:issue` off: the claim's mutex (of concurrent removals GitHub lets one succeed, the
   * others get 404). Sent once at a time: a removal answered 5xx, or not at all, may have been
   * carried out, and its retry would then get 404 as if someone else had claimed. So after such a
   * failure the issue is read again: still `loom:issue` → sent again; gone → it is ours if our own
   * removal is the first since the latest approval (the timeline says). `clean` when GitHub
   * answered our removal 200; `ours` when the timeline says a removal whose answer was lost was
   * ours; false when it was not.
   */
  private async removeReadyLabel(number: number): Promise<'clean' | 'ours' | false> {
    const url = this.transport.repoPath(`/issues/${number}/labels/${encodeURIComponent(Label.issue)}`);
    let failure: unknown = null;
    for (let attempt = 0; attempt <= WRITE_RETRIES; attempt++) {
      if (attempt > 0) await sleep(this.retryDelayMs * 2 ** (attempt - 1));
      try {
        await this.transport.sendOnce('DELETE', url);
        return failure === null ? 'clean' : 'ours';
      } catch (error) {
        if (statusOf(error) === 404) return failure === null ? false : (await this.removedByUs(number)) && 'ours';
        if (!(error instanceof TrackerUnavailableError)) throw error;
        failure = error;
      }
      const now = await this.fetchIssue(number, false);
      if (now === null || now.state !== 'open') return false;
      if (!labelNames(now.labels).includes(Label.issue)) return (await this.removedByUs(number)) && 'ours';
    }
    throw failure;
  }

  private async removedByUs(number: number): Promise<boolean> {
    return ourRemoval(await this.listEvents(number), await this.login());
  }

  /** Undoes a claim that took `loom:issue` off but could not add `loom:building`: `loom:issue` goes back. */
  private async putBackReady(number: number): Promise<void> {
    const item = await this.requireItem(number);
    const labels = labelNames(item.labels);
    const state = issueState(labels);
    if (item.state !== 'open' || (state !== undefined && state !== Label.building)) return;
    await this.writeLabels(number, labels, applyLabelChange(labels, [Label.issue], []));
  }

  private async writeLabels(number: number, current: readonly string[], next: string[]): Promise<void> {
    if (sameSet(current, next)) return;
    await this.transport.send('PUT', this.transport.repoPath(`/issues/${number}/labels`), { labels: next }, number);
  }
}

/** The listing file next to the cache file: `github-cache.json` → `github-listing.json`. */
function listingFileFor(cacheFile: string): string {
  return path.join(path.dirname(cacheFile), 'github-listing.json');
}

function updatedAt(item: unknown): string {
  const value = typeof item === 'object' && item !== null ? (item as { updated_at?: unknown }).updated_at : undefined;
  return typeof value === 'string' ? value : '';
}

/** The newest `updated_at` of a probe page (sorted newest first); '' for an empty one (no item yet: any change is newer). */
function newestUpdate(page: readonly unknown[]): string {
  return page.length === 0 ? '' : updatedAt(page[0]);
}

/**
 * Whether an issue's timeline (oldest first) shows it open and `loom:issue`: its last `loom:issue`
 * change added the label, it was not closed since it was last reopened, and it is not a merged PR.
 */
function readyInTimeline(events: readonly TrackerEvent[]): boolean {
  if (events.some((e) => e.type === 'merged')) return false;
  if (events.findLast((e) => e.type === 'closed' || e.type === 'reopened')?.type === 'closed') return false;
  return events.findLast((e) => (e.type === 'labeled' || e.type === 'unlabeled') && e.label === Label.issue)?.type === 'labeled';
}

/** `loom:building` is the issue's only state label (a human who added `loom:blocked` in GitHub's UI leaves both). */
function onlyBuilding(labels: readonly string[]): boolean {
  return labels.includes(Label.building) && labels.every((l) => l === Label.building || !ISSUE_STATE_LABELS.includes(l));
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function uniqueByNumber<T extends { number: number }>(items: T[]): T[] {
  return [...new Map(items.map((i) => [i.number, i])).values()];
}

function byNumberAsc(a: { number: number }, b: { number: number }): number {
  return a.number - b.number;
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x) => b.includes(x));
}

function checkLabelNames(names: readonly string[]): string[] {
  for (const name of names) {
    const problem = validateLabelName(name);
    if (problem !== undefined) throw new Error(problem);
  }
  return [...names];
}

function requireTitle(title: string): string {
  if (title.trim() === '') throw new Error('a title must not be empty');
  return title;
}

/** A check run as GitHub returns it (`GET /repos/{owner}/{repo}/commits/{ref}/check-runs`), the fields Loom reads. */
interface GhCheckRun {
  id: number;
  name: string;
  status: string;
  conclusion: string | null;
  details_url?: string | null;
  output?: { title?: string | null; summary?: string | null; text?: string | null; annotations_count?: number };
  /** The app that made it: `github-actions` for an Actions job (the run's id is then the job's). */
  app?: { slug?: string } | null;
}

/** A check run annotation (`GET /repos/{owner}/{repo}/check-runs/{id}/annotations`), the fields Loom reads. */
interface GhAnnotation {
  path: string;
  start_line: number;
  end_line: number;
  annotation_level: string;
  title?: string | null;
  message: string;
}

/** A pull request review (`GET /repos/{owner}/{repo}/pulls/{n}/reviews`), the fields Loom reads. */
interface GhReview {
  id: number;
  user: GhUser | null;
  body: string | null;
  state: string;
  submitted_at?: string | null;
  /** The PR's head commit when the review was submitted. */
  commit_id?: string | null;
}

/** A review comment on a diff line (`GET /repos/{owner}/{repo}/pulls/{n}/comments`), the fields Loom reads. */
interface GhReviewComment {
  pull_request_review_id: number | null;
  path: string;
  line?: number | null;
  original_line?: number | null;
  body: string;
}

const REVIEW_STATES: Record<string, HumanReview['state']> = { APPROVED: 'approved', CHANGES_REQUESTED: 'changes_requested', COMMENTED: 'commented', DISMISSED: 'dismissed', PENDING: 'pending' };

/** A commit status (`GET /repos/{owner}/{repo}/commits/{ref}/status`, `statuses[]`), the fields Loom reads. */
interface GhStatus {
  context: string;
  state: string;
  description?: string | null;
  target_url?: string | null;
}
