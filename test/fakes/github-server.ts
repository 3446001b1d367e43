/**
 * A fake GitHub REST API for tests of the GitHub tracker: one repository with issues, pull
 * requests, labels, comments and issue events in memory, served over node:http on 127.0.0.1.
 *
 * Invariant owned here: it answers like GitHub where the tracker depends on it — real paths and
 * status codes, bodies shaped like the @octokit/fixtures recordings (issue/PR/label/comment/event
 * objects with `user`/`actor` objects, `pull_request` key on PRs in the issues API, `body: null`
 * for an empty body, second-resolution timestamps), a content ETag on every GET and `304` on a
 * matching `If-None-Match` WITHOUT spending rate limit, `link` pagination (`per_page` default 30,
 * max 100; links point at `/repositories/{id}/...` as GitHub's do), `x-ratelimit-*` headers
 * decremented per non-304 request and a 403 "API rate limit exceeded" once exhausted, 404 "Label
 * does not exist" when deleting a label an issue lacks, 405/409 on merge. Failure switches make it
 * answer 401 / 403 with retry-after / 429 / 5xx; `beforeAnswer` sees every request after its effect
 * and before its answer. A second open PR for the same head and base is refused (422). With `gitDir` (a bare repository), a merge
 * really merges the head branch into the base branch (`git merge-tree --write-tree`, `commit-tree`,
 * `update-ref`) and reports the merge sha. Issue dependencies (`…/dependencies/blocked_by`) and
 * sub-issues (`…/sub_issues`) are listed as issue objects and summed up on each issue
 * (`issue_dependencies_summary`, `sub_issues_summary`). Every request is logged.
 */
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export type Permission = 'admin' | 'maintain' | 'write' | 'triage' | 'read' | 'none';

export interface FakeGitHubOptions {
  owner?: string;
  repo?: string;
  /** token → login. A request with any other token gets 401 "Bad credentials". */
  tokens?: Record<string, string>;
  /** login → permission on the repository (default 'none'; the owner is 'admin'). */
  permissions?: Record<string, Permission>;
  /** Rate-limit budget per reset window (default 5000). */
  rateLimit?: number;
  /** A bare git repository: merges really happen there. */
  gitDir?: string;
  /** Clock in epoch ms (timestamps, rate-limit reset). */
  now?: () => number;
  /**
   * The repository's default branch (default `main`). As on GitHub, merging a PR into it closes
   * the issues its description names with a closing keyword (`Closes #N`); into another branch
   * the keywords do nothing.
   */
  defaultBranch?: string;
}

export interface LoggedRequest {
  method: string;
  /** Path and query as sent. */
  path: string;
  status: number;
  /** The request carried `If-None-Match`. */
  conditional: boolean;
  login: string | null;
  /** A GraphQL request's operation name (`LoomMergeLook`, `LoomCloseMerged`). */
  operation?: string;
}

/** A scripted failure: the next `times` requests matching `match` get this answer. */
export interface FailureSwitch {
  status: 401 | 403 | 429 | 500 | 502 | 503;
  /** Seconds, sent as `retry-after`. */
  retryAfter?: number;
  times?: number;
  match?: (method: string, path: string, login: string) => boolean;
}

/** A request the fake has carried out (its effects are made), about to be answered. */
export interface RoutedRequest {
  method: string;
  /** Path and query as sent. */
  path: string;
  login: string;
  status: number;
  body: unknown;
  /** The client's port on 127.0.0.1: which process asked can be found from it. */
  remotePort: number | undefined;
}

/**
 * What `beforeAnswer` may do to an answer: replace the body (a malformed record), answer with an
 * error although the effect was made (an ambiguous failure), or drop the connection unanswered.
 */
export interface AnswerChange {
  body?: unknown;
  status?: 500 | 502 | 503;
  drop?: boolean;
}

interface StoredLabel {
  id: number;
  name: string;
  color: string;
  description: string | null;
}

interface StoredEvent {
  id: number;
  event: 'labeled' | 'unlabeled' | 'closed' | 'reopened' | 'merged';
  actor: string;
  label: string | null;
  commitId: string | null;
  createdAt: string;
}

interface StoredComment {
  id: number;
  author: string;
  body: string;
  createdAt: string;
  updatedAt: string;
}

/** A pull request review as `POST /pulls/{n}/reviews` stored it. */
interface FakeReview {
  id: number;
  login: string;
  state: 'APPROVED' | 'CHANGES_REQUESTED' | 'COMMENTED';
  body: string;
  submittedAt: string;
  commitId: string;
  comments: FakeReviewComment[];
}

interface FakeReviewComment {
  id: number;
  path: string;
  line: number | null;
  body: string;
  createdAt: string;
}

interface StoredItem {
  id: number;
  number: number;
  kind: 'issue' | 'pr';
  title: string;
  body: string | null;
  state: 'open' | 'closed';
  stateReason: string | null;
  author: string;
  labels: string[];
  createdAt: string;
  updatedAt: string;
  closedAt: string | null;
  closedBy: string | null;
  comments: StoredComment[];
  events: StoredEvent[];
  head: string | null;
  base: string | null;
  fakeHeadSha: string | null;
  mergedAt: string | null;
  mergeCommitSha: string | null;
  mergedBy: string | null;
  /** Issues this one is blocked by (issue dependencies), by number. */
  blockedBy: number[];
  /** Sub-issues of this one, by number, in order. */
  subIssues: number[];
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

const REPO_ID = 1000;

/** The commit a request asks the checks of: a REST read of its check runs, or the head variable of a GraphQL query. */
function checksAskedOf(method: string, rawPath: string, text: string): string | null {
  if (method === 'GET') return /\/commits\/([0-9a-f]{40})\/check-runs(?:\?|$)/.exec(rawPath)?.[1] ?? null;
  if (method !== 'POST' || rawPath !== '/graphql') return null;
  try {
    const head = (JSON.parse(text) as { variables?: { head?: unknown } }).variables?.head;
    return typeof head === 'string' && /^[0-9a-f]{40}$/.test(head) ? head : null;
  } catch {
    return null;
  }
}
const DOCS = 'https://docs.github.com/rest';

export class FakeGitHubServer {
  readonly owner: string;
  readonly repo: string;
  readonly requests: LoggedRequest[] = [];
  readonly limit: number;
  remaining: number;
  /** Epoch seconds when the budget resets. */
  resetAt: number;
  /** GraphQL's own budget (`x-ratelimit-resource: graphql`): one point per query here, as each of Loom's costs on GitHub. */
  graphqlRemaining = 5000;
  /**
   * Runs before each authenticated request is answered; a test can interleave other work there
   * (the request waits for the returned promise).
   */
  intercept: ((request: { method: string; path: string; login: string; /** The commit whose checks the request asks about: `GET /commits/{sha}/check-runs`, or the merge look's `head` (GraphQL). */ checksOf: string | null }) => Promise<void> | void) | null = null;
  /** Issue numbers whose JSON comes out malformed (`labels: null`), as a broken proxy or API bug might send. */
  readonly malformed = new Set<number>();
  /** Answer the next merges with this status instead of merging. */
  mergeFailure: { status: 405 | 409; times: number } | null = null;
  /**
   * Runs after a request was carried out and before it is answered (the request waits for the
   * returned promise): a test can kill the client between the effect and the answer, hold the
   * answer (a slow or timed-out request), or change it (see `AnswerChange`).
   */
  beforeAnswer: ((request: RoutedRequest) => Promise<AnswerChange | undefined> | AnswerChange | undefined) | null = null;
  /** Check runs by commit sha (what a CI app created), in creation order. */
  private readonly checkRuns = new Map<string, FakeCheckRun[]>();
  /** Pull request reviews by PR number, in submission order (with their inline comments). */
  private readonly reviews = new Map<number, FakeReview[]>();
  /** Branch protection's required checks by branch (see `setRequiredChecks`). */
  private readonly requiredChecks = new Map<string, string[] | 'forbidden' | null>();
  /** Commit statuses by commit sha, latest per context last. */
  private readonly statuses = new Map<string, FakeStatus[]>();

  private readonly tokens: Record<string, string>;
  private readonly permissions: Map<string, Permission>;
  private readonly gitDir: string | undefined;
  private readonly defaultBranch: string;
  private readonly now: () => number;
  private readonly failures: Array<FailureSwitch & { left: number }> = [];
  private readonly items = new Map<number, StoredItem>();
  /** Issues a person deleted: GitHub answers 410 for them and lists them nowhere. */
  private readonly deleted = new Set<number>();
  private readonly labels = new Map<string, StoredLabel>();
  private nextNumber = 1;
  private nextId = 5000;
  private server: http.Server | null = null;
  private port = 0;

  private constructor(options: FakeGitHubOptions) {
    this.owner = options.owner ?? 'octo-org';
    this.repo = options.repo ?? 'widgets';
    this.tokens = options.tokens ?? { 'test-token': 'loom-bot' };
    this.permissions = new Map(Object.entries(options.permissions ?? {}));
    if (!this.permissions.has(this.owner)) this.permissions.set(this.owner, 'admin');
    this.gitDir = options.gitDir;
    this.defaultBranch = options.defaultBranch ?? 'main';
    this.now = options.now ?? Date.now;
    this.limit = options.rateLimit ?? 5000;
    this.remaining = this.limit;
    this.resetAt = Math.floor(this.now() / 1000) + 3600;
  }

  static async start(options: FakeGitHubOptions = {}): Promise<FakeGitHubServer> {
    const fake = new FakeGitHubServer(options);
    const server = http.createServer((req, res) => {
      fake.handle(req, res).catch((error: unknown) => {
        res.writeHead(500, { 'content-type': 'application/json; charset=utf-8' });
        res.end(JSON.stringify({ message: String(error) }));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    fake.server = server;
    fake.port = (server.address() as AddressInfo).port;
    return fake;
  }

  /** The API root, as `baseUrl` for Octokit. */
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async close(): Promise<void> {
    const server = this.server;
    if (server === null) return;
    this.server = null;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  failNext(failure: FailureSwitch): void {
    this.failures.push({ ...failure, left: failure.times ?? 1 });
  }

  /**
   * Creates or updates (same name) a check run on `sha`, as a CI app would; `conclusion` null
   * while it runs. `log`: the run is a GitHub Actions job (app `github-actions`, the check run's
   * id is the job's) whose log `GET /actions/jobs/{id}/logs` serves, as GitHub does, by a 302 to
   * a download URL answering plain text.
   */
  setCheckRun(sha: string, run: { name: string; status: 'queued' | 'in_progress' | 'completed'; conclusion?: string | null; output?: { title?: string; summary?: string; text?: string }; annotations?: FakeAnnotation[]; log?: string }): void {
    const runs = this.checkRuns.get(sha) ?? [];
    const existing = runs.find((r) => r.name === run.name);
    const at = this.timestamp();
    const next: FakeCheckRun = { id: existing?.id ?? this.id(), name: run.name, status: run.status, conclusion: run.conclusion ?? null, output: run.output ?? {}, annotations: run.annotations ?? [], startedAt: existing?.startedAt ?? at, completedAt: run.status === 'completed' ? at : null, ...(run.log !== undefined ? { log: run.log } : {}) };
    this.checkRuns.set(sha, [...runs.filter((r) => r.name !== run.name), next]);
  }

  /** Adds a commit status on `sha` (the latest per context counts, as on GitHub). */
  setStatus(sha: string, status: { context: string; state: 'error' | 'failure' | 'pending' | 'success'; description?: string; targetUrl?: string }): void {
    const at = this.timestamp();
    this.statuses.set(sha, [...(this.statuses.get(sha) ?? []), { id: this.id(), context: status.context, state: status.state, description: status.description ?? null, targetUrl: status.targetUrl ?? null, createdAt: at }]);
  }

  /**
   * Branch protection's required status checks for `branch` (`GET /branches/{b}/protection/required_status_checks`):
   * a list of check names, `forbidden` (403: the token may not read protection), or null (404: not protected).
   */
  setRequiredChecks(branch: string, required: string[] | 'forbidden' | null): void {
    this.requiredChecks.set(branch, required);
  }

  /** Forgets every scripted failure not used up yet. */
  clearFailures(): void {
    this.failures.length = 0;
  }

  setPermission(login: string, permission: Permission): void {
    this.permissions.set(login, permission);
  }

  /** Adds a label as `login` directly (a human acting in the web UI). */
  applyLabel(number: number, label: string, login: string): void {
    const item = this.require(number);
    this.setLabels(item, applyAdd(item.labels, [label]), login);
  }

  /** Records that `number` is blocked by `blocker` directly (a person in the web UI). */
  addBlockedBy(number: number, blocker: number): void {
    this.require(number).blockedBy.push(this.require(blocker).number);
  }

  /** Makes `child` a sub-issue of `parent` directly (a person in the web UI). */
  addSubIssue(parent: number, child: number): void {
    this.require(parent).subIssues.push(this.require(child).number);
  }

  /** Closes an issue directly as `reason` (a person in the web UI: "Close as not planned"). */
  closeAs(number: number, reason: 'completed' | 'not_planned', login: string): void {
    const item = this.require(number);
    this.setState(item, 'closed', 'closed', login);
    item.stateReason = reason;
  }

  /** Deletes an issue, as an admin in the web UI: its URLs answer 410 Gone from now on. */
  deleteIssue(number: number): void {
    this.require(number);
    this.items.delete(number);
    this.deleted.add(number);
  }

  /** Creates issues directly (no requests, no rate limit): seeding for tests. */
  seedIssues(count: number, labels: string[] = [], login = 'seed-user'): number[] {
    const numbers: number[] = [];
    for (let i = 0; i < count; i++) numbers.push(this.createItem('issue', `seeded ${i}`, null, login, labels, null, null).number);
    return numbers;
  }

  // --- HTTP -----------------------------------------------------------------------------------

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const method = req.method ?? 'GET';
    const rawPath = req.url ?? '/';
    const conditional = typeof req.headers['if-none-match'] === 'string';
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    const auth = req.headers.authorization ?? '';
    const token = auth.replace(/^(token|bearer)\s+/i, '');
    const login = this.tokens[token] ?? null;
    // An Actions job log's download URL (GitHub's is signed, short-lived, and needs no token).
    const download = /^\/_job-logs\/(\d+)$/.exec(rawPath);
    if (download !== null && method === 'GET') {
      const run = [...this.checkRuns.values()].flat().find((r) => r.id === Number(download[1]));
      this.requests.push({ method, path: rawPath, status: run?.log === undefined ? 404 : 200, conditional, login });
      res.writeHead(run?.log === undefined ? 404 : 200, { 'content-type': 'text/plain' });
      res.end(run?.log ?? 'Not Found');
      return;
    }

    const send = (status: number, body: unknown, headers: Record<string, string> = {}, spend = true): void => {
      if (spend && status !== 401) {
        this.remaining = Math.max(0, this.remaining - 1);
      }
      const out: Record<string, string> = {
        'content-type': 'application/json; charset=utf-8',
        'x-github-media-type': 'github.v3; format=json',
        'x-ratelimit-limit': String(this.limit),
        'x-ratelimit-remaining': String(this.remaining),
        'x-ratelimit-reset': String(this.resetAt),
        'x-ratelimit-used': String(this.limit - this.remaining),
        'x-ratelimit-resource': 'core',
        ...headers,
      };
      this.requests.push({ method, path: rawPath, status, conditional, login });
      res.writeHead(status, out);
      res.end(status === 304 || status === 204 || body === undefined ? undefined : JSON.stringify(body));
    };

    if (login === null) {
      send(401, { message: 'Bad credentials', documentation_url: DOCS, status: '401' });
      return;
    }
    if (this.intercept !== null) await this.intercept({ method, path: rawPath, login, checksOf: checksAskedOf(method, rawPath, text) });
    const failure = this.failures.find((f) => f.match === undefined || f.match(method, rawPath, login));
    if (failure !== undefined) {
      failure.left--;
      if (failure.left <= 0) this.failures.splice(this.failures.indexOf(failure), 1);
      const headers: Record<string, string> = failure.retryAfter === undefined ? {} : { 'retry-after': String(failure.retryAfter) };
      const message =
        failure.status === 401
          ? 'Bad credentials'
          : failure.status === 403 || failure.status === 429
            ? 'You have exceeded a secondary rate limit. Please wait a few minutes before you try again.'
            : 'Server Error';
      send(failure.status, { message, documentation_url: DOCS }, headers);
      return;
    }
    if (rawPath === '/graphql' && method === 'POST') {
      const result = this.answerGraphql(text, login);
      // A test (or the benchmark) sees it as any other request before it is answered.
      const change = this.beforeAnswer === null ? undefined : await this.beforeAnswer({ method, path: rawPath, login, status: result.status, body: result.body, remotePort: req.socket.remotePort });
      if (change?.drop === true) {
        this.requests.push({ method, path: rawPath, status: 0, conditional, login });
        req.socket.destroy();
        return;
      }
      const status = change?.status ?? result.status;
      const body = change?.status !== undefined ? { message: 'Server Error', documentation_url: DOCS } : change !== undefined && 'body' in change ? change.body : result.body;
      this.graphqlRemaining = Math.max(0, this.graphqlRemaining - 1);
      this.requests.push({ method, path: rawPath, status, conditional, login, ...operationOf(text) });
      res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'x-ratelimit-limit': '5000', 'x-ratelimit-remaining': String(this.graphqlRemaining), 'x-ratelimit-reset': String(this.resetAt), 'x-ratelimit-used': String(5000 - this.graphqlRemaining), 'x-ratelimit-resource': 'graphql' });
      res.end(JSON.stringify(body));
      return;
    }
    if (this.now() / 1000 >= this.resetAt) {
      this.remaining = this.limit;
      this.resetAt = Math.floor(this.now() / 1000) + 3600;
    }
    if (this.remaining === 0) {
      send(403, { message: `API rate limit exceeded for user ID 1.`, documentation_url: DOCS }, {}, false);
      return;
    }

    const url = new URL(rawPath, this.url);
    let body: unknown;
    try {
      body = text === '' ? {} : JSON.parse(text);
    } catch {
      send(400, { message: 'Problems parsing JSON', documentation_url: DOCS });
      return;
    }
    try {
      const result = this.route(method, url, body as Record<string, unknown>, login);
      if (this.beforeAnswer !== null) {
        const change = await this.beforeAnswer({ method, path: rawPath, login, status: result.status, body: result.body, remotePort: req.socket.remotePort });
        if (change?.drop === true) {
          this.requests.push({ method, path: rawPath, status: 0, conditional, login });
          req.socket.destroy();
          return;
        }
        if (change?.status !== undefined) {
          send(change.status, { message: 'Server Error', documentation_url: DOCS });
          return;
        }
        if (change !== undefined && 'body' in change) result.body = change.body;
      }
      if (method === 'GET') {
        const etag = `W/"${crypto.createHash('sha1').update(JSON.stringify(result.body) ?? '').digest('hex')}"`;
        const headers = { etag, 'cache-control': 'private, max-age=60, s-maxage=60', ...result.headers };
        if (req.headers['if-none-match'] === etag) {
          send(304, undefined, headers, false);
          return;
        }
        send(result.status, result.body, headers);
        return;
      }
      send(result.status, result.body, result.headers);
    } catch (error) {
      if (error instanceof HttpError) {
        send(error.status, { message: error.message, documentation_url: DOCS, ...error.extra });
        return;
      }
      throw error;
    }
  }

  /**
   * `POST /graphql`, for the one query Loom sends (`LoomMergeLook`, src/tracker/github/github-merge-look.ts),
   * answered in GitHub's shape: `data` with what was asked, and `errors` (status 200) for what
   * could not be resolved. Any other query gets an error: this server is no GraphQL engine.
   */
  private answerGraphql(text: string, login: string): { status: number; body: unknown } {
    const answered = (status: number, body: unknown) => ({ status, body });
    let request: { query?: unknown; variables?: Record<string, unknown> };
    try {
      request = JSON.parse(text) as typeof request;
    } catch {
      return answered(400, { message: 'Problems parsing JSON', documentation_url: DOCS });
    }
    if (typeof request.query === 'string' && /\bmutation\s+LoomCloseMerged\b/.test(request.query)) return answered(200, this.closeMerged(request.variables ?? {}, login));
    if (typeof request.query !== 'string' || !/\bquery\s+LoomMergeLook\b/.test(request.query)) {
      return answered(200, { errors: [{ message: 'this test server answers only the LoomMergeLook query and the LoomCloseMerged mutation' }] });
    }
    const v = request.variables ?? {};
    if (v.owner !== this.owner || v.name !== this.repo) {
      return answered(200, { data: { repository: null }, errors: [{ type: 'NOT_FOUND', path: ['repository'], locations: [{ line: 2, column: 3 }], message: `Could not resolve to a Repository with the name '${String(v.owner)}/${String(v.name)}'.` }] });
    }
    const item = typeof v.number === 'number' ? this.items.get(v.number) : undefined;
    const base = typeof v.base === 'string' ? v.base.replace(/^refs\/heads\//, '') : '';
    const baseSha = this.branchSha(base);
    const ref = baseSha === null ? null : { target: { oid: baseSha, statusCheckRollup: this.rollup(baseSha) } };
    // `object(expression:)`: the commit whose checks are asked about (this server knows commits by their full sha).
    const expression = typeof v.head === 'string' ? v.head : '';
    const object = /^[0-9a-f]{40}$/.test(expression) && this.commitExists(expression) ? { oid: expression, statusCheckRollup: this.rollup(expression) } : null;
    if (item === undefined || item.kind !== 'pr') {
      return answered(200, { data: { repository: { pullRequest: null, ref, object } }, errors: [{ type: 'NOT_FOUND', path: ['repository', 'pullRequest'], locations: [{ line: 3, column: 5 }], message: `Could not resolve to a PullRequest with the number of ${String(v.number)}.` }] });
    }
    // Reviews visible to the viewer: another user's pending review is not.
    const reviews = (this.reviews.get(item.number) ?? []).filter((r) => r.login === login || (r.state as string) !== 'PENDING').length;
    return answered(200, {
      data: {
        repository: {
          pullRequest: {
            state: item.mergedAt !== null ? 'MERGED' : item.state === 'closed' ? 'CLOSED' : 'OPEN',
            headRefOid: this.headSha(item),
            labels: { nodes: item.labels.map((name) => ({ name })) },
            reviews: { totalCount: reviews },
          },
          ref,
          object,
        },
      },
    });
  }

  /**
   * The `LoomCloseMerged` mutation (src/tracker/github/github-close-merged.ts): its fields run in
   * order, as GitHub runs a mutation's — `removeLabelsFromLabelable` on the PR and on the issue
   * (each only with its `@include` variable true), then `closeIssue`. A field whose node id
   * resolves to nothing (or to the wrong type) is null in `data`, with an error naming its path,
   * and the others still run.
   */
  private closeMerged(v: Record<string, unknown>, login: string): unknown {
    const data: Record<string, unknown> = {};
    const errors: unknown[] = [];
    const notFound = (field: string, id: unknown) => {
      data[field] = null;
      errors.push({ type: 'NOT_FOUND', path: [field], locations: [{ line: 2, column: 3 }], message: `Could not resolve to a node with the global id of '${String(id)}'` });
    };
    const itemOf = (id: unknown) => [...this.items.values()].find((i) => nodeId(i.id) === id);
    const removeLabels = (field: string, labelable: unknown, labelIds: unknown) => {
      const item = itemOf(labelable);
      if (item === undefined) return notFound(field, labelable);
      const names: string[] = [];
      for (const id of Array.isArray(labelIds) ? labelIds : []) {
        const label = [...this.labels.values()].find((l) => nodeId(l.id) === id);
        if (label === undefined) return notFound(field, id);
        names.push(label.name);
      }
      this.setLabels(item, item.labels.filter((l) => !names.includes(l)), login);
      data[field] = { clientMutationId: null };
    };
    if (v.withPrLabels === true) removeLabels('prLabels', v.pr, v.prLabels);
    if (v.withIssueLabels === true) removeLabels('issueLabels', v.issue, v.issueLabels);
    const issue = itemOf(v.issue);
    if (issue === undefined || issue.kind !== 'issue') notFound('close', v.issue);
    else {
      if (issue.state === 'open') {
        this.setState(issue, 'closed', 'closed', login);
        issue.stateReason = v.reason === 'NOT_PLANNED' ? 'not_planned' : 'completed';
      }
      data.close = { issue: { state: 'CLOSED' } };
    }
    return errors.length > 0 ? { data, errors } : { data };
  }

  /**
   * A commit's `statusCheckRollup` (its check runs and the latest status per context): null when
   * none reported; FAILURE or ERROR when one failed, PENDING when one has not finished, else
   * SUCCESS (neutral and skipped runs pass).
   */
  private rollup(sha: string): { state: 'SUCCESS' | 'PENDING' | 'FAILURE' | 'ERROR' } | null {
    const runs = this.checkRuns.get(sha) ?? [];
    const latest = new Map<string, FakeStatus>();
    for (const st of this.statuses.get(sha) ?? []) latest.set(st.context, st);
    const statuses = [...latest.values()];
    if (runs.length === 0 && statuses.length === 0) return null;
    if (statuses.some((st) => st.state === 'error')) return { state: 'ERROR' };
    if (statuses.some((st) => st.state === 'failure') || runs.some((r) => r.status === 'completed' && !['success', 'neutral', 'skipped'].includes(r.conclusion ?? ''))) return { state: 'FAILURE' };
    if (statuses.some((st) => st.state === 'pending') || runs.some((r) => r.status !== 'completed')) return { state: 'PENDING' };
    return { state: 'SUCCESS' };
  }

  private route(
    method: string,
    url: URL,
    body: Record<string, unknown>,
    login: string,
  ): { status: number; body: unknown; headers?: Record<string, string> } {
    if (method === 'GET' && url.pathname === '/user') return { status: 200, body: userObject(login) };
    const prefixes = [`/repos/${this.owner}/${this.repo}`, `/repositories/${REPO_ID}`];
    const prefix = prefixes.find((p) => url.pathname === p || url.pathname.startsWith(`${p}/`));
    if (prefix === undefined) throw new HttpError(404, 'Not Found');
    const parts = url.pathname.slice(prefix.length).split('/').filter(Boolean).map(decodeURIComponent);
    const q = url.searchParams;
    const [a, b, c, d] = parts;
    const num = (s: string | undefined): number => {
      const n = Number(s);
      if (!Number.isInteger(n)) throw new HttpError(404, 'Not Found');
      return n;
    };
    const ok = (value: unknown, status = 200) => ({ status, body: value });

    if (a === 'issues' && b === undefined) {
      if (method === 'GET') return this.page(url, this.listIssues(q), (i) => this.issueJson(i));
      if (method === 'POST') return ok(this.issueJson(this.createIssue(body, login)), 201);
    }
    if (a === 'issues' && b !== undefined) {
      const item = this.require(num(b));
      if (c === undefined) {
        if (method === 'GET') return ok(this.issueJson(item));
        if (method === 'PATCH') return ok(this.issueJson(this.patchIssue(item, body, login)));
      }
      if (c === 'labels') {
        if (method === 'GET' && d === undefined) return this.page(url, item.labels.map((l) => this.labelJson(l)));
        if (method === 'POST' && d === undefined) {
          this.setLabels(item, applyAdd(item.labels, stringList(body.labels)), login);
          return ok(item.labels.map((l) => this.labelJson(l)));
        }
        if (method === 'PUT' && d === undefined) {
          this.setLabels(item, [...new Set(stringList(body.labels))], login);
          return ok(item.labels.map((l) => this.labelJson(l)));
        }
        if (method === 'DELETE' && d !== undefined) {
          // Label names are case-insensitive on GitHub, in lookups as in uniqueness.
          const same = (l: string) => l.toLowerCase() === d.toLowerCase();
          if (!item.labels.some(same)) throw new HttpError(404, 'Label does not exist');
          this.setLabels(
            item,
            item.labels.filter((l) => !same(l)),
            login,
          );
          return ok(item.labels.map((l) => this.labelJson(l)));
        }
      }
      if (c === 'comments' && d === undefined) {
        if (method === 'GET') return this.page(url, item.comments.map((cm) => this.commentJson(item, cm)));
        if (method === 'POST') {
          if (typeof body.body !== 'string') throw validation('IssueComment', 'body');
          const at = this.timestamp();
          const comment: StoredComment = { id: this.id(), author: login, body: body.body, createdAt: at, updatedAt: at };
          item.comments.push(comment);
          item.updatedAt = at;
          return ok(this.commentJson(item, comment), 201);
        }
      }
      if (c === 'events' && d === undefined && method === 'GET') return this.page(url, item.events.map((e) => this.eventJson(item, e)));
      // Issue dependencies (GET/POST …/dependencies/blocked_by) and sub-issues (GET/POST …/sub_issues),
      // both listing issue objects; both link by the other issue's `id`, not its number.
      if (c === 'dependencies' && d === 'blocked_by' && parts[4] === undefined) {
        if (method === 'GET') return this.page(url, item.blockedBy.map((n) => this.issueJson(this.require(n))));
        if (method === 'POST') {
          const other = this.byId(body.issue_id, 'issue_id');
          if (other.number === item.number || item.blockedBy.includes(other.number)) throw validation('IssueDependency', 'issue_id', 'invalid');
          item.blockedBy.push(other.number);
          return ok(this.issueJson(item), 201);
        }
      }
      if (c === 'sub_issues' && d === undefined) {
        if (method === 'GET') return this.page(url, item.subIssues.map((n) => this.issueJson(this.require(n))));
        if (method === 'POST') {
          const child = this.byId(body.sub_issue_id, 'sub_issue_id');
          if (child.number === item.number || [...this.items.values()].some((i) => i.subIssues.includes(child.number))) throw validation('SubIssue', 'sub_issue_id', 'invalid');
          item.subIssues.push(child.number);
          return ok(this.issueJson(item), 201);
        }
      }
    }
    if (a === 'pulls' && b === undefined) {
      if (method === 'GET') {
        const state = q.get('state') ?? 'open';
        const pulls = [...this.items.values()].filter((i) => i.kind === 'pr' && (state === 'all' || i.state === state));
        pulls.sort((x, y) => (q.get('direction') === 'asc' ? x.number - y.number : y.number - x.number));
        return this.page(url, pulls.map((p) => this.pullJson(p)));
      }
      if (method === 'POST') return ok(this.pullJson(this.createPull(body, login)), 201);
    }
    if (a === 'pulls' && b !== undefined) {
      const item = this.items.get(num(b));
      if (item?.kind !== 'pr') throw new HttpError(404, 'Not Found');
      if (c === undefined && method === 'GET') return ok(this.pullJson(item));
      if (c === 'merge' && method === 'PUT') return ok(this.merge(item, body, login));
      if (c === 'reviews' && d === undefined && method === 'GET') return this.page(url, (this.reviews.get(item.number) ?? []).map((r) => this.reviewJson(item, r)));
      if (c === 'reviews' && d === undefined && method === 'POST') return ok(this.reviewJson(item, this.submitReview(item, body, login)));
      if (c === 'comments' && d === undefined && method === 'GET') return this.page(url, (this.reviews.get(item.number) ?? []).flatMap((r) => r.comments.map((cm) => this.reviewCommentJson(item, r, cm))));
    }
    if (a === 'labels') {
      if (b === undefined && method === 'GET') return this.page(url, [...this.labels.values()].map((l) => this.labelJson(l.name)));
      if (b === undefined && method === 'POST') {
        const name = typeof body.name === 'string' ? body.name : '';
        if (name === '') throw validation('Label', 'name');
        // Label names are case-insensitive on GitHub: `Loom:Urgent` exists when `loom:urgent` is asked for.
        if ([...this.labels.keys()].some((k) => k.toLowerCase() === name.toLowerCase())) throw validation('Label', 'name', 'already_exists');
        if (typeof body.color !== 'string' || !/^[0-9a-fA-F]{6}$/.test(body.color)) throw validation('Label', 'color');
        this.labels.set(name, { id: this.id(), name, color: body.color, description: optionalString(body.description) });
        return ok(this.labelJson(name), 201);
      }
      if (b !== undefined && method === 'PATCH') {
        const label = this.labels.get(b);
        if (label === undefined) throw new HttpError(404, 'Not Found');
        if (typeof body.color === 'string') label.color = body.color;
        if ('description' in body) label.description = optionalString(body.description);
        return ok(this.labelJson(b));
      }
    }
    if (a === 'commits' && b !== undefined && c === 'check-runs' && d === undefined && method === 'GET') {
      // GET /repos/{owner}/{repo}/commits/{ref}/check-runs
      const runs = this.checkRuns.get(b) ?? [];
      return ok({ total_count: runs.length, check_runs: runs.map((r) => this.checkRunJson(b, r)) });
    }
    if (a === 'commits' && b !== undefined && c === 'status' && d === undefined && method === 'GET') {
      // GET /repos/{owner}/{repo}/commits/{ref}/status: the latest status per context, newest first.
      const latest = new Map<string, FakeStatus>();
      for (const st of this.statuses.get(b) ?? []) latest.set(st.context, st);
      const statuses = [...latest.values()].reverse();
      const state = statuses.some((st) => st.state === 'error' || st.state === 'failure') ? 'failure' : statuses.length > 0 && statuses.every((st) => st.state === 'success') ? 'success' : 'pending';
      return ok({
        state,
        statuses: statuses.map((st) => ({ url: `${this.apiRepo}/statuses/${b}`, id: st.id, node_id: `SC_${st.id}`, state: st.state, description: st.description, target_url: st.targetUrl, context: st.context, created_at: st.createdAt, updated_at: st.createdAt })),
        sha: b,
        total_count: statuses.length,
        commit_url: `${this.apiRepo}/commits/${b}`,
        url: `${this.apiRepo}/commits/${b}/status`,
      });
    }
    if (a === 'check-runs' && b !== undefined && c === 'annotations' && d === undefined && method === 'GET') {
      // GET /repos/{owner}/{repo}/check-runs/{check_run_id}/annotations
      const run = [...this.checkRuns.entries()].flatMap(([sha, runs]) => runs.map((r) => ({ sha, r }))).find(({ r }) => r.id === num(b));
      if (run === undefined) throw new HttpError(404, 'Not Found');
      return this.page(url, run.r.annotations.map((an) => ({ path: an.path, blob_href: `https://github.com/${this.owner}/${this.repo}/blob/${run.sha}/${an.path}`, start_line: an.start_line, start_column: null, end_line: an.end_line, end_column: null, annotation_level: an.annotation_level, title: an.title ?? null, message: an.message, raw_details: null })));
    }
    if (a === 'actions' && b === 'jobs' && c !== undefined && d === 'logs' && method === 'GET') {
      // GET /repos/{owner}/{repo}/actions/jobs/{job_id}/logs: 302 to the log's download URL.
      const run = [...this.checkRuns.values()].flat().find((r) => r.id === num(c));
      if (run?.log === undefined) throw new HttpError(404, 'Not Found');
      return { status: 302, body: undefined, headers: { location: `${this.url}/_job-logs/${run.id}` } };
    }
    if (a === 'branches' && b !== undefined && c === 'protection' && d === 'required_status_checks' && method === 'GET') {
      // GET /repos/{owner}/{repo}/branches/{branch}/protection/required_status_checks
      const required = this.requiredChecks.get(b) ?? null;
      if (required === 'forbidden') throw new HttpError(403, 'Resource not accessible by integration');
      if (required === null) throw new HttpError(404, 'Branch not protected');
      return ok({ url: `${this.apiRepo}/branches/${b}/protection/required_status_checks`, strict: true, contexts: required, checks: required.map((context) => ({ context, app_id: null })), contexts_url: `${this.apiRepo}/branches/${b}/protection/required_status_checks/contexts` });
    }
    if (a === 'collaborators' && b !== undefined && c === 'permission' && method === 'GET') {
      const permission = this.permissions.get(b) ?? 'none';
      const legacy = permission === 'maintain' ? 'write' : permission === 'triage' ? 'read' : permission;
      return ok({ permission: legacy, role_name: permission, user: userObject(b) });
    }
    throw new HttpError(404, 'Not Found');
  }

  /**
   * `POST /repos/{owner}/{repo}/pulls/{n}/reviews` with `event` APPROVE, REQUEST_CHANGES or
   * COMMENT and optional inline `comments` ({ path, line, body }). As on GitHub: 422 without an
   * event body for REQUEST_CHANGES/COMMENT, and on approving or requesting changes on one's own PR.
   */
  private submitReview(item: StoredItem, body: Record<string, unknown>, login: string): FakeReview {
    const event = typeof body.event === 'string' ? body.event : '';
    const states: Record<string, FakeReview['state']> = { APPROVE: 'APPROVED', REQUEST_CHANGES: 'CHANGES_REQUESTED', COMMENT: 'COMMENTED' };
    const state = states[event];
    if (state === undefined) throw validation('PullRequestReview', 'event');
    const text = typeof body.body === 'string' ? body.body : '';
    const inline = Array.isArray(body.comments) ? (body.comments as Record<string, unknown>[]) : [];
    if (state !== 'APPROVED' && text === '' && inline.length === 0) throw new HttpError(422, 'Unprocessable Entity', { errors: ['Review body is required'] });
    if (state !== 'COMMENTED' && login === item.author) throw new HttpError(422, 'Unprocessable Entity', { errors: [`Can not ${state === 'APPROVED' ? 'approve' : 'request changes on'} your own pull request`] });
    const at = this.timestamp();
    const commit = this.headSha(item);
    const review: FakeReview = {
      id: this.id(),
      login,
      state,
      body: text,
      submittedAt: at,
      commitId: commit,
      comments: inline.map((c) => ({ id: this.id(), path: typeof c.path === 'string' ? c.path : '', line: typeof c.line === 'number' ? c.line : null, body: typeof c.body === 'string' ? c.body : '', createdAt: at })),
    };
    this.reviews.set(item.number, [...(this.reviews.get(item.number) ?? []), review]);
    item.updatedAt = at;
    return review;
  }

  /** A review in the shape of `GET /repos/{owner}/{repo}/pulls/{n}/reviews`. */
  private reviewJson(item: StoredItem, r: FakeReview): unknown {
    const html = `https://github.com/${this.owner}/${this.repo}/pull/${item.number}#pullrequestreview-${r.id}`;
    return {
      id: r.id,
      node_id: `PRR_${r.id}`,
      user: userObject(r.login),
      body: r.body,
      state: r.state,
      html_url: html,
      pull_request_url: `${this.apiRepo}/pulls/${item.number}`,
      author_association: r.login === this.owner ? 'OWNER' : (this.permissions.get(r.login) ?? 'none') === 'none' ? 'NONE' : 'COLLABORATOR',
      _links: { html: { href: html }, pull_request: { href: `${this.apiRepo}/pulls/${item.number}` } },
      submitted_at: r.submittedAt,
      commit_id: r.commitId,
    };
  }

  /** An inline review comment in the shape of `GET /repos/{owner}/{repo}/pulls/{n}/comments`. */
  private reviewCommentJson(item: StoredItem, r: FakeReview, c: FakeReviewComment): unknown {
    return {
      url: `${this.apiRepo}/pulls/comments/${c.id}`,
      pull_request_review_id: r.id,
      id: c.id,
      node_id: `PRRC_${c.id}`,
      diff_hunk: '@@ -1 +1 @@',
      path: c.path,
      position: c.line,
      original_position: c.line,
      commit_id: r.commitId,
      original_commit_id: r.commitId,
      user: userObject(r.login),
      body: c.body,
      created_at: c.createdAt,
      updated_at: c.createdAt,
      html_url: `https://github.com/${this.owner}/${this.repo}/pull/${item.number}#discussion_r${c.id}`,
      pull_request_url: `${this.apiRepo}/pulls/${item.number}`,
      author_association: r.login === this.owner ? 'OWNER' : 'COLLABORATOR',
      _links: { self: { href: `${this.apiRepo}/pulls/comments/${c.id}` } },
      start_line: null,
      original_start_line: null,
      start_side: null,
      line: c.line,
      original_line: c.line,
      side: 'RIGHT',
    };
  }

  /** A check run in the shape of `GET /repos/{owner}/{repo}/commits/{ref}/check-runs` (`check_runs[]`). */
  private checkRunJson(sha: string, r: FakeCheckRun): unknown {
    return {
      id: r.id,
      head_sha: sha,
      node_id: `CR_${r.id}`,
      external_id: '',
      url: `${this.apiRepo}/check-runs/${r.id}`,
      html_url: `https://github.com/${this.owner}/${this.repo}/runs/${r.id}`,
      details_url: `https://ci.example/runs/${r.id}`,
      status: r.status,
      conclusion: r.conclusion,
      started_at: r.startedAt,
      completed_at: r.completedAt,
      output: { title: r.output.title ?? null, summary: r.output.summary ?? null, text: r.output.text ?? null, annotations_count: r.annotations.length, annotations_url: `${this.apiRepo}/check-runs/${r.id}/annotations` },
      name: r.name,
      check_suite: { id: r.id + 1 },
      app: r.log !== undefined ? { id: 15368, slug: 'github-actions', name: 'GitHub Actions' } : { id: 1, slug: 'fake-ci', name: 'Fake CI' },
      pull_requests: [],
    };
  }

  /** One page of a list, with GitHub's `link` header. */
  /** One page of `all`, as GitHub pages a list (`Link` header); only that page goes through `toJson`. */
  private page<T>(url: URL, all: T[], toJson: (item: T) => unknown = (item) => item): { status: number; body: unknown; headers: Record<string, string> } {
    const perPage = Math.min(100, Math.max(1, Number(url.searchParams.get('per_page') ?? 30) || 30));
    const page = Math.max(1, Number(url.searchParams.get('page') ?? 1) || 1);
    const last = Math.max(1, Math.ceil(all.length / perPage));
    const rel = (p: number, name: string): string => {
      const target = new URL(url.pathname.replace(`/repos/${this.owner}/${this.repo}`, `/repositories/${REPO_ID}`), this.url);
      url.searchParams.forEach((v, k) => target.searchParams.set(k, v));
      target.searchParams.set('page', String(p));
      return `<${target.toString()}>; rel="${name}"`;
    };
    const links: string[] = [];
    if (page > 1) links.push(rel(page - 1, 'prev'));
    if (page < last) links.push(rel(page + 1, 'next'), rel(last, 'last'));
    if (page > 1) links.push(rel(1, 'first'));
    return {
      status: 200,
      body: all.slice((page - 1) * perPage, page * perPage).map(toJson),
      headers: links.length > 0 ? { link: links.join(', ') } : {},
    };
  }

  // --- model ----------------------------------------------------------------------------------

  private listIssues(q: URLSearchParams): StoredItem[] {
    const state = q.get('state') ?? 'open';
    const labels = (q.get('labels') ?? '').split(',').filter(Boolean);
    const result = [...this.items.values()].filter(
      (i) => (state === 'all' || i.state === state) && labels.every((l) => i.labels.includes(l)),
    );
    result.sort(q.get('sort') === 'updated' ? (x, y) => (x.updatedAt < y.updatedAt ? -1 : x.updatedAt > y.updatedAt ? 1 : x.number - y.number) : (x, y) => x.number - y.number);
    if (q.get('direction') !== 'asc') result.reverse();
    return result;
  }

  private createIssue(body: Record<string, unknown>, login: string): StoredItem {
    if (typeof body.title !== 'string' || body.title === '') throw validation('Issue', 'title', 'missing_field');
    return this.createItem('issue', body.title, optionalString(body.body), login, stringList(body.labels), null, null);
  }

  private createPull(body: Record<string, unknown>, login: string): StoredItem {
    const head = typeof body.head === 'string' ? body.head : '';
    const base = typeof body.base === 'string' ? body.base : '';
    if (typeof body.title !== 'string' || body.title === '') throw validation('PullRequest', 'title', 'missing_field');
    if (head === '' || base === '') throw validation('PullRequest', head === '' ? 'head' : 'base', 'missing_field');
    if (this.gitDir !== undefined) {
      for (const [field, ref] of [['head', head], ['base', base]] as const) {
        if (this.branchSha(ref) === null) throw validation('PullRequest', field, 'invalid');
      }
    }
    // As GitHub: one open pull request per head and base.
    if ([...this.items.values()].some((i) => i.kind === 'pr' && i.state === 'open' && i.head === head && i.base === base)) {
      throw new HttpError(422, 'Validation Failed', { errors: [{ resource: 'PullRequest', code: 'custom', message: `A pull request already exists for ${this.owner}:${head}.` }] });
    }
    return this.createItem('pr', body.title, optionalString(body.body), login, [], head, base);
  }

  private createItem(
    kind: 'issue' | 'pr',
    title: string,
    body: string | null,
    login: string,
    labels: string[],
    head: string | null,
    base: string | null,
  ): StoredItem {
    const at = this.timestamp();
    const number = this.nextNumber++;
    const item: StoredItem = {
      id: this.id(),
      number,
      kind,
      title,
      body: body === '' ? null : body,
      state: 'open',
      stateReason: null,
      blockedBy: [],
      subIssues: [],
      author: login,
      labels: [],
      createdAt: at,
      updatedAt: at,
      closedAt: null,
      closedBy: null,
      comments: [],
      events: [],
      head,
      base,
      fakeHeadSha: head === null ? null : crypto.createHash('sha1').update(`${head}#${number}`).digest('hex'),
      mergedAt: null,
      mergeCommitSha: null,
      mergedBy: null,
    };
    this.items.set(number, item);
    this.setLabels(item, [...new Set(labels)], login);
    return item;
  }

  private patchIssue(item: StoredItem, body: Record<string, unknown>, login: string): StoredItem {
    if (typeof body.title === 'string') item.title = body.title;
    if ('body' in body) item.body = optionalString(body.body);
    if (Array.isArray(body.labels)) this.setLabels(item, [...new Set(stringList(body.labels))], login);
    if ((body.state === 'closed' || body.state === 'open') && body.state !== item.state) {
      if (item.mergedAt !== null) throw validation('Issue', 'state', 'invalid');
      this.setState(item, body.state, body.state === 'closed' ? 'closed' : 'reopened', login);
      // As GitHub: `state_reason` says how it was closed (`completed`, `not_planned`, `duplicate`).
      if (body.state === 'closed' && (body.state_reason === 'not_planned' || body.state_reason === 'duplicate' || body.state_reason === 'completed')) item.stateReason = body.state_reason;
    }
    return item;
  }

  /** `commitId`: the merge commit, for an issue closed by a PR's merge. */
  private setState(item: StoredItem, state: 'open' | 'closed', event: 'closed' | 'reopened', login: string, commitId: string | null = null): void {
    const at = this.timestamp();
    item.state = state;
    item.stateReason = state === 'closed' ? 'completed' : 'reopened';
    item.closedAt = state === 'closed' ? at : null;
    item.closedBy = state === 'closed' ? login : null;
    item.updatedAt = at;
    this.event(item, event, login, null, commitId);
  }

  private setLabels(item: StoredItem, next: string[], login: string): void {
    const removed = item.labels.filter((l) => !next.includes(l));
    const added = next.filter((l) => !item.labels.includes(l));
    for (const name of added) {
      if (!this.labels.has(name)) this.labels.set(name, { id: this.id(), name, color: 'ededed', description: null });
    }
    item.labels = [...next];
    for (const name of removed) this.event(item, 'unlabeled', login, name);
    for (const name of added) this.event(item, 'labeled', login, name);
    if (removed.length > 0 || added.length > 0) item.updatedAt = this.timestamp();
  }

  private event(item: StoredItem, event: StoredEvent['event'], actor: string, label: string | null, commitId: string | null = null): void {
    item.events.push({ id: this.id(), event, actor, label, commitId, createdAt: this.timestamp() });
  }

  private merge(item: StoredItem, body: Record<string, unknown>, login: string): unknown {
    if (this.mergeFailure !== null) {
      const { status } = this.mergeFailure;
      if (--this.mergeFailure.times <= 0) this.mergeFailure = null;
      throw status === 405
        ? new HttpError(405, 'Pull Request is not mergeable')
        : new HttpError(409, 'Head branch was modified. Review and try the merge again.');
    }
    if (item.state !== 'open') throw new HttpError(405, 'Pull Request is not mergeable');
    const headSha = this.headSha(item);
    if (typeof body.sha === 'string' && body.sha !== headSha) {
      throw new HttpError(409, 'Head branch was modified. Review and try the merge again.');
    }
    const message = `Merge pull request #${item.number} from ${this.owner}/${item.head ?? ''}`;
    const sha = this.gitDir === undefined ? crypto.createHash('sha1').update(`merge#${item.number}`).digest('hex') : this.gitMerge(item, message);
    const at = this.timestamp();
    item.mergedAt = at;
    item.mergeCommitSha = sha;
    item.mergedBy = login;
    this.event(item, 'merged', login, null, sha);
    this.setState(item, 'closed', 'closed', login);
    // GitHub closes the open issues the description links with a closing keyword, as completed,
    // when the PR merges into the default branch (their labels stay as they are).
    if (item.base === this.defaultBranch) {
      for (const linked of closingReferences(item.body ?? '')) {
        const issue = this.items.get(linked);
        if (issue?.kind === 'issue' && issue.state === 'open') this.setState(issue, 'closed', 'closed', login, sha);
      }
    }
    return { sha, merged: true, message: 'Pull Request successfully merged' };
  }

  /** A real merge commit of head into base in the bare repository; 405 on conflicts. */
  private gitMerge(item: StoredItem, message: string): string {
    const git = (...args: string[]): string =>
      execFileSync('git', ['--git-dir', this.gitDir ?? '', ...args], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
        env: {
          ...process.env,
          GIT_AUTHOR_NAME: 'GitHub',
          GIT_AUTHOR_EMAIL: 'noreply@github.com',
          GIT_COMMITTER_NAME: 'GitHub',
          GIT_COMMITTER_EMAIL: 'noreply@github.com',
        },
      }).trim();
    const base = this.branchSha(item.base ?? '');
    const head = this.branchSha(item.head ?? '');
    if (base === null || head === null) throw new HttpError(405, 'Pull Request is not mergeable');
    let tree: string;
    try {
      tree = git('merge-tree', '--write-tree', base, head).split('\n')[0] ?? '';
    } catch {
      throw new HttpError(405, 'Pull Request is not mergeable');
    }
    const commit = git('commit-tree', tree, '-p', base, '-p', head, '-m', message);
    git('update-ref', `refs/heads/${item.base ?? ''}`, commit, base);
    return commit;
  }

  /** Whether the repository has this commit (any commit is when there is no repository behind this server). */
  private commitExists(sha: string): boolean {
    if (this.gitDir === undefined) return true;
    try {
      execFileSync('git', ['--git-dir', this.gitDir, 'cat-file', '-e', `${sha}^{commit}`], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  }

  private branchSha(branch: string): string | null {
    if (this.gitDir === undefined) return null;
    try {
      return execFileSync('git', ['--git-dir', this.gitDir, 'rev-parse', '--verify', '--quiet', `refs/heads/${branch}^{commit}`], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      }).trim();
    } catch {
      return null;
    }
  }

  private headSha(item: StoredItem): string {
    return (this.gitDir === undefined ? null : this.branchSha(item.head ?? '')) ?? item.fakeHeadSha ?? '';
  }

  private require(number: number): StoredItem {
    const item = this.items.get(number);
    if (item === undefined) throw this.deleted.has(number) ? new HttpError(410, 'This issue was deleted') : new HttpError(404, 'Not Found');
    return item;
  }

  private id(): number {
    return this.nextId++;
  }

  /** GitHub's second-resolution UTC timestamps. */
  private timestamp(): string {
    return new Date(this.now()).toISOString().replace(/\.\d{3}Z$/, 'Z');
  }

  // --- JSON shapes (after the @octokit/fixtures recordings) -------------------------------------

  private get apiRepo(): string {
    return `https://api.github.com/repos/${this.owner}/${this.repo}`;
  }

  private labelJson(name: string): unknown {
    const label = this.labels.get(name) ?? { id: 0, name, color: 'ededed', description: null };
    return {
      id: label.id,
      node_id: nodeId(label.id),
      url: `${this.apiRepo}/labels/${encodeURIComponent(name)}`,
      name,
      color: label.color,
      default: false,
      description: label.description,
    };
  }

  private issueJson(item: StoredItem): unknown {
    const base = `${this.apiRepo}/issues/${item.number}`;
    return {
      url: base,
      repository_url: this.apiRepo,
      labels_url: `${base}/labels{/name}`,
      comments_url: `${base}/comments`,
      events_url: `${base}/events`,
      html_url: `https://github.com/${this.owner}/${this.repo}/${item.kind === 'pr' ? 'pull' : 'issues'}/${item.number}`,
      id: item.id,
      node_id: nodeId(item.id),
      number: item.number,
      title: item.title,
      user: userObject(item.author),
      labels: this.malformed.has(item.number) ? null : item.labels.map((l) => this.labelJson(l)),
      state: item.state,
      locked: false,
      assignee: null,
      assignees: [],
      milestone: null,
      comments: item.comments.length,
      created_at: item.createdAt,
      updated_at: item.updatedAt,
      closed_at: item.closedAt,
      author_association: 'MEMBER',
      active_lock_reason: null,
      ...(item.kind === 'pr'
        ? {
            draft: false,
            pull_request: {
              url: `${this.apiRepo}/pulls/${item.number}`,
              html_url: `https://github.com/${this.owner}/${this.repo}/pull/${item.number}`,
              diff_url: `https://github.com/${this.owner}/${this.repo}/pull/${item.number}.diff`,
              patch_url: `https://github.com/${this.owner}/${this.repo}/pull/${item.number}.patch`,
              merged_at: item.mergedAt,
            },
          }
        : {}),
      body: item.body,
      closed_by: item.closedBy === null ? null : userObject(item.closedBy),
      timeline_url: `${base}/timeline`,
      performed_via_github_app: null,
      state_reason: item.stateReason,
      ...(item.kind === 'issue' ? this.summaries(item) : {}),
    };
  }

  /** `sub_issues_summary` and `issue_dependencies_summary`, as GitHub adds them to an issue. */
  private summaries(item: StoredItem): Record<string, unknown> {
    const closed = (n: number) => this.items.get(n)?.state === 'closed';
    const completed = item.subIssues.filter(closed).length;
    const blocking = [...this.items.values()].filter((i) => i.blockedBy.includes(item.number));
    return {
      sub_issues_summary: { total: item.subIssues.length, completed, percent_completed: item.subIssues.length === 0 ? 0 : Math.floor((completed * 100) / item.subIssues.length) },
      issue_dependencies_summary: {
        blocked_by: item.blockedBy.filter((n) => !closed(n)).length,
        total_blocked_by: item.blockedBy.length,
        blocking: item.state === 'open' ? blocking.filter((i) => i.state === 'open').length : 0,
        total_blocking: blocking.length,
      },
    };
  }

  /** The issue with database id `id` (a request body's `issue_id` / `sub_issue_id`). */
  private byId(id: unknown, field: string): StoredItem {
    const item = [...this.items.values()].find((i) => i.id === id && i.kind === 'issue');
    if (item === undefined) throw validation('Issue', field, 'invalid');
    return item;
  }

  private pullJson(item: StoredItem): unknown {
    const ref = (branch: string, sha: string) => ({
      label: `${this.owner}:${branch}`,
      ref: branch,
      sha,
      user: userObject(this.owner),
      repo: { id: REPO_ID, name: this.repo, full_name: `${this.owner}/${this.repo}` },
    });
    return {
      url: `${this.apiRepo}/pulls/${item.number}`,
      id: item.id,
      node_id: nodeId(item.id),
      html_url: `https://github.com/${this.owner}/${this.repo}/pull/${item.number}`,
      issue_url: `${this.apiRepo}/issues/${item.number}`,
      number: item.number,
      state: item.state,
      locked: false,
      title: item.title,
      user: userObject(item.author),
      body: item.body,
      labels: item.labels.map((l) => this.labelJson(l)),
      created_at: item.createdAt,
      updated_at: item.updatedAt,
      closed_at: item.closedAt,
      merged_at: item.mergedAt,
      merge_commit_sha: item.mergeCommitSha,
      draft: false,
      head: ref(item.head ?? '', this.headSha(item)),
      base: ref(item.base ?? '', this.branchSha(item.base ?? '') ?? '0'.repeat(40)),
      author_association: 'MEMBER',
      merged: item.mergedAt !== null,
      mergeable: item.state === 'open' ? true : null,
      merged_by: item.mergedBy === null ? null : userObject(item.mergedBy),
    };
  }

  private commentJson(item: StoredItem, comment: StoredComment): unknown {
    return {
      url: `${this.apiRepo}/issues/comments/${comment.id}`,
      html_url: `https://github.com/${this.owner}/${this.repo}/issues/${item.number}#issuecomment-${comment.id}`,
      issue_url: `${this.apiRepo}/issues/${item.number}`,
      id: comment.id,
      node_id: nodeId(comment.id),
      user: userObject(comment.author),
      created_at: comment.createdAt,
      updated_at: comment.updatedAt,
      author_association: 'MEMBER',
      body: comment.body,
      performed_via_github_app: null,
    };
  }

  private eventJson(item: StoredItem, event: StoredEvent): unknown {
    return {
      id: event.id,
      node_id: nodeId(event.id),
      url: `${this.apiRepo}/issues/events/${event.id}`,
      actor: userObject(event.actor),
      event: event.event,
      commit_id: event.commitId,
      commit_url: event.commitId === null ? null : `${this.apiRepo}/commits/${event.commitId}`,
      created_at: event.createdAt,
      ...(event.label === null ? {} : { label: { name: event.label, color: this.labels.get(event.label)?.color ?? 'ededed' } }),
      performed_via_github_app: null,
      issue_number: item.number,
    };
  }
}

function userObject(login: string): Record<string, unknown> {
  const id = 1000 + (crypto.createHash('sha1').update(login).digest().readUInt16BE(0) % 50_000);
  return {
    login,
    id,
    node_id: nodeId(id),
    avatar_url: `https://avatars.githubusercontent.com/u/${id}?v=4`,
    gravatar_id: '',
    url: `https://api.github.com/users/${login}`,
    html_url: `https://github.com/${login}`,
    type: 'User',
    site_admin: false,
  };
}

/** A GraphQL request's operation name, as the request log shows it. */
function operationOf(text: string): { operation?: string } {
  try {
    const query = (JSON.parse(text) as { query?: unknown }).query;
    const name = typeof query === 'string' ? /\b(?:query|mutation)\s+(\w+)/.exec(query)?.[1] : undefined;
    return name === undefined ? {} : { operation: name };
  } catch {
    return {};
  }
}

function nodeId(id: number): string {
  return Buffer.from(`04:Entity${id}`).toString('base64');
}

function applyAdd(current: string[], add: string[]): string[] {
  return [...new Set([...current, ...add])];
}

function stringList(value: unknown): string[] {
  if (!Array.isArray(value)) return [];
  return value.map((v) => (typeof v === 'string' ? v : typeof v === 'object' && v !== null ? String((v as { name?: unknown }).name) : String(v)));
}

function optionalString(value: unknown): string | null {
  return typeof value === 'string' && value !== '' ? value : null;
}

function validation(resource: string, field: string, code = 'invalid'): HttpError {
  return new HttpError(422, 'Validation Failed', { errors: [{ resource, code, field }] });
}

/** A check run annotation as a CI app reports it (a file, lines, a level and a message). */
export interface FakeAnnotation {
  path: string;
  start_line: number;
  end_line: number;
  annotation_level: 'notice' | 'warning' | 'failure';
  message: string;
  title?: string;
}

interface FakeCheckRun {
  id: number;
  name: string;
  status: 'queued' | 'in_progress' | 'completed';
  conclusion: string | null;
  output: { title?: string; summary?: string; text?: string };
  annotations: FakeAnnotation[];
  startedAt: string;
  completedAt: string | null;
  /** An Actions job's log (the run is then GitHub Actions'). */
  log?: string;
}

interface FakeStatus {
  id: number;
  context: string;
  state: 'error' | 'failure' | 'pending' | 'success';
  description: string | null;
  targetUrl: string | null;
  createdAt: string;
}

/** Issue numbers a PR description links with a closing keyword (close/fix/resolve and their forms, then `#N`). */
function closingReferences(body: string): number[] {
  return [...body.matchAll(/\b(?:close[sd]?|fix(?:e[sd])?|resolve[sd]?)\s*:?\s+#(\d+)\b/gi)].map((m) => Number(m[1]));
}
