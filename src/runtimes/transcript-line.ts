/**
 * `transcriptLine`: an agent CLI's event as one readable line for `loom logs` (`<name>: ...`).
 * Invariant: tool calls and results are clipped to `TRANSCRIPT_LIMIT` characters, so one huge
 * tool output cannot flood the transcript.
 */
import type { AgentEvent } from './runtime.js';
import { firstLine } from './text-lines.js';

/** Longest transcript line for a tool call or result, in characters. */
const TRANSCRIPT_LIMIT = 400;

/** How `transcriptLine` renders a CLI's events. */
export interface TranscriptLineOptions {
  /** The tool whose calls are shown as `$ <command>`. */
  shellTool?: string;
  /** Show the session's model. */
  sessionModel?: boolean;
  /** Show a retry's delay. */
  retryDelay?: boolean;
  /** Decimals of the cost (default 4). */
  costDigits?: number;
  /** Show only the first line of a result's text. */
  resultFirstLine?: boolean;
}

/** One readable line per event (`<name>: ...`), for `loom logs`. */
export function transcriptLine(name: string, event: AgentEvent, options: TranscriptLineOptions = {}): string {
  switch (event.type) {
    case 'session':
      return `${name}: session ${event.sessionId}${options.sessionModel === true && event.model !== undefined ? ` (${event.model})` : ''}`;
    case 'text':
      return `${name}: text ${event.text.replace(/\n/g, '\n  ')}`;
    case 'tool_use':
      return event.name === options.shellTool ? `$ ${clip(event.input)}` : `${name}: tool ${event.name} ${clip(event.input)}`;
    case 'tool_result':
      return `${name}: tool ${event.ok ? 'ok' : 'error'} ${clip(event.output.replace(/\s+/g, ' ').trim())}`;
    case 'retrying':
      return `${name}: retrying (attempt ${event.attempt}: ${event.reason}${options.retryDelay === true && event.delayMs !== undefined ? `, in ${Math.round(event.delayMs / 100) / 10}s` : ''})`;
    case 'usage': {
      const u = event.usage;
      return `${name}: usage ${u.inputTokens} in, ${u.outputTokens} out, ${u.cachedInputTokens} cached${u.costUsd !== null ? `, $${u.costUsd.toFixed(options.costDigits ?? 4)}` : ''}`;
    }
    case 'result':
      return `${name}: result ${event.ok ? 'ok' : 'error'} ${clip(options.resultFirstLine === true ? firstLine(event.text) : event.text)}`;
  }
}

function clip(text: string): string {
  return text.length > TRANSCRIPT_LIMIT ? `${text.slice(0, TRANSCRIPT_LIMIT)}…` : text;
}
