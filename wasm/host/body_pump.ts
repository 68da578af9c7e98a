/**
 * Feeds one direction of an HTTP stream's body and trailers to a plugin's body and trailer
 * callbacks (l7.md §5.2, §5.5), as Envoy's filter manager does:
 * - every chunk goes to `proxy_on_*_body`; `end_of_stream` is true only when the body ends
 *   without trailers. When trailers follow, the last body callback had `end_of_stream` false and
 *   `proxy_on_*_trailers(num_trailers)` comes next, with the trailer map readable and editable;
 * - in the body callback with `end_of_stream` true, the trailer map exists (empty): fields the
 *   plugin adds there go out as trailers (Envoy's `addDecodedTrailers` window);
 * - trailers Continue (0) releases what the plugin held; StopIteration (1) waits for
 *   `proxy_continue_stream`, like a paused body.
 */
import { type Body, HeaderMap, HttpCodecError, LocalReply } from "../../http/mod.ts";
import { BufferType, MapType, StreamType } from "./abi.ts";
import { BufferSlot, MapView } from "./context.ts";
import { WasmHostError } from "./errors.ts";
import type { StreamOptions } from "./http_stream.ts";
import type { BaseContext, WasmVm } from "./vm.ts";

/** The names and slots of one direction. */
export const DIRS = {
  request: {
    stream: StreamType.HTTP_REQUEST,
    map: MapType.HTTP_REQUEST_HEADERS,
    trailerMap: MapType.HTTP_REQUEST_TRAILERS,
    buffer: BufferType.HTTP_REQUEST_BODY,
    headers: "proxy_on_request_headers",
    body: "proxy_on_request_body",
    trailers: "proxy_on_request_trailers",
  },
  response: {
    stream: StreamType.HTTP_RESPONSE,
    map: MapType.HTTP_RESPONSE_HEADERS,
    trailerMap: MapType.HTTP_RESPONSE_TRAILERS,
    buffer: BufferType.HTTP_RESPONSE_BODY,
    headers: "proxy_on_response_headers",
    body: "proxy_on_response_body",
    trailers: "proxy_on_response_trailers",
  },
} as const;

/** One direction. */
export type Dir = typeof DIRS[keyof typeof DIRS];

/** What the pump needs of its stream. */
export interface PumpStream {
  readonly vm: WasmVm;
  readonly ctx: BaseContext;
  readonly limits: StreamOptions;
  readonly localReply: LocalReply | undefined;
  takeContinued(stream: number): boolean;
  resume(stream: number): Promise<void>;
  finish(): void;
}

/** Whether the plugin watches this direction past its headers. */
export function watchesBody(vm: WasmVm, dir: Dir): boolean {
  return vm.has(dir.body) || vm.has(dir.trailers);
}

/**
 * Holds what the plugin holds, lets through what it releases, and offers the result as a
 * {@link Body}.
 */
export class BodyPump {
  readonly #s: PumpStream;
  readonly #dir: Dir;
  readonly #source: Body;
  #held: BufferSlot;
  #out: Uint8Array[] = [];
  #eos = false;
  #released = false;
  #changed = false;
  /** Trailers the plugin added in its end-of-stream body callback. */
  #added?: HeaderMap;
  /** Set when the VM failed under FAIL_OPEN: the rest passes through. */
  #bypass = false;

  constructor(stream: PumpStream, dir: Dir, source: Body) {
    this.#s = stream;
    this.#dir = dir;
    this.#source = source;
    this.#held = this.#slot();
  }

  #slot(): BufferSlot {
    const slot = new BufferSlot(new Uint8Array(), true);
    this.#s.ctx.buffers.set(this.#dir.buffer, slot);
    return slot;
  }

  /** The length to announce: exact when the whole body was seen, else the source's if unchanged. */
  get length(): number | undefined {
    if (this.#eos) return this.#out.reduce((n, c) => n + c.length, 0);
    return this.#changed ? undefined : this.#source.length;
  }

  /** Runs callbacks until the plugin lets data through, answers, or the body ends. */
  async fill(paused: boolean): Promise<void> {
    while (!this.#eos && !this.#released && !this.#s.localReply) await this.#step();
    if (paused && !this.#released && !this.#s.localReply) {
      await this.#s.resume(this.#dir.stream);
      this.#release();
    }
  }

  async #step(): Promise<void> {
    if (this.#bypass) {
      const chunk = await this.#source.read();
      if (chunk === null) this.#eos = true;
      else this.#out.push(chunk);
      return;
    }
    try {
      await this.#callback();
    } catch (e) {
      if (!(e instanceof WasmHostError) || !this.#s.limits.failOpen) throw e;
      this.#bypass = true;
      this.#release();
    }
  }

  async #callback(): Promise<void> {
    const chunk = await this.#source.read();
    if (chunk === null) {
      this.#eos = true;
      const trailers = this.#source.trailers;
      if (trailers && trailers.size > 0) return await this.#trailers(trailers);
    } else this.#append(chunk);
    if (!this.#s.vm.has(this.#dir.body)) return this.#release();
    const action = this.#eos ? this.#lastBody() : this.#invokeBody();
    await this.#settle(action);
  }

  #invokeBody(): number {
    const ctx = this.#s.ctx;
    const args = [ctx.id, this.#held.bytes.length, +this.#eos];
    return this.#s.vm.invoke(ctx, this.#dir.body, args);
  }

  /** The end-of-stream body callback, with an empty trailer map the plugin may add to. */
  #lastBody(): number {
    const added = new HeaderMap();
    const maps = this.#s.ctx.maps;
    maps.set(this.#dir.trailerMap, new MapView(added));
    try {
      return this.#invokeBody();
    } finally {
      if (added.size > 0) this.#added = added;
      else maps.delete(this.#dir.trailerMap);
    }
  }

  async #trailers(trailers: HeaderMap): Promise<void> {
    const ctx = this.#s.ctx;
    ctx.maps.set(this.#dir.trailerMap, new MapView(trailers));
    const action = this.#s.vm.invoke(ctx, this.#dir.trailers, [ctx.id, trailers.size]);
    await this.#settle(action);
  }

  /** Releases on Continue (or an earlier resume); at the end, waits for the plugin to resume. */
  async #settle(action: number): Promise<void> {
    if (this.#s.localReply) return;
    if (action === 0 || this.#s.takeContinued(this.#dir.stream)) this.#release();
    else if (this.#eos) {
      await this.#s.resume(this.#dir.stream);
      this.#release();
    }
  }

  #append(chunk: Uint8Array): void {
    const held = this.#held.bytes;
    const limit = this.#s.limits.bodyLimit;
    if (held.length + chunk.length > limit) {
      this.#source.cancel();
      if (this.#dir.stream === StreamType.HTTP_REQUEST) {
        throw new HttpCodecError("payload_too_large", "body", `Over ${limit} bytes held for Wasm`);
      }
      throw new LocalReply(500, "", { detail: `wasm response body over ${limit} bytes` });
    }
    if (held.length === 0) this.#held.bytes = chunk;
    else {
      const joined = new Uint8Array(held.length + chunk.length);
      joined.set(held);
      joined.set(chunk, held.length);
      this.#held.bytes = joined;
    }
  }

  #release(): void {
    this.#released = true;
    if (this.#held.changed) this.#changed = true;
    if (this.#held.bytes.length > 0) this.#out.push(this.#held.bytes);
    this.#held = this.#slot();
  }

  /** The body as the next filter reads it; a response body ends the stream when it is over. */
  body(): Body {
    const length = this.length;
    const source = this.#source;
    const over = () => {
      if (this.#dir === DIRS.response) this.#s.finish();
    };
    const read = async () => {
      while (true) {
        const next = this.#out.shift();
        if (next) return next;
        if (this.#eos) return null;
        await this.#step();
        const reply = this.#s.localReply;
        if (reply) {
          source.cancel();
          throw reply;
        }
      }
    };
    const added = () => this.#added;
    return {
      read: async () => {
        try {
          const chunk = await read();
          if (chunk === null) over();
          return chunk;
        } catch (e) {
          over();
          throw e;
        }
      },
      get trailers() {
        return added() ?? source.trailers;
      },
      length,
      cancel: (reason?: Error) => {
        source.cancel(reason);
        over();
      },
    };
  }
}
