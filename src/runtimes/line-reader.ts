/**
 * `LineReader`: splits a stream of text into lines. Invariant: every line reaches `line` exactly
 * once, in order, without its `\n`; text after the last `\n` waits for more, and `end` hands it
 * over as the last line.
 */

/** Splits a stream of text into lines (without the `\n`) for `line`; `end` hands over an unterminated last line. */
export abstract class LineReader {
  private partial = '';

  protected abstract line(line: string): void;

  write(text: string): void {
    if (text === '') return;
    const lines = (this.partial + text).split('\n');
    this.partial = lines.pop() ?? '';
    for (const line of lines) this.line(line);
  }

  end(): void {
    const last = this.partial;
    this.partial = '';
    if (last !== '') this.line(last);
  }
}
