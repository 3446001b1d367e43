// Installations of the original Loom, one per era (test/fixtures/original-loom/: January 2026,
// the LLM daemon, the Python daemon v0.9.x, today's), each run through the commands a user of
// the original would: before `loom migrate` every command says to run it and changes nothing;
// `loom migrate` changes exactly the two files it names; then `status`, `why`, `iterate` and
// `start`/`stop` work and never change a file of the user's (config, role files, slash commands,
// the original's progress files), and the original's state fields survive Loom's rewrites.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { Label } from '../../src/core/labels.js';
import { loomPaths } from '../../src/config/paths.js';
import { LocalTracker } from '../../src/tracker/local/local-tracker.js';
import { fingerprint, killLeftovers, loom, startDaemon, until } from '../helpers/loom-repo.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/original-loom/', import.meta.url));
const ERAS = ['january-2026', 'llm-daemon', 'python-v0.9', 'today'] as const;

let root: string | undefined;
let tracker: LocalTracker | undefined;
afterEach(() => {
  tracker?.dispose();
  tracker = undefined;
  if (root !== undefined) {
    killLeftovers(loomPaths(root));
    fs.rmSync(root, { recursive: true, force: true });
  }
  root = undefined;
});

/** Every file under `dir` (not .git), relative path → content. */
function files(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const full = path.join(d, e.name);
      if (e.name === '.git') continue;
      if (e.isDirectory()) walk(full);
      else out.set(path.relative(dir, full), fs.readFileSync(full).toString('base64'));
    }
  };
  walk(dir);
  return out;
}

/**
 * The user's files (what the installation had) that differ from `before` now, or are gone. Only
 * those files are read: a walk of the whole tree would race with a shepherd at work in it (a file
 * listed, then renamed or removed before it is read).
 */
function changedUserFiles(dir: string, before: Map<string, string>): string[] {
  const now = (f: string) => {
    const full = path.join(dir, f);
    return fs.existsSync(full) ? fs.readFileSync(full).toString('base64') : undefined;
  };
  return [...before.keys()].filter((f) => now(f) !== before.get(f)).sort();
}

function install(era: string): { root: string; user: Map<string, string> } {
  const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), `loom-${era}-`)));
  const git = (...args: string[]) => spawnSync('git', args, { cwd: dir, encoding: 'utf8' });
  git('init', '-q', '-b', 'main');
  fs.writeFileSync(path.join(dir, 'README.md'), `# A project that ran the original Loom (${era})\n`);
  fs.cpSync(path.join(FIXTURES, era), dir, { recursive: true });
  git('add', '-A');
  git('-c', 'user.name=Original', '-c', 'user.email=original@localhost', 'commit', '-qm', 'the installation as the original Loom left it');
  // The state file is Loom's own runtime file from here on; everything else is the user's.
  const user = files(dir);
  user.delete('.loom/daemon-state.json');
  return { root: dir, user };
}

/** Every role on the deterministic script agent, the builder on a command that keeps its prompt. */
function agentEnv(promptDir: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { LOOM_RUNTIME: 'script', LOOM_POLL_INTERVAL: '1s', LOOM_SHUTDOWN_GRACE: '30s', LOOM_HEARTBEAT_INTERVAL: '0.2s' };
  for (const role of ['judge', 'doctor', 'curator', 'architect', 'hermit', 'guide']) env[`LOOM_${role.toUpperCase()}_RUNTIME`] = 'script';
  env.LOOM_BUILDER_RUNTIME = 'command';
  env.LOOM_BUILDER_COMMAND = `cp "$LOOM_PROMPT_FILE" '${promptDir}/prompt-'"$LOOM_ISSUE"'.txt' && echo built > built.txt`;
  return env;
}

const oneLine = (text: string) => text.trim().split('\n').length === 1;

describe.each(ERAS)('an installation of the original Loom: %s', (era) => {
  it('migrate, status, why, iterate and start/stop work and change no file of the user’s beyond what they say', async () => {
    const installed = install(era);
    root = installed.root;
    const { user } = installed;
    const paths = loomPaths(root);
    const originalConfig = fs.readFileSync(paths.config, 'utf8');
    const everything = () => fingerprint(root!);
    const promptDir = fs.mkdtempSync(path.join(os.tmpdir(), 'loom-prompts-'));
    const env = agentEnv(promptDir);

    // Before migrating: one line naming `loom migrate`, exit 2, nothing changed at all.
    const pristine = everything();
    for (const args of [['iterate'], ['why', '1'], ['start'], ['init'], ['spawn', '1'], ['issue', 'list']]) {
      const r = loom(root, args, env);
      expect(r.code, `${args.join(' ')}: ${r.stdout}${r.stderr}`).toBe(2);
      expect(oneLine(r.stderr), r.stderr).toBe(true);
      expect(r.stderr).toMatch(/configuration of the original Loom .*`loom migrate`/);
    }
    const status0 = loom(root, ['status'], env);
    expect(status0.code).toBe(0);
    expect(status0.stdout).toMatch(/! config: .*configuration of the original Loom.*`loom migrate`/);
    expect(status0.stdout).not.toMatch(/NaN/);
    const dry = loom(root, ['migrate', '--dry-run'], env);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toMatch(/nothing was written/);
    expect(everything()).toEqual(pristine);

    // Migrating changes the config and adds the .orig copy, and says so; nothing else.
    const migrate = loom(root, ['migrate'], env);
    expect(migrate.code, migrate.stdout + migrate.stderr).toBe(0);
    expect(migrate.stdout).toMatch(/Wrote \.loom\/config\.json; the original is kept, unchanged, as \.loom\/config\.json\.orig\. No other file was changed\./);
    expect(migrate.stdout).toMatch(/Dropped \(no counterpart in Loom\):\n {2}version — /);
    expect(migrate.stdout).toMatch(/maxMergeLines 200 — /);
    expect(changedUserFiles(root, user)).toEqual(['.loom/config.json']);
    expect(fs.readFileSync(`${paths.config}.orig`, 'utf8')).toBe(originalConfig);
    const migrated = JSON.parse(fs.readFileSync(paths.config, 'utf8')) as Record<string, unknown>;
    expect(migrated).toMatchObject({ runtime: 'claude', maxMergeLines: 200, tracker: { type: 'local' } });
    user.set('.loom/config.json', fs.readFileSync(paths.config).toString('base64'));
    user.set('.loom/config.json.orig', fs.readFileSync(`${paths.config}.orig`).toString('base64'));
    const again = loom(root, ['migrate'], env);
    expect(again.stdout).toMatch(/already Loom's configuration: nothing to migrate/);

    // `loom init` now sets up what Loom adds (local tracker, .loom/.gitignore), and says so.
    const init = loom(root, ['init'], env);
    expect(init.code, init.stderr).toBe(0);
    expect(init.stdout).toMatch(/kept \.loom\/config\.json; created \.loom\/\.gitignore, created the local tracker/);
    expect(changedUserFiles(root, user)).toEqual([]);

    tracker = new LocalTracker({ path: paths.trackerDb, actor: 'test' });
    await tracker.createIssue({ title: 'ready to build', labels: [Label.issue] });
    await tracker.createIssue({ title: 'held by the operator', labels: [Label.issue, 'loom:operator-only'] });
    await tracker.createIssue({ title: 'claimed by the original', labels: [Label.building, 'loom:reviewing'] });

    // status and why are read-only.
    const before = everything();
    const status = loom(root, ['status'], env);
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).not.toMatch(/NaN/);
    expect(status.stdout).toMatch(/Held for a human \(loom:operator\*\): 1/);
    expect(status.stdout).toMatch(/Labels of the original Loom: .*loom:operator-only 1/);
    const why = loom(root, ['why', '2'], env);
    expect(why.code, why.stderr).toBe(0);
    expect(why.stdout).toMatch(/✗ not held +loom:operator-only/);
    expect(everything()).toEqual(before);

    // One iteration builds #1 (not the held #2) and recovers #3, which no process of this Loom owns.
    const stateBefore = fs.existsSync(paths.state) ? (JSON.parse(fs.readFileSync(paths.state, 'utf8')) as Record<string, unknown>) : {};
    const iterate = loom(root, ['iterate'], env);
    expect(iterate.code, iterate.stdout + iterate.stderr).toBe(0);
    expect(iterate.stdout).toMatch(/\+shepherd=#1/);
    expect(iterate.stdout).not.toMatch(/#2/);
    expect(iterate.stdout).toMatch(/(released|died)=#3/);
    expect(changedUserFiles(root, user)).toEqual([]);
    const state = JSON.parse(fs.readFileSync(paths.state, 'utf8')) as Record<string, unknown>;
    for (const key of Object.keys(stateBefore)) expect(state, `state field ${key} kept`).toHaveProperty(key);

    // The builder's prompt: the original role file's text, then Loom's bridge and output contract.
    const prompt = await until(() => (fs.existsSync(path.join(promptDir, 'prompt-1.txt')) ? fs.readFileSync(path.join(promptDir, 'prompt-1.txt'), 'utf8') : null), 30_000, 'the builder of #1 to run');
    expect(prompt.indexOf('ORIGINAL-BUILDER-TEXT')).toBeGreaterThanOrEqual(0);
    expect(prompt.indexOf('How this role runs under Loom')).toBeGreaterThan(prompt.indexOf('ORIGINAL-BUILDER-TEXT'));
    expect(prompt).toMatch(/NO CHANGES NEEDED: <one-sentence reason>/);
    expect(prompt).not.toMatch(/\{\{workspace\}\}/);
    // Read through a new connection each time: the Loom processes write the file meanwhile.
    const approved = async () => {
      const reader = new LocalTracker({ path: paths.trackerDb, actor: 'test' });
      try {
        return (await reader.snapshot()).pullRequests.some((p) => p.labels.includes(Label.pr));
      } finally {
        reader.dispose();
      }
    };
    await until(approved, 45_000, 'the PR of #1 to be approved');

    // The daemon starts, works and stops cleanly; the held issue is still not built.
    const daemon = startDaemon(root, ['start'], env);
    await until(() => /Iteration 1:/.test(daemon.output()), 30_000, `a first iteration; output:\n${daemon.output()}`);
    const stop = loom(root, ['stop'], env);
    expect(stop.code).toBe(0);
    expect(await daemon.exited(60_000)).toBe(0);
    expect(daemon.output()).not.toMatch(/#2\b.*(shepherd|claim)/);
    expect((await tracker.getIssue(2))!.labels).toEqual([Label.issue, 'loom:operator-only']);
    expect(changedUserFiles(root, user)).toEqual([]);
    fs.rmSync(promptDir, { recursive: true, force: true });
  });
});
