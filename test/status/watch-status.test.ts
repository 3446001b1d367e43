// `loom status --watch` on a terminal: frames cut to the terminal's size, and redrawn at once
// when it is resized rather than at the next tick.
import { afterEach, describe, expect, it } from 'vitest';
import { fitToTerminal, watchStatus } from '../../src/status/watch-status.js';
import type { TestRepo } from '../helpers/loom-repo.js';
import { makeRepo, until } from '../helpers/loom-repo.js';

let repo: TestRepo | undefined;
afterEach(() => repo?.cleanup());

describe('fitToTerminal', () => {
  it('cuts long lines with an ellipsis and a tall frame with a note, leaving the last row free', () => {
    expect(fitToTerminal('abcdef\nab', 4, 10)).toBe('abc…\nab');
    expect(fitToTerminal('═══════', 5, 10)).toBe('════…');
    expect(fitToTerminal(['1', '2', '3', '4', '5'].join('\n'), 80, 4)).toBe(['1', '2', '  … 3 more lines: enlarge the terminal to see them'].join('\n'));
    expect(fitToTerminal('1\n2\n3', 80, 4)).toBe('1\n2\n3');
  });
});

describe('watchStatus on a terminal', () => {
  it('redraws at the new size as soon as the terminal is resized', async () => {
    repo = makeRepo({});
    const frames: string[] = [];
    let size = { columns: 40, rows: 10 };
    let resized: (() => void) | null = null;
    const controller = new AbortController();
    const done = watchStatus(repo.paths, {
      write: (text) => frames.push(text),
      tty: true,
      json: false,
      intervalMs: 600_000,
      signal: controller.signal,
      terminal: { size: () => size, onResize: (listener) => ((resized = listener), () => (resized = null)) },
    });
    await until(() => frames.length === 1, 20_000, 'the first frame');
    const lines = (frame: string) => frame.replace('\x1b[H\x1b[2J', '').replace(/\n$/, '').split('\n');
    expect(lines(frames[0]!).length).toBe(9);
    expect(Math.max(...lines(frames[0]!).map((l) => [...l].length))).toBeLessThanOrEqual(40);
    size = { columns: 120, rows: 100 };
    resized!();
    // Long before the ten-minute tick.
    await until(() => frames.length === 2, 5_000, 'a frame after the resize');
    expect(lines(frames[1]!).at(-1)).toMatch(/Ctrl\+C to quit/);
    controller.abort();
    await done;
    expect(resized).toBeNull();
  });
});
