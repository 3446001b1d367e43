/**
 * The actions a person takes from the board, each done by running the `loom` command that does
 * it — so the dashboard does exactly what the CLI does, with the CLI's checks and messages:
 * spawn (`loom spawn N`), abort (`loom issue label N loom:abort`), stop (`loom stop`).
 */
import { spawn } from 'node:child_process';
import { Label } from '../core/labels.js';
import { loomCommand } from '../process/launcher.js';

export type DashboardAction = { type: 'spawn'; issue: number } | { type: 'abort'; issue: number } | { type: 'stop' };

/** What the command said: exit 0 → ok with its output; 2 → the user's problem (its one line: 404 for no such issue, else 409); else a failure. */
export interface ActionResult {
  status: 200 | 404 | 409 | 500;
  body: { ok: true; message: string; command: string } | { ok: false; error: string; command: string };
}

const ACTION_TIMEOUT_MS = 60_000;

export function actionArgs(action: DashboardAction): string[] {
  switch (action.type) {
    case 'spawn':
      return ['spawn', String(action.issue)];
    case 'abort':
      return ['issue', 'label', String(action.issue), Label.abort];
    case 'stop':
      return ['stop'];
  }
}

export function runAction(action: DashboardAction, cwd: string): Promise<ActionResult> {
  const args = actionArgs(action);
  const shown = `loom ${args.join(' ')}`;
  const { command, args: prefix } = loomCommand();
  return new Promise((resolve) => {
    // The dashboard's own token and session stay with it.
    const env = { ...process.env };
    delete env.LOOM_DASHBOARD_TOKEN;
    delete env.LOOM_DAEMON_SESSION;
    const child = spawn(command, [...prefix, ...args], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (err += c.toString('utf8')));
    const timer = setTimeout(() => child.kill('SIGKILL'), ACTION_TIMEOUT_MS);
    child.on('error', (error) => {
      clearTimeout(timer);
      resolve({ status: 500, body: { ok: false, error: error.message, command: shown } });
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      const line = (text: string) => text.trim().split('\n').filter(Boolean).join(' ').replace(/^loom: /, '');
      if (code === 0) resolve({ status: 200, body: { ok: true, message: line(out) || 'done', command: shown } });
      else {
        const error = line(err) || `exit ${code ?? 'killed'}`;
        // The command's refusal for an issue that is not there (no such number, or a pull request's) is the API's 404; its other refusals are 409s.
        const status = code !== 2 ? 500 : /^(issue #\d+ does not exist\b|#\d+ is a pull request, not an issue\b)/.test(error) ? 404 : 409;
        resolve({ status, body: { ok: false, error, command: shown } });
      }
    });
  });
}
