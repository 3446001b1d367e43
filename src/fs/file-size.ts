/** A file's size in bytes; 0 for a file that is not there (yet, or any more). */
import fs from 'node:fs';

export function fileSize(file: string): number {
  try {
    return fs.statSync(file).size;
  } catch {
    return 0;
  }
}
