/**
 * How a person types this Loom: `loom` when the first `loom` on their PATH is this very Loom
 * (after `npm link` or a global install), else the full path of its binary. Printed hints use it,
 * so a command Loom suggests works when copied as printed.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** A word for the shell: as is when it needs no quoting, else single-quoted. */
export function shellWord(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

function realpath(file: string): string | null {
  try {
    return fs.realpathSync(file);
  } catch {
    return null;
  }
}

export interface TypedLoom {
  /** `loom`, or the binary's full path (shell-quoted when it needs to be). */
  command: string;
  /** Whether `loom` on the PATH is this Loom. */
  onPath: boolean;
  /** This Loom's own folder (where `npm link` puts it on the PATH). */
  home: string;
}

export function typedLoom(env: NodeJS.ProcessEnv = process.env): TypedLoom {
  const bin = fileURLToPath(new URL('../../bin/loom.js', import.meta.url));
  const home = path.dirname(path.dirname(bin));
  const own = { command: shellWord(bin), onPath: false, home };
  for (const dir of (env.PATH ?? '').split(path.delimiter)) {
    if (dir === '') continue;
    const candidate = path.join(dir, 'loom');
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
    } catch {
      continue;
    }
    // The first `loom` on the PATH is the one the shell runs: this Loom, or another one.
    return realpath(candidate) === realpath(bin) ? { command: 'loom', onPath: true, home } : own;
  }
  return own;
}
