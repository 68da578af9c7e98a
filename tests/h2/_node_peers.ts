/**
 * `node:http2` (nghttp2) peers for the h2/ tests, in this process over cleartext loopback.
 * Teardown always starts on the node side: these helpers never make our side send GOAWAY to
 * nghttp2, which is where denoland/deno#36788 aborts the process.
 */
import http2 from "node:http2";
import type { ServerHttp2Stream } from "node:http2";
import net, { type Socket } from "node:net";
import { connectH2, type H2Session, serveH2, type StreamHandler } from "../../h2/session.ts";
import { dial, listen, once, settle, until } from "./_helpers.ts";

/** What node advertises: the same windows and limits as our defaults. */
export const NODE_SETTINGS = {
  initialWindowSize: 4 << 20,
  maxFrameSize: 1 << 20,
  maxHeaderListSize: 64 << 10,
};

/** A node:http2 server's stream handler. */
export type NodeStreamHandler = (s: ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => void;

/**
 * Our server on `host` and a node:http2 client connected to it (`http://host:port`). Disposing
 * closes the node client first and waits for our sessions to follow.
 */
export async function ourServerNodeClient(host: string, onStream: StreamHandler) {
  const sessions: H2Session[] = [];
  const listener = await listen(host, (sock) => {
    sessions.push(serveH2(sock, {}, (s, h) => {
      s.on("error", () => {});
      onStream(s, h);
    }));
  });
  let socket!: Socket;
  const client = http2.connect(`http://${host}:${listener.port}`, {
    settings: NODE_SETTINGS,
    createConnection: () => (socket = net.connect(listener.port, host)),
  });
  client.on("error", () => {});
  await once(client, "remoteSettings");
  return {
    client,
    sessions,
    socket,
    [Symbol.asyncDispose]: async () => {
      if (!client.destroyed) await new Promise<void>((r) => client.close(() => r()));
      await until(() => sessions.every((s) => s.destroyed), 3_000, "our sessions to close");
      await listener[Symbol.asyncDispose]();
      await settle();
    },
  };
}

/**
 * A node:http2 server (fed by a net listener on `host`) and our client connected to it.
 * Disposing makes node send GOAWAY and waits for our client to close.
 */
export async function nodeServerOurClient(host: string, onStream: NodeStreamHandler) {
  const h2 = http2.createServer({ settings: NODE_SETTINGS });
  const nodeSessions: http2.ServerHttp2Session[] = [];
  h2.on("session", (s) => {
    nodeSessions.push(s);
    s.on("error", () => {});
  });
  h2.on("stream", (s: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => {
    s.on("error", () => {});
    onStream(s, headers);
  });
  const listener = await listen(host, (sock) => h2.emit("connection", sock));
  const client = connectH2(await dial(host, listener.port), {});
  await client.ready;
  return {
    client,
    nodeSessions,
    [Symbol.asyncDispose]: async () => {
      for (const s of nodeSessions) s.close();
      await until(() => client.destroyed, 3_000, "our client to close after node's GOAWAY");
      await listener[Symbol.asyncDispose]();
      await settle();
    },
  };
}
