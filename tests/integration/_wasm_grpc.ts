/**
 * WasmPlugins on gRPC through a real waypoint, the mesh side: a `node:http2` client inside one
 * HBONE CONNECT stream → waypoint (h2c, a WasmPlugin from a `file://` WAT module) → grpc-js
 * server as Service `ns1/echo` port 50051. Loopback 127.0.33.x: pod .11, VIP .111.
 */
import http2, { type ClientHttp2Session, type IncomingHttpHeaders } from "node:http2";
import type { Duplex } from "node:stream";
import { grpcFrame } from "../../grpc/mod.ts";
import { startMesh } from "../fixtures/mesh.ts";
import { concat, text } from "../fixtures/streams.ts";
import { startGrpcServer } from "../wasm/_grpc_server.ts";

export const VIP = "127.0.33.111";
export const POD = { name: "echo-1", ip: "127.0.33.11" };

/** What the client saw of one call. */
export interface Answer {
  readonly headers: IncomingHttpHeaders;
  readonly message: string;
  readonly trailers?: IncomingHttpHeaders;
}

/** One unary call on an h2c session inside a tunnel stream. */
function unary(
  stream: Duplex,
  path: string,
  message: string,
  extra: Record<string, string> = {},
): Promise<Answer> {
  const session: ClientHttp2Session = http2.connect("http://echo.ns1", {
    createConnection: () => stream,
  });
  session.on("error", () => {});
  return new Promise<Answer>((resolve, reject) => {
    const req = session.request({
      ":method": "POST",
      ":path": path,
      "content-type": "application/grpc",
      te: "trailers",
      ...extra,
    });
    const data: Uint8Array[] = [];
    let headers: IncomingHttpHeaders = {};
    let trailers: IncomingHttpHeaders | undefined;
    req.on("response", (h) => headers = h);
    req.on("data", (c: Uint8Array) => data.push(c));
    req.on("trailers", (t) => trailers = t);
    req.on("end", () => {
      const body = concat(data);
      resolve({ headers, message: text(body.subarray(5)), trailers });
    });
    req.on("error", reject);
    req.end(grpcFrame(new TextEncoder().encode(message)));
  }).finally(() => session.close());
}

/** A mesh whose Service `ns1/echo` port 50051 (grpc) is the grpc-js server, with this plugin. */
export async function grpcMesh(waypointIp: string, module: Uint8Array) {
  const server = await startGrpcServer(POD.ip);
  const file = await Deno.makeTempFile({ suffix: ".wasm" });
  await Deno.writeFile(file, module);
  const mesh = await startMesh({
    waypointIp,
    vip: VIP,
    pods: [POD],
    ports: [{ name: "grpc", port: 50051, targetPort: server.port }],
    extraYaml: `---
apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata: { name: grpc-plugin, namespace: ns1 }
spec:
  url: file://${file}
  targetRefs: [{ kind: Service, group: "", name: echo }]
`,
  });
  return {
    server,
    call: async (path: string, message: string, headers?: Record<string, string>) =>
      unary((await mesh.connect(`${VIP}:50051`)).stream, path, message, headers),
    async [Symbol.asyncDispose]() {
      await mesh[Symbol.asyncDispose]();
      await server[Symbol.asyncDispose]();
      await Deno.remove(file);
    },
  };
}
