/**
 * `GitHubTracker`: the `Tracker` port on a GitHub repository through the REST API (Octokit).
 *
 * Invariants owned here (the HTTP policies — conditional requests, rate limits, retries, typed
 * errors — are `GitHubTransport`'s, the claim protocol is described in ./github-claim.ts):
 * - An idle poll costs no rate limit. Every poll-path GET (`snapshot`, `getIssue`, lists, events,
 *   comments) is conditional. A snapshot starts with one probe of the most recently updated
 *   items; a 304 there means the open-issue pages cached by the last snapshot still hold. The
 *   pulls list (for head/base) is only read when a `loom:*` pull request in the issues list
 *   changed since the last snapshot.
 * - Label changes go through `applyLabelChange` and are written as the whole resulting set in ONE
 *   `PUT /issues/{n}/labels`, so a state or verdict label replaces the others of its group in the
 *   same operation. No-op changes send nothing (and so create no events).
 * - What the next process needs (cache, circuit breaker, last snapshot's pulls, our login) is
 *   saved on `dispose` in the cache file, and read back by the constructor.
 * - Trust (PRODUCT.md §11) is `GitHubTrust`'s rule over the issue's events.
 */

import { ISSUE_STATE_LABELS, LABEL_INFO, Label, PR_VERDICT_LABELS, applyLabelChange, issueState, validateLabelName } from '../../core/labels.js';
import { NotFoundError, type Comment, type Issue, type IssueFilter, type ItemState, type NewIssue, type NewPullRequest, type PullRequest, type TrackerEvent, type TrackerSnapshot } from '../../core/tracker-model.js';
import type { Tracker, TrackerBudget, TrackerHealth } from '../tracker.js';
import { MergeRejectedError, TrackerError, TrackerUnavailableError } from '../tracker-errors.js';
import { GitHubCacheFile } from './github-cache-file.js';
import { claimVerdict, interruptedClaim, ourRemoval } from './github-claim.js';
import { GitHubTransport, SERVICE, isGone, listUrl, messageOf, statusOf, type RateLimitState } from './github-transport.js';
import { GitHubTrust } from './github-trust.js';
import { isPull, isWellFormed, labelNames, pullState, toComment, toEvent, toIssue, toPullRequest, withClosesLine, type GhComment, type GhEvent, type GhIssue, type GhLabel, type GhPull, type GhUser } from './github-wire.js';

export interface GitHubTrackerOptions {
  owner: string;
  repo: string;
  token: string;
  /** REST API root; defaults to https://api.github.com. */
  baseUrl?: string;
  /** Our login, used to verify claims; looked up with `GET /user` when absent. */
  actor?: string;
  fetch?: typeof fetch;
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
}

/** Below this fraction of the rate limit left, `health` asks to slow down. */
const SLOW_DOWN_FRACTION = 0.1;
/** Labels a closed or merged item no longer carries. */
const WORKFLOW_LABELS: readonly string[] = [...ISSUE_STATE_LABELS, ...PR_VERDICT_LABELS];

/** Items in the snapshot's change probe: every item updated in the latest second shows, up to this many. */
const PROBE_SIZE = 100;
/** How many times a non-idempotent write (the claim's label removal) is sent again after a 5xx or a lost answer. */
const WRITE_RETRIES = 3;
/** The snapshot reads the open-issue listing itself at least this often, probe or not, ms. */
const FULL_LISTING_INTERVAL_MS = 10 * 60_000;

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
  /** When the snapshot last read the open-issue listing (not the probe's cached copy), epoch ms. */
  private listedAt: number | null = null;
  private actor: string | null | undefined;
  private disposed = false;
  private readonly cacheFile: GitHubCacheFile | undefined;

  constructor(options: GitHubTrackerOptions) {
    this.cacheFile = options.cacheFile === undefined ? undefined : new GitHubCacheFile(options.cacheFile);
    const saved = this.cacheFile?.read() ?? null;
    if (saved !== null) {
      this.snapshotPulls = new Map(saved.pulls);
      this.listedAt = typeof saved.listedAt === 'number' ? saved.listedAt : null;
    }
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
      ...(options.fetch === undefined ? {} : { fetch: options.fetch }),
      now: this.now,
      ...(options.retryDelayMs === undefined ? {} : { retryDelayMs: options.retryDelayMs }),
      ...(saved === null ? {} : { restored: { entries: saved.entries, openUntil: saved.openUntil } }),
    });
    this.trust = new GitHubTrust(this.transport, options.trust?.allow ?? []);
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
    const listing = { state: 'open', per_page: 100 };
    // One conditional probe first: the most recently updated issues and PRs, open or closed. Any
    // change Loom cares about (labels, open/closed, a new issue, a push to a PR) bumps an item's
    // updated_at, which changes this page; a 304 means the open-issue pages cached by the last
    // snapshot still hold, so an idle poll is one request at no rate-limit cost, however long the
    // backlog. The probe's ETag is kept only once the listing it vouches for has been read.
    const probeUrl = listUrl(t.repoPath('/issues'), { state: 'all', sort: 'updated', direction: 'desc', per_page: PROBE_SIZE });
    const probe = await t.send<GhIssue[]>('GET', probeUrl, undefined, undefined, true);
    // Timestamps have one-second resolution: more than PROBE_SIZE items changed within one second
    // could hide a change from the probe, so the listing itself is read again every so often anyway
    // (conditionally: unchanged pages still cost nothing).
    const due = this.listedAt === null || this.now() - this.listedAt >= FULL_LISTING_INTERVAL_MS;
    const cached = probe.status === 304 && !due ? await t.cachedPages<GhIssue>(t.repoPath('/issues'), listing) : null;
    let fetched: GhIssue[];
    if (cached !== null) fetched = cached;
    else {
      const vouch = t.forget(probeUrl);
      const startedAt = this.now();
      fetched = await t.getAll<GhIssue>(t.repoPath('/issues'), listing);
      if (vouch !== undefined) t.remember(probeUrl, vouch);
      this.listedAt = startedAt;
    }
    // Pages are separate reads: an issue created meanwhile shifts the pages, so dedupe by number.
    const warnings: string[] = [];
    const items = uniqueByNumber(fetched).filter((item) => {
      if (isWellFormed(item)) return true;
      warnings.push(`GitHub returned a malformed record${typeof (item as { number?: unknown }).number === 'number' ? ` for #${String((item as { number: number }).number)}` : ''}; skipped it this time`);
      return false;
    });
    const loom = items.filter((i) => i.state === 'open' && labelNames(i.labels).some((l) => l.startsWith('loom:')));
    const issues = loom.filter((i) => !isPull(i)).map(toIssue);
    const loomPulls = loom.filter(isPull);
    const pullRequests: PullRequest[] = [];
    // Head and base come from the pulls API. When every loom PR is unchanged since the last
    // snapshot (same updated_at in the issues list), the pulls we kept are current: no request.
    const fresh = loomPulls.every((i) => this.snapshotPulls.get(i.number)?.updated_at === i.updated_at);
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
      pullRequests.push(toPullRequest(pull));
    }
    this.snapshotPulls = kept;
    issues.sort(byNumberAsc);
    pullRequests.sort(byNumberAsc);
    return { issues, pullRequests, ...(warnings.length > 0 ? { warnings } : {}) };
  }

  async getIssue(number: number): Promise<Issue | null> {
    const item = await this.fetchIssue(number, true);
    return item === null || isPull(item) ? null : toIssue(item);
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
    const item = await this.fetchIssue(number, false);
    if (item === null || isPull(item) || item.state !== 'open' || !labelNames(item.labels).includes(Label.issue)) return false;
    if (!(await this.removeReadyLabel(number))) return false;
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

  async close(number: number, comment?: string): Promise<void> {
    const item = await this.requireItem(number);
    if (comment !== undefined) await this.comment(number, comment);
    const current = labelNames(item.labels);
    const next = applyLabelChange(current, [], WORKFLOW_LABELS);
    if (item.state === 'open') {
      const body: Record<string, unknown> = { state: 'closed' };
      if (!sameSet(current, next)) body.labels = next;
      await this.transport.send('PATCH', this.transport.repoPath(`/issues/${number}`), body, number);
    } else {
      await this.writeLabels(number, current, next);
    }
  }

  async reopen(number: number): Promise<void> {
    const item = await this.requireItem(number);
    if (isPull(item) && item.pull_request?.merged_at != null) {
      throw new Error(`#${number} is a merged pull request and cannot be reopened`);
    }
    if (item.state === 'closed') await this.transport.send('PATCH', this.transport.repoPath(`/issues/${number}`), { state: 'open' }, number);
  }

  async getPullRequest(number: number): Promise<PullRequest | null> {
    const pull = await this.fetchPull(number);
    return pull === null ? null : toPullRequest(pull);
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
    await this.transport.send('POST', this.transport.repoPath(`/issues/${number}/labels`), { labels });
    const pull = await this.fetchPull(number);
    if (pull === null) throw new NotFoundError(number);
    return toPullRequest(pull);
  }

  /**
   * On GitHub this merges: `PUT /pulls/{n}/merge` pinned to the head sha we read. Each request is
   * sent once, without the transport's backoff: the merge must follow the caller's last look at
   * the issue closely, so a 5xx is handed back (retryable) for the caller to look again first.
   */
  async markMerged(number: number): Promise<void> {
    const pull = await this.fetchPull(number, false, true);
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
    return this.trust.isTrusted(await this.listEvents(number));
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
    if (this.cacheFile !== undefined && !this.disposed) {
      const { entries, openUntil } = this.transport.persisted();
      this.cacheFile.write({ entries, openUntil, pulls: [...this.snapshotPulls.entries()], actor: this.actor ?? null, listedAt: this.listedAt });
    }
    this.disposed = true;
    this.transport.dispose();
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

  /** The issue (or PR, as an issue) or null if absent; a conditional GET when `conditional`. */
  private async fetchIssue(number: number, conditional: boolean): Promise<GhIssue | null> {
    try {
      return (await this.transport.send<GhIssue>('GET', this.transport.repoPath(`/issues/${number}`), undefined, undefined, conditional)).data;
    } catch (error) {
      if (isGone(error)) return null;
      throw error;
    }
  }

  private async requireItem(number: number): Promise<GhIssue> {
    const item = await this.fetchIssue(number, false);
    if (item === null) throw new NotFoundError(number);
    return item;
  }

  private async fetchPull(number: number, conditional = true, once = false): Promise<GhPull | null> {
    const url = this.transport.repoPath(`/pulls/${number}`);
    try {
      return (once ? await this.transport.sendOnce<GhPull>('GET', url) : await this.transport.send<GhPull>('GET', url, undefined, undefined, conditional)).data;
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
   * removal is the first since the latest approval (the timeline says). True when ours.
   */
  private async removeReadyLabel(number: number): Promise<boolean> {
    const url = this.transport.repoPath(`/issues/${number}/labels/${encodeURIComponent(Label.issue)}`);
    let failure: unknown = null;
    for (let attempt = 0; attempt <= WRITE_RETRIES; attempt++) {
      if (attempt > 0) await sleep(this.retryDelayMs * 2 ** (attempt - 1));
      try {
        await this.transport.sendOnce('DELETE', url);
        return true;
      } catch (error) {
        if (statusOf(error) === 404) return failure === null ? false : this.removedByUs(number);
        if (!(error instanceof TrackerUnavailableError)) throw error;
        failure = error;
      }
      const now = await this.fetchIssue(number, false);
      if (now === null || now.state !== 'open') return false;
      if (!labelNames(now.labels).includes(Label.issue)) return this.removedByUs(number);
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
