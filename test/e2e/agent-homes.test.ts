// The agent CLIs' homes (`.loom/agent-homes/issue-N`: sessions, login copies, package installs)
// are removed once their issue is closed — merged by its shepherd or the Champion, found needing
// no change, closed by a person — and kept while it can still run (blocked, open). A home whose
// issue was closed without its removal is removed at the next daemon start.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Label } from '../../src/core/labels.js';
import type { TestRepo } from '../helpers/loom-repo.js';
import { loom, makeRepo, startDaemon, until } from '../helpers/loom-repo.js';

let repo: TestRepo | undefined;
afterEach(() => repo?.cleanup());

/** Each agent run leaves a session file in its home, as an agent CLI does. */
const session = 'mkdir -p "$LOOM_STATE_DIR/cli" && echo "$LOOM_ROLE" >> "$LOOM_STATE_DIR/cli/session.jsonl"';
// Issue 2 needs no change; issue 3's builder commits some work, then fails; the others write a file.
const wip = 'echo wip > "w-$LOOM_ISSUE.txt" && git add . && git -c user.name=Agent -c user.email=agent@localhost commit -qm wip';
const builder = `${session}; case "$LOOM_ISSUE" in 2) echo "NO CHANGES NEEDED: it is there already";; 3) ${wip}; echo "cannot"; exit 1;; *) echo "$LOOM_ISSUE" > "f-$LOOM_ISSUE.txt";; esac`;

const homeOf = (n: number) => path.join(repo!.paths.agentHomes, `issue-${n}`);

describe('agent homes', () => {
  it('go with their issue: merged, no change needed, merged by the Champion, closed by a person; blocked and open issues keep theirs', async () => {
    repo = makeRepo({
      runtime: 'command',
      roles: {
        builder: { command: builder },
        judge: { command: `${session}; echo "VERDICT: APPROVE"` },
        doctor: { command: 'true' },
        champion: { command: 'true' },
        ...Object.fromEntries(['architect', 'hermit', 'guide', 'curator'].map((role) => [role, { command: 'true', enabled: false }])),
      },
    });
    const tracker = repo.tracker();
    for (const title of ['merged', 'no change', 'blocked', 'closed by a person', 'left for the Champion']) await tracker.createIssue({ title, labels: [Label.issue] });

    const merged = loom(repo.root, ['shepherd', '1', '--force-merge']);
    expect(merged.code, merged.stdout + merged.stderr).toBe(0);
    expect((await tracker.getIssue(1))!.state).toBe('closed');
    expect(merged.stdout).toMatch(/removed the agent home of #1 \(issue closed\)/);
    expect(fs.existsSync(homeOf(1))).toBe(false);

    const noChange = loom(repo.root, ['shepherd', '2', '--force-merge']);
    expect((await tracker.getIssue(2))!.state, noChange.stdout + noChange.stderr).toBe('closed');
    expect(fs.existsSync(homeOf(2))).toBe(false);

    // Blocked: it may run again once a person unblocks it, so its home stays. Its home, made long
    // ago, is marked used by the runs in it (a worker's clone removes homes unused for logRetention).
    fs.mkdirSync(path.join(homeOf(3), 'cli'), { recursive: true });
    const longAgo = new Date(Date.now() - 40 * 86_400_000);
    fs.utimesSync(homeOf(3), longAgo, longAgo);
    const beforeRun = Date.now() - 1_000;
    const blocked = loom(repo.root, ['shepherd', '3', '--force-merge']);
    expect((await tracker.getIssue(3))!.labels, blocked.stdout + blocked.stderr).toContain(Label.blocked);
    expect(fs.statSync(homeOf(3)).mtimeMs).toBeGreaterThanOrEqual(beforeRun);
    expect(fs.readFileSync(path.join(homeOf(3), 'cli', 'session.jsonl'), 'utf8')).toMatch(/^(builder\n)+$/);
    // Its work is kept on its branch (and the branch stays once the issue is closed).
    expect(spawnSync('git', ['rev-parse', '--verify', '-q', 'refs/heads/loom/issue-3'], { cwd: repo.root }).status).toBe(0);

    // Approved and left for the Champion: the home stays until the Champion merges it.
    const approved = loom(repo.root, ['shepherd', '5']);
    expect(approved.code, approved.stdout + approved.stderr).toBe(0);
    expect(fs.readFileSync(path.join(homeOf(5), 'cli', 'session.jsonl'), 'utf8')).toBe('builder\njudge\n');
    const champion = loom(repo.root, ['role', 'champion']);
    expect(champion.code, champion.stdout + champion.stderr).toBe(0);
    expect((await tracker.getIssue(5))!.state).toBe('closed');
    expect(fs.existsSync(homeOf(5))).toBe(false);

    // Issue 4: a person closes it while its home is there (as a merger killed right after the
    // close would leave it); an open issue has one too; the blocked issue 3 is closed as well.
    const open = (await tracker.createIssue({ title: 'still open', labels: [] })).number;
    for (const n of [4, open]) {
      fs.mkdirSync(path.join(homeOf(n), 'cli'), { recursive: true });
      fs.writeFileSync(path.join(homeOf(n), 'cli', 'session.jsonl'), 'builder\n');
    }
    const byPerson = loom(repo.root, ['issue', 'close', '4']);
    expect(byPerson.code, byPerson.stderr).toBe(0);
    expect(loom(repo.root, ['issue', 'close', '3']).code).toBe(0);
    // An iteration does not look for them (its cost does not grow with old homes) ...
    expect(loom(repo.root, ['iterate']).code).toBe(0);
    expect([3, 4, open].map((n) => fs.existsSync(homeOf(n)))).toEqual([true, true, true]);
    // ... the daemon's start does.
    const daemon = startDaemon(repo.root);
    await until(() => !fs.existsSync(homeOf(3)) && !fs.existsSync(homeOf(4)), 20_000, () => `the closed issues' homes removed at start-up:\n${daemon.output()}`);
    expect(loom(repo.root, ['stop']).code).toBe(0);
    expect(await daemon.exited(30_000)).toBe(0);
    for (const n of [3, 4]) expect(daemon.output()).toMatch(new RegExp(`removed the agent home of #${n} \\(issue closed\\)`));
    expect(fs.readFileSync(path.join(homeOf(open), 'cli', 'session.jsonl'), 'utf8')).toBe('builder\n');
    expect(fs.readdirSync(repo.paths.agentHomes).filter((name) => name.startsWith('issue-'))).toEqual([`issue-${open}`]);
  });
});
