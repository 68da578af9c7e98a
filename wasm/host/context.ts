/**
 * What a host function sees of the context it runs in: the header maps and buffers open right
 * now, properties, and the stream operations (local response, continue). Stream drivers fill
 * these slots while a callback may use them and clear them after (the spec's access windows).
 * Also the header views over our HTTP heads, which present pseudo-headers as Envoy does.
 */
import type { HeaderMap, RequestHead, ResponseHead } from "../../http/mod.ts";
import type { Pairs } from "./pairs.ts";

/** A header map a plugin reads and edits through `proxy_*_header_map_*`. */
export interface HeaderView {
  pairs(): Pairs;
  /** Number of pairs, without building them. */
  size(): number;
  get(name: string): string | undefined;
  add(name: string, value: string): void;
  replace(name: string, value: string): void;
  remove(name: string): void;
  setPairs(pairs: Pairs): void;
}

/** A buffer a plugin reads and, when `writable`, rewrites with `proxy_set_buffer_bytes`. */
export class BufferSlot {
  bytes: Uint8Array;
  readonly writable: boolean;
  /** Set once the plugin rewrote the bytes. */
  changed = false;

  constructor(bytes: Uint8Array, writable = false) {
    this.bytes = bytes;
    this.writable = writable;
  }

  /** `start=0,size=0` prepends, `start>=len` appends, otherwise replaces `size` bytes at `start`. */
  set(start: number, size: number, value: Uint8Array): void {
    const b = this.bytes;
    const at = Math.min(start, b.length);
    const end = Math.min(b.length, at + size);
    const out = new Uint8Array(at + value.length + (b.length - end));
    out.set(b.subarray(0, at));
    out.set(value, at);
    out.set(b.subarray(end), at + value.length);
    this.bytes = out;
    this.changed = true;
  }
}

/** A local response a plugin asked for. */
export interface LocalResponse {
  readonly status: number;
  readonly details: string;
  readonly body: Uint8Array;
  readonly headers: Pairs;
  /** `undefined` when the plugin passed "none". */
  readonly grpcStatus?: number;
}

/** The stream operations of an HTTP stream context. */
export interface StreamOps {
  sendLocalResponse(reply: LocalResponse): number;
  continueStream(type: number): number;
  closeStream(type: number): number;
}

/** One root or stream context as host functions see it. */
export interface HostContext {
  readonly id: number;
  /** The root context this one belongs to (itself for a root). */
  readonly rootId: number;
  readonly maps: Map<number, HeaderView>;
  readonly buffers: Map<number, BufferSlot>;
  /** Status of a call (HTTP status, or gRPC status and message) while its callback runs. */
  callStatus?: { readonly code: number; readonly message: string };
  /** Property lookup by path segments; undefined when absent. */
  property(path: readonly string[]): Uint8Array | undefined;
  setProperty(path: readonly string[], value: Uint8Array): void;
  readonly stream?: StreamOps;
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9a-z]+$/;
const BAD_VALUE = /[\r\n\0]/;

/** Whether a plugin-supplied field may go on the wire (lower-case token, no CR/LF/NUL). */
export function validField(name: string, value: string): boolean {
  return (TOKEN.test(name) || name.startsWith(":")) && !BAD_VALUE.test(value);
}

/** A plain header map (trailers, http call responses). */
export class MapView implements HeaderView {
  readonly #map: HeaderMap;
  constructor(map: HeaderMap) {
    this.#map = map;
  }
  pairs(): Pairs {
    return this.#map.entries();
  }
  size(): number {
    return this.#map.size;
  }
  get(name: string): string | undefined {
    return this.#map.get(name);
  }
  add(name: string, value: string): void {
    this.#map.add(name, value);
  }
  replace(name: string, value: string): void {
    this.#map.set(name, value);
  }
  remove(name: string): void {
    this.#map.delete(name);
  }
  setPairs(pairs: Pairs): void {
    for (const [n] of this.#map.entries().slice()) this.#map.delete(n);
    for (const [n, v] of pairs) this.#map.add(n, v);
  }
}

/**
 * Request headers with `:method`, `:path`, `:authority`, `:scheme` first. `host` is an alias of
 * `:authority` (Envoy keeps only `:authority`), so it is not listed twice.
 */
export class RequestHeaderView implements HeaderView {
  readonly #head: RequestHead;
  constructor(head: RequestHead) {
    this.#head = head;
  }
  pairs(): Pairs {
    const h = this.#head;
    const out: [string, string][] = [
      [":method", h.method],
      [":path", h.path],
      [":authority", h.authority],
      [":scheme", h.scheme],
    ];
    for (const f of h.headers) if (f[0] !== "host") out.push([f[0], f[1]]);
    return out;
  }
  size(): number {
    const h = this.#head.headers;
    return 4 + h.size - (h.has("host") ? h.getAll("host").length : 0);
  }
  get(name: string): string | undefined {
    const h = this.#head;
    switch (name) {
      case ":method":
        return h.method;
      case ":path":
        return h.path;
      case ":authority":
      case "host":
        return h.authority;
      case ":scheme":
        return h.scheme;
    }
    return h.headers.get(name);
  }
  add(name: string, value: string): void {
    if (!this.#pseudo(name, value)) this.#head.headers.add(name, value);
  }
  replace(name: string, value: string): void {
    if (!this.#pseudo(name, value)) this.#head.headers.set(name, value);
  }
  remove(name: string): void {
    if (!name.startsWith(":") && name !== "host") this.#head.headers.delete(name);
  }
  setPairs(pairs: Pairs): void {
    const headers = this.#head.headers;
    for (const [n] of headers.entries().slice()) if (n !== "host") headers.delete(n);
    for (const [n, v] of pairs) this.add(n, v);
  }
  /** Sets a pseudo-header (or `host`); false for a regular field. */
  #pseudo(name: string, value: string): boolean {
    const h = this.#head;
    if (name === ":method") h.method = value;
    else if (name === ":path") h.path = value;
    else if (name === ":scheme") h.scheme = value;
    else if (name === ":authority" || name === "host") {
      h.authority = value;
      if (h.headers.has("host")) h.headers.set("host", value);
    } else return name.startsWith(":");
    return true;
  }
}

/** Response headers with `:status` first. */
export class ResponseHeaderView implements HeaderView {
  readonly #head: ResponseHead;
  constructor(head: ResponseHead) {
    this.#head = head;
  }
  pairs(): Pairs {
    return [[":status", String(this.#head.status)], ...this.#head.headers.entries()];
  }
  size(): number {
    return 1 + this.#head.headers.size;
  }
  get(name: string): string | undefined {
    return name === ":status" ? String(this.#head.status) : this.#head.headers.get(name);
  }
  add(name: string, value: string): void {
    if (!this.#status(name, value)) this.#head.headers.add(name, value);
  }
  replace(name: string, value: string): void {
    if (!this.#status(name, value)) this.#head.headers.set(name, value);
  }
  remove(name: string): void {
    if (!name.startsWith(":")) this.#head.headers.delete(name);
  }
  setPairs(pairs: Pairs): void {
    const headers = this.#head.headers;
    for (const [n] of headers.entries().slice()) headers.delete(n);
    for (const [n, v] of pairs) this.add(n, v);
  }
  #status(name: string, value: string): boolean {
    if (name !== ":status") return name.startsWith(":");
    const status = Number(value);
    if (Number.isInteger(status) && status >= 100 && status <= 999) {
      this.#head.status = status;
      this.#head.reason = undefined;
    }
    return true;
  }
}
