// The event vocabulary: summary tokens become events, repeats of a budget or limit share a
// notification key, idle iterations are recognised, every event reads as one line.
import { describe, expect, it } from 'vitest';
import type { LoomEvent } from '../../src/core/events.js';
import { describeEvent, EVENT_TYPES, isIdleIteration, NOTIFY_KINDS, NOTIFY_TYPES, notifyKey, tokenEvent } from '../../src/core/events.js';
import { ROLE_NAMES } from '../../src/core/vocabulary.js';

const at = '2026-03-04T05:06:07.000Z';

describe('tokenEvent', () => {
  it.each([
    ['+shepherd=#12', 'shepherd.spawned', { issue: 12 }],
    ['done=#3', 'shepherd.completed', { issue: 3 }],
    ['no-changes=#3', 'shepherd.no-changes', { issue: 3 }],
    ['blocked=#4', 'issue.blocked', { issue: 4 }],
    ['died=#5', 'shepherd.died', { issue: 5 }],
    ['stuck=#5', 'shepherd.stuck', { issue: 5 }],
    ['adopt=#6', 'shepherd.adopted', { issue: 6 }],
    ['released=#7', 'issue.released', { issue: 7 }],
    ['promote=#8', 'issue.promoted', { issue: 8 }],
    ['untrusted=#9', 'issue.untrusted', { issue: 9 }],
    ['skip=#10', 'spawn.skipped', { issue: 10 }],
    ['!spawn=#11', 'spawn.failed', { issue: 11 }],
    ['+judge', 'role.started', { role: 'judge' }],
    ['adopt=guide', 'role.adopted', { role: 'guide' }],
    ['!judge=timeout', 'role.failed', { role: 'judge', outcome: 'timeout' }],
    ['!promote=#3', 'action.failed', { outcome: 'promote', issue: 3 }],
    ['cleaned=#12', 'issue.cleaned', { issue: 12 }],
    ['!cleanup', 'action.failed', { outcome: 'cleanup' }],
    ['slow-down=40/5000', 'tracker.slow-down', { rate_limit_remaining: 40, rate_limit_limit: 5000 }],
  ])('%s → %s', (token, type, fields) => {
    expect(tokenEvent(token, ROLE_NAMES)).toEqual({ type, fields });
  });

  it('ignores what it does not know', () => {
    expect(tokenEvent('+nobody', ROLE_NAMES)).toBeNull();
    expect(tokenEvent('done=12', ROLE_NAMES)).toBeNull();
    expect(tokenEvent('ready=3', ROLE_NAMES)).toBeNull();
  });
});

describe('notifications', () => {
  it('names an event type for every kind, and every kind notifies', () => {
    for (const type of Object.values(NOTIFY_KINDS)) expect(EVENT_TYPES).toContain(type);
    expect([...NOTIFY_TYPES].sort()).toEqual(Object.values(NOTIFY_KINDS).sort());
  });

  it('a budget notifies once per scope and day, a limit once per runtime and reset; blocks every time', () => {
    const e = (fields: Partial<LoomEvent>): LoomEvent => ({ at, type: 'budget.reached', ...fields });
    expect(notifyKey(e({ issue: 3 }))).toBe(notifyKey(e({ issue: 3, at: '2026-03-04T23:00:00.000Z' })));
    expect(notifyKey(e({ issue: 3 }))).not.toBe(notifyKey(e({ issue: 4 })));
    expect(notifyKey(e({}))).not.toBe(notifyKey(e({ at: '2026-03-05T00:00:01.000Z' })));
    const limit = (until: string): LoomEvent => ({ at, type: 'runtime.limited', runtime: 'claude', until });
    expect(notifyKey(limit('2026-03-04T06:00:00Z'))).toBe(notifyKey(limit('2026-03-04T06:00:00Z')));
    expect(notifyKey(limit('2026-03-04T06:00:00Z'))).not.toBe(notifyKey(limit('2026-03-04T07:00:00Z')));
    expect(notifyKey({ at, type: 'issue.blocked', issue: 3 })).toBeNull();
  });
});

describe('describeEvent', () => {
  it('reads an agent run with its duration, tokens and cost', () => {
    expect(describeEvent({ at, type: 'agent.run', issue: 7, role: 'doctor', runtime: 'claude', attempt: 2, outcome: 'success', duration_ms: 61_500, input_tokens: 1200, output_tokens: 300, cost_usd: 0.42 })).toBe(
      '#7 doctor on claude (attempt 2): success in 61.5s, 1500 tokens, $0.42',
    );
  });

  it('names the issue or the role, then what happened', () => {
    expect(describeEvent({ at, type: 'verdict', issue: 7, pr: 9, attempt: 1, verdict: 'changes' })).toBe('#7 judge round 1 on PR #9: changes requested');
    expect(describeEvent({ at, type: 'task.finished', kind: 'role', role: 'champion', outcome: 'completed', message: 'merged #9' })).toBe('champion role finished: completed — merged #9');
    expect(describeEvent({ at, type: 'issue.released', issue: 4 })).toBe('#4 issue.released');
    expect(describeEvent({ at, type: 'daemon.started', pid: 42, after: 'crash' })).toBe('daemon started (pid 42, after a crash)');
  });

  it('every type reads as one line', () => {
    for (const type of EVENT_TYPES) {
      const text = describeEvent({ at, type, issue: 1, message: 'm' });
      expect(text.length).toBeGreaterThan(0);
      expect(text).not.toMatch(/\n/);
    }
  });
});

describe('isIdleIteration', () => {
  it('is an iteration whose summary has no action', () => {
    expect(isIdleIteration({ at, type: 'iteration', summary: 'ready=0 building=1 shepherds=1/3' })).toBe(true);
    expect(isIdleIteration({ at, type: 'iteration', summary: 'ready=1 building=0 shepherds=1/3 +shepherd=#4' })).toBe(false);
    expect(isIdleIteration({ at, type: 'warning', summary: 'ready=0 building=1 shepherds=1/3' })).toBe(false);
  });
});
