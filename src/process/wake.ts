/**
 * The wake file `.loom/wake`: touched by every local tracker write and by a shepherd or role when
 * it finishes, so the parent loop can start the next iteration at once instead of sleeping out
 * the poll interval. Its modification time is the whole signal.
 */
import fs from 'node:fs';

export function touchWake(file: string): void {
  try {
    const now = new Date();
    fs.utimesSync(file, now, now);
  } catch {
    try {
      fs.writeFileSync(file, '');
    } catch {
      // Best effort: without the wake file the daemon still polls.
    }
  }
}

/** A value that changes whenever the wake file is touched (0 when it does not exist). */
export function wakeStamp(file: string): number {
  try {
    return fs.statSync(file).mtimeMs;
  } catch {
    return 0;
  }
}
