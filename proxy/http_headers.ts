/**
 * Header handling at the proxy boundary (RFC 9110 §7.6.1, hbone.md §4): hop-by-hop fields are
 * dropped in both directions, `x-request-id` is generated when absent, and nothing else is added:
 * Istio's waypoint does not append `x-forwarded-for` and passes the upstream's `server` through.
 */
import type { HeaderMap } from "../http/mod.ts";

/** Fields that describe one connection and never cross a proxy. */
const HOP_BY_HOP = [
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "upgrade",
  "http2-settings",
];

/**
 * Removes hop-by-hop fields, including those the `connection` field names.
 *
 * @param headers Edited in place
 * @param keepUpgrade Keep `upgrade` and `connection: upgrade` for a WebSocket-style upgrade
 */
export function stripHopByHop(headers: HeaderMap, keepUpgrade = false): void {
  const connection = headers.joined("connection");
  if (connection) {
    for (const token of connection.split(",")) {
      const name = token.trim().toLowerCase();
      if (name && !(keepUpgrade && name === "upgrade")) headers.delete(name);
    }
  }
  for (const name of HOP_BY_HOP) {
    if (keepUpgrade && (name === "upgrade" || name === "connection")) continue;
    headers.delete(name);
  }
  if (keepUpgrade) headers.set("connection", "upgrade");
  const te = headers.get("te");
  // Only `te: trailers` may pass (gRPC needs it); other transfer codings are hop-by-hop.
  if (te !== undefined && te.toLowerCase() !== "trailers") headers.delete("te");
}

/**
 * The request's `x-request-id`, set to a new UUID when absent (Envoy's default).
 *
 * @param headers Edited in place when the id is missing
 */
export function ensureRequestId(headers: HeaderMap): string {
  let id = headers.get("x-request-id");
  if (!id) {
    id = crypto.randomUUID();
    headers.set("x-request-id", id);
  }
  return id;
}

/**
 * How one header edit applies, after Envoy's ext_authz header mutations
 * (`source/extensions/filters/common/ext_authz/ext_authz_grpc_impl.cc`): `set` replaces every
 * value or adds, `add` adds another field, `append` joins the value to the existing ones with `,`
 * (or adds it), `addIfAbsent` and `overwriteIfExists` act only when the field is absent or
 * present, `remove` drops every value.
 */
export type HeaderAction =
  | "set"
  | "add"
  | "append"
  | "addIfAbsent"
  | "overwriteIfExists"
  | "remove";

/** One header edit. */
export interface HeaderEdit {
  readonly name: string;
  /** Ignored by `remove`. */
  readonly value: string;
  readonly action: HeaderAction;
}

/**
 * Applies edits in order.
 *
 * @param headers Edited in place
 * @param edits The edits
 */
export function applyHeaderEdits(headers: HeaderMap, edits: readonly HeaderEdit[]): void {
  for (const { name, value, action } of edits) {
    const present = headers.has(name);
    if (action === "set" || (action === "overwriteIfExists" && present)) headers.set(name, value);
    else if (action === "add" || (action === "addIfAbsent" && !present)) headers.add(name, value);
    else if (action === "append") {
      headers.set(name, present ? `${headers.joined(name)},${value}` : value);
    } else if (action === "remove") headers.delete(name);
  }
}
