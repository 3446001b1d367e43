/**
 * `loom service install|uninstall|status`: the daemon as a user service (systemd on Linux,
 * launchd on macOS) for this repository. Parse, call `setup/service.ts`, print.
 */
import os from 'node:os';
import type { Command } from 'commander';
import { defaultConfig } from '../core/config-model.js';
import { UserError } from '../core/errors.js';
import type { ServiceContext } from '../setup/service.js';
import { requireConfig, requirePaths } from './context.js';

/** Install needs a valid config (its shutdownGrace sets the stop timeout); status and uninstall do not. */
function context(force: boolean, strict: boolean, out: (line: string) => void): ServiceContext {
  const paths = requirePaths();
  let shutdownGraceMs = defaultConfig().shutdownGrace;
  try {
    shutdownGraceMs = requireConfig(paths).shutdownGrace;
  } catch (error) {
    if (strict || !(error instanceof UserError)) throw error;
  }
  return { paths, shutdownGraceMs, force, env: process.env, platform: process.platform, home: os.homedir(), uid: process.getuid?.() ?? 0, log: out };
}

export function registerServiceCommands(program: Command, out: (line: string) => void): void {
  const service = program.command('service').description('run the daemon as a user service (systemd, launchd): started at login, restarted after a crash');
  service
    .command('install')
    .description('write and start the user service for this repository')
    .option('--force', 'the service runs the daemon in force mode')
    .option('--print', 'print the unit file instead of installing it')
    .action(async (options: { force?: boolean; print?: boolean }) => {
      const ctx = context(options.force === true, true, out);
      const { describeService, installService } = await import('../setup/service.js');
      if (options.print === true) process.stdout.write(describeService(ctx).text);
      else await installService(ctx);
    });
  service
    .command('uninstall')
    .description('stop the service (gracefully, as `loom stop`) and remove its unit file')
    .action(async () => (await import('../setup/service.js')).uninstallService(context(false, false, out)));
  service
    .command('status')
    .description("the service's unit file, what the service manager says, and the daemon")
    .option('--json', 'print JSON')
    .action(async (options: { json?: boolean }) => {
      const { renderServiceStatus, serviceStatus } = await import('../setup/service.js');
      const status = serviceStatus(context(false, false, out));
      out(options.json === true ? JSON.stringify(status, null, 2) : renderServiceStatus(status));
    });
}
