/**
 * `loom migrate [--dry-run]`: converts the original Loom's `.loom/config.json` (any era) into
 * Loom's, keeping the original as `.loom/config.json.orig`, and says what it mapped, what it
 * added and what it dropped (with why), and what else of the original installation it found and
 * how Loom treats it.
 *
 * Invariant owned here: the only files written are `.loom/config.json` and the new
 * `.loom/config.json.orig`, and the command says so; with `--dry-run`, none. A refusal (no
 * config, not JSON, a `.orig` already there) changes nothing.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { loomPaths } from '../config/paths.js';
import type { LoomPaths } from '../config/paths.js';
import { ConfigError, describeConfigError, loadConfig, resolveConfig } from '../config/config.js';
import { migrateConfig, originalKeysOf } from '../config/original-config.js';
import type { Migration } from '../config/original-config.js';
import { normalizeState } from '../core/daemon-state.js';
import { UserError } from '../core/errors.js';
import { writeFileAtomic } from '../fs/atomic-file.js';
import { findRepoRoot } from '../git/repo-root.js';
import { originalWorktrees } from '../git/original-worktree.js';
import { ProgressStore } from '../process/progress-store.js';
import { githubRepoOf } from './init-repo.js';

export interface MigrateResult {
  /** Files written (relative to the repository), empty for a dry run or nothing to do. */
  changed: string[];
}

export function runMigrate(opts: { cwd: string; dryRun: boolean; log: (line: string) => void }): MigrateResult {
  const log = (...lines: string[]) => {
    for (const line of lines) opts.log(line);
  };
  const root = findRepoRoot(opts.cwd);
  if (root === null) throw new UserError(`${opts.cwd} is not inside a git repository; run \`loom migrate\` in the repository the original Loom was installed in`);
  const paths = loomPaths(root);
  const rel = (file: string) => path.relative(root, file);
  if (!fs.existsSync(paths.config)) throw new UserError(`${rel(paths.config)} does not exist: there is nothing to migrate (\`loom init\` sets up a new installation)`);
  const text = fs.readFileSync(paths.config, 'utf8');
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (error) {
    throw new UserError(`${rel(paths.config)} is not valid JSON (${(error as Error).message}); fix it by hand, then run \`loom migrate\` again`);
  }
  const keys = originalKeysOf(doc);
  if (keys.length === 0 || typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    log(`${rel(paths.config)} is already Loom's configuration: nothing to migrate.`);
    describeInstallation(paths, log);
    return { changed: [] };
  }
  const orig = `${paths.config}.orig`;
  if (!opts.dryRun && fs.existsSync(orig)) throw new UserError(`${rel(orig)} exists already (an earlier migration?); move it away, then run \`loom migrate\` again — nothing was changed`);

  const migration = migrateConfig(doc as Record<string, unknown>, githubOrigin(root));
  // What is written must load: a mapping that produced an invalid config is a bug, not the user's.
  const check = resolveConfig(migration.config, {});
  if (!check.ok) throw new Error(`the migrated configuration is invalid: ${check.problems.join('; ')}`);

  log(`${rel(paths.config)} is a configuration of the original Loom (${keys.join(', ')}).`);
  report(migration, log);
  const result = `${JSON.stringify(migration.config, null, 2)}\n`;
  if (opts.dryRun) {
    log('', `Loom's configuration would be (nothing was written; run \`loom migrate\` to write it):`, result.trimEnd());
    describeInstallation(paths, log);
    return { changed: [] };
  }
  fs.copyFileSync(paths.config, orig, fs.constants.COPYFILE_EXCL);
  writeFileAtomic(paths.config, result);
  const changed = [rel(paths.config), rel(orig)];
  log('', `Wrote ${rel(paths.config)}; the original is kept, unchanged, as ${rel(orig)}. No other file was changed.`);
  try {
    for (const note of loadConfig(paths.config).notes) log(`note: ${note}`);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    log(`Still to fix before Loom runs: ${describeConfigError(error, root)}`);
  }
  describeInstallation(paths, log);
  return { changed };
}

function report(m: Migration, log: (...lines: string[]) => void): void {
  const section = (title: string, lines: { from: string; to: string }[], arrow: string) => {
    if (lines.length === 0) return;
    log('', `${title}:`);
    for (const l of lines) log(`  ${l.from} ${arrow} ${l.to}`);
  };
  section('Mapped', m.mapped, '→');
  section('Added', m.added, '—');
  section('Dropped (no counterpart in Loom)', m.dropped, '—');
}

/** The repository of `origin` when it is on GitHub. */
function githubOrigin(root: string): { owner: string; repo: string } | null {
  try {
    return githubRepoOf(execFileSync('git', ['remote', 'get-url', 'origin'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }));
  } catch {
    return null;
  }
}

/** What else of the original installation is here and how Loom treats it (read-only). */
function describeInstallation(paths: LoomPaths, log: (...lines: string[]) => void): void {
  const lines: string[] = [];
  let state: unknown;
  try {
    state = JSON.parse(fs.readFileSync(paths.state, 'utf8'));
  } catch {
    state = undefined;
  }
  if (state !== undefined) {
    const { state: s } = normalizeState(state);
    const left = Object.entries(s.shepherds).filter(([, e]) => (e.status === 'errored' || e.status === 'paused' || e.status === 'working') && e.issue !== null);
    for (const [slot, e] of left)
      lines.push(`.loom/daemon-state.json: ${slot} is ${e.status} on #${e.issue}; no process of this Loom runs for it, so the first iteration returns #${e.issue} to loom:issue if it is still loom:building (hold it with \`loom issue label ${e.issue} loom:operator\` to keep it from being rebuilt)`);
    if (left.length === 0) lines.push('.loom/daemon-state.json: read as it is; nothing in it needs attention');
  }
  const progress = new ProgressStore(paths.progress).listOriginal();
  if (progress.length > 0) lines.push(`.loom/progress/: ${progress.length} progress file(s) of the original Loom (${progress.map((p) => p.file).join(', ')}): left alone, never taken for Loom's`);
  for (const w of originalWorktrees(paths.root, paths.worktrees))
    lines.push(`.loom/worktrees/issue-${w.issue} is on ${w.branch}: adopted when #${w.issue} is next built — its work moves onto loom/issue-${w.issue} (${w.branch} stays as it is) and the original's marker files are never committed`);
  if (lines.length === 0) return;
  log('', 'Also found (nothing here is changed by `loom migrate`):');
  for (const line of lines) log(`  ${line}`);
}
