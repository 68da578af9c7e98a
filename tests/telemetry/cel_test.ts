import assert from "node:assert/strict";
import { CelError, compileCel } from "../../telemetry/mod.ts";

/** Attributes of one finished request, as the access-log filter sees them. */
const HEADERS = new Map([["user-agent", "curl/8.5"], ["x-user", "alice"]]);
const ATTRS = {
  attribute(name: string): unknown {
    return ({
      "request.path": "/v1beta3/items?id=1",
      "request.url_path": "/v1beta3/items",
      "request.method": "GET",
      "request.host": "reviews.mesh.svc.cluster.local",
      "request.headers": HEADERS,
      "request.useragent": "curl/8.5",
      "response.code": 503,
      "response.flags": "UF",
      "source.principal": "spiffe://cluster.local/ns/mesh/sa/productpage",
      "destination.port": 9080,
      "connection.mtls": true,
    } as Record<string, unknown>)[name];
  },
};

Deno.test("compileCel() evaluates the expressions Telemetry resources use", () => {
  const cases: [string, unknown][] = [
    ["response.code >= 400", true],
    ["response.code == 200", false],
    ["connection.mtls && request.url_path.contains('v1beta3')", true],
    ["!has(request.useragent) || !(request.useragent.startsWith('Amazon-Route53'))", true],
    ["request.headers['x-user'] == 'alice'", true],
    ["request.headers['X-User']", "alice"],
    ["'x-user' in request.headers", true],
    ["'x-missing' in request.headers", false],
    ["has(request.headers.x_user)", false],
    ["has(request.referer)", false],
    ["request.method in ['GET', 'HEAD']", true],
    ["string(destination.port)", "9080"],
    ["int('42') + 1", 43],
    ["size(request.url_path)", 14],
    ["request.url_path.endsWith('/items')", true],
    ["request.path.matches('^/v1beta[0-9]+/')", true],
    ["response.flags != '-' ? 'failed' : 'ok'", "failed"],
    ["'test'", "test"],
    ['"a\\"b"', 'a"b'],
    ["request.host + ':' + string(destination.port)", "reviews.mesh.svc.cluster.local:9080"],
    ["null == null", true],
    ["1 < 2 && 'a' < 'b' && 3 >= 3 && 4 <= 5 && 2 > 1", true],
  ];
  for (const [source, expected] of cases) {
    assert.deepEqual(compileCel(source).evaluate(ATTRS), expected, source);
  }
});

Deno.test("compileCel() makes failed evaluations unknown, never errors", () => {
  const cases: [string, boolean, string][] = [
    ["request.referer == 'x'", false, "unknown"],
    ["request.headers['absent']", false, "unknown"],
    ["response.code == '503'", false, "unknown"],
    ["request.path.size() / 0", false, "unknown"],
    // CEL's commutative && and ||: a definite side wins over an error on the other.
    ["request.referer == 'x' || response.code == 503", true, "true"],
    ["request.referer == 'x' && response.code == 200", false, "false"],
  ];
  for (const [source, test, text] of cases) {
    const p = compileCel(source);
    assert.equal(p.test(ATTRS), test, source);
    assert.equal(p.text(ATTRS), text, source);
  }
});

Deno.test("compileCel() folds expressions without attributes into constants", () => {
  assert.equal(compileCel("'test'").constant, "test");
  assert.equal(compileCel("1 + 2").constant, 3);
  assert.equal(compileCel("request.host").constant, undefined);
});

Deno.test("compileCel() refuses what the waypoint cannot evaluate, naming it", () => {
  const cases: [string, RegExp][] = [
    ["filter_state['wasm.x']", /filter_state is not available/],
    ["metadata.filter_metadata", /metadata is not available/],
    ["request.nonsense == 1", /Unknown attribute request\.nonsense/],
    ["lookup(request.host)", /Unknown function lookup\(\)/],
    ["request.path.lowerAscii()", /Unknown function lowerAscii\(\)/],
    ["foo == 1", /Unknown identifier foo/],
    ["request == 1", /request is not a value/],
    ["request.path.matches(request.host)", /literal pattern/],
    ["request.path.matches('(')", /Invalid matches\(\) pattern/],
    ["response.code >= ", /Unexpected "end of expression"/],
    ["'open", /Unterminated string/],
    ["response.code = 1", /Unexpected character "="/],
    ["(".repeat(100) + "1" + ")".repeat(100), /nested too deeply/],
  ];
  for (const [source, message] of cases) {
    assert.throws(
      () => compileCel(source),
      (e) => e instanceof CelError && message.test(e.message),
      source,
    );
  }
});
