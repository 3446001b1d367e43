// `loom status` over a real local tracker: what it says does not grow with the backlog — the
// interventions name the first issues of a long list and how many there are in all.
import { afterEach, describe, expect, it } from 'vitest';
import { Label } from '../../src/core/labels.js';
import { collectStatus } from '../../src/status/collect-status.js';
import { renderStatus } from '../../src/status/status-report.js';
import type { TestRepo } from '../helpers/loom-repo.js';
import { makeRepo } from '../helpers/loom-repo.js';

let repo: TestRepo | undefined;
afterEach(() => repo?.cleanup());

describe('status report', () => {
  it('is the same size for 20 and 200 blocked issues and proposals', async () => {
    repo = makeRepo({});
    const tracker = repo.tracker();
    const sizes: number[] = [];
    for (const total of [20, 200]) {
      while ((await tracker.listIssues({ labels: [Label.blocked] })).length < total) {
        await tracker.createIssue({ title: 'stuck', labels: [Label.blocked] });
        await tracker.createIssue({ title: 'idea', labels: [Label.architect] });
      }
      const report = await collectStatus(repo.paths);
      const text = renderStatus(report);
      expect(text).toContain(`${total} blocked issues need a human: #1, #3, #5,`);
      expect(text).toMatch(new RegExp(`${total} proposal\\(s\\) await approval \\(#2, #4, #6, .* and ${total - 10} more\\)`));
      sizes.push(text.length + JSON.stringify(report).length);
    }
    expect(sizes[1]! - sizes[0]!).toBeLessThanOrEqual(16); // a digit more in each count, text and JSON
  });
});
