import { describe, expect, it } from 'vitest';
import { RetryCap } from '../../src/runtimes/retry-cap.js';
import type { AgentEvent, RunResult } from '../../src/runtimes/runtime.js';

const retry = (attempt: number, reason = '500 server error'): AgentEvent => ({ type: 'retrying', attempt, reason });
const aborted: RunResult = { outcome: 'aborted', output: '', exitCode: null, message: 'was stopped', duration: 10, sessionId: 's1' };

describe('RetryCap', () => {
  it('aborts on the first retry beyond the limit in a row, and fails the run as transient', () => {
    const cap = new RetryCap(2, undefined);
    cap.note(retry(1));
    cap.note(retry(2));
    expect(cap.signal.aborted).toBe(false);
    cap.note(retry(3, 'Service Unavailable'));
    expect(cap.signal.aborted).toBe(true);
    expect(cap.verdict(aborted)).toEqual({ ...aborted, outcome: 'failed', message: 'was stopped: the CLI retried its model request 3 times in a row (cliRetries is 2): Service Unavailable', failure: { kind: 'overloaded' } });
  });

  it('counts retries in a row only: progress resets the count, a session id does not', () => {
    const cap = new RetryCap(1, undefined);
    cap.note(retry(1));
    cap.note({ type: 'text', text: 'working' });
    cap.note(retry(1));
    expect(cap.signal.aborted).toBe(false);
    cap.note({ type: 'session', sessionId: 's1' });
    cap.note(retry(2));
    expect(cap.signal.aborted).toBe(true);
  });

  it('neither counts nor resets on a retry the CLI has a fallback for', () => {
    const cap = new RetryCap(1, undefined);
    cap.note(retry(1));
    for (let i = 0; i < 5; i += 1) cap.note({ type: 'retrying', attempt: i + 1, reason: 'websocket 404', fallback: true });
    expect(cap.signal.aborted).toBe(false);
    cap.note(retry(2));
    expect(cap.signal.aborted).toBe(true);
  });

  it('calls a rate limit a rate limit', () => {
    const cap = new RetryCap(0, undefined);
    cap.note(retry(1, 'status 429: Too Many Requests'));
    expect(cap.verdict(aborted).failure).toEqual({ kind: 'rate-limit' });
  });

  it("follows the caller's signal, and leaves a run it did not stop as it was", () => {
    const outer = new AbortController();
    const cap = new RetryCap(2, outer.signal);
    outer.abort();
    expect(cap.signal.aborted).toBe(true);
    expect(cap.verdict(aborted)).toBe(aborted);
    cap.dispose();
    const done: RunResult = { ...aborted, outcome: 'success', message: '' };
    const tripped = new RetryCap(0, undefined);
    tripped.note(retry(1));
    // The run ended on its own before the abort took: its own outcome stands.
    expect(tripped.verdict(done)).toBe(done);
  });
});
