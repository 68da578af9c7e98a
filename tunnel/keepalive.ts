/**
 * HTTP/2 keepalive: PING the peer every interval and drop the connection when an answer does not
 * come within the timeout, as ztunnel does (`src/proxy/h2.rs` `do_ping_pong`, hbone.md §1.7).
 */
import type { Http2Session } from "node:http2";
import type { TunnelConfig } from "./config.ts";

/**
 * Starts keepalive on a session; it stops by itself when the session closes.
 *
 * @param session The HTTP/2 session to watch
 * @param config Interval and timeout
 * @param onDead Called once, before the session is destroyed, when a PING went unanswered
 */
export function keepAlive(
  session: Http2Session,
  config: Pick<TunnelConfig, "pingIntervalMs" | "pingTimeoutMs">,
  onDead?: () => void,
): void {
  let deadline: ReturnType<typeof setTimeout> | undefined;
  const interval = setInterval(() => {
    if (session.destroyed || session.closed) return stop();
    if (deadline !== undefined) return;
    deadline = setTimeout(() => {
      onDead?.();
      session.destroy();
    }, config.pingTimeoutMs);
    try {
      session.ping(() => {
        clearTimeout(deadline);
        deadline = undefined;
      });
    } catch {
      // A session that cannot send a PING is on its way out; its close handler stops us.
    }
  }, config.pingIntervalMs);
  const stop = () => {
    clearInterval(interval);
    clearTimeout(deadline);
  };
  session.once("close", stop);
}
