/**
 * The Champion's merge policy (src/core/champion-policy.ts): merge only a Judge-approved PR
 * (`loom:pr`) that no human reserved (`loom:manual-merge`) and that is within the size limit.
 * Each rule, the boundaries, and which reason wins when several rules refuse.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { championDecision } from '../../src/core/champion-policy.js';
import { LABEL_INFO, Label } from '../../src/core/labels.js';

const decide = (labels: string[], changedLines = 10, maxLines = 100) => championDecision({ labels, changedLines, maxLines });

const NOT_APPROVED = { merge: false, reason: 'not approved (loom:pr missing)' };
const MANUAL = { merge: false, reason: 'loom:manual-merge: a human merges it' };
const tooBig = (changed: number, max: number) => ({ merge: false, reason: `${changed} changed lines exceed maxMergeLines ${max}` });

describe('championDecision: each rule', () => {
  it('merges an approved PR within the limit', () => {
    expect(decide([Label.pr])).toEqual({ merge: true });
  });

  it('does not merge without loom:pr', () => {
    expect(decide([])).toEqual(NOT_APPROVED);
    expect(decide(['bug', 'documentation'])).toEqual(NOT_APPROVED);
  });

  it.each([Label.reviewRequested, Label.changesRequested])('does not merge a PR that is only %s', (label) => {
    expect(decide([label])).toEqual(NOT_APPROVED);
  });

  it('matches the label exactly (no prefix, no case folding, no surrounding space)', () => {
    for (const near of ['loom:pr-draft', 'LOOM:PR', 'loom:PR', ' loom:pr', 'loom:pr ', 'loom:p']) expect(decide([near]), near).toEqual(NOT_APPROVED);
  });

  it('does not merge an approved PR a human reserved with loom:manual-merge', () => {
    expect(decide([Label.pr, Label.manualMerge])).toEqual(MANUAL);
    expect(decide([Label.manualMerge, 'bug', Label.pr])).toEqual(MANUAL);
  });

  it('does not merge an approved PR over maxMergeLines; exactly at the limit is fine', () => {
    expect(decide([Label.pr], 100, 100)).toEqual({ merge: true });
    expect(decide([Label.pr], 101, 100)).toEqual(tooBig(101, 100));
    expect(decide([Label.pr], 0, 0)).toEqual({ merge: true });
    expect(decide([Label.pr], 1, 0)).toEqual(tooBig(1, 0));
  });

  it('other labels do not matter', () => {
    const others = Object.keys(LABEL_INFO).filter((l) => l !== Label.pr && l !== Label.manualMerge);
    expect(decide([Label.pr, ...others, 'bug'])).toEqual({ merge: true });
  });
});

describe('championDecision: precedence', () => {
  it('a missing approval is reported first, whatever else is wrong', () => {
    expect(decide([Label.manualMerge], 10_000, 1)).toEqual(NOT_APPROVED);
    expect(decide([], 10_000, 1)).toEqual(NOT_APPROVED);
  });

  it('a human reservation is reported before the size', () => {
    expect(decide([Label.pr, Label.manualMerge], 10_000, 1)).toEqual(MANUAL);
  });

  it('for any labels and sizes: merge exactly when approved, not reserved and within the limit; the reason names the first rule that refuses', () => {
    const label = fc.constantFrom(...Object.keys(LABEL_INFO), 'bug', 'loom:pr-draft');
    fc.assert(
      fc.property(fc.array(label, { maxLength: 6 }), fc.nat({ max: 20_000 }), fc.nat({ max: 20_000 }), (labels, changedLines, maxLines) => {
        const decision = championDecision({ labels, changedLines, maxLines });
        const approved = labels.includes('loom:pr');
        const reserved = labels.includes('loom:manual-merge');
        const small = changedLines <= maxLines;
        expect(decision.merge).toBe(approved && !reserved && small);
        if (!approved) expect(decision).toEqual(NOT_APPROVED);
        else if (reserved) expect(decision).toEqual(MANUAL);
        else if (!small) expect(decision).toEqual(tooBig(changedLines, maxLines));
      }),
      { numRuns: 300, seed: 20260123 },
    );
  });
});
