/**
 * The agent CLIs' homes of a task: `.loom/agent-homes/issue-N` (or `role-<name>`), one directory
 * per CLI inside (`claude`, `codex`, `gemini`, `opencode`), holding the CLI's settings, its copy
 * of the login and its sessions, so that a resume finds its session.
 *
 * An issue's home is needed only while the issue can still run: once the issue is closed
 * (merged, found needing no change, closed by a person) it is removed, with the stand-in a Codex
 * home may have under the user's cache. Otherwise the homes of every issue ever built would stay:
 * session transcripts and login copies, and for opencode a package install of some 60 MB each.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { LoomPaths } from '../config/paths.js';
import { listDir } from '../fs/list-dir.js';
import { codexHome } from './codex-home.js';
import { formatDuration } from '../core/duration.js';

/** The state dir Loom gives an agent run: its issue's, else its role's. */
export function agentHomeDir(paths: LoomPaths, target: { issue?: number; role: string }): string {
  return path.join(paths.agentHomes, target.issue !== undefined ? `issue-${target.issue}` : `role-${target.role}`);
}

/** Issues that have an agent home. */
export function issuesWithAgentHomes(paths: LoomPaths): number[] {
  return listDir(paths.agentHomes)
    .map((name) => /^issue-(\d+)$/.exec(name)?.[1])
    .filter((n): n is string => n !== undefined)
    .map(Number)
    .sort((a, b) => a - b);
}

/** Removes the issue's agent home and its Codex stand-in; the ones that were there. */
function removeIssueAgentHome(paths: LoomPaths, issue: number): string[] {
  const dir = agentHomeDir(paths, { issue, role: '' });
  // The Codex home is elsewhere when the repository lies under a temp directory (then the task's
  // own directory may not even exist).
  const codex = codexHome(path.join(dir, 'codex'));
  const homes = codex === path.join(dir, 'codex') ? [dir] : [dir, codex];
  const there = homes.filter((home) => fs.existsSync(home));
  for (const home of there) fs.rmSync(home, { recursive: true, force: true });
  return there;
}

/** `removeIssueAgentHome` for a run whose work is done: a failure is logged, never thrown. */
export function dropAgentHome(paths: LoomPaths, issue: number, log?: (line: string) => void, why = 'issue closed'): void {
  try {
    const removed = removeIssueAgentHome(paths, issue);
    const elsewhere = removed.filter((home) => !home.startsWith(paths.agentHomes));
    if (removed.length > 0) log?.(`removed the agent home of #${issue} (${why})${elsewhere.map((home) => `, and its Codex home ${home}`).join('')}`);
  } catch (error) {
    log?.(`could not remove the agent home of #${issue}: ${(error as Error).message}`);
  }
}

/**
 * Records that an agent run starts in the task's home (its time is the home's last use): the CLIs
 * write deep inside it, which leaves the directory's own time as it was. A home not there yet is
 * made by the CLI that needs one, with the time of its making.
 */
export function markAgentHomeUsed(home: string, now = new Date()): void {
  try {
    fs.utimesSync(home, now, now);
  } catch {
    // Not there (yet), or not ours to touch: the run goes on.
  }
}

/**
 * Removes the issue homes no agent run started in for longer than `idleMs`, but for the issues in
 * `busy` (running here). For a clone that learns of no issue's close (a `loom worker`'s): a home
 * left by a job handed over, blocked or failed there would stay forever. A resume that finds its
 * session gone starts a new one (steps/run-role-agent.ts).
 */
export function dropIdleAgentHomes(paths: LoomPaths, idleMs: number, now: number, busy: ReadonlySet<number>, log?: (line: string) => void): void {
  for (const issue of issuesWithAgentHomes(paths)) {
    if (busy.has(issue)) continue;
    let used: number;
    try {
      used = fs.statSync(agentHomeDir(paths, { issue, role: '' })).mtimeMs;
    } catch {
      continue;
    }
    if (now - used <= idleMs) continue;
    dropAgentHome(paths, issue, log, `unused for ${formatDuration(now - used)}`);
  }
}
