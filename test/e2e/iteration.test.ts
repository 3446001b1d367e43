// `loom iterate` with real background processes: failed spawns, stuck and stalled shepherds,
// loom:abort, roles on their intervals, work generation and force-mode promotion.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Label } from '../../src/core/labels.js';
import { isProcessAlive } from '../../src/process/process-identity.js';
import type { TestRepo } from '../helpers/loom-repo.js';
import { loom, makeRepo, until } from '../helpers/loom-repo.js';

let repo: TestRepo | undefined;
afterEach(() => repo?.cleanup());

function iterate(env: NodeJS.ProcessEnv = {}, args: string[] = []): string {
  const r = loom(repo!.root, ['iterate', ...args], env);
  expect(r.code, r.stderr).toBe(0);
  return r.stdout.trim();
}

function state() {
  return JSON.parse(fs.readFileSync(repo!.paths.state, 'utf8'));
}

function progressOf(issue: number) {
  const file = path.join(repo!.paths.progress, `shepherd-${issue}.json`);
  return fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, 'utf8')) : null;
}

describe('loom iterate', () => {
  it('a shepherd that dies at start is retried with backoff and blocked after spawnFailureLimit, with a comment', async () => {
    repo = makeRepo({ pollInterval: '0.1s', spawnFailureLimit: 3, roles: { builder: { command: 'true' } } });
    const tracker = repo.tracker();
    await tracker.createIssue({ title: 'cursed', labels: [Label.issue] });
    // Stand in for the loom entry point with a program that crashes at once.
    const crash = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'loom-crash-')), 'crash.mjs');
    fs.writeFileSync(crash, 'process.exit(70);\n');
    const env = { LOOM_CLI_ENTRY: crash };
    const summaries: string[] = [];
    await until(
      async () => {
        summaries.push(iterate(env));
        return (await tracker.getIssue(1))!.labels.includes(Label.blocked);
      },
      30_000,
      'issue blocked',
    );
    expect(summaries.filter((s) => s.includes('+shepherd=#1'))).toHaveLength(3);
    expect(summaries.filter((s) => s.includes('died=#1'))).toHaveLength(3);
    expect(summaries.join('\n')).toMatch(/blocked=#1/);
    const comments = await tracker.listComments(1);
    expect(comments.at(-1)!.body).toMatch(/exited without finishing \(attempt 3 of 3\).*loom:blocked/s);
    expect(state().spawn_retry_queue).toEqual({});
    // Blocked issues are not spawned again.
    expect(iterate(env)).not.toMatch(/\+shepherd/);
  });

  it('a shepherd whose heartbeat stops is killed with its agent, and the issue returned', async () => {
    repo = makeRepo({ heartbeatInterval: '0.2s', stallTimeout: '1s', pollInterval: '0.1s', roles: { builder: { command: 'while true; do echo working; sleep 0.1; done' } } });
    const tracker = repo.tracker();
    await tracker.createIssue({ title: 'freezes', labels: [Label.issue] });
    expect(iterate()).toMatch(/\+shepherd=#1/);
    const running = await until(() => progressOf(1)?.agent_pid && progressOf(1), 10_000, 'builder running');
    process.kill(running.pid, 'SIGSTOP'); // the shepherd hangs; its builder keeps going
    await until(() => Date.now() - Date.parse(progressOf(1).heartbeat) > 1_500, 10_000, 'heartbeat stale');
    expect(iterate()).toMatch(/stuck=#1/);
    expect(isProcessAlive(running.pid, running.pid_start)).toBe(false);
    expect(isProcessAlive(running.agent_pid, running.agent_pid_start)).toBe(false);
    const issue = await tracker.getIssue(1);
    expect(issue!.labels).toEqual([Label.issue]);
    expect(state().spawn_retry_queue['1'].failures).toBe(1);
  });

  it('a builder that prints nothing for stallTimeout is killed and the issue blocked with the reason', async () => {
    repo = makeRepo({ heartbeatInterval: '0.2s', stallTimeout: '1s', agentRetries: 2, roles: { builder: { command: 'echo starting; sleep 30' } } });
    const tracker = repo.tracker();
    await tracker.createIssue({ title: 'silent', labels: [Label.issue] });
    iterate();
    await until(async () => (await tracker.getIssue(1))!.labels.includes(Label.blocked), 15_000, 'blocked');
    const comments = await tracker.listComments(1);
    expect(comments.at(-1)!.body).toMatch(/the builder produced no output for 1s and was killed \(after 3 attempts\).*Log: /s);
    await until(() => progressOf(1)?.status === 'blocked', 5_000, 'terminal record');
    expect(isProcessAlive(progressOf(1).agent_pid, progressOf(1).agent_pid_start)).toBe(false);
    expect(iterate()).toMatch(/blocked=#1/);
  });

  it('a builder that exits non-zero blocks the issue; one that says no change is needed closes it', async () => {
    repo = makeRepo({ roles: { builder: { command: 'test "$LOOM_ISSUE" = 1 && echo "NO CHANGES NEEDED: it already works"' } } });
    const tracker = repo.tracker();
    await tracker.createIssue({ title: 'works', labels: [Label.issue] });
    await tracker.createIssue({ title: 'fails', labels: [Label.issue] });
    expect(iterate()).toMatch(/\+shepherd=#1 \+shepherd=#2/);
    await until(async () => (await tracker.listIssues({ labels: [Label.building] })).length === 0, 15_000, 'both finished');
    expect((await tracker.getIssue(1))!.state).toBe('closed');
    expect((await tracker.getIssue(2))!.labels).toEqual([Label.blocked]);
    expect((await tracker.listComments(2)).at(-1)!.body).toMatch(/exited with code 1/);
    const summary = iterate();
    expect(summary).toMatch(/no-changes=#1/); // no commits, and the builder said so
    expect(summary).toMatch(/blocked=#2/);
    expect(state().completed_issues).toEqual([1]);
  });

  it('loom:abort stops the shepherd and returns the issue to loom:issue', async () => {
    repo = makeRepo({ heartbeatInterval: '0.2s', roles: { builder: { command: 'while true; do echo busy; sleep 0.1; done' } } });
    const tracker = repo.tracker();
    await tracker.createIssue({ title: 'long', labels: [Label.issue] });
    iterate();
    await until(() => progressOf(1)?.agent_pid, 10_000, 'builder running');
    expect(loom(repo.root, ['issue', 'label', '1', Label.abort]).code).toBe(0);
    await until(() => progressOf(1)?.status === 'stopped', 10_000, 'shepherd stopped');
    const issue = await tracker.getIssue(1);
    expect(issue!.labels).toEqual([Label.issue]);
    expect((await tracker.listComments(1)).at(-1)!.body).toMatch(/stopped by `loom:abort`/);
    expect(iterate()).toMatch(/stopped=#1/);
  });

  it('runs support roles on their interval and generators when the backlog is low; force mode promotes proposals', async () => {
    const createProposal = `node "${path.resolve('bin/loom.js')}" issue create "Proposal from $LOOM_ROLE" --label loom:$LOOM_ROLE`;
    repo = makeRepo({
      issueThreshold: 2,
      roles: {
        builder: { command: 'true' },
        guide: { command: 'echo guiding', interval: '1h' },
        architect: { command: createProposal, cooldown: '1h' },
        hermit: { command: createProposal, cooldown: '1h' },
      },
    });
    const tracker = repo.tracker();
    const first = iterate();
    expect(first).toMatch(/\+architect/);
    expect(first).toMatch(/\+hermit/);
    expect(first).toMatch(/\+guide/);
    await until(() => fs.readdirSync(repo!.paths.progress).every((n) => JSON.parse(fs.readFileSync(path.join(repo!.paths.progress, n), 'utf8')).status === 'completed'), 15_000, 'roles done');
    // Each start is one event, written at the launch: it names the run, and comes before the run's own.
    const events = fs.readFileSync(repo.paths.events, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    for (const role of ['architect', 'hermit', 'guide']) {
      const started = events.filter((e) => e.type === 'role.started' && e.role === role);
      expect(started).toEqual([expect.objectContaining({ task_id: expect.any(String), pid: expect.any(Number) })]);
      const own = events.findIndex((e) => e.type === 'task.started' && e.kind === 'role' && e.role === role);
      expect(own).toBeGreaterThan(events.indexOf(started[0]!));
      expect(events[own]).toMatchObject({ task_id: started[0]!.task_id, pid: started[0]!.pid });
    }
    const second = iterate();
    expect(second).not.toMatch(/\+(architect|hermit|guide)/); // cooldowns and interval not over
    expect(state().support_roles.guide.last_outcome).toBe('completed');
    const proposals = await tracker.listIssues();
    expect(proposals.map((i) => i.labels.join()).sort()).toEqual([Label.architect, Label.hermit]);
    // Without force they wait for a human; with force they are promoted and built at once.
    expect(iterate()).not.toMatch(/promote/);
    const forced = iterate({}, ['--force']);
    expect(forced).toMatch(/promote=#1 promote=#2 \+shepherd=#1 \+shepherd=#2/);
  });
});
