// `loom demo` end to end: the daemon over the sample repository, checked through git, the
// tracker, the file system and the process table.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Label } from '../../src/core/labels.js';
import { SAMPLE_ISSUES } from '../../src/demo/sample-repo.js';
import { LocalTracker } from '../../src/tracker/local/local-tracker.js';
import { LOOM_BIN, loom, processesIn, startLoom, until } from '../helpers/loom-repo.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

const git = (cwd: string, ...args: string[]) => spawnSync('git', args, { cwd, encoding: 'utf8' }).stdout.trim();

describe('loom demo', () => {
  it('builds, reviews, doctors and merges the sample backlog, leaving one merge per merged issue and nothing running', async () => {
    const root = path.join(fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'loom-demo-test-'))), 'sample');
    dirs.push(path.dirname(root));
    // About 6 s idle, 30 s with three times as many busy processes as cores.
    const r = loom(process.cwd(), ['demo', '--dir', root], { PATH: pathWithoutLoom() }, 240_000);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/Backlog done in/);

    const tracker = new LocalTracker({ path: path.join(root, '.loom', 'tracker.db'), readonly: true });
    const issues = await tracker.listIssues({ state: 'all' });
    const byTitle = new Map(issues.map((i) => [i.title, i]));
    const merged = SAMPLE_ISSUES.filter((s) => s.expect === 'merged').map((s) => byTitle.get(s.title)!);
    for (const sample of SAMPLE_ISSUES) {
      const issue = byTitle.get(sample.title)!;
      if (sample.expect === 'blocked') {
        expect(issue.state).toBe('open');
        expect(issue.labels).toEqual([Label.blocked]);
        expect((await tracker.listComments(issue.number)).at(-1)!.body).toMatch(/too large to do safely/);
      } else {
        expect(issue.state, sample.title).toBe('closed');
        expect(issue.labels.filter((l) => l !== Label.urgent)).toEqual([]);
      }
      if (sample.expect === 'no-changes') expect((await tracker.listComments(issue.number)).at(-1)!.body).toMatch(/no changes needed/);
    }

    // Git: the first-parent history of main is the initial commit plus exactly one merge per merged issue.
    const firstParent = git(root, 'log', '--first-parent', '--format=%s', 'main').split('\n');
    expect(firstParent.at(-1)).toBe('sample-calc: initial version');
    const merges = firstParent.slice(0, -1);
    expect(merges).toHaveLength(merged.length);
    expect(merges.map((m) => Number(/^Merge #(\d+):/.exec(m)?.[1])).sort((a, b) => a - b)).toEqual(merged.map((i) => i.number).sort((a, b) => a - b));
    for (const sha of git(root, 'rev-list', '--first-parent', 'main').split('\n').slice(0, -1)) {
      expect(git(root, 'rev-list', '--parents', '-n', '1', sha).split(' ')).toHaveLength(3);
    }
    // The merged code works: the sample's own tests pass on main, with every new function present.
    expect(spawnSync('node', ['--test'], { cwd: root, encoding: 'utf8' }).status).toBe(0);
    for (const f of ['subtract', 'multiply', 'divide', 'clamp', 'negate']) expect(fs.existsSync(path.join(root, 'src', `${f}.js`))).toBe(true);
    expect(fs.readFileSync(path.join(root, 'src', 'divide.js'), 'utf8')).toMatch(/a \/ b/);

    // The divide issue went through a doctor round: its PR was first sent back, then approved.
    const divide = byTitle.get('Add a divide function')!;
    const { pullRequests } = await tracker.snapshot();
    expect(pullRequests).toEqual([]); // no open PR is left
    const prNumber = Number(/PR #(\d+)/.exec(merges.find((m) => m.startsWith(`Merge #${divide.number}:`))!)![1]);
    const reviews = (await tracker.listComments(prNumber)).map((c) => c.body);
    expect(reviews[0]).toMatch(/changes requested.*test gate failed/s);
    expect(reviews.at(-1)).toMatch(/approved/);
    const pr = await tracker.getPullRequest(prNumber);
    expect(pr!.state).toBe('merged');

    // Nothing left behind: no worktree, no issue branch (the blocked issue committed no work, so its
    // branch went too, and its comment says so), no checkpoint, no process, no progress record.
    expect(git(root, 'worktree', 'list').split('\n')).toHaveLength(1);
    expect(fs.readdirSync(path.join(root, '.loom', 'worktrees'))).toEqual([]);
    const blocked = byTitle.get(SAMPLE_ISSUES.find((s) => s.expect === 'blocked')!.title)!;
    expect((await tracker.listComments(blocked.number)).at(-1)!.body).toMatch(/No work was committed, so no branch was kept/);
    expect(git(root, 'branch', '--format=%(refname:short)')).toBe('main');
    expect(fs.readdirSync(path.join(root, '.loom', 'checkpoints'))).toEqual([]);
    expect(fs.readdirSync(path.join(root, '.loom', 'progress'))).toEqual([]);
    expect(processesIn(root)).toEqual([]);
    tracker.dispose();

    // Every command the demo prints works when copied as printed — run from elsewhere, with
    // Loom not on the PATH (the README's `npm ci && npm run demo`).
    const blockedNumber = byTitle.get(blocked.title)!.number;
    expect(r.stdout).not.toMatch(/npx|Start: /);
    const elsewhere = fs.mkdtempSync(path.join(os.tmpdir(), 'loom-demo-user-'));
    dirs.push(elsewhere);
    const sh = (line: string) => spawnSync('sh', ['-c', line], { cwd: elsewhere, encoding: 'utf8', env: { ...process.env, PATH: pathWithoutLoom() } });
    const next = r.stdout.slice(r.stdout.indexOf('Next steps'));
    const steps = next.split('\n').filter((l) => l.startsWith('    ')).map((l) => l.trim());
    expect(steps).toEqual([`cd ${root} && git log --graph --oneline --all`, `cd ${root} && ${LOOM_BIN} issue list --state all`, `cd ${root} && ${LOOM_BIN} why ${blockedNumber}`]);
    const [log, list, why] = steps.map((step) => {
      const run = sh(step);
      expect(run.status, `${step}\n${run.stdout}${run.stderr}`).toBe(0);
      return run.stdout;
    });
    expect(log).toMatch(/Merge #\d+: Add a negate function/);
    expect(list).toMatch(new RegExp(`#${blockedNumber} +Rewrite everything in a weekend \\[loom:blocked\\]`));
    expect(why).toMatch(new RegExp(`^#${blockedNumber} is blocked \\(loom:blocked\\)`));
    expect(next).toContain(`run \`npm link\` once in ${path.dirname(path.dirname(LOOM_BIN))}`);
    // The other commands in the output (the daemon's stop hint, the final status's interventions).
    const quoted = [...r.stdout.matchAll(/`([^`]+)`/g)].map((m) => m[1]!);
    const commands = quoted.filter((q) => q.startsWith('cd '));
    expect(quoted.filter((q) => !q.startsWith('cd ')).sort()).toEqual(['loom', 'node --test', 'npm link']);
    expect(commands).toEqual(expect.arrayContaining([`cd ${root} && ${LOOM_BIN} stop`, `cd ${root} && ${LOOM_BIN} issue show ${blockedNumber}`, `cd ${root} && ${LOOM_BIN} issue label ${blockedNumber} loom:issue`]));
    for (const command of commands) {
      const run = sh(command);
      expect(run.status, `${command}\n${run.stdout}${run.stderr}`).toBe(0);
    }
    const after = new LocalTracker({ path: path.join(root, '.loom', 'tracker.db'), readonly: true });
    expect((await after.getIssue(blockedNumber))!.labels).toEqual([Label.issue]); // the retry hint worked
    after.dispose();
  }, 300_000);

  it('a daemon that dies mid-run ends the demo at once with exit 1 and says where the logs are, instead of waiting minutes for a backlog nothing works on', async () => {
    const root = path.join(fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'loom-demo-died-'))), 'sample');
    dirs.push(path.dirname(root));
    const demo = startLoom(process.cwd(), ['demo', '--dir', root]);
    try {
      const lock = path.join(root, '.loom', 'daemon.lock');
      const pid = await until(() => (fs.existsSync(lock) ? (JSON.parse(fs.readFileSync(lock, 'utf8')) as { pid: number }).pid : 0), 60_000, () => `the daemon's lock:\n${demo.out}`);
      process.kill(pid, 'SIGKILL');
      await until(() => demo.code !== undefined, 30_000, () => `the demo's end:\n${demo.out}`);
      expect(demo.code, demo.out).toBe(1);
      expect(demo.out).toContain(`The daemon ended before the backlog was done (killed by a signal); the logs are in ${path.join(root, '.loom', 'logs')}`);
      expect(demo.out).not.toMatch(/Backlog done/);
    } finally {
      demo.process.kill('SIGKILL');
    }
    // What the dead daemon left (its shepherds) ends with the next start; here, by hand.
    for (const pid of processesIn(root)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone already
      }
    }
  }, 120_000);

  it('status hints name Loom `loom` once `loom` on the PATH is this Loom (else its full path), suggest Start only when there is work, and name real issues', () => {
    const bins = fs.mkdtempSync(path.join(os.tmpdir(), 'loom-bins-'));
    dirs.push(bins);
    const root = path.join(bins, 'repo');
    fs.mkdirSync(root);
    spawnSync('git', ['init', '-q', '-b', 'main'], { cwd: root });
    expect(loom(root, ['init']).code).toBe(0);
    const hint = (pathPrefix: string) => loom(root, ['status'], { PATH: `${pathPrefix}${path.delimiter}${pathWithoutLoom()}` }).stdout.match(/`(\S+) issue create/)?.[1];
    const linked = path.join(bins, 'linked');
    fs.mkdirSync(linked);
    fs.symlinkSync(LOOM_BIN, path.join(linked, 'loom')); // what `npm link` makes
    expect(hint(linked)).toBe('loom');
    const other = path.join(bins, 'other');
    fs.mkdirSync(other);
    fs.writeFileSync(path.join(other, 'loom'), '#!/bin/sh\necho another loom\n', { mode: 0o755 });
    expect(hint(other)).toBe(LOOM_BIN);

    // Start is suggested only when a daemon would find work; the hints name real issue numbers.
    const interventions = () => loom(root, ['status'], { PATH: pathWithoutLoom() }).stdout.split('Interventions:')[1] ?? '';
    expect(interventions()).not.toMatch(/Start:/);
    expect(interventions()).toContain(`Nothing is ready to build: \`${LOOM_BIN} issue create TITLE --label loom:issue\` adds an issue, then \`${LOOM_BIN} start\`.`);
    expect(loom(root, ['issue', 'create', 'ready one', '--label', 'loom:issue']).code).toBe(0);
    expect(interventions()).toContain(`Start: \`${LOOM_BIN} start\``);
    expect(interventions()).toContain(`Build #1 now: \`${LOOM_BIN} spawn 1\`; prioritise one: \`${LOOM_BIN} issue label 1 loom:urgent\`.`);
    expect(interventions()).not.toMatch(/Nothing is ready/);
  });
});

/** The test's PATH without any directory that holds a `loom`. */
function pathWithoutLoom(): string {
  return (process.env.PATH ?? '')
    .split(path.delimiter)
    .filter((dir) => dir !== '' && !fs.existsSync(path.join(dir, 'loom')))
    .join(path.delimiter);
}
