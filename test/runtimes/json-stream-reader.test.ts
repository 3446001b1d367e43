// The generic reader of an agent CLI's JSON-lines stream, with a small mapping of its own: what
// it does with typed lines, plain lines, blank lines and a last line without a newline.
import { describe, expect, it } from 'vitest';
import { JsonStreamReader } from '../../src/runtimes/json-stream-reader.js';
import type { StreamMapping } from '../../src/runtimes/json-stream-reader.js';
import type { AgentEvent, RunContext } from '../../src/runtimes/runtime.js';

interface Facts {
  lines: string[];
}

const mapping: StreamMapping<Facts> = {
  initial: { lines: [] },
  reduce: (facts, line) => ({ lines: [...facts.lines, line.type] }),
  events: (line, before) => (line.type === 'text' ? [{ type: 'text', text: `${String(line.text)} after ${before.lines.length}` }] : []),
  notice: (line) => (line.type === 'warn' ? 'careful' : null),
  plainEvent: (raw) => (raw.startsWith('Retrying') ? { type: 'retrying', attempt: 1, reason: raw } : null),
};

function read(chunks: string[]): { reader: JsonStreamReader<Facts>; events: AgentEvent[]; output: string } {
  const events: AgentEvent[] = [];
  let output = '';
  const context = { onEvent: (event: AgentEvent) => events.push(event), onOutput: (text: string) => (output += text) } as unknown as RunContext;
  const reader = new JsonStreamReader(context, mapping, { name: 'fake', event: (event) => (event.type === 'text' ? `> ${event.text}\n` : '') });
  for (const chunk of chunks) reader.write(chunk);
  reader.end();
  return { reader, events, output };
}

describe('JsonStreamReader', () => {
  it('folds typed lines into facts and reports their events, given the facts before each line', () => {
    const { reader, events, output } = read(['{"type":"start"}\n{"type":"te', 'xt","text":"hi"}\n\n   \n{"type":"warn"}\n{"type":"text","text":"end"}']);
    expect(reader.facts).toEqual({ lines: ['start', 'text', 'warn', 'text'] });
    expect(events).toEqual([
      { type: 'text', text: 'hi after 1' },
      { type: 'text', text: 'end after 3' },
    ]);
    expect(output).toBe('> hi after 1\n[fake] careful\n> end after 3\n');
    expect(reader.lastPlainLine).toBe('');
    expect(reader.stray.text()).toBe('');
  });

  it('passes plain lines to the transcript and keeps them, unless the mapping reads an event in them', () => {
    const { reader, events, output } = read(['Warning: something\n', 'Retrying in 5s\n', '{"broken":\n', '  last words  ']);
    expect(events).toEqual([{ type: 'retrying', attempt: 1, reason: 'Retrying in 5s' }]);
    expect(output).toBe('Warning: something\n{"broken":\n  last words  \n');
    expect(reader.stray.text()).toBe('Warning: something\n{"broken":\n  last words  \n');
    expect(reader.lastPlainLine).toBe('last words');
    expect(reader.facts).toEqual({ lines: [] });
  });
});
