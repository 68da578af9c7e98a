/**
 * The context of one HTTP request as it crosses the filter chain (after Hono's `context.ts`): the
 * request, the response once there is one, timings, the response flag, and typed state that the
 * proxy defines (peer, destination, route, ...), so `http/` stays free of mesh knowledge.
 */
import type { LocalReply } from "./chain.ts";
import type { Body, RequestHead, ResponseHead } from "./types.ts";

/** A request or response: head plus streaming body. */
export interface Message<H> {
  head: H;
  body: Body;
}

/** One request in flight. `S` is the proxy's typed state. */
export class HttpContext<S> {
  /** The request; filters may replace the head fields and wrap the body. */
  readonly request: Message<RequestHead>;
  /** Typed state shared by filters; fixed shape, no string-keyed bag. */
  readonly state: S;
  /** `performance.now()` when the request head was complete. */
  readonly startedAt: number;
  #response?: Message<ResponseHead>;
  #flag = "-";
  #localReply?: LocalReply;

  constructor(request: Message<RequestHead>, state: S, startedAt = performance.now()) {
    this.request = request;
    this.state = state;
    this.startedAt = startedAt;
  }

  /** The response, once the router or a filter produced one. */
  get response(): Message<ResponseHead> | undefined {
    return this.#response;
  }

  set response(r: Message<ResponseHead> | undefined) {
    this.#response = r;
  }

  /** Envoy response flag (`-`, `UF`, `NR`, ...); the first flag set wins. */
  get flag(): string {
    return this.#flag;
  }

  /** Records a response flag unless one is already set. */
  setFlag(flag: string): void {
    if (this.#flag === "-") this.#flag = flag;
  }

  /** The local reply that ended the request, if one did. */
  get localReply(): LocalReply | undefined {
    return this.#localReply;
  }

  /** Replaces any response with a local reply and records its flag. */
  reply(reply: LocalReply): void {
    this.#localReply = reply;
    this.#response = reply.toResponse();
    if (reply.flag !== "-") this.setFlag(reply.flag);
  }
}
