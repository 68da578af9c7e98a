/**
 * One request as the compiled matchers read it. Derived values (normalized path, lower-case host,
 * parsed IPs, joined header values) are computed on first use and kept, so a request evaluated
 * against many rules pays for each at most once, and a request no rule looks at pays nothing.
 */
import type { HeaderMap } from "../http/types.ts";
import { type IpWords, parseIp } from "./_cidr.ts";
import type { AuthzRequest } from "./authz.ts";

const SPIFFE = "spiffe://";
const UNSET = Symbol("unset");
type Lazy<T> = T | typeof UNSET;

/** Lazily derived attributes of an {@link AuthzRequest}. */
export class RequestView {
  readonly request: AuthzRequest;
  /** Normalized target (path and query); undefined on TCP or without a path. */
  readonly target: string | undefined;
  #urlPath: Lazy<string | undefined> = UNSET;
  #host: Lazy<string | undefined> = UNSET;
  #principal: Lazy<string | undefined> = UNSET;
  #sourceIp: Lazy<IpWords | undefined> = UNSET;
  #remoteIp: Lazy<IpWords | undefined> = UNSET;
  #destinationIp: Lazy<IpWords | undefined> = UNSET;
  #iss: Lazy<string | undefined> = UNSET;
  #sub: Lazy<string | undefined> = UNSET;

  constructor(request: AuthzRequest, target: string | undefined) {
    this.request = request;
    this.target = target;
  }

  /** The normalized path without query, as `paths` compare it. */
  get urlPath(): string | undefined {
    if (this.#urlPath === UNSET) {
      const t = this.target;
      const q = t === undefined ? -1 : t.indexOf("?");
      this.#urlPath = q < 0 ? t : t!.slice(0, q);
    }
    return this.#urlPath;
  }

  /** `:authority` lower-cased, as `hosts` compare it. */
  get host(): string | undefined {
    if (this.#host === UNSET) this.#host = this.request.host?.toLowerCase();
    return this.#host;
  }

  /** The peer identity as a SPIFFE URI. */
  get principal(): string | undefined {
    if (this.#principal === UNSET) {
      const p = this.request.sourcePrincipal;
      this.#principal = p === undefined || p === "" || p.startsWith(SPIFFE)
        ? p || undefined
        : SPIFFE + p;
    }
    return this.#principal;
  }

  get sourceIp(): IpWords | undefined {
    if (this.#sourceIp === UNSET) this.#sourceIp = ipOf(this.request.sourceIp);
    return this.#sourceIp;
  }

  /** Envoy `remote_ip`: the original client, or the peer when nothing says otherwise. */
  get remoteIp(): IpWords | undefined {
    if (this.#remoteIp === UNSET) {
      this.#remoteIp = this.request.remoteIp === undefined
        ? this.sourceIp
        : ipOf(this.request.remoteIp);
    }
    return this.#remoteIp;
  }

  get destinationIp(): IpWords | undefined {
    if (this.#destinationIp === UNSET) this.#destinationIp = ipOf(this.request.destinationIp);
    return this.#destinationIp;
  }

  /** JWT `iss` of the request principal. */
  get issuer(): string | undefined {
    if (this.#iss === UNSET) this.#splitPrincipal();
    return this.#iss as string | undefined;
  }

  /** JWT `sub` of the request principal. */
  get subject(): string | undefined {
    if (this.#sub === UNSET) this.#splitPrincipal();
    return this.#sub as string | undefined;
  }

  /**
   * A request header as Envoy's header matcher sees it: repeated fields joined with `,`; the
   * pseudo-headers `:authority`, `:method` and `:path` (and `host` without a Host field) too.
   *
   * @param name Lower-case field name
   */
  header(name: string): string | undefined {
    if (name.startsWith(":")) return this.#pseudo(name);
    const value = joined(this.request.headers, name);
    return value === undefined && name === "host" ? this.request.host : value;
  }

  #pseudo(name: string): string | undefined {
    switch (name) {
      case ":authority":
        return this.request.host;
      case ":method":
        return this.request.method;
      case ":path":
        return this.target;
      default:
        return undefined;
    }
  }

  #splitPrincipal(): void {
    const auth = this.request.auth;
    const iss = auth?.claims.iss;
    const sub = auth?.claims.sub;
    if (typeof iss === "string" || typeof sub === "string") {
      this.#iss = typeof iss === "string" ? iss : undefined;
      this.#sub = typeof sub === "string" ? sub : undefined;
      return;
    }
    const principal = auth?.principal;
    const slash = principal === undefined ? -1 : principal.lastIndexOf("/");
    this.#iss = slash < 0 ? principal : principal!.slice(0, slash);
    this.#sub = slash < 0 ? undefined : principal!.slice(slash + 1);
  }
}

function ipOf(text: string | undefined): IpWords | undefined {
  return text === undefined ? undefined : parseIp(text);
}

/** Values of a field joined with `,`, allocating only when it repeats. */
function joined(headers: HeaderMap | undefined, name: string): string | undefined {
  if (headers === undefined) return undefined;
  let first: string | undefined;
  let all: string[] | undefined;
  for (const [n, v] of headers.entries()) {
    if (n !== name) continue;
    if (first === undefined) first = v;
    else (all ??= [first]).push(v);
  }
  return all ? all.join(",") : first;
}
