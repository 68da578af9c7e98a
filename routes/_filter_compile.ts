/**
 * Checking and compiling route filters (gateway-api `HTTPRouteFilter`, `GRPCRouteFilter`; Istio
 * `conversion.go` `convertHTTPRoute`). Filters keep the order written.
 *
 * - `ExtensionRef` and `ExternalAuth` are not supported by Istio and make the route not accepted
 *   (`InvalidFilter`), as does any filter type a place does not allow (GRPCRoute allows header
 *   modifiers and mirrors; backendRef-level filters allow header modifiers, as in Istio).
 * - Each type appears at most once per list, except RequestMirror (CRD rules); RequestRedirect and
 *   URLRewrite exclude each other.
 * - Header modifier entries repeating a name (case-insensitive) are ignored after the first
 *   ("Subsequent entries with an equivalent header name MUST be ignored").
 */
import type { Cors, CorsOrigin, Filter, HeaderModifier, PathModifier } from "./model.ts";
import { invalid } from "./_problems.ts";
import {
  type Fields,
  flag,
  integer,
  oneOf,
  record,
  records,
  requiredText,
  show,
  text,
  texts,
} from "./_read.ts";
import { type RefContext, resolveRef } from "./_backends.ts";
import { parseOrigin } from "./_origin.ts";

/** Every filter type we compile. */
export type FilterType = Filter["type"];

/** The filter types of HTTPRoute rules. */
export const HTTP_FILTERS: readonly FilterType[] = [
  "RequestHeaderModifier",
  "ResponseHeaderModifier",
  "RequestRedirect",
  "URLRewrite",
  "RequestMirror",
  "CORS",
];
/** The filter types of GRPCRoute rules. */
export const GRPC_FILTERS: readonly FilterType[] = [
  "RequestHeaderModifier",
  "ResponseHeaderModifier",
  "RequestMirror",
];
/** The filter types allowed on a backendRef. */
export const BACKEND_FILTERS: readonly FilterType[] = [
  "RequestHeaderModifier",
  "ResponseHeaderModifier",
];

const FIELD_OF: Readonly<Record<FilterType, string>> = {
  RequestHeaderModifier: "requestHeaderModifier",
  ResponseHeaderModifier: "responseHeaderModifier",
  RequestRedirect: "requestRedirect",
  URLRewrite: "urlRewrite",
  RequestMirror: "requestMirror",
  CORS: "cors",
};
const HEADER_NAME = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/;
const REDIRECT_CODES = [301, 302, 303, 307, 308] as const;

/**
 * Compiles a `filters` list.
 *
 * @param value The list as written
 * @param path Its field path
 * @param allowed Filter types this place accepts
 * @param ctx For mirror backends and warnings
 * @returns The filters in order; a mirror whose backend cannot be resolved is dropped with a warning
 * @throws RouteConfigError when a filter is unsupported, malformed or repeated
 */
export function compileFilters(
  value: unknown,
  path: string,
  allowed: readonly FilterType[],
  ctx: RefContext,
): readonly Filter[] {
  const out: Filter[] = [];
  const seen = new Set<string>();
  for (const [filter, at] of records(value, path)) {
    const type = requiredText(filter.type, `${at}.type`);
    if (type === "ExtensionRef" || type === "ExternalAuth") {
      invalid("InvalidFilter", `${at} is an ${type} filter, which this waypoint does not support`);
    }
    if (!allowed.includes(type as FilterType)) {
      invalid("InvalidFilter", `${at} has unsupported filter type ${show(type)} here`);
    }
    if (seen.has(type) && type !== "RequestMirror") {
      invalid("InvalidFilter", `${at} repeats the ${type} filter, which may appear once`);
    }
    seen.add(type);
    const field = FIELD_OF[type as FilterType];
    const body = record(filter[field], `${at}.${field}`, true)!;
    const compiled = compileOne(type as FilterType, body, `${at}.${field}`, ctx);
    if (compiled) out.push(Object.freeze(compiled));
  }
  if (seen.has("RequestRedirect") && seen.has("URLRewrite")) {
    invalid(
      "InvalidFilter",
      `${path} has both RequestRedirect and URLRewrite, which exclude each other`,
    );
  }
  return Object.freeze(out);
}

function compileOne(
  type: FilterType,
  body: Fields,
  path: string,
  ctx: RefContext,
): Filter | undefined {
  switch (type) {
    case "RequestHeaderModifier":
    case "ResponseHeaderModifier":
      return { type, modifier: headerModifier(body, path) };
    case "RequestRedirect":
      return { type, redirect: Object.freeze(redirect(body, path)) };
    case "URLRewrite":
      return { type, rewrite: Object.freeze(rewrite(body, path)) };
    case "RequestMirror":
      return mirror(body, path, ctx);
    case "CORS":
      return { type, cors: cors(body, path) };
  }
}

function headerModifier(body: Fields, path: string): HeaderModifier {
  const pairs = (list: unknown, at: string) => {
    const out = new Map<string, string>();
    for (const [entry, itemAt] of records(list, at)) {
      const name = requiredText(entry.name, `${itemAt}.name`);
      const value = text(entry.value, `${itemAt}.value`) ?? "";
      if (!HEADER_NAME.test(name)) {
        invalid("InvalidFilter", `${itemAt}.name ${show(name)} is not a header name`);
      }
      if (!isValidHeaderValue(value)) {
        invalid(
          "InvalidFilter",
          `${itemAt}.value of header ${show(name)} contains invalid characters`,
        );
      }
      if (!out.has(name.toLowerCase())) out.set(name.toLowerCase(), value);
    }
    return Object.freeze([...out].map((pair) => Object.freeze(pair)));
  };
  return Object.freeze({
    set: pairs(body.set, `${path}.set`),
    add: pairs(body.add, `${path}.add`),
    remove: Object.freeze(texts(body.remove, `${path}.remove`).map((n) => n.toLowerCase())),
  });
}

/** RFC 9110 field-value characters: visible ASCII, obs-text, space and tab. */
function isValidHeaderValue(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c !== 0x09 && (c < 0x20 || c === 0x7f)) return false;
  }
  return true;
}

function redirect(body: Fields, path: string) {
  const scheme = text(body.scheme, `${path}.scheme`);
  if (scheme !== undefined && scheme !== "http" && scheme !== "https") {
    invalid("UnsupportedValue", `${path}.scheme is ${show(scheme)} (want http or https)`);
  }
  const status = integer(body.statusCode, `${path}.statusCode`, 100, 599) ?? 302;
  const statusCode = REDIRECT_CODES.find((c) => c === status) ??
    invalid(
      "UnsupportedValue",
      `${path}.statusCode is ${status} (want ${REDIRECT_CODES.join(", ")})`,
    );
  return {
    scheme: scheme as "http" | "https" | undefined,
    hostname: text(body.hostname, `${path}.hostname`) || undefined,
    path: pathModifier(body.path, `${path}.path`),
    port: integer(body.port, `${path}.port`, 1, 65535),
    statusCode,
  };
}

function rewrite(body: Fields, path: string) {
  return {
    hostname: text(body.hostname, `${path}.hostname`) || undefined,
    path: pathModifier(body.path, `${path}.path`),
  };
}

function pathModifier(value: unknown, path: string): PathModifier | undefined {
  const body = record(value, path);
  if (!body) return undefined;
  const type = oneOf(
    body.type,
    `${path}.type`,
    ["ReplaceFullPath", "ReplacePrefixMatch"],
    "ReplaceFullPath",
  );
  const field = type === "ReplaceFullPath" ? "replaceFullPath" : "replacePrefixMatch";
  const replacement = text(body[field], `${path}.${field}`);
  if (replacement === undefined) {
    invalid("UnsupportedValue", `${path}.${field} is missing for type ${type}`);
  }
  return Object.freeze({ type, value: replacement });
}

function mirror(body: Fields, path: string, ctx: RefContext): Filter | undefined {
  const ref = record(body.backendRef, `${path}.backendRef`, true)!;
  const percent = integer(body.percent, `${path}.percent`, 0, 100);
  const fraction = record(body.fraction, `${path}.fraction`);
  if (percent !== undefined && fraction) {
    invalid("UnsupportedValue", `${path} sets both percent and fraction`);
  }
  let share = percent ?? 100;
  if (fraction) {
    const numerator = integer(fraction.numerator, `${path}.fraction.numerator`, 0, 2 ** 31 - 1) ??
      0;
    const denominator =
      integer(fraction.denominator, `${path}.fraction.denominator`, 1, 2 ** 31 - 1) ?? 100;
    if (numerator > denominator) invalid("UnsupportedValue", `${path}.fraction is more than 1`);
    share = (100 * numerator) / denominator;
  }
  const backend = resolveRef(ref, `${path}.backendRef`, ctx, "mirror");
  if (backend.kind !== "service") return undefined;
  const target = Object.freeze({ backend, percent: share });
  return { type: "RequestMirror", mirror: target };
}

function cors(body: Fields, path: string): Cors {
  const origins = texts(body.allowOrigins, `${path}.allowOrigins`).map((o, i) =>
    corsOrigin(o, `${path}.allowOrigins[${i}]`)
  );
  return Object.freeze({
    allowOrigins: Object.freeze(origins),
    allowCredentials: flag(body.allowCredentials, `${path}.allowCredentials`) ?? false,
    allowMethods: Object.freeze(texts(body.allowMethods, `${path}.allowMethods`)),
    allowHeaders: Object.freeze(texts(body.allowHeaders, `${path}.allowHeaders`)),
    exposeHeaders: Object.freeze(texts(body.exposeHeaders, `${path}.exposeHeaders`)),
    maxAge: integer(body.maxAge, `${path}.maxAge`, 1, 2 ** 31 - 1) ?? 5,
  });
}

/** `*` alone allows all; otherwise `*` in the host is greedy to the left (any labels). */
function corsOrigin(pattern: string, path: string): CorsOrigin {
  if (pattern === "*") return Object.freeze({ any: true, scheme: "", host: /^$/, port: 0 });
  const parts = parseOrigin(pattern);
  if (!parts) {
    invalid("UnsupportedValue", `${path} ${show(pattern)} is not <scheme>://<host>[:<port>]`);
  }
  const host = parts.host.split("*").map((s) => s.replace(/[.+?^${}()|[\]\\]/g, "\\$&")).join(".*");
  return Object.freeze({
    any: false,
    scheme: parts.scheme,
    host: new RegExp(`^${host}$`, "i"),
    port: parts.port,
  });
}
