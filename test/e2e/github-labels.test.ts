// `loom init` on a GitHub repository whose labels the original Loom (or its people) already made:
// missing labels are created, existing ones — colour, description, spelling — are left exactly
// as they are and the differences reported; nothing is PATCHed.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LABEL_INFO } from '../../src/core/labels.js';
import { FakeGitHubServer } from '../fakes/github-server.js';
import { loomAsync } from '../helpers/loom-repo.js';

let server: FakeGitHubServer | undefined;
let dir: string | undefined;
afterEach(async () => {
  await server?.close();
  if (dir !== undefined) fs.rmSync(dir, { recursive: true, force: true });
});

const git = (cwd: string, ...args: string[]) => spawnSync('git', ['-c', 'user.name=Loom Tests', '-c', 'user.email=tests@localhost', ...args], { cwd, encoding: 'utf8' });

async function label(name: string, color: string, description: string): Promise<void> {
  const r = await fetch(`${server!.url}/repos/acme/widgets/labels`, { method: 'POST', headers: { authorization: 'token tok-owner', 'content-type': 'application/json' }, body: JSON.stringify({ name, color, description }) });
  expect(r.status).toBe(201);
}

describe('loom init on GitHub', () => {
  it('creates the missing labels and leaves existing ones as they are (any spelling), reporting the differences', async () => {
    dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'loom-gh-labels-')));
    git(dir, 'init', '-q', '-b', 'main');
    fs.writeFileSync(path.join(dir, 'README.md'), '# widgets\n');
    git(dir, 'add', '.');
    git(dir, 'commit', '-qm', 'initial');
    server = await FakeGitHubServer.start({ owner: 'acme', repo: 'widgets', tokens: { 'tok-owner': 'acme' } });
    // As the original Loom's installer left them: its own colours and words, one in another case.
    await label('loom:issue', '3e4b9e', 'Approved for work. Applied by: humans, Champion.');
    await label('Loom:Urgent', 'd93f0b', 'Critical/blocking issue requiring immediate attention');
    await label('loom:operator', '000000', 'Engine stops work on this item');
    const before = (await (await fetch(`${server.url}/repos/acme/widgets/labels?per_page=100`, { headers: { authorization: 'token tok-owner' } })).json()) as { name: string; color: string; description: string | null }[];

    fs.mkdirSync(path.join(dir, '.loom'));
    fs.writeFileSync(path.join(dir, '.loom', 'config.json'), JSON.stringify({ tracker: { type: 'github', owner: 'acme', repo: 'widgets', baseUrl: server.url } }));
    const sent = server.requests.length;
    const init = await loomAsync(dir, ['init'], { GITHUB_TOKEN: 'tok-owner', GH_TOKEN: '' });
    expect(init.code, init.stdout + init.stderr).toBe(0);

    const writes = server.requests.slice(sent).filter((r) => r.method !== 'GET');
    expect(writes.filter((r) => r.method !== 'POST')).toEqual([]);
    const after = (await (await fetch(`${server.url}/repos/acme/widgets/labels?per_page=100`, { headers: { authorization: 'token tok-owner' } })).json()) as { name: string; color: string; description: string | null }[];
    for (const old of before) expect(after.find((l) => l.name === old.name), old.name).toEqual(old);
    const names = after.map((l) => l.name.toLowerCase());
    for (const name of Object.keys(LABEL_INFO)) expect(names.filter((n) => n === name), name).toHaveLength(1);
    expect(init.stdout).toMatch(new RegExp(`GitHub labels: ${Object.keys(LABEL_INFO).length - 2} created; 2 differ from Loom's and are left as they are: loom:issue, Loom:Urgent`));
  });
});
