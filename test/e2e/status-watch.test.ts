// `loom status --watch`: the status redrawn until Ctrl+C — a new frame when the tracker changes,
// a clean exit 0 with the whole output on SIGINT, one JSON line per change with --json.
import { spawn } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { Label } from '../../src/core/labels.js';
import type { TestRepo } from '../helpers/loom-repo.js';
import { LOOM_BIN, loom, makeRepo, until } from '../helpers/loom-repo.js';

let repo: TestRepo | undefined;
afterEach(() => repo?.cleanup());

function watch(root: string, args: string[], command = ['status', '--watch']) {
  const child = spawn(process.execPath, [LOOM_BIN, ...command, ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (err += c.toString()));
  const exit = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return { child, out: () => out, err: () => err, exit };
}

describe('loom status --watch', () => {
  it('prints a new frame when something changes and exits 0 on Ctrl+C', async () => {
    repo = makeRepo({});
    const w = watch(repo.root, []);
    await until(() => /LOOM DAEMON STATUS/.test(w.out()), 20_000, 'the first frame');
    expect(w.out()).toMatch(/Ready issues \(loom:issue\): 0/);
    expect(loom(repo.root, ['issue', 'create', 'watch me', '--label', Label.issue]).code).toBe(0);
    await until(() => /Ready issues \(loom:issue\): 1/.test(w.out()), 20_000, `a frame with the new issue:\n${w.out()}`);
    // Not a terminal: a frame only when something changed (not every second).
    expect(w.out().match(/LOOM DAEMON STATUS/g)).toHaveLength(2);
    expect(w.out()).not.toContain('\x1b[');
    w.child.kill('SIGINT');
    expect(await w.exit).toBe(0);
    expect(w.err()).toBe('');
  });

  it('on a terminal redraws the box in place every second', async () => {
    repo = makeRepo({});
    // `script` (util-linux, essential on Debian) gives the command a terminal. It runs the command
    // through $SHELL -c; `exec` makes loom the terminal's foreground process itself, whatever the
    // shell (dash, /bin/sh where SHELL is unset, would otherwise die of the Ctrl+C: exit 130).
    const child = spawn('script', ['-qfec', `exec ${process.execPath} ${LOOM_BIN} status --watch`, '/dev/null'], { cwd: repo.root, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    const exit = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    await until(() => (out.match(/LOOM DAEMON STATUS/g) ?? []).length >= 3, 20_000, () => `three frames:\n${out}`);
    // Every frame starts by homing the cursor and clearing the screen.
    expect(out.split('\x1b[H\x1b[2J').filter((f) => f.includes('LOOM DAEMON STATUS')).length).toBeGreaterThanOrEqual(3);
    expect(out).toMatch(/Ctrl\+C to quit/);
    child.stdin.write('\x03'); // Ctrl+C at the terminal
    expect(await exit).toBe(0);
  });

  it('on a terminal fits the box to its size, and to the new size once the terminal is resized', async () => {
    repo = makeRepo({});
    // The terminal starts at 60×20 and grows to 100×50 a moment later (stty's resize sends SIGWINCH).
    const command = `stty cols 60 rows 20; (sleep 2; stty cols 100 rows 50 </dev/tty) & exec ${process.execPath} ${LOOM_BIN} status --watch`;
    const child = spawn('script', ['-qfec', command, '/dev/null'], { cwd: repo.root, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    const exit = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    // Whole frames (each is followed by the next one's clear).
    const frames = () =>
      out
        .split('\x1b[H\x1b[2J')
        .slice(1, -1)
        .map((f) => f.replace(/\r/g, '').replace(/\n$/, '').split('\n'));
    const widest = (f: string[]) => Math.max(...f.map((l) => [...l].length));
    await until(() => frames().some((f) => widest(f) > 60), 20_000, () => `a frame at the new size:\n${out}`);
    const small = frames().filter((f) => widest(f) <= 60);
    const large = frames().filter((f) => widest(f) > 60);
    expect(small.length).toBeGreaterThan(0);
    for (const f of small) {
      // 19 rows of a 20-row terminal: cut, with a note of what is left out; no line wraps.
      expect(f.length).toBe(19);
      expect(f.at(-1)).toMatch(/^ {2}… \d+ more lines: enlarge the terminal to see them$/);
      expect(f.some((l) => l.length === 60 && l.endsWith('…'))).toBe(true);
    }
    for (const f of large) {
      expect(widest(f)).toBeLessThanOrEqual(100);
      expect(f.length).toBeLessThanOrEqual(49);
    }
    // At 100×50 the whole box fits.
    await until(() => frames().some((f) => f.at(-1)?.includes('Ctrl+C to quit') && widest(f) > 60), 20_000, () => `a whole frame:\n${out}`);
    child.stdin.write('\x03');
    expect(await exit).toBe(0);
  });

  it('with --json prints one status document per change', async () => {
    repo = makeRepo({});
    const w = watch(repo.root, ['--json']);
    await until(() => w.out().includes('\n'), 20_000, 'the first document');
    await repo.tracker().createIssue({ title: 'another', labels: [Label.issue, Label.urgent] });
    await until(() => w.out().trim().split('\n').length >= 2, 20_000, 'a second document');
    w.child.kill('SIGTERM');
    expect(await w.exit).toBe(0);
    const docs = w.out().trim().split('\n').map((l) => JSON.parse(l));
    expect(docs.map((d) => d.issues.ready)).toEqual([0, 1]);
    expect(docs[1].issues.urgent).toBe(1);
    expect(Object.keys(docs[0]).sort()).toEqual(Object.keys(JSON.parse(loom(repo.root, ['status', '--json']).stdout)).sort());
  });

  it('ends quietly with exit 0 when its reader goes away (… | head), as loom events -f does', async () => {
    repo = makeRepo({});
    const w = watch(repo.root, []);
    await until(() => /LOOM DAEMON STATUS/.test(w.out()), 20_000, 'the first frame');
    w.child.stdout.destroy();
    // The next frame finds nobody reading.
    expect(loom(repo.root, ['issue', 'create', 'nobody reads this', '--label', Label.issue]).code).toBe(0);
    expect(await w.exit).toBe(0);
    expect(w.err()).toBe('');

    const f = watch(repo.root, ['-f', '--idle'], ['events']);
    await until(() => f.child.pid !== undefined, 5_000, 'loom events -f running');
    f.child.stdout.destroy();
    // Each iteration writes an event: the follower's next write finds nobody reading.
    expect(loom(repo.root, ['iterate']).code).toBe(0);
    expect(await f.exit).toBe(0);
    expect(f.err()).toBe('');
  });
});
