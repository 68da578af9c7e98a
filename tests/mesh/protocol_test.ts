import assert from "node:assert/strict";
import {
  type PortProtocol,
  portProtocol,
  type ProtocolPort,
  serviceEntryProtocol,
} from "../../mesh/mod.ts";

const cases: [string, ProtocolPort, PortProtocol][] = [
  ["reads appProtocol http", { name: "web", appProtocol: "http", port: 80 }, "http"],
  [
    "maps appProtocol kubernetes.io/h2c to http2",
    { appProtocol: "kubernetes.io/h2c", port: 80 },
    "http2",
  ],
  [
    "maps appProtocol kubernetes.io/ws to http",
    { appProtocol: "kubernetes.io/ws", port: 80 },
    "http",
  ],
  [
    "maps appProtocol kubernetes.io/wss to tls",
    { appProtocol: "kubernetes.io/wss", port: 443 },
    "tls",
  ],
  ["maps appProtocol https to tls", { appProtocol: "https", port: 443 }, "tls"],
  ["reads appProtocol in any case", { appProtocol: "GRPC", port: 80 }, "grpc"],
  [
    "lets appProtocol win over the port name",
    { name: "http", appProtocol: "tcp", port: 80 },
    "tcp",
  ],
  ["does not fall back to the name for an unknown appProtocol", {
    name: "http",
    appProtocol: "foo",
    port: 80,
  }, "unknown"],
  ["reads the name http", { name: "http", port: 80 }, "http"],
  ["reads the prefix before the first dash", { name: "http-web", port: 80 }, "http"],
  ["reads the name prefix http2", { name: "http2-api", port: 80 }, "http2"],
  ["maps the name prefix https to tls", { name: "https-admin", port: 443 }, "tls"],
  ["reads the name prefix grpc", { name: "grpc-api", port: 80 }, "grpc"],
  ["maps the name prefix grpc-web to http", { name: "grpc-web-ui", port: 80 }, "http"],
  ["reads the name prefix tcp", { name: "tcp-echo", port: 9000 }, "tcp"],
  ["reads the name prefix tls", { name: "tls-passthrough", port: 443 }, "tls"],
  ["maps the name prefix mongo to tcp", { name: "mongo-db", port: 1 }, "tcp"],
  ["maps the name prefix mysql to tcp", { name: "mysql", port: 1 }, "tcp"],
  ["maps the name prefix redis to tcp", { name: "redis-cache", port: 1 }, "tcp"],
  ["reads port names in any case", { name: "HTTP-Web", port: 80 }, "http"],
  ["defaults SMTP port 25 to tcp", { name: "mail", port: 25 }, "tcp"],
  ["defaults DNS port 53 to tcp", { port: 53 }, "tcp"],
  ["defaults MySQL port 3306 to tcp", { name: "db", port: 3306 }, "tcp"],
  ["defaults MongoDB port 27017 to tcp", { port: 27017 }, "tcp"],
  ["keeps a known name on a well-known port", { name: "http", port: 25 }, "http"],
  [
    "gives an unknown name on another port the unknown protocol",
    { name: "web", port: 8080 },
    "unknown",
  ],
  ["gives an unnamed port the unknown protocol", { port: 8080 }, "unknown"],
  [
    "does not take a name that only starts like a protocol",
    { name: "httpbin", port: 80 },
    "unknown",
  ],
];

for (const [name, port, want] of cases) {
  Deno.test(`portProtocol() ${name}`, () => {
    assert.equal(portProtocol(port), want);
  });
}

const entryCases: [string, string | undefined, PortProtocol][] = [
  ["maps HTTP to http", "HTTP", "http"],
  ["maps HTTP2 to http2", "HTTP2", "http2"],
  ["maps GRPC to grpc", "GRPC", "grpc"],
  ["maps HTTPS to tls", "HTTPS", "tls"],
  ["maps TLS to tls", "TLS", "tls"],
  ["maps MONGO to tcp", "MONGO", "tcp"],
  ["maps TCP to tcp", "TCP", "tcp"],
  ["takes the whole field, not a prefix", "HTTP-web", "unknown"],
  ["gives an absent protocol the unknown protocol", undefined, "unknown"],
];

for (const [name, protocol, want] of entryCases) {
  Deno.test(`serviceEntryProtocol() ${name}`, () => {
    assert.equal(serviceEntryProtocol(protocol), want);
  });
}
