/**
 * `writeFileAtomic` and `readJsonFile` (src/fs/atomic-file.ts) on real files: a reader never sees
 * a partial file, the target is replaced (not rewritten in place), no temp file is left behind,
 * and a missing file reads as `undefined` while a broken one throws.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { readJsonFile, writeFileAtomic } from '../../src/fs/atomic-file.js';
import type { Child } from '../helpers/child-process.js';
import { killAll, runNodeScript, waitForExit, waitUntil } from '../helpers/child-process.js';

const dirs: string[] = [];
const children: Child[] = [];

afterEach(async () => {
  await killAll(children);
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'loom-atomic-')));
  dirs.push(dir);
  return dir;
}

describe('writeFileAtomic', () => {
  it('creates a file with exactly the data, and leaves nothing else in the directory', () => {
    const dir = tempDir();
    const file = path.join(dir, 'state.json');
    writeFileAtomic(file, '{"a":1}\n');
    expect(fs.readFileSync(file, 'utf8')).toBe('{"a":1}\n');
    expect(fs.readdirSync(dir)).toEqual(['state.json']);
  });

  it('writes unicode and empty content byte for byte', () => {
    const dir = tempDir();
    const file = path.join(dir, 'f');
    writeFileAtomic(file, 'ünïcødé ✓ 🧶\n');
    expect(fs.readFileSync(file, 'utf8')).toBe('ünïcødé ✓ 🧶\n');
    writeFileAtomic(file, '');
    expect(fs.readFileSync(file, 'utf8')).toBe('');
  });

  it('replaces the file with a new one: a reader that opened the old file still reads all of the old content', () => {
    const dir = tempDir();
    const file = path.join(dir, 'state.json');
    fs.writeFileSync(file, 'old content\n');
    const oldInode = fs.statSync(file).ino;
    const fd = fs.openSync(file, 'r');
    try {
      writeFileAtomic(file, 'new\n');
      expect(fs.readFileSync(fd, 'utf8')).toBe('old content\n');
    } finally {
      fs.closeSync(fd);
    }
    expect(fs.readFileSync(file, 'utf8')).toBe('new\n');
    expect(fs.statSync(file).ino).not.toBe(oldInode);
    expect(fs.readdirSync(dir)).toEqual(['state.json']);
  });

  it('without durability (no fsync) still replaces the file whole: a new inode, nothing else left in the directory', () => {
    const dir = tempDir();
    const file = path.join(dir, 'ticket.json');
    fs.writeFileSync(file, 'old content\n');
    const oldInode = fs.statSync(file).ino;
    writeFileAtomic(file, '{"step":"merging"}', { durable: false });
    expect(fs.readFileSync(file, 'utf8')).toBe('{"step":"merging"}');
    expect(fs.statSync(file).ino).not.toBe(oldInode);
    expect(fs.readdirSync(dir)).toEqual(['ticket.json']);
  });

  it('leaves no temp file and keeps the target when the rename fails (the target is a directory)', () => {
    const dir = tempDir();
    const target = path.join(dir, 'taken');
    fs.mkdirSync(target);
    fs.writeFileSync(path.join(target, 'inside'), 'x');
    expect(() => writeFileAtomic(target, 'data')).toThrow();
    expect(fs.readdirSync(dir)).toEqual(['taken']);
    expect(fs.readdirSync(target)).toEqual(['inside']);
  });

  it('throws ENOENT when the directory does not exist', () => {
    const dir = tempDir();
    expect(() => writeFileAtomic(path.join(dir, 'missing', 'f.json'), '{}')).toThrow(expect.objectContaining({ code: 'ENOENT' }));
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('never shows a reader in another process a partial or empty file while it is rewritten many times', { timeout: 60_000 }, async () => {
    const dir = tempDir();
    const file = path.join(dir, 'big.json');
    const stop = path.join(dir, 'stop');
    // Two large, different contents: a torn read would be a prefix of one or a mix of both.
    const a = JSON.stringify({ fill: 'a'.repeat(1 << 20) });
    const b = JSON.stringify({ fill: 'b'.repeat(1 << 19), more: 'c'.repeat(1 << 19), end: true });
    writeFileAtomic(file, a);
    const reader = `
      const fs = require('node:fs');
      const [file, stop, lenA, lenB] = process.argv.slice(1);
      let reads = 0, torn = 0, sample = '';
      process.stdout.write('ready\\n');
      while (!fs.existsSync(stop)) {
        const text = fs.readFileSync(file, 'utf8');
        reads++;
        const whole = (text.length === Number(lenA) && text.startsWith('{"fill":"a') && text.endsWith('a"}'))
          || (text.length === Number(lenB) && text.endsWith('"end":true}'));
        if (!whole) { torn++; sample = text.slice(0, 20) + '…' + text.length; }
      }
      process.stdout.write(JSON.stringify({ reads, torn, sample }) + '\\n');
    `;
    const child = runNodeScript(children, reader, [file, stop, String(a.length), String(b.length)]);
    await waitUntil(() => child.lines.includes('ready'), 'the reader to start');

    for (let i = 0; i < 60; i++) writeFileAtomic(file, i % 2 === 0 ? b : a);
    fs.writeFileSync(stop, '');
    await waitForExit(child);

    expect(child.stderr).toBe('');
    const report = JSON.parse(child.lines[1] ?? '{}') as { reads: number; torn: number; sample: string };
    expect(report.reads).toBeGreaterThan(0);
    expect(report).toMatchObject({ torn: 0 });
    expect(fs.readdirSync(dir).sort()).toEqual(['big.json', 'stop']);
  });
});

describe('readJsonFile', () => {
  it('parses the JSON of a file written by writeFileAtomic', () => {
    const file = path.join(tempDir(), 'x.json');
    const value = { n: 1, list: [1, 'two', null], nested: { ok: true } };
    writeFileAtomic(file, JSON.stringify(value));
    expect(readJsonFile(file)).toEqual(value);
  });

  it('returns undefined for a missing file (and creates nothing)', () => {
    const dir = tempDir();
    expect(readJsonFile(path.join(dir, 'nope.json'))).toBeUndefined();
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('parses any JSON value, not only objects', () => {
    const dir = tempDir();
    for (const [name, text, value] of [
      ['null', 'null', null],
      ['number', '42', 42],
      ['list', '[1,2]', [1, 2]],
      ['string', '"s"', 's'],
    ] as const) {
      fs.writeFileSync(path.join(dir, name), text);
      expect(readJsonFile(path.join(dir, name))).toEqual(value);
    }
  });

  it('throws on invalid or truncated JSON and on an empty file', () => {
    const dir = tempDir();
    fs.writeFileSync(path.join(dir, 'truncated'), '{"a": [1, 2');
    fs.writeFileSync(path.join(dir, 'empty'), '');
    expect(() => readJsonFile(path.join(dir, 'truncated'))).toThrow(SyntaxError);
    expect(() => readJsonFile(path.join(dir, 'empty'))).toThrow(SyntaxError);
  });

  it('throws, not undefined, when the path cannot be read (a directory)', () => {
    const dir = tempDir();
    expect(() => readJsonFile(dir)).toThrow(expect.objectContaining({ code: 'EISDIR' }));
  });
});
