/**
 * One issue as the dashboard's issue page shows it (read-only): the issue and its pull requests,
 * every `why` gate, and its timeline — Loom's events for it (claims, phases, agent runs with
 * duration and cost, verdicts, doctor rounds, the merge) merged by time with the tracker's own
 * record of its label changes — and the log of its latest run.
 */
import type { LoomPaths } from '../config/paths.js';
import type { LoomEvent } from '../core/events.js';
import { describeEvent } from '../core/events.js';
import type { PullRequest } from '../core/tracker-model.js';
import { EventLog } from '../process/event-log.js';
import { latestRun } from '../process/run-logs.js';
import { FileStateStore } from '../state/state-store.js';
import { createTracker } from '../tracker/create-tracker.js';
import { readConfig } from './collect-status.js';
import type { WhyReport } from './why-report.js';
import { buildWhy, WHY_PAGE, whyFacts } from './why-report.js';

export interface TimelineEntry {
  at: string;
  /** `loom`: the event log; `tracker`: the tracker's record of the issue or its pull request. */
  source: 'loom' | 'tracker';
  type: string;
  text: string;
  /** The Loom event itself (agent runs carry duration, tokens and cost). */
  event?: LoomEvent;
}

export interface IssueReport {
  issue: { number: number; title: string; state: string; labels: string[]; author: string; created_at: string };
  pull_requests: { number: number; title: string; state: string; labels: string[] }[];
  why: WhyReport;
  timeline: TimelineEntry[];
  /** The log of the latest shepherd run, if there is one. */
  log_file: string | null;
}

/**
 * The report for issue `number`, or null when the tracker has no such issue. `events` are the
 * issue's Loom events when the caller keeps them (the dashboard does); else the log is read.
 */
export async function collectIssueReport(paths: LoomPaths, number: number, events: readonly LoomEvent[] | null = null, now: Date = new Date()): Promise<IssueReport | null> {
  const config = readConfig(paths, []);
  const log = new EventLog(paths.events);
  const mine = events ?? log.readAll().events.filter((e) => e.issue === number);
  const tracker = await createTracker(paths, config.tracker, { readonly: true });
  try {
    const [snapshot, issue] = await Promise.all([tracker.snapshot({ page: WHY_PAGE }), tracker.getIssue(number)]);
    if (issue === null) return null;
    // The same facts `loom why` reads (dependencies, overlapping work, the blocking comment, PRs, reviews).
    const facts = await whyFacts(tracker, issue, snapshot, { paths, config });
    const why = buildWhy({ paths, config, state: new FileStateStore(paths.state).peek(), snapshot, issue, number, now, facts });
    const prNumbers = new Set<number>(snapshot.pullRequests.filter((p) => p.closesIssue === number).map((p) => p.number));
    for (const e of mine) if (typeof e.pr === 'number') prNumbers.add(e.pr);
    const prs = (await Promise.all([...prNumbers].map((n) => tracker.getPullRequest(n)))).filter((p): p is PullRequest => p !== null && p.closesIssue === number);
    const trackerEvents = (await Promise.all([number, ...prs.map((p) => p.number)].map(async (n) => ({ n, events: await tracker.listEvents(n) })))).flatMap(({ n, events: list }) =>
      list.map(
        (e): TimelineEntry => ({
          at: e.createdAt,
          source: 'tracker',
          type: e.type,
          text: `${n === number ? `#${n}` : `PR #${n}`} ${e.type}${e.label !== null ? ` ${e.label}` : ''} by ${e.actor}`,
        }),
      ),
    );
    const timeline = [...mine.map((e): TimelineEntry => ({ at: e.at, source: 'loom', type: e.type, text: describeEvent(e), event: e })), ...trackerEvents].sort((a, b) => Date.parse(a.at) - Date.parse(b.at));
    return {
      issue: { number: issue.number, title: issue.title, state: issue.state, labels: issue.labels, author: issue.author, created_at: issue.createdAt },
      pull_requests: prs.map((p) => ({ number: p.number, title: p.title, state: p.state, labels: p.labels })),
      why,
      timeline,
      log_file: latestRun(paths.logs, log, { issue: number })?.file ?? null,
    };
  } finally {
    tracker.dispose();
  }
}
