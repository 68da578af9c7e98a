/**
 * Writing HTTP/1.1 messages: the head with the framing fields we choose, then the body framed by
 * Content-Length, chunked (with trailers) or the connection's end.
 *
 * Invariants:
 * - Framing fields in the given head (`content-length`, `transfer-encoding`) are never copied:
 *   the framing comes from the {@link Body} alone, so a stale field cannot desynchronise a peer.
 * - Every outgoing name is a token and every value is free of CR, LF, NUL and other CTLs, so a
 *   handler cannot split a message (`bad_message` otherwise).
 * - Writes coalesce: the head, small chunks that are already available and the last chunk go out
 *   in as few `write` calls as possible, without waiting for bytes that are not there yet.
 * - Backpressure: at most one chunk is written past the stream's high-water mark before waiting.
 */
import { HttpCodecError } from "./errors.ts";
import type { Body, HeaderMap } from "./types.ts";
import { TCHAR, VALUE } from "./_h1_fields.ts";
import type { Wire } from "./_wire.ts";

/** How the body goes on the wire: a byte count, chunked, until close, or not at all. */
export type OutFraming = "length" | "chunked" | "close" | "none";

/** Bytes gathered into one write before flushing. */
const COALESCE = 16 * 1024;
const CRLF = new Uint8Array([13, 10]);
const LAST_CHUNK = new Uint8Array([0x30, 13, 10]);
const encoder = new TextEncoder();

/**
 * Renders a head: start line, the fields except framing ones (and `connection` when it is
 * replaced), then `extra` lines already rendered, then the blank line. Text is written byte by
 * byte as Latin-1 (ASCII is the same in UTF-8) while it is checked, into one array sized first:
 * no intermediate string.
 *
 * @param startLine `HTTP/1.1 200 OK` or `GET / HTTP/1.1`, without CR LF
 * @param headers Fields to copy
 * @param extra Rendered framing and connection lines, each ending with CR LF (ASCII)
 * @param keep Field names copied even though they are framing fields (HEAD and 304 metadata)
 * @throws {HttpCodecError} `bad_message` for a field that is not safe to send
 */
export function renderHead(
  startLine: string,
  headers: HeaderMap,
  extra: string,
  keep: { framing: boolean; connection: boolean },
): Uint8Array {
  const fields = headers.entries();
  const skip = (name: string) =>
    (!keep.framing && (name === "content-length" || name === "transfer-encoding")) ||
    (!keep.connection && name === "connection");
  let size = startLine.length + extra.length + 4;
  for (let i = 0; i < fields.length; i++) {
    const [name, value] = fields[i];
    if (!skip(name)) size += name.length + value.length + 4;
  }
  const out = new Uint8Array(size);
  let at = putValue(out, 0, startLine, "start line");
  out[at++] = 13;
  out[at++] = 10;
  for (let i = 0; i < fields.length; i++) {
    const [name, value] = fields[i];
    if (skip(name)) continue;
    at = putName(out, at, name);
    out[at++] = 0x3a;
    out[at++] = 0x20;
    at = putValue(out, at, value, name);
    out[at++] = 13;
    out[at++] = 10;
  }
  for (let i = 0; i < extra.length; i++) out[at++] = extra.charCodeAt(i);
  out[at++] = 13;
  out[at] = 10;
  return out;
}

/** Renders trailer fields and the blank line that ends a chunked body. */
function renderTrailers(trailers: HeaderMap | undefined): Uint8Array {
  if (trailers === undefined || trailers.size === 0) return CRLF;
  return renderHead("", trailers, "", { framing: true, connection: true }).subarray(2);
}

/** Writes a field name at `at`. @throws {HttpCodecError} when it is not a token */
function putName(out: Uint8Array, at: number, name: string): number {
  if (name.length === 0) throw new HttpCodecError("bad_message", "field", "Empty name");
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c > 0xff || TCHAR[c] === 0) {
      throw new HttpCodecError("bad_message", `field ${JSON.stringify(name)}`, "Invalid name");
    }
    out[at++] = c;
  }
  return at;
}

/**
 * Writes a start line or field value at `at`, as Latin-1.
 *
 * @param field The field's name, or `start line`, for the error
 * @throws {HttpCodecError} on CR, LF, NUL, other CTLs and chars above U+00FF
 */
function putValue(out: Uint8Array, at: number, text: string, field: string): number {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c > 0xff || VALUE[c] === 0) {
      const where = field === "start line" ? field : `field ${field}`;
      throw new HttpCodecError("bad_message", where, "Invalid char");
    }
    out[at++] = c;
  }
  return at;
}

const PENDING = Symbol("pending");

/** The body's next read when it is already settled, else {@link PENDING}. */
function settled(p: Promise<Uint8Array | null>): Promise<Uint8Array | null | typeof PENDING> {
  return Promise.race([p, Promise.resolve(PENDING)]);
}

/**
 * Writes a rendered head and the body with the given framing, coalescing small writes.
 *
 * @param wire The connection
 * @param head The rendered head
 * @param body The body to pull; it is not read for framing `none`
 * @param framing How to delimit the body
 * @throws {HttpCodecError} `closed` when the connection failed, `bad_message` when a body gave
 *   more or fewer bytes than its length; the body is cancelled and the caller must close
 */
export async function writeMessage(
  wire: Wire,
  head: Uint8Array,
  body: Body,
  framing: OutFraming,
): Promise<void> {
  const out = new Batch(wire, head);
  if (framing === "none") return out.flush();
  const chunked = framing === "chunked";
  let sent = 0;
  try {
    let next = body.read();
    for (;;) {
      let chunk = await settled(next);
      if (chunk === PENDING) {
        await out.flush();
        chunk = await next;
      }
      if (chunk === null) break;
      next = body.read();
      if (chunk.length === 0) continue;
      sent += chunk.length;
      if (framing === "length" && sent > body.length!) {
        throw new HttpCodecError("bad_message", "body", `More than ${body.length} bytes`);
      }
      if (chunked) out.add(encoder.encode(`${chunk.length.toString(16)}\r\n`));
      out.add(chunk);
      if (chunked) out.add(CRLF);
      if (out.size >= COALESCE) await out.flush();
    }
    if (framing === "length" && sent !== body.length) {
      throw new HttpCodecError("bad_message", "body", `${sent} of ${body.length} bytes`);
    }
    if (chunked) out.add(LAST_CHUNK, renderTrailers(body.trailers));
    await out.flush();
  } catch (e) {
    body.cancel(e instanceof Error ? e : undefined);
    throw e;
  }
}

/** Views waiting to be written together. */
class Batch {
  #wire: Wire;
  #parts: Uint8Array[];
  size: number;

  constructor(wire: Wire, first: Uint8Array) {
    this.#wire = wire;
    this.#parts = [first];
    this.size = first.length;
  }

  add(...parts: Uint8Array[]): void {
    for (const p of parts) {
      this.#parts.push(p);
      this.size += p.length;
    }
  }

  async flush(): Promise<void> {
    if (this.size === 0) return;
    const parts = this.#parts;
    const size = this.size;
    this.#parts = [];
    this.size = 0;
    if (parts.length === 1 || size > 4 * COALESCE) return await this.#wire.writev(parts);
    const joined = new Uint8Array(size);
    let off = 0;
    for (const p of parts) {
      joined.set(p, off);
      off += p.length;
    }
    await this.#wire.write(joined);
  }
}
