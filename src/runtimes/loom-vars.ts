/**
 * `loomVars`: the `LOOM_*` variables an agent finds in its environment. Invariant: Loom's own
 * variables (role, attempt, prompt and instructions files) win over a task variable of the same
 * name.
 */
import type { RunContext } from './runtime.js';
import type { AgentFiles } from './with-agent-files.js';

/** `issue` → `LOOM_ISSUE`, `issueTitle` / `issue-title` → `LOOM_ISSUE_TITLE`. */
export function varName(key: string): string {
  return `LOOM_${key
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/[^A-Za-z0-9]+/g, '_')
    .toUpperCase()}`;
}

/** The task's variables and Loom's own, for the agent's environment. Loom's come last: a task variable named `role` must not change the role. */
export function loomVars(context: RunContext, files: AgentFiles): Record<string, string> {
  const vars = Object.fromEntries(Object.entries(context.vars).map(([key, value]) => [varName(key), value]));
  return { ...vars, LOOM_ROLE: context.role, LOOM_ATTEMPT: String(context.attempt), LOOM_PROMPT_FILE: files.promptFile, LOOM_INSTRUCTIONS_FILE: files.instructionsFile };
}
