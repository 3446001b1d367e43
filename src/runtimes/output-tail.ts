/**
 * `OutputTail`: the last `limit` characters of a stream (what a result keeps of an agent's
 * output). Invariant: `text()` is always the stream's last `limit` characters, and the tail never
 * holds more than twice `limit`, whatever the stream's length.
 */

/** Output kept for the result, in characters; the end matters most (verdicts, last error). */
export const OUTPUT_LIMIT = 1024 * 1024;

/** Keeps the last `limit` characters of a stream without re-copying the whole text per chunk. */
export class OutputTail {
  private chunks: string[] = [];
  private length = 0;

  constructor(private readonly limit: number = OUTPUT_LIMIT) {}

  add(text: string): void {
    this.chunks.push(text);
    this.length += text.length;
    // Compact only once we hold twice the limit, so the cost stays linear in the output size.
    if (this.length > this.limit * 2) {
      const kept = this.text();
      this.chunks = [kept];
      this.length = kept.length;
    }
  }

  text(): string {
    const all = this.chunks.join('');
    return all.length > this.limit ? all.slice(all.length - this.limit) : all;
  }
}
