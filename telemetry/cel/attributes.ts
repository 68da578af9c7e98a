/**
 * The attribute vocabulary of our CEL subset: the Envoy attribute names a waypoint fills, the
 * roots an expression may start from, the roots we refuse, and the interfaces through which a
 * request hands attribute values to a compiled program.
 */

/** Envoy attribute names we fill (Envoy `attributes.html`, the parts a waypoint knows). */
export const ATTRIBUTES: readonly string[] = Object.freeze([
  "request.path",
  "request.url_path",
  "request.host",
  "request.scheme",
  "request.method",
  "request.headers",
  "request.referer",
  "request.useragent",
  "request.id",
  "request.protocol",
  "request.size",
  "request.total_size",
  "request.time",
  "request.duration",
  "request.query",
  "response.code",
  "response.code_details",
  "response.flags",
  "response.grpc_status",
  "response.headers",
  "response.trailers",
  "response.size",
  "response.total_size",
  "source.address",
  "source.port",
  "source.principal",
  "destination.address",
  "destination.port",
  "destination.principal",
  "connection.mtls",
  "connection.requested_server_name",
  "upstream.address",
  "upstream.port",
]);

/** {@link ATTRIBUTES} as a set, for the compile-time check. */
export const KNOWN = new Set(ATTRIBUTES);
/** The first names of the attribute paths we fill. */
export const ROOTS = new Set([
  "request",
  "response",
  "source",
  "destination",
  "connection",
  "upstream",
]);
/** Roots Envoy has but we cannot fill from a waypoint's own state. */
export const REFUSED = new Set([
  "filter_state",
  "metadata",
  "xds",
  "node",
  "plugin",
  "upstream_filter_state",
]);

/** A string-keyed map value (headers): lookups are by lower-case name for headers. */
export interface CelMap {
  get(key: string): string | undefined;
}

/** Where attribute values come from; `undefined` means the attribute is absent. */
export interface CelAttributes {
  /**
   * @param name One of {@link ATTRIBUTES}
   * @returns A string, number, boolean, {@link CelMap} or `Date`, or undefined when absent
   */
  attribute(name: string): unknown;
}

/** No attribute at all: folds expressions that read none at compile. */
export const NO_ATTRIBUTES: CelAttributes = { attribute: () => undefined };
