import fs from 'node:fs';

/** Bytes free for an unprivileged user on the filesystem holding `dir`, or null when it cannot be read. */
export function freeDiskBytes(dir: string): number | null {
  try {
    const s = fs.statfsSync(dir);
    return s.bavail * s.bsize;
  } catch {
    return null;
  }
}
