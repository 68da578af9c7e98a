/** Local stand-ins for telemetry backends: an OTLP/HTTP trace receiver, a port nothing serves. */
import type { OtlpProvider } from "../../telemetry/mod.ts";

/** An OTLP/HTTP receiver on `hostname` that keeps the path of each span's `http.url`. */
export function otlpReceiver(hostname: string) {
  const paths: string[] = [];
  const server = Deno.serve({ hostname, port: 0, onListen() {} }, async (req) => {
    const body = await req.json();
    for (const r of body.resourceSpans) {
      for (const s of r.scopeSpans) {
        for (const span of s.spans) {
          const url = span.attributes.find((a: { key: string }) => a.key === "http.url");
          paths.push(new URL(url.value.stringValue).pathname);
        }
      }
    }
    return new Response("{}");
  });
  return {
    paths,
    port: server.addr.port,
    /** A MeshConfig `opentelemetry` provider sending here. */
    provider: (name: string, path = "/v1/traces"): OtlpProvider => ({
      name,
      service: `observability/${hostname}`,
      port: server.addr.port,
      http: { path, timeoutMs: 2_000, headers: [] },
    }),
    [Symbol.asyncDispose]: () => server.shutdown(),
  };
}

/** A free port on a loopback address: nothing listens there. */
export function freePort(hostname: string): number {
  const l = Deno.listen({ hostname, port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}
