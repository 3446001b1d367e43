/**
 * `firstLine` / `lastLine`: one line of an agent's text for a message. Invariant: the line is
 * trimmed and never blank — '' only when the text has no non-blank line.
 */

export function firstLine(text: string): string {
  return text.split(/\r?\n/).find((l) => l.trim() !== '')?.trim() ?? '';
}

export function lastLine(text: string): string {
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '');
  return lines[lines.length - 1]?.trim() ?? '';
}
