/**
 * `CommandRuntime`: runs a configured shell command as the agent (any CLI that reads
 * `LOOM_PROMPT_FILE` / `LOOM_INSTRUCTIONS_FILE` and works in its current directory).
 */
import { runAgentProcess } from './run-agent-process.js';
import type { AgentRuntime, RunContext, RunResult } from './runtime.js';

export class CommandRuntime implements AgentRuntime {
  readonly name = 'command';
  private readonly command: string;

  constructor(options: { command: string }) {
    this.command = options.command;
  }

  run(context: RunContext): Promise<RunResult> {
    return runAgentProcess(this.command, context);
  }
}
