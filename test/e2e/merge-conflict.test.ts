// A branch that no longer rebases onto the moved default branch goes to the Doctor with the base
// merged in and the conflicting files named; the gates run again; main ends up with both changes.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Label } from '../../src/core/labels.js';
import type { TestRepo } from '../helpers/loom-repo.js';
import { LOOM_BIN, loom, makeRepo, until } from '../helpers/loom-repo.js';

let repo: TestRepo | undefined;
afterEach(() => repo?.cleanup());

const fence = '```';
const git = (cwd: string, ...args: string[]) => spawnSync('git', args, { cwd, encoding: 'utf8' }).stdout.trim();
const script = (role: string, body: string) => `${fence}loom-script ${role}\n${body}\n${fence}`;

/** A `run` step that commits `shared.txt` = "main" on main in the repository root: another merge landing meanwhile. */
const mainMoves = `run printf 'main\\n' > "$LOOM_REPO_ROOT/shared.txt" && git -C "$LOOM_REPO_ROOT" add shared.txt && git -C "$LOOM_REPO_ROOT" -c user.name=Other -c user.email=other@localhost commit -qm 'main moves'`;

describe('merge conflicts go to the Doctor (local tracker)', () => {
  it('the base moved on with a conflicting change: a doctor round with the base merged in and the file named, markers left are another round, then the merge holds both changes', async () => {
    repo = makeRepo({ runtime: 'script', testCommand: 'test ! -e broken.txt', heartbeatInterval: '0.2s' });
    const tracker = repo.tracker();
    const body = [
      script('builder', `write shared.txt <<EOF\nissue one\nEOF\n${mainMoves}`),
      // Round 1 leaves the conflict markers in place; round 2 resolves them.
      script('doctor 1', 'say looked at it'),
      script('doctor 2', 'write shared.txt <<EOF\nmain\nissue one\nEOF'),
    ].join('\n\n');
    await tracker.createIssue({ title: 'edit shared', body, labels: [Label.issue] });

    const r = loom(repo.root, ['shepherd', '1', '--force-merge']);

    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(fs.readFileSync(path.join(repo.root, 'shared.txt'), 'utf8')).toBe('main\nissue one\n');
    expect(git(repo.root, 'log', '--first-parent', '--format=%s', 'main').split('\n').slice(0, 2)).toEqual([expect.stringMatching(/^Merge #1: edit shared \(PR #2\)/), 'main moves']);
    const comments = (await tracker.listComments(2)).map((c) => c.body);
    expect(comments.filter((c) => /^\*\*Loom\*\* — `main` moved on .*conflicts in `shared\.txt`/s.test(c))).toHaveLength(1);
    expect(comments.filter((c) => /^\*\*Loom\*\* — conflict markers are still in `shared\.txt` after doctor round 1/.test(c))).toHaveLength(1);
    expect(r.stdout).toMatch(/merged main into loom\/issue-1 for the doctor; conflicts in shared\.txt/);
    expect((await tracker.getIssue(1))!.state).toBe('closed');
    expect((await tracker.getPullRequest(2))!.state).toBe('merged');
    // No marker reached main, and the branch history kept the base merge the Doctor resolved.
    expect(git(repo.root, 'grep', '-c', '<<<<<<<', 'main', '--', 'shared.txt')).toBe('');
  });

  it('updateStrategy merge: the conflict is a doctor round with the base merged in (its prompt names the file), the branch keeps the merge commit, the gates run again, then merged', async () => {
    // The Doctor: a command that keeps the prompt it was given (committed with its fix) and resolves the conflict.
    repo = makeRepo({ runtime: 'script', testCommand: 'test ! -e broken.txt', heartbeatInterval: '0.2s', updateStrategy: 'merge', roles: { doctor: { command: `cp "$LOOM_PROMPT_FILE" doctor-prompt.md && printf 'main\\nissue one\\n' > shared.txt` } } });
    const tracker = repo.tracker();
    await tracker.createIssue({ title: 'edit shared', body: script('builder', `write shared.txt <<EOF\nissue one\nEOF\n${mainMoves}`), labels: [Label.issue] });

    const r = loom(repo.root, ['shepherd', '1', '--force-merge']);

    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/merged main into loom\/issue-1 for the doctor; conflicts in shared\.txt/);
    expect(r.stdout).toMatch(/judge round 2: approved/);
    const comments = (await tracker.listComments(2)).map((c) => c.body);
    expect(comments.filter((c) => c.startsWith('**Loom** — `main` moved on and `loom/issue-1` no longer applies cleanly on it. Loom merged `main` into this worktree; the merge is in progress with conflicts in `shared.txt`'))).toHaveLength(1);
    const prompt = git(repo.root, 'show', 'main:doctor-prompt.md');
    expect(prompt).toContain('the merge is in progress with conflicts in `shared.txt`');
    expect(git(repo.root, 'show', 'main:shared.txt')).toBe('main\nissue one');
    // The branch's history: the base merged in (two parents), the Doctor's resolution its merge commit.
    const mergeInBranch = git(repo.root, 'log', '--merges', '--format=%s', 'main^2', '^main^1');
    expect(mergeInBranch).toMatch(/^Merge main into loom\/issue-1\n\nConflicts resolved by the doctor|^Merge main into loom\/issue-1/);
    expect((await tracker.getPullRequest(2))!.state).toBe('merged');
  });

  it('the Champion path with updateStrategy merge: its comment says the branch does not merge cleanly (not "rebase")', async () => {
    repo = makeRepo({ runtime: 'script', testCommand: 'test ! -e broken.txt', heartbeatInterval: '0.2s', updateStrategy: 'merge' });
    const tracker = repo.tracker();
    await tracker.createIssue({ title: 'edit shared', body: script('builder', 'write shared.txt <<EOF\nissue one\nEOF'), labels: [Label.issue] });
    expect(loom(repo.root, ['shepherd', '1']).code).toBe(0);
    fs.writeFileSync(path.join(repo.root, 'shared.txt'), 'main\n');
    git(repo.root, 'add', 'shared.txt');
    git(repo.root, '-c', 'user.name=Other', '-c', 'user.email=other@localhost', 'commit', '-qm', 'main moves');
    const champion = loom(repo.root, ['role', 'champion']);
    expect(champion.code, champion.stdout + champion.stderr).toBe(0);
    expect((await tracker.listComments(2)).at(-1)!.body).toMatch(/^\*\*Loom Champion\*\* — not merged: loom\/issue-1 does not merge cleanly with main \(conflicts in `shared\.txt`\)/);
  });

  it('the Champion path: a conflicting approved PR is not merged and names the file; the Doctor role resolves it with the base merged in (markers left keep it with the Doctor); judged again, then merged', async () => {
    repo = makeRepo({ runtime: 'script', testCommand: 'test ! -e broken.txt', heartbeatInterval: '0.2s' });
    const tracker = repo.tracker();
    const body = [
      script('builder', 'write shared.txt <<EOF\nissue one\nEOF'),
      script('doctor 1', 'say looked at it'),
      script('doctor 2', 'write shared.txt <<EOF\nmain\nissue one\nEOF'),
    ].join('\n\n');
    await tracker.createIssue({ title: 'edit shared', body, labels: [Label.issue] });
    expect(loom(repo.root, ['shepherd', '1']).code).toBe(0);
    fs.writeFileSync(path.join(repo.root, 'shared.txt'), 'main\n');
    git(repo.root, 'add', 'shared.txt');
    git(repo.root, '-c', 'user.name=Other', '-c', 'user.email=other@localhost', 'commit', '-qm', 'main moves');

    const first = loom(repo.root, ['role', 'champion']);
    expect(first.code, first.stdout + first.stderr).toBe(0);
    expect(first.stdout).toMatch(/skipped #2 \(conflict\)/);
    expect((await tracker.listComments(2)).at(-1)!.body).toMatch(/^\*\*Loom Champion\*\* — not merged: loom\/issue-1 does not rebase cleanly onto main \(conflicts in `shared\.txt`\)/);
    expect((await tracker.getPullRequest(2))!.labels).toEqual([Label.changesRequested]);

    expect(loom(repo.root, ['role', 'doctor']).code).toBe(0);
    expect((await tracker.listComments(2)).at(-1)!.body).toMatch(/^\*\*Loom Doctor\*\* — round 1 done; conflict markers are still in `shared\.txt`/);
    expect((await tracker.getPullRequest(2))!.labels).toEqual([Label.changesRequested]);
    expect(git(repo.root, 'log', '-1', '--format=%P', 'loom/issue-1').split(' ')).toHaveLength(2); // the base merge, concluded

    expect(loom(repo.root, ['role', 'doctor']).code).toBe(0);
    expect((await tracker.listComments(2)).at(-1)!.body).toMatch(/round 2 done; back to review/);
    expect(loom(repo.root, ['role', 'judge']).code).toBe(0);
    expect((await tracker.getPullRequest(2))!.labels).toEqual([Label.pr]);
    const last = loom(repo.root, ['role', 'champion']);
    expect(last.stdout, last.stdout + last.stderr).toMatch(/merged #2/);
    expect(git(repo.root, 'show', 'main:shared.txt')).toBe('main\nissue one');
    expect((await tracker.getIssue(1))!.state).toBe('closed');
  });

  it('a shepherd killed during the conflict round (merge in progress) resumes the round: the interrupted merge is aborted on resume and the base merged in again for the Doctor; no conflict marker is ever merged', { timeout: 120_000 }, async () => {
    repo = makeRepo({ runtime: 'script', testCommand: 'test ! -e broken.txt', heartbeatInterval: '0.2s' });
    const tracker = repo.tracker();
    const killed = path.join(repo.root, '.loom', 'killed-once');
    const body = [
      script('builder', `write shared.txt <<EOF\nissue one\nEOF\n${mainMoves}`),
      // The first time, the doctor hangs (and is killed with its shepherd); the next time it resolves.
      script('doctor', `run if [ ! -e "${killed}" ]; then touch "${killed}"; sleep 600; fi\nwrite shared.txt <<EOF\nmain\nissue one\nEOF`),
    ].join('\n\n');
    await tracker.createIssue({ title: 'edit shared', body, labels: [Label.issue] });
    const first = spawn(process.execPath, [LOOM_BIN, 'shepherd', '1', '--force-merge'], { cwd: repo.root, stdio: 'ignore' });
    const worktree = path.join(repo.paths.worktrees, 'issue-1');
    await until(() => fs.existsSync(killed), 60_000, 'the doctor round to start');
    expect(git(worktree, 'rev-parse', '-q', '--verify', 'MERGE_HEAD')).not.toBe('');
    first.kill('SIGKILL');
    await until(() => first.exitCode !== null || first.signalCode !== null, 10_000, 'the shepherd to die');
    // What the daemon's recovery does for a dead shepherd: the issue goes back to the queue (its checkpoint stays).
    await tracker.updateLabels(1, { add: [Label.issue] });

    const r = loom(repo.root, ['shepherd', '1', '--force-merge']);

    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/resuming #1 from its checkpoint \(last completed phase: judged\)\n.*merged main into loom\/issue-1 for the doctor; conflicts in shared\.txt\n.*doctor round 1\n/);
    expect(git(repo.root, 'show', 'main:shared.txt')).toBe('main\nissue one');
    expect(git(repo.root, 'grep', '-c', '<<<<<<<', 'main', '--', 'shared.txt')).toBe('');
  });
});
