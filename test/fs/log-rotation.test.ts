// Copy-truncate rotation of a log written through an inherited, appending descriptor: the writer's
// descriptor stays valid, older parts shift, the oldest beyond `keep` is dropped.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { logParts, rotateLogIfLarge } from '../../src/fs/log-rotation.js';

let dir: string;
let file: string;
let fd: number;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'loom-rotate-'));
  file = path.join(dir, 'daemon.log');
  fd = fs.openSync(file, 'a');
});
afterEach(() => {
  fs.closeSync(fd);
  fs.rmSync(dir, { recursive: true, force: true });
});

const write = (text: string) => fs.writeSync(fd, text);
const read = (f: string) => fs.readFileSync(f, 'utf8');

describe('rotateLogIfLarge', () => {
  it('leaves a log under the limit alone', () => {
    write('one\n');
    expect(rotateLogIfLarge(fd, file, 10, 2)).toBe(false);
    expect(logParts(file, 2)).toEqual([file]);
  });

  it('moves the content to .1 and the writer carries on at the start of the emptied file', () => {
    write('0123456789\n');
    expect(rotateLogIfLarge(fd, file, 10, 2)).toBe(true);
    write('next\n');
    expect(read(`${file}.1`)).toBe('0123456789\n');
    expect(read(file)).toBe('next\n');
  });

  it('shifts older parts and drops the one beyond keep', () => {
    for (const text of ['first part\n', 'second part\n', 'third part\n']) {
      write(text);
      expect(rotateLogIfLarge(fd, file, 5, 2)).toBe(true);
    }
    write('current\n');
    expect(logParts(file, 2)).toEqual([`${file}.2`, `${file}.1`, file]);
    expect(logParts(file, 2).map(read)).toEqual(['second part\n', 'third part\n', 'current\n']);
  });

  it('does nothing for a descriptor that is not a file (a terminal or a pipe)', () => {
    const device = fs.openSync('/dev/null', 'a');
    try {
      expect(rotateLogIfLarge(device, '/dev/null', 0, 2)).toBe(false);
    } finally {
      fs.closeSync(device);
    }
    expect(fs.existsSync('/dev/null.1')).toBe(false);
  });
});
