/**
 * Failures of the machine under `.loom/` that the user fixes, not bugs: a tracker database that
 * is not a database any more, files Loom may not write. Each becomes one line saying what to do.
 */
import path from 'node:path';

const CORRUPT = ['SQLITE_NOTADB', 'SQLITE_CORRUPT'];
const READONLY = ['SQLITE_READONLY', 'SQLITE_CANTOPEN', 'SQLITE_READONLY_DIRECTORY'];
const DENIED = ['EACCES', 'EPERM', 'EROFS'];
/** A file where Loom needs a directory (`.loom/worktrees` made a plain file): mkdir says EEXIST, a path through it ENOTDIR. */
const IN_THE_WAY = ['EEXIST', 'ENOTDIR'];

/** The line to print for `error`, or null when it is not such a failure. */
export function systemErrorLine(error: unknown, cwd: string): string | null {
  if (typeof error !== 'object' || error === null) return null;
  const { code, path: file, message, syscall } = error as { code?: unknown; path?: unknown; message?: unknown; syscall?: unknown };
  if (typeof code !== 'string') return null;
  const where = typeof file === 'string' ? path.relative(cwd, file) || file : null;
  if (CORRUPT.some((c) => code.startsWith(c)))
    return `the local tracker database is not readable (${String(message)}): restore .loom/tracker.db from a backup, or move it aside and run \`loom init\` for an empty one`;
  if (READONLY.some((c) => code.startsWith(c))) return `cannot write the local tracker database (${code}): check that .loom/ and .loom/tracker.db are writable by this user`;
  if (IN_THE_WAY.includes(code) && (code === 'ENOTDIR' || syscall === 'mkdir')) return `cannot use ${where ?? 'a directory under .loom/'} (${code}): a file is where Loom needs a directory; move it aside`;
  if (DENIED.includes(code)) return `cannot write ${where ?? 'a file under .loom/'} (${code}): check that .loom/ and its files are writable by this user`;
  return null;
}
