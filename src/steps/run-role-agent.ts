/**
 * Runs one role's agent once: fill its prompt (the role file's template, resolved by the config
 * loader), pick the runtime (its fallback while the primary is rate- or
 * usage-limited), check the budgets, run it with Loom's watchdogs, stream its output to the log,
 * renew the task's liveness lease, and record tokens and cost in the usage ledger.
 *
 * A run whose tool calls all failed is a failed run, whatever its exit code and whatever it
 * printed: the agent could not act on the repository (a broken sandbox, a missing tool), so its
 * "no changes needed" or its verdict means nothing (`toolsFailed`).
 */
import { LoomError } from '../core/errors.js';
import type { LoomConfig } from '../core/config-model.js';
import type { RoleName, RuntimeChoice } from '../core/vocabulary.js';
import type { LoomPaths } from '../config/paths.js';
import { budgetExceeded, dayOf, emptyTotals, hasBudget, priceRun } from '../core/usage.js';
import type { TaskRecorder } from '../process/task-recorder.js';
import type { IssueLease } from '../process/issue-lease.js';
import { agentHomeDir, markAgentHomeUsed } from '../runtimes/agent-homes.js';
import { createRuntime, RuntimeConfigError } from '../runtimes/create-runtime.js';
import type { AgentEvent, RunResult } from '../runtimes/runtime.js';
import { usageSpent } from '../usage/usage-index.js';
import { UsageLedger } from '../usage/usage-ledger.js';
import { activeLimits, OVERLOADED_BACKOFF_MS, recordLimit } from '../usage/runtime-limits.js';
import { fillTemplate } from '../core/prompt-template.js';
import { EventLog } from '../process/event-log.js';

const LONG_VARS = ['diff', 'issue.body', 'review', 'test_output', 'open_issues', 'open_proposals'];

export interface RoleAgentRun {
  paths: LoomPaths;
  config: LoomConfig;
  role: RoleName;
  cwd: string;
  /** Template variables (see TEMPLATE_VARIABLES); short ones also reach the agent as LOOM_* env vars. */
  vars: Record<string, string>;
  /** Written instructions for runtimes that follow them (the issue text); default: the prompt. */
  instructions?: string;
  attempt: number;
  /** The issue the run works for (usage is attributed to it; per-issue budgets apply). */
  issue?: number;
  /** A previous session of this task to resume, when the runtime supports it. */
  resumeSessionId?: string;
  /** The runtime that made `resumeSessionId` (unknown for a checkpoint from before: the role's own); no other resumes it. */
  resumeRuntime?: string;
  signal?: AbortSignal;
  recorder?: TaskRecorder;
  /** The lease on the issue's worktree the run works in: the agent group is recorded there. */
  lease?: IssueLease;
  /** Where the agent's output and Loom's notes about the run go; default this process's stdout. */
  out?: (text: string) => void;
}

/** A budget cap would be exceeded: the run was not started. */
export class BudgetExceededError extends LoomError {
  constructor(message: string) {
    super('budget_exceeded', message, { userFixable: true });
  }
}

/** The runtime is rate- or usage-limited and the role has no fallback: try again after `until`. */
export class RuntimeLimitedError extends LoomError {
  constructor(
    readonly runtime: string,
    readonly until: string,
    message: string,
  ) {
    super('runtime_limited', message, { retryable: true });
  }
}

/**
 * Why a budget stops this run, or null. The ledger is read only when a budget is set, and then
 * through the usage index (`usage/usage-index.ts`): the check reads the runs since the last
 * iteration, not the whole ledger.
 */
function budgetStop(run: RoleAgentRun, now: Date): string | null {
  if (!hasBudget(run.config.budget)) return null;
  const issues = run.issue === undefined ? [] : [run.issue];
  const spent = usageSpent(run.paths.usageIndex, run.paths.usage, dayOf(now.toISOString()), issues);
  return budgetExceeded(run.config.budget, spent.byIssue[String(run.issue)] ?? emptyTotals(), spent.day);
}

export async function runRoleAgent(run: RoleAgentRun): Promise<RunResult & { runtime: string }> {
  const roleConfig = run.config.roles[run.role];
  const now = new Date();
  const ledger = new UsageLedger(run.paths.usage);
  const over = budgetStop(run, now);
  const events = new EventLog(run.paths.events);
  if (over !== null) events.emit('budget.reached', { issue: run.issue, role: run.role, task_id: run.recorder?.record.task_id, message: over });
  if (over !== null) throw new BudgetExceededError(`budget: ${over}`);

  const primary = roleConfig.runtime;
  const limits = activeLimits(run.paths.limits, now);
  const candidates = [primary, roleConfig.fallback].filter((r, i, all): r is RuntimeChoice => r !== undefined && all.indexOf(r) === i);
  if (candidates.length === 0) throw new RuntimeConfigError(`role ${run.role} has no runtime; set roles.${run.role}.runtime or the top-level "runtime" in .loom/config.json`);
  const usable = candidates.filter((r) => limits[r] === undefined);
  if (usable.length === 0) {
    const limit = limits[candidates[0] ?? ''];
    throw new RuntimeLimitedError(limit?.runtime ?? String(primary), limit?.until ?? now.toISOString(), `runtime ${limit?.runtime ?? String(primary)} is limited until ${limit?.until ?? '?'} (${limit?.reason ?? 'rate limit'})`);
  }

  const vars: Record<string, string> = { repo: run.paths.root, role: run.role, attempt: String(run.attempt), ...run.vars };
  const prompt = fillTemplate(roleConfig.template, vars);
  // Short values also go to the agent as env vars (LOOM_ISSUE_NUMBER, ...); long texts stay in the prompt.
  const envVars: Record<string, string> = {};
  for (const [key, value] of Object.entries(vars)) if (!LONG_VARS.includes(key)) envVars[key.replace(/\./g, '_')] = value;
  if (vars['issue.number'] !== undefined) envVars.issue = vars['issue.number'];
  envVars.repo_root = run.paths.root;
  if (run.recorder !== undefined) envVars.task_id = run.recorder.record.task_id;
  // Agent CLIs keep their config and sessions in a home per task, so a resume finds its session.
  envVars.state_dir = agentHomeDir(run.paths, run);
  markAgentHomeUsed(envVars.state_dir, now);

  const write = run.out ?? ((text: string) => void process.stdout.write(text));
  for (const name of usable) {
    const runtime = createRuntime(run.role, { ...roleConfig, runtime: name }, run.paths.root);
    const once = async (resumeSessionId: string | undefined): Promise<RunResult> => {
      const tools = new ToolTally();
      // Never two agents for one issue: one an earlier starter left running is ended first.
      if (run.lease !== undefined) envVars.agent_token = await run.lease.beforeAgent();
      const result = tools.judge(await runtime.run({
        role: run.role,
        prompt,
        cwd: run.cwd,
        vars: envVars,
        instructions: run.instructions ?? prompt,
        attempt: run.attempt,
        stallTimeout: run.config.stallTimeout,
        timeout: roleConfig.timeout,
        cliRetries: run.config.cliRetries,
        sandbox: { ...roleConfig.sandbox, repoRoot: run.paths.root },
        ...(run.signal ? { signal: run.signal } : {}),
        ...(roleConfig.model ? { model: roleConfig.model } : {}),
        ...(roleConfig.args.length > 0 ? { args: roleConfig.args } : {}),
        ...(resumeSessionId !== undefined ? { resumeSessionId } : {}),
        onOutput: (text) => {
          write(text);
          run.recorder?.output();
        },
        onStart: (pid) => {
          run.lease?.agentStarted(pid);
          run.recorder?.agent(pid);
        },
        onEvent: (event) => tools.note(event),
      }));
      events.emit('agent.run', { issue: run.issue, role: run.role, runtime: name, model: roleConfig.model, task_id: run.recorder?.record.task_id, session_id: result.sessionId, attempt: run.attempt, outcome: result.outcome, duration_ms: result.duration, input_tokens: result.usage?.inputTokens ?? 0, output_tokens: result.usage?.outputTokens ?? 0, cached_input_tokens: result.usage?.cachedInputTokens ?? 0, cost_usd: result.usage ? priceRun(result.usage, name, roleConfig.model ?? null, run.config.pricing).cost : 0, message: result.outcome === 'success' ? undefined : result.message });
      run.lease?.agentEnded();
      if (result.usage !== undefined) {
        const { cost, priced } = priceRun(result.usage, name, roleConfig.model ?? null, run.config.pricing);
        ledger.append({
          at: new Date().toISOString(),
          issue: run.issue ?? null,
          role: run.role,
          runtime: name,
          model: roleConfig.model ?? null,
          session_id: result.sessionId ?? null,
          outcome: result.outcome,
          input_tokens: result.usage.inputTokens,
          output_tokens: result.usage.outputTokens,
          cached_input_tokens: result.usage.cachedInputTokens,
          cost_usd: cost,
          priced,
        });
      }
      return result;
    };
    // A session is resumed only by the CLI that made it.
    const resume = run.resumeSessionId && (run.resumeRuntime ?? primary) === name ? run.resumeSessionId : undefined;
    let result = await once(resume);
    if (resume !== undefined && notResumed(result)) {
      // The session is not in this task's agent home (a job taken over from another worker's
      // clone, a home removed meanwhile): the CLI refused before any model turn. A new one starts.
      write(`loom: could not resume the ${name} session ${resume} (${result.message}); starting a new session\n`);
      result = await once(undefined);
    }
    // A rate/usage limit, or a provider still overloaded after the CLI's own retries, is not the
    // issue's fault: the runtime pauses (until the reset, or a backoff) and the role fails over.
    const kind = result.failure?.kind;
    if (kind !== 'rate-limit' && kind !== 'overloaded') return { ...result, runtime: name };
    const now = new Date();
    const resetAt = kind === 'overloaded' ? new Date(now.getTime() + OVERLOADED_BACKOFF_MS).toISOString() : result.failure?.resetAt;
    const limit = recordLimit(run.paths.limits, name, resetAt, result.message, now);
    events.emit('runtime.limited', { runtime: name, role: run.role, issue: run.issue, until: limit.until, message: result.message });
    write(`loom: runtime ${name} is ${kind === 'overloaded' ? 'overloaded; paused' : 'limited'} until ${limit.until}${name !== usable.at(-1) ? '; failing over' : ''}\n`);
    if (name === usable.at(-1)) throw new RuntimeLimitedError(name, limit.until, `runtime ${name} is limited until ${limit.until}: ${result.message}`);
  }
  throw new Error('unreachable: no runtime ran');
}

/**
 * A resumed run that failed before any model turn (no token used, no limit hit, the CLI there):
 * the CLI could not find the session. Claude Code says `No conversation found with session ID`,
 * Codex `no rollout found for thread id`, Gemini `No previous sessions found`.
 */
function notResumed(result: RunResult): boolean {
  if (result.outcome !== 'failed' || (result.failure !== undefined && result.failure.kind !== 'agent')) return false;
  const usage = result.usage;
  return usage === undefined || usage.inputTokens + usage.outputTokens === 0;
}

/** Longest piece of a failed tool's output quoted in a run's failure message, in characters. */
const TOOL_ERROR_QUOTE = 160;

/**
 * Counts the tool results an agent CLI reported during one run (its stream parser says whether
 * each call succeeded). `judge` turns a run that made tool calls and saw every one of them fail
 * into a failure: an agent whose tools do not work has not done its task, even when it exits 0
 * and says it is done. Runtimes without a typed stream (script, command) report no tool calls.
 */
class ToolTally {
  private calls = 0;
  private failed = 0;
  private lastError = '';

  note(event: AgentEvent): void {
    if (event.type !== 'tool_result') return;
    this.calls += 1;
    if (event.ok) return;
    this.failed += 1;
    this.lastError = event.output;
  }

  judge(result: RunResult): RunResult {
    if (result.outcome !== 'success' || this.calls === 0 || this.failed < this.calls) return result;
    const line = this.lastError.replace(/\s+/g, ' ').trim();
    const quote = line === '' ? '' : ` (last: ${line.length > TOOL_ERROR_QUOTE ? `${line.slice(0, TOOL_ERROR_QUOTE)}…` : line})`;
    return { ...result, outcome: 'failed', message: `made ${this.calls} tool call${this.calls === 1 ? '' : 's'} and every one failed${quote}`, failure: { kind: 'agent' } };
  }
}
