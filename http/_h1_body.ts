/**
 * Bodies read off a {@link Wire}: Content-Length, chunked, or until the peer closes.
 *
 * Invariants:
 * - A body reads from the connection only inside `read()`, and never past its own end: the bytes
 *   after it stay buffered for the next head.
 * - The owner hears exactly once that the body is over, through `onEnd(complete)`: `true` when
 *   every byte up to the end was consumed, `false` when it was cancelled or failed.
 */
import { HttpCodecError } from "./errors.ts";
import { ChunkedDecoder, type Framing } from "./h1_parse.ts";
import type { Body, HeaderMap } from "./types.ts";
import type { Wire } from "./_wire.ts";

/** What a body tells its owner, and what it asks first. */
export interface BodyOwner {
  /** Runs before the first read, e.g. to send `100 Continue`. */
  beforeFirstRead?(): Promise<void>;
  /** Called once when the body is over. */
  onEnd(complete: boolean): void;
}

/** The longest run of body bytes returned by one read when the framing does not bound it. */
const MAX_READ = 64 * 1024;

/** A message body pulled from a connection. */
export class IncomingBody implements Body {
  readonly length: number | undefined;
  #wire: Wire;
  #owner: BodyOwner;
  #remaining: number;
  #decoder: ChunkedDecoder | undefined;
  #untilClose: boolean;
  #first = true;
  #pending: Promise<Uint8Array | null> | undefined;
  /** The framing end was reached: every byte of the body was consumed. */
  #atEnd = false;
  /** Why reads reject: a cancel, or a framing or connection error. */
  #failure: Error | undefined;
  /** A framing or connection error: the rest of the body cannot be skipped. */
  #broken = false;
  #notified = false;
  #trailers: HeaderMap | undefined;

  /**
   * @param wire The connection, positioned after the head
   * @param framing Byte count, `chunked`, or `close`
   * @param owner Told when the body is over
   * @param errorKind For malformed chunked input: `bad_request` or `bad_response`
   */
  constructor(
    wire: Wire,
    framing: Framing,
    owner: BodyOwner,
    errorKind: "bad_request" | "bad_response",
  ) {
    this.#wire = wire;
    this.#owner = owner;
    this.#untilClose = framing === "close";
    this.#remaining = typeof framing === "number" ? framing : 0;
    this.length = typeof framing === "number" ? framing : undefined;
    if (framing === "chunked") this.#decoder = new ChunkedDecoder({ errorKind });
    if (framing === 0) this.#reachEnd();
  }

  get trailers(): HeaderMap | undefined {
    return this.#trailers;
  }

  /** Whether every byte of the body was consumed. */
  get complete(): boolean {
    return this.#atEnd;
  }

  /** Whether a framing or connection error makes the rest of the body unreadable. */
  get broken(): boolean {
    return this.#broken;
  }

  read(): Promise<Uint8Array | null> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    if (this.#atEnd) return Promise.resolve(null);
    if (this.#pending !== undefined) {
      return Promise.reject(new Error("Body is already being read"));
    }
    const p = this.#read();
    this.#pending = p;
    return p;
  }

  cancel(reason?: Error): void {
    if (this.#atEnd || this.#failure !== undefined) return;
    this.#failure = reason ?? new Error("Body cancelled");
    this.#notify(false);
  }

  /**
   * Reads and drops the rest of the body, even after a cancel, when it ends within `limit` bytes.
   *
   * @returns Whether the body reached its end, so the connection may carry the next message
   */
  async discard(limit: number): Promise<boolean> {
    await this.#pending?.catch(() => {});
    let dropped = 0;
    while (!this.#atEnd && !this.#broken && dropped <= limit) {
      try {
        dropped += (await this.#next())?.length ?? 0;
      } catch {
        this.#broken = true;
      }
    }
    return this.#atEnd;
  }

  async #read(): Promise<Uint8Array | null> {
    try {
      if (this.#first) {
        this.#first = false;
        await this.#owner.beforeFirstRead?.();
      }
      return await this.#next();
    } catch (e) {
      this.#broken = true;
      this.#failure ??= e instanceof Error ? e : new Error(String(e));
      this.#notify(false);
      throw e;
    } finally {
      this.#pending = undefined;
    }
  }

  async #next(): Promise<Uint8Array | null> {
    if (this.#atEnd) return null;
    if (this.#decoder !== undefined) return await this.#nextChunked(this.#decoder);
    for (;;) {
      const data = this.#wire.take(this.#untilClose ? MAX_READ : this.#remaining);
      if (data !== null) {
        this.#remaining -= data.length;
        if (!this.#untilClose && this.#remaining === 0) this.#reachEnd();
        return data;
      }
      if (!(await this.#wire.fill())) {
        if (this.#untilClose) return this.#reachEnd();
        throw new HttpCodecError("closed", "body", `Peer ended with ${this.#remaining} bytes due`);
      }
    }
  }

  async #nextChunked(decoder: ChunkedDecoder): Promise<Uint8Array | null> {
    for (;;) {
      const buf = this.#wire.buffered;
      if (buf.length > 0) {
        this.#wire.consume(decoder.push(buf));
        if (decoder.data !== null) return decoder.data;
        if (decoder.done) {
          this.#trailers = decoder.trailers;
          return this.#reachEnd();
        }
      }
      if (!(await this.#wire.fill())) {
        throw new HttpCodecError("closed", "body", "Peer ended inside a chunked body");
      }
    }
  }

  #reachEnd(): null {
    this.#atEnd = true;
    this.#notify(true);
    return null;
  }

  #notify(complete: boolean): void {
    if (this.#notified) return;
    this.#notified = true;
    this.#owner.onEnd(complete);
  }
}
