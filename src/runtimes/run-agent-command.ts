/**
 * `runAgentCommand`: one agent command under the context's watchdogs, its output passed on as
 * text. Invariant: output is decoded as UTF-8 across chunk boundaries (no character is split),
 * and everything decoded is passed on before the call returns.
 */
import { StringDecoder } from 'node:string_decoder';
import { runCommand } from '../process/run-command.js';
import type { RunCommandResult } from '../process/run-command.js';
import { guarded } from './emit-event.js';
import type { RunContext } from './runtime.js';

/**
 * Runs `command` (via `sh -c`, in `context.cwd`) under the context's watchdogs, passing its output
 * on decoded as UTF-8: stdout and stderr together to `onText`, or stderr apart to `onStderr`.
 */
export async function runAgentCommand(command: string, env: NodeJS.ProcessEnv, context: RunContext, onText: (text: string) => void, onStderr?: (text: string) => void): Promise<RunCommandResult> {
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
