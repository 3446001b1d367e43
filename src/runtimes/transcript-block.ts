/**
 * `transcriptBlock`: an agent CLI's event as raw transcript text for `loom logs` — the agent's own
 * text and tool output as they are, Loom's notes around them as `[<name>] ...`. Invariant: every
 * non-empty block ends with a newline, so blocks concatenate into whole lines.
 */
import type { AgentEvent } from './runtime.js';

/** One event as raw transcript text (`[<name>] ...` notes around the agent's own text and tool output), for `loom logs`; '' for nothing. */
export function transcriptBlock(name: string, event: AgentEvent, options: { shellTool: string; sessionModel?: boolean }): string {
  switch (event.type) {
    case 'session':
      return `[${name}] session ${event.sessionId}${options.sessionModel === true && event.model !== undefined ? ` (${event.model})` : ''}\n`;
    case 'text':
      return `${event.text}\n`;
    case 'tool_use':
      return event.name === options.shellTool ? `$ ${event.input}\n` : `[tool] ${event.name} ${event.input}\n`;
    case 'tool_result': {
      const output = event.output.trimEnd();
      return `${output === '' ? '' : `${output}\n`}${event.ok ? '' : '[tool failed]\n'}`;
    }
    case 'retrying':
      return `[${name}] retrying (attempt ${event.attempt}): ${event.reason}\n`;
    case 'usage':
      return `[${name}] tokens: ${event.usage.inputTokens} in (${event.usage.cachedInputTokens} cached), ${event.usage.outputTokens} out\n`;
    case 'result':
      return event.ok ? '' : `[${name}] failed: ${event.text}\n`;
  }
}
