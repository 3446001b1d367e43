/**
 * The original Loom's labels (docs/state-machine.md, "Labels of the original Loom"): holds are
 * never built or merged, epics and failure marks are never built, merge-conflict and ci-failure
 * PRs go to the Doctor, auto-merge-ok lifts the size limit — through the planner and the
 * Champion's policy, with a fake clock.
 */
import { describe, expect, it } from 'vitest';
import { defaultConfig } from '../../src/core/config-model.js';
import type { LoomConfig } from '../../src/core/config-model.js';
import { emptyState, idleRole } from '../../src/core/daemon-state.js';
import { Label, canonicalLabel, unknownLoomLabel } from '../../src/core/labels.js';
import { plan } from '../../src/core/planner.js';
import { championDecision } from '../../src/core/champion-policy.js';
import type { Issue, PullRequest } from '../../src/core/tracker-model.js';

const NOW = Date.parse('2026-06-01T12:00:00.000Z');

function issue(number: number, labels: string[]): Issue {
  const at = new Date(Date.parse('2026-05-01T00:00:00.000Z') + number * 60_000).toISOString();
  return { number, title: `Issue ${number}`, body: '', state: 'open', labels, author: 'alice', createdAt: at, updatedAt: at };
}

function pr(number: number, labels: string[], closesIssue: number): PullRequest {
  const at = new Date(NOW - 3_600_000).toISOString();
  return { number, title: `PR ${number}`, body: '', state: 'open', labels, head: `loom/issue-${closesIssue}`, base: 'main', closesIssue, createdAt: at, updatedAt: at };
}

function config(): LoomConfig {
  const c = defaultConfig();
  c.roles.builder.enabled = true;
  c.roles.builder.runtime = 'script';
  for (const role of ['architect', 'hermit', 'guide', 'champion', 'doctor', 'judge', 'curator'] as const) c.roles[role].enabled = false;
  c.maxShepherds = 10;
  return c;
}

function planFor(issues: Issue[], pullRequests: PullRequest[] = [], over: (c: LoomConfig) => void = () => undefined, force = false) {
  const c = config();
  over(c);
  const state = emptyState();
  // Support roles ran a moment ago: only demand (a waiting PR) starts one.
  for (const role of ['champion', 'doctor', 'judge'] as const) state.support_roles[role] = { ...idleRole(), last_completed: new Date(NOW - 2 * 60_000).toISOString() };
  return plan({ state, observation: { snapshot: { issues, pullRequests }, processes: {}, strays: [] }, config: c, now: NOW, force, mode: 'normal' });
}

const spawned = (actions: ReturnType<typeof plan>) => actions.filter((a) => a.type === 'spawn-shepherd').map((a) => (a as { issue: number }).issue);

describe('labels of the original Loom: what is never built', () => {
  it('a ready issue held by loom:operator-only, loom:needs-capability or any loom:operator* kind is not built; its neighbours are', () => {
    const actions = planFor([
      issue(1, [Label.issue, 'loom:operator-only']),
      issue(2, [Label.issue, 'loom:needs-capability']),
      issue(3, [Label.issue, 'loom:operator']),
      issue(4, [Label.issue, 'loom:operator-decision']),
      issue(5, [Label.issue]),
    ]);
    expect(spawned(actions)).toEqual([5]);
  });

  it('an epic and an issue marked failed by the original (loom:failed:*, loom:needs-fix) are not built', () => {
    const actions = planFor([issue(1, [Label.issue, 'loom:epic']), issue(2, [Label.issue, 'loom:failed:builder']), issue(3, [Label.issue, 'loom:needs-fix']), issue(4, [Label.issue, 'loom:epic-phase'])]);
    expect(spawned(actions)).toEqual([4]);
  });

  it('force mode does not promote a held proposal', () => {
    const actions = planFor([issue(1, [Label.architect, 'loom:operator']), issue(2, [Label.architect])], [], () => undefined, true);
    expect(actions.filter((a) => a.type === 'promote').map((a) => (a as { issue: number }).issue)).toEqual([2]);
  });
});

describe('labels of the original Loom: pull requests', () => {
  it('loom:merge-conflict and loom:ci-failure ask for the Doctor', () => {
    const withDoctor = (c: LoomConfig) => {
      c.roles.doctor.enabled = true;
      c.roles.doctor.runtime = 'script';
    };
    for (const label of ['loom:merge-conflict', 'loom:ci-failure']) {
      const actions = planFor([issue(7, [])], [pr(8, [label], 7)], withDoctor);
      expect(actions, label).toContainEqual({ type: 'spawn-role', role: 'doctor', reason: 'demand' });
    }
    expect(planFor([issue(7, [])], [pr(8, ['loom:reviewing'], 7)], withDoctor).filter((a) => a.type === 'spawn-role')).toEqual([]);
  });

  it('a held PR, or the PR of a held issue, does not call the Champion, the Judge or the Doctor', () => {
    const all = (c: LoomConfig) => {
      for (const role of ['champion', 'doctor', 'judge'] as const) {
        c.roles[role].enabled = true;
        c.roles[role].runtime = 'script';
      }
    };
    const actions = planFor(
      [issue(7, []), issue(9, ['loom:operator'])],
      [pr(8, [Label.pr, 'loom:operator'], 7), pr(10, [Label.changesRequested], 9), pr(11, [Label.reviewRequested, 'loom:operator-only'], 7)],
      all,
    );
    expect(actions.filter((a) => a.type === 'spawn-role')).toEqual([]);
  });

  it('the Champion never merges a held PR (hold on the PR or on its issue)', () => {
    const open = issue(7, []);
    const decide = (labels: string[], changedLines = 10, on: Issue = open) => championDecision({ labels, changedLines, maxLines: 200, issueNumber: 7, issue: on });
    expect(decide([Label.pr, 'loom:operator'])).toEqual({ merge: false, reason: 'loom:operator: held for a human' });
    expect(decide([Label.pr], 10, issue(7, ['loom:operator-only'])).merge).toBe(false);
    expect(decide([Label.pr, 'loom:needs-capability']).merge).toBe(false);
    expect(decide([Label.pr, 'loom:epic-phase']).merge).toBe(true);
  });

  it('loom:auto-merge-ok lifts the size limit, and only the size limit', () => {
    const open = issue(7, []);
    const decide = (labels: string[], changedLines: number) => championDecision({ labels, changedLines, maxLines: 200, issueNumber: 7, issue: open });
    expect(decide([Label.pr], 500).merge).toBe(false);
    expect(decide([Label.pr, 'loom:auto-merge-ok'], 500).merge).toBe(true);
    expect(decide([Label.pr, 'loom:auto-merge-ok', Label.manualMerge], 5).merge).toBe(false);
    expect(decide([Label.pr, 'loom:auto-merge-ok', 'loom:operator'], 5).merge).toBe(false);
  });
});

describe('labels of the original Loom: names', () => {
  it('are known labels, compared case-insensitively like Loom’s own; a typo in the namespace is still refused', () => {
    for (const name of ['loom:operator', 'loom:operator-only', 'loom:needs-capability', 'loom:merge-conflict', 'loom:ci-failure', 'loom:triage', 'loom:curating', 'loom:treating', 'loom:reviewing', 'loom:evaluating', 'loom:auto-merge-ok', 'loom:epic', 'loom:epic-phase', 'loom:failed:judge', 'loom:needs-fix']) {
      expect(unknownLoomLabel(name), name).toBeUndefined();
      expect(canonicalLabel(name.toUpperCase()), name).toBe(name);
    }
    expect(unknownLoomLabel('loom:operater')).toMatch(/not a Loom label/);
  });
});
