/**
 * Crash-safe file replacement: write a temp file beside the target, fsync it, rename it over
 * the target, fsync the directory. A reader sees either the old or the new content, never a mix.
 * `durable: false` skips both fsyncs, for a file that speaks only of live processes (a merge queue
 * ticket, the agent a lease runs): the rename still replaces it whole for every reader and across
 * a killed process, and after a machine crash, when its processes are gone, its content no longer
 * counts (its readers take an unreadable one for none).
 */
import fs from 'node:fs';
import path from 'node:path';

export function writeFileAtomic(file: string, data: string, hooks: { beforeRename?: () => void; durable?: boolean } = {}): void {
  const durable = hooks.durable ?? true;
  const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2, 8)}.tmp`;
  const fd = fs.openSync(tmp, 'w', 0o644);
  try {
    fs.writeSync(fd, data);
    if (durable) fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  hooks.beforeRename?.();
  try {
    fs.renameSync(tmp, file);
  } catch (error) {
    fs.rmSync(tmp, { force: true });
    throw error;
  }
  if (!durable) return;
  try {
    const dir = fs.openSync(path.dirname(file), 'r');
    try {
      fs.fsyncSync(dir);
    } finally {
      fs.closeSync(dir);
    }
  } catch {
    // Some filesystems refuse fsync on a directory; the rename is still atomic.
  }
}

/** Parsed JSON of a file, `undefined` if it does not exist; throws on unreadable/invalid content. */
export function readJsonFile(file: string): unknown {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  return JSON.parse(text) as unknown;
}

/**
 * Removes the temp files `writeFileAtomic` (and other writers naming theirs `<file>.<pid>.<tag>.tmp`,
 * or `<lock>.<pid>.tmp` as the lock files do)
 * left in `dir` when their writer was killed between writing and renaming: those whose writer
 * `isAlive` says is gone. Returns the names removed.
 */
export function removeStaleTempFiles(dir: string, isAlive: (pid: number) => boolean): string[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    // `<file>.<pid>.<tag>.tmp`, or a lock file's `<lock>.<pid>.tmp` (written, then hard-linked into place).
    const pid = /\.(\d+)(?:\.[^./]+)?\.tmp$/.exec(name)?.[1];
    if (pid === undefined || isAlive(Number(pid))) continue;
    fs.rmSync(path.join(dir, name), { force: true });
    removed.push(name);
  }
  return removed;
}
