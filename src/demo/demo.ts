/**
 * `loom demo`: a throw-away sample repository (a small real project with its own tests) with
 * eight issues for the built-in script agent, the daemon in force mode over it with live
 * progress, the final status once the backlog is done, and three next steps. With `--dashboard` a
 * dashboard serves the run live and stays open afterwards until Ctrl+C.
 *
 * Every command the demo prints works when copied as printed, from wherever the user is: Loom
 * is usually not on the PATH yet (the README's `npm ci && npm run demo`), so the commands name
 * this Loom by its full path — `loom` only when `loom` on the PATH is this very Loom — and start
 * with `cd <sample repository> &&`. The daemon and `loom status` get that spelling through
 * `LOOM_HINT_COMMAND`.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loomPaths } from '../config/paths.js';
import { Label } from '../core/labels.js';
import { loomCommand } from '../process/launcher.js';
import { shellWord, typedLoom } from '../process/typed-command.js';
import type { DashboardProcess } from '../process/dashboard-process.js';
import { startDashboardProcess } from '../process/dashboard-process.js';
import { untilInterrupted, waitFor } from '../process/wait.js';
import { createTracker } from '../tracker/create-tracker.js';
import { runInit } from '../setup/init-repo.js';
import { SAMPLE_CONFIG, SAMPLE_ISSUES, writeSampleProject } from './sample-repo.js';

/** The demo gives up after this long, ms. */
const DEMO_LIMIT_MS = 5 * 60_000;

export async function runDemo(log: (line: string) => void, dir?: string, dashboard = false): Promise<number> {
  const root = dir ?? fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'loom-demo-')));
  fs.mkdirSync(root, { recursive: true });
  writeSampleProject(root);
  await runInit({ cwd: root, claude: false, log: () => undefined });
  const paths = loomPaths(root);
  fs.writeFileSync(paths.config, `${JSON.stringify(SAMPLE_CONFIG, null, 2)}\n`);
  const tracker = await createTracker(paths, { type: 'local' }, { actor: 'demo' });
  for (const issue of SAMPLE_ISSUES) await tracker.createIssue({ title: issue.title, body: issue.body, labels: issue.labels });
  log(`Sample repository: ${root}`);
  log(`${SAMPLE_ISSUES.length} issues on the local tracker; starting the daemon in force mode (script agents, \`${SAMPLE_CONFIG.testCommand}\` as the judge's test gate).`);
  const board = dashboard ? await startDashboardProcess(paths, { host: '127.0.0.1', port: 0 }) : null;
  if (board !== null) log(`Dashboard: ${board.url} (open it to watch the run)`);

  const started = Date.now();
  const { command, args } = loomCommand();
  const loom = typedLoom();
  const env = { ...process.env, LOOM_HINT_COMMAND: `cd ${shellWord(root)} && ${loom.command}` };
  const daemon = spawn(command, [...args, 'start', '--force'], { cwd: root, env, stdio: ['ignore', 'pipe', 'inherit'] });
  daemon.stdout.on('data', (chunk: Buffer) => process.stdout.write(chunk));
  let daemonExit: number | null | undefined;
  const exited = new Promise<number | null>((resolve) =>
    daemon.on('exit', (code) => {
      daemonExit = code;
      resolve(code);
    }),
  );
  const stopDaemon = () => fs.writeFileSync(paths.stopSignal, '');
  let interrupted = false;
  const onInterrupt = () => {
    interrupted = true;
    stopDaemon();
  };
  process.once('SIGINT', onInterrupt);

  // Done when nothing is ready, being built, proposed or waiting in a PR.
  const busy = [Label.issue, Label.building, Label.architect, Label.hermit, Label.curated, Label.reviewRequested, Label.changesRequested, Label.pr];
  const settled = async () => {
    const { issues, pullRequests } = await tracker.snapshot();
    return [...issues, ...pullRequests].every((item) => !item.labels.some((l) => (busy as string[]).includes(l)));
  };
  // Until the backlog is settled, or the daemon ends on its own (a crash: nothing would go on).
  const done = await waitFor(async () => daemonExit !== undefined || (await settled()), DEMO_LIMIT_MS, 250);
  const died = daemonExit !== undefined;
  stopDaemon();
  const code = await exited;
  process.off('SIGINT', onInterrupt);
  const seconds = ((Date.now() - started) / 1000).toFixed(1);

  const status = spawnSync(command, [...args, 'status'], { cwd: root, env, encoding: 'utf8' });
  log(status.stdout.trimEnd());
  const all = await tracker.listIssues({ state: 'all' });
  log('');
  for (const issue of all) log(`  #${issue.number} ${issue.state.padEnd(6)} ${issue.labels.join(', ').padEnd(14)} ${issue.title}`);
  const history = spawnSync('git', ['log', '--first-parent', '--format=  %h %s', 'main'], { cwd: root, encoding: 'utf8' });
  log(`\nmain (first-parent history):\n${history.stdout.trimEnd()}`);
  tracker.dispose();
  if (died) {
    log(interrupted ? '\nStopped by Ctrl+C before the backlog was done.' : `\nThe daemon ended before the backlog was done (${code === null ? 'killed by a signal' : `exit ${code}`}); the logs are in ${paths.logs}`);
    await holdOpen(board, log);
    return 1;
  }
  if (!done) {
    log(`\nThe demo did not finish within ${DEMO_LIMIT_MS / 60_000} minutes; logs are in ${paths.logs}`);
    await holdOpen(board, log);
    return 1;
  }
  const blocked = all.find((i) => i.state === 'open' && i.labels.includes(Label.blocked));
  const inRepo = `cd ${shellWord(root)} &&`;
  const steps: [string, string][] = [
    ['The merges, one per merged issue:', `${inRepo} git log --graph --oneline --all`],
    ['Every issue and how it ended:', `${inRepo} ${loom.command} issue list --state all`],
    blocked === undefined ? ['What Loom reports now:', `${inRepo} ${loom.command} status`] : [`Why #${blocked.number} waits for a human:`, `${inRepo} ${loom.command} why ${blocked.number}`],
  ];
  log(`\nBacklog done in ${seconds}s. The sample repository is at ${root}. Next steps, each command works as printed:`);
  for (const [what, line] of steps) log(`  ${what}\n    ${line}`);
  log(
    loom.onPath
      ? 'Use Loom on your own repository: `loom init` in it, then the README\'s "Use it on your repository".'
      : `Loom is not on your PATH, so these commands name it by its full path. To type \`loom\` instead, run \`npm link\` once in ${shellWord(loom.home)}; then see the README's "Use it on your repository".`,
  );
  await holdOpen(board, log);
  return code === 0 ? 0 : 1;
}

/** With `--dashboard`: keeps the dashboard open until Ctrl+C (or SIGTERM), then stops it. */
async function holdOpen(board: DashboardProcess | null, log: (line: string) => void): Promise<void> {
  if (board === null) return;
  log(`\nThe dashboard stays open at ${board.url} — press Ctrl+C to quit.`);
  await untilInterrupted();
  await board.stop();
}
