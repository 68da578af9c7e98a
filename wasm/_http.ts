/** Bounded body reading and digests, shared by the http(s) and OCI fetchers. */
import { collect, UnpackError } from "./_unpack.ts";

/**
 * Reads a response body of at most `max` bytes, refusing early on a larger Content-Length.
 *
 * @throws UnpackError (size) naming `what` when the body is larger
 */
export async function readBody(response: Response, max: number, what: string): Promise<Uint8Array> {
  const declared = Number(response.headers.get("content-length") ?? NaN);
  if (declared > max) {
    await response.body?.cancel();
    throw new UnpackError(
      "size",
      `${what} is ${declared} bytes, larger than the limit of ${max} bytes`,
    );
  }
  if (!response.body) return new Uint8Array(0);
  return await collect(response.body, max, what);
}

/** Lowercase hex sha256 of bytes. */
export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}
