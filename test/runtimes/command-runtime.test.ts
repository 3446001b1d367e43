// The command runtime's reading of a command: its executable word, a relative path resolved
// against the repository root, and the check that it will run.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { commandHead, findExecutable } from '../../src/runtimes/command-path.js';
import { resolveCommand } from '../../src/runtimes/command-runtime.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'loom-command-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

describe('command runtime', () => {
  it('finds the executable word after NAME=value assignments, and only when the shell takes it literally', () => {
    expect(commandHead('./scripts/agent.sh --fast')).toEqual({ before: '', word: './scripts/agent.sh', after: ' --fast' });
    expect(commandHead('  LOG=1 MODE=quick scripts/agent.sh; echo done')).toEqual({ before: '  LOG=1 MODE=quick ', word: 'scripts/agent.sh', after: '; echo done' });
    expect(commandHead('for i in 1 2; do echo $i; done')?.word).toBe('for');
    for (const unreadable of ['"$HOME/agent.sh"', '$AGENT run', '~/agent.sh', '(cd sub && ./agent.sh)', './agent*.sh', '', '   ']) expect(commandHead(unreadable), unreadable).toBeNull();
  });

  it('resolves a relative executable path against the repository root and leaves everything else alone', () => {
    expect(resolveCommand('./scripts/agent.sh --fast', '/repo')).toBe("'/repo/scripts/agent.sh' --fast");
    expect(resolveCommand('LOG=1 bin/agent', '/my repo')).toBe("LOG=1 '/my repo/bin/agent'");
    expect(resolveCommand('../tools/agent', '/repo/sub')).toBe("'/repo/tools/agent'");
    for (const same of ['/opt/agent.sh --x', 'claude -p', 'node ./agent.js', 'echo built > built.txt', '"./quoted.sh"']) expect(resolveCommand(same, '/repo')).toBe(same);
  });

  it('checks the executable: a file that exists and is executable, or a name the shell finds', () => {
    fs.mkdirSync(path.join(root, 'scripts'));
    fs.writeFileSync(path.join(root, 'scripts', 'ok.sh'), '#!/bin/sh\n', { mode: 0o755 });
    fs.writeFileSync(path.join(root, 'scripts', 'plain.sh'), '#!/bin/sh\n', { mode: 0o644 });
    expect(findExecutable('./scripts/ok.sh', root)).toEqual({ path: path.join(root, 'scripts', 'ok.sh') });
    expect(findExecutable('./scripts/missing.sh', root)).toEqual({ problem: `./scripts/missing.sh (${path.join(root, 'scripts', 'missing.sh')}: a relative path is resolved against the repository root) does not exist` });
    expect(findExecutable('./scripts/plain.sh', root)).toEqual({ problem: expect.stringMatching(/is not executable: `chmod \+x \.\/scripts\/plain\.sh`$/) });
    expect(findExecutable('scripts', root)).toEqual({ problem: '`scripts` is not found on PATH' }); // a bare name is looked up on PATH
    expect(findExecutable('./scripts', root)).toEqual({ problem: expect.stringMatching(/is a directory, not a program$/) });
    expect(findExecutable('sh', root)).toEqual({ path: expect.stringMatching(/\/sh$/) });
    expect(findExecutable('for', root)).toEqual({ path: 'for' }); // a shell keyword
  });
});
