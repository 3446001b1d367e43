/**
 * The `loom` command line. One error boundary: a `UserError` (or a usage error) prints one line
 * and exits 2; anything unexpected prints the stack, says it is a bug, and exits 1.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import { ROLE_NAMES } from '../core/vocabulary.js';
import { nearestName } from '../core/edit-distance.js';
import type { RoleName } from '../core/vocabulary.js';
import type { Mode } from '../core/planner.js';
import { TrackerError } from '../tracker/tracker-errors.js';
import { missingIssue, openTracker, parseIssueNumber, requireConfig, requirePaths, withTracker } from './context.js';
import { LoomError, UserError } from '../core/errors.js';
import { systemErrorLine } from './system-error.js';
import type { LoomConfig } from '../core/config-model.js';
import { isRedisUrl } from '../core/config-model.js';
import type { LoomPaths } from '../config/paths.js';
import { endQuietlyWhenStdoutCloses, ignoreClosedOutput } from './stdout-closed.js';
import { registerIssueCommands } from './issue-commands.js';
import { registerServiceCommands } from './service-command.js';
import { parsePort, registerObservabilityCommands } from './observability-commands.js';

// Each command loads the modules it runs only when it runs (`import()` in its action): a
// `loom shepherd` does not load the daemon, the dashboard, the queue or the status reports, and
// `loom --version` loads none of them (docs/BENCHMARKS.md, "Start-up").
const out = (line: string) => process.stdout.write(`${line}\n`);
/**
 * How printed hints spell a Loom command, so they work as printed: `loom` when that is this Loom
 * on the PATH, else its full path — or what `loom demo` sets for the commands it runs in its
 * sample repository (`cd <repo> && <this Loom>`).
 */
const hintCommand = async () => process.env.LOOM_HINT_COMMAND ?? (await import('../process/typed-command.js')).typedLoom().command;
const stamp = () => new Date().toISOString().slice(11, 19);

function buildProgram(): Command {
  const program = new Command('loom')
    .description("Keeps a repository's issue backlog flowing through AI coding agents, unattended.")
    .version('0.1.0')
    .option('--force', 'force mode: auto-promote proposals and auto-merge approved PRs')
    .allowExcessArguments(true)
    .enablePositionalOptions()
    .exitOverride()
    .configureOutput({ writeErr: (text) => process.stderr.write(usageLine(text)), outputError: (text, write) => write(text) })
    .action(async (options: { force?: boolean }, command: Command) => {
      const [unknown] = command.args;
      if (unknown !== undefined) {
        const near = nearestName(unknown, command.createHelp().visibleCommands(command).map((c) => c.name()));
        throw new UserError(`unknown command "${unknown}"${near !== undefined ? ` (did you mean ${near}?)` : ''}; run \`loom --help\` for the commands`);
      }
      process.exitCode = await startDaemon(options.force === true);
    });

  program
    .command('start')
    .description('run the daemon until Ctrl+C, SIGTERM or `loom stop`; --detach runs it in the background')
    .option('--force', 'force mode: auto-promote proposals and auto-merge approved PRs')
    .option('--detach', 'run in the background (log: .loom/logs/daemon.log) and return once it runs')
    .option('--dashboard [port]', 'also serve the dashboard (loom dashboard) while the daemon runs; port 0 or none: any free port')
    .addOption(new Option('--log-file <file>', 'internal: stdout is this file; write dated lines and rotate it by size').hideHelp())
    .action(async (options: { force?: boolean; detach?: boolean; logFile?: string; dashboard?: string | boolean }) => {
      const force = options.force === true || program.opts<{ force?: boolean }>().force === true;
      const dashboard = options.dashboard === undefined ? null : parsePort(options.dashboard);
      process.exitCode = options.detach === true ? await startInBackground(force, dashboard) : await startDaemon(force, options.logFile, dashboard);
    });

  program
    .command('iterate')
    .description('run exactly one iteration and print its one-line summary')
    .option('--force', 'force mode for this iteration')
    .addOption(new Option('--mode <mode>', 'internal: normal, drain or stop').choices(['normal', 'drain', 'stop']).default('normal').hideHelp())
    .action(async (options: { force?: boolean; mode: Mode }) => {
      const paths = requirePaths();
      const config = requireConfig(paths);
      const [{ acquireLock, liveLock, releaseLock }, { EXIT_SESSION_LOST }, { newTaskId }, { runIteration }, { SessionMismatchError }] = await Promise.all([
        import('../state/daemon-lock.js'),
        import('../daemon/parent-loop.js'),
        import('../process/new-task.js'),
        import('../daemon/iteration.js'),
        import('../state/state-store.js'),
      ]);
      const session = process.env.LOOM_DAEMON_SESSION;
      let ownSession: string | null = null;
      if (session === undefined) {
        ownSession = newTaskId();
        acquireLock(paths.lock, ownSession, 'iterate');
      } else if (liveLock(paths.lock)?.session_id !== session) {
        process.stderr.write('loom: this iteration belongs to a daemon that no longer holds the lock\n');
        process.exitCode = EXIT_SESSION_LOST;
        return;
      }
      const tracker = await openTracker(paths);
      try {
        const result = await runIteration({ paths, config, tracker, force: options.force === true, mode: options.mode, ...(session ? { session } : {}) });
        out(result.summary);
      } catch (error) {
        if (error instanceof SessionMismatchError) {
          process.stderr.write(`loom: ${error.message}\n`);
          process.exitCode = EXIT_SESSION_LOST;
          return;
        }
        // A retryable failure (a rate-limited or unreachable tracker) is a pause, not a failure:
        // the daemon keeps polling and resumes by itself (the circuit breaker makes the waiting
        // calls free).
        if (error instanceof TrackerError && error.retryable) {
          out(`TRACKER_UNAVAILABLE ${error.message}`);
          return;
        }
        throw error;
      } finally {
        tracker.dispose();
        if (ownSession !== null) releaseLock(paths.lock, ownSession);
      }
    });

  program
    .command('status')
    .description('read-only report of the daemon, issues, shepherds and roles')
    .option('--json', 'print one JSON document')
    .option('--watch', 'redraw it in place every second until Ctrl+C (with --json: one line per change)')
    .action(async (options: { json?: boolean; watch?: boolean }) => {
      if (options.watch === true) return (await import('./observability-commands.js')).watchStatusCommand(requirePaths(), options.json === true, await hintCommand());
      const [{ collectStatus }, { renderStatus }] = await Promise.all([import('../status/collect-status.js'), import('../status/status-report.js')]);
      const report = await collectStatus(requirePaths(), { cli: await hintCommand() });
      out(options.json ? JSON.stringify(report, null, 2) : renderStatus(report));
    });

  program
    .command('spawn')
    .description('start a shepherd for an issue now (refused if it is closed or already owned)')
    .argument('<issue>', 'issue number')
    .option('--force-merge', 'merge without waiting for the Champion')
    .action(async (issueArg: string, options: { forceMerge?: boolean }) => {
      const issue = parseIssueNumber(issueArg);
      const paths = requirePaths();
      const config = requireConfig(paths);
      await requireRunnableRoles(paths, config);
      const { spawnIssue } = await import('../daemon/spawn-issue.js');
      const shepherds = config.executor.kind === 'local' ? config.executor.shepherds : 'process';
      const spawned = await withTracker(paths, { actor: 'human' }, (tracker) => spawnIssue({ paths, tracker, issue, forceMerge: options.forceMerge === true, now: new Date(), shepherds, minFreeDisk: config.minFreeDisk }));
      out(`Spawned shepherd for #${issue} (${spawned.task.hosted === true ? `in the shepherd host, pid ${spawned.task.pid}` : `pid ${spawned.task.pid}`}); log: ${spawned.task.output_file}`);
      if (spawned.daemonPid !== null) out(`The running daemon (pid ${spawned.daemonPid}) adopts it on its next iteration.`);
    });

  program
    .command('stop')
    .description('ask the daemon to shut down gracefully (creates .loom/stop-daemon)')
    .action(async () => {
      const paths = requirePaths();
      fs.writeFileSync(paths.stopSignal, `${new Date().toISOString()}\n`);
      const daemon = (await import('../state/daemon-lock.js')).liveLock(paths.lock);
      if (daemon?.holder === 'daemon') out(`Stop signal sent; the daemon (pid ${daemon.pid}) finishes active shepherds and exits.`);
      else out('Stop signal written; no daemon is running now, so the next `loom start` clears it.');
    });

  program
    .command('init')
    .description('set up .loom/ (config, local tracker, git-ignore) in this git repository')
    .option('--claude', 'also write Claude Code slash commands (.claude/commands/loom.md, shepherd.md)')
    .action(async (options: { claude?: boolean }) => (await import('../setup/init-repo.js')).runInit({ cwd: process.cwd(), claude: options.claude === true, log: out }));

  program
    .command('migrate')
    .description("convert the original Loom's .loom/config.json into Loom's (the original is kept as config.json.orig) and say what was mapped and dropped")
    .option('--dry-run', 'print what would be written; write nothing')
    .action(async (options: { dryRun?: boolean }) => {
      (await import('../setup/migrate.js')).runMigrate({ cwd: process.cwd(), dryRun: options.dryRun === true, log: out });
    });

  program
    .command('shepherd')
    .description('drive one issue through its lifecycle in this process (the daemon runs the same lifecycle in the background, in its shepherd host)')
    .argument('<issue>', 'issue number')
    .option('--force-merge', 'merge as soon as the PR is approved')
    .addOption(new Option('--task <id>', 'internal: task id given by the launcher').hideHelp())
    .addOption(new Option('--fence <fence>', 'internal: run for a queue job of `loom worker` with this fence').hideHelp())
    .action(async (issueArg: string, options: { forceMerge?: boolean; task?: string; fence?: string }) => {
      const issue = parseIssueNumber(issueArg);
      const paths = requirePaths();
      const config = requireConfig(paths);
      const { runShepherd } = await import('../shepherd/shepherd-process.js');
      process.exitCode = await withTracker(paths, {}, (tracker) =>
        runShepherd({ paths, config, tracker, issue, forceMerge: options.forceMerge === true, log: (l) => out(`${stamp()} ${l}`), ...(options.task ? { taskId: options.task } : {}), ...(options.fence ? { fence: options.fence } : {}) }),
      );
    });

  program
    .command('shepherd-host', { hidden: true })
    .description('internal: run the shepherds handed to this repository\'s shepherd host (executor.shepherds "host")')
    .action(async () => {
      const paths = requirePaths();
      const [{ HOST_IDLE_MS, HOST_POLL_MS, runShepherdHost }, { backgroundLog }] = await Promise.all([import('../shepherd/shepherd-host.js'), import('../daemon/detach.js')]);
      const idle = Number(process.env.LOOM_HOST_IDLE_MS ?? HOST_IDLE_MS);
      // Started by Loom, its stdout is its log file: rotated by size as the daemon's log is (on a terminal, nothing rotates).
      const log = backgroundLog(paths.hostLog);
      process.exitCode = await withTracker(paths, {}, (tracker) =>
        runShepherdHost({ paths, tracker, loadConfig: () => requireConfig(paths), log, idleMs: Number.isFinite(idle) && idle >= 0 ? idle : HOST_IDLE_MS, pollMs: HOST_POLL_MS }),
      );
    });

  program
    .command('worker')
    .description('run shepherd jobs from the Redis queue of a daemon using the bullmq executor, in this clone (docs/distributed.md)')
    .option('--redis <url>', 'the Redis of the queue, redis://HOST:6379 (default: LOOM_REDIS_URL, then the config\'s executor.redis)')
    .option('--concurrency <n>', 'shepherd jobs run at once', '1')
    .action(async (options: { redis?: string; concurrency: string }) => {
      const concurrency = /^\d+$/.test(options.concurrency) ? Number(options.concurrency) : NaN;
      if (!Number.isSafeInteger(concurrency) || concurrency < 1) throw new UserError(`--concurrency must be a positive whole number, got "${options.concurrency}"`);
      const paths = requirePaths();
      const config = requireConfig(paths);
      const redis = options.redis ?? (config.executor.kind === 'bullmq' ? config.executor.redis : undefined);
      if (redis === undefined) throw new UserError('no Redis to take jobs from; pass --redis redis://HOST:6379 (or set LOOM_REDIS_URL)');
      if (!isRedisUrl(redis)) throw new UserError(`--redis must be a Redis URL like redis://HOST:6379, got "${redis}"`);
      if (config.tracker.type !== 'github') throw new UserError('loom worker needs the GitHub tracker (the local tracker lives on one machine); set "tracker": { "type": "github", ... } in .loom/config.json');
      // Every job's shepherd needs the tracker: a worker without a token would take jobs only to fail them.
      (await openTracker(paths)).dispose();
      await requireRunnableRoles(paths, config);
      const { originProblem, runWorker } = await import('../worker/worker.js');
      const origin = await originProblem(paths.root);
      if (origin !== null) throw new UserError(origin);
      process.exitCode = await runWorker({ paths, config, redis, concurrency, log: (l) => out(`${stamp()} ${l}`), ...(process.env.LOOM_WORKER_LOCK_MS ? { lockDuration: Number(process.env.LOOM_WORKER_LOCK_MS) } : {}) });
    });

  program
    .command('role')
    .description(`run one role once (${ROLE_NAMES.join(', ')})`)
    .argument('<name>', 'role name')
    .addOption(new Option('--task <id>', 'internal: task id given by the launcher').hideHelp())
    .action(async (name: string, options: { task?: string }) => {
      if (!(ROLE_NAMES as readonly string[]).includes(name)) throw new UserError(`unknown role "${name}"; roles are ${ROLE_NAMES.join(', ')}`);
      const paths = requirePaths();
      const config = requireConfig(paths);
      const { runRole } = await import('../roles/role-process.js');
      process.exitCode = await withTracker(paths, {}, (tracker) =>
        runRole({ paths, config, tracker, role: name as RoleName, log: (l) => out(`${stamp()} ${l}`), ...(options.task ? { taskId: options.task } : {}) }),
      );
    });

  program
    .command('demo')
    .description('run Loom on a throw-away sample repository with the built-in script agent')
    .option('--dir <path>', 'create the sample repository here (an empty or new directory) instead of a temporary one')
    .option('--dashboard', 'serve the dashboard while it runs, and keep it open afterwards until Ctrl+C')
    .action(async (options: { dir?: string; dashboard?: boolean }) => {
      if (options.dir !== undefined && fs.existsSync(options.dir) && fs.readdirSync(options.dir).length > 0) throw new UserError(`${options.dir} is not empty; give a new or empty directory`);
      const { runDemo } = await import('../demo/demo.js');
      process.exitCode = await runDemo(out, options.dir === undefined ? undefined : path.resolve(options.dir), options.dashboard === true);
    });

  program
    .command('logs')
    .description('show the log of the latest shepherd run for an issue (or of a role, or of the background daemon); -f follows it')
    .argument('<issue|role|daemon>', 'issue number, role name, or daemon')
    .option('-f, --follow', 'keep printing until that run finishes (or Ctrl+C)')
    .option('--all', 'every run, oldest first')
    .action(async (target: string, options: { follow?: boolean; all?: boolean }) => {
      if (options.follow === true) endQuietlyWhenStdoutCloses();
      const { showLogs } = await import('./logs-command.js');
      await showLogs(requirePaths(), target, { follow: options.follow === true, all: options.all === true }, (text) => process.stdout.write(text));
    });

  program
    .command('why')
    .description('why is this issue not being worked on: every gate, in the order the daemon applies them')
    .argument('<issue>', 'issue number')
    .option('--json', 'print JSON')
    .action(async (issueArg: string, options: { json?: boolean }) => {
      const number = parseIssueNumber(issueArg);
      const paths = requirePaths();
      const config = requireConfig(paths);
      const [{ buildWhy, renderWhy, whyFacts, WHY_PAGE }, { FileStateStore }] = await Promise.all([import('../status/why-report.js'), import('../state/state-store.js')]);
      const cli = await hintCommand();
      const report = await withTracker(paths, { readonly: true }, async (tracker) => {
        const [snapshot, issue] = await Promise.all([tracker.snapshot({ page: WHY_PAGE }), tracker.getIssue(number)]);
        if (issue === null) throw await missingIssue(tracker, number, 'why');
        const facts = await whyFacts(tracker, issue, snapshot, { paths, config });
        return buildWhy({ paths, config, state: new FileStateStore(paths.state).peek(), snapshot, issue, number, now: new Date(), facts, cli });
      });
      out(options.json ? JSON.stringify(report, null, 2) : renderWhy(report));
    });

  program
    .command('doctor')
    .description('check the agent runtimes (installed, version, auth) and every role\'s runtime, without calling any API')
    .option('--json', 'print JSON')
    .action(async (options: { json?: boolean }) => {
      const paths = requirePaths();
      const { renderDoctor, runDoctor } = await import('./doctor-command.js');
      const report = await runDoctor(paths.root, requireConfig(paths));
      out(options.json ? JSON.stringify(report, null, 2) : renderDoctor(report));
    });

  registerIssueCommands(program, out);
  registerServiceCommands(program, out);
  registerObservabilityCommands(program, out, hintCommand);
  // Only the bare `loom` takes extra words (to name an unknown command); every command refuses them.
  const refuseExtra = (command: Command): void => {
    for (const sub of command.commands) {
      sub.allowExcessArguments(false);
      refuseExtra(sub);
    }
  };
  refuseExtra(program);
  return program;
}

/** Commander's usage errors as one line in Loom's voice: `loom: <problem> (run loom --help)`. */
function usageLine(text: string): string {
  // Commander puts its suggestion on a line of its own: "unknown option '--jsn'\n(Did you mean --json?)".
  let message = text.trim().replace(/^error: /, '').replace(/\s*\n\s*/g, ' ').replace('(Did you mean', '(did you mean').replace(/\.$/, '');
  // `loom issue comment 3 looks good`: a text of several words is one argument only when quoted.
  if (/^too many arguments/.test(message)) message += ' (quote a text of several words: "like this")';
  return message.length > 0 && !message.startsWith('Usage:') ? `loom: ${message}; run \`loom --help\` for usage\n` : text;
}

/** Refuses, in one line, to start work that every run of a role would fail (a missing or non-executable agent). */
async function requireRunnableRoles(paths: LoomPaths, config: LoomConfig): Promise<void> {
  const [{ unrunnableRoles }, { missingDefaultBranch }] = await Promise.all([import('./doctor-command.js'), import('../git/git.js')]);
  const problem = unrunnableRoles(paths.root, config) ?? (await missingDefaultBranch(paths.root, config.defaultBranch));
  if (problem !== null) throw new UserError(problem);
}

async function startDaemon(force: boolean, logFile?: string, dashboardPort: number | null = null): Promise<number> {
  const paths = requirePaths();
  const config = requireConfig(paths);
  await requireRunnableRoles(paths, config);
  const [{ runDaemon }, { backgroundLog }, { cleanupLeftovers }, { dashboardBeside }] = await Promise.all([
    import('../daemon/parent-loop.js'),
    import('../daemon/detach.js'),
    import('../daemon/cleanup.js'),
    import('./observability-commands.js'),
  ]);
  const log = logFile === undefined ? (line: string) => out(`${stamp()} ${line}`) : backgroundLog(logFile);
  for (const note of config.notes) log(`note: ${note}`);
  const prepare = async () => {
    await withTracker(paths, {}, (tracker) => cleanupLeftovers({ paths, config, tracker, snapshot: null, now: Date.now(), log, warn: (m) => log(`warning: ${m}`) }));
  };
  const services = dashboardPort === null ? undefined : () => dashboardBeside(paths, dashboardPort, log);
  // The daemon takes SIGTERM and SIGINT as stop requests while it runs, then lets them go; a
  // signal that comes as it exits (systemd sends SIGTERM right after `loom stop` returns) must not
  // kill it with the signal after a clean stop: these stay, and do nothing.
  const ignore = () => undefined;
  process.on('SIGTERM', ignore);
  process.on('SIGINT', ignore);
  return runDaemon({ paths, config, force, log, prepare, cli: await hintCommand(), ...(logFile === undefined ? {} : { logFile }), ...(services ? { services } : {}) });
}

/** `loom start --detach`: a bad config, an agent that cannot run or a running daemon is refused before anything starts. */
async function startInBackground(force: boolean, dashboardPort: number | null): Promise<number> {
  const paths = requirePaths();
  await requireRunnableRoles(paths, requireConfig(paths));
  const [{ startDetached }, { liveDashboard }] = await Promise.all([import('../daemon/detach.js'), import('../process/dashboard-record.js')]);
  const result = await startDetached({ paths, force, ...(dashboardPort === null ? {} : { args: ['--dashboard', String(dashboardPort)] }) });
  if (!result.started) {
    process.stderr.write(`loom: the daemon did not start: ${result.message}${result.exitCode === 2 ? '' : ` (exit ${result.exitCode}; its log: ${paths.daemonLog})`}\n`);
    return result.exitCode === 2 ? 2 : 1;
  }
  const cli = await hintCommand();
  out(`Loom daemon running in the background (pid ${result.pid}${force ? ', force mode' : ''}).`);
  if (!result.ready) out(`It holds the lock but has not written its first state yet; \`${cli} status\` shows when it has.`);
  const dashboard = dashboardPort === null ? null : liveDashboard(paths.dashboard);
  if (dashboard !== null) out(`Dashboard: ${dashboard.url}`);
  out(`Log: ${result.logFile} (follow it: \`${cli} logs daemon -f\`)`);
  out(`Watch: \`${cli} status\`   Stop: \`${cli} stop\``);
  return 0;
}

export async function main(argv: string[]): Promise<number> {
  ignoreClosedOutput();
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version' || error.code === 'commander.help') return 0;
      return 2;
    }
    // Loom's own expected failures: what the user can fix, what will pass by itself (a held lock, a
    // paused tracker), and every tracker refusal. One line, exit 2.
    if (error instanceof LoomError && (error.userFixable || error.retryable || error instanceof TrackerError)) {
      process.stderr.write(`loom: ${error.message}\n`);
      return 2;
    }
    const system = systemErrorLine(error, process.cwd());
    if (system !== null) {
      process.stderr.write(`loom: ${system}\n`);
      return 2;
    }
    process.stderr.write(`${(error as Error).stack ?? String(error)}\nloom: this is a bug; please report it with the output above\n`);
    return 1;
  }
}

const code = await main(process.argv);
process.exitCode = code;
// Exit only once stdout and stderr have handed everything to the OS: a pipe that is full (a slow
// reader, `| head`) queues the rest in this process, and exiting at once would drop it.
// A stream whose reader went away (EPIPE) is destroyed: nothing more can reach anyone.
await Promise.all([process.stdout, process.stderr].map((stream) => new Promise<void>((resolve) => (stream.destroyed || stream.writableLength === 0 ? resolve() : stream.write('', () => resolve())))));
process.exit(code);
