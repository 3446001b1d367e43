/**
 * Size-based rotation of a log that a process writes through a descriptor it was started with
 * (its stdout and stderr): copy the file to `<file>.1`, then truncate it in place ("copytruncate").
 * The descriptor stays valid and, opened for appending, carries on at the start of the emptied
 * file, so even a crash's stack trace written to stderr lands in the current log. Older parts
 * shift to `<file>.2` … `<file>.<keep>`; the oldest is dropped.
 *
 * Loses nothing only when the rotating process is the log's one writer and writes synchronously
 * (Node writes to a file stdout synchronously).
 */
import fs from 'node:fs';

/** Rotates `file`, open as `fd`, when it has grown to `maxBytes`. True when it rotated. */
export function rotateLogIfLarge(fd: number, file: string, maxBytes: number, keep: number): boolean {
  let size: number;
  try {
    const stat = fs.fstatSync(fd);
    if (!stat.isFile()) return false;
    size = stat.size;
  } catch {
    return false;
  }
  if (size < maxBytes) return false;
  try {
    for (let part = keep - 1; part >= 1; part -= 1) {
      if (fs.existsSync(`${file}.${part}`)) fs.renameSync(`${file}.${part}`, `${file}.${part + 1}`);
    }
    fs.copyFileSync(file, `${file}.1`);
  } catch {
    // The log was moved or its directory is not writable: keep writing rather than lose lines.
    return false;
  }
  fs.ftruncateSync(fd, 0);
  return true;
}

/** The parts of a rotated log that exist, oldest first, ending with `file` itself. */
export function logParts(file: string, keep: number): string[] {
  const parts: string[] = [];
  for (let part = keep; part >= 1; part -= 1) if (fs.existsSync(`${file}.${part}`)) parts.push(`${file}.${part}`);
  if (fs.existsSync(file)) parts.push(file);
  return parts;
}
