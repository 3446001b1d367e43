/**
 * Workspace hooks: the shell commands of `hooks.afterCreate|beforeRun|afterRun|beforeRemove`, run
 * with `sh -c` in the issue's worktree as their own process group, killed with everything they
 * started after `hooks.timeout`. `afterCreate` and `beforeRun` failing fails the attempt (the
 * caller throws `HookFailedError`); `afterRun` and `beforeRemove` failing is logged and ignored.
 */
import path from 'node:path';
import type { HookName, WorkspaceHooks } from '../core/config-model.js';
import { LoomError } from '../core/errors.js';
import { agentEnv } from './agent-env.js';
import { runCommand } from './run-command.js';

/** Hooks whose failure fails the attempt. */
const FATAL: readonly HookName[] = ['afterCreate', 'beforeRun'];
/** The last output a failure message keeps, characters. */
const TAIL = 400;

export class HookFailedError extends LoomError {
  constructor(
    readonly hook: HookName,
    readonly detail: string,
  ) {
    super('hook_failed', `hooks.${hook} failed: ${detail}`, { retryable: true });
  }
}

/**
 * Runs `hook` in `cwd` when it is configured. A failing fatal hook throws `HookFailedError`; a
 * failing other hook is passed to `log` and ignored. `context` becomes `LOOM_*` variables
 * (`LOOM_ISSUE`, `LOOM_WORKTREE`, …) next to the agents' environment allowlist.
 */
export async function runHook(hooks: WorkspaceHooks, hook: HookName, cwd: string, context: Record<string, string>, log: (line: string) => void): Promise<void> {
  const command = hooks[hook];
  if (command === undefined) return;
  let output = '';
  const result = await runCommand({
    command,
    cwd,
    env: agentEnv(process.env, { ...context, LOOM_HOOK: hook, LOOM_WORKTREE: cwd }),
    stallTimeout: hooks.timeout,
    timeout: hooks.timeout,
    onOutput: (chunk) => {
      output = (output + chunk.toString('utf8')).slice(-TAIL);
    },
  });
  if (result.outcome === 'exited' && result.exitCode === 0) {
    log(`hooks.${hook} ran in ${Math.round(result.duration)} ms`);
    return;
  }
  const why = result.outcome === 'timeout' || result.outcome === 'stalled' ? `timed out after ${hooks.timeout} ms` : result.outcome === 'exited' ? `exit ${result.exitCode}` : result.outcome;
  const detail = `${why}${output.trim() ? `: ${output.trim().split('\n').slice(-3).join(' | ')}` : ''}`;
  if (FATAL.includes(hook)) throw new HookFailedError(hook, detail);
  log(`hooks.${hook} failed (ignored): ${detail}`);
}

/**
 * `afterCreate` and `beforeRemove` for every issue worktree Loom creates or removes — a
 * shepherd's, the Judge's, the Doctor's, the Champion's merge, the cleanup — with `LOOM_ISSUE`
 * from the worktree's name (`issue-N`) and `LOOM_REPO_ROOT`. Shaped as `Worktrees` takes them.
 */
export function worktreeHooks(hooks: WorkspaceHooks, root: string, log: (line: string) => void): { afterCreate: (dir: string) => Promise<void>; beforeRemove: (dir: string) => Promise<void> } {
  const context = (dir: string) => ({ LOOM_ISSUE: path.basename(dir).replace(/^issue-/, ''), LOOM_REPO_ROOT: root });
  return {
    afterCreate: (dir) => runHook(hooks, 'afterCreate', dir, context(dir), log),
    beforeRemove: (dir) => runHook(hooks, 'beforeRemove', dir, context(dir), log),
  };
}
