import { describe, expect, it } from 'vitest';
import type { HumanReview } from '../../src/core/reviews.js';
import { actionableReviews, handledReviews, reviewMarker, reviewsForDoctor, writerApproval } from '../../src/core/reviews.js';

const review = (over: Partial<HumanReview> & Pick<HumanReview, 'id' | 'state'>): HumanReview => ({ author: 'alice', writer: true, body: '', submittedAt: `2026-01-01T00:00:${String(over.id).padStart(2, '0')}Z`, comments: [], ...over });

describe('human reviews', () => {
  it('hands a writer’s changes requested or substantive comments to the Doctor once; readers, approvals and empty comments never', () => {
    const reviews = [
      review({ id: 1, state: 'changes_requested', body: 'fix it' }),
      review({ id: 2, state: 'changes_requested', body: 'me too', author: 'bob', writer: false }),
      review({ id: 3, state: 'commented', body: '' }),
      review({ id: 4, state: 'commented', body: '', comments: [{ path: 'a.ts', line: 3, body: 'typo' }] }),
      review({ id: 5, state: 'approved', body: 'ok' }),
    ];
    expect(actionableReviews(reviews, new Set()).map((r) => r.id)).toEqual([1, 4]);
    const text = reviewsForDoctor(actionableReviews(reviews, new Set()));
    expect(text).toContain('### @alice requested changes\n\nfix it');
    expect(text).toContain('- `a.ts:3`: typo');
    const handled = handledReviews([`**Loom** — ${text}`, 'unrelated']);
    expect([...handled]).toEqual([1, 4]);
    expect(actionableReviews(reviews, handled)).toEqual([]);
    expect(reviewMarker(7)).toBe('<!-- loom:review 7 -->');
  });

  it('approval: some writer’s latest verdict approves and none requests changes; comments and readers do not count', () => {
    expect(writerApproval([]).approved).toBe(false);
    expect(writerApproval([review({ id: 1, state: 'approved', writer: false, author: 'bob' })]).approved).toBe(false);
    expect(writerApproval([review({ id: 1, state: 'changes_requested' }), review({ id: 2, state: 'commented', body: 'hm' })])).toEqual({ approved: false, by: [], requesting: ['alice'], stale: [] });
    expect(writerApproval([review({ id: 1, state: 'changes_requested' }), review({ id: 2, state: 'approved' })]).approved).toBe(true);
    expect(writerApproval([review({ id: 1, state: 'approved' }), review({ id: 2, state: 'changes_requested', author: 'carol' })])).toEqual({ approved: false, by: ['alice'], requesting: ['carol'], stale: [] });
    // An approval of another change is stale: it approves nothing; one of the current change does.
    const current = (id: string | null) => id === 'b';
    expect(writerApproval([review({ id: 1, state: 'approved', commitId: 'a' })], current)).toEqual({ approved: false, by: [], requesting: [], stale: ['alice'] });
    expect(writerApproval([review({ id: 1, state: 'approved', commitId: 'a' }), review({ id: 2, state: 'approved', commitId: 'b', author: 'carol' })], current)).toEqual({ approved: true, by: ['carol'], requesting: [], stale: ['alice'] });
    expect(writerApproval([review({ id: 1, state: 'approved' }), review({ id: 2, state: 'dismissed' })]).approved).toBe(false);
  });
});
