/**
 * Bridges between pull-based {@link Body} and node streams (HTTP/2 streams, sockets): reading a
 * readable as a Body, and writing a Body into a writable with backpressure.
 */
import type { Readable, Writable } from "node:stream";
import { HttpCodecError } from "./errors.ts";
import type { Body, HeaderMap } from "./types.ts";

/**
 * A Body that pulls from a node Readable. Reading pauses the source between pulls, so at most the
 * readable's own buffer (and the HTTP/2 window) is held.
 *
 * @param source The readable, for example an HTTP/2 stream
 * @param length Content-Length when known
 * @param trailers Resolves with trailers when the source ends, if it has any
 * @param options `onCancel`: `destroy` the source (a response we no longer want), or `discard`
 *   the rest of its bytes and keep it open (a request body: its stream still carries the
 *   response). @default {"destroy"}
 */
export function readableBody(
  source: Readable,
  length: number | undefined,
  trailers?: () => HeaderMap | undefined,
  options: { onCancel?: "destroy" | "discard" } = {},
): Body {
  let ended = false;
  let failure: Error | undefined;
  let waiter: (() => void) | undefined;
  const wake = () => {
    const w = waiter;
    waiter = undefined;
    w?.();
  };
  source.on("readable", wake);
  source.once("end", () => {
    ended = true;
    wake();
  });
  source.once("error", (e) => {
    failure = e;
    wake();
  });
  source.once("close", () => {
    if (!ended && !failure) failure = new HttpCodecError("closed", "body", "stream closed early");
    wake();
  });
  const body: Body = {
    async read() {
      while (true) {
        if (failure) throw failure;
        const chunk = source.read() as Uint8Array | null;
        if (chunk !== null) return chunk;
        if (ended) return null;
        await new Promise<void>((r) => waiter = r);
      }
    },
    get trailers() {
      return ended ? trailers?.() : undefined;
    },
    length,
    cancel(reason?: Error) {
      failure ??= reason ?? new Error("Body cancelled");
      if (options.onCancel === "discard") {
        // A `readable` listener keeps the source paused; without it, resume() drops the bytes.
        source.off("readable", wake);
        source.resume();
      } else source.destroy();
      wake();
    },
  };
  return body;
}

/** Options of {@link pumpBody}. */
export interface PumpOptions {
  /**
   * Ends the sink, given the body's trailers, for a sink that can send them (an HTTP/2 stream's
   * `sendTrailers`). @default {`sink.end()`}
   */
  end?: (trailers: HeaderMap | undefined) => void;
  /**
   * True once the peer wants no more bytes without it being an error (an HTTP/2 stream it reset
   * with NO_ERROR or CANCEL): the body is cancelled and the sink left as it is.
   * @default {never}
   */
  stopped?: () => boolean;
}

/**
 * Writes a Body into a writable, waiting for `drain` when the writable is full, and ends it.
 *
 * @param body The source
 * @param sink The destination; ended with the last chunk
 * @param options How to end the sink, and when to stop early
 * @returns Resolves when everything was handed to the sink, or it stopped wanting it
 * @throws The body's read error or the sink's failure; the body is cancelled and the sink
 *   destroyed first
 */
export async function pumpBody(
  body: Body,
  sink: Writable,
  options: PumpOptions = {},
): Promise<void> {
  const stopped = options.stopped ?? (() => false);
  try {
    for (let chunk = await body.read(); chunk !== null; chunk = await body.read()) {
      if (stopped()) {
        body.cancel(new HttpCodecError("closed", "body", "peer stopped reading"));
        return;
      }
      if (sink.destroyed) throw new HttpCodecError("closed", "body", "peer went away");
      if (!sink.write(chunk)) await drained(sink);
    }
  } catch (e) {
    // Release the source too, so its producer (an upstream response) is not left hanging.
    body.cancel(e as Error);
    sink.destroy(e as Error);
    throw e;
  }
  if (options.end) options.end(body.trailers);
  else sink.end();
}

function drained(sink: Writable): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = () => {
      sink.off("drain", done);
      sink.off("close", closed);
      resolve();
    };
    const closed = () => {
      sink.off("drain", done);
      reject(new HttpCodecError("closed", "body", "peer went away while writing"));
    };
    sink.once("drain", done);
    sink.once("close", closed);
  });
}
