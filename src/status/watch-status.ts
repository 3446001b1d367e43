/**
 * `loom status --watch`: the status box redrawn in place every `interval` until Ctrl+C. On a
 * terminal each frame replaces the last one; into a pipe or file (or with `--json`, one JSON
 * line per frame) a frame is written only when something other than the passing time changed.
 * Read-only, like `loom status`.
 */
import type { LoomPaths } from '../config/paths.js';
import { collectStatus } from './collect-status.js';
import type { StatusReport } from './status-report.js';
import { renderStatus } from './status-report.js';

/** Home the cursor and clear the screen. */
const CLEAR = '\x1b[H\x1b[2J';

/** The report without the fields that change by themselves (times since, the free disk space; `disk.low` stays). */
function steady(report: StatusReport): string {
  return JSON.stringify(report, (key, value: unknown) => (key.endsWith('_ms') || key === 'free_bytes' ? undefined : value));
}

/** A terminal's size, and how to hear of a change of it (returns how to stop listening). */
export interface TerminalSize {
  size(): { columns: number; rows: number };
  onResize(listener: () => void): () => void;
}

/**
 * A frame cut to fit a terminal of `columns` × `rows`: longer lines end in `…` instead of
 * wrapping, and a frame taller than the terminal keeps its first lines and says how many more
 * there are, so that redrawing from the top never scrolls.
 */
export function fitToTerminal(text: string, columns: number, rows: number): string {
  const cut = (line: string) => {
    const chars = [...line];
    return chars.length <= columns ? line : `${chars.slice(0, Math.max(0, columns - 1)).join('')}…`;
  };
  const lines = text.split('\n');
  // The last row stays empty: the cursor rests there without scrolling the frame.
  const room = Math.max(1, rows - 1);
  if (lines.length <= room) return lines.map(cut).join('\n');
  const kept = lines.slice(0, room - 1);
  return [...kept, `  … ${lines.length - kept.length} more lines: enlarge the terminal to see them`].map(cut).join('\n');
}

export async function watchStatus(paths: LoomPaths, opts: { write: (text: string) => void; tty: boolean; json: boolean; intervalMs: number; signal: AbortSignal; cli?: string; terminal?: TerminalSize }): Promise<void> {
  const { write, signal, terminal } = opts;
  let last: string | null = null;
  // On a terminal a resize redraws at once, instead of at the next tick.
  let wake: (() => void) | null = null;
  const stopListening = opts.tty && !opts.json && terminal !== undefined ? terminal.onResize(() => wake?.()) : () => undefined;
  try {
    while (!signal.aborted) {
      const report = await collectStatus(paths, opts.cli === undefined ? {} : { cli: opts.cli });
      const key = steady(report);
      if (opts.json) {
        if (key !== last) write(`${JSON.stringify(report)}\n`);
      } else if (opts.tty) {
        const frame = `${renderStatus(report)}\n  (every ${opts.intervalMs / 1000}s; Ctrl+C to quit)`;
        const size = terminal?.size();
        write(`${CLEAR}${size === undefined || !(size.columns > 0 && size.rows > 0) ? frame : fitToTerminal(frame, size.columns, size.rows)}\n`);
      } else if (key !== last) {
        write(`${last === null ? '' : '\n'}${new Date().toISOString().slice(11, 19)}\n${renderStatus(report)}\n`);
      }
      last = key;
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          signal.removeEventListener('abort', done);
          wake = null;
          resolve();
        };
        const timer = setTimeout(done, opts.intervalMs);
        signal.addEventListener('abort', done);
        wake = done;
      });
    }
  } finally {
    stopListening();
  }
}
