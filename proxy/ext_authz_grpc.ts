/**
 * Envoy's external authorization gRPC API, the part a waypoint speaks: the `CheckRequest` and
 * `CheckResponse` messages written and read by hand on `grpc/`, and one unary `Check` call over a
 * send function (h2c POST, `grpc-status` from the trailers).
 *
 * Field numbers are Envoy's, from envoyproxy/envoy:
 * - `api/envoy/service/auth/v3/external_auth.proto`: CheckRequest.attributes 1;
 *   CheckResponse.status 1, denied_response 2, ok_response 3 (dynamic_metadata 4 skipped);
 *   DeniedHttpResponse.status 1, headers 2, body 3; OkHttpResponse.headers 2,
 *   headers_to_remove 5, response_headers_to_add 6 (dynamic_metadata 3, query parameters 7-8
 *   skipped). CheckResponse.error_response 5 (same message as denied_response) is newer Envoy's,
 *   read as `source/extensions/filters/common/ext_authz/ext_authz_grpc_impl.cc` does.
 * - `api/envoy/service/auth/v3/attribute_context.proto`: AttributeContext.source 1,
 *   destination 2, request 4; Peer.address 1, principal 4; Request.http 2; HttpRequest.id 1,
 *   method 2, headers 3 (map<string, string>), path 4, host 5, scheme 6, protocol 10.
 * - `api/envoy/config/core/v3/address.proto`: Address.socket_address 1;
 *   SocketAddress.address 2, port_value 3.
 * - `api/envoy/config/core/v3/base.proto` (moved to `header_value.proto` in newer Envoy, same
 *   numbers): HeaderValueOption.header 1, append 2 (google.protobuf.BoolValue, value 1),
 *   append_action 3; HeaderValue.key 1, value 2, raw_value 3.
 * - `api/envoy/type/v3/http_status.proto`: HttpStatus.code 1, an enum whose values are the HTTP
 *   status codes themselves (Forbidden = 403).
 * - googleapis `google/rpc/status.proto`: Status.code 1, message 2.
 */
import {
  type Body,
  bytesBody,
  HeaderMap,
  readAll,
  type RequestHead,
  type ResponseHead,
} from "../http/mod.ts";
import {
  grpcFrame,
  grpcMessageText,
  grpcTimeout,
  grpcUnframe,
  ProtoWriter,
  readFields,
} from "../grpc/mod.ts";

/** The gRPC method Envoy's ext_authz filter calls. */
export const CHECK_PATH = "/envoy.service.auth.v3.Authorization/Check";

/** `AttributeContext.Peer`, the fields a waypoint fills. */
export interface CheckPeer {
  /** `address.socket_address`. */
  readonly address?: { readonly address: string; readonly port: number };
  /** The peer's SPIFFE id, `spiffe://td/ns/x/sa/y`. */
  readonly principal?: string;
}

/** `AttributeContext.HttpRequest`, the fields a waypoint fills. */
export interface CheckHttpRequest {
  readonly id: string;
  readonly method: string;
  /** Lower-case names, repeats joined with `,`; pseudo-headers included, as Envoy sends them. */
  readonly headers: ReadonlyMap<string, string>;
  readonly path: string;
  readonly host: string;
  readonly scheme: string;
  /** `HTTP/1.0`, `HTTP/1.1` or `HTTP/2`. */
  readonly protocol: string;
}

/** A `CheckRequest`: its `attributes`. */
export interface CheckRequest {
  readonly source: CheckPeer;
  readonly destination: CheckPeer;
  readonly http: CheckHttpRequest;
}

/** A `HeaderValueOption`. */
export interface HeaderOption {
  readonly key: string;
  readonly value: string;
  /** The deprecated `append` BoolValue, present only when the server set it. */
  readonly append?: boolean;
  /** `append_action`: 0 APPEND_IF_EXISTS_OR_ADD, 1 ADD_IF_ABSENT, 2 OVERWRITE_IF_EXISTS_OR_ADD, 3 OVERWRITE_IF_EXISTS. */
  readonly appendAction?: number;
}

/** A `DeniedHttpResponse` (also the shape of `error_response`). */
export interface DeniedHttp {
  /** `status.code`; 0 when the server left it out. */
  readonly status: number;
  readonly headers: readonly HeaderOption[];
  readonly body: string;
}

/** An `OkHttpResponse`. */
export interface OkHttp {
  /** Edits of the request that goes upstream. */
  readonly headers: readonly HeaderOption[];
  readonly headersToRemove: readonly string[];
  /** Headers for the client's response. */
  readonly responseHeadersToAdd: readonly HeaderOption[];
}

/** A `CheckResponse`; at most one of `denied`, `ok`, `error` (a oneof). */
export interface CheckResponse {
  /** google.rpc.Status: code 0 allows, anything else denies. */
  readonly status: { readonly code: number; readonly message: string };
  readonly denied?: DeniedHttp;
  readonly ok?: OkHttp;
  readonly error?: DeniedHttp;
}

/**
 * Encodes a CheckRequest.
 *
 * @param request The attributes
 * @returns The message bytes, without the gRPC prefix
 */
export function encodeCheckRequest(request: CheckRequest): Uint8Array {
  const h = request.http;
  const http = new ProtoWriter().string(1, h.id).string(2, h.method);
  for (const [name, value] of h.headers) http.mapEntry(3, name, value);
  http.string(4, h.path).string(5, h.host).string(6, h.scheme).string(10, h.protocol);
  const attributes = new ProtoWriter()
    .message(1, peerWriter(request.source))
    .message(2, peerWriter(request.destination))
    .message(4, new ProtoWriter().message(2, http));
  return new ProtoWriter().message(1, attributes).finish();
}

/**
 * Decodes a CheckRequest (what an authorization server does; the tests' server uses it).
 *
 * @throws Error `Malformed protobuf: ...`
 */
export function decodeCheckRequest(bytes: Uint8Array): CheckRequest {
  let source: CheckPeer = {};
  let destination: CheckPeer = {};
  let http = emptyHttp();
  readFields(bytes, {
    1: (r) =>
      readFields(r.bytes(), {
        1: (a) => source = readPeer(a.bytes()),
        2: (a) => destination = readPeer(a.bytes()),
        4: (a) => readFields(a.bytes(), { 2: (q) => http = readHttp(q.bytes()) }),
      }),
  });
  return { source, destination, http };
}

/**
 * Encodes a CheckResponse (what an authorization server does; the tests' server uses it).
 */
export function encodeCheckResponse(response: CheckResponse): Uint8Array {
  const w = new ProtoWriter().message(
    1,
    new ProtoWriter().varint(1, response.status.code).string(2, response.status.message),
  );
  if (response.denied) w.message(2, deniedWriter(response.denied));
  if (response.ok) {
    const ok = new ProtoWriter();
    for (const h of response.ok.headers) ok.message(2, optionWriter(h));
    for (const name of response.ok.headersToRemove) ok.string(5, name);
    for (const h of response.ok.responseHeadersToAdd) ok.message(6, optionWriter(h));
    w.message(3, ok);
  }
  if (response.error) w.message(5, deniedWriter(response.error));
  return w.finish();
}

/**
 * Decodes a CheckResponse. A missing `status` reads as code 0, as proto3 defaults say.
 *
 * @throws Error `Malformed protobuf: ...`
 */
export function decodeCheckResponse(bytes: Uint8Array): CheckResponse {
  let status = { code: 0, message: "" };
  let result: Pick<CheckResponse, "denied" | "ok" | "error"> = {};
  readFields(bytes, {
    1: (r) => status = readStatus(r.bytes()),
    2: (r) => result = { denied: readDenied(r.bytes()) },
    3: (r) => result = { ok: readOk(r.bytes()) },
    5: (r) => result = { error: readDenied(r.bytes()) },
  });
  return { status, ...result };
}

/** Sends one request and resolves at the response head (the pool's `send`, bound to an endpoint). */
export type SendFn = (head: RequestHead, body: Body) => Promise<{ head: ResponseHead; body: Body }>;

/** Options of {@link callCheck}. */
export interface CallCheckOptions {
  /** `:authority`, the provider's service host. */
  readonly authority: string;
  /** Sent as `grpc-timeout`. */
  readonly timeoutMs: number;
  /** Largest response message. @default 4 MiB (gRPC's default) */
  readonly maxBytes?: number;
}

/**
 * One unary `Authorization/Check` call.
 *
 * @param send Sends the h2c request to the provider's endpoint
 * @param request The attributes
 * @param options Authority and deadline
 * @returns The decoded response when `grpc-status` is 0
 * @throws Error naming the HTTP status, the `grpc-status` and message, or the malformed part
 */
export async function callCheck(
  send: SendFn,
  request: CheckRequest,
  options: CallCheckOptions,
): Promise<CheckResponse> {
  const res = await send({
    method: "POST",
    path: CHECK_PATH,
    authority: options.authority,
    scheme: "http",
    version: "2",
    headers: new HeaderMap([
      ["content-type", "application/grpc"],
      ["te", "trailers"],
      ["grpc-timeout", grpcTimeout(options.timeoutMs)],
    ]),
  }, bytesBody(grpcFrame(encodeCheckRequest(request))));
  const type = res.head.headers.get("content-type") ?? "";
  if (res.head.status !== 200 || !type.startsWith("application/grpc")) {
    res.body.cancel();
    throw new Error(
      `HTTP ${res.head.status} (${type || "no content-type"}) from ${options.authority}`,
    );
  }
  const body = await readAll(res.body, (options.maxBytes ?? 4 << 20) + 5);
  // A trailers-only response (an error without messages) carries grpc-status in its headers.
  const status = (name: string) => res.body.trailers?.get(name) ?? res.head.headers.get(name);
  const code = status("grpc-status");
  if (code !== "0") {
    const message = status("grpc-message");
    throw new Error(
      code === undefined
        ? "no grpc-status"
        : `grpc-status ${code}${message ? `: ${grpcMessageText(message)}` : ""}`,
    );
  }
  const messages = grpcUnframe(body);
  if (messages.length !== 1) throw new Error(`${messages.length} response messages, expected 1`);
  return decodeCheckResponse(messages[0]);
}

function peerWriter(peer: CheckPeer): ProtoWriter {
  const w = new ProtoWriter();
  if (peer.address) {
    const socket = new ProtoWriter().string(2, peer.address.address).varint(3, peer.address.port);
    w.message(1, new ProtoWriter().message(1, socket));
  }
  return w.string(4, peer.principal ?? "");
}

function readPeer(bytes: Uint8Array): CheckPeer {
  const peer: { address?: CheckPeer["address"]; principal?: string } = {};
  readFields(bytes, {
    1: (r) =>
      readFields(r.bytes(), {
        1: (a) => {
          const socket = { address: "", port: 0 };
          readFields(a.bytes(), {
            2: (s) => socket.address = s.string(),
            3: (s) => socket.port = s.uint32(),
          });
          peer.address = socket;
        },
      }),
    4: (r) => peer.principal = r.string(),
  });
  return peer;
}

function emptyHttp(): CheckHttpRequest {
  return { id: "", method: "", headers: new Map(), path: "", host: "", scheme: "", protocol: "" };
}

function readHttp(bytes: Uint8Array): CheckHttpRequest {
  const out = { ...emptyHttp(), headers: new Map<string, string>() };
  readFields(bytes, {
    1: (r) => out.id = r.string(),
    2: (r) => out.method = r.string(),
    3: (r) => {
      const entry = { key: "", value: "" };
      readFields(r.bytes(), {
        1: (e) => entry.key = e.string(),
        2: (e) => entry.value = e.string(),
      });
      out.headers.set(entry.key, entry.value);
    },
    4: (r) => out.path = r.string(),
    5: (r) => out.host = r.string(),
    6: (r) => out.scheme = r.string(),
    10: (r) => out.protocol = r.string(),
  });
  return out;
}

function optionWriter(h: HeaderOption): ProtoWriter {
  const w = new ProtoWriter().message(1, new ProtoWriter().string(1, h.key).string(2, h.value));
  if (h.append !== undefined) w.message(2, new ProtoWriter().varint(1, h.append ? 1 : 0));
  return w.varint(3, h.appendAction ?? 0);
}

function readOption(bytes: Uint8Array): HeaderOption {
  const header = { key: "", value: "", raw: "" };
  const option: { append?: boolean; appendAction?: number } = {};
  readFields(bytes, {
    1: (r) =>
      readFields(r.bytes(), {
        1: (v) => header.key = v.string(),
        2: (v) => header.value = v.string(),
        3: (v) => header.raw = v.string(),
      }),
    // A present BoolValue with no field inside is `false`.
    2: (r) => {
      option.append = false;
      readFields(r.bytes(), { 1: (b) => option.append = b.bool() });
    },
    3: (r) => {
      const action = r.int32();
      if (action !== 0) option.appendAction = action;
    },
  });
  return { key: header.key, value: header.value || header.raw, ...option };
}

function deniedWriter(d: DeniedHttp): ProtoWriter {
  const w = new ProtoWriter();
  if (d.status !== 0) w.message(1, new ProtoWriter().varint(1, d.status));
  for (const h of d.headers) w.message(2, optionWriter(h));
  return w.string(3, d.body);
}

function readDenied(bytes: Uint8Array): DeniedHttp {
  const out = { status: 0, headers: [] as HeaderOption[], body: "" };
  readFields(bytes, {
    1: (r) => out.status = readStatus(r.bytes()).code,
    2: (r) => out.headers.push(readOption(r.bytes())),
    3: (r) => out.body = r.string(),
  });
  return out;
}

function readOk(bytes: Uint8Array): OkHttp {
  const out = {
    headers: [] as HeaderOption[],
    headersToRemove: [] as string[],
    responseHeadersToAdd: [] as HeaderOption[],
  };
  readFields(bytes, {
    2: (r) => out.headers.push(readOption(r.bytes())),
    5: (r) => out.headersToRemove.push(r.string()),
    6: (r) => out.responseHeadersToAdd.push(readOption(r.bytes())),
  });
  return out;
}

/** google.rpc.Status and envoy.type.v3.HttpStatus share `code = 1` (int32 and enum). */
function readStatus(bytes: Uint8Array): { code: number; message: string } {
  const out = { code: 0, message: "" };
  readFields(bytes, { 1: (r) => out.code = r.int32(), 2: (r) => out.message = r.string() });
  return out;
}
