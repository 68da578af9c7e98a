/**
 * Counting bodies as they stream: bytes, gRPC messages (5-byte length-prefixed frames, gRPC
 * over HTTP/2 spec "Length-Prefixed-Message"), and how the body ended. Nothing is buffered.
 *
 * Invariants:
 * - The wrapper passes every chunk, `trailers`, `length` and `cancel` through unchanged.
 * - `onDone` runs exactly once: at the end, on the first read error, or on cancel, whichever
 *   comes first.
 */
import type { Body, HeaderMap } from "../http/mod.ts";

/** Counts gRPC messages across chunk boundaries; a message counts once its prefix is read. */
export class GrpcFrameCounter {
  messages = 0;
  /** Prefix bytes read of the current frame (0–4); 5 means inside its payload. */
  #prefix = 0;
  #length = 0;
  #skip = 0;

  /** Feeds the next chunk of the body. */
  push(chunk: Uint8Array): void {
    let i = 0;
    const n = chunk.length;
    while (i < n) {
      if (this.#skip > 0) {
        const k = Math.min(this.#skip, n - i);
        this.#skip -= k;
        i += k;
        continue;
      }
      // Byte 0 is the compressed flag; bytes 1–4 the big-endian length.
      if (this.#prefix > 0) this.#length = this.#length * 256 + chunk[i];
      i++;
      if (++this.#prefix === 5) {
        this.messages++;
        this.#skip = this.#length;
        this.#prefix = 0;
        this.#length = 0;
      }
    }
  }
}

/** Bytes and messages seen in one body. */
export class BodyMeter {
  bytes = 0;
  readonly frames?: GrpcFrameCounter;

  /** @param grpc Count gRPC messages too */
  constructor(grpc: boolean) {
    if (grpc) this.frames = new GrpcFrameCounter();
  }

  /** gRPC messages counted; 0 for other bodies. */
  get messages(): number {
    return this.frames?.messages ?? 0;
  }

  count(chunk: Uint8Array): void {
    this.bytes += chunk.length;
    this.frames?.push(chunk);
  }
}

/** How a metered body stopped. */
export type BodyEnd = "end" | "error" | "cancel";

/**
 * Wraps a body so a meter sees every chunk.
 *
 * @param body The body to read through
 * @param meter Where bytes and messages are counted
 * @param onDone Told once how the body stopped, with the cancel or read error if any
 * @returns The wrapped body
 */
export function meteredBody(
  body: Body,
  meter: BodyMeter,
  onDone?: (end: BodyEnd, reason?: unknown) => void,
): Body {
  return new MeteredBody(body, meter, onDone);
}

class MeteredBody implements Body {
  readonly #inner: Body;
  readonly #meter: BodyMeter;
  #onDone?: (end: BodyEnd, reason?: unknown) => void;

  constructor(inner: Body, meter: BodyMeter, onDone?: (end: BodyEnd, reason?: unknown) => void) {
    this.#inner = inner;
    this.#meter = meter;
    this.#onDone = onDone;
  }

  get trailers(): HeaderMap | undefined {
    return this.#inner.trailers;
  }

  get length(): number | undefined {
    return this.#inner.length;
  }

  read(): Promise<Uint8Array | null> {
    return this.#inner.read().then(this.#chunk, this.#error);
  }

  cancel(reason?: Error): void {
    this.#done("cancel", reason);
    this.#inner.cancel(reason);
  }

  readonly #chunk = (chunk: Uint8Array | null): Uint8Array | null => {
    if (chunk === null) this.#done("end");
    else this.#meter.count(chunk);
    return chunk;
  };

  readonly #error = (e: unknown): never => {
    this.#done("error", e);
    throw e;
  };

  #done(end: BodyEnd, reason?: unknown): void {
    const f = this.#onDone;
    if (!f) return;
    this.#onDone = undefined;
    f(end, reason);
  }
}
