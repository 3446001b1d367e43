// Counts what a piece of code reads from one file through `fs.readSync` (the usage ledger's only
// way of reading), so a test can say how much of a file was read, not how long it took.
import fs from 'node:fs';
import { vi } from 'vitest';

/** Starts counting the bytes read from descriptors opened on `file`; `stop()` ends it and says how many. */
export function countBytesRead(file: string): { stop: () => number } {
  const fds = new Set<number>();
  let bytes = 0;
  const open = fs.openSync;
  const read = fs.readSync;
  const opening = vi.spyOn(fs, 'openSync').mockImplementation(((p: fs.PathLike, ...rest: unknown[]) => {
    const fd = (open as (...a: unknown[]) => number)(p, ...rest);
    if (String(p) === file) fds.add(fd);
    return fd;
  }));
  const reading = vi.spyOn(fs, 'readSync').mockImplementation(((fd: number, ...rest: unknown[]) => {
    const n = (read as (...a: unknown[]) => number)(fd, ...rest);
    if (fds.has(fd)) bytes += n;
    return n;
  }));
  return {
    stop: () => {
      opening.mockRestore();
      reading.mockRestore();
      return bytes;
    },
  };
}
