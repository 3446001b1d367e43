// Reading dependency states from a real (local, SQLite) tracker, and GitHub's close reason.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Label } from '../../src/core/labels.js';
import { readDependencies } from '../../src/tracker/dependency-states.js';
import { toIssue } from '../../src/tracker/github/github-wire.js';
import { LOCAL_TRACKER_FILE } from '../../src/tracker/local/local-database.js';
import { LocalTracker } from '../../src/tracker/local/local-tracker.js';

describe('readDependencies', () => {
  it('reads open, closed and missing dependencies, and follows open ones outside the list (for cycles)', async () => {
    const tracker = new LocalTracker({ path: path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'loom-deps-')), LOCAL_TRACKER_FILE) });
    try {
      const a = await tracker.createIssue({ title: 'a', body: 'Depends on #2, #3\nBlocked by #99', labels: [Label.issue] });
      await tracker.createIssue({ title: 'b (not labelled, open)', body: 'Depends on #1' });
      await tracker.createIssue({ title: 'c', body: '' });
      await tracker.close(3);
      const map = await readDependencies(tracker, [a]);
      expect(map).toEqual({
        '1': [{ number: 2, state: 'open' }, { number: 3, state: 'done' }, { number: 99, state: 'missing' }],
        '2': [{ number: 1, state: 'open' }],
      });
    } finally {
      tracker.dispose();
    }
  });
});

describe("GitHub's close reason", () => {
  it('not_planned and duplicate read as not planned, completed as completed; open issues have none', () => {
    const base = { number: 1, title: 't', body: '', labels: [], user: { login: 'a' }, created_at: '2026-01-01T00:00:00Z', updated_at: '2026-01-01T00:00:00Z' };
    expect(toIssue({ ...base, state: 'closed', state_reason: 'not_planned' }).closedAs).toBe('not-planned');
    expect(toIssue({ ...base, state: 'closed', state_reason: 'duplicate' }).closedAs).toBe('not-planned');
    expect(toIssue({ ...base, state: 'closed', state_reason: 'completed' }).closedAs).toBe('completed');
    expect(toIssue({ ...base, state: 'open', state_reason: 'reopened' }).closedAs).toBeUndefined();
  });
});
