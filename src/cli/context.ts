/**
 * What every command needs: the repository root, the `.loom/` paths, the validated config and a
 * tracker. Finding them is where most user errors surface, so every failure here is a
 * `UserError` with the command that fixes it.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { LoomConfig } from '../core/config-model.js';
import { ConfigError, loadConfig } from '../config/config.js';
import type { LoomPaths } from '../config/paths.js';
import { loomPaths } from '../config/paths.js';
import { findRepoRoot } from '../git/repo-root.js';
import { createTracker } from '../tracker/create-tracker.js';
import type { Tracker } from '../tracker/tracker.js';
import { UserError } from '../core/errors.js';

export function requirePaths(cwd: string = process.cwd()): LoomPaths {
  const root = findRepoRoot(cwd);
  if (root === null) throw new UserError(`${cwd} is not inside a git repository; run Loom from your repository (or \`git init\` first, then \`loom init\`)`);
  const paths = loomPaths(root);
  if (!fs.existsSync(paths.dir)) throw new UserError(`${root} is not set up for Loom (no .loom/); run \`loom init\` first`);
  return paths;
}

export function requireConfig(paths: LoomPaths): LoomConfig {
  try {
    return loadConfig(paths.config);
  } catch (error) {
    if (error instanceof ConfigError) throw new UserError(`${path.relative(process.cwd(), error.file) || error.file}: ${error.problems.join('; ')}`);
    throw error;
  }
}

/** The configured tracker; a `UserError` when it cannot be opened. */
export function openTracker(paths: LoomPaths, options: { readonly?: boolean; actor?: string } = {}): Tracker {
  let trackerConfig: LoomConfig['tracker'] = { type: 'local' };
  try {
    trackerConfig = loadConfig(paths.config).tracker;
  } catch {
    // an invalid config is reported by the command itself; the tracker choice falls back to local
  }
  return createTracker(paths, trackerConfig, options);
}

/** Runs `fn` with the configured tracker and always releases it (database handles, timers). */
export async function withTracker<T>(paths: LoomPaths, options: { readonly?: boolean; actor?: string }, fn: (tracker: Tracker) => Promise<T>): Promise<T> {
  const tracker = openTracker(paths, options);
  try {
    return await fn(tracker);
  } finally {
    tracker.dispose();
  }
}

/**
 * The error for a number that names no issue. Issues and pull requests share one number sequence
 * (as on GitHub), so a pull request's number says so and names its issue; `command` (`logs`,
 * `why`, …) makes that a command to copy.
 */
export async function missingIssue(tracker: Tracker, number: number, command?: string): Promise<UserError> {
  const pr = await tracker.getPullRequest(number).catch(() => null);
  if (pr === null) return new UserError(`issue #${number} does not exist; see \`loom issue list --state all\``);
  const forIssue = pr.closesIssue === null ? `; see \`loom pr show ${number}\`` : `; it is for issue #${pr.closesIssue}${command === undefined ? '' : `: \`loom ${command} ${pr.closesIssue}\``}`;
  return new UserError(`#${number} is a pull request, not an issue (issues and pull requests share one number sequence)${forIssue}`);
}

/** Parses a positive issue number argument or throws a `UserError`. */
export function parseIssueNumber(value: string): number {
  const text = value.replace(/^#/, '');
  if (!/^\d+$/.test(text) || Number(text) < 1) throw new UserError(`"${value}" is not an issue number; use a positive number like 12`);
  return Number(text);
}
