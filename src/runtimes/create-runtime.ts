/**
 * Builds the runtime a role's resolved config names (the config loader has already applied the
 * precedence: env, config.json, role file front matter).
 *
 * Agent CLIs run with a config/home directory of their own per task (`.loom/agent-homes/…`), so
 * runs share no settings or sessions; it is seeded once from the user's own login and settings
 * (`~/.claude/.credentials.json`, `~/.codex/auth.json` and `config.toml`) so a logged-in CLI stays
 * logged in.
 */
import os from 'node:os';
import path from 'node:path';
import type { RoleConfig } from '../core/config-model.js';
import { LoomError } from '../core/errors.js';
import type { RuntimeChoice } from '../core/vocabulary.js';
import { RUNTIME_NAMES } from '../core/vocabulary.js';
import { bwrapProblem, bwrapStatus } from '../process/sandbox-probe.js';
import { CLAUDE_ENV_PASSTHROUGH, ClaudeRuntime, claudeConfigDir } from './claude-runtime.js';
import { codexHome } from './codex-home.js';
import { CODEX_ENV, CodexRuntime } from './codex-runtime.js';
import { commandHead, findExecutable } from './command-path.js';
import { CommandRuntime, resolveCommand } from './command-runtime.js';
import { GEMINI_ENV, GeminiRuntime } from './gemini-runtime.js';
import { OPENCODE_ENV, OpencodeRuntime, userOpencodeDirs } from './opencode-runtime.js';
import type { AgentRuntime } from './runtime.js';
import { ScriptRuntime } from './script-runtime.js';
import { seedFiles } from './seed-files.js';
import { taskHome } from './task-home.js';

export class RuntimeConfigError extends LoomError {
  constructor(message: string) {
    super('runtime_config', message, { userFixable: true });
  }
}

/** The agent CLIs, each with the executable it runs when `command` does not name another. */
const CLI_BINARIES = { claude: 'claude', codex: 'codex', gemini: 'gemini', opencode: 'opencode' } as const;
type CliRuntime = keyof typeof CLI_BINARIES;

/** Files seeded from the user's own config dir (under `$HOME`) into each task's home. */
const SEEDED = {
  claude: { dir: '.claude', files: ['.credentials.json'] },
  codex: { dir: '.codex', files: ['auth.json', 'config.toml'] },
  gemini: { dir: '.gemini', files: ['settings.json', 'oauth_creds.json', 'google_accounts.json'] },
} as const;

/**
 * Builds the runtime for a role. `root`, the repository root, resolves a relative executable path
 * in `command` (`./scripts/agent.sh`, `node_modules/.bin/claude`): agents run in the issue's
 * worktree, but the path names the repository's file.
 *
 * A role sandboxed with bubblewrap where bubblewrap is missing or cannot create a sandbox gets no
 * runtime: `RuntimeConfigError` saying what to do, and no run starts.
 */
export function createRuntime(role: string, config: RoleConfig, root?: string): AgentRuntime {
  if (config.sandbox.type === 'bwrap') {
    const sandbox = bwrapStatus();
    if (!sandbox.ok) throw new RuntimeConfigError(`role ${role}: ${bwrapProblem(sandbox)}`);
  }
  const name = config.runtime;
  const home = process.env.HOME ?? os.homedir();
  const command = config.command === undefined || name === undefined || name === 'script' ? config.command : configuredCommand(name, config.command, root);
  const cli = command ? { command } : {};
  switch (name) {
    case 'script':
      return new ScriptRuntime();
    case 'command': {
      if (command === undefined) throw new RuntimeConfigError(`role ${role} uses the command runtime but has no command (roles.${role}.command)`);
      return new CommandRuntime({ command });
    }
    case 'claude':
      return {
        name: 'claude',
        run: (context) => {
          seedFiles(path.join(home, SEEDED.claude.dir), claudeConfigDir(context), SEEDED.claude.files);
          return new ClaudeRuntime(cli).run(context);
        },
      };
    case 'codex':
      return new CodexRuntime({
        ...cli,
        home: (context) => {
          const dir = codexHome(taskHome(context, 'codex'));
          seedFiles(path.join(home, SEEDED.codex.dir), dir, SEEDED.codex.files);
          return dir;
        },
      });
    case 'gemini':
      // GEMINI_CLI_HOME is the directory that holds `.gemini/` (settings, OAuth login, chats).
      return new GeminiRuntime({
        ...cli,
        home: (context) => {
          const dir = taskHome(context, 'gemini');
          seedFiles(path.join(home, SEEDED.gemini.dir), path.join(dir, '.gemini'), SEEDED.gemini.files);
          return dir;
        },
      });
    case 'opencode':
      // The runtime seeds the home once from the user's opencode config and auth.json itself.
      return new OpencodeRuntime({ ...cli, home: (context) => taskHome(context, 'opencode') });
    case undefined:
      throw new RuntimeConfigError(`role ${role} has no runtime; set roles.${role}.runtime or the top-level "runtime" in .loom/config.json`);
    default: {
      const unknown: never = name;
      throw new RuntimeConfigError(`role ${role}: runtime "${String(unknown)}" has no adapter (available: ${RUNTIME_NAMES.join(', ')})`);
    }
  }
}

/**
 * `command` with a relative executable path resolved against `root`. Claude's and opencode's
 * `command` is the executable itself; the command runtime's, Codex's and Gemini's is a shell
 * command (prefix) whose first word is.
 */
function configuredCommand(runtime: Exclude<RuntimeChoice, 'script'>, command: string, root: string | undefined): string {
  if (root === undefined) return command;
  if (runtime === 'claude' || runtime === 'opencode') return command.includes('/') && !path.isAbsolute(command) ? path.resolve(root, command) : command;
  return resolveCommand(command, root);
}

/** What a role's runtime will execute, and whether it can. */
export interface ExecutableCheck {
  runtime: RuntimeChoice;
  /** The executable as configured (`./scripts/agent.sh`, `claude`); null for the built-in script agent or a command Loom cannot read statically. */
  word: string | null;
  /** Where it was found. */
  path: string | null;
  /** Why it cannot run, in one line; null when it can (or cannot be told without running it). */
  problem: string | null;
}

/**
 * Checks the executable `runtime` would run for a role, without running it: a command's first
 * word or an agent CLI must be an executable file (relative paths against `root`) or be found on
 * the `PATH` the agent gets.
 */
export function checkExecutable(role: string, config: RoleConfig, runtime: RuntimeChoice, root: string, env: NodeJS.ProcessEnv = process.env): ExecutableCheck {
  if (runtime === 'script') return { runtime, word: null, path: null, problem: null };
  if (runtime === 'command' && config.command === undefined) return { runtime, word: null, path: null, problem: `the command runtime needs a command (roles.${role}.command)` };
  const configured = config.command ?? CLI_BINARIES[runtime as CliRuntime];
  const word = runtime === 'claude' || runtime === 'opencode' ? configured : (commandHead(configured)?.word ?? null);
  if (word === null) return { runtime, word: null, path: null, problem: null };
  const found = findExecutable(word, root, env);
  return 'path' in found ? { runtime, word, path: found.path, problem: null } : { runtime, word, path: null, problem: found.problem };
}

/** How an agent CLI can be logged in, as it reaches the agent: variables Loom passes through and files it seeds into the task's home. */
export interface AgentAuth {
  /** Variables that carry a key or select a cloud login, and that Loom passes to the agent. */
  env: string[];
  /** Login files (absolute) copied into each task's home. */
  files: string[];
}

/**
 * A passed variable that is a login by itself: a key, a token (CLAUDE_CODE_OAUTH_TOKEN too), a
 * key file. Provider switches (CLAUDE_CODE_USE_BEDROCK, GOOGLE_GENAI_USE_VERTEXAI) are not: the
 * cloud credentials they need do not reach the agent.
 */
const AUTH_VARIABLE = /(_API_KEY|_AUTH_TOKEN|_OAUTH_TOKEN|_APPLICATION_CREDENTIALS)$/;

/** Where each agent CLI's login may come from, such that it reaches the agent Loom runs. */
export function agentAuth(runtime: CliRuntime, env: NodeJS.ProcessEnv = process.env): AgentAuth {
  const home = env.HOME ?? os.homedir();
  const passed = { claude: CLAUDE_ENV_PASSTHROUGH, codex: CODEX_ENV, gemini: GEMINI_ENV, opencode: OPENCODE_ENV }[runtime];
  const files =
    runtime === 'opencode'
      ? [path.join(userOpencodeDirs(env).dataDir, 'auth.json')]
      : [path.join(home, SEEDED[runtime].dir, { claude: '.credentials.json', codex: 'auth.json', gemini: 'oauth_creds.json' }[runtime])];
  return { env: passed.filter((name) => AUTH_VARIABLE.test(name)), files };
}
