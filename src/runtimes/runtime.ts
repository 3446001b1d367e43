/**
 * The `AgentRuntime` port: runs one agent session headlessly for one role.
 *
 * Contract: `run` never throws for an agent failure — every outcome is a value. It kills the
 * agent's whole process group on stall (no output for `stallTimeout`), timeout or abort, and
 * reports the agent's pid as soon as it exists so a supervisor can end it if the caller dies.
 * The agent's environment is built from an allowlist (`agentEnv`): tracker tokens never reach it.
 * Deliberately excluded here: token/cost accounting and session resume (real CLI runtimes).
 */

export type RuntimeName = 'script' | 'command';

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
}

export interface AgentRuntime {
  readonly name: RuntimeName;
  run(context: RunContext): Promise<RunResult>;
}
