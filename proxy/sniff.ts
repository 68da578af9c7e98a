/**
 * Protocol sniffing for ports of unknown protocol (hbone.md §3.5): the first bytes decide between
 * the HTTP/2 preface, an HTTP/1.1 request line, and anything else (TCP). Bytes read are put back.
 *
 * Invariants:
 * - At most {@link SNIFF_BYTES} bytes and `timeoutMs` are spent; a client that says nothing in
 *   that time (a server-first protocol) is treated as TCP.
 */
import type { Duplex } from "node:stream";

/** What the first bytes looked like. */
export type Sniffed = "h2c" | "http1" | "tcp";

/** Bytes examined at most: enough for the preface and a method token. */
export const SNIFF_BYTES = 24;
const PREFACE = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const METHOD = /^[A-Z]{3,16} /;

/**
 * Classifies the first bytes (pure).
 *
 * @param bytes What the client sent so far
 * @param ended Whether no more bytes will come (the client ended or the time is up)
 * @returns The protocol, or undefined when more bytes are needed to tell
 */
export function classify(bytes: Uint8Array, ended: boolean): Sniffed | undefined {
  const text = new TextDecoder("latin1").decode(bytes.subarray(0, SNIFF_BYTES));
  if (PREFACE.startsWith(text)) {
    return text.length === PREFACE.length ? "h2c" : ended ? "tcp" : undefined;
  }
  if (METHOD.test(text)) return "http1";
  if (/^[A-Z]{0,16}$/.test(text) && !ended && text.length < 17) return undefined;
  return "tcp";
}

/**
 * Reads from a stream until its protocol is known, then puts the bytes back.
 *
 * @param stream The client stream (paused afterwards, bytes unshifted)
 * @param timeoutMs How long to wait for the client's first bytes @default 1000
 */
export function sniff(stream: Duplex, timeoutMs = 1_000): Promise<Sniffed> {
  let buf = new Uint8Array(0);
  return new Promise((resolve) => {
    const done = (result: Sniffed) => {
      clearTimeout(timer);
      stream.off("data", onData);
      stream.off("end", onEnd);
      stream.pause();
      if (buf.length > 0) stream.unshift(buf);
      resolve(result);
    };
    const onData = (chunk: Uint8Array) => {
      const next = new Uint8Array(buf.length + chunk.length);
      next.set(buf);
      next.set(chunk, buf.length);
      buf = next;
      const result = classify(buf, false);
      if (result) done(result);
    };
    const onEnd = () => done(classify(buf, true) ?? "tcp");
    const timer = setTimeout(() => done(classify(buf, true) ?? "tcp"), timeoutMs);
    stream.on("data", onData);
    stream.once("end", onEnd);
  });
}
