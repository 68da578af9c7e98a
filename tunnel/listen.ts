/**
 * A plain TCP listener that keeps track of its connections, so closing it can wait for them and
 * then close the rest. Shared by the sandwich binding and the standalone `--dev-http` listener.
 *
 * Invariants:
 * - `close(graceMs)` stops accepting at once; open connections may finish on their own (HTTP ones
 *   close after their response once the server drains) until `graceMs`, then are destroyed. It
 *   resolves as soon as the last connection is gone, not at the end of the grace.
 */
import net from "node:net";

/** A listening TCP server. */
export interface TcpListener {
  /** The bound address and port (the real port when 0 was asked for). */
  readonly address: string;
  readonly port: number;
  /** Open connections right now. */
  readonly connections: number;
  /**
   * Stops accepting, waits up to `graceMs` for the open connections to end, then destroys the
   * rest.
   *
   * @param graceMs How long open connections may take @default 0
   */
  close(graceMs?: number): Promise<void>;
}

/**
 * Listens for TCP connections with half-close allowed and Nagle off.
 *
 * @param hostname Address to bind
 * @param port Port to bind; 0 picks one
 * @param onSocket Called once per accepted connection; errors on it must be handled there
 * @returns The listener once bound
 * @throws Error when the address cannot be bound
 */
export function listenTcp(
  hostname: string,
  port: number,
  onSocket: (socket: net.Socket) => void,
): Promise<TcpListener> {
  const sockets = new Set<net.Socket>();
  let onEmpty: (() => void) | undefined;
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket);
    socket.once("close", () => {
      sockets.delete(socket);
      if (sockets.size === 0) onEmpty?.();
    });
    socket.setNoDelay(true);
    onSocket(socket);
  });
  const close = async (graceMs = 0) => {
    const stopped = new Promise<void>((r) => server.close(() => r()));
    if (sockets.size > 0 && graceMs > 0) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((r) => {
        onEmpty = r;
        timer = setTimeout(r, graceMs);
      });
      clearTimeout(timer);
    }
    for (const s of sockets) s.destroy();
    await stopped;
  };
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, hostname, () => {
      const bound = server.address() as net.AddressInfo;
      resolve({
        address: bound.address,
        port: bound.port,
        get connections() {
          return sockets.size;
        },
        close,
      });
    });
  });
}
