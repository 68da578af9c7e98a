/**
 * One HTTP stream through one plugin: the request and response header callbacks, pausing until
 * the plugin resumes (`proxy_continue_stream`, often from an http call response), local
 * responses, and the body and trailer callbacks (fed by `body_pump.ts`).
 *
 * Invariants:
 * - A plugin without body and trailer callbacks for a direction never sees a chunk: its body
 *   and trailers pass through untouched (no wrapper).
 * - A plugin that stops body iteration has the body held for it, up to `bodyLimit` bytes (then
 *   413 for a request, 500 for a response), and sees the held bytes with `end_of_stream`.
 * - Headers wait for the body while the plugin holds it when the length is declared, so a body
 *   the plugin rewrote whole gets its exact length; a streamed body stays streamed.
 * - A paused stream waits at most `pauseTimeoutMs`; a VM failure wakes it with the failure.
 */
import {
  type Body,
  LocalReply,
  type Message,
  type RequestHead,
  type ResponseHead,
} from "../../http/mod.ts";
import { MapType, Status, StreamType } from "./abi.ts";
import { BodyPump, type Dir, DIRS, watchesBody } from "./body_pump.ts";
import {
  type HeaderView,
  type LocalResponse,
  RequestHeaderView,
  ResponseHeaderView,
} from "./context.ts";
import { type StreamFacts, streamProperties } from "./properties.ts";
import type { BaseContext, WasmVm } from "./vm.ts";

/** Bounds of one stream. */
export interface StreamLimits {
  /** Most body bytes held for a plugin. @default 1 MiB */
  readonly bodyLimit: number;
  /** Longest wait for a paused plugin to resume, ms. @default 60000 */
  readonly pauseTimeoutMs: number;
}

/** Options of one stream. */
export interface StreamOptions extends StreamLimits {
  /** FAIL_OPEN: a VM failure while a body streams lets the rest pass untouched. */
  readonly failOpen: boolean;
}

/** What a phase ends with: go on (with this body) or answer with a local reply. */
export type PhaseResult = { readonly body: Body } | { readonly reply: LocalReply };

/** A request's stream context in one VM. */
export class HttpStream {
  readonly vm: WasmVm;
  readonly ctx: BaseContext;
  readonly limits: StreamOptions;
  #local?: LocalReply;
  #continued = [false, false];
  #waiter?: { stream: number; resolve: () => void; reject: (e: Error) => void };
  #response?: ResponseHead;
  #finished = false;
  /** Set while a response body the plugin watches is still streaming. */
  #bodyPending = false;

  /**
   * Opens the stream context.
   *
   * @throws {WasmHostError} when the VM fails in `proxy_on_context_create`
   */
  constructor(vm: WasmVm, request: RequestHead, facts: StreamFacts, limits: StreamOptions) {
    this.vm = vm;
    this.limits = limits;
    const tree = () => streamProperties(vm.pluginTree, facts, request, () => this.#response);
    this.ctx = vm.openStream(tree, (ctx) => {
      ctx.maps.set(MapType.HTTP_REQUEST_HEADERS, new RequestHeaderView(request));
      ctx.stream = {
        sendLocalResponse: (r) => this.#sendLocal(r),
        continueStream: (t) => this.#continue(t),
        closeStream: (t) => this.#continue(t, true),
      };
      ctx.onVmFailure = (e) => this.#waiter?.reject(e);
    });
  }

  /** The local reply the plugin sent, if any. */
  get localReply(): LocalReply | undefined {
    return this.#local;
  }

  /**
   * Runs the request side: headers callback, then the body callbacks if the plugin has them.
   *
   * @throws {WasmHostError} when the VM fails
   */
  onRequest(request: Message<RequestHead>): Promise<PhaseResult> {
    const view = this.ctx.maps.get(MapType.HTTP_REQUEST_HEADERS)!;
    return this.#phase(DIRS.request, view, request.body, request.head.headers);
  }

  /**
   * Runs the response side on the response the inner chain produced.
   *
   * @throws {WasmHostError} when the VM fails
   */
  onResponse(response: Message<ResponseHead>): Promise<PhaseResult> {
    this.#response = response.head;
    const view = new ResponseHeaderView(response.head);
    this.ctx.maps.set(MapType.HTTP_RESPONSE_HEADERS, view);
    return this.#phase(DIRS.response, view, response.body, response.head.headers);
  }

  async #phase(
    dir: Dir,
    view: HeaderView,
    body: Body,
    headers: { set(n: string, v: string): void; delete(n: string): boolean },
  ): Promise<PhaseResult> {
    const eos = body.length === 0;
    const action = this.vm.invoke(this.ctx, dir.headers, [this.ctx.id, view.size(), +eos]);
    if (this.#local) return { reply: this.#local };
    const paused = action !== 0 && !this.takeContinued(dir.stream);
    if (eos || !watchesBody(this.vm, dir)) {
      if (paused) await this.resume(dir.stream);
      return this.#local ? { reply: this.#local } : { body };
    }
    const pump = new BodyPump(this, dir, body);
    if (paused || body.length !== undefined) {
      await pump.fill(paused);
      if (this.#local) return { reply: this.#local };
    }
    const length = pump.length;
    if (length === undefined) headers.delete("content-length");
    else if (length !== body.length) headers.set("content-length", String(length));
    if (dir === DIRS.response) this.#bodyPending = true;
    return { body: pump.body() };
  }

  /** Whether the plugin resumed `stream` since the last check (clears the mark). */
  takeContinued(stream: number): boolean {
    const was = this.#continued[stream];
    this.#continued[stream] = false;
    return was;
  }

  /** Waits until the plugin resumes `stream` or answers locally. */
  resume(stream: number): Promise<void> {
    if (this.#local || this.takeContinued(stream)) return Promise.resolve();
    if (this.vm.failure) return Promise.reject(this.vm.failure);
    const ms = this.limits.pauseTimeoutMs;
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiter = undefined;
        reject(
          new LocalReply(503, "", {
            detail: `wasm_fail_stream: ${this.vm.spec.ref} paused ${ms} ms`,
          }),
        );
      }, ms);
      const done = (f: () => void) => {
        clearTimeout(timer);
        this.#waiter = undefined;
        f();
      };
      this.#waiter = {
        stream,
        resolve: () => done(resolve),
        reject: (e: Error) => done(() => reject(e)),
      };
    });
  }

  #continue(stream: number, close = false): number {
    if (stream !== StreamType.HTTP_REQUEST && stream !== StreamType.HTTP_RESPONSE) {
      return Status.BAD_ARGUMENT;
    }
    if (close) {
      this.#local ??= new LocalReply(503, "", { detail: `${this.vm.spec.ref} closed the stream` });
    }
    if (this.#waiter && (close || this.#waiter.stream === stream)) this.#waiter.resolve();
    else if (!close) this.#continued[stream] = true;
    return Status.OK;
  }

  #sendLocal(r: LocalResponse): number {
    if (this.#local) return Status.BAD_ARGUMENT;
    this.#local = new LocalReply(r.status, r.body, {
      headers: r.headers,
      detail: r.details || `${this.vm.spec.ref} local response`,
      grpcStatus: r.grpcStatus,
    });
    this.#waiter?.resolve();
    return Status.OK;
  }

  /**
   * Ends the stream unless the plugin still watches the response body; then the body's end,
   * error or cancel ends it.
   */
  end(): void {
    if (!this.#bodyPending) this.finish();
  }

  /** `proxy_on_done`, `proxy_on_log`, `proxy_on_delete`; once. */
  finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    try {
      this.vm.closeStream(this.ctx);
    } catch {
      // The VM failed in on_done/on_log: logged, and the response is already decided.
    }
  }
}
