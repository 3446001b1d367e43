import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { codexHome } from '../../src/runtimes/codex-home.js';

describe('codexHome', () => {
  it('keeps a task home outside the temp directory where it is', () => {
    const dir = path.join(os.homedir(), 'project', '.loom', 'agent-homes', 'issue-3', 'codex');
    expect(codexHome(dir)).toBe(dir);
  });

  it('moves a home under the temp directory to the user cache, the same place every time', () => {
    const repo = fs.mkdtempSync(path.join(os.tmpdir(), 'loom-codex-home-'));
    const dir = path.join(repo, '.loom', 'agent-homes', 'issue-3', 'codex');
    const moved = codexHome(dir, { HOME: '/home/someone' });
    expect(moved).toMatch(/^\/home\/someone\/\.cache\/loom\/codex-homes\/[0-9a-f]{16}$/);
    expect(codexHome(dir, { HOME: '/home/someone' })).toBe(moved);
    expect(codexHome(path.join(repo, 'other'), { HOME: '/home/someone' })).not.toBe(moved);
    expect(codexHome(dir, { HOME: '/home/someone', XDG_CACHE_HOME: '/var/cache/me' })).toMatch(/^\/var\/cache\/me\/loom\/codex-homes\//);
    fs.rmSync(repo, { recursive: true, force: true });
  });

  it('sees through a symlink into the temp directory', () => {
    const target = fs.mkdtempSync(path.join(os.tmpdir(), 'loom-codex-link-'));
    const link = path.join(fs.mkdtempSync(path.join(os.homedir(), '.loom-codex-link-')), 'repo');
    fs.symlinkSync(target, link);
    expect(codexHome(path.join(link, 'codex'), { HOME: '/home/someone' })).toMatch(/codex-homes/);
    fs.rmSync(path.dirname(link), { recursive: true, force: true });
    fs.rmSync(target, { recursive: true, force: true });
  });
});
