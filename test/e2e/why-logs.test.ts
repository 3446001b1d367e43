// `loom why` names the failing gate with what to do; `loom logs -f` follows a run to its end.
import { afterEach, describe, expect, it } from 'vitest';
import { Label } from '../../src/core/labels.js';
import type { TestRepo } from '../helpers/loom-repo.js';
import { loom, makeRepo, startDaemon, until } from '../helpers/loom-repo.js';

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
    expect(plain.stdout).toMatch(/#1 is waiting: labelled loom:issue — has no loom:issue label: `loom issue label 1 loom:issue`/);
    const ready = JSON.parse(loom(repo.root, ['why', '2', '--json']).stdout);
    expect(ready.gates.find((g: { gate: string }) => g.gate === 'builder configured').ok).toBe(false);
    expect(ready.verdict).toMatch(/builder configured/);
    expect(loom(repo.root, ['why', '9']).code).toBe(2);
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
