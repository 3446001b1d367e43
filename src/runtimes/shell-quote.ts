/**
 * `shellQuote`: one word for `sh -c`. Invariant: the shell reads the quoted word back as exactly
 * the word, whatever characters it holds.
 */

/** Quotes one word for `sh -c`. */
export function shellQuote(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}
