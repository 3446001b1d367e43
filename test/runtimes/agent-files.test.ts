// An agent run's prompt files live in a temp dir named after the process that made it: removed when
// the run ends, and — when that process was killed first — by the cleanup every iteration runs.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { isProcessAlive } from '../../src/process/process-identity.js';
import { removeOrphanAgentFiles, withAgentFiles } from '../../src/runtimes/with-agent-files.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

describe('agent files', () => {
  it('a run names its temp dir after its process and removes it when it ends', async () => {
    let seen = '';
    const result = await withAgentFiles('loom-agent-', { role: 'builder', prompt: 'p', instructions: 'i', cwd: os.tmpdir(), vars: {}, attempt: 1, stallTimeout: 1_000, timeout: 1_000 }, (files) => {
      seen = files.dir;
      expect(fs.readFileSync(files.promptFile, 'utf8')).toBe('p');
      return Promise.resolve({ outcome: 'success', output: '', exitCode: 0, message: '', duration: 0 });
    });
    expect(result.outcome).toBe('success');
    expect(path.basename(seen)).toMatch(new RegExp(`^loom-agent-${process.pid}-`));
    expect(fs.existsSync(seen)).toBe(false);
  });

  it("the dirs of runs whose process is gone are removed; a live process's and unrelated ones stay", () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'loom-agent-files-test-'));
    dirs.push(tmp);
    const gone = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout;
    expect(isProcessAlive(Number(gone))).toBe(false);
    const names = [`loom-agent-${gone}-aB3dE9`, `loom-claude-run-${gone}-x1y2z3`, `loom-codex-${gone}-Qw12Er`, `loom-agent-${process.pid}-live01`, 'loom-codex-home-abc123', 'loom-agent-files-other', 'unrelated'];
    for (const name of names) {
      fs.mkdirSync(path.join(tmp, name));
      fs.writeFileSync(path.join(tmp, name, 'prompt.md'), 'x');
    }
    expect(removeOrphanAgentFiles((pid) => isProcessAlive(pid), tmp).sort()).toEqual([`loom-agent-${gone}-aB3dE9`, `loom-claude-run-${gone}-x1y2z3`, `loom-codex-${gone}-Qw12Er`].sort());
    expect(fs.readdirSync(tmp).sort()).toEqual([`loom-agent-${process.pid}-live01`, 'loom-codex-home-abc123', 'loom-agent-files-other', 'unrelated'].sort());
  });
});
