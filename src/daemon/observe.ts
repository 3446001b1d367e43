/**
 * What an iteration sees besides the tracker: each running shepherd's and role's liveness from
 * its progress record (the planner's `ProcessView`), records no state entry knows (strays, of
 * shepherds and of roles), and
 * the pipeline counts derived from the snapshot for the summary and `pipeline_state`.
 */
import type { DaemonState } from '../core/daemon-state.js';
import { PIPELINE_LIST_LIMIT, activeShepherds } from '../core/daemon-state.js';
import { Label } from '../core/labels.js';
import type { Observation, ProcessView } from '../core/planner.js';
import type { TrackerSnapshot } from '../core/tracker-model.js';
import type { ProgressStore } from '../process/progress-store.js';
import { viewOf } from '../process/progress-store.js';
import { DAEMON_ROLES } from '../core/vocabulary.js';

export function observe(state: DaemonState, snapshot: TrackerSnapshot, progress: ProgressStore, now: number): Observation {
  const processes: Record<string, ProcessView> = {};
  const known = new Set<string>();
  for (const [, entry] of activeShepherds(state)) {
    if (!entry.task_id) continue;
    known.add(entry.task_id);
    const record = progress.readShepherd(entry.issue as number);
    processes[entry.task_id] = viewOf(record?.task_id === entry.task_id ? record : null, now, entry);
  }
  for (const [role, entry] of Object.entries(state.support_roles)) {
    if (entry.status !== 'running' || !entry.task_id) continue;
    known.add(entry.task_id);
    const record = progress.readRole(role);
    processes[entry.task_id] = viewOf(record?.task_id === entry.task_id ? record : null, now, entry);
  }
  const strays = progress
    .listShepherds()
    .filter((p) => !known.has(p.task_id))
    .map((p) => viewOf(p, now));
  const roleStrays: ProcessView[] = [];
  for (const role of DAEMON_ROLES) {
    if (state.support_roles[role]?.status === 'running') continue; // its record, or one it replaced
    const record = progress.readRole(role);
    if (record !== null && !known.has(record.task_id)) roleStrays.push(viewOf(record, now));
  }
  return { snapshot, processes, strays, roleStrays };
}

/** Counts for the summary line and `pipeline_state` (with the lowest numbers of each list), from the snapshot. */
export function pipeline(snapshot: TrackerSnapshot, at: string): DaemonState['pipeline_state'] {
  const page = snapshot.page;
  // A bounded snapshot brings the issues' counts and lowest numbers with it; PRs are all there.
  const withLabel = (label: string) => page?.lowest[label] ?? snapshot.issues.filter((i) => i.labels.includes(label)).map((i) => i.number);
  const countOf = (label: string, numbers: number[]) => (page ? (page.counts[label] ?? 0) : numbers.length);
  const prsWith = (label: string) => snapshot.pullRequests.filter((p) => p.labels.includes(label)).map((p) => p.number);
  const all = {
    ready: withLabel(Label.issue),
    building: withLabel(Label.building),
    blocked: withLabel(Label.blocked),
    review_requested: prsWith(Label.reviewRequested),
    changes_requested: prsWith(Label.changesRequested),
    ready_to_merge: prsWith(Label.pr),
    proposals: [...withLabel(Label.architect), ...withLabel(Label.hermit), ...withLabel(Label.curated)],
  };
  const lowest = (numbers: number[]) => [...numbers].sort((a, b) => a - b).slice(0, PIPELINE_LIST_LIMIT);
  return {
    counts: {
      ready: countOf(Label.issue, all.ready),
      building: countOf(Label.building, all.building),
      blocked: countOf(Label.blocked, all.blocked),
      review_requested: all.review_requested.length,
      changes_requested: all.changes_requested.length,
      ready_to_merge: all.ready_to_merge.length,
      proposals: page ? countOf(Label.architect, []) + countOf(Label.hermit, []) + countOf(Label.curated, []) : all.proposals.length,
    },
    ready: lowest(all.ready),
    building: lowest(all.building),
    blocked: lowest(all.blocked),
    review_requested: lowest(all.review_requested),
    changes_requested: lowest(all.changes_requested),
    ready_to_merge: lowest(all.ready_to_merge),
    proposals: lowest(all.proposals),
    last_updated: at,
  };
}
