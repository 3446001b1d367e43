/**
 * `execLine`: the `sh -c` line that starts an agent CLI. Invariant: every word reaches the CLI as
 * it is (quoted), the CLI replaces the shell (`exec`: it leads its process group itself, so the
 * watchdogs' kill reaches it), and its stdin is the given file, else closed.
 */
import { shellQuote } from './shell-quote.js';

/** Prompts longer than this go through a file on stdin: one argv string is capped at 128 KiB. */
const PROMPT_ARG_LIMIT = 100_000;

/** Whether a prompt is too long to pass as one argument (`PROMPT_ARG_LIMIT`). */
export function promptNeedsStdin(prompt: string): boolean {
  return Buffer.byteLength(prompt) > PROMPT_ARG_LIMIT;
}

/** `exec <program> <words…> [<stdinFile]`: `program` is shell text (a command prefix, quoted by the caller when it is a path), the words are quoted. */
export function execLine(program: string, words: readonly string[], stdinFile?: string): string {
  return `exec ${program} ${words.map(shellQuote).join(' ')}${stdinFile === undefined ? '' : ` <${shellQuote(stdinFile)}`}`;
}
