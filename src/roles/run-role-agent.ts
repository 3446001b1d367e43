/**
 * Runs one role's agent once: load the role file (`.loom/roles/<role>.md` over the built-in
 * default), fill its prompt, pick the runtime, run it with Loom's watchdogs, stream its output to
 * the log and renew the task's liveness lease as output arrives.
 */
import type { LoomConfig, RoleName } from '../config/config.js';
import type { LoomPaths } from '../config/paths.js';
import type { TaskRecorder } from '../process/task-recorder.js';
import { createRuntime } from '../runtimes/create-runtime.js';
import type { RunResult } from '../runtimes/runtime.js';
import { defaultRolesDir, fillTemplate, loadRole } from './role-file.js';

const LONG_VARS = ['diff', 'issue.body', 'review', 'test_output', 'open_issues', 'open_proposals'];

export interface RoleAgentRun {
  paths: LoomPaths;
  config: LoomConfig;
  role: RoleName;
  cwd: string;
  /** Template variables (see TEMPLATE_VARIABLES); also passed to the agent as LOOM_* env vars. */
  vars: Record<string, string>;
  /** Written instructions for runtimes that follow them (the issue text); default: the prompt. */
  instructions?: string;
  attempt: number;
  signal?: AbortSignal;
  recorder?: TaskRecorder;
}

export async function runRoleAgent(run: RoleAgentRun): Promise<RunResult> {
  const definition = loadRole(run.role, [run.paths.roles, defaultRolesDir()]);
  const roleConfig = run.config.roles[run.role];
  const runtime = createRuntime(run.role, roleConfig, definition);
  const vars: Record<string, string> = { repo: run.paths.root, role: run.role, attempt: String(run.attempt), ...run.vars };
  // Short values also go to the agent as env vars (LOOM_ISSUE_NUMBER, ...); long texts stay in the prompt.
  const envVars: Record<string, string> = {};
  for (const [key, value] of Object.entries(vars)) if (!LONG_VARS.includes(key)) envVars[key.replace(/\./g, '_')] = value;
  if (vars['issue.number'] !== undefined) envVars.issue = vars['issue.number'];
  envVars.repo_root = run.paths.root;
  const prompt = fillTemplate(definition.template, vars);
  return runtime.run({
    role: run.role,
    prompt,
    cwd: run.cwd,
    vars: envVars,
    instructions: run.instructions ?? prompt,
    attempt: run.attempt,
    stallTimeout: run.config.stallTimeout,
    timeout: roleConfig.timeout,
    ...(run.signal ? { signal: run.signal } : {}),
    onOutput: (text) => {
      process.stdout.write(text);
      run.recorder?.output();
    },
    onStart: (pid) => run.recorder?.agent(pid),
  });
}
