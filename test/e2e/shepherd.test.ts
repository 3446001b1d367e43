// The shepherd lifecycle with the script runtime: failures of each kind, role-file errors,
// start-up cleanup of worktrees, and SIGKILL in every phase resumed from checkpoints.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Label } from '../../src/core/labels.js';
import { Worktrees } from '../../src/git/worktrees.js';
import { isProcessAlive } from '../../src/process/process-identity.js';
import type { TestRepo } from '../helpers/loom-repo.js';
import { loom, makeRepo, processesIn, startDaemon, until } from '../helpers/loom-repo.js';

let repo: TestRepo | undefined;
afterEach(() => repo?.cleanup());

const fence = '```';
const git = (cwd: string, ...args: string[]) => spawnSync('git', args, { cwd, encoding: 'utf8' }).stdout.trim();
const script = (role: string, body: string) => `${fence}loom-script ${role}\n${body}\n${fence}`;

/** A repository whose test gate fails while `broken.txt` exists. */
function gateRepo(config: Record<string, unknown> = {}) {
  const r = makeRepo({ runtime: 'script', testCommand: 'test ! -e broken.txt', heartbeatInterval: '0.2s', ...config });
  return r;
}

function progressOf(issue: number) {
  const file = path.join(repo!.paths.progress, `shepherd-${issue}.json`);
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    return null;
  }
}

describe('shepherd', () => {
  it('what the test gate and the judge leave in the worktree after an approval is not committed to the approved PR, so the Champion merges only what was reviewed', async () => {
    repo = makeRepo({ runtime: 'script', testCommand: 'echo ran > test-output.txt', roles: { architect: { enabled: false }, hermit: { enabled: false }, guide: { enabled: false }, curator: { enabled: false } } });
    const tracker = repo.tracker();
    await tracker.createIssue({ title: 'one', labels: [Label.issue], body: [script('builder', 'write x.txt <<EOF\nx\nEOF'), script('judge', 'write judge-notes.txt <<EOF\nnotes\nEOF\nsay VERDICT: APPROVE')].join('\n\n') });
    const built = loom(repo.root, ['shepherd', '1']);
    expect(built.code, built.stdout + built.stderr).toBe(0);
    expect((await tracker.getPullRequest(2))!.labels).toEqual([Label.pr]);
    expect(git(repo.root, 'log', '--format=%s', 'main..loom/issue-1')).toBe('#1: one');
    const champion = loom(repo.root, ['role', 'champion']);
    expect(champion.code, champion.stdout + champion.stderr).toBe(0);
    expect(git(repo.root, 'ls-tree', '--name-only', 'main').split('\n').sort()).toEqual(['README.md', 'x.txt']);
  });

  it('a builder that exits non-zero blocks the issue with the reason and the log path (exit 3)', async () => {
    repo = gateRepo();
    const tracker = repo.tracker();
    await tracker.createIssue({ title: 'impossible', body: script('builder', 'fail cannot be done'), labels: [Label.issue] });
    const r = loom(repo.root, ['shepherd', '1']);
    expect(r.code, r.stdout + r.stderr).toBe(3);
    const issue = await tracker.getIssue(1);
    expect(issue!.labels).toEqual([Label.blocked]);
    expect((await tracker.listComments(1)).at(-1)!.body).toMatch(/the builder exited with code 1: cannot be done.*No work was committed, so no branch was kept/s);
    expect(fs.existsSync(path.join(repo.paths.worktrees, 'issue-1'))).toBe(false);
    expect(git(repo.root, 'branch', '--format=%(refname:short)')).toBe('main');
  });

  it('a shepherd\'s log says how it ended once: one "blocked:" line, one "no-changes:" line', async () => {
    repo = gateRepo();
    const tracker = repo.tracker();
    await tracker.createIssue({ title: 'impossible', body: script('builder', 'fail cannot be done'), labels: [Label.issue] });
    await tracker.createIssue({ title: 'already fine', body: script('builder', 'say NO CHANGES NEEDED: it already works'), labels: [Label.issue] });
    const blocked = loom(repo.root, ['shepherd', '1']);
    expect(blocked.code, blocked.stdout + blocked.stderr).toBe(3);
    expect(blocked.stdout.match(/blocked: /g), blocked.stdout).toHaveLength(1);
    expect(blocked.stdout).toMatch(/shepherd #1: blocked: the builder exited with code 1: cannot be done\n/);
    const fine = loom(repo.root, ['shepherd', '2']);
    expect(fine.code, fine.stdout + fine.stderr).toBe(8);
    expect(fine.stdout.match(/it already works/g), fine.stdout).toHaveLength(2); // the agent's own line, then the shepherd's last
    expect(fine.stdout).toMatch(/shepherd #2: no-changes: it already works\n/);
  });

  it('an agent gets the context variables docs/config.md lists: LOOM_ISSUE, LOOM_ISSUE_TITLE, LOOM_ROLE, LOOM_TASK_ID, LOOM_REPO_ROOT', async () => {
    const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'loom-env-')), 'env.txt');
    repo = makeRepo({ roles: { builder: { command: `env | grep ^LOOM_ > '${out}'; exit 1` } } });
    const tracker = repo.tracker();
    await tracker.createIssue({ title: 'show me the env', labels: [Label.issue] });
    const r = loom(repo.root, ['shepherd', '1']);
    expect(r.code, r.stdout + r.stderr).toBe(3);
    const env = Object.fromEntries(fs.readFileSync(out, 'utf8').trim().split('\n').map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]));
    expect(env).toMatchObject({ LOOM_ISSUE: '1', LOOM_ISSUE_TITLE: 'show me the env', LOOM_ROLE: 'builder', LOOM_REPO_ROOT: repo.root });
    expect(env.LOOM_TASK_ID).toMatch(/^[0-9a-f]{12}$/);
    // The run's mark, as recorded in the issue's worktree lease while it ran.
    expect(env.LOOM_AGENT_TOKEN).toMatch(/^[0-9a-f]{24}$/);
    const documented = [...fs.readFileSync(path.resolve('docs/config.md'), 'utf8').matchAll(/`(LOOM_[A-Z_]+)`, /g)].map((m) => m[1]);
    for (const name of ['LOOM_ISSUE', 'LOOM_ISSUE_TITLE', 'LOOM_ROLE', 'LOOM_TASK_ID']) expect(documented).toContain(name);
  });

  it('an agent that hangs silently is killed on stall, retried, and blocked after the limit', async () => {
    repo = gateRepo({ stallTimeout: '1s', agentRetries: 2 });
    const tracker = repo.tracker();
    await tracker.createIssue({ title: 'hangs', body: script('builder', 'say thinking\nhang'), labels: [Label.issue] });
    const started = Date.now();
    const r = loom(repo.root, ['shepherd', '1']);
    expect(r.code, r.stdout + r.stderr).toBe(3);
    expect(r.stdout.match(/retrying \(\d of 2\)/g)).toHaveLength(2);
    expect(Date.now() - started).toBeGreaterThanOrEqual(3_000); // three stalls of 1 s each
    expect((await tracker.listComments(1)).at(-1)!.body).toMatch(/no output for 1s.*after 3 attempts/s);
    expect(processesIn(repo.root)).toEqual([]);
  });

  it('a test gate that keeps failing ends in loom:blocked after maxDoctorRounds (exit 4)', async () => {
    repo = gateRepo({ maxDoctorRounds: 1 });
    const tracker = repo.tracker();
    await tracker.createIssue({ title: 'breaks tests', body: script('builder', 'write broken.txt <<EOF\noops\nEOF'), labels: [Label.issue] });
    const r = loom(repo.root, ['shepherd', '1', '--force-merge']);
    expect(r.code, r.stdout + r.stderr).toBe(4);
    const { pullRequests } = await tracker.snapshot();
    expect(pullRequests).toHaveLength(1);
    expect(pullRequests[0]!.labels).toEqual([Label.changesRequested]);
    const reviews = await tracker.listComments(pullRequests[0]!.number);
    expect(reviews.filter((c) => /test gate failed/.test(c.body))).toHaveLength(2);
    expect((await tracker.listComments(1)).at(-1)!.body).toMatch(/still requests changes after 1 doctor round\(s\) \(the test gate fails\)/);
    expect((await tracker.getIssue(1))!.labels).toEqual([Label.blocked]);
  });

  it('no changes needed closes the issue with the reason (exit 8); success merges with one merge commit (exit 0)', async () => {
    repo = gateRepo();
    const tracker = repo.tracker();
    await tracker.createIssue({ title: 'already fine', body: script('builder', 'say NO CHANGES NEEDED: it already works'), labels: [Label.issue] });
    await tracker.createIssue({ title: 'add a file', body: script('builder', 'write hello.txt <<EOF\nhi\nEOF'), labels: [Label.issue] });
    expect(loom(repo.root, ['shepherd', '1']).code).toBe(8);
    expect((await tracker.getIssue(1))!.state).toBe('closed');
    expect((await tracker.listComments(1)).at(-1)!.body).toMatch(/no changes needed — it already works/);
    const r = loom(repo.root, ['shepherd', '2', '--force-merge']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(git(repo.root, 'log', '--first-parent', '--format=%s', 'main').split('\n')[0]).toMatch(/^Merge #2: add a file \(PR #3\)/);
    expect(fs.readFileSync(path.join(repo.root, 'hello.txt'), 'utf8')).toBe('hi\n');
    expect(git(repo.root, 'branch', '--format=%(refname:short)')).toBe('main');
  });

  it('without force-merge an approved PR is left to the Champion, which merges it', async () => {
    repo = gateRepo();
    const tracker = repo.tracker();
    await tracker.createIssue({ title: 'champion path', body: script('builder', 'write c.txt <<EOF\nc\nEOF'), labels: [Label.issue] });
    expect(loom(repo.root, ['shepherd', '1']).code).toBe(0);
    const { pullRequests } = await tracker.snapshot();
    expect(pullRequests.map((p) => p.labels)).toEqual([[Label.pr]]);
    expect((await tracker.getIssue(1))!.labels).toEqual([]);
    // The shepherd is done with it: no worktree or checkpoint left; the branch stays for the PR.
    expect(fs.existsSync(path.join(repo.paths.worktrees, 'issue-1'))).toBe(false);
    expect(fs.existsSync(path.join(repo.paths.checkpoints, 'issue-1.json'))).toBe(false);
    expect(git(repo.root, 'branch', '--format=%(refname:short)').split('\n').sort()).toEqual(['loom/issue-1', 'main']);
    const champion = loom(repo.root, ['role', 'champion']);
    expect(champion.code, champion.stdout + champion.stderr).toBe(0);
    expect(champion.stdout).toMatch(/merged #2/);
    expect((await tracker.getIssue(1))!.state).toBe('closed');
    expect((await tracker.getPullRequest(2))!.state).toBe('merged');
    expect(git(repo.root, 'branch', '--format=%(refname:short)')).toBe('main');
  });

  it('a malformed role file is a clear error naming the file and line', () => {
    repo = gateRepo();
    fs.writeFileSync(path.join(repo.paths.roles, 'judge.md'), '---\ntimeout: 5m\nthis is not front matter\n---\nReview it.\n');
    for (const args of [['iterate'], ['role', 'judge'], ['shepherd', '1']]) {
      const r = loom(repo.root, args);
      expect(r.code).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(/roles\/judge\.md:3: /);
    }
    fs.writeFileSync(path.join(repo.paths.roles, 'judge.md'), '---\ntimeout: 5m\n---\nReview {{ issue.titel }}.\n');
    expect(loom(repo.root, ['iterate']).stderr).toMatch(/roles\/judge\.md:4: .*issue\.titel/);
  });

  it('on daemon start the worktree of a closed or blocked issue is removed after saving its uncommitted work', async () => {
    repo = gateRepo();
    const tracker = repo.tracker();
    await tracker.createIssue({ title: 'abandoned', labels: [Label.issue] });
    await tracker.createIssue({ title: 'about to resume', labels: [Label.issue] });
    const worktrees = new Worktrees(repo.root, repo.paths.worktrees);
    const dir = await worktrees.ensure(1, 'main');
    await worktrees.ensure(2, 'main');
    fs.writeFileSync(path.join(dir, 'unsaved.txt'), 'precious\n');
    await tracker.close(1);
    await tracker.updateLabels(2, { add: [Label.blocked] }); // not owned either; a clean worktree
    fs.writeFileSync(repo.paths.config, JSON.stringify({ runtime: 'script', pollInterval: '1s' }));
    const daemon = startDaemon(repo.root);
    await until(() => /Iteration 1:/.test(daemon.output()), 20_000, 'first iteration');
    loom(repo.root, ['stop']);
    expect(await daemon.exited(30_000)).toBe(0);
    expect(daemon.output()).toMatch(/removed the worktree of #1 \(issue closed\); its uncommitted work was saved as a WIP commit/);
    expect(daemon.output()).toMatch(/removed the worktree of #2 \(issue blocked\)/);
    expect(worktrees.list()).toEqual([]);
    expect(git(repo.root, 'show', 'loom/issue-1:unsaved.txt')).toBe('precious');
    expect(git(repo.root, 'log', '-1', '--format=%s', 'loom/issue-1')).toMatch(/^WIP #1: issue closed/);
  });

  it('SIGKILL of daemon and shepherds in the builder, judge, doctor and merge phases: the restarted daemon resumes each from its checkpoint', async () => {
    const journal = path.join(fs.mkdtempSync('/tmp/loom-phases-'), 'journal');
    const go = `${journal}.go`;
    const mark = (what: string) => `run echo ${what} >> ${journal}`;
    const pause = `run test -f ${go} || sleep 120`;
    repo = gateRepo({ maxShepherds: 4, pollInterval: '1s', stallTimeout: '5m', roles: { architect: { enabled: false }, hermit: { enabled: false }, guide: { enabled: false }, curator: { enabled: false }, champion: { enabled: false }, judge: { interval: '1h' }, doctor: { interval: '1h' } } });
    const tracker = repo.tracker();
    await tracker.createIssue({
      title: 'killed in builder',
      labels: [Label.issue],
      body: script('builder', [mark('builder-1'), "run test -f a1.txt || (echo one > a1.txt && git add a1.txt && git commit -qm 'A part 1')", pause, 'write a2.txt <<EOF\ntwo\nEOF'].join('\n')),
    });
    await tracker.createIssue({
      title: 'killed in judge',
      labels: [Label.issue],
      body: [script('builder', [mark('builder-2'), 'write b.txt <<EOF\nb\nEOF'].join('\n')), script('judge', [mark('judge-2'), pause, 'say VERDICT: APPROVE'].join('\n'))].join('\n\n'),
    });
    await tracker.createIssue({
      title: 'killed in doctor',
      labels: [Label.issue],
      body: [
        script('builder', [mark('builder-3'), 'write c.txt <<EOF\nc\nEOF', 'write broken.txt <<EOF\nx\nEOF'].join('\n')),
        script('doctor', [mark('doctor-3'), "run test -f c-fix.txt || (echo fixed > c-fix.txt && git rm -q broken.txt && git add c-fix.txt && git commit -qm 'C fix')", pause].join('\n')),
      ].join('\n\n'),
    });
    await tracker.createIssue({ title: 'killed in merge', labels: [Label.issue], body: script('builder', [mark('builder-4'), 'write d.txt <<EOF\nd\nEOF'].join('\n')) });
    // Hold the merge lock so the fourth shepherd waits inside its merge phase.
    const mergeLock = path.join(repo.paths.dir, 'merge.lock');
    fs.writeFileSync(mergeLock, String(process.pid));

    const first = startDaemon(repo.root, ['start', '--force']);
    const lines = () => (fs.existsSync(journal) ? fs.readFileSync(journal, 'utf8').trim().split('\n') : []);
    await until(
      () => lines().includes('builder-1') && lines().includes('judge-2') && lines().includes('doctor-3') && progressOf(4)?.phase === 'merge' && progressOf(3)?.phase === 'doctor' && progressOf(2)?.phase === 'judge',
      60_000,
      'all four shepherds in their phases',
    );
    // The work done before the kill: A's first commit and C's fix commit exist on their branches.
    await until(() => git(repo!.root, 'log', '--format=%s', 'loom/issue-1').includes('A part 1') && git(repo!.root, 'log', '--format=%s', 'loom/issue-3').includes('C fix'), 30_000, 'pre-kill commits');
    const shepherds = [1, 2, 3, 4].map((n) => progressOf(n));
    first.child.kill('SIGKILL');
    await first.exited(10_000);
    for (const p of shepherds) process.kill(p.pid, 'SIGKILL');
    for (const p of shepherds) await until(() => !isProcessAlive(p.pid, p.pid_start), 10_000, 'shepherd gone');

    fs.writeFileSync(go, '');
    fs.rmSync(mergeLock);
    const second = startDaemon(repo.root, ['start', '--force']);
    await until(async () => (await tracker.listIssues({ state: 'all' })).every((i) => i.state === 'closed'), 90_000, `all merged; output:\n${second.output()}`);
    loom(repo.root, ['stop']);
    expect(await second.exited(60_000)).toBe(0);

    const count = (what: string) => lines().filter((l) => l === what).length;
    expect(count('builder-1')).toBe(2); // killed mid-builder: the builder runs again, on the same branch
    expect(count('builder-2')).toBe(1); // killed in judge: the builder is not redone
    expect(count('judge-2')).toBe(2);
    expect(count('builder-3')).toBe(1); // killed in doctor: neither builder nor the first judge round is redone
    expect(count('doctor-3')).toBe(2);
    expect(count('builder-4')).toBe(1); // killed in merge: only the merge is redone
    const logs = fs.readdirSync(repo.paths.logs).map((f) => fs.readFileSync(path.join(repo!.paths.logs, f), 'utf8')).join('\n');
    expect(logs).toMatch(/resuming #2 from its checkpoint \(last completed phase: pr-opened\)/);
    expect(logs).toMatch(/resuming #3 from its checkpoint \(last completed phase: judged\)/);
    expect(logs).toMatch(/resuming #4 from its checkpoint \(last completed phase: judged\)/);

    const history = git(repo.root, 'log', '--first-parent', '--format=%s', 'main').split('\n');
    expect(history.filter((s) => s.startsWith('Merge #')).map((s) => Number(/^Merge #(\d+)/.exec(s)![1])).sort()).toEqual([1, 2, 3, 4]);
    const all = git(repo.root, 'log', '--format=%s', 'main');
    expect(all).toMatch(/A part 1/);
    expect(all).toMatch(/C fix/);
    for (const file of ['a1.txt', 'a2.txt', 'b.txt', 'c.txt', 'c-fix.txt', 'd.txt']) expect(fs.existsSync(path.join(repo.root, file)), file).toBe(true);
    expect(fs.existsSync(path.join(repo.root, 'broken.txt'))).toBe(false);
    expect(new Worktrees(repo.root, repo.paths.worktrees).list()).toEqual([]);
    await until(() => processesIn(repo!.root).length === 0, 10_000, 'no process left');
  });
});
