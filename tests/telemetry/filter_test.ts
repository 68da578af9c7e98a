import assert from "node:assert/strict";
import {
  type Body,
  bytesBody,
  EMPTY_BODY,
  type Filter,
  HeaderMap,
  LocalReply,
  readAll,
} from "../../http/mod.ts";
import type { RequestState } from "../../proxy/mod.ts";
import { IstioMetrics, metricsFilter } from "../../telemetry/mod.ts";
import {
  connection,
  endpointOf,
  grpcFrames,
  Harness,
  request,
  type TestState,
} from "./_helpers.ts";

// The lead wires the filter into the proxy's chain: it must accept the proxy's state as is.
const _wired: Filter<RequestState> = metricsFilter<RequestState>(new IstioMetrics());

/** A body of chunks; `fail` makes the read after the last chunk reject. */
function chunks(parts: Uint8Array[], options: { fail?: Error } = {}): Body & { cancelled?: Error } {
  let i = 0;
  const body = {
    cancelled: undefined as Error | undefined,
    trailers: undefined,
    length: undefined,
    read(): Promise<Uint8Array | null> {
      if (i < parts.length) return Promise.resolve(parts[i++]);
      return options.fail ? Promise.reject(options.fail) : Promise.resolve(null);
    },
    cancel(reason?: Error) {
      body.cancelled = reason ?? new Error("cancelled");
    },
  };
  return body;
}

function respond(body: Body, status = 200, fields: [string, string][] = []): Filter<TestState> {
  return async (ctx) => {
    await readAll(ctx.request.body, 1 << 20);
    ctx.state.endpoint = endpointOf("reviews");
    ctx.response = { head: { status, headers: new HeaderMap(fields) }, body };
  };
}

/** The one `istio_requests_total` sample's labels and value. */
async function onlyRequest(h: Harness): Promise<{ labels: string; value: number }> {
  const text = await h.metrics.registry.renderText();
  const lines = text.split("\n").filter((l) => l.startsWith("istio_requests_total{"));
  assert.equal(lines.length, 1, text);
  const m = /\{(.*)\} (\d+)$/.exec(lines[0])!;
  return { labels: m[1], value: Number(m[2]) };
}

Deno.test("metricsFilter() keeps the series bounded over 10,000 distinct paths", async () => {
  const h = new Harness();
  const conn = connection({ service: "reviews" });
  for (let i = 0; i < 10_000; i++) {
    await h.send(conn(), request("GET", `/items/${i}?q=${i}`), respond(bytesBody(`item ${i}`)));
  }
  // requests_total, duration, request bytes, response bytes: one series each.
  assert.equal(h.metrics.registry.seriesCount, 4);
  const text = await h.metrics.registry.renderText();
  assert.doesNotMatch(text, /items/);
  assert.equal((await onlyRequest(h)).value, 10_000);
});

Deno.test("metricsFilter() records once, with the flag of how the response ended", async () => {
  const cases: [string, string, () => Body, (b: Body) => Promise<void>, string][] = [
    [
      "a body read to its end",
      "GET",
      () => chunks([new Uint8Array(3)]),
      (b) => readAll(b, 99).then(() => b.cancel()),
      "-",
    ],
    [
      "a client that went away mid-body",
      "GET",
      () => chunks([new Uint8Array(3), new Uint8Array(3)]),
      async (b) => {
        await b.read();
        b.cancel(new Error("peer went away"));
      },
      "DC",
    ],
    [
      "an upstream that reset mid-body",
      "GET",
      () => chunks([new Uint8Array(3)], { fail: new Error("reset") }),
      (b) => readAll(b, 99).then(() => {}, () => {}),
      "UC",
    ],
    [
      "a HEAD response dropped by the codec",
      "HEAD",
      () => chunks([new Uint8Array(3)]),
      (b) => Promise.resolve(b.cancel()),
      "-",
    ],
    [
      "a connection closed before the response",
      "GET",
      () => chunks([new Uint8Array(3)]),
      (b) => Promise.resolve(b.cancel()),
      "DC",
    ],
  ];
  for (const [name, method, makeBody, codec, flag] of cases) {
    const h = new Harness();
    const ctx = await h.send(
      connection({ service: "reviews" })(),
      request(method, "/"),
      respond(makeBody()),
      {
        consume: false,
      },
    );
    await codec(ctx.response!.body);
    const got = await onlyRequest(h);
    assert.equal(got.value, 1, name);
    assert.match(got.labels, new RegExp(`response_flags="${flag}"`), name);
  }
});

Deno.test("metricsFilter() keeps a flag a filter set over the way the body ended", async () => {
  const h = new Harness();
  const flagged: Filter<TestState> = async (ctx, next) => {
    ctx.setFlag("URX");
    await next();
  };
  const inner: Filter<TestState> = (ctx, next) =>
    flagged(ctx, () => respond(chunks([new Uint8Array(1)]))(ctx, next));
  const ctx = await h.send(connection({ service: "reviews" })(), request("GET", "/"), inner, {
    consume: false,
  });
  ctx.response!.body.cancel(new Error("gone"));
  assert.match((await onlyRequest(h)).labels, /response_flags="URX"/);
});

Deno.test("metricsFilter() records a thrown error as the chain's 500", async () => {
  const h = new Harness();
  await h.send(
    connection({ service: "reviews" })(),
    request("GET", "/"),
    () => Promise.reject(new Error("bug")),
  );
  assert.match(
    (await onlyRequest(h)).labels,
    /response_code="500",grpc_response_status="",response_flags="-"/,
  );
});

Deno.test("metricsFilter() records bodiless and upgraded responses without waiting", async () => {
  for (const [status, body] of [[204, EMPTY_BODY], [101, EMPTY_BODY]] as const) {
    const h = new Harness();
    await h.send(connection({ service: "reviews" })(), request("GET", "/"), respond(body, status), {
      consume: false,
    });
    assert.match((await onlyRequest(h)).labels, new RegExp(`response_code="${status}"`));
  }
});

Deno.test("metricsFilter() counts gRPC messages split across chunks and reads trailers", async () => {
  const h = new Harness();
  const frames = grpcFrames(2, 0, 300, 7);
  // Cut inside a prefix, inside a payload and between frames.
  const parts = [frames.slice(0, 3), frames.slice(3, 9), frames.slice(9, 200), frames.slice(200)];
  const grpc: [string, string] = ["content-type", "application/grpc"];
  const echo: Filter<TestState> = async (ctx) => {
    await readAll(ctx.request.body, 1 << 20);
    ctx.state.endpoint = endpointOf("echo");
    ctx.response = {
      head: { status: 200, headers: new HeaderMap([grpc]) },
      body: bytesBody(grpcFrames(1, 1, 1), new HeaderMap([["grpc-status", "0"]])),
    };
  };
  await h.send(
    connection({ service: "echo" })(),
    request("POST", "/echo.Echo/Stream", [grpc]),
    echo,
    {
      body: chunks(parts),
    },
  );
  const text = await h.metrics.registry.renderText();
  assert.match(text, /istio_requests_total\{[^}]*grpc_response_status="0"[^}]*\} 1/);
  // Message counters carry the pair's labels only, as Envoy's periodic report writes them.
  const pair = /destination_cluster="Kubernetes"\}/.source;
  assert.match(text, new RegExp(`istio_request_messages_total\\{[^}]*${pair} 4`));
  assert.match(text, new RegExp(`istio_response_messages_total\\{[^}]*${pair} 3`));
});

Deno.test("metricsFilter() answers a gRPC request's local reply as 200 with the mapped status", async () => {
  const grpc: [string, string] = ["content-type", "application/grpc"];
  const cases: [string, Filter<TestState>, string][] = [
    [
      "a thrown 503",
      () => Promise.reject(new LocalReply(503, "no healthy upstream", { flag: "UH" })),
      '"14",response_flags="UH"',
    ],
    ["a reply set without throwing", (ctx) => {
      ctx.reply(new LocalReply(404, ""));
      return Promise.resolve();
    }, '"12",response_flags="-"'],
  ];
  for (const [name, inner, expected] of cases) {
    const h = new Harness();
    await h.send(
      connection({ service: "echo" })(),
      request("POST", "/echo.Echo/Get", [grpc]),
      inner,
    );
    assert.match(
      (await onlyRequest(h)).labels,
      new RegExp(`response_code="200",grpc_response_status=${expected}`),
      name,
    );
  }
});

Deno.test("metricsFilter() relabels when a connection's requests reach other endpoints", async () => {
  const h = new Harness();
  const conn = connection({ service: "reviews" });
  const to = (service: string): Filter<TestState> => (ctx) => {
    ctx.state.endpoint = endpointOf(service);
    ctx.response = { head: { status: 200, headers: new HeaderMap() }, body: EMPTY_BODY };
    return Promise.resolve();
  };
  for (const service of ["reviews", "echo", "reviews"]) {
    await h.send(conn(), request("GET", "/"), to(service));
  }
  const text = await h.metrics.registry.renderText();
  assert.match(text, /istio_requests_total\{[^}]*destination_workload="reviews-v1"[^}]*\} 2/);
  assert.match(text, /istio_requests_total\{[^}]*destination_workload="echo"[^}]*\} 1/);
});

Deno.test("metricsFilter() escapes label values that come from the client", async () => {
  const h = new Harness();
  const conn = connection({
    service: "reviews",
    identity: "spiffe://cluster.local/ns/x/sa/y",
    client: "10.9.0.1:1",
    baggage: "k8s.namespace.name=x,k8s.deployment.name=a%22b%5Cc%0Ad,service.name=s",
  });
  await h.send(conn(), request("GET", "/"), respond(EMPTY_BODY));
  assert.match((await onlyRequest(h)).labels, /source_workload="a\\"b\\\\c\\nd",/);
});

Deno.test("metricsFilter() never fails a request when recording throws", async () => {
  const h = new Harness();
  const state = connection({ service: "reviews" })();
  // A broken state: the snapshot has no workload index.
  const broken = {
    ...state,
    config: { mesh: { ...state.config.mesh, workloadsByAddress: undefined } },
  };
  const ctx = await h.send(
    broken as unknown as TestState,
    request("GET", "/"),
    respond(bytesBody("ok")),
  );
  assert.equal(ctx.response?.head.status, 200);
  assert.equal(h.metrics.recordFailures, 1);
});
