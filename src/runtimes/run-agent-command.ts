/**
 * `runAgentCommand`: one agent command under the context's watchdogs — inside the run's sandbox
 * when it has one — its output passed on as text. Invariants: output is decoded as UTF-8 across
 * chunk boundaries (no character is split), and everything decoded is passed on before the call
 * returns; a run whose sandbox cannot be created is not started (it throws, and `withAgentFiles`
 * makes that a failed result).
 */
import { StringDecoder } from 'node:string_decoder';
import { runCommand } from '../process/run-command.js';
import type { RunCommandResult } from '../process/run-command.js';
import { bwrapProblem, bwrapStatus } from '../process/sandbox-probe.js';
import { guarded } from './emit-event.js';
import type { RunContext } from './runtime.js';
import { programPaths, sandboxedCommand } from './sandbox.js';
import type { AgentFiles } from './with-agent-files.js';

/** One agent command: its `sh -c` line, environment, the run's files and what it needs to see in a sandbox. */
export interface AgentCommand {
  command: string;
  env: NodeJS.ProcessEnv;
  /** The run's prompt and instructions (read-only in the sandbox). */
  files: AgentFiles;
  /** The task's homes: the agent CLI's config and sessions (read-write in the sandbox). */
  homes?: readonly string[];
  /** The agent's program (a path or a name on PATH, or a command prefix starting with one): shown read-only in the sandbox wherever it is installed. */
  program?: string;
  /** More read-only paths the agent needs in the sandbox. */
  readOnly?: readonly string[];
}

/**
 * Runs the agent's command (via `sh -c`, in `context.cwd`) under the context's watchdogs, inside
 * `context.sandbox` when it is `bwrap`, passing its output on decoded as UTF-8: stdout and stderr
 * together to `onText`, or stderr apart to `onStderr`.
 */
export async function runAgentCommand(agent: AgentCommand, context: RunContext, onText: (text: string) => void, onStderr?: (text: string) => void): Promise<RunCommandResult> {
  let { command, env } = agent;
  const sandbox = context.sandbox;
  if (sandbox !== undefined && sandbox.type === 'bwrap') {
    const status = bwrapStatus();
    if (!status.ok) throw new Error(bwrapProblem(status));
    const program = agent.program === undefined ? [] : programPaths(agent.program, env, context.cwd);
    ({ command, env } = sandboxedCommand(status.path, command, { sandbox, cwd: context.cwd, env, homes: agent.homes ?? [], readOnly: [agent.files.dir, ...program, ...(agent.readOnly ?? [])] }));
  }
  const decoder = new StringDecoder('utf8');
  const stderrDecoder = new StringDecoder('utf8');
  const result = await runCommand({
    command,
    cwd: context.cwd,
    env,
    stallTimeout: context.stallTimeout,
    timeout: context.timeout,
    signal: context.signal,
    onStart: (pid) => guarded(() => context.onStart?.(pid)),
    onOutput: (chunk) => onText(decoder.write(chunk)),
    ...(onStderr === undefined ? {} : { onStderr: (chunk: Buffer) => onStderr(stderrDecoder.write(chunk)) }),
  });
  onText(decoder.end());
  onStderr?.(stderrDecoder.end());
  return result;
}
