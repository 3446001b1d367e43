/**
 * What every command needs: the repository root, the `.loom/` paths, the validated config and a
 * tracker. Finding them is where most user errors surface, so every failure here is a
 * `UserError` with the command that fixes it.
 */
import fs from 'node:fs';
import type { LoomConfig } from '../core/config-model.js';
import { ConfigError, describeConfigError, lastGoodConfig, loadConfig } from '../config/config.js';
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

/**
 * The validated config, or a `UserError` naming every problem. A process the daemon started
 * (`LOOM_DAEMON_SESSION` set: an iteration, a shepherd, a role) falls back to the daemon's last
 * good configuration instead, with a warning on stderr, so an invalid edit does not stop the work.
 */
export function requireConfig(paths: LoomPaths): LoomConfig {
  try {
    return loadConfig(paths.config);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    const message = describeConfigError(error, process.cwd());
    const fallback = process.env.LOOM_DAEMON_SESSION !== undefined ? lastGoodConfig(paths) : null;
    if (fallback === null) throw new UserError(message);
    process.stderr.write(`loom: warning: ${message}; using the daemon's last good configuration until it is fixed\n`);
    return fallback;
  }
}

/** The configured tracker; a `UserError` when it cannot be opened. */
export function openTracker(paths: LoomPaths, options: { readonly?: boolean; actor?: string } = {}): Promise<Tracker> {
  // An invalid config is an error here too: guessing the local tracker would act on the wrong one.
  return createTracker(paths, requireConfig(paths).tracker, options);
}

/** Runs `fn` with the configured tracker and always releases it (database handles, timers). */
export async function withTracker<T>(paths: LoomPaths, options: { readonly?: boolean; actor?: string }, fn: (tracker: Tracker) => Promise<T>): Promise<T> {
  const tracker = await openTracker(paths, options);
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
