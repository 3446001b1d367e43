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
import { originalKeysOf } from '../config/original-config.js';
import { findRepoRoot } from '../git/repo-root.js';
import { UserError } from '../core/errors.js';
import { bwrapStatus } from '../process/sandbox-probe.js';
import { writeSlashCommands } from './slash-commands.js';

export const STARTER_CONFIG = {
  tracker: { type: 'local' },
  maxShepherds: 3,
  pollInterval: '30s',
  issueThreshold: 3,
  maxProposals: 5,
  roles: {},
};

/** Refuses, changing nothing, when `file` is the original Loom's config.json. */
function refuseOriginal(file: string): void {
  let doc: unknown;
  try {
    doc = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    return; // not JSON: loading it below says what is wrong
  }
  const keys = originalKeysOf(doc);
  if (keys.length > 0) throw new UserError(`.loom/config.json is a configuration of the original Loom (${keys.join(', ')}); run \`loom migrate\` to convert it, then \`loom init\` again — nothing was changed`);
}

/**
 * `.loom/.gitignore` with Loom's runtime files: written when missing; an existing one (the
 * user's, or the original Loom's) keeps its lines and gets the missing ones appended.
 */
function writeGitignore(file: string): 'created' | 'appended' | 'kept' {
  if (!fs.existsSync(file)) {
    fs.writeFileSync(file, `# Loom runtime files (config.json and roles/ are meant to be committed)\n${GITIGNORE_LINES.join('\n')}\n`);
    return 'created';
  }
  const text = fs.readFileSync(file, 'utf8');
  const have = new Set(text.split(/\r?\n/).map((l) => l.trim()));
  const missing = GITIGNORE_LINES.filter((l) => !have.has(l));
  if (missing.length === 0) return 'kept';
  fs.writeFileSync(file, `${text}${text.endsWith('\n') || text === '' ? '' : '\n'}# Loom runtime files\n${missing.join('\n')}\n`);
  return 'appended';
}

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
  // An installation of the original Loom is converted by `loom migrate`, not set up over: nothing is touched.
  if (existed) refuseOriginal(paths.config);
  for (const dir of [paths.dir, paths.progress, paths.logs, paths.roles]) {
    if (fs.existsSync(dir) && !fs.statSync(dir).isDirectory()) throw new UserError(`${path.relative(root, dir)} exists but is not a directory; move it away, then run \`loom init\` again`);
  }
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
    // Agents run sandboxed wherever bubblewrap works (docs/security.md); elsewhere the config says they are not.
    const bwrap = bwrapStatus();
    fs.writeFileSync(paths.config, `${JSON.stringify({ ...STARTER_CONFIG, tracker, sandbox: bwrap.ok ? 'bwrap' : 'none' }, null, 2)}\n`);
    if (gh) opts.log(`origin is github.com/${gh.owner}/${gh.repo}: using the github tracker`);
    opts.log(bwrap.ok ? 'Agents will run in a bubblewrap sandbox ("sandbox": "bwrap"): each sees only its worktree.' : `Agents will NOT be sandboxed ("sandbox": "none"): ${bwrap.kind === 'missing' ? 'bubblewrap is not installed' : `bubblewrap cannot sandbox here (${bwrap.detail})`}; \`loom doctor\` says what to do.`);
  }
  const config = loadConfig(paths.config);
  if (config.tracker.type === 'github') {
    let tracker: Tracker | null = null;
    try {
      tracker = await createTracker(paths, config.tracker);
    } catch (error) {
      if (!(error instanceof TrackerTokenMissingError)) throw error;
      opts.log('No GitHub token (GITHUB_TOKEN, GH_TOKEN or `gh auth token`): set one and run `loom init` again to create the loom:* labels.');
    }
    if (tracker !== null) {
      try {
        const { created, differing } = await tracker.ensureLabels();
        opts.log(`GitHub labels: ${created.length} created${differing.length > 0 ? `; ${differing.length} differ from Loom's and are left as they are: ${differing.join(', ')}` : ''}; existing labels are never changed.`);
      } finally {
        tracker.dispose();
      }
    }
  }
  const ignore = writeGitignore(path.join(paths.dir, '.gitignore'));
  const hadTracker = fs.existsSync(paths.trackerDb);
  await ensureLocalTracker(paths);
  if (existed) {
    const wrote = [...(ignore === 'created' ? ['created .loom/.gitignore'] : ignore === 'appended' ? ['added missing lines to .loom/.gitignore'] : []), ...(hadTracker ? [] : ['created the local tracker .loom/tracker.db'])];
    opts.log(`Loom is already set up in ${root}; kept .loom/config.json${wrote.length > 0 ? `; ${wrote.join(', ')}` : ''}`);
  } else opts.log(`Set up Loom in ${root}: .loom/config.json, local tracker, runtime files git-ignored`);
  if (opts.claude) writeSlashCommands(root, opts.log);
  opts.log('Next: pick the agents ("runtime": "claude", "codex", "gemini" or "opencode" in .loom/config.json; `loom doctor` shows what is installed), add issues with `loom issue create "Title" --label loom:issue`, then `loom start --detach` (in the background; `loom service install` to have it start at login).');
}
