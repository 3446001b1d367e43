/**
 * The translation of the original Loom's config.json (src/config/original-config.ts): what maps,
 * what is added and what is dropped with a reason, and that the result is a valid configuration.
 */
import { describe, expect, it } from 'vitest';
import { resolveConfig } from '../../src/config/config.js';
import { durationText, migrateConfig, originalKeysOf } from '../../src/config/original-config.js';

const terminal = (name: string, roleFile: string, workerType: string, targetInterval: number) => ({ id: name, name, role: 'claude-code-worker', roleConfig: { workerType, roleFile, targetInterval, intervalPrompt: 'go' }, theme: 'ocean' });

/** Every top-level key of `doc` is named by a mapped, added or dropped line. */
function accounted(doc: Record<string, unknown>, m: ReturnType<typeof migrateConfig>): string[] {
  const lines = [...m.mapped, ...m.added, ...m.dropped].map((l) => l.from);
  return Object.keys(doc).filter((k) => !lines.some((l) => l.startsWith(k) || l.includes(`${k}.`) || l.includes(`${k}[`)));
}

describe('migrateConfig', () => {
  it('January 2026: terminals become role runtimes and intervals; two builders are two shepherds; the result loads', () => {
    const doc = {
      version: '2',
      offlineMode: false,
      terminals: [terminal('Builder 1', 'builder.md', 'claude', 0), terminal('Builder 2', 'builder.md', 'claude', 0), terminal('Judge', 'judge.md', 'codex', 180000), terminal('Hermit', 'hermit.md', 'claude', 300000), terminal('Driver', 'driver.md', 'claude', 0)],
    };
    const m = migrateConfig(doc, null);
    expect(m.config).toEqual({ runtime: 'claude', maxShepherds: 2, tracker: { type: 'local' }, maxMergeLines: 200, roles: { judge: { interval: '3m', runtime: 'codex' }, hermit: { cooldown: '5m' } } });
    expect(m.dropped.map((d) => d.from)).toEqual(expect.arrayContaining(['version', 'offlineMode', 'terminals[4] "Driver"', 'terminals[1] "Builder 2"']));
    expect(accounted(doc, m)).toEqual([]);
    expect(resolveConfig(m.config, {}).ok).toBe(true);
  });

  it('the LLM daemon and the Python daemon: stuck-agent minutes are the stall timeout, the build gate is the test command, GitHub from origin', () => {
    const doc = {
      version: '2',
      offlineMode: false,
      forge: { type: 'auto', gitea: { api_url: null, known_hosts: [] } },
      health_monitoring: { enabled: true, thresholds: { stuck_agent_minutes: 15 } },
      reflection: { enabled: true },
      buildGate: { enabled: true, command: 'make check', timeoutSeconds: 600 },
      terminals: [terminal('Champion', 'champion.md', 'claude', 600000)],
    };
    const m = migrateConfig(doc, { owner: 'acme', repo: 'widgets' });
    expect(m.config).toEqual({ runtime: 'claude', stallTimeout: '15m', testCommand: 'make check', tracker: { type: 'github', owner: 'acme', repo: 'widgets' }, maxMergeLines: 200, roles: { champion: { interval: '10m' } } });
    expect(accounted(doc, m)).toEqual([]);
    expect(resolveConfig(m.config, {}).ok).toBe(true);
  });

  it('today: runtimes.default, the work finder and the role runner map; Claude model aliases go to Claude roles only; gitea means the local tracker', () => {
    const doc = {
      version: '2',
      forge: { type: 'gitea' },
      runtimes: { default: 'codex' },
      autonomous: { model: 'sonnet', workFinder: { enabled: true, maxConcurrent: 5, intervalSecs: 45, quarantine: { threshold: 2 }, dispatchBackoff: { maxSecs: 600 } }, roleRunner: { enabled: true, roles: ['judge', 'champion'], intervalSecs: 120, architectMaxProposals: 7 }, hostBreaker: { enabled: true } },
      terminals: [terminal('Curator', 'curator.md', 'claude', 180000)],
      sweep: { modelExperiment: 'observe' },
    };
    const m = migrateConfig(doc, { owner: 'acme', repo: 'widgets' });
    expect(m.config).toMatchObject({ runtime: 'codex', tracker: { type: 'local' }, maxShepherds: 5, pollInterval: '45s', spawnFailureLimit: 2, maxRetryBackoff: '10m', maxProposals: 7 });
    const roles = m.config.roles as Record<string, Record<string, unknown>>;
    expect(roles.curator).toEqual({ runtime: 'claude', interval: '2m', enabled: false, model: 'sonnet' });
    expect(roles.judge).toEqual({ interval: '2m' });
    expect(roles.guide).toMatchObject({ enabled: false });
    expect(roles.builder).toBeUndefined();
    expect(m.dropped.map((d) => d.from)).toEqual(expect.arrayContaining(['forge (gitea)', 'autonomous.hostBreaker.enabled', 'sweep']));
    expect(accounted(doc, m)).toEqual([]);
    expect(resolveConfig(m.config, {}).ok).toBe(true);
  });

  it('keys that are already Loom’s win over mapped ones', () => {
    const m = migrateConfig({ version: '2', terminals: [terminal('Judge', 'judge.md', 'claude', 180000)], maxMergeLines: 900, roles: { judge: { interval: '1m' } } }, null);
    expect(m.config).toMatchObject({ maxMergeLines: 900, roles: { judge: { interval: '1m' } } });
    expect(m.added.map((a) => a.from)).not.toContain('maxMergeLines 200');
  });

  it('recognises an original config by its keys; Loom’s own config is not one', () => {
    expect(originalKeysOf({ version: '2', terminals: [] })).toEqual(['version', 'terminals']);
    expect(originalKeysOf({ maxShepherds: 2, roles: {} })).toEqual([]);
    expect(originalKeysOf([1])).toEqual([]);
  });

  it('durationText writes milliseconds as Loom durations', () => {
    expect([180000, 300000, 5400000, 90000, 1500, 0].map(durationText)).toEqual(['3m', '5m', '1h30m', '1m30s', '1500ms', '0s']);
  });
});
