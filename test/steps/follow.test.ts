/**
 * `Follow`: the timer that reads what a task works on again every heartbeat and aborts the work
 * when the read says so. A tracker that fails for a moment must not stop the work.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Follow, freshRead } from '../../src/steps/follow.js';

beforeEach(() => vi.useFakeTimers());
afterEach(() => vi.useRealTimers());

describe('Follow', () => {
  it('reads every interval and aborts its signal at the first read that finds a reason, once', async () => {
    const answers: (string | null)[] = [null, null, 'closed', 'blocked'];
    let reads = 0;
    const stops: string[] = [];
    const follow = new Follow<string>({ every: 100, check: () => Promise.resolve(answers[reads++] ?? null), onStop: (why) => stops.push(why) });
    await vi.advanceTimersByTimeAsync(250);
    expect(reads).toBe(2);
    expect(follow.signal.aborted).toBe(false);
    await vi.advanceTimersByTimeAsync(100);
    expect(follow.signal.aborted).toBe(true);
    expect(follow.reason).toBe('closed');
    await vi.advanceTimersByTimeAsync(500);
    expect(reads).toBe(3); // no more reads once a reason is found
    expect(stops).toEqual(['closed']);
    follow.stop();
  });

  it('a read that throws (the tracker unavailable for a moment) is ignored: the work goes on', async () => {
    let reads = 0;
    const follow = new Follow<string>({
      every: 100,
      check: () => {
        reads += 1;
        return reads < 3 ? Promise.reject(new Error('503 from the tracker')) : Promise.resolve(null);
      },
    });
    await vi.advanceTimersByTimeAsync(450);
    expect(reads).toBe(4);
    expect(follow.signal.aborted).toBe(false);
    expect(follow.reason).toBeNull();
    expect(await follow.now()).toBeNull();
    follow.stop();
  });

  it('now() reads at once, before the next tick; the caller’s own abort (shutdown) aborts the signal without a reason', async () => {
    const shutdown = new AbortController();
    let state: string | null = null;
    const follow = new Follow<string>({ every: 10_000, check: () => Promise.resolve(state), signal: shutdown.signal });
    expect(await follow.now()).toBeNull();
    state = 'closed';
    expect(await follow.now()).toBe('closed');
    expect(follow.signal.aborted).toBe(true);
    follow.stop();

    shutdown.abort();
    const other = new Follow<string>({ every: 10_000, check: () => Promise.resolve(null), signal: shutdown.signal });
    expect(other.signal.aborted).toBe(true); // already shut down
    other.stop();
    const fresh = new AbortController();
    const third = new Follow<string>({ every: 10_000, check: () => Promise.resolve(null), signal: fresh.signal });
    fresh.abort();
    expect(third.signal.aborted).toBe(true);
    expect(third.reason).toBeNull();
    third.stop();
  });

  it('now() reads once more when its read failed or was slow (its answer may predate a change), then carries on', async () => {
    const answers: (() => Promise<string | null>)[] = [
      () => Promise.reject(new Error('502')),
      () => Promise.resolve('closed'),
    ];
    const flaky = new Follow<string>({ every: 10_000, check: () => answers.shift()!() });
    expect(await flaky.now()).toBe('closed');
    flaky.stop();

    let reads = 0;
    const slowOpen = () => new Promise<string | null>((resolve) => setTimeout(() => resolve(null), 3_000));
    const slow = new Follow<string>({ every: 60_000, check: () => (reads++ === 0 ? slowOpen() : Promise.resolve('closed')) });
    const pending = slow.now();
    await vi.advanceTimersByTimeAsync(3_000);
    expect(await pending).toBe('closed');
    slow.stop();

    let failures = 0;
    const down = new Follow<string>({ every: 10_000, check: () => (failures++, Promise.reject(new Error('down'))) });
    expect(await down.now()).toBeNull();
    expect(failures).toBe(2);
    down.stop();
  });

  it('freshRead reads once more only when the read was slow (the shepherd’s look before opening a PR or starting an agent)', async () => {
    const states = ['open', 'closed'];
    let reads = 0;
    const slowThenFast = () => {
      reads += 1;
      const state = states.shift()!;
      return reads === 1 ? new Promise<string>((resolve) => setTimeout(() => resolve(state), 3_000)) : Promise.resolve(state);
    };
    const pending = freshRead(slowThenFast);
    await vi.advanceTimersByTimeAsync(3_000);
    expect(await pending).toBe('closed');
    expect(await freshRead(() => Promise.resolve('open'))).toBe('open');
    expect(reads).toBe(2);
  });

  it('stop() ends the reads', async () => {
    let reads = 0;
    const follow = new Follow<string>({ every: 100, check: () => Promise.resolve((reads++, null)) });
    await vi.advanceTimersByTimeAsync(250);
    follow.stop();
    await vi.advanceTimersByTimeAsync(1_000);
    expect(reads).toBe(2);
  });
});
