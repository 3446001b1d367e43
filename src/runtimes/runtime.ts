/**
 * The `AgentRuntime` port: runs one agent session headlessly for one role.
 *
 * Contract: `run` never throws for an agent failure — every outcome is a value. It kills the
 * agent's whole process group on stall (no output for `stallTimeout`), timeout or abort, and
 * reports the agent's pid as soon as it exists so a supervisor can end it if the caller dies.
 * The agent's environment is built from an allowlist (`agentEnv`): tracker tokens never reach it.
 * CLI runtimes (claude, codex, ...) also report typed events, session id, usage and a classified
 * failure; `script` and `command` leave those unset.
 */

import type { RunSandbox } from './sandbox.js';

export type RuntimeName = 'script' | 'command' | 'claude' | 'codex' | 'gemini' | 'opencode';

/**
 * What an agent CLI's stream turns into. Every event renews the run's liveness lease; `text`,
 * `tool_use` and `tool_result` also feed the readable transcript (`loom logs <issue> -f`).
 */
export type AgentEvent =
  | { type: 'session'; sessionId: string; model?: string }
  | { type: 'text'; text: string }
  | { type: 'tool_use'; name: string; input: string }
  | { type: 'tool_result'; ok: boolean; output: string }
  /** `fallback`: the CLI has another way to go if this keeps failing (not counted against `cliRetries`). */
  | { type: 'retrying'; attempt: number; reason: string; delayMs?: number; fallback?: boolean }
  | { type: 'usage'; usage: Usage }
  | { type: 'result'; ok: boolean; text: string };

/** Tokens and cost of one run. `costUsd` is null when neither the CLI nor the price table gives one. */
export interface Usage {
  inputTokens: number;
  outputTokens: number;
  cachedInputTokens: number;
  costUsd: number | null;
}

/** Why a run failed, and whether waiting can help (PRODUCT.md §5, docs/runtimes.md). */
export type FailureKind = 'auth' | 'rate-limit' | 'overloaded' | 'agent' | 'config';

export interface RunFailure {
  kind: FailureKind;
  /** For `rate-limit`: when the limit resets (ISO time), if the CLI said. */
  resetAt?: string;
}

export interface RunContext {
  /** Role being performed: builder, judge, doctor, ... */
  role: string;
  /** The filled prompt. */
  prompt: string;
  /** Working directory (the worktree for shepherd roles). */
  cwd: string;
  /** Variables describing the task, passed as `LOOM_*` env vars (`issue` → `LOOM_ISSUE`). */
  vars: Record<string, string>;
  /** The (or PR's) text, for runtimes that follow written instructions. */
  instructions: string;
  /** 1 for the first run of this role on this task, 2 for the next (doctor rounds, retries). */
  attempt: number;
  /** No output for this long → stalled, ms. */
  stallTimeout: number;
  /** Whole-run limit, ms. */
  timeout: number;
  signal?: AbortSignal;
  /** Every chunk of agent output, as it arrives (renews the liveness lease). */
  onOutput?: (text: string) => void;
  /** The agent's process (group leader) id, once it exists. */
  onStart?: (pid: number) => void;
  /** Typed events parsed from the agent's stream (CLI runtimes). */
  onEvent?: (event: AgentEvent) => void;
  /** Model to use, for runtimes that take one. */
  model?: string;
  /** Extra CLI arguments from the role file or config. */
  args?: readonly string[];
  /** Session to resume (the previous run of this role on this task), when the CLI supports it. */
  resumeSessionId?: string;
  /**
   * How many times in a row an agent CLI may retry a failed model request on its own before the
   * run fails (config `cliRetries`; default `DEFAULT_CLI_RETRIES`). Passed to the CLI's own
   * setting where it has one, and enforced from its stream: one retry more and the run is
   * stopped and failed as transient, so Loom reschedules instead of waiting on the CLI.
   */
  cliRetries?: number;
  /**
   * The filesystem sandbox the agent runs in (docs/security.md); absent or type `none`: none, the
   * agent reaches whatever the user can. A CLI with a sandbox of its own (Codex) turns it off
   * inside this one.
   */
  sandbox?: RunSandbox;
}

export interface RunResult {
  outcome: 'success' | 'failed' | 'stalled' | 'timeout' | 'aborted';
  /** Everything the agent printed (stdout and stderr), for output contracts. */
  output: string;
  exitCode: number | null;
  /** One line for comments and logs when not a success. */
  message: string;
  /** Wall time, ms. */
  duration: number;
  /** Session id of the run, for resume (CLI runtimes). */
  sessionId?: string;
  usage?: Usage;
  /** Set when outcome is `failed`: the classified cause. */
  failure?: RunFailure;
}

export interface AgentRuntime {
  readonly name: RuntimeName;
  run(context: RunContext): Promise<RunResult>;
}
