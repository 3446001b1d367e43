/**
 * Runs one shell command as its own process group, streaming its output, with two watchdogs:
 * output inactivity (`stallTimeout`: a command that prints nothing for that long is stalled) and
 * a total `timeout`. Either kills the whole group, so nothing the command started outlives it.
 */
import { spawn } from 'node:child_process';
import { signalGroup } from './process-identity.js';
import { terminateGroup } from './wait.js';

export interface RunCommandOptions {
  command: string;
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** No output for this long → stalled, ms. */
  stallTimeout: number;
  /** Total run time limit, ms. */
  timeout: number;
  /** Receives every chunk of stdout, and of stderr unless `onStderr` is given. */
  onOutput?: (chunk: Buffer) => void;
  /** Receives stderr on its own, so it cannot split a line of a stdout stream. */
  onStderr?: (chunk: Buffer) => void;
  signal?: AbortSignal;
  /** Called once the command's process (the leader of its group) exists. */
  onStart?: (pid: number) => void;
}

export interface RunCommandResult {
  outcome: 'exited' | 'stalled' | 'timeout' | 'aborted' | 'spawn-error';
  exitCode: number | null;
  /** Wall time, ms. */
  duration: number;
  error?: string;
}

export function runCommand(opts: RunCommandOptions): Promise<RunCommandResult> {
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn('sh', ['-c', opts.command], { cwd: opts.cwd, env: opts.env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    if (child.pid !== undefined) opts.onStart?.(child.pid);
    let outcome: RunCommandResult['outcome'] = 'exited';
    let settled = false;
    const kill = (why: RunCommandResult['outcome']) => {
      if (outcome !== 'exited' || child.pid === undefined) return;
      outcome = why;
      void terminateGroup(child.pid, null, 5_000, { ownChild: true });
    };
    let stallTimer = setTimeout(() => kill('stalled'), opts.stallTimeout);
    const totalTimer = setTimeout(() => kill('timeout'), opts.timeout);
    const onAbort = () => kill('aborted');
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    const renew = () => {
      clearTimeout(stallTimer);
      stallTimer = setTimeout(() => kill('stalled'), opts.stallTimeout);
    };
    const onData = (chunk: Buffer) => {
      renew();
      opts.onOutput?.(chunk);
    };
    const onStderr = opts.onStderr;
    child.stdout.on('data', onData);
    child.stderr.on(
      'data',
      onStderr === undefined
        ? onData
        : (chunk: Buffer) => {
            renew();
            onStderr(chunk);
          },
    );
    const finish = (result: Omit<RunCommandResult, 'duration'>) => {
      if (settled) return;
      settled = true;
      clearTimeout(stallTimer);
      clearTimeout(totalTimer);
      opts.signal?.removeEventListener('abort', onAbort);
      resolve({ ...result, duration: Date.now() - started });
    };
    child.on('error', (error) => finish({ outcome: 'spawn-error', exitCode: null, error: error.message }));
    // Leftover background processes of a finished command would hold its pipes open: end them.
    child.on('exit', () => child.pid !== undefined && signalGroup(child.pid, 'SIGKILL'));
    child.on('close', (code) => finish({ outcome, exitCode: code }));
    if (opts.signal?.aborted) onAbort();
  });
}
