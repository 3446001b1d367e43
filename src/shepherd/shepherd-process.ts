/**
 * `loom shepherd <issue>`: the process around one issue's lifecycle (lifecycle.ts) — taking over
 * the progress record (or claiming the issue when run by hand), the heartbeat, `loom:abort`,
 * graceful stop on SIGTERM, and the terminal status written last.
 *
 * Exit codes are a contract with the daemon and with users (docs/shepherd.md): `ShepherdExit`.
 */
import type { LoomConfig } from '../core/config-model.js';
import type { LoomPaths } from '../config/paths.js';
import { Label } from '../core/labels.js';
import { ProgressStore } from '../process/progress-store.js';
import { TaskRecorder } from '../process/task-recorder.js';
import type { Tracker } from '../tracker/tracker.js';
import { newTaskId } from '../process/new-task.js';
import { claimIssue } from '../steps/claim-issue.js';
import { UserError } from '../core/errors.js';
import { runLifecycle } from './lifecycle.js';
import { ShepherdExit } from './shepherd-exit.js';



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
    const claim = await claimIssue({ progress, tracker, issue, task_id: newTaskId(), output_file: '(terminal)', now: new Date() });
    if (!claim.ok && claim.reason === 'owned') throw new UserError(`#${issue} already has a shepherd (task ${claim.owner?.task_id ?? '?'}); see \`loom status\``);
    if (!claim.ok) throw new UserError(`#${issue} is not ready to build (it needs the ${Label.issue} label and must be open); see \`loom issue show ${issue}\``);
    record = claim.record;
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
    const result = await runLifecycle(current, {
      paths,
      config,
      tracker,
      recorder,
      signal: controller.signal,
      forceMerge: opts.forceMerge,
      log: (line) => log(`shepherd #${issue}: ${line}`),
      logFile: record.output_file === '(terminal)' ? null : record.output_file,
    });
    if (result.status === 'stopped') {
      const now = await tracker.getIssue(issue);
      if (now?.state === 'open') {
        if (stopReason === 'abort') await tracker.comment(issue, `Loom: stopped by \`${Label.abort}\`; returned to \`${Label.issue}\`. Work so far is kept on its branch.`);
        await tracker.updateLabels(issue, { add: [Label.issue], remove: [Label.abort] });
      }
      const why = stopReason === 'abort' ? 'aborted by loom:abort' : stopReason === 'shutdown' ? 'stopped for shutdown' : result.message;
      recorder.finish('stopped', { message: why, exit_code: ShepherdExit.shutdown, pr_number: result.prNumber });
      return ShepherdExit.shutdown;
    }
    recorder.finish(result.status, { message: result.message, exit_code: result.exit, merged: result.merged, pr_number: result.prNumber });
    log(`shepherd #${issue}: ${result.status}: ${result.message}`);
    return result.exit;
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  }
}
