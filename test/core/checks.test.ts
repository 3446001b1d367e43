import { describe, expect, it } from 'vitest';
import type { CheckResult } from '../../src/core/checks.js';
import { checkRunState, checksVerdict, commitStatusState, failingChecksReview, jobLogExcerpt } from '../../src/core/checks.js';

const check = (name: string, state: CheckResult['state'], conclusion = state as string, details = ''): CheckResult => ({ name, state, conclusion, details });

describe('checks', () => {
  it('maps check runs: only completed runs concluded success, neutral or skipped pass; stale and unfinished are pending', () => {
    expect(checkRunState('completed', 'success')).toBe('success');
    expect(checkRunState('completed', 'neutral')).toBe('success');
    expect(checkRunState('completed', 'skipped')).toBe('success');
    for (const c of ['failure', 'cancelled', 'timed_out', 'action_required']) expect(checkRunState('completed', c)).toBe('failure');
    expect(checkRunState('completed', 'stale')).toBe('pending');
    expect(checkRunState('in_progress', null)).toBe('pending');
    expect(checkRunState('queued', null)).toBe('pending');
  });

  it('maps commit statuses: error and failure fail', () => {
    expect(['success', 'pending', 'failure', 'error'].map(commitStatusState)).toEqual(['success', 'pending', 'failure', 'failure']);
  });

  it('none without checks; a failure wins over pending; pending over success', () => {
    expect(checksVerdict([])).toEqual({ state: 'none' });
    expect(checksVerdict([check('a', 'success'), check('b', 'success')])).toEqual({ state: 'success' });
    expect(checksVerdict([check('a', 'success'), check('b', 'pending')])).toEqual({ state: 'pending', pending: ['b'] });
    const red = check('c', 'failure', 'timed_out', 'too slow');
    expect(checksVerdict([check('b', 'pending'), red])).toEqual({ state: 'failure', failing: [red] });
  });

  it('with required checks (branch protection) only those count, and one not reported yet is pending', () => {
    const other = check('coverage', 'failure');
    expect(checksVerdict([check('unit', 'success'), other], ['unit'])).toEqual({ state: 'success' });
    expect(checksVerdict([other], ['unit', 'lint'])).toEqual({ state: 'pending', pending: ['unit', 'lint'] });
    expect(checksVerdict([check('unit', 'failure')], ['unit', 'lint'])).toMatchObject({ state: 'failure' });
    expect(checksVerdict([check('unit', 'success')], [])).toEqual({ state: 'success' });
    expect(checksVerdict([], null)).toEqual({ state: 'none' });
  });

  it('the review names each failing check, its conclusion and its output, cut to a bound', () => {
    const review = failingChecksReview([check('unit', 'failure', 'failure', 'x'.repeat(50)), check('lint', 'failure', 'error')], 'abcdef0123456789', 10);
    expect(review).toBe(`CI checks failed on abcdef012345: \`unit\` (failure), \`lint\` (error). Fix the causes; the checks run again on the new commit.\n\n### unit: failure\n\nxxxxxxxxxx\n… (cut)\n\n### lint: error\n\n(no output)`);
  });
});

describe('jobLogExcerpt', () => {
  it('keeps the last lines of a job log without their timestamps; nothing left is null; a long tail is cut from its start', () => {
    expect(jobLogExcerpt('\uFEFF2026-01-02T03:04:05.1234567Z one\r\n2026-01-02T03:04:05Z two\r\nthree\r\n\r\n', 2)).toBe('two\nthree');
    expect(jobLogExcerpt('\n\n')).toBeNull();
    expect(jobLogExcerpt(`${'x'.repeat(50)}\n${'y'.repeat(50)}`, 60, 60)).toBe(`…${'x'.repeat(9)}\n${'y'.repeat(50)}`);
  });

  it('a failing check with only a job log is not “(no output)”; the log goes after the output in a fenced block', () => {
    const review = failingChecksReview([{ name: 'test', state: 'failure', conclusion: 'failure', details: '', log: 'boom' }], 'a'.repeat(40));
    expect(review).toContain('### test: failure\n\nJob log (its last lines):\n\n```\nboom\n```');
  });
});
