// Every command writes its whole output before it exits, even into a pipe that is full because
// its reader is slow (the kernel's pipe buffer is 64 KiB).
import { spawn } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { Label } from '../../src/core/labels.js';
import { waitFor } from '../../src/process/wait.js';
import type { TestRepo } from '../helpers/loom-repo.js';
import { LOOM_BIN, makeRepo } from '../helpers/loom-repo.js';

let repo: TestRepo | undefined;
afterEach(() => repo?.cleanup());

describe('output', () => {
  it('a --json listing of 2 MB (more than a pipe or socket buffer holds) reaches a reader that starts reading late, whole', async () => {
    repo = makeRepo();
    const tracker = repo.tracker();
    for (let i = 1; i <= 60; i += 1) await tracker.createIssue({ title: `Issue ${i}`, body: `${'lorem ipsum '.repeat(3000)}#${i}`, labels: [Label.issue] });
    const child = spawn(process.execPath, [LOOM_BIN, 'issue', 'list', '--state', 'all', '--json'], { cwd: repo.root, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.pause();
    // The reader does not read yet: a process that exits now would leave most of its output unsent.
    await waitFor(() => child.exitCode !== null, 1_500);
    const chunks: Buffer[] = [];
    const ended = new Promise<void>((resolve) => child.stdout.on('end', () => resolve()));
    child.stdout.on('data', (chunk: Buffer) => chunks.push(chunk));
    child.stdout.resume();
    await ended;
    expect(await waitFor(() => child.exitCode !== null, 10_000)).toBe(true);
    expect(child.exitCode).toBe(0);
    const text = Buffer.concat(chunks).toString('utf8');
    expect(text.length).toBeGreaterThan(2_000_000);
    const issues = JSON.parse(text) as { number: number }[];
    expect(issues.map((i) => i.number)).toEqual(Array.from({ length: 60 }, (_, i) => i + 1));
  });

  it.each([
    [['issue', 'list', '--state', 'all', '--json']],
    [['issue', 'list', '--state', 'all']],
  ])('loom %j into a reader that stops after a few bytes (`| head -c 10`) ends quietly: no stack trace, exit 0', async (args) => {
    repo = makeRepo();
    const tracker = repo.tracker();
    for (let i = 1; i <= 60; i += 1) await tracker.createIssue({ title: `Issue ${i} ${'x'.repeat(3000)}`, body: 'lorem ipsum '.repeat(3000), labels: [Label.issue] });
    const child = spawn(process.execPath, [LOOM_BIN, ...args], { cwd: repo.root, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    // Read the first chunk, then go away as `head -c 10` does.
    await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
    child.stdout.destroy();
    expect(await exited, stderr).toBe(0);
    expect(stderr).toBe('');
  });
});
