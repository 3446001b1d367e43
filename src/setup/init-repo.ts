/**
 * `loom init`: sets up `.loom/` in a git repository — config, git-ignore of runtime files, the
 * local tracker — and, with `--claude`, the Claude Code slash commands (`slash-commands.ts`).
 * Idempotent: an existing config is kept.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { loomPaths, GITIGNORE_LINES } from '../config/paths.js';
import { createTracker, ensureLocalTracker } from '../tracker/create-tracker.js';
import type { Tracker } from '../tracker/tracker.js';
import { TrackerTokenMissingError } from '../tracker/tracker-errors.js';
import { loadConfig } from '../config/config.js';
import { findRepoRoot } from '../git/repo-root.js';
import { UserError } from '../core/errors.js';
import { writeSlashCommands } from './slash-commands.js';

export const STARTER_CONFIG = {
  tracker: { type: 'local' },
  maxShepherds: 3,
  pollInterval: '30s',
  issueThreshold: 3,
  maxProposals: 5,
  roles: {},
};

/** `owner/repo` of a GitHub remote URL (https or ssh), or null. */
export function githubRepoOf(url: string): { owner: string; repo: string } | null {
  const m = /github\.com[:/]([^/\s]+)\/([^/\s]+?)(?:\.git)?\/?$/.exec(url.trim());
  return m?.[1] && m[2] ? { owner: m[1], repo: m[2] } : null;
}

export async function runInit(opts: { cwd: string; claude: boolean; log: (line: string) => void }): Promise<void> {
  const root = findRepoRoot(opts.cwd);
  if (root === null) throw new UserError(`${opts.cwd} is not inside a git repository; run \`git init\` first (Loom works on a git repository)`);
  const paths = loomPaths(root);
  const existed = fs.existsSync(paths.config);
  for (const dir of [paths.dir, paths.progress, paths.logs, paths.roles]) fs.mkdirSync(dir, { recursive: true });
  if (!existed) {
    // A repository whose origin is on GitHub gets the github tracker; anything else the local one.
    let origin = '';
    try {
      origin = execFileSync('git', ['remote', 'get-url', 'origin'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    } catch {
      // no origin
    }
    const gh = githubRepoOf(origin);
    const tracker = gh ? { type: 'github', owner: gh.owner, repo: gh.repo } : STARTER_CONFIG.tracker;
    fs.writeFileSync(paths.config, `${JSON.stringify({ ...STARTER_CONFIG, tracker }, null, 2)}\n`);
    if (gh) opts.log(`origin is github.com/${gh.owner}/${gh.repo}: using the github tracker`);
  }
  const config = loadConfig(paths.config);
  if (config.tracker.type === 'github') {
    let tracker: Tracker | null = null;
    try {
      tracker = createTracker(paths, config.tracker);
    } catch (error) {
      if (!(error instanceof TrackerTokenMissingError)) throw error;
      opts.log('No GitHub token (GITHUB_TOKEN, GH_TOKEN or `gh auth token`): set one and run `loom init` again to create the loom:* labels.');
    }
    if (tracker !== null) {
      try {
        const { created, updated } = await tracker.ensureLabels();
        opts.log(`GitHub labels: ${created.length} created, ${updated.length} updated, the rest already right.`);
      } finally {
        tracker.dispose();
      }
    }
  }
  fs.writeFileSync(path.join(paths.dir, '.gitignore'), `# Loom runtime files (config.json and roles/ are meant to be committed)\n${GITIGNORE_LINES.join('\n')}\n`);
  ensureLocalTracker(paths);
  opts.log(existed ? `Loom is already set up in ${root}; kept .loom/config.json` : `Set up Loom in ${root}: .loom/config.json, local tracker, runtime files git-ignored`);
  if (opts.claude) writeSlashCommands(root, opts.log);
  opts.log('Next: pick the agents ("runtime": "claude", "codex", "gemini" or "opencode" in .loom/config.json; `loom doctor` shows what is installed), add issues with `loom issue create "Title" --label loom:issue`, then `loom start --detach` (in the background; `loom service install` to have it start at login).');
}
