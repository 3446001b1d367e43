/**
 * `GitHubTracker`: the `Tracker` port on a GitHub repository through the REST API (Octokit).
 *
 * Invariants owned here:
 * - An idle poll costs no rate limit. Every poll-path GET (`snapshot`, `getIssue`, lists, events,
 *   comments) is conditional: the ETag and body of each URL are kept in memory and sent back as
 *   `If-None-Match`; GitHub answers `304 Not Modified` without charging a rate-limit point, and the
 *   cached body is served. The pulls list (for head/base) is only read when a `loom:*` pull request
 *   in the issues list changed since the last snapshot, so an idle poll costs one conditional
 *   request per page of open issues (one page per 100).
 * - Label changes go through `applyLabelChange` and are written as the whole resulting set in ONE
 *   `PUT /issues/{n}/labels`, so a state or verdict label replaces the others of its group in the
 *   same operation. No-op changes send nothing (and so create no events).
 * - Rate limits are honoured: `x-ratelimit-*` headers are tracked from every response; a 403/429
 *   with `retry-after`, or an exhausted budget, opens a circuit breaker until the reset, during
 *   which every call rejects fast with `RateLimitedError` and nothing is sent. 5xx answers are
 *   retried with backoff (3 retries), then `TrackerUnavailableError`; 401 is `TrackerAuthError`.
 *
 * Claim. GitHub has no compare-and-swap on labels. `claim` uses the closest thing it has: after
 * checking the issue is open and `loom:issue`, it DELETEs the `loom:issue` label. GitHub answers
 * 404 ("Label does not exist") when the label is no longer there, so of concurrent claimers only
 * the first removal succeeds; the others return false having changed nothing. The winner then adds
 * `loom:building` and re-reads the issue events to verify: the first `labeled loom:building` after
 * the latest `labeled loom:issue` must be by our actor, and only one `unlabeled loom:issue` may
 * follow that approval. If another actor won, we return false and leave its claim alone; if two
 * removals by the same actor (one token shared by several processes) both succeeded, neither can
 * tell which is its own, so both return false and put `loom:issue` back for a later tick.
 * Remaining race: GitHub does not document the label DELETE as linearizable. Two removals that it
 * lets both succeed for one token are detected only if both verifications see both events; a
 * verification that runs before the other claimer's events are visible can still return true, and
 * a human re-approving (`labeled loom:issue`) in the middle of a claim resets the verification
 * window. Crash recovery (PRODUCT.md §4) is the backstop for an orphaned `loom:building`.
 *
 * Trust (PRODUCT.md §11): `isTrusted(n)` holds only when whoever most recently applied
 * `loom:issue` has write access (admin/maintain/write) or is in `trust.allow`.
 */

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { writeFileAtomic } from '../fs/atomic-file.js';
import type { Octokit } from '@octokit/rest';
import { ISSUE_STATE_LABELS, LABEL_INFO, Label, PR_VERDICT_LABELS, applyLabelChange, validateLabelName } from '../core/labels.js';
import type { Tracker, TrackerBudget, TrackerHealth } from './tracker.js';
import { MergeRejectedError, RateLimitedError, TrackerAuthError, TrackerError, TrackerUnavailableError } from './tracker-errors.js';
import { NotFoundError, type Comment, type Issue, type IssueFilter, type ItemState, type NewIssue, type NewPullRequest, type PullRequest, type TrackerEvent, type TrackerSnapshot } from '../core/tracker-model.js';

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

interface PersistedCache {
  entries: [string, CachedResponse][];
  openUntil: number | null;
  pulls: [number, GhPull][];
  actor: string | null;
  /** When the snapshot last read the open-issue listing itself (epoch ms); absent in older files. */
  listedAt?: number | null;
}

export interface RateLimitState {
  remaining: number | null;
  limit: number | null;
  /** Epoch milliseconds when the budget resets, if known. */
  resetAt: number | null;
  used: number | null;
}

/** Any other unexpected GitHub answer (403 without rate limiting, 422 validation, ...). */
export class GitHubApiError extends TrackerError {
  constructor(
    status: number,
    readonly detail: string,
  ) {
    super('github_api_error', `GitHub answered ${status}: ${detail}`, { status });
  }
}

/** How the adapter names the service in its errors. */
const SERVICE = 'GitHub';
/** Labels a closed or merged item no longer carries. */
const WORKFLOW_LABELS: readonly string[] = [...ISSUE_STATE_LABELS, ...PR_VERDICT_LABELS];
const WRITE_PERMISSIONS = new Set(['admin', 'maintain', 'write']);
const MAX_RETRIES = 3;
/** Bound on remembered ETags (one per URL); the oldest are forgotten first. */
const MAX_CACHED_URLS = 2_000;

/** Below this fraction of the rate limit left, `health` asks to slow down. */
export const SLOW_DOWN_FRACTION = 0.1;

/** Items in the snapshot's change probe: every item updated in the latest second shows, up to this many. */
const PROBE_SIZE = 100;
/** The snapshot reads the open-issue listing itself at least this often, probe or not, ms. */
const FULL_LISTING_INTERVAL_MS = 10 * 60_000;

/** `path?query` for a listing's parameters (in the order given). */
function listUrl(path: string, params: Record<string, string | number>): string {
  const query = new URLSearchParams(Object.entries(params).map(([k, v]): [string, string] => [k, String(v)])).toString();
  return query === '' ? path : `${path}?${query}`;
}

type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

interface Response<T> {
  status: number;
  data: T;
  headers: Record<string, string | number | undefined>;
}

/** One page of a listing and its `link` header. */
interface Page<T> {
  data: T[];
  link: unknown;
}

interface CachedResponse {
  etag: string;
  data: unknown;
  link: string | undefined;
}

interface GhUser {
  login: string;
}

interface GhLabel {
  name: string;
  color?: string;
  description?: string | null;
}

interface GhIssue {
  number: number;
  title: string;
  body?: string | null;
  state: string;
  labels: Array<GhLabel | string>;
  user: GhUser | null;
  created_at: string;
  updated_at: string;
  pull_request?: { merged_at?: string | null } | null;
}

interface GhPull {
  number: number;
  title: string;
  body?: string | null;
  state: string;
  labels: Array<GhLabel | string>;
  head: { ref: string; sha: string };
  base: { ref: string; sha: string };
  merged_at?: string | null;
  created_at: string;
  updated_at: string;
}

interface GhComment {
  id: number;
  body?: string | null;
  user: GhUser | null;
  created_at: string;
}

interface GhEvent {
  id: number;
  event: string;
  actor: GhUser | null;
  label?: { name: string } | null;
  created_at: string;
}

export class GitHubTracker implements Tracker {
  readonly kind = 'github' as const;
  readonly owner: string;
  readonly repo: string;
  /** Requests actually sent (retries included; fast rejections by the open circuit excluded). */
  requests = 0;
  /** Conditional requests answered 304 (served from the cache at no rate-limit cost). */
  conditionalHits = 0;

  /** Octokit, loaded on the first request: a Loom process on the local tracker never pays for loading it. */
  private octokit: Promise<Octokit> | null = null;
  private readonly octokitOptions: NonNullable<ConstructorParameters<typeof Octokit>[0]>;
  private readonly now: () => number;
  private readonly retryDelayMs: number;
  private readonly trustAllow: ReadonlySet<string>;
  private readonly cache = new Map<string, CachedResponse>();
  private readonly permissions = new Map<string, boolean>();
  private limits: RateLimitState = { remaining: null, limit: null, resetAt: null, used: null };
  private openUntil: number | null = null;
  /** The loom PRs of the last snapshot, by number, as the pulls API returned them. */
  private snapshotPulls = new Map<number, GhPull>();
  /** When the snapshot last read the open-issue listing (not the probe's cached copy), epoch ms. */
  private listedAt: number | null = null;
  private actor: string | null | undefined;
  private disposed = false;
  private readonly cacheFile: string | undefined;

  constructor(options: GitHubTrackerOptions) {
    this.cacheFile = options.cacheFile;
    if (this.cacheFile !== undefined) {
      try {
        const saved = JSON.parse(fs.readFileSync(this.cacheFile, 'utf8')) as PersistedCache;
        for (const [url, entry] of saved.entries) this.cache.set(url, entry);
        this.openUntil = saved.openUntil;
        this.snapshotPulls = new Map(saved.pulls);
        this.listedAt = typeof saved.listedAt === 'number' ? saved.listedAt : null;
        if (options.actor === undefined && saved.actor) options = { ...options, actor: saved.actor };
      } catch {
        // no cache yet (or a torn one): start cold
      }
    }
    this.owner = options.owner;
    this.repo = options.repo;
    this.now = options.now ?? Date.now;
    this.retryDelayMs = options.retryDelayMs ?? 500;
    this.trustAllow = new Set(options.trust?.allow ?? []);
    this.actor = options.actor;
    this.octokitOptions = {
      auth: options.token,
      baseUrl: (options.baseUrl ?? 'https://api.github.com').replace(/\/+$/, ''),
      userAgent: 'loom-github-tracker',
      request: options.fetch === undefined ? {} : { fetch: options.fetch },
      log: { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} },
    };
  }

  private client(): Promise<Octokit> {
    this.octokit ??= import('@octokit/rest').then(({ Octokit: Client }) => new Client(this.octokitOptions));
    return this.octokit;
  }

  /** The last rate-limit state GitHub reported. */
  rateLimit(): RateLimitState {
    return { ...this.limits };
  }

  /** When the rate-limit circuit breaker is open, the epoch ms it closes; else null. */
  circuitOpenUntil(): number | null {
    if (this.openUntil !== null && this.now() >= this.openUntil) this.openUntil = null;
    return this.openUntil;
  }

  /**
   * Unavailable while the circuit breaker is open (restored from the cache file by a fresh
   * process), slow-down below `SLOW_DOWN_FRACTION` of the rate limit, else ok.
   */
  health(): TrackerHealth {
    const { remaining, limit } = this.limits;
    const low: TrackerBudget | null = remaining !== null && limit !== null && limit > 0 && remaining < limit * SLOW_DOWN_FRACTION ? { remaining, limit } : null;
    const until = this.circuitOpenUntil();
    if (until !== null) return { state: 'unavailable', until: new Date(until).toISOString(), lowBudget: low };
    return low === null ? { state: 'ok' } : { state: 'slow-down', ...low };
  }

  async snapshot(): Promise<TrackerSnapshot> {
    const listing = { state: 'open', per_page: 100 };
    // One conditional probe first: the most recently updated issues and PRs, open or closed. Any
    // change Loom cares about (labels, open/closed, a new issue, a push to a PR) bumps an item's
    // updated_at, which changes this page; a 304 means the open-issue pages cached by the last
    // snapshot still hold, so an idle poll is one request at no rate-limit cost, however long the
    // backlog. The probe's ETag is kept only once the listing it vouches for has been read.
    const probeUrl = listUrl(this.path('/issues'), { state: 'all', sort: 'updated', direction: 'desc', per_page: PROBE_SIZE });
    const probe = await this.send<GhIssue[]>('GET', probeUrl, undefined, undefined, true);
    // Timestamps have one-second resolution: more than PROBE_SIZE items changed within one second
    // could hide a change from the probe, so the listing itself is read again every so often anyway
    // (conditionally: unchanged pages still cost nothing).
    const due = this.listedAt === null || this.now() - this.listedAt >= FULL_LISTING_INTERVAL_MS;
    const cached = probe.status === 304 && !due ? await this.cachedPages<GhIssue>(this.path('/issues'), listing) : null;
    let fetched: GhIssue[];
    if (cached !== null) fetched = cached;
    else {
      const vouch = this.cache.get(probeUrl);
      this.cache.delete(probeUrl);
      const startedAt = this.now();
      fetched = await this.getAll<GhIssue>(this.path('/issues'), listing);
      if (vouch !== undefined) this.remember(probeUrl, vouch.etag, vouch.data, vouch.link);
      this.listedAt = startedAt;
    }
    // Pages are separate reads: an issue created meanwhile shifts the pages, so dedupe by number.
    const items = uniqueByNumber(fetched);
    const loom = items.filter((i) => i.state === 'open' && labelNames(i.labels).some((l) => l.startsWith('loom:')));
    const issues = loom.filter((i) => !isPull(i)).map(toIssue);
    const loomPulls = loom.filter(isPull);
    const pullRequests: PullRequest[] = [];
    // Head and base come from the pulls API. When every loom PR is unchanged since the last
    // snapshot (same updated_at in the issues list), the pulls we kept are current: no request.
    const fresh = loomPulls.every((i) => this.snapshotPulls.get(i.number)?.updated_at === i.updated_at);
    let byNumber = this.snapshotPulls;
    if (!fresh) {
      const pulls = await this.getAll<GhPull>(this.path('/pulls'), { state: 'open', per_page: 100 });
      byNumber = new Map(pulls.map((p) => [p.number, p]));
    }
    const kept = new Map<number, GhPull>();
    for (const item of loomPulls) {
      const pull = byNumber.get(item.number) ?? (await this.fetchPull(item.number));
      if (pull === null || pull.state !== 'open') continue;
      kept.set(pull.number, pull);
      pullRequests.push(toPullRequest(pull));
    }
    this.snapshotPulls = kept;
    issues.sort(byNumberAsc);
    pullRequests.sort(byNumberAsc);
    return { issues, pullRequests };
  }

  async getIssue(number: number): Promise<Issue | null> {
    const item = await this.fetchIssue(number, true);
    return item === null || isPull(item) ? null : toIssue(item);
  }

  async listIssues(filter: IssueFilter = {}): Promise<Issue[]> {
    const wanted = [...new Set(filter.labels ?? [])];
    const params: Record<string, string | number> = { state: filter.state ?? 'open', per_page: 100 };
    if (wanted.length > 0) params.labels = wanted.join(',');
    const items = uniqueByNumber(await this.getAll<GhIssue>(this.path('/issues'), params));
    return items
      .filter((i) => !isPull(i))
      .map(toIssue)
      .filter((i) => wanted.every((l) => i.labels.includes(l)))
      .sort(byNumberAsc);
  }

  async createIssue(issue: NewIssue): Promise<Issue> {
    const labels = applyLabelChange([], checkLabelNames(issue.labels ?? []), []);
    const res = await this.send<GhIssue>('POST', this.path('/issues'), {
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
    try {
      await this.send('DELETE', this.path(`/issues/${number}/labels/${encodeURIComponent(Label.issue)}`));
    } catch (error) {
      if (statusOf(error) === 404) return false; // another claimer removed it first
      throw error;
    }
    const added = await this.send<GhLabel[]>('POST', this.path(`/issues/${number}/labels`), { labels: [Label.building] });
    // Anything else of the state group (a human's concurrent change) goes in one more write.
    const now = labelNames(added.data);
    const next = applyLabelChange(now, [Label.building], []);
    await this.writeLabels(number, now, next);

    const verdict = await this.verifyClaim(number);
    if (verdict === 'won') return true;
    if (verdict === 'ambiguous') {
      const latest = await this.requireItem(number);
      const labels = labelNames(latest.labels);
      await this.writeLabels(number, labels, applyLabelChange(labels, [Label.issue], []));
    }
    return false;
  }

  async comment(number: number, body: string): Promise<Comment> {
    const res = await this.send<GhComment>('POST', this.path(`/issues/${number}/comments`), { body }, number);
    return toComment(res.data);
  }

  async listComments(number: number): Promise<Comment[]> {
    const comments = await this.getAll<GhComment>(this.path(`/issues/${number}/comments`), { per_page: 100 }, number);
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
      await this.send('PATCH', this.path(`/issues/${number}`), body, number);
    } else {
      await this.writeLabels(number, current, next);
    }
  }

  async reopen(number: number): Promise<void> {
    const item = await this.requireItem(number);
    if (isPull(item) && item.pull_request?.merged_at != null) {
      throw new Error(`#${number} is a merged pull request and cannot be reopened`);
    }
    if (item.state === 'closed') await this.send('PATCH', this.path(`/issues/${number}`), { state: 'open' }, number);
  }

  async getPullRequest(number: number): Promise<PullRequest | null> {
    const pull = await this.fetchPull(number);
    return pull === null ? null : toPullRequest(pull);
  }

  async listPullRequests(filter: { state?: ItemState | 'all' } = {}): Promise<PullRequest[]> {
    const state = filter.state ?? 'open';
    const apiState = state === 'merged' ? 'closed' : state;
    const pulls = uniqueByNumber(await this.getAll<GhPull>(this.path('/pulls'), { state: apiState, per_page: 100 }));
    return pulls
      .map(toPullRequest)
      .filter((p) => state === 'all' || p.state === state)
      .sort(byNumberAsc);
  }

  async createPullRequest(pr: NewPullRequest): Promise<PullRequest> {
    if (pr.head.trim() === '' || pr.base.trim() === '') throw new Error('a pull request needs a head and a base branch');
    const labels = applyLabelChange([], checkLabelNames(pr.labels ?? []), []);
    const created = await this.send<GhPull>('POST', this.path('/pulls'), {
      title: requireTitle(pr.title),
      head: pr.head,
      base: pr.base,
      body: withClosesLine(pr.body ?? '', pr.closesIssue ?? null),
    });
    const number = created.data.number;
    if (labels.length === 0) return toPullRequest(created.data);
    await this.send('POST', this.path(`/issues/${number}/labels`), { labels });
    const pull = await this.fetchPull(number);
    if (pull === null) throw new NotFoundError(number);
    return toPullRequest(pull);
  }

  /** On GitHub this merges: `PUT /pulls/{n}/merge` pinned to the head sha we read. */
  async markMerged(number: number): Promise<void> {
    const pull = await this.fetchPull(number, false);
    if (pull === null) {
      if ((await this.fetchIssue(number, false)) !== null) {
        throw new Error(`#${number} is an issue, not a pull request; only pull requests merge`);
      }
      throw new NotFoundError(number);
    }
    const state = pullState(pull);
    if (state !== 'open') throw new Error(`pull request #${number} is ${state}; only an open pull request can be merged`);
    try {
      await this.send('PUT', this.path(`/pulls/${number}/merge`), { sha: pull.head.sha, merge_method: 'merge' });
    } catch (error) {
      const status = statusOf(error);
      if (status === 405 || status === 409) throw new MergeRejectedError({ service: SERVICE, number, status, detail: messageOf(error), retryable: status === 409 });
      throw error;
    }
    const current = labelNames(pull.labels);
    await this.writeLabels(number, current, applyLabelChange(current, [], WORKFLOW_LABELS));
  }

  async listEvents(number: number): Promise<TrackerEvent[]> {
    const events = await this.getAll<GhEvent>(this.path(`/issues/${number}/events`), { per_page: 100 }, number);
    const result: TrackerEvent[] = [];
    for (const e of events) {
      const type = toEventType(e.event);
      if (type === null) continue;
      result.push({
        id: e.id,
        type,
        label: type === 'labeled' || type === 'unlabeled' ? (e.label?.name ?? null) : null,
        actor: e.actor?.login ?? 'ghost',
        createdAt: e.created_at,
      });
    }
    return result.sort((a, b) => a.id - b.id);
  }

  /**
   * Whether the issue may be built: the actor who most recently applied `loom:issue` has write
   * access to the repository (or is allow-listed). Permissions are cached per user.
   */
  async isTrusted(number: number): Promise<boolean> {
    const events = await this.listEvents(number);
    const approval = events.filter((e) => e.type === 'labeled' && e.label === Label.issue).at(-1);
    if (approval === undefined) return false;
    const user = approval.actor;
    if (this.trustAllow.has(user)) return true;
    const known = this.permissions.get(user);
    if (known !== undefined) return known;
    let allowed = false;
    try {
      const res = await this.send<{ permission?: string; role_name?: string }>(
        'GET',
        this.path(`/collaborators/${encodeURIComponent(user)}/permission`),
      );
      allowed = WRITE_PERMISSIONS.has(res.data.permission ?? '') || WRITE_PERMISSIONS.has(res.data.role_name ?? '');
    } catch (error) {
      if (statusOf(error) !== 404) throw error;
    }
    this.permissions.set(user, allowed);
    return allowed;
  }

  /** Creates or updates every `loom:*` label (name, color, description); idempotent. */
  async ensureLabels(): Promise<{ created: string[]; updated: string[] }> {
    const existing = await this.getAll<GhLabel>(this.path('/labels'), { per_page: 100 });
    const byName = new Map(existing.map((l) => [l.name, l]));
    const created: string[] = [];
    const updated: string[] = [];
    for (const [name, info] of Object.entries(LABEL_INFO)) {
      const have = byName.get(name);
      if (have === undefined) {
        await this.send('POST', this.path('/labels'), { name, color: info.color, description: info.description });
        created.push(name);
      } else if (have.color?.toLowerCase() !== info.color.toLowerCase() || (have.description ?? '') !== info.description) {
        await this.send('PATCH', this.path(`/labels/${encodeURIComponent(name)}`), {
          new_name: name,
          color: info.color,
          description: info.description,
        });
        updated.push(name);
      }
    }
    return { created, updated };
  }

  dispose(): void {
    if (this.cacheFile !== undefined && !this.disposed) {
      const saved: PersistedCache = { entries: [...this.cache.entries()], openUntil: this.openUntil, pulls: [...this.snapshotPulls.entries()], actor: this.actor ?? null, listedAt: this.listedAt };
      try {
        writeFileAtomic(this.cacheFile, JSON.stringify(saved));
      } catch {
        // a lost cache costs one unconditional poll, nothing more
      }
    }
    this.disposed = true;
    this.cache.clear();
  }

  // --- claim verification -------------------------------------------------------------------

  private async verifyClaim(number: number): Promise<'won' | 'lost' | 'ambiguous'> {
    const me = await this.login();
    const events = await this.listEvents(number);
    const approvedAt = events.findLastIndex((e) => e.type === 'labeled' && e.label === Label.issue);
    const since = events.slice(approvedAt + 1);
    const firstBuilding = since.find((e) => e.type === 'labeled' && e.label === Label.building);
    if (firstBuilding !== undefined && me !== null && firstBuilding.actor !== me) return 'lost';
    const removals = since.filter((e) => e.type === 'unlabeled' && e.label === Label.issue);
    if (removals.length > 1 && (me === null || removals.every((e) => e.actor === me))) return 'ambiguous';
    if (removals.length > 1) return removals[0]?.actor === me ? 'won' : 'lost';
    return 'won';
  }

  /** Our login: the configured actor, else `GET /user` once (null if the token cannot tell). */
  private async login(): Promise<string | null> {
    if (this.actor !== undefined) return this.actor;
    try {
      this.actor = (await this.send<GhUser>('GET', '/user')).data.login;
    } catch (error) {
      if (error instanceof TrackerError && error.retryable) throw error;
      this.actor = null;
    }
    return this.actor;
  }

  // --- reads ----------------------------------------------------------------------------------

  private path(suffix: string): string {
    return `/repos/${encodeURIComponent(this.owner)}/${encodeURIComponent(this.repo)}${suffix}`;
  }

  /** The issue (or PR, as an issue) or null if absent; a conditional GET when `conditional`. */
  private async fetchIssue(number: number, conditional: boolean): Promise<GhIssue | null> {
    try {
      return (await this.send<GhIssue>('GET', this.path(`/issues/${number}`), undefined, undefined, conditional)).data;
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

  private async fetchPull(number: number, conditional = true): Promise<GhPull | null> {
    try {
      return (await this.send<GhPull>('GET', this.path(`/pulls/${number}`), undefined, undefined, conditional)).data;
    } catch (error) {
      if (isGone(error)) return null;
      throw error;
    }
  }

  /** Every page of a list, following `link: rel="next"`; each page is a conditional GET. */
  /** Every page of a listing, following the `link` headers, each read by `read`; null when `read` has no page. */
  private async pages<T>(path: string, params: Record<string, string | number>, read: (url: string) => Page<T> | null | Promise<Page<T> | null>): Promise<T[] | null> {
    let url: string | null = listUrl(path, params);
    const all: T[] = [];
    const seen = new Set<string>();
    while (url !== null && !seen.has(url)) {
      seen.add(url);
      const page = await read(url);
      if (page === null) return null;
      all.push(...page.data);
      url = nextLink(page.link);
    }
    return all;
  }

  /** A listing's pages as the cache holds them from the last full read, without a request; null when a page is missing. */
  private cachedPages<T>(path: string, params: Record<string, string | number>): Promise<T[] | null> {
    return this.pages<T>(path, params, (url) => {
      const entry = this.cache.get(url);
      if (entry === undefined || !Array.isArray(entry.data)) return null;
      this.remember(url, entry.etag, entry.data, entry.link); // recently used: not the next evicted
      return { data: entry.data as T[], link: entry.link };
    });
  }

  /** A listing's pages from the API, each a conditional GET. */
  private async getAll<T>(path: string, params: Record<string, string | number>, item?: number): Promise<T[]> {
    const all = await this.pages<T>(path, params, async (url) => {
      const res: Response<T[]> = await this.send<T[]>('GET', url, undefined, item, true);
      return { data: res.data, link: res.headers.link };
    });
    return all ?? [];
  }

  private async writeLabels(number: number, current: readonly string[], next: string[]): Promise<void> {
    if (sameSet(current, next)) return;
    await this.send('PUT', this.path(`/issues/${number}/labels`), { labels: next }, number);
  }

  // --- transport ------------------------------------------------------------------------------

  /**
   * One API call with the adapter's policies: circuit breaker, conditional cache, rate-limit
   * tracking, 5xx retries and typed errors. `item` turns a 404 into `NotFoundError`.
   */
  private async send<T = unknown>(
    method: Method,
    url: string,
    body?: Record<string, unknown>,
    item?: number,
    conditional = false,
  ): Promise<Response<T>> {
    if (this.disposed) throw new Error(`the GitHub tracker for ${this.owner}/${this.repo} has been disposed`);
    const cached = conditional ? this.cache.get(url) : undefined;
    for (let attempt = 0; ; attempt++) {
      const until = this.circuitOpenUntil();
      if (until !== null) throw new RateLimitedError({ service: SERVICE, until });
      const headers: Record<string, string> = {};
      if (cached !== undefined) headers['if-none-match'] = cached.etag;
      this.requests++;
      try {
        const res = await (await this.client()).request({ method, url, headers, ...(body === undefined ? {} : { data: body }) });
        this.track(res.headers);
        if (conditional && typeof res.headers.etag === 'string') this.remember(url, res.headers.etag, res.data, res.headers.link);
        return { status: res.status, data: res.data as T, headers: res.headers };
      } catch (error) {
        const status = statusOf(error);
        const resHeaders = headersOf(error);
        if (resHeaders !== undefined) this.track(resHeaders);
        if (status === 304 && cached !== undefined) {
          this.conditionalHits++;
          this.remember(url, cached.etag, cached.data, cached.link);
          return { status: 304, data: cached.data as T, headers: { ...resHeaders, link: cached.link } };
        }
        if (status === 401) throw new TrackerAuthError({ service: SERVICE, status, detail: messageOf(error), hint: 'check GITHUB_TOKEN' });
        if (status === 403 || status === 429) {
          const limited = this.rateLimitedUntil(status, resHeaders, messageOf(error));
          if (limited !== null) {
            this.openUntil = limited;
            throw new RateLimitedError({ service: SERVICE, until: limited, status });
          }
        }
        if (status !== null && status >= 500) {
          if (attempt < MAX_RETRIES) {
            await sleep(this.retryDelayMs * 2 ** attempt);
            continue;
          }
          throw new TrackerUnavailableError({ service: SERVICE, status, detail: messageOf(error) });
        }
        if ((status === 404 || status === 410) && item !== undefined) throw new NotFoundError(item);
        if (status !== null) throw new GitHubApiError(status, messageOf(error));
        throw error;
      }
    }
  }

  /** When a 403/429 is a rate limit, the epoch ms it lifts; null for a plain permission 403. */
  private rateLimitedUntil(status: number, headers: Record<string, unknown> | undefined, detail: string): number | null {
    const retryAfter = Number(headers?.['retry-after']);
    if (headers?.['retry-after'] !== undefined && Number.isFinite(retryAfter)) return this.now() + retryAfter * 1000;
    const reset = Number(headers?.['x-ratelimit-reset']);
    if (Number(headers?.['x-ratelimit-remaining']) === 0 && Number.isFinite(reset) && reset * 1000 > this.now()) {
      return reset * 1000; // primary limit: wait for the window to reset
    }
    // Secondary limits without retry-after: GitHub asks to wait at least a minute.
    if (status === 429 || /rate limit|abuse/i.test(detail)) return this.now() + 60_000;
    return null;
  }

  private track(headers: Record<string, unknown>): void {
    const num = (name: string): number | null => {
      const value = headers[name];
      if (value === undefined || value === null || value === '') return null;
      const n = Number(value);
      return Number.isFinite(n) ? n : null;
    };
    const remaining = num('x-ratelimit-remaining');
    if (remaining === null) return;
    const reset = num('x-ratelimit-reset');
    this.limits = {
      remaining,
      limit: num('x-ratelimit-limit'),
      resetAt: reset === null ? null : reset * 1000,
      used: num('x-ratelimit-used'),
    };
    // An exhausted budget opens the circuit proactively: the next call would be refused anyway.
    if (remaining === 0 && reset !== null && reset * 1000 > this.now()) this.openUntil = reset * 1000;
  }

  private remember(url: string, etag: string, data: unknown, link: unknown): void {
    this.cache.delete(url);
    this.cache.set(url, { etag, data, link: typeof link === 'string' ? link : undefined });
    if (this.cache.size > MAX_CACHED_URLS) {
      const oldest = this.cache.keys().next();
      if (oldest.done !== true) this.cache.delete(oldest.value);
    }
  }
}

/**
 * The GitHub token from the environment: `GITHUB_TOKEN`, `GH_TOKEN`, else what `gh auth token`
 * prints (failures of `gh` are ignored). Null when there is none.
 */
export function githubToken(env: NodeJS.ProcessEnv = process.env): string | null {
  for (const name of ['GITHUB_TOKEN', 'GH_TOKEN']) {
    const value = env[name]?.trim();
    if (value !== undefined && value !== '') return value;
  }
  try {
    const result = spawnSync('gh', ['auth', 'token'], { encoding: 'utf8', timeout: 10_000, env, stdio: ['ignore', 'pipe', 'ignore'] });
    const token = result.status === 0 ? result.stdout.trim() : '';
    return token === '' ? null : token;
  } catch {
    return null;
  }
}

// --- mapping ----------------------------------------------------------------------------------

function isPull(item: GhIssue): boolean {
  return item.pull_request !== undefined && item.pull_request !== null;
}

function labelNames(labels: ReadonlyArray<GhLabel | string>): string[] {
  return labels.map((l) => (typeof l === 'string' ? l : l.name)).sort();
}

function toIssue(item: GhIssue): Issue {
  return {
    number: item.number,
    title: item.title,
    body: item.body ?? '',
    state: item.state === 'closed' ? 'closed' : 'open',
    labels: labelNames(item.labels),
    author: item.user?.login ?? 'ghost',
    createdAt: item.created_at,
    updatedAt: item.updated_at,
  };
}

function pullState(pull: GhPull): ItemState {
  if (pull.merged_at != null) return 'merged';
  return pull.state === 'closed' ? 'closed' : 'open';
}

function toPullRequest(pull: GhPull): PullRequest {
  const body = pull.body ?? '';
  return {
    number: pull.number,
    title: pull.title,
    body,
    state: pullState(pull),
    labels: labelNames(pull.labels),
    head: pull.head.ref,
    base: pull.base.ref,
    closesIssue: closesIssueOf(body),
    createdAt: pull.created_at,
    updatedAt: pull.updated_at,
  };
}

function toComment(comment: GhComment): Comment {
  return { id: comment.id, author: comment.user?.login ?? 'ghost', body: comment.body ?? '', createdAt: comment.created_at };
}

function toEventType(event: string): TrackerEvent['type'] | null {
  switch (event) {
    case 'labeled':
    case 'unlabeled':
    case 'closed':
    case 'reopened':
    case 'merged':
      return event;
    default:
      return null;
  }
}

const CLOSING_KEYWORD = /\b(?:close[sd]?|fix(?:e[sd])?|resolve[sd]?)\s+#(\d+)\b/i;

/** The issue a PR body closes with a GitHub closing keyword (`Closes #N`), if any. */
export function closesIssueOf(body: string): number | null {
  const match = CLOSING_KEYWORD.exec(body);
  return match?.[1] === undefined ? null : Number(match[1]);
}

function withClosesLine(body: string, closes: number | null): string {
  if (closes === null || closesIssueOf(body) === closes) return body;
  return body === '' ? `Closes #${closes}` : `${body}\n\nCloses #${closes}`;
}

// --- helpers ----------------------------------------------------------------------------------

function uniqueByNumber<T extends { number: number }>(items: T[]): T[] {
  return [...new Map(items.map((i) => [i.number, i])).values()];
}

function byNumberAsc(a: { number: number }, b: { number: number }): number {
  return a.number - b.number;
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x) => b.includes(x));
}

function nextLink(link: unknown): string | null {
  if (typeof link !== 'string') return null;
  const match = /<([^>]+)>;\s*rel="next"/.exec(link);
  return match?.[1] ?? null;
}

function statusOf(error: unknown): number | null {
  const status = typeof error === 'object' && error !== null ? (error as { status?: unknown }).status : undefined;
  return typeof status === 'number' ? status : null;
}

function headersOf(error: unknown): Record<string, string | number | undefined> | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const response = (error as { response?: { headers?: Record<string, string | number | undefined> } }).response;
  return response?.headers;
}

function messageOf(error: unknown): string {
  if (error instanceof GitHubApiError) return error.detail;
  if (typeof error === 'object' && error !== null) {
    const data = (error as { response?: { data?: unknown } }).response?.data;
    if (typeof data === 'object' && data !== null && typeof (data as { message?: unknown }).message === 'string') {
      return (data as { message: string }).message;
    }
  }
  return error instanceof Error ? error.message : String(error);
}

function isGone(error: unknown): boolean {
  const status = statusOf(error);
  return status === 404 || status === 410;
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

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
