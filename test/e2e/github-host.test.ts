// The shepherd host against the GitHub fake: several lifecycles in one process share one GitHub
// tracker (its HTTP cache, its rate-limit and failure bookkeeping). Four issues are built at once
// and merged, each once, with the host the only process that ran them.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Label } from '../../src/core/labels.js';
import { git, githubRepo, removeGitHubRepos } from '../helpers/github-repo.js';
import { loomAsync, processesIn, startDaemon, until } from '../helpers/loom-repo.js';

afterEach(async () => {
  await removeGitHubRepos();
});

const fence = '```';
const off = { enabled: false };

describe('shepherd host on GitHub', () => {
  it('builds and merges four issues at once in one host process, each merged once, with a transient API failure on the way', async () => {
    const { root, bare, server, env, owner } = await githubRepo({
      config: { runtime: 'script', pollInterval: '1s', heartbeatInterval: '0.5s', maxShepherds: 4, executor: { kind: 'local', shepherds: 'host' }, roles: { architect: off, hermit: off, guide: off, curator: off } },
    });
    const body = (file: string) => `${fence}loom-script builder\nwrite ${file} <<EOF\n${file}\nEOF\n${fence}`;
    const files = ['one.txt', 'two.txt', 'three.txt', 'four.txt'];
    for (const f of files) await owner.createIssue({ title: `Add ${f}`, body: body(f), labels: [Label.issue] });
    // One PR creation answered 502 before it is carried out: that run retries, the others go on.
    server.failNext({ status: 502, times: 1, match: (m, p) => m === 'POST' && p.endsWith('/pulls') });

    const daemon = startDaemon(root, ['start', '--force'], env);
    try {
      await until(async () => (await Promise.all([1, 2, 3, 4].map((n) => owner.getIssue(n)))).every((i) => i?.state === 'closed'), 90_000, `all four merged; output:\n${daemon.output()}`);
    } finally {
      await loomAsync(root, ['stop'], env);
    }
    expect(await daemon.exited(60_000)).toBe(0);

    const log = git(bare, 'log', '--first-parent', '--format=%s', 'main').split('\n');
    expect(log).toHaveLength(5);
    for (const f of files) expect(git(bare, 'show', `main:${f}`)).toBe(f);
    const prs = await owner.listPullRequests({ state: 'all' });
    expect(prs.map((p) => p.state)).toEqual(['merged', 'merged', 'merged', 'merged']);
    expect(server.requests.filter((r) => r.status === 502)).toHaveLength(1);
    // Every run started under one pid, the host's; it ran them side by side.
    const events = fs
      .readFileSync(path.join(root, '.loom', 'events.jsonl'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { type: string; kind?: string; pid?: number; issue?: number; ts?: string });
    const started = events.filter((e) => e.type === 'task.started' && e.kind === 'shepherd');
    expect(new Set(started.map((e) => e.issue))).toEqual(new Set([1, 2, 3, 4]));
    expect(new Set(started.map((e) => e.pid)).size).toBe(1);
    const hostLog = fs.readFileSync(path.join(root, '.loom', 'logs', 'shepherd-host.log'), 'utf8');
    expect([...hostLog.matchAll(/shepherd host started/g)]).toHaveLength(1);
    await until(() => processesIn(root).length === 0, 15_000, 'nothing left running');
  });
});
