/**
 * The chunked transfer coding decoder (RFC 9112 §7.1), a state machine fed any split of the input.
 *
 * Invariants:
 * - Data is handed out as views into the input (no copy), at most one view per {@link push}.
 * - Only partial lines are kept between pushes (a size line, trailer lines), bounded by
 *   `maxLineBytes` and `maxTrailerBytes`.
 * - A chunk size is 1*HEXDIG and at most 2^53 - 1; `0x5`, `-1`, ` 5`, an empty size, a bare LF,
 *   and data not followed by CR LF are errors.
 */
import { HttpCodecError } from "./errors.ts";
import { HeaderMap } from "./types.ts";
import { type FieldRules, fieldsOf, latin1, scanHead, VALUE } from "./_h1_fields.ts";

/** Limits of a {@link ChunkedDecoder}. */
export interface ChunkedDecoderOptions {
  /** Error kind for malformed input: `bad_request` for requests, `bad_response` for responses. */
  errorKind?: "bad_request" | "bad_response";
  /** Longest chunk-size line, extensions included. @default {4096} */
  maxLineBytes?: number;
  /** Most bytes in the trailer section. @default {60 * 1024} */
  maxTrailerBytes?: number;
  /** Most trailer fields. @default {100} */
  maxTrailers?: number;
}

const SIZE = 0, DATA = 1, DATA_CR = 2, DATA_LF = 3, TRAILERS = 4, DONE = 5;

/**
 * Decodes a chunked body incrementally.
 *
 * @example
 * ```ts
 * const d = new ChunkedDecoder();
 * const input = new TextEncoder().encode("5\r\nhello\r\n0\r\n\r\n");
 * let used = d.push(input); // d.data is "hello"
 * used += d.push(input.subarray(used)); // d.done is true
 * ```
 */
export class ChunkedDecoder {
  /** The data view produced by the last {@link push}, or null. */
  data: Uint8Array | null = null;
  /** Trailer fields, once {@link done}. */
  trailers: HeaderMap | undefined;
  #state = SIZE;
  #remaining = 0;
  #line = new Uint8Array(64);
  #lineLength = 0;
  #trailerLineStart = 0;
  #maxLine: number;
  #rules: FieldRules;

  /** @param options Limits and the error kind */
  constructor(options: ChunkedDecoderOptions = {}) {
    const bad = options.errorKind ?? "bad_request";
    this.#maxLine = options.maxLineBytes ?? 4096;
    this.#rules = {
      bad,
      tooLarge: bad === "bad_request" ? "headers_too_large" : bad,
      maxFields: options.maxTrailers ?? 100,
      maxBytes: options.maxTrailerBytes ?? 60 * 1024,
      startLine: false,
      section: "trailer",
    };
  }

  /** Whether the last chunk and the trailer section were read. */
  get done(): boolean {
    return this.#state === DONE;
  }

  /**
   * Consumes input until one data view is ready, the input runs out, or the body ends.
   *
   * @param input The next bytes of the connection
   * @returns How many bytes of `input` were used; the rest belongs to what follows the body
   * @throws {HttpCodecError} On a malformed chunk size, missing CR LF, or oversized trailers
   */
  push(input: Uint8Array): number {
    this.data = null;
    let i = 0;
    while (i < input.length) {
      switch (this.#state) {
        case SIZE:
        case TRAILERS: {
          // A size line is kept without its LF; the trailer section is kept whole.
          const lf = input.indexOf(10, i);
          const end = lf < 0 ? input.length : this.#state === SIZE ? lf : lf + 1;
          this.#append(input.subarray(i, end));
          if (lf < 0) return input.length;
          if (this.#state === SIZE) this.#sizeLine(this.#line.subarray(0, this.#lineLength));
          else this.#trailerLine();
          i = lf + 1;
          break;
        }
        case DATA: {
          const n = Math.min(this.#remaining, input.length - i);
          this.data = input.subarray(i, i + n);
          this.#remaining -= n;
          if (this.#remaining === 0) this.#state = DATA_CR;
          return i + n;
        }
        case DATA_CR:
        case DATA_LF:
          if (input[i] !== (this.#state === DATA_CR ? 13 : 10)) {
            throw new HttpCodecError(this.#rules.bad, "chunk data", "Not followed by CR LF");
          }
          this.#state = this.#state === DATA_CR ? DATA_LF : SIZE;
          i++;
          break;
        default:
          return i;
      }
    }
    return i;
  }

  #append(bytes: Uint8Array): void {
    const need = this.#lineLength + bytes.length;
    const max = this.#state === SIZE ? this.#maxLine : this.#rules.maxBytes;
    if (need > max) {
      const where = this.#state === SIZE ? "chunk size" : "trailers";
      const kind = this.#state === SIZE ? this.#rules.bad : this.#rules.tooLarge;
      throw new HttpCodecError(kind, where, `Over ${max} bytes`);
    }
    if (need > this.#line.length) {
      const grown = new Uint8Array(Math.max(need, this.#line.length * 2));
      grown.set(this.#line.subarray(0, this.#lineLength));
      this.#line = grown;
    }
    this.#line.set(bytes, this.#lineLength);
    this.#lineLength = need;
  }

  #sizeLine(line: Uint8Array): void {
    const n = line.length - 1;
    const bad = this.#rules.bad;
    if (n < 0 || line[n] !== 13) {
      throw new HttpCodecError(bad, "chunk size", "Line ends with a bare LF");
    }
    let size = 0, k = 0;
    for (; k < n; k++) {
      const h = hexValue(line[k]);
      if (h < 0) break;
      size = size * 16 + h;
      if (size > Number.MAX_SAFE_INTEGER) throw new HttpCodecError(bad, "chunk size", "Overflow");
    }
    if (k === 0) throw new HttpCodecError(bad, "chunk size", "No hex digits");
    if (!isExtension(line, k, n)) {
      throw new HttpCodecError(bad, "chunk size", "Invalid chunk extension");
    }
    this.#lineLength = 0;
    this.#remaining = size;
    this.#state = size === 0 ? TRAILERS : DATA;
  }

  /** After each LF of the trailer section: at the blank line, parse the fields. */
  #trailerLine(): void {
    const bytes = this.#line.subarray(0, this.#lineLength);
    const lineStart = this.#trailerLineStart;
    this.#trailerLineStart = bytes.length;
    const blank = bytes.length - lineStart === 2 && bytes[lineStart] === 13;
    if (!blank && bytes.length - lineStart > 1) return;
    // scanHead finds the bare LF of a one-byte line, and checks every byte.
    const end = scanHead(bytes, 0, this.#rules);
    if (end < 0) return;
    this.trailers = HeaderMap.fromLowerCase(fieldsOf(latin1(bytes.subarray(0, end)), this.#rules));
    this.#lineLength = 0;
    this.#state = DONE;
  }
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  return -1;
}

/** `*( BWS ";" ... )`: empty, or optional SP/HTAB then `;`, with no CTL anywhere. */
function isExtension(line: Uint8Array, from: number, to: number): boolean {
  let k = from;
  while (k < to && (line[k] === 0x20 || line[k] === 0x09)) k++;
  if (k === to) return k === from;
  if (line[k] !== 0x3b) return false;
  for (; k < to; k++) if (VALUE[line[k]] === 0) return false;
  return true;
}
