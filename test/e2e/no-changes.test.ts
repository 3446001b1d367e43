// "No changes needed" is the builder's decision, never an accident: only a builder that says
// `NO CHANGES NEEDED: <reason>` gets its issue closed without a change; a builder that made no
// commit and said nothing failed (retried, then blocked), and so did one whose tool calls all failed.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Label } from '../../src/core/labels.js';
import { FakeAnthropicServer } from '../fakes/anthropic-server.js';
import type { TestRepo } from '../helpers/loom-repo.js';
import { loom, loomAsync, makeRepo } from '../helpers/loom-repo.js';

let repo: TestRepo | undefined;
let closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers) await close();
  closers = [];
  repo?.cleanup();
});

const fence = '```';
const git = (cwd: string, ...args: string[]) => spawnSync('git', args, { cwd, encoding: 'utf8' }).stdout.trim();
const script = (role: string, body: string) => `${fence}loom-script ${role}\n${body}\n${fence}`;

describe('no changes needed is a decision', () => {
  it('a builder that makes no commit and says nothing is retried, then the issue is blocked with a true comment (exit 3), not closed', async () => {
    repo = makeRepo({ runtime: 'script', agentRetries: 1 });
    const tracker = repo.tracker();
    await tracker.createIssue({ title: 'silent builder', labels: [Label.issue], body: script('builder', 'say I had a look around.') });
    const r = loom(repo.root, ['shepherd', '1']);
    expect(r.code, r.stdout + r.stderr).toBe(3);
    expect(r.stdout).toMatch(/the builder made no commit and did not say `NO CHANGES NEEDED: <reason>`; retrying \(1 of 1\)/);
    expect(r.stdout.match(/I had a look around\./g)).toHaveLength(2);
    const issue = (await tracker.getIssue(1))!;
    expect(issue.state).toBe('open');
    expect(issue.labels).toEqual([Label.blocked]);
    const comment = (await tracker.listComments(1)).at(-1)!.body;
    expect(comment).toMatch(/^Loom: the builder made no commit and did not say `NO CHANGES NEEDED: <reason>` \(after 2 attempts\); marking this issue `loom:blocked`\. No work was committed, so no branch was kept\./);
    expect(comment).not.toMatch(/no changes needed —|work so far/);
    expect(await tracker.listPullRequests({ state: 'all' })).toEqual([]);
  });

  it('a builder that says nothing on its first attempt and commits on its retry gets its work merged', async () => {
    repo = makeRepo({ runtime: 'script' });
    const tracker = repo.tracker();
    await tracker.createIssue({ title: 'second time lucky', labels: [Label.issue], body: [script('builder 1', 'say Thinking about it.'), script('builder 2', 'write lucky.txt <<EOF\nlucky\nEOF')].join('\n\n') });
    const r = loom(repo.root, ['shepherd', '1', '--force-merge']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/retrying \(1 of 2\)/);
    expect(fs.readFileSync(path.join(repo.root, 'lucky.txt'), 'utf8')).toBe('lucky\n');
    expect(git(repo.root, 'log', '--first-parent', '--format=%s', '-1', 'main')).toMatch(/^Merge #1: second time lucky/);
  });

  it('a Claude builder whose every tool call failed has failed, even when it says NO CHANGES NEEDED: the issue is blocked, not closed', async () => {
    const bin = path.resolve('node_modules/.bin/claude');
    expect(fs.existsSync(bin), 'the pinned @anthropic-ai/claude-code must be installed').toBe(true);
    const server = await FakeAnthropicServer.start([
      { tool: 'Bash', input: { command: "echo 'sandbox: cannot run commands' >&2; exit 7", description: 'look at the code' } },
      { text: 'NO CHANGES NEEDED: it already works' },
    ]);
    closers.push(() => server.close());
    repo = makeRepo({ roles: { builder: { runtime: 'claude' }, judge: { runtime: 'script' }, doctor: { runtime: 'script' } } });
    const tracker = repo.tracker();
    await tracker.createIssue({ title: 'Check the greeting', body: 'Make sure the greeting works.', labels: [Label.issue] });
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'loom-claude-home-'));
    closers.push(() => {
      fs.rmSync(home, { recursive: true, force: true });
      return Promise.resolve();
    });
    const env = { PATH: `${path.dirname(bin)}:${process.env.PATH ?? ''}`, HOME: home, ANTHROPIC_BASE_URL: server.url, ANTHROPIC_API_KEY: 'test-key' };
    const r = await loomAsync(repo.root, ['shepherd', '1'], env);
    expect(r.code, r.stdout + r.stderr).toBe(3);
    expect(server.mainRequests()).toHaveLength(2); // the tool call and the final answer: the agent did run
    const issue = (await tracker.getIssue(1))!;
    expect(issue.state).toBe('open');
    expect(issue.labels).toEqual([Label.blocked]);
    expect((await tracker.listComments(1)).at(-1)!.body).toMatch(/^Loom: the builder made 1 tool call and every one failed \(last: .*sandbox: cannot run commands.*\); marking this issue `loom:blocked`/);
  });
});
