/**
 * `loom demo`: a throw-away sample repository with a handful of issues on the local tracker,
 * the daemon in force mode over it with the demo script agent, live progress, and the final
 * status once the backlog is done.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loomPaths } from '../config/paths.js';
import { Label } from '../core/labels.js';
import { loomCommand } from '../process/launcher.js';
import { waitFor } from '../process/wait.js';
import { LocalTracker } from '../tracker/local-tracker.js';
import { runInit } from '../cli/init-command.js';

const ISSUES: { title: string; labels: string[] }[] = [
  { title: 'Document the add function', labels: [Label.issue] },
  { title: 'Add a subtract function', labels: [Label.issue] },
  { title: 'Fix the greeting punctuation', labels: [Label.issue, Label.urgent] },
  { title: 'Add a multiply function', labels: [Label.issue] },
  { title: 'Rewrite everything in a weekend (fail)', labels: [Label.issue] },
  { title: 'Explain the project layout', labels: [Label.architect] },
];

export async function runDemo(log: (line: string) => void): Promise<number> {
  const root = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'loom-demo-')));
  const git = (...args: string[]) => spawnSync('git', args, { cwd: root, encoding: 'utf8' });
  git('init', '-q', '-b', 'main');
  fs.writeFileSync(path.join(root, 'math.js'), 'export const add = (a, b) => a + b;\nexport const greet = (name) => `Hello ${name}`;\n');
  fs.writeFileSync(path.join(root, 'README.md'), '# Sample project\n\nA tiny project for the Loom demo.\n');
  git('add', '.');
  git('-c', 'user.name=Loom Demo', '-c', 'user.email=demo@localhost', 'commit', '-qm', 'Sample project');
  runInit({ cwd: root, claude: false, log: () => undefined });
  const paths = loomPaths(root);
  const agent = fileURLToPath(new URL('./demo-agent.js', import.meta.url));
  const config = { maxShepherds: 3, pollInterval: '2s', heartbeatInterval: '1s', roles: { builder: { command: `"${process.execPath}" "${agent}"` } } };
  fs.writeFileSync(paths.config, `${JSON.stringify(config, null, 2)}\n`);
  const tracker = new LocalTracker({ path: paths.trackerDb, actor: 'demo' });
  for (const issue of ISSUES) await tracker.createIssue({ title: issue.title, labels: issue.labels });
  log(`Sample repository: ${root} (${ISSUES.length} issues on the local tracker)`);

  const { command, args } = loomCommand();
  const daemon = spawn(command, [...args, 'start', '--force'], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
  daemon.stdout.on('data', (chunk: Buffer) => process.stdout.write(chunk));
  const exited = new Promise<number | null>((resolve) => daemon.on('exit', resolve));

  const settled = async () => {
    const open = await tracker.listIssues();
    return open.every((i) => !i.labels.some((l) => l === Label.issue || l === Label.building || l === Label.architect));
  };
  const done = await waitFor(settled, 120_000, 250);
  fs.writeFileSync(paths.stopSignal, '');
  const code = await exited;
  tracker.dispose();
  const status = spawnSync(command, [...args, 'status'], { cwd: root, encoding: 'utf8' });
  log(status.stdout.trimEnd());
  log(done ? `Backlog done. The sample repository is at ${root} (try \`cd ${root} && loom issue list --state all\`).` : `The demo did not finish within 2 minutes; see ${paths.logs}`);
  return done && code === 0 ? 0 : 1;
}
