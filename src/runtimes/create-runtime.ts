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
import { RUNTIME_NAMES } from '../core/vocabulary.js';
import { ClaudeRuntime, claudeConfigDir } from './claude-runtime.js';
import { codexHome } from './codex-home.js';
import { CodexRuntime } from './codex-runtime.js';
import { CommandRuntime } from './command-runtime.js';
import { GeminiRuntime } from './gemini-runtime.js';
import { OpencodeRuntime } from './opencode-runtime.js';
import type { AgentRuntime } from './runtime.js';
import { ScriptRuntime } from './script-runtime.js';
import { seedFiles } from './seed-files.js';
import { taskHome } from './task-home.js';

export class RuntimeConfigError extends LoomError {
  constructor(message: string) {
    super('runtime_config', message, { userFixable: true });
  }
}

export function createRuntime(role: string, config: RoleConfig): AgentRuntime {
  const name = config.runtime;
  const home = process.env.HOME ?? os.homedir();
  switch (name) {
    case 'script':
      return new ScriptRuntime();
    case 'command': {
      const command = config.command;
      if (command === undefined) throw new RuntimeConfigError(`role ${role} uses the command runtime but has no command (roles.${role}.command)`);
      return new CommandRuntime({ command });
    }
    case 'claude':
      return {
        name: 'claude',
        run: (context) => {
          seedFiles(path.join(home, '.claude'), claudeConfigDir(context), ['.credentials.json']);
          return new ClaudeRuntime({ ...(config.command ? { command: config.command } : {}) }).run(context);
        },
      };
    case 'codex':
      return new CodexRuntime({
        ...(config.command ? { command: config.command } : {}),
        home: (context) => {
          const dir = codexHome(taskHome(context, 'codex'));
          seedFiles(path.join(home, '.codex'), dir, ['auth.json', 'config.toml']);
          return dir;
        },
      });
    case 'gemini':
      // GEMINI_CLI_HOME is the directory that holds `.gemini/` (settings, OAuth login, chats).
      return new GeminiRuntime({
        ...(config.command ? { command: config.command } : {}),
        home: (context) => {
          const dir = taskHome(context, 'gemini');
          seedFiles(path.join(home, '.gemini'), path.join(dir, '.gemini'), ['settings.json', 'oauth_creds.json', 'google_accounts.json']);
          return dir;
        },
      });
    case 'opencode':
      // The runtime seeds the home once from the user's opencode config and auth.json itself.
      return new OpencodeRuntime({ ...(config.command ? { command: config.command } : {}), home: (context) => taskHome(context, 'opencode') });
    case undefined:
      throw new RuntimeConfigError(`role ${role} has no runtime; set roles.${role}.runtime or the top-level "runtime" in .loom/config.json`);
    default: {
      const unknown: never = name;
      throw new RuntimeConfigError(`role ${role}: runtime "${String(unknown)}" has no adapter (available: ${RUNTIME_NAMES.join(', ')})`);
    }
  }
}
