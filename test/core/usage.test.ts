import { describe, expect, it } from 'vitest';
import type { RunRecord } from '../../src/core/usage.js';
import { DEFAULT_PRICES, addRun, budgetExceeded, dayOf, emptyTotals, priceRun } from '../../src/core/usage.js';

const run = (fields: Partial<RunRecord> = {}): RunRecord => ({
  at: '2026-11-21T10:00:00.000Z',
  role: 'builder',
  runtime: 'claude',
  model: null,
  session_id: 's1',
  outcome: 'success',
  input_tokens: 1000,
  output_tokens: 200,
  cached_input_tokens: 0,
  cost_usd: 0.01,
  priced: false,
  ...fields,
});

describe('usage accounting', () => {
  it('keeps the CLI cost when it gives one', () => {
    expect(priceRun({ inputTokens: 10, outputTokens: 10, cachedInputTokens: 0, costUsd: 0.5 }, 'claude', null, {})).toEqual({ cost: 0.5, priced: false });
  });

  it('prices tokens from the table: model first, then runtime, then the built-in default; cached input at its own price', () => {
    const usage = { inputTokens: 1_000_000, outputTokens: 1_000_000, cachedInputTokens: 400_000, costUsd: null };
    expect(priceRun(usage, 'codex', 'm', { m: { input: 2, output: 4, cachedInput: 1 } })).toEqual({ cost: 0.6 * 2 + 0.4 * 1 + 4, priced: true });
    expect(priceRun(usage, 'codex', 'unknown', { codex: { input: 1, output: 1, cachedInput: 0 } })).toEqual({ cost: 1.6, priced: true });
    const d = DEFAULT_PRICES.codex!;
    expect(priceRun(usage, 'codex', null, {}).cost).toBeCloseTo(0.6 * d.input + 0.4 * d.cachedInput + d.output, 6);
    expect(priceRun(usage, 'script', null, {})).toEqual({ cost: 0, priced: true });
  });

  it('adds runs into totals', () => {
    const t = addRun(addRun(emptyTotals(), run()), run({ input_tokens: 5, output_tokens: 5, cost_usd: 0.02 }));
    expect(t).toEqual({ input_tokens: 1005, output_tokens: 205, cached_input_tokens: 0, cost_usd: 0.03, runs: 2 });
  });

  it('checks each budget, issue before day, and says which', () => {
    const spent = addRun(emptyTotals(), run({ cost_usd: 2 }));
    const none = { perIssueUsd: undefined, perDayUsd: undefined, perIssueTokens: undefined, perDayTokens: undefined };
    expect(budgetExceeded(none, spent, spent)).toBeNull();
    expect(budgetExceeded({ ...none, perIssueUsd: 2 }, spent, emptyTotals())).toMatch(/this issue has used \$2\.00 of its \$2 budget/);
    expect(budgetExceeded({ ...none, perIssueUsd: 3 }, spent, emptyTotals())).toBeNull();
    expect(budgetExceeded({ ...none, perDayUsd: 1 }, emptyTotals(), spent)).toMatch(/daily budget/);
    expect(budgetExceeded({ ...none, perIssueTokens: 1000 }, spent, emptyTotals())).toMatch(/1200 of its 1000 token budget/);
    expect(budgetExceeded({ ...none, perDayTokens: 5000 }, emptyTotals(), spent)).toBeNull();
  });

  it('days are UTC dates', () => {
    expect(dayOf('2026-11-21T23:59:59.000Z')).toBe('2026-11-21');
  });
});
