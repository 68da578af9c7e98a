/**
 * Plain TCP "tunnels": a connection straight to the CONNECT authority, without HBONE. Used when
 * something else carries the mesh hop (the sandwich binding, where the node's ztunnel captures
 * our outbound traffic) and for laptops with no ztunnel at all (`--dev-plain-upstreams`).
 */
import net from "node:net";
import { TunnelError } from "./errors.ts";
import { parseAuthority } from "./address.ts";
import type { Tunnel, TunnelTarget } from "./pool.ts";

/** Opens plain TCP connections to `target.authority`. */
export class PlainOpener {
  #timeoutMs: number;

  /** @param timeoutMs Connect bound @default 10000 */
  constructor(timeoutMs = 10_000) {
    this.#timeoutMs = timeoutMs;
  }

  /**
   * Connects to the authority of the target; the HBONE address and identity are not used.
   *
   * @throws TunnelError of kind connect or timeout
   */
  open(target: TunnelTarget): Promise<Tunnel> {
    const to = parseAuthority(target.authority);
    if (!to) {
      return Promise.reject(
        new TunnelError("connect", target.authority, "not an ip:port authority"),
      );
    }
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: to.host, port: to.port, allowHalfOpen: true });
      socket.setNoDelay(true);
      const timer = setTimeout(() => {
        socket.destroy();
        reject(
          new TunnelError("timeout", target.authority, `no connection in ${this.#timeoutMs} ms`),
        );
      }, this.#timeoutMs);
      socket.once("error", (e: Error & { code?: string }) => {
        clearTimeout(timer);
        reject(new TunnelError("connect", target.authority, `${e.code ?? ""} ${e.message}`.trim()));
      });
      socket.once("connect", () => {
        clearTimeout(timer);
        resolve({ stream: socket, headers: {} });
      });
    });
  }
}
