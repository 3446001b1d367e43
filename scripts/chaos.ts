// The fault-injection suite, long version (docs/RELIABILITY.md). Runs chaos runs over many seeds
// and tallies the invariants that failed, with the seeds that reproduce them.
//
//   npm run chaos -- --seeds 20                 seeds 1..20, local tracker
//   npm run chaos -- --seed 7 --mode github     one run
//   npm run chaos -- --seeds 10 --mode both     each seed on the local tracker and on the GitHub fake
//   npm run chaos -- --seeds 10 --shepherds host   every shepherd in one `loom shepherd-host`
//   options: --from N (first seed), --short (the test suite's sizes), --keep (keep every run's
//   directory), --report FILE (write the Markdown summary), --expect a,b (invariants known to fail:
//   listed as expected, they do not fail the command)
import fs from 'node:fs';
import { INVARIANTS } from '../test/chaos/invariants.js';
import type { ChaosReport } from '../test/chaos/run-chaos.js';
import { killActiveRuns, runChaos } from '../test/chaos/run-chaos.js';
import type { Mode, Shepherds } from '../test/chaos/scenario.js';
import { defaultOptions, makeScenario } from '../test/chaos/scenario.js';

const args = process.argv.slice(2);
const option = (name: string): string | undefined => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};
const flag = (name: string) => args.includes(`--${name}`);
const from = Number(option('from') ?? option('seed') ?? 1);
const count = option('seed') !== undefined ? 1 : Number(option('seeds') ?? 1);
const modeArg = option('mode') ?? 'local';
const shepherds = (option('shepherds') ?? 'process') as Shepherds;
if (!['process', 'host'].includes(shepherds) || !['local', 'github', 'both'].includes(modeArg) || !Number.isInteger(from) || !Number.isInteger(count) || count < 1) {
  process.stderr.write('usage: npm run chaos -- [--seeds N | --seed N] [--from N] [--mode local|github|both] [--shepherds process|host] [--short] [--keep] [--report FILE] [--expect invariant,...]\n');
  process.exit(2);
}
const modes: Mode[] = modeArg === 'both' ? ['local', 'github'] : [modeArg as Mode];
const expected = new Set((option('expect') ?? '').split(',').filter(Boolean));
const log = (line: string) => process.stdout.write(`${line}\n`);
// Interrupted: end every process the run in progress started before exiting.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    log(`${signal}: killing the processes of the run in progress`);
    void killActiveRuns().finally(() => process.exit(130));
  });
}

const reports: ChaosReport[] = [];
for (let seed = from; seed < from + count; seed += 1) {
  for (const mode of modes) {
    const scenario = makeScenario(seed, mode, { ...defaultOptions(mode, flag('short')), shepherds });
    log(`=== seed ${seed} (${mode}${shepherds === 'host' ? ', shepherd host' : ''}): ${scenario.issues.length} issues, ${scenario.kills.length} random kills, ${scenario.humans.length} human actions, ${scenario.faults.length} tracker faults, crash windows: ${scenario.issues.filter((i) => i.crash).map((i) => `${i.crash}@${i.index}`).join(' ')}`);
    const report = await runChaos(scenario, { settleMs: 150_000, keep: flag('keep') ? 'always' : 'on-failure', log: flag('quiet') ? () => undefined : log });
    reports.push(report);
    const names = [...new Set(report.violations.map((v) => v.invariant))];
    log(`--- seed ${seed} (${mode}${shepherds === 'host' ? ', shepherd host' : ''}) ${report.violations.length === 0 ? 'PASSED' : `FAILED: ${names.join(', ')}`} in ${(report.durationMs / 1000).toFixed(0)}s; ${Object.entries(report.outcomes).map(([k, v]) => `${v} ${k}`).join(', ')}${report.drained ? '' : '; did not settle'}`);
    for (const v of report.violations) log(`    ${v.invariant}: ${v.detail}`);
    if (report.violations.length > 0) {
      log(`    kills: ${report.kills.join('; ')}`);
      log(`    human: ${report.humans.join('; ')}`);
      if (report.faults.length > 0) log(`    tracker faults: ${report.faults.join('; ')}`);
      log(`    crash windows fired: ${report.fired.join('; ') || 'none'}; not reached: ${report.unfired.join(', ') || 'none'}`);
    }
    if (report.dir) log(`    run kept in ${report.dir}`);
  }
}

// Summary: invariant → seeds that broke it.
const broken = new Map<string, { seeds: string[]; example: string }>();
for (const r of reports) {
  for (const v of r.violations) {
    const entry = broken.get(v.invariant) ?? { seeds: [], example: v.detail };
    const tag = `${r.seed}${modes.length > 1 ? `/${r.mode}` : ''}`;
    if (!entry.seeds.includes(tag)) entry.seeds.push(tag);
    broken.set(v.invariant, entry);
  }
}
const passed = reports.filter((r) => r.violations.length === 0).length;
const lines = [
  `Command: npm run chaos -- ${args.join(' ')}`,
  `Runs: ${reports.length} (${modes.join(' + ')}${shepherds === 'host' ? ', shepherd host' : ''}, seeds ${from}–${from + count - 1}); passed: ${passed}; failed: ${reports.length - passed}`,
  '',
  '| invariant | failed in runs (seed) | example |',
  '|---|---|---|',
  ...[...broken.entries()].map(([name, { seeds, example }]) => `| \`${name}\`${expected.has(name) ? ' (expected: fix pending)' : ''} — ${INVARIANTS[name] ?? ''} | ${seeds.join(', ')} | ${example.replace(/\|/g, '\\|').slice(0, 220)} |`),
];
if (broken.size === 0) lines.push('| — | none | |');
log(`\n${lines.join('\n')}`);
const report = option('report');
if (report !== undefined) fs.writeFileSync(report, `${lines.join('\n')}\n`);
process.exitCode = [...broken.keys()].some((name) => !expected.has(name)) ? 1 : 0;
