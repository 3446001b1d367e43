/**
 * `CommandRuntime`: runs a configured shell command as the agent (any CLI that reads
 * `LOOM_PROMPT_FILE` / `LOOM_INSTRUCTIONS_FILE` and works in its current directory).
 *
 * The command runs in the worktree, but a relative path it starts with
 * (`./scripts/agent.sh`) names a file of the repository: it is resolved against the repository
 * root, so a script that is not committed yet (and so is not in a worktree cut from the default
 * branch) still runs. `executableProblem` is the check `loom doctor` and `loom start` make.
 */
import path from 'node:path';
import { commandHead } from './command-path.js';
import { runAgentProcess } from './run-agent-process.js';
import { shellQuote } from './shell-quote.js';
import type { AgentRuntime, RunContext, RunResult } from './runtime.js';

export class CommandRuntime implements AgentRuntime {
  readonly name = 'command';
  private readonly command: string;

  /** `command` as `createRuntime` resolved it (`resolveCommand`). */
  constructor(options: { command: string }) {
    this.command = options.command;
  }

  run(context: RunContext): Promise<RunResult> {
    // Its program (a script of the repository's main checkout, say) is shown to it in a sandbox.
    return runAgentProcess(this.command, context, { program: this.command });
  }
}

/** `./scripts/agent.sh --fast` → `'/repo/scripts/agent.sh' --fast`: a relative executable path is the repository's. */
export function resolveCommand(command: string, root: string): string {
  const head = commandHead(command);
  if (head === null || !head.word.includes('/') || path.isAbsolute(head.word)) return command;
  return `${head.before}${shellQuote(path.resolve(root, head.word))}${head.after}`;
}
