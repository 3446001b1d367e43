/**
 * The one place that builds a tracker adapter from the config: nothing else names an adapter
 * class. A tracker that cannot be opened is a `LoomError` saying what to do.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { TrackerConfig } from '../core/config-model.js';
import { UserError } from '../core/errors.js';
import type { LoomPaths } from '../config/paths.js';
import { touchWake } from '../process/wake.js';
import { EventLog } from '../process/event-log.js';
import type { Tracker } from './tracker.js';
import { TrackerTokenMissingError } from './tracker-errors.js';

/**
 * The configured tracker, loading only its own modules (a local tracker's process never loads the
 * GitHub client, a GitHub tracker's never opens SQLite). Throws `TrackerTokenMissingError` when the github tracker finds no
 * token, and a `UserError` when the local tracker's file has not been created (`loom init`).
 */
export async function createTracker(paths: LoomPaths, trackerConfig: TrackerConfig, options: { readonly?: boolean; actor?: string } = {}): Promise<Tracker> {
  if (trackerConfig.type === 'github') {
    const [{ GitHubTracker }, { githubToken }] = await Promise.all([import('./github/github-tracker.js'), import('./github/github-token.js')]);
    const token = githubToken(process.env);
    if (token === null) throw new TrackerTokenMissingError('the github tracker needs a token: set GITHUB_TOKEN (or GH_TOKEN), or log in with `gh auth login`');
    return new GitHubTracker({
      owner: trackerConfig.owner,
      repo: trackerConfig.repo,
      token,
      trust: { allow: trackerConfig.trustedUsers },
      cacheFile: path.join(paths.dir, 'github-cache.json'),
      // What Loom's working processes spend of the rate limit goes to the event log (a read-only
      // reader — status, the dashboard — writes nothing there).
      ...(options.readonly === true
        ? {}
        : {
            onDispose: ({ requests, conditionalHits, rateLimit }: { requests: number; conditionalHits: number; rateLimit: { remaining: number | null; limit: number | null } }) => {
              if (requests > 0) new EventLog(paths.events).emit('tracker.usage', { requests, conditional_hits: conditionalHits, rate_limit_remaining: rateLimit.remaining ?? undefined, rate_limit_limit: rateLimit.limit ?? undefined });
            },
          }),
      readonly: options.readonly ?? false,
      ...(trackerConfig.baseUrl ? { baseUrl: trackerConfig.baseUrl } : {}),
    });
  }
  const { LocalTracker } = await import('./local/local-tracker.js');
  if (!fs.existsSync(paths.trackerDb)) throw new UserError(`the local tracker (${paths.trackerDb}) is missing; run \`loom init\` to create it`);
  return new LocalTracker({ path: paths.trackerDb, actor: options.actor ?? 'loom', readonly: options.readonly ?? false, onWrite: () => touchWake(paths.wake) });
}

/** Creates the local tracker's file (`.loom/tracker.db`) with its schema unless it exists; `loom init` does. */
export async function ensureLocalTracker(paths: LoomPaths): Promise<void> {
  const { LocalTracker } = await import('./local/local-tracker.js');
  new LocalTracker({ path: paths.trackerDb }).dispose();
}
