// `loom why` names the failing gate with what to do; `loom logs -f` follows a run to its end.
import { afterEach, describe, expect, it } from 'vitest';
import { Label } from '../../src/core/labels.js';
import type { TestRepo } from '../helpers/loom-repo.js';
import { loom, makeRepo, startDaemon, until } from '../helpers/loom-repo.js';
import { typedLoom } from '../../src/process/typed-command.js';

/** How Loom's hints spell a Loom command here (`loom` only when that is this Loom on the PATH). */
const cli = typedLoom().command;

let repo: TestRepo | undefined;
afterEach(() => repo?.cleanup());

describe('loom why / loom logs', () => {
  it('why walks the gates and says what to do', async () => {
    repo = makeRepo({});
    const tracker = repo.tracker();
    await tracker.createIssue({ title: 'plain' });
    await tracker.createIssue({ title: 'ready', labels: [Label.issue] });
    const plain = loom(repo.root, ['why', '1']);
    expect(plain.code).toBe(0);
    expect(plain.stdout.split('\n')[0]).toBe(`#1 is open but not ready: it has no loom:issue label; \`${cli} issue label 1 loom:issue\` makes it ready`);
    expect(plain.stdout).toContain(`✗ labelled loom:issue      has no loom:issue label: \`${cli} issue label 1 loom:issue\``);
    const ready = JSON.parse(loom(repo.root, ['why', '2', '--json']).stdout);
    expect(ready.gates.find((g: { gate: string }) => g.gate === 'builder configured').ok).toBe(false);
    expect(ready.state).toBe('ready');
    expect(ready.verdict).toMatch(/^#2 is ready \(loom:issue\), waiting: builder configured — no runtime for the builder/);
    expect(loom(repo.root, ['why', '9']).code).toBe(2);
  });

  it('why gives the place in line from a bounded read: exact among the first 500 ready, "behind the first 500" after them, the total from the count', async () => {
    repo = makeRepo({ maxShepherds: 1 });
    const tracker = repo.tracker();
    for (let i = 1; i <= 520; i += 1) await tracker.createIssue({ title: `Ready ${i}`, labels: i === 510 ? [Label.issue, Label.urgent] : [Label.issue] });
    const line = (n: number) => loom(repo!.root, ['why', String(n)]).stdout.split('\n').find((l) => l.includes('next in line')) ?? '';
    expect(line(510)).toMatch(/position 1 of 520 ready issues \(loom:urgent first, then oldest\)$/);
    expect(line(1)).toMatch(/position 2 of 520 ready issues/);
    expect(line(499)).toMatch(/position 500 of 520 ready issues/);
    expect(line(515)).toMatch(/behind the first 500 of 520 ready issues .*issue label 515 loom:urgent` moves it up/);
  });

  it('why says the state first: being built (phase, time), in review, closed by a merge or as not needed, blocked', async () => {
    const fence = '```';
    const script = (body: string) => `${fence}loom-script builder\n${body}\n${fence}`;
    repo = makeRepo({ runtime: 'script', pollInterval: '1s', heartbeatInterval: '0.2s', shutdownGrace: '1s', roles: { builder: { command: 'sleep 30' }, champion: { enabled: false } } });
    const tracker = repo.tracker();
    await tracker.createIssue({ title: 'slow', labels: [Label.issue] });
    const daemon = startDaemon(repo.root);
    const building = await until(() => {
      const r = loom(repo!.root, ['why', '1']);
      return /is being built by a shepherd \(phase builder/.test(r.stdout) ? r.stdout : null;
    }, 20_000, 'a shepherd runs the builder for #1');
    expect(building.split('\n')[0]).toMatch(/^#1 is being built by a shepherd \(phase builder, \d+s\); `.+ logs 1 -f` follows it$/);
    expect(building.split('\n')[0]).toContain(`\`${cli} logs 1 -f\``);
    loom(repo.root, ['stop']);
    expect(await daemon.exited(30_000)).toBe(0);

    // One shepherd at a time, by hand: the script agent for the rest.
    repo.writeConfig({ runtime: 'script' });
    await tracker.createIssue({ title: 'reviewed', body: script('write r.txt <<EOF\nr\nEOF'), labels: [Label.issue] });
    await tracker.createIssue({ title: 'merged', body: script('write m.txt <<EOF\nm\nEOF'), labels: [Label.issue] });
    await tracker.createIssue({ title: 'fine already', body: script('say NO CHANGES NEEDED: it works'), labels: [Label.issue] });
    await tracker.createIssue({ title: 'impossible', body: script('fail cannot be done'), labels: [Label.issue] });
    expect(loom(repo.root, ['shepherd', '2']).code).toBe(0); // approved, left to the Champion: PR #6
    expect(loom(repo.root, ['shepherd', '3', '--force-merge']).code).toBe(0); // PR #7, merged
    expect(loom(repo.root, ['shepherd', '4']).code).toBe(8);
    expect(loom(repo.root, ['shepherd', '5']).code).toBe(3);
    const headline = (n: number) => loom(repo!.root, ['why', String(n)]).stdout.split('\n')[0];
    expect(headline(2)).toBe('#2 is in review: PR #6 is approved (loom:pr); the Champion merges it');
    expect(headline(3)).toBe('#3 is closed: merged in PR #7');
    expect(headline(4)).toBe('#4 is closed: no changes needed — it works');
    expect(headline(5)).toBe(`#5 is blocked (loom:blocked): the builder exited with code 1: cannot be done; once that is dealt with, \`${cli} issue label 5 loom:issue\` retries it`);
    // A block without Loom's reason (a human's label) points at the comments.
    await tracker.updateLabels(2, { add: [Label.blocked] });
    expect(headline(2)).toBe(`#2 is blocked (loom:blocked): read its last comment (\`${cli} issue show 2\`), then \`${cli} issue label 2 loom:issue\` retries it`);
    expect(JSON.parse(loom(repo.root, ['why', '3', '--json']).stdout)).toMatchObject({ issue: 3, state: 'closed' });
  });

  it('logs, why and issue show for a number that is no issue say so, and name the issue a pull request is for', async () => {
    repo = makeRepo({});
    const tracker = repo.tracker();
    await tracker.createIssue({ title: 'first', labels: [Label.issue] });
    await tracker.createPullRequest({ title: '#1: first', head: 'loom/issue-1', base: 'main', closesIssue: 1 });
    const expectOneLine = (args: string[], pattern: RegExp) => {
      const r = loom(repo!.root, args);
      expect(r.code, r.stdout + r.stderr).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(pattern);
      expect(r.stdout).toBe('');
    };
    expectOneLine(['logs', '99'], /^loom: issue #99 does not exist; see `loom issue list --state all`$/m);
    expectOneLine(['logs', '2'], /^loom: #2 is a pull request, not an issue \(issues and pull requests share one number sequence\); it is for issue #1: `loom logs 1`$/m);
    expectOneLine(['why', '2'], /#2 is a pull request, not an issue .*: `loom why 1`$/m);
    expectOneLine(['issue', 'show', '2'], /#2 is a pull request, not an issue .*: `loom issue show 1`$/m);
    // An issue that exists but has not run yet still says when its logs appear.
    expectOneLine(['logs', '1'], /no logs for #1 in .*removed after logRetention/);
  });

  it('issue list says which numbers missing between the listed issues are pull requests', async () => {
    repo = makeRepo({});
    const tracker = repo.tracker();
    await tracker.createIssue({ title: 'first' });
    await tracker.createPullRequest({ title: '#1: first', head: 'loom/issue-1', base: 'main', closesIssue: 1 });
    await tracker.createPullRequest({ title: 'another', head: 'b', base: 'main' });
    await tracker.createIssue({ title: 'fourth' });
    const list = loom(repo.root, ['issue', 'list']);
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).toBe('#1     first\n#4     fourth\n(Issues and pull requests share one number sequence, as on GitHub: #2–#3 are pull requests; `loom pr list --all` lists them.)\n');
    // Nothing to explain without a gap; JSON stays the plain list.
    expect(loom(repo.root, ['issue', 'list', '--label', 'none-such']).stdout).toBe('No issues.\n');
    await tracker.close(4);
    expect(loom(repo.root, ['issue', 'list']).stdout).toBe('#1     first\n');
    expect(JSON.parse(loom(repo.root, ['issue', 'list', '--state', 'all', '--json']).stdout).map((i: { number: number }) => i.number)).toEqual([1, 4]);
  });

  it('logs -f prints a running shepherd\'s log until it finishes', async () => {
    repo = makeRepo({ pollInterval: '1s', heartbeatInterval: '0.2s', roles: { builder: { command: 'for i in 1 2 3 4 5; do echo "step $i"; sleep 0.2; done; echo done > out.txt' } } });
    await repo.tracker().createIssue({ title: 'chatty', labels: [Label.issue] });
    const daemon = startDaemon(repo.root);
    await until(() => /\+shepherd=#1/.test(daemon.output()), 20_000, 'shepherd started');
    const followed = loom(repo.root, ['logs', '1', '-f']);
    expect(followed.code, followed.stderr).toBe(0);
    expect(followed.stdout).toMatch(/step 1[\s\S]*step 5/);
    expect(followed.stdout).toMatch(/shepherd #1: (completed|blocked|no-changes)/);
    loom(repo.root, ['stop']);
    expect(await daemon.exited(30_000)).toBe(0);
    expect(loom(repo.root, ['logs', '7']).code).toBe(2);
  });
});
