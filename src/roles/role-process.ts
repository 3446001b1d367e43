/**
 * `loom role <name>`: runs one support or generator role once. At this stage a role runs its
 * configured command (`roles.<name>.command`); the heartbeat, timeout, stall watchdog and the
 * progress record the daemon reads are the same as for shepherds.
 */
import type { LoomConfig, RoleName } from '../config/config.js';
import type { LoomPaths } from '../config/paths.js';
import { agentEnv } from '../process/agent-env.js';
import { ProgressStore } from '../process/progress-store.js';
import { runCommand } from '../process/run-command.js';
import { TaskRecorder } from '../process/task-recorder.js';
import { newTaskId, startingRecord } from '../daemon/start-shepherd.js';
import { UserError } from '../cli/user-error.js';

export async function runRole(opts: { paths: LoomPaths; config: LoomConfig; role: RoleName; taskId?: string; log: (line: string) => void }): Promise<number> {
  const { paths, config, role, log } = opts;
  const cfg = config.roles[role];
  if (cfg.command === undefined) throw new UserError(`role ${role} has nothing to run; set roles.${role}.command in .loom/config.json`);
  const progress = new ProgressStore(paths.progress);
  const file = progress.roleFile(role);
  let record = progress.read(file);
  if (opts.taskId === undefined) {
    record = startingRecord({ kind: 'role', task_id: newTaskId(), issue: null, role, output_file: '(terminal)', now: new Date() });
  } else if (record === null || record.task_id !== opts.taskId) {
    log(`role ${role}: task ${opts.taskId} is not the current run; exiting`);
    return 0;
  }
  const recorder = new TaskRecorder(progress, file, record, paths.wake);
  const controller = new AbortController();
  const onSignal = () => controller.abort();
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  recorder.start(role, config.heartbeatInterval);
  try {
    const result = await runCommand({
      command: cfg.command,
      cwd: paths.root,
      env: agentEnv(process.env, { LOOM_ROLE: role, LOOM_TASK_ID: record.task_id, LOOM_REPO_ROOT: paths.root }),
      stallTimeout: config.stallTimeout,
      timeout: cfg.timeout,
      signal: controller.signal,
      onStart: (pid) => recorder.agent(pid),
      onOutput: (chunk) => {
        process.stdout.write(chunk);
        recorder.output();
      },
    });
    const ok = result.outcome === 'exited' && result.exitCode === 0;
    const message = ok ? 'completed' : result.outcome === 'exited' ? `exited with code ${result.exitCode ?? '?'}` : result.outcome;
    recorder.finish(controller.signal.aborted ? 'stopped' : ok ? 'completed' : 'failed', { message, exit_code: ok ? 0 : 1 });
    log(`role ${role}: ${message}`);
    return ok ? 0 : 1;
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  }
}
