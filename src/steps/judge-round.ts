/**
 * One Judge round on a branch: the agent's review AND Loom's deterministic gates. The verdict is
 * `approve` only when the diff is not empty, the configured test command passes in the worktree,
 * and the agent approves. Used by shepherds and by the support Judge.
 */
import type { LoomConfig } from '../core/config-model.js';
import type { LoomPaths } from '../config/paths.js';
import { git } from '../git/git.js';
import { agentEnv } from '../process/agent-env.js';
import { runCommand } from '../process/run-command.js';
import type { TaskRecorder } from '../process/task-recorder.js';
import type { IssueLease } from '../process/issue-lease.js';
import { fenceUntrusted, parseVerdict } from '../core/output-contracts.js';
import { runRoleAgent } from './run-role-agent.js';
import { EventLog } from '../process/event-log.js';
import type { Issue } from '../core/tracker-model.js';

/** Diffs larger than this are cut for the prompt (the gates still see the whole tree), chars. */
const MAX_DIFF_CHARS = 200_000;
const TAIL = 4_000;

export interface TestGate {
  ran: boolean;
  passed: boolean;
  /** The end of the test output. */
  output: string;
  /** Stopped from outside (shutdown) before it finished: neither passed nor failed. */
  aborted?: boolean;
}

export interface JudgeOutcome {
  verdict: 'approve' | 'changes';
  /** The review comment Loom posts on the PR. */
  review: string;
  gate: TestGate;
  /** The agent could not run (not a verdict): the reason. */
  agentError: string | null;
}

/** Runs `testCommand` in `cwd`; a missing test command is a gate that passes without running. */
export async function runTestGate(config: LoomConfig, cwd: string, signal?: AbortSignal): Promise<TestGate> {
  if (config.testCommand === undefined) return { ran: false, passed: true, output: '' };
  let output = '';
  const result = await runCommand({
    command: config.testCommand,
    cwd,
    env: agentEnv(process.env, { LOOM_ROLE: 'test-gate' }),
    stallTimeout: config.stallTimeout,
    timeout: config.roles.judge.timeout,
    ...(signal ? { signal } : {}),
    onOutput: (chunk) => {
      output = (output + chunk.toString('utf8')).slice(-TAIL);
    },
  });
  const passed = result.outcome === 'exited' && result.exitCode === 0;
  const why = result.outcome === 'exited' ? `exit ${result.exitCode ?? '?'}` : result.outcome;
  return { ran: true, passed, output: passed ? output : `${output}\n(${config.testCommand}: ${why})`.trim(), ...(result.outcome === 'aborted' ? { aborted: true } : {}) };
}

export async function judgeRound(opts: {
  paths: LoomPaths;
  config: LoomConfig;
  issue: Issue;
  prNumber: number;
  worktree: string;
  base: string;
  branch: string;
  attempt: number;
  signal?: AbortSignal;
  recorder?: TaskRecorder;
  lease?: IssueLease;
  /** Where the judge's output goes (runRoleAgent's `out`). */
  out?: (text: string) => void;
}): Promise<JudgeOutcome> {
  const { config, issue, worktree, base } = opts;
  const diff = await git(worktree, ['diff', `${base}...HEAD`]);
  const gate = await runTestGate(config, worktree, opts.signal);
  const problems: string[] = [];
  if (diff.trim() === '') problems.push('- The diff against the default branch is empty.');
  if (gate.ran && !gate.passed) problems.push(`- The test gate failed (\`${config.testCommand ?? ''}\`):\n\n\`\`\`\n${gate.output}\n\`\`\``);

  const run = await runRoleAgent({
    paths: opts.paths,
    config,
    role: 'judge',
    cwd: worktree,
    attempt: opts.attempt,
    instructions: issue.body,
    vars: {
      'issue.number': String(issue.number),
      'issue.title': issue.title,
      'issue.body': fenceUntrusted(`issue #${issue.number}`, issue.body),
      'pr.number': String(opts.prNumber),
      branch: opts.branch,
      base,
      diff: fenceUntrusted('the diff', diff.length > MAX_DIFF_CHARS ? `${diff.slice(0, MAX_DIFF_CHARS)}\n… (diff cut at ${MAX_DIFF_CHARS} characters)` : diff),
      test_command: config.testCommand ?? '(none configured)',
      test_output: gate.ran ? fenceUntrusted('the test output', `${gate.passed ? 'PASSED' : 'FAILED'}\n${gate.output}`) : '(no test command configured)',
    },
    issue: issue.number,
    ...(opts.signal ? { signal: opts.signal } : {}),
    ...(opts.recorder ? { recorder: opts.recorder } : {}),
    ...(opts.lease ? { lease: opts.lease } : {}),
    ...(opts.out ? { out: opts.out } : {}),
  });
  if (run.outcome !== 'success') return { verdict: 'changes', review: '', gate, agentError: `the judge ${run.message}` };
  const parsed = parseVerdict(run.output);
  if (parsed.verdict === null) problems.push('- The judge gave no verdict line (`VERDICT: APPROVE` or `VERDICT: REQUEST_CHANGES`).');
  const approve = problems.length === 0 && parsed.verdict === 'approve';
  const review = [
    `**Loom Judge — ${approve ? 'approved' : 'changes requested'}** (round ${opts.attempt})`,
    problems.length > 0 ? `Deterministic gates:\n${problems.join('\n')}` : gate.ran ? `Deterministic gates: the diff is not empty and \`${config.testCommand ?? ''}\` passes.` : 'Deterministic gates: the diff is not empty (no test command configured).',
    parsed.review ? `Review:\n\n${parsed.review.slice(-TAIL)}` : '',
  ]
    .filter(Boolean)
    .join('\n\n');
  new EventLog(opts.paths.events).emit('verdict', { issue: issue.number, pr: opts.prNumber, task_id: opts.recorder?.record.task_id, attempt: opts.attempt, verdict: approve ? 'approve' : 'changes', tests: gate.ran ? (gate.passed ? 'passed' : 'failed') : undefined });
  return { verdict: approve ? 'approve' : 'changes', review, gate, agentError: null };
}
