/**
 * The `envoyExtAuthzHttp` client for CUSTOM AuthorizationPolicy (l7.md §3.5, §1.9): the check
 * request carries the original method and path (after `pathPrefix`), Host and the configured
 * headers; an HTTP 200 allows, anything else denies with the service's own status, body and the
 * allowed headers; a failure to ask denies with `statusOnError` unless `failOpen`.
 */
import { EMPTY_BODY, HeaderMap, type HttpContext, readAll } from "../http/mod.ts";
import type { Endpoint, Snapshot } from "../mesh/mod.ts";
import type { LeastRequestBalancer } from "../routes/mod.ts";
import type { HttpUpstreams } from "./http_pool.ts";
import type { RequestState } from "./http_state.ts";
import type { ExtAuthzHttpProvider } from "./mesh_config.ts";

/** What one check decided. */
export interface ExtAuthzVerdict {
  readonly allow: boolean;
  readonly status: number;
  readonly body: string;
  /** Headers for the client on a denial. */
  readonly headers: [string, string][];
  /** Headers to add to the upstream request on an allow. */
  readonly upstreamHeaders: [string, string][];
  /** Headers to add to the client's response on an allow. */
  readonly downstreamHeaders: [string, string][];
  /** Why, for logs. */
  readonly reason: string;
}

/** Inputs of {@link ExtAuthz}. */
export interface ExtAuthzInputs {
  readonly providers: ReadonlyMap<string, ExtAuthzHttpProvider>;
  readonly upstreams: HttpUpstreams;
  readonly balancer: LeastRequestBalancer;
}

const MAX_DENY_BODY = 64 << 10;

/** Asks ext_authz HTTP providers. */
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
   */
  async check(name: string, ctx: HttpContext<RequestState>): Promise<ExtAuthzVerdict> {
    const provider = this.#inputs.providers.get(name);
    if (!provider) {
      return failed(undefined, `provider ${name} is not an envoyExtAuthzHttp provider`);
    }
    const endpoints = endpointsOf(ctx.state.config.mesh, provider);
    const pick = this.#inputs.balancer.pick(endpoints);
    if (!pick) return failed(provider, `no endpoint for ${provider.service}:${provider.port}`);
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      const expired = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`no answer in ${provider.timeoutMs} ms`)),
          provider.timeoutMs,
        );
      });
      const res = await Promise.race([this.#ask(provider, pick.endpoint, ctx), expired]);
      const pickHeaders = (names: readonly string[]) =>
        res.head.headers.entries().filter(([n]) => names.includes(n)).map(([n, v]) =>
          [n, v] as [string, string]
        );
      if (res.head.status === 200) {
        res.body.cancel();
        return {
          allow: true,
          status: 200,
          body: "",
          headers: [],
          upstreamHeaders: pickHeaders(provider.headersToUpstreamOnAllow),
          downstreamHeaders: pickHeaders(provider.headersToDownstreamOnAllow),
          reason: "allowed",
        };
      }
      const body = new TextDecoder().decode(await readAll(res.body, MAX_DENY_BODY));
      return {
        allow: false,
        status: res.head.status,
        body,
        headers: pickHeaders(provider.headersToDownstreamOnDeny),
        upstreamHeaders: [],
        downstreamHeaders: [],
        reason: `status ${res.head.status}`,
      };
    } catch (e) {
      return failed(provider, (e as Error).message);
    } finally {
      clearTimeout(timer);
      pick.done();
    }
  }

  #ask(provider: ExtAuthzHttpProvider, endpoint: Endpoint, ctx: HttpContext<RequestState>) {
    const original = ctx.request.head;
    const headers = new HeaderMap([["content-length", "0"]]);
    for (const [n, v] of original.headers) {
      if (provider.includeRequestHeadersInCheck.includes(n)) headers.add(n, v);
    }
    for (const [n, v] of Object.entries(provider.includeAdditionalHeadersInCheck)) {
      headers.set(n, v);
    }
    return this.#inputs.upstreams.send(endpoint, "http1", undefined, {
      method: original.method,
      path: provider.pathPrefix + original.path,
      authority: original.authority,
      scheme: "http",
      version: "1.1",
      headers,
    }, EMPTY_BODY);
  }
}

/** Endpoints of the provider's service port: `host` or `ns/host`, matched by hostname. */
function endpointsOf(mesh: Snapshot, provider: ExtAuthzHttpProvider): readonly Endpoint[] {
  const [ns, host] = provider.service.includes("/")
    ? provider.service.split("/", 2)
    : [undefined, provider.service];
  for (const s of mesh.servicesByName.values()) {
    if (s.hostname !== host || (ns && s.namespace !== ns)) continue;
    return s.ports.find((p) => p.port === provider.port)?.endpoints ?? [];
  }
  return [];
}

function failed(provider: ExtAuthzHttpProvider | undefined, reason: string): ExtAuthzVerdict {
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
