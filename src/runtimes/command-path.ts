/**
 * A shell command's program, checked without running it: the word the shell would execute and
 * whether it will run. Light on purpose (no agent machinery): the iteration asks it each tick.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

/** A word the shell takes literally: no quotes, variables, globs or `~`. */
const PLAIN_WORD = /^[A-Za-z0-9_@%+=:,./-]+$/;

/**
 * The executable word of a shell command — after leading `NAME=value` assignments — when it is
 * a plain word Loom can resolve and check; null for anything the shell would expand first.
 */
export function commandHead(command: string): { before: string; word: string; after: string } | null {
  const m = /^(\s*(?:[A-Za-z_][A-Za-z0-9_]*=[A-Za-z0-9_@%+=:,./-]*\s+)*)([^\s;&|<>()]+)([\s\S]*)$/.exec(command);
  if (m === null || !PLAIN_WORD.test(m[2] ?? '')) return null;
  return { before: m[1] ?? '', word: m[2] ?? '', after: m[3] ?? '' };
}

/**
 * Whether `word` (a command's executable) will run: a path (relative ones against `root`) must be
 * an executable file; a bare name must be found by the shell (`PATH`, or a shell builtin).
 * Returns where it was found, or a one-line problem.
 */
export function findExecutable(word: string, root: string, env: NodeJS.ProcessEnv = process.env): { path: string } | { problem: string } {
  if (word.includes('/')) {
    const file = path.resolve(root, word);
    const shown = path.isAbsolute(word) ? word : `${word} (${file}: a relative path is resolved against the repository root)`;
    let stat: fs.Stats;
    try {
      stat = fs.statSync(file);
    } catch {
      return { problem: `${shown} does not exist` };
    }
    if (stat.isDirectory()) return { problem: `${shown} is a directory, not a program` };
    try {
      fs.accessSync(file, fs.constants.X_OK);
    } catch {
      return { problem: `${shown} is not executable: \`chmod +x ${word}\`` };
    }
    return { path: file };
  }
  const found = spawnSync('sh', ['-c', 'command -v -- "$1"', 'sh', word], { env, encoding: 'utf8', timeout: 10_000 });
  const where = found.stdout.trim();
  return found.status === 0 && where !== '' ? { path: where } : { problem: `\`${word}\` is not found on PATH` };
}

/**
 * The problem with the builder's `command` when its program is a path that will not run (a typo
 * such as `./scripts/agnet.sh`, a file not executable), in one line; else null. Bare names on
 * `PATH` are not looked up here (that takes a process). Every issue built with it would fail at
 * once and end blocked.
 */
export function builderCommandProblem(root: string, builder: { runtime: string | undefined; command: string | undefined }): string | null {
  if (builder.runtime !== 'command' || builder.command === undefined) return null;
  const head = commandHead(builder.command);
  if (head === null || !head.word.includes('/')) return null;
  const found = findExecutable(head.word, root);
  return 'problem' in found ? `the builder's command: ${found.problem}; no shepherd starts until it is fixed (\`loom doctor\` checks every role)` : null;
}
