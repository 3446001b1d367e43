/**
 * `JsonStreamReader`: an agent CLI's JSON-lines stream read as it arrives, the same way for every
 * CLI; what a line means is the CLI's own `StreamMapping` (its `*-stream.ts`).
 *
 * Invariant: every line is read once, in order. A typed JSON object (`StreamLine`) is folded into
 * the run's facts and reported as the events the mapping makes of it, each with its transcript
 * text; any other non-blank line is the CLI's plain output — an event when the mapping reads one
 * in it (a retry notice), else passed to the transcript as it is and kept for failure messages.
 * Events reach the caller's `onEvent`, and with it the run's `RetryCap`, as soon as they are read.
 */
import { emitEvent, emitOutput } from './emit-event.js';
import { isRecord } from './json-fields.js';
import { LineReader } from './line-reader.js';
import { OutputTail } from './output-tail.js';
import type { AgentEvent, RunContext } from './runtime.js';

/** One parsed line of a CLI's stream; fields are only what the CLI prints, so all are loose. */
export interface StreamLine {
  type: string;
  [key: string]: unknown;
}

/** A line of the stream, or null for anything else (stderr text, blank or broken lines). */
export function parseStreamLine(line: string): StreamLine | null {
  const trimmed = line.trim();
  if (!trimmed.startsWith('{')) return null;
  try {
    const value: unknown = JSON.parse(trimmed);
    return isRecord(value) && typeof value.type === 'string' ? (value as StreamLine) : null;
  } catch {
    // Not JSON: stray output, reported raw by the reader.
    return null;
  }
}

/** What one CLI's stream lines mean: pure functions of the lines, no I/O. */
export interface StreamMapping<Facts> {
  /** The facts before the first line. */
  readonly initial: Facts;
  /** The facts after one more line. */
  reduce(facts: Facts, line: StreamLine): Facts;
  /** The events one line means, in order; `before`: the facts before this line. */
  events(line: StreamLine, before: Facts): AgentEvent[];
  /** A note for the transcript that is no event (the CLI's warnings and errors), or null. */
  notice?(line: StreamLine): string | null;
  /** The event a plain (non-JSON) line means, or null: the CLI's retry notices on stderr. */
  plainEvent?(raw: string): AgentEvent | null;
}

/** How a run's events are written to its transcript. */
export interface StreamTranscript {
  /** The CLI's name, for notices (`[codex] warning: ...`). */
  name: string;
  /** One event's transcript text ('' for none). */
  event(event: AgentEvent): string;
}

/** Splits a CLI's stream into lines, folds them into its facts, and reports events and transcript text. */
export class JsonStreamReader<Facts> extends LineReader {
  facts: Facts;
  /** Plain lines (not stream records), tail kept for messages. */
  readonly stray = new OutputTail();
  /** The last plain line, trimmed, for a failure the stream did not explain. */
  lastPlainLine = '';

  constructor(
    private readonly context: RunContext,
    private readonly mapping: StreamMapping<Facts>,
    private readonly transcript: StreamTranscript,
  ) {
    super();
    this.facts = mapping.initial;
  }

  protected line(raw: string): void {
    const line = parseStreamLine(raw);
    if (line === null) {
      this.plain(raw);
      return;
    }
    const before = this.facts;
    this.facts = this.mapping.reduce(before, line);
    const notice = this.mapping.notice?.(line) ?? null;
    if (notice !== null) emitOutput(this.context, `[${this.transcript.name}] ${notice}\n`);
    for (const event of this.mapping.events(line, before)) this.emit(event);
  }

  private plain(raw: string): void {
    if (raw.trim() === '') return;
    const event = this.mapping.plainEvent?.(raw) ?? null;
    if (event !== null) {
      this.emit(event);
      return;
    }
    this.lastPlainLine = raw.trim();
    this.stray.add(`${raw}\n`);
    emitOutput(this.context, `${raw}\n`);
  }

  private emit(event: AgentEvent): void {
    emitEvent(this.context, event, this.transcript.event(event));
  }
}
