/**
 * `claimVerdict`: who won a GitHub claim, read from the timeline after our label removal.
 */
import { describe, expect, it } from 'vitest';
import type { TrackerEvent } from '../../../src/core/tracker-model.js';
import { claimVerdict, interruptedClaim, ourRemoval } from '../../../src/tracker/github/github-claim.js';

let id = 0;
const event = (type: TrackerEvent['type'], label: string | null, actor: string): TrackerEvent => ({ id: ++id, type, label, actor, createdAt: '2026-01-05T10:00:00Z' });

describe('claimVerdict', () => {
  const approved = event('labeled', 'loom:issue', 'maintainer');

  it('is won when our removal is the only one and our loom:building came first', () => {
    expect(claimVerdict([approved, event('unlabeled', 'loom:issue', 'me'), event('labeled', 'loom:building', 'me')], 'me')).toBe('won');
  });

  it('is lost when another actor added loom:building first', () => {
    expect(claimVerdict([approved, event('unlabeled', 'loom:issue', 'other'), event('labeled', 'loom:building', 'other'), event('labeled', 'loom:building', 'me')], 'me')).toBe('lost');
  });

  it('is ambiguous when two removals by our own login both succeeded, or we cannot tell who we are', () => {
    const twice = [approved, event('unlabeled', 'loom:issue', 'me'), event('unlabeled', 'loom:issue', 'me'), event('labeled', 'loom:building', 'me')];
    expect(claimVerdict(twice, 'me')).toBe('ambiguous');
    expect(claimVerdict([approved, event('unlabeled', 'loom:issue', 'a'), event('unlabeled', 'loom:issue', 'b')], null)).toBe('ambiguous');
  });

  it('only counts what follows the latest approval', () => {
    const earlier = [event('labeled', 'loom:issue', 'maintainer'), event('unlabeled', 'loom:issue', 'other'), event('labeled', 'loom:building', 'other')];
    expect(claimVerdict([...earlier, approved, event('unlabeled', 'loom:issue', 'me'), event('labeled', 'loom:building', 'me')], 'me')).toBe('won');
  });
});

describe('ourRemoval (a removal of loom:issue whose answer was lost)', () => {
  const approved = event('labeled', 'loom:issue', 'maintainer');

  it('is ours when our removal is the first since the latest approval and no one else added loom:building', () => {
    expect(ourRemoval([approved, event('unlabeled', 'loom:issue', 'me')], 'me')).toBe(true);
    expect(ourRemoval([approved, event('unlabeled', 'loom:issue', 'other')], 'me')).toBe(false);
    expect(ourRemoval([approved, event('unlabeled', 'loom:issue', 'me'), event('labeled', 'loom:building', 'other')], 'me')).toBe(false);
    expect(ourRemoval([approved, event('unlabeled', 'loom:issue', 'me')], null)).toBe(false);
  });
});

describe('interruptedClaim (an issue with no state label)', () => {
  const approved = event('labeled', 'loom:issue', 'maintainer');

  it('is one when the last state-label change is our own removal of loom:issue', () => {
    expect(interruptedClaim([approved, event('unlabeled', 'loom:issue', 'me'), event('labeled', 'bug', 'me')], 'me')).toBe(true);
  });

  it("is not one after a human's removal, nor after ours of loom:building (left for the Champion)", () => {
    expect(interruptedClaim([approved, event('unlabeled', 'loom:issue', 'maintainer')], 'me')).toBe(false);
    expect(interruptedClaim([approved, event('unlabeled', 'loom:issue', 'me'), event('labeled', 'loom:building', 'me'), event('unlabeled', 'loom:building', 'me')], 'me')).toBe(false);
    expect(interruptedClaim([approved, event('unlabeled', 'loom:issue', 'me')], null)).toBe(false);
  });
});
