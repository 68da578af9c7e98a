import assert from "node:assert/strict";
import { bytesBody, type Filter, HeaderMap, LocalReply, readAll } from "../../http/mod.ts";
import { parseConfigText } from "../../mesh/mod.ts";
import {
  type AccessLogProvider,
  AccessLogs,
  compileFormat,
  compileTelemetry,
  DEFAULT_JSON_LABELS,
  DEFAULT_PROVIDERS,
  type LogRecord,
} from "../../telemetry/mod.ts";
import { connection, endpointOf, Harness, request, type TestState } from "./_helpers.ts";

/** A record with a code and flags, no request and nothing counted. */
function bareRecord(code: number, flags = "-"): LogRecord {
  return {
    startMs: 0,
    code,
    flags,
    bytesReceived: 0,
    bytesSent: 0,
    durationMs: 0,
    requestHeader: () => undefined,
    responseHeader: () => undefined,
    responseTrailer: () => undefined,
  };
}

/** 2024-05-01T12:00:00.000Z: the start of every request here (the test clock starts at 0). */
const EPOCH = Date.UTC(2024, 4, 1, 12, 0, 0);

const { telemetry: LOG_ALL } = compileTelemetry(
  parseConfigText(
    `apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: { name: logs, namespace: istio-system }
spec:
  accessLogging: [{ providers: [{ name: envoy }] }]`,
    "t.yaml",
  ).documents,
  {
    self: { namespace: "mesh", name: "waypoint" },
    rootNamespace: "istio-system",
    providers: DEFAULT_PROVIDERS,
  },
);

function upstream(status: number, body: string): Filter<TestState> {
  return async (ctx) => {
    await readAll(ctx.request.body, 1 << 10);
    ctx.state.endpoint = endpointOf("reviews");
    ctx.response = {
      head: { status, headers: new HeaderMap([["content-type", "text/plain"]]) },
      body: bytesBody(body),
    };
  };
}

function denied(policy: string): Filter<TestState> {
  return (ctx) => {
    ctx.state.policy = policy;
    return Promise.reject(new LocalReply(403, "RBAC: access denied", { flag: "RBAC" }));
  };
}

/** Sends one request through the metrics filter with `provider` as the `envoy` log. */
async function logLine(
  provider: Omit<AccessLogProvider, "name" | "path">,
  inner: Filter<TestState>,
  fields: [string, string][] = [],
  sni?: string,
): Promise<string> {
  const lines: string[] = [];
  const logs = new AccessLogs([{ name: "envoy", path: "/dev/stdout", ...provider }], {
    open: () => ({
      write: (b: Uint8Array) => {
        lines.push(new TextDecoder().decode(b));
        return Promise.resolve(b.length);
      },
    }),
  });
  const h = new Harness(undefined, { accessLogs: logs, timeOrigin: EPOCH });
  const reviews = connection({ service: "reviews", telemetry: LOG_ALL });
  const state = reviews();
  const peer = sni === undefined ? state.peer : { ...state.peer, sni };
  await h.send({ ...state, peer }, request("POST", "/reviews/1?x=1", fields), inner, {
    durationMs: 12.7,
    body: new TextEncoder().encode('{"a":1}'),
  });
  await logs.drain();
  assert.equal(lines.length, 1);
  return lines[0];
}

const CLIENT_FIELDS: [string, string][] = [
  ["user-agent", "curl/8.5.0"],
  ["x-forwarded-for", "10.2.0.1"],
  ["x-request-id", "4b0b1d9e-7c4a-4f6e-9a51-0d3f1b2c3d4e"],
  ["x-user", "alice"],
];

Deno.test("AccessLogs writes Istio's default text line with Envoy's values", async () => {
  const line = await logLine({}, upstream(200, "hello"), CLIENT_FIELDS);
  assert.equal(
    line,
    '[2024-05-01T12:00:00.000Z] "POST /reviews/1?x=1 HTTP/1.1" 200 - via_upstream - "-" 7 5 12 - ' +
      '"10.2.0.1" "curl/8.5.0" "4b0b1d9e-7c4a-4f6e-9a51-0d3f1b2c3d4e" ' +
      '"reviews.mesh.svc.cluster.local:9080" "10.1.0.1:9080" ' +
      "inbound-vip|9080|http|reviews.mesh.svc.cluster.local - 10.0.0.5:9080 10.2.0.1:41000 - default\n",
  );
});

Deno.test("AccessLogs writes Istio's default JSON with numbers, nulls and sorted keys", async () => {
  const line = await logLine(
    { labels: DEFAULT_JSON_LABELS },
    denied("ns[mesh]-policy[deny-admin]-rule[0]"),
  );
  assert.deepEqual(Object.keys(JSON.parse(line)), Object.keys(DEFAULT_JSON_LABELS).sort());
  assert.deepEqual(JSON.parse(line), {
    authority: "reviews.mesh.svc.cluster.local:9080",
    bytes_received: 0,
    bytes_sent: 19,
    connection_termination_details: null,
    downstream_local_address: "10.0.0.5:9080",
    downstream_remote_address: "10.2.0.1:41000",
    duration: 12,
    method: "POST",
    path: "/reviews/1?x=1",
    protocol: "HTTP/1.1",
    request_id: null,
    requested_server_name: null,
    response_code: 403,
    response_code_details: "rbac_access_denied_matched_policy[ns[mesh]-policy[deny-admin]-rule[0]]",
    response_flags: "-",
    route_name: "default",
    start_time: "2024-05-01T12:00:00.000Z",
    upstream_cluster: "inbound-vip|9080|http|reviews.mesh.svc.cluster.local",
    upstream_host: null,
    upstream_local_address: null,
    upstream_service_time: null,
    upstream_transport_failure_reason: null,
    user_agent: null,
    x_forwarded_for: null,
  });
  assert.ok(line.endsWith("}\n"));
});

Deno.test("AccessLogs fills a custom format's operators, the authorization outcome included", async () => {
  const format = {
    text: "%REQ(:METHOD)% %REQ(X-USER):3% %REQ(X-MISSING?X-USER)% %RESP(CONTENT-TYPE)% " +
      "%DOWNSTREAM_PEER_URI_SAN% %DYNAMIC_METADATA(istio.authorization:decision)% " +
      "%DYNAMIC_METADATA(istio.authorization:policy)% %GRPC_STATUS% %START_TIME%",
  };
  assert.equal(
    await logLine(format, denied("ns[mesh]-policy[deny-admin]-rule[0]"), CLIENT_FIELDS),
    "POST ali alice text/plain spiffe://cluster.local/ns/mesh/sa/bookinfo-productpage deny " +
      "ns[mesh]-policy[deny-admin]-rule[0] - 2024-05-01T12:00:00.000Z\n",
  );
  const allowed = (policy: string): Filter<TestState> => (ctx, next) => {
    ctx.state.policy = policy;
    return upstream(200, "ok")(ctx, next);
  };
  assert.match(
    await logLine({
      labels: {
        d: "%DYNAMIC_METADATA(istio.authorization:decision)%",
        p: "%DYNAMIC_METADATA(istio.authorization:policy)%",
      },
    }, allowed("ns[mesh]-policy[allow]-rule[1]")),
    /^\{"d":"allow","p":"ns\[mesh\]-policy\[allow\]-rule\[1\]"\}\n$/,
  );
});

Deno.test("compileFormat() refuses a command it cannot fill, naming the provider", () => {
  assert.throws(
    () => compileFormat({ name: "audit", path: "/dev/stdout", text: "%FILTER_STATE(x)%" }),
    /envoyFileAccessLog provider audit: %FILTER_STATE% is not a supported command operator/,
  );
  assert.throws(
    () => compileFormat({ name: "audit", path: "/dev/stdout", labels: { a: "%NOPE%" } }),
    /%NOPE% is not a supported/,
  );
});

Deno.test("AccessLogs drops and counts lines when the queue is full, never blocking", async () => {
  let release!: () => void;
  const stuck = new Promise<void>((r) => release = r);
  const written: string[] = [];
  const logs = new AccessLogs([{ name: "envoy", path: "/dev/stdout", text: "%RESPONSE_CODE%" }], {
    maxQueued: 2,
    open: () => ({
      write: async (b: Uint8Array) => {
        await stuck;
        written.push(new TextDecoder().decode(b));
        return b.length;
      },
    }),
  });
  const record = bareRecord(200);
  // Lines wait for the end of this event-loop turn: two fill the queue, three are dropped.
  for (let i = 0; i < 5; i++) logs.write("envoy", { ...record, code: 200 + i });
  assert.equal(logs.dropped, 3);
  // While the sink is stuck on those two, the queue takes two more and drops the rest.
  await new Promise((r) => setTimeout(r, 5));
  for (let i = 5; i < 8; i++) logs.write("envoy", { ...record, code: 200 + i });
  assert.equal(logs.dropped, 4);
  release();
  await logs.drain();
  assert.deepEqual(written.join("").split("\n").filter((l) => l), ["200", "201", "205", "206"]);
});

Deno.test("AccessLogs appends to a file path shared by two providers", async () => {
  const path = await Deno.makeTempFile({ suffix: ".log" });
  try {
    const logs = new AccessLogs([
      { name: "a", path, text: "a %RESPONSE_CODE%" },
      { name: "b", path, labels: { code: "%RESPONSE_CODE%" } },
    ]);
    const record = bareRecord(503, "UF");
    logs.write("a", record);
    logs.write("b", record);
    logs.write("unknown", record);
    await logs.drain();
    logs.close();
    assert.equal(await Deno.readTextFile(path), 'a 503\n{"code":503}\n');
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("AccessLogs.update() follows a MeshConfig reload: new formats and paths, old files closed", async () => {
  const files = new Map<string, string[]>();
  const closed: string[] = [];
  const logs = new AccessLogs([{ name: "a", path: "/one", text: "one %RESPONSE_CODE%" }], {
    open: (path) => {
      files.set(path, []);
      return {
        write: (b: Uint8Array) => {
          files.get(path)!.push(new TextDecoder().decode(b));
          return Promise.resolve(b.length);
        },
        close: () => closed.push(path),
      };
    },
  });
  const record = bareRecord(200);
  logs.write("a", record);
  await logs.update([
    { name: "a", path: "/two", text: "two %RESPONSE_CODE%" },
    { name: "b", path: "/two", labels: { code: "%RESPONSE_CODE%" } },
  ]);
  logs.write("a", record);
  logs.write("b", record);
  await logs.drain();
  assert.deepEqual(files.get("/one"), ["one 200\n"], "queued lines are written before the close");
  assert.deepEqual(closed, ["/one"]);
  assert.deepEqual(files.get("/two"), ['two 200\n{"code":200}\n']);
  assert.throws(
    () => logs.update([{ name: "c", path: "/two", text: "%NOPE%" }]),
    /envoyFileAccessLog provider c: %NOPE% is not a supported command operator/,
  );
  logs.write("b", record);
  await logs.drain();
  assert.equal(files.get("/two")!.join("").split("\n").length, 4, "a bad update changes nothing");
});

Deno.test("AccessLogs writes the SNI of the downstream HBONE connection as %REQUESTED_SERVER_NAME%", async () => {
  const format = { text: "%REQUESTED_SERVER_NAME% %UPSTREAM_LOCAL_ADDRESS%" };
  assert.equal(await logLine(format, upstream(200, "ok"), [], "waypoint.ns1"), "waypoint.ns1 -\n");
  assert.equal(await logLine(format, upstream(200, "ok")), "- -\n");
});
