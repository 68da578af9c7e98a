/**
 * Turning downloaded bytes into module bytes, by magic number as Istio's `httpfetcher.go` does: a
 * Wasm module is taken as is, gzip is inflated, a POSIX tar gives its first file (or a named one),
 * repeated until a module appears. Every step is bounded by the caller's size limit.
 */

const WASM_MAGIC = [0x00, 0x61, 0x73, 0x6d];
const GZIP_MAGIC = [0x1f, 0x8b];
const TAR_MAGIC = [0x75, 0x73, 0x74, 0x61, 0x72]; // "ustar" at offset 257
const BLOCK = 512;
/** gzip in tar in gzip is as deep as real packaging goes. */
const MAX_LAYERS = 4;

/** Why bytes could not be unpacked: a size bound or a format fault. */
export class UnpackError extends Error {
  readonly kind: "size" | "format";
  constructor(kind: "size" | "format", message: string) {
    super(message);
    this.kind = kind;
  }
}

/** Whether the bytes start like a Wasm binary (magic and version: 8 bytes). */
export function isWasm(bytes: Uint8Array): boolean {
  return bytes.length >= 8 && startsWith(bytes, WASM_MAGIC);
}

/**
 * Unwraps gzip and tar layers until a Wasm module appears.
 *
 * @param bytes Downloaded bytes
 * @param maxBytes Bound on every inflated result
 * @param entry Tar entry to take (by base name); @default the first regular file
 * @returns The module bytes
 * @throws UnpackError when a layer is malformed or too large, or no module appears
 */
export async function unpackModule(
  bytes: Uint8Array,
  maxBytes: number,
  entry?: string,
): Promise<Uint8Array> {
  let current = bytes;
  for (let depth = 0; depth <= MAX_LAYERS; depth++) {
    if (isWasm(current)) return current;
    if (startsWith(current, GZIP_MAGIC)) current = await gunzip(current, maxBytes);
    else if (isTar(current)) current = tarEntry(current, entry);
    else break;
  }
  throw new UnpackError("format", "not a Wasm module, gzip or tar holding one");
}

/** Inflates gzip, refusing to grow past `maxBytes`. */
export async function gunzip(bytes: Uint8Array, maxBytes: number): Promise<Uint8Array> {
  const stream = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream()
    .pipeThrough(new DecompressionStream("gzip"));
  try {
    return await collect(stream, maxBytes, "inflated gzip");
  } catch (error) {
    if (error instanceof UnpackError) throw error;
    throw new UnpackError("format", `bad gzip: ${(error as Error).message}`);
  }
}

/**
 * Reads a stream into one buffer of at most `maxBytes`.
 *
 * @throws UnpackError (size) naming `what` when the stream is longer
 */
export async function collect(
  stream: ReadableStream<Uint8Array>,
  maxBytes: number,
  what: string,
): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of stream) {
    total += chunk.length;
    if (total > maxBytes) {
      await stream.cancel().catch(() => {});
      throw new UnpackError("size", `${what} is larger than the limit of ${maxBytes} bytes`);
    }
    chunks.push(chunk);
  }
  return new Uint8Array(await new Blob(chunks as Uint8Array<ArrayBuffer>[]).arrayBuffer());
}

function isTar(bytes: Uint8Array): boolean {
  return bytes.length > 262 && startsWith(bytes.subarray(257), TAR_MAGIC);
}

/** The data of a tar entry: the first regular file, or the one whose base name is `name`. */
function tarEntry(bytes: Uint8Array, name?: string): Uint8Array {
  let at = 0;
  let longName: string | undefined;
  while (at + BLOCK <= bytes.length) {
    const header = bytes.subarray(at, at + BLOCK);
    if (header.every((b) => b === 0)) break;
    const size = parseInt(text(header, 124, 12).trim() || "0", 8);
    const type = String.fromCharCode(header[156] || 0x30);
    const start = at + BLOCK;
    if (!Number.isSafeInteger(size) || size < 0 || start + size > bytes.length) {
      throw new UnpackError("format", "bad tar: an entry runs past the end of the archive");
    }
    const prefix = text(header, 345, 155);
    const path = longName ?? (prefix ? `${prefix}/${text(header, 0, 100)}` : text(header, 0, 100));
    longName = type === "L" ? text(bytes, start, size) : undefined;
    const regular = type === "0" || type === "7";
    if (regular && (name === undefined || path.split("/").pop() === name)) {
      return bytes.subarray(start, start + size);
    }
    at = start + Math.ceil(size / BLOCK) * BLOCK;
  }
  throw new UnpackError("format", `tar has no ${name ?? "regular file"}`);
}

function text(bytes: Uint8Array, offset: number, length: number): string {
  const field = bytes.subarray(offset, offset + length);
  const end = field.indexOf(0);
  return new TextDecoder().decode(end < 0 ? field : field.subarray(0, end));
}

function startsWith(bytes: Uint8Array, magic: readonly number[]): boolean {
  return magic.every((b, i) => bytes[i] === b);
}
