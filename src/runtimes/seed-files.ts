/**
 * `seedFiles`: a task home seeded from the user's own CLI config and login. Invariant: a file
 * already in the home is never overwritten — seeding happens once, and what the CLI changed there
 * since (a refreshed login, its settings) stays.
 */
import fs from 'node:fs';
import path from 'node:path';

/** Copies `files` from `from` into `to` (created) once: files already there are kept. */
export function seedFiles(from: string, to: string, files: readonly string[]): void {
  fs.mkdirSync(to, { recursive: true });
  for (const file of files) {
    const source = path.join(from, file);
    const target = path.join(to, file);
    if (path.resolve(source) !== path.resolve(target) && fs.existsSync(source) && !fs.existsSync(target)) fs.copyFileSync(source, target);
  }
}
