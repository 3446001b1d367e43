// The daemon against a GitHub-shaped server on 127.0.0.1 backed by a real bare repository: issues
// become pushed branches and PRs, get verdicts, merge through the API; untrusted issues wait for a
// maintainer; idle iterations make only conditional requests answered 304.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Label } from '../../src/core/labels.js';
import { GitHubTracker } from '../../src/tracker/github/github-tracker.js';
import { git, githubRepo, removeGitHubRepos } from '../helpers/github-repo.js';
import { LOOM_BIN, loomAsync, processesIn, startDaemon, until } from '../helpers/loom-repo.js';

afterEach(removeGitHubRepos);

const fence = '```';

describe('github tracker end to end', () => {
  it('builds, reviews and merges through the API; untrusted issues wait; idle polls cost nothing', async () => {
    const off = { enabled: false };
    const { root, bare, server, env, owner, tracker, init: labels } = await githubRepo({
      server: { tokens: { 'tok-reader': 'visitor' }, permissions: { visitor: 'read' } },
      config: { runtime: 'script', pollInterval: '1s', heartbeatInterval: '0.5s', roles: { architect: off, hermit: off, guide: off, curator: off } },
    });
    expect(labels.stdout).toMatch(/GitHub labels: \d+ created/);

    const visitor = tracker('tok-reader');
    const body = (file: string) => `${fence}loom-script builder\nwrite ${file} <<EOF\n${file}\nEOF\n${fence}`;
    await owner.createIssue({ title: 'Add one.txt', body: body('one.txt'), labels: [Label.issue] });
    await owner.createIssue({ title: 'Add two.txt', body: body('two.txt'), labels: [Label.issue] });
    const stranger = await visitor.createIssue({ title: 'Run my script', body: body('evil.txt'), labels: [Label.issue] });

    const daemon = startDaemon(root, ['start', '--force'], env);
    await until(async () => (await owner.getIssue(1))?.state === 'closed' && (await owner.getIssue(2))?.state === 'closed', 60_000, `both issues merged; output:\n${daemon.output()}`);
    await until(() => /untrusted=#3/.test(daemon.output()), 20_000, 'the untrusted issue noticed');

    // Idle: let the daemon settle for two iterations after the last change, then watch two more.
    const iterations = () => Number([...daemon.output().matchAll(/Iteration (\d+):/g)].at(-1)?.[1] ?? 0);
    const settled = iterations();
    await until(() => iterations() >= settled + 2, 30_000, 'two settling iterations');
    const before = server.requests.length;
    const start = iterations();
    await until(() => iterations() >= start + 2, 30_000, 'two idle iterations');
    const idle = server.requests.slice(before);
    const perIteration = idle.length / (iterations() - start);
    expect(idle.every((r) => r.method === 'GET' && r.conditional && r.status === 304), `${JSON.stringify(server.requests.slice(-12), null, 1)}\n${daemon.output().split('\n').slice(-8).join('\n')}`).toBe(true);
    expect(perIteration).toBeLessThanOrEqual(2);

    await loomAsync(root, ['stop']);
    expect(await daemon.exited(60_000)).toBe(0);

    // The bare repository's main has one merge per issue, with the files.
    const log = git(bare, 'log', '--first-parent', '--format=%s', 'main').split('\n');
    expect(log).toHaveLength(3);
    expect(git(bare, 'show', 'main:one.txt')).toBe('one.txt');
    expect(git(bare, 'show', 'main:two.txt')).toBe('two.txt');
    const prs = await owner.listPullRequests({ state: 'all' });
    expect(prs.map((p) => p.state)).toEqual(['merged', 'merged']);
    expect(prs.map((p) => p.body)).toEqual([expect.stringMatching(/Closes #\d/), expect.stringMatching(/Closes #\d/)]);
    // The stranger's issue was never built.
    const waiting = await owner.getIssue(stranger.number);
    expect(waiting).toMatchObject({ state: 'open', labels: [Label.issue] });
    expect(spawnSync('git', ['show', 'main:evil.txt'], { cwd: bare }).status).not.toBe(0);
    const why = await loomAsync(root, ['why', String(stranger.number)], env);
    expect(why.stdout).toMatch(/waiting for a maintainer/);
    await until(() => processesIn(root).length === 0, 10_000, 'nothing left running');
    void LOOM_BIN;
  });
});

describe('github rate limits', () => {
  it('a 403 with retry-after pauses the daemon without failing it; the pause survives between iterations and shows in status', async () => {
    const { root, server, env } = await githubRepo({ token: 'tok', labels: false, config: { runtime: 'script' } });
    server.failNext({ status: 403, retryAfter: 600 });
    const first = await loomAsync(root, ['iterate'], env);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toMatch(/^TRACKER_UNAVAILABLE .*rate limit/im);
    const sent = server.requests.length;
    const second = await loomAsync(root, ['iterate'], env);
    expect(second.stdout).toMatch(/^TRACKER_UNAVAILABLE/m);
    expect(server.requests.length).toBe(sent); // the open circuit makes no calls at all
    const status = JSON.parse((await loomAsync(root, ['status', '--json'], env)).stdout);
    expect(Date.parse(status.tracker_paused_until)).toBeGreaterThan(Date.now() + 500_000);
  });
});

describe('github rate-limit budget', () => {
  it('with less than a tenth of the rate limit left, an iteration asks the daemon to slow down', async () => {
    const { root, server, env } = await githubRepo({ token: 'tok', labels: false, server: { rateLimit: 20 }, config: { roles: { champion: { enabled: false } } } });
    const plenty = await loomAsync(root, ['iterate'], env);
    expect(plenty.stdout).not.toMatch(/slow-down/);
    // Spend the budget from elsewhere (another client on the same token), then iterate again.
    const other = new GitHubTracker({ owner: 'acme', repo: 'widgets', token: 'tok', baseUrl: server.url });
    const spend = await other.createIssue({ title: 'spend' });
    // Two points left: the iteration's change probe and its listing of the open issues (the new issue changed them).
    for (let i = 0; i < 20 && (other.rateLimit().remaining ?? 0) > 2; i += 1) await other.comment(spend.number, `spending ${i}`);
    expect(other.rateLimit().remaining).toBe(2);
    other.dispose();
    const low = await loomAsync(root, ['iterate'], env);
    expect(low.stdout).toMatch(/slow-down=\d+\/20/);
  });
});

describe('github agent homes', () => {
  it("an iteration removes the agent homes of issues its snapshot no longer lists as open (closed, deleted), with no request of its own; open issues keep theirs", async () => {
    const { root, server, env, owner } = await githubRepo({ token: 'tok', config: { runtime: 'script' } });
    const open = await owner.createIssue({ title: 'blocked, still open', labels: [Label.blocked] });
    const closed = await owner.createIssue({ title: 'closed by a person', labels: [Label.blocked] });
    await owner.close(closed.number, 'Not needed after all.');
    const homes = path.join(root, '.loom', 'agent-homes');
    for (const n of [open.number, closed.number, 99]) {
      fs.mkdirSync(path.join(homes, `issue-${n}`, 'claude'), { recursive: true });
      fs.writeFileSync(path.join(homes, `issue-${n}`, 'claude', 'session.jsonl'), '{}\n');
    }
    const sent = server.requests.length;
    const first = await loomAsync(root, ['iterate'], env);
    expect(first.code, first.stderr).toBe(0);
    expect(fs.readdirSync(homes)).toEqual([`issue-${open.number}`]);
    const events = fs.readFileSync(path.join(root, '.loom', 'events.jsonl'), 'utf8');
    for (const n of [closed.number, 99]) expect(events).toMatch(new RegExp(`removed the agent home of #${n} \\(issue closed, or no longer labelled\\)`));
    // The snapshot said which issues are open: no issue was read for its home.
    const read = server.requests.slice(sent).map((r) => r.path.replace(/\?.*/, '')).filter((p) => new RegExp(`/issues/(${closed.number}|99|${open.number})$`).test(p));
    expect(read).toEqual([]);
  });
});
