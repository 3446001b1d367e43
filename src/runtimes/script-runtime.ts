/**
 * `ScriptRuntime`: runs the deterministic script agent (`script-agent`) as the agent process, so
 * the whole pipeline — builders, judges, doctors — can run from instructions written in issues,
 * without a model.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { runAgentProcess } from './run-agent-process.js';
import type { AgentRuntime, RunContext, RunResult } from './runtime.js';
import { shellQuote } from './shell-quote.js';

/**
 * argv that starts the script agent: the compiled sibling under `dist/`, or — under vitest or tsx,
 * where only the `.ts` source exists — the source through tsx. tsx is given as an absolute URL
 * because `--import` resolves bare names from the agent's cwd (a worktree without node_modules).
 */
export function scriptAgentArgv(): string[] {
  const compiled = fileURLToPath(new URL('./script-agent.js', import.meta.url));
  if (fs.existsSync(compiled)) return [process.execPath, compiled];
  const source = compiled.replace(/\.js$/, '.ts');
  const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
  return [process.execPath, '--import', tsx, source];
}

/** What the script agent needs to see in a sandbox: Loom's package (its code, `package.json`) and its dependencies. */
function scriptAgentPaths(): string[] {
  const root = fileURLToPath(new URL('../../', import.meta.url));
  const modules = path.join(root, 'node_modules');
  return [root, process.execPath, ...(fs.existsSync(modules) ? [fs.realpathSync(modules)] : [])];
}

export class ScriptRuntime implements AgentRuntime {
  readonly name = 'script';

  run(context: RunContext): Promise<RunResult> {
    // `exec`: the agent itself leads the process group, with no shell in between.
    return runAgentProcess(`exec ${scriptAgentArgv().map(shellQuote).join(' ')}`, context, { readOnly: scriptAgentPaths() });
  }
}
