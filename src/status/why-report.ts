/**
 * `loom why <issue>`: every gate between an issue and a shepherd, in the order the planner
 * applies them, each with whether it passes and what to do about it. Read-only, like status.
 */
import type { LoomConfig } from '../core/config-model.js';
import type { LoomPaths } from '../config/paths.js';
import type { DaemonState } from '../core/daemon-state.js';
import { activeShepherds } from '../core/daemon-state.js';
import { Label, PROPOSAL_LABELS } from '../core/labels.js';
import { buildBlocker, originalLabel } from '../core/original-labels.js';
import { buildOrder } from '../core/planner.js';
import { liveLock } from '../state/daemon-lock.js';
import { ProgressStore, viewOf } from '../process/progress-store.js';
import type { Issue, TrackerSnapshot } from '../core/tracker-model.js';

export interface Gate {
  gate: string;
  ok: boolean;
  detail: string;
}

export interface WhyReport {
  issue: number;
  /** One line: the first gate that fails, or that it is being (or about to be) built. */
  verdict: string;
  gates: Gate[];
}

export function buildWhy(input: { paths: LoomPaths; config: LoomConfig; state: DaemonState | null; snapshot: TrackerSnapshot; issue: Issue | null; number: number; now: Date }): WhyReport {
  const { paths, config, state, snapshot, issue, number, now } = input;
  const gates: Gate[] = [];
  const add = (gate: string, ok: boolean, detail: string) => gates.push({ gate, ok, detail });
  add('exists', issue !== null, issue ? `#${number}: ${issue.title}` : `#${number} does not exist on the tracker`);
  if (issue === null) return finish(number, gates);
  add('open', issue.state === 'open', issue.state === 'open' ? 'open' : 'closed: reopen it to build it');
  const record = new ProgressStore(paths.progress).readShepherd(number);
  const owned = viewOf(record, now.getTime()).alive;
  const building = issue.labels.includes(Label.building);
  add('not already owned', !owned && !building, owned ? `a shepherd is working on it (pid ${record?.pid ?? record?.launcher_pid ?? '?'}, phase ${record?.phase ?? '?'}); \`loom logs ${number}\`` : building ? `${Label.building} but no live shepherd: the next iteration returns it to ${Label.issue}` : 'no shepherd owns it');
  const proposal = PROPOSAL_LABELS.find((l) => issue.labels.includes(l));
  const ready = issue.labels.includes(Label.issue);
  add(
    `labelled ${Label.issue}`,
    ready || (proposal !== undefined && state?.force_mode === true),
    ready
      ? 'ready to build'
      : issue.labels.includes(Label.blocked)
        ? `${Label.blocked}: read its last comment, then \`loom issue label ${number} ${Label.issue}\``
        : proposal
          ? `a proposal (${proposal}): approve with \`loom issue label ${number} ${Label.issue}\` (force mode promotes it automatically)`
          : `has no ${Label.issue} label: \`loom issue label ${number} ${Label.issue}\``,
  );
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
  add('daemon running', daemon?.holder === 'daemon', daemon?.holder === 'daemon' ? `pid ${daemon.pid}` : `no daemon: \`loom start\`, or \`loom spawn ${number}\` to build it now`);
  const active = state ? activeShepherds(state).length : 0;
  add('a shepherd slot is free', active < config.maxShepherds, `${active}/${config.maxShepherds} shepherds busy`);
  const queue = buildOrder(snapshot.issues.filter((i) => i.labels.includes(Label.issue) && buildBlocker(i.labels) === undefined));
  const position = queue.findIndex((i) => i.number === number);
  if (position >= 0) add('next in line', position < Math.max(1, config.maxShepherds - active), `position ${position + 1} of ${queue.length} ready issues (${Label.urgent} first, then oldest)${issue.labels.includes(Label.urgent) ? '' : `; \`loom issue label ${number} ${Label.urgent}\` moves it up`}`);
  return finish(number, gates);
}

function finish(issue: number, gates: Gate[]): WhyReport {
  const failing = gates.find((g) => !g.ok);
  return { issue, verdict: failing ? `#${issue} is waiting: ${failing.gate} — ${failing.detail}` : `#${issue} passes every gate: the next iteration starts a shepherd for it`, gates };
}

export function renderWhy(report: WhyReport): string {
  return [report.verdict, '', ...report.gates.map((g) => `  ${g.ok ? '✓' : '✗'} ${g.gate.padEnd(24)} ${g.detail}`)].join('\n');
}
