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

export async function watchStatus(paths: LoomPaths, opts: { write: (text: string) => void; tty: boolean; json: boolean; intervalMs: number; signal: AbortSignal; cli?: string }): Promise<void> {
  const { write, signal } = opts;
  let last: string | null = null;
  while (!signal.aborted) {
    const report = await collectStatus(paths, opts.cli === undefined ? {} : { cli: opts.cli });
    const key = steady(report);
    if (opts.json) {
      if (key !== last) write(`${JSON.stringify(report)}\n`);
    } else if (opts.tty) {
      write(`${CLEAR}${renderStatus(report)}\n  (every ${opts.intervalMs / 1000}s; Ctrl+C to quit)\n`);
    } else if (key !== last) {
      write(`${last === null ? '' : '\n'}${new Date().toISOString().slice(11, 19)}\n${renderStatus(report)}\n`);
    }
    last = key;
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, opts.intervalMs);
      signal.addEventListener('abort', done);
    });
  }
}
