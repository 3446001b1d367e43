// A command agent configured as the README shows it — `"command": "./scripts/agent.sh"` — runs the
// repository's script even before it is committed (a relative path is the repository root's, the
// command still works in the issue's worktree); one that is missing or not executable is refused
// by `loom doctor`, `loom start` and `loom spawn` in one line, changing nothing.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Label } from '../../src/core/labels.js';
import type { TestRepo } from '../helpers/loom-repo.js';
import { fingerprint, loom, makeRepo, startDaemon, until } from '../helpers/loom-repo.js';

let repo: TestRepo | undefined;
afterEach(() => repo?.cleanup());

const agent = { command: './scripts/agent.sh' };
const config = { testCommand: 'true', pollInterval: '1s', heartbeatInterval: '0.2s', roles: { builder: agent, judge: agent, doctor: agent } };
const git = (cwd: string, ...args: string[]) => spawnSync('git', args, { cwd, encoding: 'utf8' }).stdout.trim();

/** The README's agent script: the builder leaves a file saying where it ran, the judge approves. */
function writeAgent(root: string, mode = 0o755): void {
  fs.mkdirSync(path.join(root, 'scripts'), { recursive: true });
  const script = '#!/bin/sh\nif [ "$LOOM_ROLE" = builder ]; then pwd > "where-$LOOM_ISSUE.txt"; fi\necho "VERDICT: APPROVE"\n';
  fs.writeFileSync(path.join(root, 'scripts', 'agent.sh'), script, { mode });
}

describe('command agents', () => {
  it('a relative command path runs the repository\'s script, committed or not, in each issue\'s worktree', async () => {
    repo = makeRepo(config);
    writeAgent(repo.root); // not committed: a worktree cut from main does not have it
    const tracker = repo.tracker();
    for (const title of ['one', 'two']) await tracker.createIssue({ title, labels: [Label.issue] });
    const daemon = startDaemon(repo.root, ['start', '--force']);
    const settled = async () => (await tracker.listIssues({ state: 'all' })).every((i) => i.state === 'closed' || i.labels.includes(Label.blocked));
    await until(settled, 60_000, 'both issues closed or blocked');
    loom(repo.root, ['stop']);
    expect(await daemon.exited(30_000), daemon.output()).toBe(0);
    const issues = await tracker.listIssues({ state: 'all' });
    expect(issues.map((i) => [i.number, i.state, i.labels]), daemon.output()).toEqual([
      [1, 'closed', []],
      [2, 'closed', []],
    ]);
    // Each builder ran in its issue's worktree, and its work is merged.
    for (const n of [1, 2]) expect(fs.readFileSync(path.join(repo.root, `where-${n}.txt`), 'utf8').trim()).toBe(path.join(repo.paths.worktrees, `issue-${n}`));
    expect(git(repo.root, 'status', '--porcelain', '--', 'scripts')).toBe('?? scripts/'); // still not committed
  });

  it('a command that does not exist or is not executable is refused by loom doctor, loom start and loom spawn, in one line, changing nothing', async () => {
    repo = makeRepo(config);
    await repo.tracker().createIssue({ title: 'one', labels: [Label.issue] });
    const file = path.join(repo.root, 'scripts', 'agent.sh');
    const missing = `./scripts/agent.sh (${file}: a relative path is resolved against the repository root) does not exist`;
    const doctor = JSON.parse(loom(repo.root, ['doctor', '--json']).stdout);
    expect(doctor.problems).toEqual([`role builder: ${missing}`, `role judge: ${missing}`, `role doctor: ${missing}`]);
    const before = fingerprint(repo.paths.dir);
    for (const args of [['start'], ['start', '--force'], ['spawn', '1']]) {
      const r = loom(repo.root, args);
      expect(r.code, r.stdout + r.stderr).toBe(2);
      expect(r.stderr).toBe(`loom: cannot start: roles builder, judge, doctor: ${missing} (\`loom doctor\` checks every role)\n`);
      expect(r.stdout).toBe('');
    }
    expect(fingerprint(repo.paths.dir)).toEqual(before);

    writeAgent(repo.root, 0o644);
    const notExecutable = loom(repo.root, ['start']);
    expect(notExecutable.code).toBe(2);
    expect(notExecutable.stderr).toMatch(/^loom: cannot start: roles builder, judge, doctor: \.\/scripts\/agent\.sh \(.*\) is not executable: `chmod \+x \.\/scripts\/agent\.sh` \(`loom doctor` checks every role\)\n$/);
    expect(JSON.parse(loom(repo.root, ['doctor', '--json']).stdout).problems).toHaveLength(3);
    expect(fingerprint(repo.paths.dir)).toEqual(before);

    fs.chmodSync(file, 0o755);
    const fixed = JSON.parse(loom(repo.root, ['doctor', '--json']).stdout);
    expect(fixed.problems).toEqual([]);
    expect(fixed.roles.find((r: { role: string }) => r.role === 'builder')).toMatchObject({ runtime: 'command', runs: file, usable: true });
    // A bare command name is looked up on PATH; a shell keyword or builtin is fine.
    repo.writeConfig({ roles: { builder: { command: 'no-such-agent-cli --go' }, judge: { command: 'for i in 1; do echo "VERDICT: APPROVE"; done' } } });
    expect(JSON.parse(loom(repo.root, ['doctor', '--json']).stdout).problems).toEqual(['role builder: `no-such-agent-cli` is not found on PATH']);
    expect(loom(repo.root, ['start']).stderr).toBe('loom: cannot start: role builder: `no-such-agent-cli` is not found on PATH (`loom doctor` checks every role)\n');
  });
});
