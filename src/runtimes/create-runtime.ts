/**
 * Picks the runtime for a role: the config's choice (`roles.<r>.runtime`, the top-level
 * `runtime`, or `command` when a command is set), else the role file's front matter.
 */
import type { RoleConfig } from '../config/config.js';
import type { RoleDefinition } from '../roles/role-file.js';
import { CommandRuntime } from './command-runtime.js';
import type { AgentRuntime } from './runtime.js';
import { ScriptRuntime } from './script-runtime.js';

export class RuntimeConfigError extends Error {
  readonly code = 'runtime_config';
}

export function createRuntime(role: string, config: RoleConfig, definition: RoleDefinition): AgentRuntime {
  const name = config.runtime ?? definition.runtime;
  switch (name) {
    case 'script':
      return new ScriptRuntime();
    case 'command': {
      const command = config.command ?? definition.command;
      if (command === undefined) throw new RuntimeConfigError(`role ${role} uses the command runtime but has no command (roles.${role}.command)`);
      return new CommandRuntime({ command });
    }
    case undefined:
      throw new RuntimeConfigError(`role ${role} has no runtime; set roles.${role}.runtime or the top-level "runtime" in .loom/config.json`);
    default:
      throw new RuntimeConfigError(`role ${role}: runtime "${name}" is not available in this build (available: script, command)`);
  }
}
