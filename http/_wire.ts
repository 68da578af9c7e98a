/**
 * A connection as the codecs see it: pulled reads into one buffer, writes that wait for `drain`.
 *
 * Invariants:
 * - The stream stays in paused mode: bytes are taken with `read()` only when a parser or a body
 *   asks for more, so the memory held is the stream's high-water mark plus this buffer.
 * - The buffer is never written into: new bytes replace it or are copied into a new array, so
 *   views handed out by {@link Wire.take} stay valid.
 * - Listeners are attached once per connection and removed by {@link Wire.detach}.
 */
import type { Duplex } from "node:stream";
import { HttpCodecError } from "./errors.ts";
import type { ParsedRequest, ParsedResponse } from "./h1_parse.ts";

const NOTHING = new Uint8Array(0);

/** A wake-up that runs `next` after the one already waiting, if any. */
function both(first: (() => void) | undefined, next: () => void): () => void {
  return first === undefined ? next : () => {
    first();
    next();
  };
}

/** The pulled-read, backpressured-write view of one connection. */
export class Wire {
  /** The connection. */
  readonly conn: Duplex;
  /** Backing bytes; `[#pos, #end)` is unconsumed, `[#end, length)` spare room we own. */
  #buf: Uint8Array = NOTHING;
  #pos = 0;
  #end = 0;
  /** Whether `#buf` was allocated here (a chunk from the stream is never written into). */
  #owned = false;
  #eof = false;
  #failure: Error | undefined;
  #interrupt: Error | undefined;
  #wakeRead: (() => void) | undefined;
  #wakeDrain: (() => void) | undefined;
  #onReadable = () => this.#wake();
  #onEnd = () => {
    this.#eof = true;
    this.#wake();
  };
  #onError = (e: Error) => {
    this.#failure ??= e;
    this.#wake();
  };
  #onClose = () => {
    if (!this.#eof) this.#failure ??= new Error("Peer closed the connection");
    this.#wake();
  };
  #onDrain = () => {
    const w = this.#wakeDrain;
    this.#wakeDrain = undefined;
    w?.();
  };

  /** @param conn The connection; it is switched to paused mode */
  constructor(conn: Duplex) {
    this.conn = conn;
    conn.on("readable", this.#onReadable);
    conn.on("end", this.#onEnd);
    conn.on("error", this.#onError);
    conn.on("close", this.#onClose);
    conn.on("drain", this.#onDrain);
  }

  /** Bytes received and not consumed yet. */
  get buffered(): Uint8Array {
    return this.#pos === 0 && this.#end === this.#buf.length
      ? this.#buf
      : this.#buf.subarray(this.#pos, this.#end);
  }

  /** Whether the peer ended its side (all bytes before the end may still be buffered). */
  get ended(): boolean {
    return this.#eof;
  }

  /** Whether the connection can still be written. */
  get writable(): boolean {
    return this.#failure === undefined && !this.conn.destroyed && !this.conn.writableEnded;
  }

  /** Drops `n` buffered bytes. */
  consume(n: number): void {
    this.#pos += n;
    if (this.#pos === this.#end) {
      this.#buf = NOTHING;
      this.#pos = this.#end = 0;
      this.#owned = false;
    }
  }

  /** Takes up to `max` buffered bytes as a view, or null when nothing is buffered. */
  take(max: number): Uint8Array | null {
    const n = Math.min(max, this.#end - this.#pos);
    if (n === 0) return null;
    const out = this.#buf.subarray(this.#pos, this.#pos + n);
    this.consume(n);
    return out;
  }

  /**
   * Waits for more bytes and appends them to the buffer.
   *
   * @returns false when the peer ended its side instead
   * @throws {HttpCodecError} `closed` when the connection failed or was reset
   */
  async fill(): Promise<boolean> {
    for (;;) {
      const interrupt = this.#interrupt;
      if (interrupt !== undefined) {
        this.#interrupt = undefined;
        throw interrupt;
      }
      const chunk = this.conn.read() as Uint8Array | null;
      if (chunk !== null) {
        this.#append(chunk);
        return true;
      }
      if (this.#eof) return false;
      if (this.#failure !== undefined || this.conn.destroyed) throw this.#closedError();
      // A second reader (a body abandoned while the connection lingers) waits alongside.
      await new Promise<void>((resolve) => this.#wakeRead = both(this.#wakeRead, resolve));
    }
  }

  /**
   * Reads until `parse` finds a whole head in the buffer, then consumes it.
   *
   * @param parse A head parser called with the buffer and the offset to resume scanning from
   * @returns The parsed head, or null when the peer ended cleanly before sending any byte
   * @throws {HttpCodecError} From the parser, or `closed` when the peer ended inside the head
   */
  async readHead<T extends ParsedRequest | ParsedResponse>(
    parse: (buf: Uint8Array, scanFrom: number) => T | null,
  ): Promise<T | null> {
    let scanFrom = 0;
    for (;;) {
      const buf = this.buffered;
      if (buf.length > 0) {
        const parsed = parse(buf, scanFrom);
        if (parsed !== null) {
          this.consume(parsed.size);
          return parsed;
        }
        scanFrom = Math.max(0, buf.length - 2);
      }
      if (!(await this.fill())) {
        if (this.buffered.length === 0) return null;
        throw new HttpCodecError("closed", "head", "Peer ended the connection inside a head");
      }
    }
  }

  /**
   * Writes bytes, waiting for `drain` when the stream's buffer is over its high-water mark.
   *
   * @throws {HttpCodecError} `closed` when the connection can no longer be written
   */
  async write(bytes: Uint8Array): Promise<void> {
    if (!this.writable) throw this.#closedError();
    if (this.conn.write(bytes)) return;
    while (this.conn.writableNeedDrain) {
      if (!this.writable) throw this.#closedError();
      await new Promise<void>((resolve) => this.#wakeDrain = both(this.#wakeDrain, resolve));
    }
  }

  /** Writes several views with one flush where the stream supports it (`cork`). */
  writev(parts: Uint8Array[]): Promise<void> {
    if (parts.length === 1) return this.write(parts[0]);
    if (!this.writable) return Promise.reject(this.#closedError());
    this.conn.cork();
    for (let i = 0; i < parts.length - 1; i++) this.conn.write(parts[i]);
    this.conn.uncork();
    return this.write(parts[parts.length - 1]);
  }

  /** Makes the pending or else the next {@link fill} call throw `error` (a timeout). */
  interrupt(error: Error): void {
    this.#interrupt ??= error;
    this.#wake();
  }

  /** Resolves once everything written was flushed after {@link end}, or the stream closed. */
  flushed(): Promise<void> {
    const conn = this.conn;
    if (conn.writableFinished || conn.destroyed) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        conn.off("finish", done);
        conn.off("close", done);
        resolve();
      };
      conn.on("finish", done);
      conn.on("close", done);
    });
  }

  /** Resolves once the stream closed. */
  closed(): Promise<void> {
    if (this.conn.closed || this.conn.destroyed) return Promise.resolve();
    return new Promise((resolve) => this.conn.once("close", () => resolve()));
  }

  /**
   * Hands the connection over: listeners are removed and buffered bytes are put back in front of
   * the stream's readable side, so the new owner reads them first.
   */
  detach(): Duplex {
    this.conn.off("readable", this.#onReadable);
    this.conn.off("end", this.#onEnd);
    this.conn.off("error", this.#onError);
    this.conn.off("close", this.#onClose);
    this.conn.off("drain", this.#onDrain);
    const rest = this.buffered;
    this.#buf = NOTHING;
    this.#pos = this.#end = 0;
    if (rest.length > 0 && !this.conn.readableEnded) this.conn.unshift(rest);
    return this.conn;
  }

  /** Ends our side gracefully once written bytes are flushed. */
  end(): void {
    if (!this.conn.writableEnded && !this.conn.destroyed) this.conn.end();
  }

  /** Closes the connection at once. */
  destroy(): void {
    this.conn.destroy();
  }

  /**
   * Appends without ever writing below `#end`, so views handed out stay valid; spare room grows by
   * doubling, so a head arriving one byte at a time costs linear time.
   */
  #append(chunk: Uint8Array): void {
    if (this.#pos === this.#end) {
      this.#buf = chunk;
      this.#pos = 0;
      this.#end = chunk.length;
      this.#owned = false;
      return;
    }
    if (!this.#owned || this.#end + chunk.length > this.#buf.length) {
      const rest = this.#end - this.#pos;
      const grown = new Uint8Array(Math.max(2 * (rest + chunk.length), 4096));
      grown.set(this.#buf.subarray(this.#pos, this.#end));
      this.#buf = grown;
      this.#pos = 0;
      this.#end = rest;
      this.#owned = true;
    }
    this.#buf.set(chunk, this.#end);
    this.#end += chunk.length;
  }

  #wake(): void {
    const r = this.#wakeRead, d = this.#wakeDrain;
    this.#wakeRead = this.#wakeDrain = undefined;
    r?.();
    d?.();
  }

  #closedError(): HttpCodecError {
    const why = this.#failure?.message ?? "Connection is closed";
    return new HttpCodecError("closed", "connection", why);
  }
}
