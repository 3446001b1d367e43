/**
 * The dashboard's read model (read-only, like `loom status`): the status report plus what a live
 * board shows beside it — the issues in lanes with their titles, each working shepherd with its
 * runtime, heartbeat and spend, the roles with their next run, today's usage against the budget,
 * and the gauges `/metrics` exports. Built from the state file, the progress records, the usage
 * ledger and one read-only tracker snapshot (the local tracker's read again only when its file
 * changed; a rate-limited tracker's when the event log grew, else reused for a few seconds).
 */
import fs from 'node:fs';
import type { LoomPaths } from '../config/paths.js';
import type { LoomConfig } from '../core/config-model.js';
import type { Issue, PullRequest, TrackerSnapshot } from '../core/tracker-model.js';
import type { UsageTotals } from '../core/usage.js';
import { Label } from '../core/labels.js';
import type { DependencyMap } from '../core/dependencies.js';
import { dependencyCycles, openDependencies } from '../core/dependencies.js';
import type { Overlap, OverlapFacts } from '../core/overlap.js';
import { describeOverlap, overlapWaits } from '../core/overlap.js';
import { buildableQueue } from '../core/planner.js';
import { GENERATOR_ROLES, ROLE_NAMES, SUPPORT_ROLES } from '../core/vocabulary.js';
import type { RoleName } from '../core/vocabulary.js';
import { isTerminal } from '../core/progress.js';
import { ProgressStore } from '../process/progress-store.js';
import { FileStateStore } from '../state/state-store.js';
import { readConfig, readTracker } from './collect-status.js';
import type { StatusReport } from './status-report.js';
import { buildStatus } from './status-report.js';

export interface BoardCard {
  number: number;
  title: string;
  labels: string[];
  /** For a pull request: the issue it closes. */
  issue: number | null;
  /** For a ready issue the daemon holds back: what it waits on (`loom why` has the rest), else absent. */
  waiting?: string;
}

export interface BoardShepherd {
  slot: string;
  issue: number;
  title: string | null;
  task_id: string | null;
  phase: string | null;
  /** The runtime of the role its phase runs (builder, judge, doctor). */
  runtime: string | null;
  started: string | null;
  heartbeat: string | null;
  alive: boolean;
  /** How its run ended (`completed`, `blocked`, …) when it has and the daemon has not recorded it yet; else null. */
  finished: string | null;
  pr: number | null;
  /** Agent tokens and cost spent on the issue so far (usage ledger). */
  usage: UsageTotals | null;
  output_file: string | null;
}

export interface BoardRole {
  role: string;
  enabled: boolean;
  status: 'running' | 'idle';
  runtime: string | null;
  started: string | null;
  last_completed: string | null;
  last_outcome: string | null;
  /** When it runs next: an ISO time, `due`, or null (running, disabled, or waiting for low backlog). */
  next_run: string | null;
  /** What starts it besides time. */
  trigger: string;
}

export const LANES = ['ready', 'building', 'review_requested', 'changes_requested', 'ready_to_merge', 'blocked', 'proposals'] as const;
export type Lane = (typeof LANES)[number];

export interface Board {
  generated_at: string;
  /** Exactly what `loom status --json` prints. */
  status: StatusReport;
  /** Each lane's first `LANE_CARDS` cards (ready: urgent first, then by number). */
  lanes: Record<Lane, BoardCard[]>;
  /** How many cards each lane has in all. */
  lane_totals: Record<Lane, number>;
  shepherds: BoardShepherd[];
  roles: BoardRole[];
  budget: { per_day_usd: number | null; per_day_tokens: number | null; per_issue_usd: number | null; per_issue_tokens: number | null };
  /** The gauges of `/metrics`. */
  gauges: BoardGauges;
  /** The pids of the daemon and the working shepherds while they run (their death changes the board). */
  processes: number[];
}

export interface BoardGauges {
  daemon_up: number;
  shepherds_active: number;
  shepherds_max: number;
  /** Open issues by Loom label. */
  issues_by_label: Record<string, number>;
  /** Open pull requests by Loom label. */
  pull_requests_by_label: Record<string, number>;
}

const PHASE_ROLES: readonly string[] = ['builder', 'judge', 'doctor'];

/**
 * Cards a lane carries: a backlog of thousands stays a count, so the board sent on every change
 * stays small (docs/BENCHMARKS.md: 1.5 MB for 10,000 issues uncapped).
 */
const LANE_CARDS = 100;

/** Builds boards; the local tracker is read when its file changed, a remote one every `snapshotMaxAgeMs`. */
export class BoardCollector {
  private cached: { at: number; read: Awaited<ReturnType<typeof readTracker>>; key: string } | null = null;

  constructor(
    readonly paths: LoomPaths,
    /** How the status's hints spell a Loom command (default `loom`). */
    private readonly cli?: string,
    private readonly snapshotMaxAgeMs = 10_000,
  ) {}

  async board(now: Date = new Date()): Promise<Board> {
    const problems: string[] = [];
    const config = readConfig(this.paths, problems);
    const { snapshot, trackerHealth, dependencies, overlap } = await this.tracker(config, now);
    const status = buildStatus({ paths: this.paths, config, snapshot, trackerHealth, problems, now, ...(dependencies ? { dependencies } : {}), ...(overlap ? { overlap } : {}), ...(this.cli === undefined ? {} : { cli: this.cli }) });
    const board = buildBoard({ paths: this.paths, config, snapshot: snapshot instanceof Error ? null : snapshot, status, now });
    if (!(snapshot instanceof Error)) markWaiting(board.lanes.ready, snapshot, config, dependencies, overlap);
    return board;
  }

  private async tracker(config: LoomConfig, now: Date): Promise<Awaited<ReturnType<typeof readTracker>>> {
    const c = this.cached;
    // The local tracker is a file: read again when it (or its WAL) changed — a read-only read
    // copies the database. A remote one costs requests: reused for a while.
    // A remote one is also read again as soon as a Loom process wrote an event (its labels move
    // with its work: a claim, a phase, a verdict, a merge), so Loom's own changes show at once; an
    // unchanged repository costs one conditional request then, free of rate limit.
    const key = config.tracker.type === 'local' ? `${fileStamp(this.paths.trackerDb)}|${fileStamp(`${this.paths.trackerDb}-wal`)}` : `${config.tracker.type}|${fileStamp(this.paths.events)}`;
    const fresh = config.tracker.type === 'local' ? true : now.getTime() - (c?.at ?? 0) < this.snapshotMaxAgeMs;
    if (c !== null && c.key === key && fresh && !(c.read.snapshot instanceof Error)) return c.read;
    // Bounded: the lanes show at most LANE_CARDS cards each, and the counts come with the page, so
    // a rebuild costs the same with 1,000 or 100,000 open issues (a tracker may read everything).
    const read = await readTracker(this.paths, config, { page: LANE_CARDS });
    this.cached = { at: now.getTime(), read, key };
    return read;
  }
}

/** Says on each ready card what holds it back: open dependencies (or a cycle), or overlapping work. */
function markWaiting(cards: BoardCard[], snapshot: TrackerSnapshot, config: LoomConfig, dependencies: DependencyMap | undefined, overlap: OverlapFacts | undefined): void {
  const cycles = dependencyCycles(dependencies);
  const queue = buildableQueue(snapshot.issues, dependencies);
  const overlaps = config.overlap === 'wait' ? overlapWaits(overlap, queue) : new Map<number, Overlap[]>();
  for (const c of cards) {
    const open = openDependencies(dependencies, c.number);
    const cycle = cycles.find((g) => g.includes(c.number));
    if (cycle !== undefined) c.waiting = `dependency cycle: ${cycle.map((n) => `#${n}`).join(', ')}`;
    else if (open.length > 0) c.waiting = `waits on ${open.map((n) => `#${n}`).join(', ')}`;
    else if (overlaps.has(c.number)) c.waiting = `overlaps ${(overlaps.get(c.number) ?? []).map(describeOverlap).join('; ')}`;
  }
}

function fileStamp(file: string): string {
  try {
    const st = fs.statSync(file);
    return `${st.ino}:${st.size}:${st.mtimeMs}`;
  } catch {
    return '-';
  }
}

function card(item: Issue | PullRequest): BoardCard {
  return { number: item.number, title: item.title, labels: item.labels, issue: 'closesIssue' in item ? item.closesIssue : null };
}

function buildBoard(input: { paths: LoomPaths; config: LoomConfig; snapshot: TrackerSnapshot | null; status: StatusReport; now: Date }): Board {
  const { paths, config, snapshot, status, now } = input;
  const issues = snapshot?.issues ?? [];
  const prs = snapshot?.pullRequests ?? [];
  const byLabel = (items: (Issue | PullRequest)[], ...labels: string[]) => items.filter((i) => labels.some((l) => i.labels.includes(l))).map(card);
  const urgentFirst = (cards: BoardCard[]) => [...cards].sort((a, b) => Number(b.labels.includes(Label.urgent)) - Number(a.labels.includes(Label.urgent)) || a.number - b.number);
  const lanes: Record<Lane, BoardCard[]> = {
    ready: urgentFirst(byLabel(issues, Label.issue)),
    building: byLabel(issues, Label.building),
    review_requested: byLabel(prs, Label.reviewRequested),
    changes_requested: byLabel(prs, Label.changesRequested),
    ready_to_merge: byLabel(prs, Label.pr),
    blocked: byLabel(issues, Label.blocked),
    proposals: byLabel(issues, Label.architect, Label.hermit, Label.curated),
  };

  const laneTotals = Object.fromEntries(LANES.map((l) => [l, lanes[l].length])) as Record<Lane, number>;
  const page = snapshot?.page;
  if (page !== undefined) {
    // A bounded snapshot: the issue lanes' totals are the tracker's counts, not the cards read.
    const count = (...labels: string[]) => labels.reduce((sum, l) => sum + (page.counts[l] ?? 0), 0);
    laneTotals.ready = count(Label.issue);
    laneTotals.building = count(Label.building);
    laneTotals.blocked = count(Label.blocked);
    laneTotals.proposals = Math.max(lanes.proposals.length, count(Label.architect, Label.hermit, Label.curated));
  }
  for (const l of LANES) lanes[l] = lanes[l].slice(0, LANE_CARDS);

  const state = new FileStateStore(paths.state).peek();
  const progress = new ProgressStore(paths.progress);
  const titles = new Map(issues.map((i) => [i.number, i.title]));
  const runtimeOf = (role: string) => (ROLE_NAMES as readonly string[]).includes(role) ? (config.roles[role as RoleName].runtime ?? null) : null;
  const shepherds: BoardShepherd[] = status.shepherds.slots
    .filter((s) => s.status === 'working' && s.issue !== null)
    .map((s) => {
      const issue = s.issue as number;
      const entry = state?.shepherds[s.name];
      const record = progress.readShepherd(issue);
      const mine = record !== null && record.task_id === entry?.task_id ? record : null;
      const phase = s.phase;
      return {
        slot: s.name,
        issue,
        title: titles.get(issue) ?? null,
        task_id: entry?.task_id ?? null,
        phase,
        runtime: runtimeOf(phase !== null && PHASE_ROLES.includes(phase) ? phase : 'builder'),
        started: entry?.started ?? null,
        heartbeat: mine?.heartbeat ?? null,
        alive: s.alive,
        finished: mine !== null && isTerminal(mine.status) ? mine.status : null,
        pr: mine?.pr_number ?? entry?.pr_number ?? prs.find((p) => p.closesIssue === issue)?.number ?? null,
        usage: status.usage.by_issue[String(issue)] ?? null,
        output_file: s.output_file,
      };
    });

  const roles: BoardRole[] = status.support_roles.map((r) => {
    const role = r.role as RoleName;
    const interval = config.roles[role].interval;
    const generator = (GENERATOR_ROLES as readonly string[]).includes(role);
    let next: string | null = null;
    if (r.enabled && r.status === 'idle') {
      // Support roles count from the end of their last run; generators from their last start.
      const from = generator ? r.started : r.last_completed;
      next = from === null ? 'due' : new Date(Date.parse(from) + interval).toISOString();
      if (next !== 'due' && Date.parse(next) <= now.getTime()) next = 'due';
    }
    const trigger = generator
      ? config.issueThreshold > 0
        ? `when fewer than ${config.issueThreshold} issues are ready and fewer than ${config.maxProposals} proposals are open`
        : 'never: issueThreshold is 0, so the backlog never counts as low'
      : (SUPPORT_ROLES as readonly string[]).includes(role)
        ? { champion: `a PR labelled ${Label.pr}`, doctor: `a PR labelled ${Label.changesRequested}`, judge: `a PR labelled ${Label.reviewRequested}` }[role as string] ?? 'its interval only'
        : 'its interval only';
    return { role: r.role, enabled: r.enabled, status: r.status, runtime: role === 'champion' ? 'code' : runtimeOf(role), started: r.started, last_completed: r.last_completed, last_outcome: r.last_outcome, next_run: generator && next === 'due' ? null : next, trigger };
  });

  const countLabels = (items: (Issue | PullRequest)[]) => {
    const counts: Record<string, number> = {};
    for (const item of items) for (const label of item.labels) if (label.startsWith('loom:')) counts[label] = (counts[label] ?? 0) + 1;
    return counts;
  };
  const { budget } = config;
  return {
    generated_at: now.toISOString(),
    status,
    lanes,
    lane_totals: laneTotals,
    shepherds,
    roles,
    budget: { per_day_usd: budget.perDayUsd ?? null, per_day_tokens: budget.perDayTokens ?? null, per_issue_usd: budget.perIssueUsd ?? null, per_issue_tokens: budget.perIssueTokens ?? null },
    processes: [status.daemon.status === 'running' ? status.daemon.pid : null, ...status.shepherds.slots.map((s) => (s.alive ? s.pid : null)), ...status.shepherds.unrecorded.map((u) => u.pid)].filter((pid): pid is number => pid !== null),
    gauges: {
      daemon_up: status.daemon.status === 'running' ? 1 : 0,
      shepherds_active: status.shepherds.active,
      shepherds_max: status.shepherds.max,
      issues_by_label: page !== undefined ? Object.fromEntries(Object.entries(page.counts).filter(([l]) => l.startsWith('loom:'))) : countLabels(issues),
      pull_requests_by_label: countLabels(prs),
    },
  };
}
