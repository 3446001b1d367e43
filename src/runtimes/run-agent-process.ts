/**
 * What every process-based runtime shares: the prompt and instructions handed over as files in a
 * private temp dir, the allowlisted environment, one `runCommand` run with its watchdogs, the
 * output collected (tail kept) and streamed, and the command's outcome mapped to a `RunResult`.
 */
import { agentEnv } from '../process/agent-env.js';
import type { RunCommandResult } from '../process/run-command.js';
import { emitOutput } from './emit-event.js';
import { loomVars } from './loom-vars.js';
import { OutputTail } from './output-tail.js';
import { runAgentCommand } from './run-agent-command.js';
import type { RunContext, RunResult } from './runtime.js';
import { lastLine } from './text-lines.js';
import { howItEnded, watchdogResult, withDetail } from './watchdog-result.js';
import { withAgentFiles } from './with-agent-files.js';

/**
 * Runs `command` (via `sh -c`, in `context.cwd`) as the agent for `context`, in its sandbox when it
 * has one (`program`, `readOnly`: what it needs to see there beyond the system and PATH, as in
 * `AgentCommand`). Never throws.
 */
export async function runAgentProcess(command: string, context: RunContext, show: { program?: string; readOnly?: readonly string[] } = {}): Promise<RunResult> {
  return withAgentFiles('loom-agent-', context, async (files) => {
    const env = agentEnv(process.env, loomVars(context, files));
    const output = new OutputTail();
    // One decoder for both streams: runCommand does not say which stream a chunk came from. A
    // multi-byte character split across chunks is rare enough in agent output to accept that.
    const result = await runAgentCommand({ command, env, files, ...show }, context, (text) => {
      if (text === '') return;
      output.add(text);
      emitOutput(context, text);
    });
    return toRunResult(result, output.text(), context);
  });
}

function toRunResult(result: RunCommandResult, output: string, context: RunContext): RunResult {
  const base = { output, exitCode: result.exitCode, duration: result.duration };
  const ended = watchdogResult(result, context, base, null);
  if (ended !== null) return ended;
  if (result.exitCode === 0) return { ...base, outcome: 'success', message: '' };
  return { ...base, outcome: 'failed', message: withDetail(howItEnded(result.exitCode), lastLine(output)) };
}
