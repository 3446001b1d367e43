/**
 * The label state machine (PRODUCT.md §4): at most one issue-state label per issue, at most one
 * verdict label per PR; flags such as `loom:urgent` coexist with anything.
 */
import { describe, expect, it } from 'vitest';
import {
  ISSUE_STATE_LABELS,
  LABEL_INFO,
  Label,
  PROPOSAL_LABELS,
  PR_VERDICT_LABELS,
  applyLabelChange,
  isLoomLabel,
  issueState,
  prVerdict,
  validateLabelName,
} from '../../src/core/labels.js';

describe('label names', () => {
  it('are the names of existing Loom installations', () => {
    expect(Label).toEqual({
      architect: 'loom:architect',
      hermit: 'loom:hermit',
      curated: 'loom:curated',
      issue: 'loom:issue',
      building: 'loom:building',
      blocked: 'loom:blocked',
      reviewRequested: 'loom:review-requested',
      changesRequested: 'loom:changes-requested',
      pr: 'loom:pr',
      urgent: 'loom:urgent',
      abort: 'loom:abort',
      manualMerge: 'loom:manual-merge',
    });
  });

  it('groups: issue states, PR verdicts, proposals', () => {
    expect([...ISSUE_STATE_LABELS].sort()).toEqual(['loom:architect', 'loom:blocked', 'loom:building', 'loom:curated', 'loom:hermit', 'loom:issue']);
    expect([...PR_VERDICT_LABELS].sort()).toEqual(['loom:changes-requested', 'loom:pr', 'loom:review-requested']);
    expect([...PROPOSAL_LABELS].sort()).toEqual(['loom:architect', 'loom:curated', 'loom:hermit']);
    for (const flag of [Label.urgent, Label.abort, Label.manualMerge]) {
      expect(ISSUE_STATE_LABELS).not.toContain(flag);
      expect(PR_VERDICT_LABELS).not.toContain(flag);
    }
  });

  it('every label has a description and a 6-digit hex colour, and every one is valid', () => {
    for (const name of Object.values(Label)) {
      const info = LABEL_INFO[name];
      expect(info.description.length, name).toBeGreaterThan(0);
      expect(info.color, name).toMatch(/^[0-9a-f]{6}$/);
      expect(validateLabelName(name), name).toBeUndefined();
    }
    expect(Object.keys(LABEL_INFO).sort()).toEqual(Object.values(Label).sort());
  });

  it('isLoomLabel knows exactly the Loom labels', () => {
    for (const name of Object.values(Label)) expect(isLoomLabel(name)).toBe(true);
    expect(isLoomLabel('bug')).toBe(false);
    expect(isLoomLabel('loom:unknown')).toBe(false);
    expect(isLoomLabel('toString')).toBe(false);
    expect(isLoomLabel('__proto__')).toBe(false);
  });
});

describe('applyLabelChange', () => {
  it('adding an issue-state label replaces the previous one', () => {
    expect(applyLabelChange([Label.issue], [Label.building], [])).toEqual([Label.building]);
    expect(applyLabelChange([Label.building], [Label.blocked], [])).toEqual([Label.blocked]);
    expect(applyLabelChange([Label.building], [Label.issue], [])).toEqual([Label.issue]);
    expect(applyLabelChange([Label.architect], [Label.issue], [])).toEqual([Label.issue]);
  });

  it('removes every other state label, even from an already inconsistent set', () => {
    const messy = [Label.architect, Label.hermit, Label.curated, Label.issue, Label.building, Label.blocked];
    for (const state of ISSUE_STATE_LABELS) expect(applyLabelChange(messy, [state], [])).toEqual([state]);
  });

  it('adding a PR verdict replaces the previous verdict', () => {
    expect(applyLabelChange([Label.reviewRequested], [Label.changesRequested], [])).toEqual([Label.changesRequested]);
    expect(applyLabelChange([Label.changesRequested], [Label.reviewRequested], [])).toEqual([Label.reviewRequested]);
    expect(applyLabelChange([Label.reviewRequested, Label.changesRequested], [Label.pr], [])).toEqual([Label.pr]);
  });

  it('state and verdict groups are independent of each other', () => {
    expect(applyLabelChange([Label.issue, Label.reviewRequested], [Label.pr], [])).toEqual([Label.issue, Label.pr]);
    expect(applyLabelChange([Label.issue, Label.reviewRequested], [Label.building], [])).toEqual([Label.building, Label.reviewRequested]);
  });

  it('flags and foreign labels coexist with state labels and survive a state change', () => {
    expect(applyLabelChange([Label.issue, Label.urgent, 'bug'], [Label.building], [])).toEqual(['bug', Label.building, Label.urgent]);
    expect(applyLabelChange([Label.building], [Label.abort], [])).toEqual([Label.abort, Label.building]);
    expect(applyLabelChange([Label.pr], [Label.manualMerge], [])).toEqual([Label.manualMerge, Label.pr]);
    expect(applyLabelChange([Label.urgent], [Label.urgent], [])).toEqual([Label.urgent]);
  });

  it('removes labels, and removing an absent label is a no-op', () => {
    expect(applyLabelChange([Label.building, Label.abort], [], [Label.abort])).toEqual([Label.building]);
    expect(applyLabelChange([Label.building], [], ['not-there'])).toEqual([Label.building]);
    expect(applyLabelChange([Label.building], [], [Label.building])).toEqual([]);
  });

  it('applies removals before additions (a swap)', () => {
    expect(applyLabelChange([Label.issue], [Label.building], [Label.issue])).toEqual([Label.building]);
    // A label both removed and added ends up present.
    expect(applyLabelChange([], [Label.urgent], [Label.urgent])).toEqual([Label.urgent]);
  });

  it('with several state labels in one add, the last one wins', () => {
    expect(applyLabelChange([], [Label.issue, Label.building], [])).toEqual([Label.building]);
    expect(applyLabelChange([], [Label.pr, Label.reviewRequested], [])).toEqual([Label.reviewRequested]);
  });

  it('returns sorted, de-duplicated labels so equal sets compare equal', () => {
    const a = applyLabelChange(['zeta', 'alpha', Label.urgent, 'alpha'], ['mid'], []);
    const b = applyLabelChange(['mid', Label.urgent, 'zeta'], ['alpha'], []);
    expect(a).toEqual(['alpha', Label.urgent, 'mid', 'zeta']);
    expect(a).toEqual(b);
    expect(applyLabelChange([], [], [])).toEqual([]);
  });

  it('accepts any iterable and does not modify its input', () => {
    const current = [Label.issue, Label.urgent];
    expect(applyLabelChange(new Set(current), [Label.building], [])).toEqual([Label.building, Label.urgent]);
    applyLabelChange(current, [Label.building], [Label.urgent]);
    expect(current).toEqual([Label.issue, Label.urgent]);
  });

  it('never leaves more than one state or verdict label, whatever the sequence of changes', () => {
    const all = [...ISSUE_STATE_LABELS, ...PR_VERDICT_LABELS, Label.urgent, Label.abort, 'bug'];
    let labels: string[] = [];
    // A deterministic pseudo-random walk over additions and removals.
    let seed = 7;
    const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31);
    for (let step = 0; step < 500; step++) {
      const pick = () => all[next() % all.length] as string;
      labels = next() % 3 === 0 ? applyLabelChange(labels, [], [pick()]) : applyLabelChange(labels, [pick(), pick()], []);
      expect(labels.filter((l) => ISSUE_STATE_LABELS.includes(l)).length).toBeLessThanOrEqual(1);
      expect(labels.filter((l) => PR_VERDICT_LABELS.includes(l)).length).toBeLessThanOrEqual(1);
      expect(labels).toEqual([...new Set(labels)].sort());
    }
  });
});

describe('issueState / prVerdict', () => {
  it('issueState finds the state label among others', () => {
    expect(issueState(['bug', Label.urgent, Label.building])).toBe(Label.building);
    expect(issueState([Label.architect])).toBe(Label.architect);
    expect(issueState([Label.blocked, 'x'])).toBe(Label.blocked);
  });

  it('issueState is undefined without a state label (flags and verdicts are not states)', () => {
    expect(issueState([])).toBeUndefined();
    expect(issueState(['bug', Label.urgent, Label.abort, Label.pr, Label.reviewRequested])).toBeUndefined();
  });

  it('prVerdict finds the verdict label among others', () => {
    expect(prVerdict([Label.manualMerge, Label.pr])).toBe(Label.pr);
    expect(prVerdict([Label.reviewRequested])).toBe(Label.reviewRequested);
    expect(prVerdict(['x', Label.changesRequested])).toBe(Label.changesRequested);
  });

  it('prVerdict is undefined without a verdict (issue states are not verdicts)', () => {
    expect(prVerdict([])).toBeUndefined();
    expect(prVerdict([Label.issue, Label.building, Label.manualMerge])).toBeUndefined();
  });
});

describe('validateLabelName', () => {
  it('accepts ordinary names, up to 50 characters', () => {
    expect(validateLabelName('bug')).toBeUndefined();
    expect(validateLabelName('needs review: yes')).toBeUndefined();
    expect(validateLabelName('a'.repeat(50))).toBeUndefined();
    expect(validateLabelName('é🙂')).toBeUndefined();
  });

  it('rejects an empty name', () => {
    expect(validateLabelName('')).toBe('label must not be empty');
  });

  it('rejects whitespace at either end, including a name that is only whitespace', () => {
    expect(validateLabelName(' bug')).toMatch(/whitespace/);
    expect(validateLabelName('bug ')).toMatch(/whitespace/);
    expect(validateLabelName('\tbug')).toMatch(/whitespace/);
    expect(validateLabelName('   ')).toMatch(/whitespace/);
  });

  it('rejects names longer than 50 characters', () => {
    expect(validateLabelName('a'.repeat(51))).toMatch(/longer than 50/);
  });

  it('rejects commas (labels are passed as comma-separated lists)', () => {
    expect(validateLabelName('a,b')).toMatch(/comma/);
  });

  it('names the offending label in the message', () => {
    expect(validateLabelName('x,y')).toContain('"x,y"');
  });
});
