/**
 * The Champion's merge policy (src/core/champion-policy.ts): merge only a PR whose issue is open,
 * not blocked or aborted and owned by no shepherd, that the Judge approved (`loom:pr`), that no
 * human reserved (`loom:manual-merge`) and that is within the size limit. Each rule, the
 * boundaries, and which reason wins when several rules refuse.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { championDecision } from '../../src/core/champion-policy.js';
import { LABEL_INFO, Label } from '../../src/core/labels.js';
import type { Issue } from '../../src/core/tracker-model.js';

const at = '2026-01-01T00:00:00Z';
const issueWith = (labels: string[], state: Issue['state'] = 'open'): Issue => ({ number: 1, title: 't', body: '', state, labels, author: 'a', createdAt: at, updatedAt: at });
/** An open issue that no shepherd owns and nobody blocked: the Champion's to merge. */
const free = issueWith([]);

const decide = (labels: string[], changedLines = 10, maxLines = 100, issue: Issue | null = free) => championDecision({ labels, changedLines, maxLines, issueNumber: 1, issue });

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

describe('championDecision: the issue', () => {
  it('merges whatever flags the issue carries, as long as no state label holds it', () => {
    expect(decide([Label.pr], 10, 100, issueWith([Label.urgent, 'bug']))).toEqual({ merge: true });
  });

  it('never merges a PR whose issue is closed, gone, blocked, aborted or owned by a shepherd — whatever the PR says', () => {
    expect(decide([Label.pr], 10, 100, issueWith([], 'closed'))).toEqual({ merge: false, reason: 'issue #1 is closed' });
    expect(decide([Label.pr], 10, 100, null)).toEqual({ merge: false, reason: 'issue #1 does not exist' });
    expect(decide([Label.pr], 10, 100, issueWith([Label.blocked]))).toEqual({ merge: false, reason: 'issue #1 is `loom:blocked`' });
    expect(decide([Label.pr], 10, 100, issueWith([Label.abort]))).toEqual({ merge: false, reason: 'issue #1 has `loom:abort`' });
    expect(decide([Label.pr], 10, 100, issueWith([Label.building]))).toEqual({ merge: false, reason: 'a shepherd owns issue #1 (`loom:building`)' });
  });
});

describe('championDecision: precedence', () => {
  it('the issue is reported first, whatever is wrong with the PR', () => {
    expect(decide([Label.manualMerge], 10_000, 1, issueWith([Label.blocked]))).toEqual({ merge: false, reason: 'issue #1 is `loom:blocked`' });
  });

  it('a missing approval is reported first, whatever else is wrong', () => {
    expect(decide([Label.manualMerge], 10_000, 1)).toEqual(NOT_APPROVED);
    expect(decide([], 10_000, 1)).toEqual(NOT_APPROVED);
  });

  it('a human reservation is reported before the size', () => {
    expect(decide([Label.pr, Label.manualMerge], 10_000, 1)).toEqual(MANUAL);
  });

  it('for any labels, sizes and issues: merge exactly when the issue is free, approved, not reserved and within the limit; the reason names the first rule that refuses', () => {
    const label = fc.constantFrom(...Object.keys(LABEL_INFO), 'bug', 'loom:pr-draft');
    const issue = fc.option(fc.record({ state: fc.constantFrom<Issue['state']>('open', 'closed'), labels: fc.array(label, { maxLength: 3 }) }), { nil: null });
    fc.assert(
      fc.property(fc.array(label, { maxLength: 6 }), fc.nat({ max: 20_000 }), fc.nat({ max: 20_000 }), issue, (labels, changedLines, maxLines, read) => {
        const decision = championDecision({ labels, changedLines, maxLines, issueNumber: 1, issue: read === null ? null : issueWith(read.labels, read.state) });
        const held = read === null || read.state !== 'open' || read.labels.some((l) => l === 'loom:blocked' || l === 'loom:abort' || l === 'loom:building');
        const approved = labels.includes('loom:pr');
        const reserved = labels.includes('loom:manual-merge');
        const small = changedLines <= maxLines;
        expect(decision.merge).toBe(!held && approved && !reserved && small);
        if (held) expect(decision.merge ? '' : decision.reason).toMatch(/^(issue #1 |a shepherd owns issue #1)/);
        else if (!approved) expect(decision).toEqual(NOT_APPROVED);
        else if (reserved) expect(decision).toEqual(MANUAL);
        else if (!small) expect(decision).toEqual(tooBig(changedLines, maxLines));
      }),
      { numRuns: 300, seed: 20260123 },
    );
  });
});
