// Budgets and runtime limits through the real pipeline: a spent issue budget blocks the issue
// with the reason; a spent daily budget or a limited runtime stops dispatch (and says so); a
// fallback runtime keeps the work going.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Label } from '../../src/core/labels.js';
import type { TestRepo } from '../helpers/loom-repo.js';
import { loom, makeRepo } from '../helpers/loom-repo.js';

let repo: TestRepo | undefined;
afterEach(() => repo?.cleanup());

const fence = '```';
const ledgerLine = (fields: Record<string, unknown>) =>
  `${JSON.stringify({ at: new Date().toISOString(), issue: null, role: 'builder', runtime: 'claude', model: null, session_id: 's', outcome: 'success', input_tokens: 1000, output_tokens: 1000, cached_input_tokens: 0, cost_usd: 1, priced: false, ...fields })}\n`;

describe('budgets and runtime limits', () => {
  it('an issue over its budget is blocked with the reason before any agent runs', async () => {
    repo = makeRepo({ runtime: 'script', budget: { perIssueUsd: 1 } });
    const tracker = repo.tracker();
    await tracker.createIssue({ title: 'expensive', labels: [Label.issue], body: `${fence}loom-script builder\nwrite x.txt <<EOF\nx\nEOF\n${fence}` });
    fs.appendFileSync(repo.paths.usage, ledgerLine({ issue: 1, cost_usd: 5 }));
    const r = loom(repo.root, ['shepherd', '1']);
    expect(r.code, r.stdout + r.stderr).toBe(5);
    expect((await tracker.getIssue(1))!.labels).toEqual([Label.blocked]);
    expect((await tracker.listComments(1)).at(-1)!.body).toMatch(/budget: this issue has used \$5\.00 of its \$1 budget/);
  });

  it('after an iteration indexed the ledger, the runs before it and after it both count', async () => {
    repo = makeRepo({ runtime: 'script', budget: { perIssueUsd: 1 } });
    const tracker = repo.tracker();
    await tracker.createIssue({ title: 'spent in two parts', labels: [], body: `${fence}loom-script builder\nwrite x.txt <<EOF\nx\nEOF\n${fence}` });
    fs.appendFileSync(repo.paths.usage, ledgerLine({ issue: 1, cost_usd: 0.6 }) + ledgerLine({ issue: 2, cost_usd: 9 }));
    expect(loom(repo.root, ['iterate']).code).toBe(0);
    expect(JSON.parse(fs.readFileSync(repo.paths.state, 'utf8')).usage.by_issue['1']).toMatchObject({ cost_usd: 0.6 });
    fs.appendFileSync(repo.paths.usage, ledgerLine({ issue: 1, cost_usd: 0.5 }));
    await tracker.updateLabels(1, { add: [Label.issue] });
    const r = loom(repo.root, ['shepherd', '1']);
    expect(r.code, r.stdout + r.stderr).toBe(5);
    expect((await tracker.listComments(1)).at(-1)!.body).toMatch(/budget: this issue has used \$1\.10 of its \$1 budget/);
  });

  it('an unreadable usage index is removed with a warning, rebuilt from the ledger, and never miscounts', () => {
    repo = makeRepo({ runtime: 'script', budget: { perDayUsd: 2 } });
    fs.appendFileSync(repo.paths.usage, ledgerLine({ cost_usd: 1.5 }));
    fs.writeFileSync(repo.paths.usageIndex, 'x'.repeat(4096));
    expect(loom(repo.root, ['iterate']).code).toBe(0);
    const state = JSON.parse(fs.readFileSync(repo.paths.state, 'utf8'));
    expect(state.warnings.map((w: { message: string }) => w.message).join('\n')).toMatch(/usage index .*usage-index\.db: .*; removed, the next iteration rebuilds it from the ledger/);
    expect(fs.existsSync(repo.paths.usageIndex)).toBe(false);
    expect(JSON.parse(loom(repo.root, ['status', '--json']).stdout).usage.today).toMatchObject({ runs: 1, cost_usd: 1.5 });
    fs.appendFileSync(repo.paths.usage, ledgerLine({ cost_usd: 0.75 }));
    expect(loom(repo.root, ['iterate']).code).toBe(0);
    expect(fs.existsSync(repo.paths.usageIndex)).toBe(true);
    expect(JSON.parse(loom(repo.root, ['status', '--json']).stdout).usage.today).toMatchObject({ runs: 2, cost_usd: 2.25 });
  });

  it('a spent daily budget stops new work and status says why; the usage shows in status', async () => {
    repo = makeRepo({ runtime: 'script', budget: { perDayUsd: 2 } });
    await repo.tracker().createIssue({ title: 'waits', labels: [Label.issue] });
    fs.appendFileSync(repo.paths.usage, ledgerLine({ cost_usd: 1.5 }) + ledgerLine({ cost_usd: 0.75, runtime: 'codex' }));
    const summary = loom(repo.root, ['iterate']);
    expect(summary.code, summary.stderr).toBe(0);
    expect(summary.stdout).not.toMatch(/\+shepherd/);
    const status = JSON.parse(loom(repo.root, ['status', '--json']).stdout);
    expect(status.usage.today).toMatchObject({ runs: 2, cost_usd: 2.25, input_tokens: 2000 });
    expect(status.interventions.join('\n')).toMatch(/No new agent work today: today's runs have used \$2\.25 of the \$2 daily budget/);
    const state = JSON.parse(fs.readFileSync(repo.paths.state, 'utf8'));
    expect(state.usage.total).toMatchObject({ runs: 2, cost_usd: 2.25 });
    expect(loom(repo.root, ['status']).stdout).toMatch(/Agent usage today: 2 runs, 2\.0k in \/ 2\.0k out tokens, \$2\.25/);
  });

  it('a limited runtime gets no work until its reset; a role with a fallback runs on the fallback', async () => {
    repo = makeRepo({ roles: { builder: { command: 'echo built > built.txt' } } });
    const tracker = repo.tracker();
    await tracker.createIssue({ title: 'needs a builder', labels: [Label.issue], body: `${fence}loom-script builder\nsay NO CHANGES NEEDED: the script fallback looked\n${fence}` });
    fs.mkdirSync(repo.paths.limits, { recursive: true });
    const until = new Date(Date.now() + 3_600_000).toISOString();
    fs.writeFileSync(path.join(repo.paths.limits, 'command.json'), JSON.stringify({ runtime: 'command', until, reason: '429 usage limit' }));
    expect(loom(repo.root, ['iterate']).stdout).not.toMatch(/\+shepherd/);
    const status = JSON.parse(loom(repo.root, ['status', '--json']).stdout);
    expect(status.runtime_limits).toEqual([{ runtime: 'command', until, reason: '429 usage limit' }]);

    // With a fallback the work goes on, on the fallback runtime.
    fs.writeFileSync(repo.paths.config, JSON.stringify({ roles: { builder: { command: 'echo built > built.txt', fallback: 'script' } } }));
    const r = loom(repo.root, ['shepherd', '1']);
    expect(r.code, r.stdout + r.stderr).toBe(8); // the script builder says no change is needed
    expect(r.stdout).toMatch(/NO CHANGES NEEDED: the script fallback looked/);
  });
});
