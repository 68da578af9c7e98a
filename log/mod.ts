/**
 * @module
 * Structured logs for every folder: one JSON object a line, leveled, never blocking the request
 * path. Owns no policy; only formatting and the bounded queue.
 */
export { type Fields, type Level, Logger, type LoggerOptions, type Sink } from "./logger.ts";
import { Logger } from "./logger.ts";

/** The process-wide logger; `main.ts` sets its level. */
export const log: Logger = new Logger({
  level: (Deno.env.get("WAYPOINT_LOG_LEVEL") as "debug" | "info" | "warn" | "error" | undefined) ??
    "info",
});
