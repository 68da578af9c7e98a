import assert from "node:assert/strict";
import { recordTcp } from "../../telemetry/mod.ts";
import { endpointOf, Harness, MESH, PRODUCTPAGE_ID, serviceDestination } from "./_helpers.ts";

const DB = {
  mesh: MESH,
  identity: PRODUCTPAGE_ID,
  client: "10.2.0.1:41001",
  destination: serviceDestination("db"),
};

function value(text: string, name: string, flag: string): number | undefined {
  const line = text.split("\n").find((l) =>
    l.startsWith(`${name}{`) && l.includes(`response_flags="${flag}"`)
  );
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(" ") + 1));
}

Deno.test("recordTcp() counts opened at once and closed with bytes once", async () => {
  const { metrics } = new Harness();
  const record = recordTcp(metrics, { ...DB, endpoint: endpointOf("db") });
  const open = await metrics.registry.renderText();
  assert.equal(value(open, "istio_tcp_connections_opened_total", "-"), 1);
  // The series of a connection exist from its open, at 0.
  assert.equal(value(open, "istio_tcp_connections_closed_total", "-"), 0);
  record.close({ sent: 10, received: 20 });
  record.close({ sent: 10, received: 20 });
  const closed = await metrics.registry.renderText();
  assert.equal(value(closed, "istio_tcp_connections_closed_total", "-"), 1);
  assert.equal(value(closed, "istio_tcp_sent_bytes_total", "-"), 10);
  assert.equal(value(closed, "istio_tcp_received_bytes_total", "-"), 20);
  assert.match(
    closed,
    /request_protocol="tcp",response_flags="-",connection_security_policy="mutual_tls"/,
  );
});

Deno.test("recordTcp() keeps the flag of the open for the whole connection", async () => {
  const { metrics } = new Harness();
  recordTcp(metrics, { ...DB, flag: "UH" }).close({ sent: 0, received: 0 });
  recordTcp(metrics, { ...DB, flag: "RBAC" }).close({ sent: 0, received: 0 });
  const text = await metrics.registry.renderText();
  assert.equal(value(text, "istio_tcp_connections_closed_total", "UH"), 1);
  // Not one of Envoy's flags: reported as none.
  assert.equal(value(text, "istio_tcp_connections_closed_total", "-"), 1);
});
