/**
 * `loom shepherd <issue>`: drives one claimed issue. At this stage the lifecycle is the builder
 * phase only (the configured builder command); the process management around it — taking over
 * the progress record, heartbeat, `loom:abort`, graceful stop on SIGTERM, the tracker writes at
 * the end — is the real thing the full lifecycle builds on.
 *
 * Exit codes are a contract with the daemon and with users (docs/shepherd.md): `ShepherdExit`.
 */
import type { LoomConfig } from '../config/config.js';
import type { LoomPaths } from '../config/paths.js';
import { Label } from '../core/labels.js';
import { agentEnv } from '../process/agent-env.js';
import { ProgressStore, viewOf } from '../process/progress-store.js';
import { runCommand } from '../process/run-command.js';
import { TaskRecorder } from '../process/task-recorder.js';
import type { Tracker } from '../tracker/tracker.js';
import { newTaskId, startingRecord } from '../daemon/start-shepherd.js';
import { UserError } from '../cli/user-error.js';

export const ShepherdExit = {
  success: 0,
  unexpected: 1,
  usage: 2,
  builderFailed: 3,
  testsFailed: 4,
  needsHuman: 5,
  shutdown: 6,
  skipped: 7,
  noChanges: 8,
} as const;

export interface ShepherdOptions {
  paths: LoomPaths;
  config: LoomConfig;
  tracker: Tracker;
  issue: number;
  /** Task id given by the launcher; absent when a user runs `loom shepherd N` by hand. */
  taskId?: string;
  forceMerge: boolean;
  log: (line: string) => void;
}

/** How often the shepherd looks for `loom:abort` on its issue, in heartbeats. */
const ABORT_CHECK_EVERY = 2;

export async function runShepherd(opts: ShepherdOptions): Promise<number> {
  const { paths, config, tracker, issue, log } = opts;
  const progress = new ProgressStore(paths.progress);
  const file = progress.shepherdFile(issue);
  let record = progress.read(file);

  if (opts.taskId === undefined) {
    // Run by hand: claim the issue the same way the daemon would.
    const task_id = newTaskId();
    const fresh = startingRecord({ kind: 'shepherd', task_id, issue, role: null, output_file: '(terminal)', now: new Date() });
    if (!progress.createExclusive(file, fresh)) {
      if (viewOf(record, Date.now()).alive) throw new UserError(`#${issue} already has a shepherd (task ${record?.task_id ?? '?'}); see \`loom status\``);
      progress.remove(file);
      if (!progress.createExclusive(file, fresh)) throw new UserError(`#${issue} was just claimed by another shepherd`);
    }
    if (!(await tracker.claim(issue))) {
      progress.remove(file);
      throw new UserError(`#${issue} is not ready to build (it needs the ${Label.issue} label and must be open); see \`loom issue show ${issue}\``);
    }
    record = fresh;
  } else if (record === null || record.task_id !== opts.taskId) {
    log(`shepherd #${issue}: task ${opts.taskId} does not own this issue any more; exiting`);
    return ShepherdExit.skipped;
  }

  const recorder = new TaskRecorder(progress, file, record, paths.wake);
  const controller = new AbortController();
  let stopReason: 'shutdown' | 'abort' | null = null;
  const stop = (why: 'shutdown' | 'abort') => {
    if (stopReason !== null) return;
    stopReason = why;
    log(`shepherd #${issue}: ${why === 'shutdown' ? 'asked to stop' : `${Label.abort} found`}; stopping the builder`);
    controller.abort();
  };
  const onSignal = () => stop('shutdown');
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  let beats = 0;
  recorder.start('builder', config.heartbeatInterval, () => {
    beats += 1;
    if (beats % ABORT_CHECK_EVERY !== 0) return;
    tracker.getIssue(issue).then(
      (current) => current?.labels.includes(Label.abort) && stop('abort'),
      () => undefined,
    );
  });

  try {
    const current = await tracker.getIssue(issue);
    if (current === null || current.state !== 'open' || !current.labels.includes(Label.building)) {
      recorder.finish('skipped', { message: `#${issue} is not claimed (closed or relabelled)`, exit_code: ShepherdExit.skipped });
      return ShepherdExit.skipped;
    }
    const builder = config.roles.builder;
    if (builder.command === undefined) {
      const message = 'no builder is configured (roles.builder.command in .loom/config.json)';
      await tracker.comment(issue, `Loom: ${message}; marking this issue \`${Label.blocked}\`.`);
      await tracker.updateLabels(issue, { add: [Label.blocked] });
      recorder.finish('blocked', { message, exit_code: ShepherdExit.needsHuman });
      return ShepherdExit.needsHuman;
    }
    log(`shepherd #${issue}: builder started: ${builder.command}`);
    const env = agentEnv(process.env, {
      LOOM_ISSUE: String(issue),
      LOOM_ISSUE_TITLE: current.title,
      LOOM_ROLE: 'builder',
      LOOM_TASK_ID: record.task_id,
      LOOM_REPO_ROOT: paths.root,
    });
    const result = await runCommand({
      command: builder.command,
      cwd: paths.root,
      env,
      stallTimeout: config.stallTimeout,
      timeout: builder.timeout,
      signal: controller.signal,
      onStart: (pid) => recorder.agent(pid),
      onOutput: (chunk) => {
        process.stdout.write(chunk);
        recorder.output();
      },
    });
    const logRef = record.output_file === '(terminal)' ? '' : ` Log: \`${record.output_file}\``;

    if (stopReason !== null) {
      const now = await tracker.getIssue(issue);
      if (now?.state === 'open') {
        if (stopReason === 'abort') await tracker.comment(issue, `Loom: stopped by \`${Label.abort}\`; returned to \`${Label.issue}\`.`);
        await tracker.updateLabels(issue, { add: [Label.issue], remove: [Label.abort] });
      }
      recorder.finish('stopped', { message: stopReason === 'abort' ? 'aborted by loom:abort' : 'stopped for shutdown', exit_code: ShepherdExit.shutdown });
      return ShepherdExit.shutdown;
    }
    if (result.outcome === 'exited' && result.exitCode === 0) {
      await tracker.close(issue, `Loom: built by the builder command in ${Math.round(result.duration / 100) / 10}s.${logRef}`);
      recorder.finish('completed', { message: 'builder succeeded; issue closed', exit_code: ShepherdExit.success });
      log(`shepherd #${issue}: done`);
      return ShepherdExit.success;
    }
    const reason =
      result.outcome === 'stalled'
        ? `the builder produced no output for ${Math.round(config.stallTimeout / 1000)}s and was killed`
        : result.outcome === 'timeout'
          ? `the builder ran past its ${Math.round(builder.timeout / 1000)}s timeout and was killed`
          : result.outcome === 'spawn-error'
            ? `the builder could not start: ${result.error ?? 'unknown error'}`
            : `the builder exited with code ${result.exitCode ?? 'unknown'}`;
    await tracker.comment(issue, `Loom: ${reason}; marking this issue \`${Label.blocked}\`.${logRef}`);
    await tracker.updateLabels(issue, { add: [Label.blocked] });
    recorder.finish('blocked', { message: reason, exit_code: ShepherdExit.builderFailed });
    log(`shepherd #${issue}: blocked: ${reason}`);
    return ShepherdExit.builderFailed;
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  }
}
