// `loom doctor` reports installed runtimes, versions and auth without calling any API.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { TestRepo } from '../helpers/loom-repo.js';
import { loom, makeRepo } from '../helpers/loom-repo.js';

let repo: TestRepo | undefined;
afterEach(() => repo?.cleanup());

describe('loom doctor', () => {
  it('finds the pinned CLIs, their versions, and whether auth is configured; flags a role whose runtime cannot run', () => {
    repo = makeRepo({ roles: { builder: { runtime: 'claude' }, judge: { runtime: 'codex', fallback: 'claude' } } });
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'loom-home-'));
    const env = { HOME: home, ANTHROPIC_API_KEY: '', CODEX_API_KEY: '', OPENAI_API_KEY: '', CLAUDE_CODE_OAUTH_TOKEN: '', ANTHROPIC_AUTH_TOKEN: '' };
    const without = JSON.parse(loom(repo.root, ['doctor', '--json'], env).stdout);
    const claude = without.runtimes.find((r: { runtime: string }) => r.runtime === 'claude');
    expect(claude).toMatchObject({ installed: true, auth: false });
    expect(claude.version).toMatch(/Claude Code/);
    expect(without.runtimes.find((r: { runtime: string }) => r.runtime === 'codex')).toMatchObject({ installed: true, auth: false });
    expect(without.problems).toEqual(expect.arrayContaining(['role builder: claude has no auth configured', 'role judge: codex has no auth configured']));

    const withKeys = JSON.parse(loom(repo.root, ['doctor', '--json'], { ...env, ANTHROPIC_API_KEY: 'x' }).stdout);
    expect(withKeys.runtimes.find((r: { runtime: string }) => r.runtime === 'claude')).toMatchObject({ auth: true, authDetail: '$ANTHROPIC_API_KEY' });
    expect(withKeys.problems).toEqual([]); // the judge falls back to claude
    expect(withKeys.roles.find((r: { role: string }) => r.role === 'judge')).toMatchObject({ usable: true, problem: 'codex has no auth configured' });
    fs.mkdirSync(path.join(home, '.codex'));
    fs.writeFileSync(path.join(home, '.codex', 'auth.json'), '{}');
    const text = loom(repo.root, ['doctor'], { ...env, ANTHROPIC_API_KEY: 'x' }).stdout;
    expect(text).toMatch(/codex\s+codex-cli [\d.]+ at .*\n\s+auth: configured \(~\/\.codex\/auth\.json\)/);
    fs.rmSync(home, { recursive: true, force: true });
  });
});
