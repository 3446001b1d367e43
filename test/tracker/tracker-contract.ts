/**
 * The `Tracker` port's contract as a reusable vitest suite: every adapter (local SQLite today,
 * GitHub later) runs it, so the daemon can rely on the same behaviour from each.
 *
 * Written for adapters that share state with the outside world: it only looks at items it created
 * itself, never assumes numbers start at 1, and never asserts the actor's name (the GitHub actor is
 * whoever owns the token) beyond it being recorded consistently.
 */

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type Tracker } from '../../src/tracker/tracker.js';
import { NotFoundError } from '../../src/core/tracker-model.js';

export function describeTrackerContract(
  name: string,
  make: () => Promise<{ tracker: Tracker; cleanup: () => Promise<void> }>,
): void {
  describe(`Tracker contract: ${name}`, () => {
    let tracker: Tracker;
    let cleanup: () => Promise<void>;

    beforeEach(async () => {
      ({ tracker, cleanup } = await make());
    });

    afterEach(async () => {
      tracker.dispose();
      await cleanup();
    });

    /** A number no adapter has handed out. */
    const unknownNumber = 987_654_321;

    describe('issues', () => {
      it('creates, gets and lists issues', async () => {
        const a = await tracker.createIssue({ title: 'First', body: 'Body of first', labels: ['loom:issue', 'bug'] });
        const b = await tracker.createIssue({ title: 'Second' });

        expect(a).toMatchObject({ title: 'First', body: 'Body of first', state: 'open', labels: ['bug', 'loom:issue'] });
        expect(b).toMatchObject({ title: 'Second', body: '', state: 'open', labels: [] });
        expect(b.number).toBeGreaterThan(a.number);
        expect(a.author).not.toBe('');
        expect(Date.parse(a.createdAt)).not.toBeNaN();
        expect(a.updatedAt >= a.createdAt).toBe(true);

        expect(await tracker.getIssue(a.number)).toEqual(a);
        expect(await tracker.getIssue(b.number)).toEqual(b);

        const open = (await tracker.listIssues()).filter((i) => i.number === a.number || i.number === b.number);
        expect(open.map((i) => i.number)).toEqual([a.number, b.number]);
        expect(open[0]).toEqual(a);
      });

      it('lists by state and by labels, ordered by number', async () => {
        const mine = new Set<number>();
        const track = <T extends { number: number }>(item: T): T => {
          mine.add(item.number);
          return item;
        };
        const ready = track(await tracker.createIssue({ title: 'ready', labels: ['loom:issue', 'loom:urgent'] }));
        const readyToo = track(await tracker.createIssue({ title: 'ready too', labels: ['loom:issue'] }));
        const done = track(await tracker.createIssue({ title: 'done', labels: ['loom:issue', 'loom:urgent'] }));
        await tracker.close(done.number);
        const pr = track(await tracker.createPullRequest({ title: 'pr', head: 'loom/x', base: 'main', labels: ['loom:urgent'] }));

        const numbers = async (filter?: Parameters<Tracker['listIssues']>[0]): Promise<number[]> =>
          (await tracker.listIssues(filter)).map((i) => i.number).filter((n) => mine.has(n));

        expect(await numbers()).toEqual([ready.number, readyToo.number]);
        expect(await numbers({ state: 'open' })).toEqual([ready.number, readyToo.number]);
        expect(await numbers({ state: 'closed' })).toEqual([done.number]);
        expect(await numbers({ state: 'all' })).toEqual([ready.number, readyToo.number, done.number]);
        expect(await numbers({ labels: ['loom:issue'] })).toEqual([ready.number, readyToo.number]);
        expect(await numbers({ labels: ['loom:issue', 'loom:urgent'] })).toEqual([ready.number]);
        expect(await numbers({ state: 'all', labels: ['loom:urgent'] })).toEqual([ready.number, done.number]);
        // Pull requests are never listed as issues, whatever their labels.
        expect(await numbers({ state: 'all' })).not.toContain(pr.number);
      });

      it('a new PR has no human reviews; a commit nobody reported on has no checks; an unprotected branch requires none', async () => {
        const pr = await tracker.createPullRequest({ title: 'pr', head: 'loom/issue-1', base: 'main' });
        expect(await tracker.reviews(pr.number)).toEqual([]);
        expect(await tracker.checks('0'.repeat(40))).toEqual([]);
        expect(await tracker.requiredChecks('main')).toBeNull();
      });

      it('treats unknown numbers as absent', async () => {
        expect(await tracker.getIssue(unknownNumber)).toBeNull();
        expect(await tracker.getPullRequest(unknownNumber)).toBeNull();
        await expect(tracker.updateLabels(unknownNumber, { add: ['loom:issue'] })).rejects.toBeInstanceOf(NotFoundError);
        await expect(tracker.comment(unknownNumber, 'hello')).rejects.toBeInstanceOf(NotFoundError);
        await expect(tracker.close(unknownNumber)).rejects.toBeInstanceOf(NotFoundError);
        expect(await tracker.claim(unknownNumber)).toBe(false);
      });
    });

    describe('labels', () => {
      it('returns the sorted label set and rejects invalid names', async () => {
        const issue = await tracker.createIssue({ title: 'labels' });
        expect(await tracker.updateLabels(issue.number, { add: ['zeta', 'alpha', 'loom:issue'] })).toEqual([
          'alpha',
          'loom:issue',
          'zeta',
        ]);
        expect(await tracker.updateLabels(issue.number, { remove: ['zeta'] })).toEqual(['alpha', 'loom:issue']);
        await expect(tracker.updateLabels(issue.number, { add: [''] })).rejects.toThrow('label must not be empty');
        await expect(tracker.updateLabels(issue.number, { add: [' padded'] })).rejects.toThrow('whitespace');
        expect((await tracker.getIssue(issue.number))?.labels).toEqual(['alpha', 'loom:issue']);
      });

      it('keeps issue-state labels exclusive', async () => {
        const issue = await tracker.createIssue({ title: 'state', labels: ['loom:building', 'loom:urgent'] });
        const labels = await tracker.updateLabels(issue.number, { add: ['loom:blocked'] });
        expect(labels).toEqual(['loom:blocked', 'loom:urgent']);
        expect((await tracker.getIssue(issue.number))?.labels).toEqual(['loom:blocked', 'loom:urgent']);
      });

      it('keeps PR verdict labels exclusive', async () => {
        const pr = await tracker.createPullRequest({
          title: 'verdict',
          head: 'loom/verdict',
          base: 'main',
          labels: ['loom:review-requested', 'loom:urgent'],
        });
        expect(await tracker.updateLabels(pr.number, { add: ['loom:changes-requested'] })).toEqual([
          'loom:changes-requested',
          'loom:urgent',
        ]);
        expect(await tracker.updateLabels(pr.number, { add: ['loom:pr'] })).toEqual(['loom:pr', 'loom:urgent']);
        expect((await tracker.getPullRequest(pr.number))?.labels).toEqual(['loom:pr', 'loom:urgent']);
      });

      it('records labeled/unlabeled events only for real changes', async () => {
        const issue = await tracker.createIssue({ title: 'events' });
        await tracker.updateLabels(issue.number, { add: ['loom:issue'] });
        const before = await tracker.listEvents(issue.number);
        await tracker.updateLabels(issue.number, { add: ['loom:issue'], remove: ['not-there'] });
        expect(await tracker.listEvents(issue.number)).toEqual(before);

        await tracker.updateLabels(issue.number, { add: ['loom:blocked'] });
        const added = (await tracker.listEvents(issue.number)).slice(before.length);
        expect(added.map((e) => [e.type, e.label])).toEqual(
          expect.arrayContaining([
            ['unlabeled', 'loom:issue'],
            ['labeled', 'loom:blocked'],
          ]),
        );
        expect(added).toHaveLength(2);
      });
    });

    describe('claim', () => {
      it('succeeds once, then fails', async () => {
        const issue = await tracker.createIssue({ title: 'claim me', labels: ['loom:issue', 'loom:urgent'] });
        expect(await tracker.claim(issue.number)).toBe(true);
        expect((await tracker.getIssue(issue.number))?.labels).toEqual(['loom:building', 'loom:urgent']);
        expect(await tracker.claim(issue.number)).toBe(false);
        expect((await tracker.getIssue(issue.number))?.labels).toEqual(['loom:building', 'loom:urgent']);
      });

      it('fails and changes nothing for an issue that is not loom:issue', async () => {
        for (const labels of [[], ['loom:curated'], ['loom:blocked'], ['loom:urgent']]) {
          const issue = await tracker.createIssue({ title: `not ready ${labels.join(',')}`, labels });
          const events = await tracker.listEvents(issue.number);
          expect(await tracker.claim(issue.number)).toBe(false);
          expect(await tracker.getIssue(issue.number)).toEqual(issue);
          expect(await tracker.listEvents(issue.number)).toEqual(events);
        }
      });

      it('fails and changes nothing for a closed issue, even if it is labelled loom:issue', async () => {
        const issue = await tracker.createIssue({ title: 'closed' });
        await tracker.close(issue.number);
        // Labelling after closing: close strips state labels, but a human may add one back.
        await tracker.updateLabels(issue.number, { add: ['loom:issue'] });
        const before = await tracker.getIssue(issue.number);
        const events = await tracker.listEvents(issue.number);
        expect(before).toMatchObject({ state: 'closed', labels: ['loom:issue'] });
        expect(await tracker.claim(issue.number)).toBe(false);
        expect(await tracker.getIssue(issue.number)).toEqual(before);
        expect(await tracker.listEvents(issue.number)).toEqual(events);
      });

      it('fails for a pull request', async () => {
        const pr = await tracker.createPullRequest({ title: 'pr', head: 'loom/pr', base: 'main', labels: ['loom:issue'] });
        expect(await tracker.claim(pr.number)).toBe(false);
        expect((await tracker.getPullRequest(pr.number))?.labels).toEqual(['loom:issue']);
      });

      it('release gives a claimed issue back, and changes nothing unless it is still loom:building', async () => {
        const claimed = await tracker.createIssue({ title: 'claimed', labels: ['loom:issue', 'loom:urgent'] });
        expect(await tracker.claim(claimed.number)).toBe(true);
        expect(await tracker.release(claimed.number)).toBe(true);
        expect((await tracker.getIssue(claimed.number))?.labels).toEqual(['loom:issue', 'loom:urgent']);
        expect(await tracker.release(claimed.number)).toBe(false);
        const blocked = await tracker.createIssue({ title: 'blocked', labels: ['loom:issue'] });
        expect(await tracker.claim(blocked.number)).toBe(true);
        await tracker.updateLabels(blocked.number, { add: ['loom:blocked'] });
        expect(await tracker.release(blocked.number)).toBe(false);
        expect((await tracker.getIssue(blocked.number))?.labels).toEqual(['loom:blocked']);
        const closed = await tracker.createIssue({ title: 'closed', labels: ['loom:issue'] });
        expect(await tracker.claim(closed.number)).toBe(true);
        await tracker.close(closed.number);
        expect(await tracker.release(closed.number)).toBe(false);
        expect(await tracker.getIssue(closed.number)).toMatchObject({ state: 'closed', labels: [] });
      });

      it('restoreInterruptedClaim changes nothing on an issue with a state label, a closed one, or a PR', async () => {
        const ready = await tracker.createIssue({ title: 'ready', labels: ['loom:issue'] });
        const claimed = await tracker.createIssue({ title: 'claimed', labels: ['loom:issue'] });
        expect(await tracker.claim(claimed.number)).toBe(true);
        const closed = await tracker.createIssue({ title: 'closed', labels: ['loom:issue'] });
        await tracker.close(closed.number);
        const pr = await tracker.createPullRequest({ title: 'pr', head: 'loom/issue-1', base: 'main' });
        for (const n of [ready.number, claimed.number, closed.number, pr.number, 99_999]) expect(await tracker.restoreInterruptedClaim(n)).toBe(false);
        expect((await tracker.getIssue(ready.number))?.labels).toEqual(['loom:issue']);
        expect((await tracker.getIssue(claimed.number))?.labels).toEqual(['loom:building']);
        expect((await tracker.getIssue(closed.number))?.state).toBe('closed');
      });

      it('records the claim in the timeline with the actor', async () => {
        const issue = await tracker.createIssue({ title: 'timeline', labels: ['loom:issue'] });
        const before = await tracker.listEvents(issue.number);
        expect(await tracker.claim(issue.number)).toBe(true);
        const events = await tracker.listEvents(issue.number);
        const claim = events.slice(before.length);
        expect(claim.map((e) => [e.type, e.label])).toEqual(
          expect.arrayContaining([
            ['unlabeled', 'loom:issue'],
            ['labeled', 'loom:building'],
          ]),
        );
        expect(claim).toHaveLength(2);
        const actor = claim[0]!.actor;
        expect(actor).not.toBe('');
        for (const event of claim) {
          expect(event.actor).toBe(actor);
          expect(Date.parse(event.createdAt)).not.toBeNaN();
        }
        // Oldest first: ids and times never go backwards.
        for (let i = 1; i < events.length; i++) {
          expect(events[i]!.id).toBeGreaterThan(events[i - 1]!.id);
          expect(events[i]!.createdAt >= events[i - 1]!.createdAt).toBe(true);
        }
      });
    });

    describe('comments', () => {
      it('keeps comments in order', async () => {
        const issue = await tracker.createIssue({ title: 'talk' });
        const first = await tracker.comment(issue.number, 'first');
        const second = await tracker.comment(issue.number, 'second');
        const third = await tracker.comment(issue.number, 'third\nwith two lines');
        expect(first.author).not.toBe('');
        const comments = await tracker.listComments(issue.number);
        expect(comments).toEqual([first, second, third]);
        expect(comments.map((c) => c.body)).toEqual(['first', 'second', 'third\nwith two lines']);
        expect((await tracker.getIssue(issue.number))!.updatedAt >= third.createdAt).toBe(true);
      });
    });

    describe('close and reopen', () => {
      it('records how an issue was closed: completed by default, not planned on request; reopening forgets it', async () => {
        const done = await tracker.createIssue({ title: 'done' });
        const dropped = await tracker.createIssue({ title: 'dropped' });
        await tracker.close(done.number);
        await tracker.close(dropped.number, 'Will not do.', 'not-planned');
        expect((await tracker.getIssue(done.number))?.closedAs).toBe('completed');
        expect((await tracker.getIssue(dropped.number))?.closedAs).toBe('not-planned');
        await tracker.reopen(dropped.number);
        expect((await tracker.getIssue(dropped.number))?.closedAs).toBeUndefined();
      });

      it('removes state labels, keeps others, adds the comment first and hides the issue from the snapshot', async () => {
        const issue = await tracker.createIssue({ title: 'to close', labels: ['loom:building', 'loom:urgent', 'bug'] });
        expect((await tracker.snapshot()).issues.map((i) => i.number)).toContain(issue.number);

        await tracker.close(issue.number, 'Closing: done.');
        const closed = await tracker.getIssue(issue.number);
        expect(closed).toMatchObject({ state: 'closed', labels: ['bug', 'loom:urgent'] });
        expect((await tracker.listComments(issue.number)).map((c) => c.body)).toEqual(['Closing: done.']);
        expect((await tracker.snapshot()).issues.map((i) => i.number)).not.toContain(issue.number);
        expect((await tracker.listIssues()).map((i) => i.number)).not.toContain(issue.number);

        const events = await tracker.listEvents(issue.number);
        expect(events.map((e) => [e.type, e.label])).toEqual(
          expect.arrayContaining([
            ['closed', null],
            ['unlabeled', 'loom:building'],
          ]),
        );

        await tracker.reopen(issue.number);
        expect(await tracker.getIssue(issue.number)).toMatchObject({ state: 'open', labels: ['bug', 'loom:urgent'] });
        expect((await tracker.listEvents(issue.number)).at(-1)).toMatchObject({ type: 'reopened', label: null });
      });

      it('removes verdict labels from a closed pull request', async () => {
        const pr = await tracker.createPullRequest({
          title: 'abandoned',
          head: 'loom/abandoned',
          base: 'main',
          labels: ['loom:changes-requested', 'loom:manual-merge'],
        });
        await tracker.close(pr.number);
        expect(await tracker.getPullRequest(pr.number)).toMatchObject({ state: 'closed', labels: ['loom:manual-merge'] });
        expect((await tracker.snapshot()).pullRequests.map((p) => p.number)).not.toContain(pr.number);
      });
    });

    describe('pull requests', () => {
      it('share the number space with issues and carry head, base and closesIssue', async () => {
        const issue = await tracker.createIssue({ title: 'feature', labels: ['loom:building'] });
        const pr = await tracker.createPullRequest({
          title: 'Add feature',
          body: `Closes #${issue.number}`,
          head: `loom/issue-${issue.number}`,
          base: 'main',
          labels: ['loom:review-requested'],
          closesIssue: issue.number,
        });
        const next = await tracker.createIssue({ title: 'after the PR' });

        expect(pr.number).toBeGreaterThan(issue.number);
        expect(next.number).toBeGreaterThan(pr.number);
        expect(pr).toMatchObject({
          title: 'Add feature',
          body: `Closes #${issue.number}`,
          state: 'open',
          head: `loom/issue-${issue.number}`,
          base: 'main',
          closesIssue: issue.number,
          labels: ['loom:review-requested'],
        });
        expect(await tracker.getPullRequest(pr.number)).toEqual(pr);
        // One number, one kind.
        expect(await tracker.getIssue(pr.number)).toBeNull();
        expect(await tracker.getPullRequest(issue.number)).toBeNull();

        const plain = await tracker.createPullRequest({ title: 'No issue', head: 'loom/plain', base: 'main' });
        expect(plain).toMatchObject({ closesIssue: null, labels: [], body: '' });

        // Comments and label changes address PRs by the same numbers.
        await tracker.comment(pr.number, 'LGTM');
        expect((await tracker.listComments(pr.number)).map((c) => c.body)).toEqual(['LGTM']);
        expect(await tracker.listComments(issue.number)).toEqual([]);
      });

      it('marks an open PR merged and removes its verdict label', async () => {
        const pr = await tracker.createPullRequest({
          title: 'ship it',
          head: 'loom/ship',
          base: 'main',
          labels: ['loom:pr', 'loom:urgent'],
        });
        expect(await tracker.pullRequestState(pr.number)).toEqual({ number: pr.number, state: 'open', labels: ['loom:pr', 'loom:urgent'] });
        await tracker.markMerged(pr.number);
        expect(await tracker.getPullRequest(pr.number)).toMatchObject({ state: 'merged', labels: ['loom:urgent'] });
        expect(await tracker.pullRequestState(pr.number)).toEqual({ number: pr.number, state: 'merged', labels: ['loom:urgent'] });
        expect((await tracker.listEvents(pr.number)).map((e) => e.type)).toContain('merged');
        expect((await tracker.snapshot()).pullRequests.map((p) => p.number)).not.toContain(pr.number);

        await expect(tracker.markMerged(pr.number)).rejects.toThrow(/open pull request/);
        await expect(tracker.reopen(pr.number)).rejects.toThrow(/merged/);
        const issue = await tracker.createIssue({ title: 'not a PR' });
        await expect(tracker.markMerged(issue.number)).rejects.toThrow(/not a pull request/);
        expect(await tracker.pullRequestState(issue.number)).toBeNull();
      });

      it('lists pull requests by state, never issues', async () => {
        const open = await tracker.createPullRequest({ title: 'open one', head: 'loom/open-one', base: 'main' });
        const merged = await tracker.createPullRequest({ title: 'merged one', head: 'loom/merged-one', base: 'main' });
        await tracker.markMerged(merged.number);
        const issue = await tracker.createIssue({ title: 'an issue' });
        const mine = (prs: { number: number }[]) => prs.map((p) => p.number).filter((n) => [open.number, merged.number, issue.number].includes(n));
        expect(mine(await tracker.listPullRequests())).toEqual([open.number]);
        expect(mine(await tracker.listPullRequests({ state: 'merged' }))).toEqual([merged.number]);
        expect(mine(await tracker.listPullRequests({ state: 'all' }))).toEqual([open.number, merged.number]);
      });
    });

    describe('snapshot', () => {
      it('contains exactly the open issues and PRs carrying a loom:* label, with their labels', async () => {
        const ready = await tracker.createIssue({ title: 'ready', labels: ['loom:issue', 'bug'] });
        const urgentOnly = await tracker.createIssue({ title: 'urgent only', labels: ['loom:urgent'] });
        const unlabelled = await tracker.createIssue({ title: 'unlabelled' });
        const foreign = await tracker.createIssue({ title: 'foreign labels', labels: ['bug', 'loomish', 'loom'] });
        const closed = await tracker.createIssue({ title: 'closed', labels: ['loom:urgent'] });
        await tracker.close(closed.number);
        const review = await tracker.createPullRequest({
          title: 'review me',
          head: 'loom/review',
          base: 'main',
          labels: ['loom:review-requested'],
          closesIssue: ready.number,
        });
        const plainPr = await tracker.createPullRequest({ title: 'plain', head: 'feature', base: 'main' });
        const merged = await tracker.createPullRequest({ title: 'merged', head: 'loom/m', base: 'main', labels: ['loom:urgent'] });
        await tracker.markMerged(merged.number);

        const mine = new Set([ready, urgentOnly, unlabelled, foreign, closed, review, plainPr, merged].map((i) => i.number));
        const snapshot = await tracker.snapshot();
        const issues = snapshot.issues.filter((i) => mine.has(i.number));
        const prs = snapshot.pullRequests.filter((p) => mine.has(p.number));

        expect(issues).toEqual([await tracker.getIssue(ready.number), await tracker.getIssue(urgentOnly.number)]);
        expect(issues[0]!.labels).toEqual(['bug', 'loom:issue']);
        expect(prs).toEqual([await tracker.getPullRequest(review.number)]);

        const all = [...snapshot.issues, ...snapshot.pullRequests];
        for (const item of all) {
          expect(item.state).toBe('open');
          expect(item.labels.some((l) => l.startsWith('loom:'))).toBe(true);
        }
        const numbers = snapshot.issues.map((i) => i.number);
        expect(numbers).toEqual([...numbers].sort((a, b) => a - b));
      });
    });

    describe('health', () => {
      it('is ok with budget to spare, before and after requests', async () => {
        expect(tracker.health()).toEqual({ state: 'ok' });
        await tracker.createIssue({ title: 'health' });
        await tracker.snapshot();
        expect(tracker.health()).toEqual({ state: 'ok' });
      });
    });
  });
}
