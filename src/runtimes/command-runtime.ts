/**
 * `CommandRuntime`: runs a configured shell command as the agent (any CLI that reads
 * `LOOM_PROMPT_FILE` / `LOOM_INSTRUCTIONS_FILE` and works in its current directory).
 *
 * The command runs in the worktree, but a relative path it starts with
 * (`./scripts/agent.sh`) names a file of the repository: it is resolved against the repository
 * root, so a script that is not committed yet (and so is not in a worktree cut from the default
 * branch) still runs. `executableProblem` is the check `loom doctor` and `loom start` make.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { runAgentProcess } from './run-agent-process.js';
import { shellQuote } from './shell-quote.js';
import type { AgentRuntime, RunContext, RunResult } from './runtime.js';

export class CommandRuntime implements AgentRuntime {
  readonly name = 'command';
  private readonly command: string;

  /** `command` as `createRuntime` resolved it (`resolveCommand`). */
  constructor(options: { command: string }) {
    this.command = options.command;
  }

  run(context: RunContext): Promise<RunResult> {
    // Its program (a script of the repository's main checkout, say) is shown to it in a sandbox.
    return runAgentProcess(this.command, context, { program: this.command });
  }
}

/** A word the shell takes literally: no quotes, variables, globs or `~`. */
const PLAIN_WORD = /^[A-Za-z0-9_@%+=:,./-]+$/;

/**
 * The executable word of a shell command — after leading `NAME=value` assignments — when it is
 * a plain word Loom can resolve and check; null for anything the shell would expand first.
 */
export function commandHead(command: string): { before: string; word: string; after: string } | null {
  const m = /^(\s*(?:[A-Za-z_][A-Za-z0-9_]*=[A-Za-z0-9_@%+=:,./-]*\s+)*)([^\s;&|<>()]+)([\s\S]*)$/.exec(command);
  if (m === null || !PLAIN_WORD.test(m[2] ?? '')) return null;
  return { before: m[1] ?? '', word: m[2] ?? '', after: m[3] ?? '' };
}

/** `./scripts/agent.sh --fast` → `'/repo/scripts/agent.sh' --fast`: a relative executable path is the repository's. */
export function resolveCommand(command: string, root: string): string {
  const head = commandHead(command);
  if (head === null || !head.word.includes('/') || path.isAbsolute(head.word)) return command;
  return `${head.before}${shellQuote(path.resolve(root, head.word))}${head.after}`;
}

/**
 * Whether `word` (a command's executable) will run: a path (relative ones against `root`) must be
 * an executable file; a bare name must be found by the shell (`PATH`, or a shell builtin).
 * Returns where it was found, or a one-line problem.
 */
export function findExecutable(word: string, root: string, env: NodeJS.ProcessEnv = process.env): { path: string } | { problem: string } {
  if (word.includes('/')) {
    const file = path.resolve(root, word);
    const shown = path.isAbsolute(word) ? word : `${word} (${file}: a relative path is resolved against the repository root)`;
    let stat: fs.Stats;
    try {
      stat = fs.statSync(file);
    } catch {
      return { problem: `${shown} does not exist` };
    }
    if (stat.isDirectory()) return { problem: `${shown} is a directory, not a program` };
    try {
      fs.accessSync(file, fs.constants.X_OK);
    } catch {
      return { problem: `${shown} is not executable: \`chmod +x ${word}\`` };
    }
    return { path: file };
  }
  const found = spawnSync('sh', ['-c', 'command -v -- "$1"', 'sh', word], { env, encoding: 'utf8', timeout: 10_000 });
  const where = found.stdout.trim();
  return found.status === 0 && where !== '' ? { path: where } : { problem: `\`${word}\` is not found on PATH` };
}
