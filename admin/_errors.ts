/**
 * The one place an admin app turns a thrown error into a response (STYLE habit 13).
 */
import type { Context } from "hono";
import { log } from "../log/mod.ts";

/**
 * Answers 500 and logs the error with the path that raised it; the body names no internals, as
 * the metrics and readiness ports are reachable from the pod network.
 *
 * @param err What the handler threw.
 * @param c The request context.
 * @returns A `500 Internal error` text response.
 */
export function onAppError(err: Error, c: Context): Response {
  log.error("Admin request failed", { path: c.req.path, error: err });
  return c.text("Internal error", 500);
}
