/**
 * Where Codex may keep its home. On Linux with bubblewrap installed, Codex runs every tool call
 * through its sandbox helper, which it links into its home — and it refuses to do that in a home
 * under the system temp directory: every tool call then fails. A task home that lies under the
 * temp directory (a repository checked out there, or a task without a state dir) is therefore
 * moved to the user's cache (`~/.cache/loom/codex-homes/<key>`), one directory per task home, so
 * it stays stable for a resume.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

function realish(dir: string): string {
  try {
    return fs.realpathSync(dir);
  } catch {
    return path.resolve(dir);
  }
}

function isUnder(dir: string, parent: string): boolean {
  const relative = path.relative(parent, dir);
  return relative === '' || (!relative.startsWith('..') && !path.isAbsolute(relative));
}

/** `dir`, or a stable stand-in under `~/.cache/loom/codex-homes/` when `dir` is under a temp directory. */
export function codexHome(dir: string, env: NodeJS.ProcessEnv = process.env): string {
  const temps = [os.tmpdir(), '/tmp', '/var/tmp'].map(realish);
  const target = path.resolve(dir);
  // The directory may not exist yet: compare its nearest existing parent's real path.
  let probe = target;
  while (!fs.existsSync(probe) && path.dirname(probe) !== probe) probe = path.dirname(probe);
  const real = path.join(realish(probe), path.relative(probe, target));
  if (!temps.some((temp) => isUnder(real, temp))) return dir;
  // The user's cache — the first candidate that is not itself under a temp directory (a HOME
  // under /tmp, as in a throw-away account, falls through to the account's home from passwd).
  const caches = [env.XDG_CACHE_HOME, env.HOME === undefined ? undefined : path.join(env.HOME, '.cache'), path.join(os.userInfo().homedir, '.cache')];
  const cache = caches.find((c): c is string => c !== undefined && c !== '' && path.isAbsolute(c) && !temps.some((temp) => isUnder(realish(c), temp)));
  if (cache === undefined) return dir;
  const key = createHash('sha256').update(real).digest('hex').slice(0, 16);
  return path.join(cache, 'loom', 'codex-homes', key);
}
