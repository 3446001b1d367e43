/**
 * Token and cost accounting (pure). Runs report tokens and, when their CLI gives one, a cost in
 * USD; runs without a cost are priced from a per-million-token table. Totals are kept per issue
 * and per UTC day in the state file, and budgets are checked against them before a run starts.
 */

export interface UsageTotals {
  input_tokens: number;
  output_tokens: number;
  cached_input_tokens: number;
  /** USD; includes runs priced from the table. */
  cost_usd: number;
  runs: number;
}

export interface RunRecord {
  at: string;
  role: string;
  runtime: string;
  model: string | null;
  session_id: string | null;
  outcome: string;
  input_tokens: number;
  output_tokens: number;
  cached_input_tokens: number;
  cost_usd: number;
  /** Whether `cost_usd` came from the price table rather than the CLI. */
  priced: boolean;
}

/** USD per million tokens. */
export interface Price {
  input: number;
  output: number;
  cachedInput: number;
}

/**
 * Fallback prices per runtime, used only when a CLI reports tokens without a cost and the config
 * has no `pricing` entry for the model. Set `pricing` to your models' real prices.
 */
export const DEFAULT_PRICES: Readonly<Record<string, Price>> = {
  claude: { input: 3, output: 15, cachedInput: 0.3 },
  codex: { input: 1.25, output: 10, cachedInput: 0.125 },
  gemini: { input: 1.25, output: 10, cachedInput: 0.31 },
  opencode: { input: 3, output: 15, cachedInput: 0.3 },
};

export function emptyTotals(): UsageTotals {
  return { input_tokens: 0, output_tokens: 0, cached_input_tokens: 0, cost_usd: 0, runs: 0 };
}

export function addRun(totals: UsageTotals, run: RunRecord): UsageTotals {
  return {
    input_tokens: totals.input_tokens + run.input_tokens,
    output_tokens: totals.output_tokens + run.output_tokens,
    cached_input_tokens: totals.cached_input_tokens + run.cached_input_tokens,
    cost_usd: Math.round((totals.cost_usd + run.cost_usd) * 1e6) / 1e6,
    runs: totals.runs + 1,
  };
}

/** The cost of a run: the CLI's figure, else tokens × the price for the model (or runtime). */
export function priceRun(usage: { inputTokens: number; outputTokens: number; cachedInputTokens: number; costUsd: number | null }, runtime: string, model: string | null, table: Readonly<Record<string, Price>>): { cost: number; priced: boolean } {
  if (usage.costUsd !== null) return { cost: usage.costUsd, priced: false };
  const price = (model !== null ? table[model] : undefined) ?? table[runtime] ?? DEFAULT_PRICES[runtime];
  if (price === undefined) return { cost: 0, priced: true };
  const uncached = Math.max(0, usage.inputTokens - usage.cachedInputTokens);
  const cost = (uncached * price.input + usage.cachedInputTokens * price.cachedInput + usage.outputTokens * price.output) / 1e6;
  return { cost: Math.round(cost * 1e6) / 1e6, priced: true };
}

export interface Budgets {
  perIssueUsd: number | undefined;
  perDayUsd: number | undefined;
  perIssueTokens: number | undefined;
  perDayTokens: number | undefined;
}

/** Whether any budget is set. */
export function hasBudget(budgets: Budgets): boolean {
  return Object.values(budgets).some((v) => v !== undefined);
}

/** Why a new run must not start, or null when every budget has room. */
export function budgetExceeded(budgets: Budgets, issue: UsageTotals, day: UsageTotals): string | null {
  const tokens = (t: UsageTotals) => t.input_tokens + t.output_tokens;
  if (budgets.perIssueUsd !== undefined && issue.cost_usd >= budgets.perIssueUsd) return `this issue has used $${issue.cost_usd.toFixed(2)} of its $${budgets.perIssueUsd} budget`;
  if (budgets.perIssueTokens !== undefined && tokens(issue) >= budgets.perIssueTokens) return `this issue has used ${tokens(issue)} of its ${budgets.perIssueTokens} token budget`;
  if (budgets.perDayUsd !== undefined && day.cost_usd >= budgets.perDayUsd) return `today's runs have used $${day.cost_usd.toFixed(2)} of the $${budgets.perDayUsd} daily budget`;
  if (budgets.perDayTokens !== undefined && tokens(day) >= budgets.perDayTokens) return `today's runs have used ${tokens(day)} of the ${budgets.perDayTokens} daily token budget`;
  return null;
}

/** The UTC day of an ISO time: `YYYY-MM-DD`. */
export function dayOf(iso: string): string {
  return iso.slice(0, 10);
}
