/**
 * The HTTP message model shared by the codecs (HTTP/1.1, h2c), the filter chain and the router.
 *
 * Invariants:
 * - Header names are stored lower-case; order and repeats are kept, as proxy-wasm header maps and
 *   faithful proxying need them. Pseudo-headers (`:path`) never appear in a {@link HeaderMap}.
 * - Bodies are pulled chunk by chunk with backpressure; nothing here buffers a whole body.
 */

import { HttpCodecError } from "./errors.ts";

/** An ordered multi-map of header fields with lower-case names. */
export class HeaderMap {
  #fields: [string, string][];

  /** @param fields Initial `[name, value]` pairs; names are lower-cased */
  constructor(fields: Iterable<readonly [string, string]> = []) {
    this.#fields = [];
    for (const [n, v] of fields) this.#fields.push([n.toLowerCase(), v]);
  }

  /**
   * Adopts `[name, value]` pairs whose names are already lower-case, without copying them: for
   * codecs that lower-case while parsing. The caller must not use the array afterwards.
   */
  static fromLowerCase(fields: [string, string][]): HeaderMap {
    const map = new HeaderMap();
    map.#fields = fields;
    return map;
  }

  /** The first value of a field, or undefined. */
  get(name: string): string | undefined {
    const n = name.toLowerCase();
    for (const f of this.#fields) if (f[0] === n) return f[1];
    return undefined;
  }

  /** Every value of a field, in order. */
  getAll(name: string): string[] {
    const n = name.toLowerCase();
    const out: string[] = [];
    for (const f of this.#fields) if (f[0] === n) out.push(f[1]);
    return out;
  }

  /** Values joined with `,` as RFC 9110 §5.3 allows for list fields; undefined when absent. */
  joined(name: string): string | undefined {
    const n = name.toLowerCase();
    let out: string | undefined;
    for (const f of this.#fields) {
      if (f[0] === n) out = out === undefined ? f[1] : `${out},${f[1]}`;
    }
    return out;
  }

  has(name: string): boolean {
    return this.get(name) !== undefined;
  }

  /** Replaces every value of a field with one value. */
  set(name: string, value: string): void {
    const n = name.toLowerCase();
    const i = this.#fields.findIndex((f) => f[0] === n);
    if (i < 0) {
      this.#fields.push([n, value]);
      return;
    }
    this.#fields[i] = [n, value];
    this.#removeFrom(n, i + 1);
  }

  /** Appends a value, keeping existing ones. */
  add(name: string, value: string): void {
    this.#fields.push([name.toLowerCase(), value]);
  }

  /** Removes every value of a field; returns whether any was there. */
  delete(name: string): boolean {
    return this.#removeFrom(name.toLowerCase(), 0);
  }

  /** Removes the fields named `n` at or after index `from`, in place (the request path calls
   * this for every hop-by-hop name, usually absent: no allocation then). */
  #removeFrom(n: string, from: number): boolean {
    const fields = this.#fields;
    let w = from;
    for (let r = from; r < fields.length; r++) {
      if (fields[r][0] !== n) fields[w++] = fields[r];
    }
    if (w === fields.length) return false;
    fields.length = w;
    return true;
  }

  /** Number of fields (repeats counted). */
  get size(): number {
    return this.#fields.length;
  }

  /** The fields in order, as `[name, value]`. */
  entries(): readonly (readonly [string, string])[] {
    return this.#fields;
  }

  [Symbol.iterator](): Iterator<readonly [string, string]> {
    return this.#fields[Symbol.iterator]();
  }

  /** A copy. */
  clone(): HeaderMap {
    return new HeaderMap(this.#fields);
  }
}

/** A request line and headers. */
export interface RequestHead {
  /** Upper-case method token as received. */
  method: string;
  /** Origin-form target: path plus optional `?query`; `*` for OPTIONS; authority for CONNECT. */
  path: string;
  /** Host header or `:authority`. */
  authority: string;
  /** `http` inside the tunnel unless the client said otherwise (h2 `:scheme`). */
  scheme: string;
  /** Protocol the request arrived with. */
  readonly version: "1.0" | "1.1" | "2";
  /** Header fields without pseudo-headers; for HTTP/1.1 `host` stays here too. */
  headers: HeaderMap;
}

/** A status line and headers. */
export interface ResponseHead {
  status: number;
  /** HTTP/1.1 reason phrase; informational only. */
  reason?: string;
  headers: HeaderMap;
}

/** One request as a codec hands it to the proxy, with the way to answer it. */
export interface Exchange {
  readonly request: RequestHead;
  readonly body: Body;
  /** Sends the response head and streams the body; resolves when the body was handed over. */
  respond(head: ResponseHead, body: Body): Promise<void>;
}

/**
 * A message body read chunk by chunk. `read()` resolves with the next chunk or `null` at the end;
 * after `null`, `trailers` holds any trailer fields.
 */
export interface Body {
  read(): Promise<Uint8Array | null>;
  /** Trailer fields, set once `read()` returned null (HTTP/1.1 chunked or HTTP/2). */
  readonly trailers: HeaderMap | undefined;
  /** Known length (Content-Length), or undefined when chunked/unknown; 0 for no body. */
  readonly length: number | undefined;
  /** Stops reading and releases the source; pending and later reads reject. */
  cancel(reason?: Error): void;
}

/** A body with no bytes. */
export const EMPTY_BODY: Body = Object.freeze({
  read: () => Promise.resolve(null),
  trailers: undefined,
  length: 0,
  cancel: () => {},
});

/** A body from fixed bytes. */
export function bytesBody(bytes: Uint8Array | string, trailers?: HeaderMap): Body {
  let data: Uint8Array | null = typeof bytes === "string" ? new TextEncoder().encode(bytes) : bytes;
  let done = false;
  return {
    read() {
      if (done) return Promise.resolve(null);
      done = true;
      const out = data;
      data = null;
      return Promise.resolve(out && out.length > 0 ? out : null);
    },
    get trailers() {
      return done ? trailers : undefined;
    },
    length: typeof bytes === "string" ? new TextEncoder().encode(bytes).length : bytes.length,
    cancel() {
      done = true;
      data = null;
    },
  };
}

/**
 * Reads a whole body into memory, refusing more than `limit` bytes.
 *
 * @throws {HttpCodecError} `payload_too_large` (413) over the limit; the body is cancelled
 */
export async function readAll(body: Body, limit: number): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (let c = await body.read(); c !== null; c = await body.read()) {
    size += c.length;
    if (size > limit) {
      body.cancel();
      throw new HttpCodecError("payload_too_large", "body", `Over ${limit} bytes`);
    }
    chunks.push(c);
  }
  const out = new Uint8Array(size);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}
