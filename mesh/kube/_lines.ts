/**
 * Splits a byte stream into `\n`-terminated lines, holding at most `maxLineBytes` of an unfinished
 * line: a watch event is one JSON line, and a peer that never ends one must not fill memory.
 */

/** Thrown when a line grows past the bound. */
export class LineTooLongError extends Error {
  constructor(readonly limit: number) {
    super(`Watch event larger than ${limit} bytes`);
    this.name = "LineTooLongError";
  }
}

/** Accumulates chunks and hands out complete lines. */
export class LineSplitter {
  readonly #max: number;
  readonly #decoder = new TextDecoder();
  #parts: Uint8Array[] = [];
  #size = 0;

  /** @param maxLineBytes Longest line accepted, without its `\n` */
  constructor(maxLineBytes: number) {
    this.#max = maxLineBytes;
  }

  /**
   * Adds a chunk.
   *
   * @returns The lines it completed, without `\n`; empty lines are skipped
   * @throws LineTooLongError when the unfinished line passes the bound
   */
  push(chunk: Uint8Array): string[] {
    const lines: string[] = [];
    let start = 0;
    for (let nl = chunk.indexOf(10); nl >= 0; nl = chunk.indexOf(10, start)) {
      this.#add(chunk.subarray(start, nl));
      const line = this.#take();
      if (line.trim() !== "") lines.push(line);
      start = nl + 1;
    }
    this.#add(chunk.subarray(start));
    return lines;
  }

  #add(part: Uint8Array): void {
    if (part.length === 0) return;
    this.#size += part.length;
    if (this.#size > this.#max) throw new LineTooLongError(this.#max);
    // Copy: the caller may reuse the chunk's buffer.
    this.#parts.push(part.slice());
  }

  #take(): string {
    const bytes = this.#parts.length === 1 ? this.#parts[0] : concat(this.#parts, this.#size);
    this.#parts = [];
    this.#size = 0;
    return this.#decoder.decode(bytes);
  }
}

function concat(parts: Uint8Array[], size: number): Uint8Array {
  const out = new Uint8Array(size);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}
