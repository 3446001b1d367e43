/** The names in a directory; an empty list when it does not exist or cannot be read. */
import fs from 'node:fs';

export function listDir(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}
