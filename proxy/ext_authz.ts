/**
 * The ext_authz client for CUSTOM AuthorizationPolicy (l7.md §3.5, §1.9), for both provider kinds:
 * - `envoyExtAuthzHttp`: the check request carries the original method and path (after
 *   `pathPrefix`), Host and the configured headers; an HTTP 200 allows, anything else denies with
 *   the service's own status, body and the allowed headers.
 * - `envoyExtAuthzGrpc`: Envoy's `Authorization/Check` (`ext_authz_grpc.ts`); status code 0
 *   allows and applies `ok_response`, anything else denies with `denied_response` (403 when it
 *   names no status).
 * A failure to ask (no endpoint, timeout, transport error, non-zero `grpc-status`) denies with
 * `statusOnError` unless `failOpen`.
 * Providers are read from the request's config (its MeshConfig), so an edited `istio` ConfigMap
 * applies to the next request, together with the policies compiled against it.
 */
import { EMPTY_BODY, HeaderMap, type HttpContext, readAll } from "../http/mod.ts";
import { servicePortByHost } from "./service_lookup.ts";
import type { Endpoint, Snapshot } from "../mesh/mod.ts";
import type { Balancer } from "../routes/mod.ts";
import {
  callCheck,
  type CheckRequest,
  type CheckResponse,
  type HeaderOption,
} from "./ext_authz_grpc.ts";
import { ipOf, nodeText } from "./forwarded.ts";
import type { HeaderAction, HeaderEdit } from "./http_headers.ts";
import type { HttpUpstreams } from "./http_pool.ts";
import type { RequestState } from "./http_state.ts";
import type {
  ExtAuthzGrpcProvider,
  ExtAuthzHttpProvider,
  ExtAuthzProvider,
} from "./mesh_config.ts";

/** What one check decided. */
export interface ExtAuthzVerdict {
  readonly allow: boolean;
  readonly status: number;
  readonly body: string;
  /** Headers for the client on a denial. */
  readonly headers: [string, string][];
  /** Edits of the upstream request on an allow, in order. */
  readonly upstreamHeaders: readonly HeaderEdit[];
  /** Edits of the client's response on an allow. */
  readonly downstreamHeaders: readonly HeaderEdit[];
  /** Why, for logs. */
  readonly reason: string;
}

/** Inputs of {@link ExtAuthz}. */
export interface ExtAuthzInputs {
  readonly upstreams: HttpUpstreams;
  readonly balancer: Balancer;
}

const MAX_DENY_BODY = 64 << 10;

/** Asks ext_authz providers, HTTP or gRPC. */
export class ExtAuthz {
  #inputs: ExtAuthzInputs;

  constructor(inputs: ExtAuthzInputs) {
    this.#inputs = inputs;
  }

  /**
   * Checks one request with one provider.
   *
   * @param name The provider named by the CUSTOM policy
   * @param ctx The request
   * @returns The verdict; a failure to ask is a verdict too (`statusOnError` or `failOpen`)
   */
  async check(name: string, ctx: HttpContext<RequestState>): Promise<ExtAuthzVerdict> {
    const provider: ExtAuthzProvider | undefined = ctx.state.config.meshConfig.extAuthz.get(name);
    if (!provider) return failed(undefined, `provider ${name} is not an ext_authz provider`);
    const service = serviceOf(ctx.state.config.mesh, provider);
    const pick = this.#inputs.balancer.pick(service.endpoints);
    if (!pick) return failed(provider, `no endpoint for ${provider.service}:${provider.port}`);
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      const expired = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`no answer in ${provider.timeoutMs} ms`)),
          provider.timeoutMs,
        );
      });
      const asked = provider.kind === "grpc"
        ? this.#askGrpc(provider, pick.endpoint, service.host, ctx)
        : this.#askHttp(provider, pick.endpoint, ctx);
      return await Promise.race([asked, expired]);
    } catch (e) {
      return failed(provider, (e as Error).message);
    } finally {
      clearTimeout(timer);
      pick.done();
    }
  }

  async #askHttp(
    provider: ExtAuthzHttpProvider,
    endpoint: Endpoint,
    ctx: HttpContext<RequestState>,
  ): Promise<ExtAuthzVerdict> {
    const original = ctx.request.head;
    const headers = new HeaderMap([["content-length", "0"]]);
    for (const [n, v] of original.headers) {
      if (provider.includeRequestHeadersInCheck.includes(n)) headers.add(n, v);
    }
    for (const [n, v] of Object.entries(provider.includeAdditionalHeadersInCheck)) {
      headers.set(n, v);
    }
    const res = await this.#inputs.upstreams.send(endpoint, "http1", undefined, {
      method: original.method,
      path: provider.pathPrefix + original.path,
      authority: original.authority,
      scheme: "http",
      version: "1.1",
      headers,
    }, EMPTY_BODY);
    const pickHeaders = (names: readonly string[]) =>
      res.head.headers.entries().filter(([n]) => names.includes(n)).map(([n, v]) =>
        [n, v] as [string, string]
      );
    const sets = (names: readonly string[]) =>
      pickHeaders(names).map(([name, value]): HeaderEdit => ({ name, value, action: "set" }));
    if (res.head.status === 200) {
      res.body.cancel();
      return allowed(
        sets(provider.headersToUpstreamOnAllow),
        sets(provider.headersToDownstreamOnAllow),
      );
    }
    const body = new TextDecoder().decode(await readAll(res.body, MAX_DENY_BODY));
    return denied(
      res.head.status,
      body,
      pickHeaders(provider.headersToDownstreamOnDeny),
      `status ${res.head.status}`,
    );
  }

  async #askGrpc(
    provider: ExtAuthzGrpcProvider,
    endpoint: Endpoint,
    host: string | undefined,
    ctx: HttpContext<RequestState>,
  ): Promise<ExtAuthzVerdict> {
    const response = await callCheck(
      (head, body) => this.#inputs.upstreams.send(endpoint, "h2c", host, head, body),
      checkRequestOf(ctx),
      {
        authority: host ?? nodeText(endpoint.address, endpoint.port),
        timeoutMs: provider.timeoutMs,
      },
    );
    return grpcVerdict(provider, response);
  }
}

/**
 * The attributes Envoy's ext_authz filter sends (`check_request_utils.cc`): the downstream peer
 * and its SPIFFE id, the destination the client asked for, and the request with every header,
 * pseudo-headers included.
 */
export function checkRequestOf(ctx: HttpContext<RequestState>): CheckRequest {
  const { state } = ctx;
  const head = ctx.request.head;
  const headers = new Map<string, string>([
    [":authority", head.authority],
    [":method", head.method],
    [":path", head.path],
    [":scheme", head.scheme],
  ]);
  // HTTP/1.1 `host` is `:authority` already, as Envoy keeps it.
  for (const [name] of head.headers) {
    if (name !== "host" && !headers.has(name)) headers.set(name, head.headers.joined(name)!);
  }
  const clientPort = Number(state.client.slice(state.client.lastIndexOf(":") + 1)) || 0;
  return {
    source: {
      address: { address: ipOf(state.client), port: clientPort },
      principal: state.peer.identity,
    },
    destination: { address: { address: state.target.address, port: state.target.port } },
    http: {
      id: head.headers.get("x-request-id") ?? state.requestId,
      method: head.method,
      headers,
      path: head.path,
      host: head.authority,
      scheme: head.scheme,
      protocol: head.version === "2" ? "HTTP/2" : `HTTP/${head.version}`,
    },
  };
}

/**
 * A CheckResponse as a verdict, the way Envoy's gRPC client reads it (`ext_authz_grpc_impl.cc`):
 * code 0 allows with `ok_response`; an `error_response` is a failure to ask; anything else denies
 * with `denied_response`, 403 unless it names a status.
 */
export function grpcVerdict(provider: ExtAuthzGrpcProvider, res: CheckResponse): ExtAuthzVerdict {
  if (res.status.code === 0) {
    const ok = res.ok;
    const upstream = (ok?.headers ?? []).map((h) => editOf(h, false));
    // Pseudo-headers and Host cannot be removed: the request would be malformed (external_auth.proto).
    for (const name of ok?.headersToRemove ?? []) {
      const n = name.toLowerCase();
      if (!n.startsWith(":") && n !== "host") {
        upstream.push({ name: n, value: "", action: "remove" });
      }
    }
    return allowed(upstream, (ok?.responseHeadersToAdd ?? []).map((h) => editOf(h, true)));
  }
  const reply = res.error ?? res.denied;
  const headers = pairsOf(reply?.headers ?? []);
  if (res.error) {
    const failure = failed(provider, `error_response, code ${res.status.code}`);
    if (failure.allow) return failure;
    return { ...failure, status: reply!.status || failure.status, body: reply!.body, headers };
  }
  const message = res.status.message ? `: ${res.status.message}` : "";
  return denied(
    reply?.status || 403,
    reply?.body ?? "",
    headers,
    `code ${res.status.code}${message}`,
  );
}

/** `HeaderValueOption` as an edit; the deprecated `append` wins when set (Envoy's rule). */
function editOf(h: HeaderOption, response: boolean): HeaderEdit {
  const name = h.key.toLowerCase();
  if (h.append !== undefined) {
    const action: HeaderAction = h.append ? (response ? "add" : "append") : "set";
    return { name, value: h.value, action };
  }
  const actions: HeaderAction[] = ["add", "addIfAbsent", "set", "overwriteIfExists"];
  return { name, value: h.value, action: actions[h.appendAction ?? 0] ?? "set" };
}

function pairsOf(options: readonly HeaderOption[]): [string, string][] {
  return options.map((h) => [h.key.toLowerCase(), h.value]);
}

/** The provider's Service host and the endpoints of its port: `host` or `ns/host`. */
function serviceOf(
  mesh: Snapshot,
  provider: ExtAuthzProvider,
): { host?: string; endpoints: readonly Endpoint[] } {
  const [ns, host] = provider.service.includes("/")
    ? provider.service.split("/", 2)
    : [undefined, provider.service];
  const port = servicePortByHost(mesh, host, provider.port, ns);
  return port ? { host, endpoints: port.endpoints } : { endpoints: [] };
}

function allowed(
  upstream: readonly HeaderEdit[],
  downstream: readonly HeaderEdit[],
): ExtAuthzVerdict {
  return {
    allow: true,
    status: 200,
    body: "",
    headers: [],
    upstreamHeaders: upstream,
    downstreamHeaders: downstream,
    reason: "allowed",
  };
}

function denied(
  status: number,
  body: string,
  headers: [string, string][],
  reason: string,
): ExtAuthzVerdict {
  return {
    allow: false,
    status,
    body,
    headers,
    upstreamHeaders: [],
    downstreamHeaders: [],
    reason,
  };
}

function failed(provider: ExtAuthzProvider | undefined, reason: string): ExtAuthzVerdict {
  const open = provider?.failOpen ?? false;
  return {
    allow: open,
    status: provider?.statusOnError ?? 403,
    body: "",
    headers: [],
    upstreamHeaders: [],
    downstreamHeaders: [],
    reason: `${open ? "failed open" : "failed closed"}: ${reason}`,
  };
}
