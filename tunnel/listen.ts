/**
 * A plain TCP listener that keeps track of its connections, so closing it closes them too. Shared
 * by the sandwich binding and the standalone `--dev-http` listener.
 */
import net from "node:net";

/** A listening TCP server. */
export interface TcpListener {
  /** The bound address and port (the real port when 0 was asked for). */
  readonly address: string;
  readonly port: number;
  /** Stops accepting and destroys every open connection. */
  close(): Promise<void>;
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
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    socket.setNoDelay(true);
    onSocket(socket);
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, hostname, () => {
      const bound = server.address() as net.AddressInfo;
      resolve({
        address: bound.address,
        port: bound.port,
        close: () =>
          new Promise((r) => {
            for (const s of sockets) s.destroy();
            server.close(() => r());
          }),
      });
    });
  });
}
