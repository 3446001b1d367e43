// The fault-injection suite, short version: a real daemon over 30+ issues (and a GitHub-mode run
// against the fake, and a run with every shepherd in one shepherd host), killed at random moments
// from fixed seeds, crash windows injected, a human acting mid-run, tracker faults; then every
// invariant of test/chaos/invariants.ts must hold.
// The long version over many seeds: `npm run chaos -- --seeds 20` (docs/RELIABILITY.md).
import { describe, expect, it } from 'vitest';
import { INVARIANTS } from './invariants.js';
import type { ChaosReport } from './run-chaos.js';
import { runChaos } from './run-chaos.js';
import { defaultOptions, makeScenario } from './scenario.js';
import type { Mode, Shepherds } from './scenario.js';

function explain(report: ChaosReport): string {
  return [
    `seed ${report.seed} (${report.mode}, shepherds: ${report.shepherds}): ${report.violations.length} violation(s); reproduce with \`npm run chaos -- --seed ${report.seed} --mode ${report.mode} --shepherds ${report.shepherds} --short\``,
    ...report.violations.map((v) => `- ${v.invariant} (${INVARIANTS[v.invariant] ?? ''}): ${v.detail}`),
    `kills: ${report.kills.join('; ')}`,
    `crash windows fired: ${report.fired.join('; ') || 'none'}; not reached: ${report.unfired.join(', ') || 'none'}`,
    `outcomes: ${Object.entries(report.outcomes).map(([k, v]) => `${v} ${k}`).join(', ')}${report.drained ? '' : ' (the issues did not settle before the stop)'}`,
    report.dir ? `run kept in ${report.dir}` : '',
  ].join('\n');
}

async function chaos(mode: Mode, seed: number, shepherds: Shepherds = 'process'): Promise<void> {
  const report = await runChaos(makeScenario(seed, mode, { ...defaultOptions(mode, true), shepherds }), { settleMs: 90_000, keep: 'on-failure', log: () => undefined });
  expect(
    report.violations.map((v) => `${v.invariant}: ${v.detail}`),
    explain(report),
  ).toEqual([]);
}

describe('chaos (short)', () => {
  it('local tracker, seed 1: every invariant holds', () => chaos('local', 1), 300_000);
  it('GitHub fake, seed 2: every invariant holds', () => chaos('github', 2), 300_000);
  it('local tracker, every shepherd in one shepherd host, seed 3: every invariant holds', () => chaos('local', 3, 'host'), 300_000);
});
