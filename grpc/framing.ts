/**
 * gRPC over HTTP/2, the parts every unary client needs
 * (https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md): the five-byte message prefix,
 * the `grpc-timeout` header and the percent-encoded `grpc-message`.
 *
 * Invariants:
 * - Messages are never compressed: we send flag 0 and ask for no encoding, so a flagged message
 *   from a peer is refused.
 * - A length prefix is trusted only up to the bytes actually present.
 */

/** A message with the gRPC length prefix: flag 0 (not compressed), 4-byte big-endian length. */
export function grpcFrame(message: Uint8Array): Uint8Array {
  const out = new Uint8Array(5 + message.length);
  new DataView(out.buffer).setUint32(1, message.length);
  out.set(message, 5);
  return out;
}

/**
 * The messages of a gRPC body.
 *
 * @throws Error on a compressed message (none was asked for) or a cut-off one
 */
export function grpcUnframe(body: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let off = 0; off < body.length;) {
    if (body.length - off < 5) throw new Error("gRPC message prefix is truncated");
    if (body[off] !== 0) throw new Error(`gRPC message is compressed (flag ${body[off]})`);
    const n = new DataView(body.buffer, body.byteOffset + off).getUint32(1);
    if (n > body.length - off - 5) throw new Error("gRPC message is truncated");
    out.push(body.subarray(off + 5, off + 5 + n));
    off += 5 + n;
  }
  return out;
}

/** `grpc-timeout`: at most 8 digits, then a unit. */
export function grpcTimeout(ms: number): string {
  const whole = Math.max(1, Math.ceil(ms));
  return whole < 1e8 ? `${whole}m` : `${Math.min(Math.ceil(whole / 1000), 99_999_999)}S`;
}

/** `grpc-message` is percent-encoded (gRPC over HTTP/2 spec); a bad escape is kept as sent. */
export function grpcMessageText(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
