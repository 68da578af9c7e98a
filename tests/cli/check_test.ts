import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { devJwks } from "../../proxy/check.ts";
import { LIFECYCLE, Plugin } from "../wasm/_host.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const DEMO = ["--config", "demo/mesh.yaml", "--config", "demo/policy.yaml"];

/** Runs `main.ts check` from the repository root, with optional stdin. */
async function check(args: string[], stdin?: string) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "main.ts", "check", ...args],
    cwd: ROOT,
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  if (stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(stdin));
    await writer.close();
  }
  const out = await child.output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
}

const CASES = await Deno.readTextFile(`${ROOT}/demo/cases.yaml`);

Deno.test("check exits 0 when every demo case meets its expect", async () => {
  const r = await check([...DEMO, "--cases", "demo/cases.yaml"]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const lines = r.stdout.trim().split("\n");
  assert.match(lines.at(-1)!, /^9 passed, 0 failed$/);
  assert.ok(lines.slice(0, -1).every((l) => l.startsWith("PASS  ")), r.stdout);
  assert.match(
    r.stdout,
    /PASS {2}demo client reads echo +→ allow \(ns\[demo\]-policy\[allow-reads\]-rule\[0\]\) route demo\/echo-split rule\[1\] backend Service demo\/echo-v1:80/,
  );
});

Deno.test("check exits 1 and says what was expected when one expectation is flipped", async () => {
  const flipped = CASES.replace("expect: deny", "expect: allow");
  assert.notEqual(flipped, CASES);
  const r = await check(DEMO, flipped);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stdout, /FAIL {2}DELETE is denied even from demo +→ deny .* expected allow/);
  assert.match(r.stdout, /8 passed, 1 failed\n$/);
});

Deno.test("check --json prints one object per case", async () => {
  const r = await check([...DEMO, "--cases", "demo/cases.yaml", "--json"]);
  assert.equal(r.code, 0, r.stderr);
  const results = JSON.parse(r.stdout);
  assert.ok(Array.isArray(results));
  assert.equal(results.length, 9);
  for (const x of results) {
    assert.equal(typeof x.name, "string");
    assert.ok(["allow", "deny", "error"].includes(x.decision), x.decision);
    assert.equal(x.pass, true);
  }
  assert.deepEqual(results[0], {
    name: "demo client reads echo",
    destination: "Service demo/echo:80",
    protocol: "http",
    decision: "allow",
    policy: "ns[demo]-policy[allow-reads]-rule[0]",
    route: { kind: "HTTPRoute", namespace: "demo", name: "echo-split", rule: 1 },
    backend: "Service demo/echo-v1:80",
    backends: [
      { backend: "Service demo/echo-v1:80", weight: 50 },
      { backend: "Service demo/echo-v2:80", weight: 50 },
    ],
    expect: "allow",
    pass: true,
  });
  const expired = results.find((x: { name: string }) => x.name === "an expired token gets 401");
  assert.equal(expired.status, 401);
  assert.equal(expired.reason, "RequestAuthentication: Jwt is expired");
});

Deno.test("check runs the README's cases example from stdin", async () => {
  const readme = await Deno.readTextFile(`${ROOT}/README.md`);
  const section = readme.slice(readme.indexOf("## Testing policies offline: check"));
  const example = /```yaml\n([\s\S]*?)```/.exec(section)?.[1];
  assert.ok(example, "README has a yaml block under the check section");
  const r = await check(DEMO, example);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /2 passed, 0 failed\n$/);
});

Deno.test("check exits 2 for usage errors", async () => {
  for (
    const [args, message] of [
      [["--cases", "demo/cases.yaml"], /--config is required/],
      [[...DEMO, "--cases", "demo/nope.yaml"], /Cannot read cases file: demo\/nope.yaml/],
      [[...DEMO, "--bogus"], /bogus/],
    ] as const
  ) {
    const r = await check([...args]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, message);
  }
  const typo = await check(
    DEMO,
    "cases:\n  - { name: x, destination: echo.demo, expected: allow }\n",
  );
  assert.equal(typo.code, 2);
  assert.match(typo.stderr, /<stdin>: cases\[0\] \(x\): unknown field "expected"/);
});

Deno.test("check --print-dev-jwks prints the dev key's public JWKS", async () => {
  const r = await check(["--print-dev-jwks"]);
  assert.equal(r.code, 0);
  assert.deepEqual(JSON.parse(r.stdout), devJwks());
});

Deno.test("check runs attached WasmPlugins: a header they add steers the route, a module that cannot load denies", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const p = new Plugin();
    const pin = p.build(`${LIFECYCLE}
      (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
        (drop (call $add (i32.const 0) ${p.str("x-version")} ${p.str("v2")}))
        (i32.const 0))`);
    await Deno.writeFile(`${dir}/pin.wasm`, pin);
    const plugins = (name: string, url: string) =>
      `apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata: { name: ${name}, namespace: demo }
spec:
  targetRefs: [{ group: gateway.networking.k8s.io, kind: Gateway, name: waypoint }]
  url: ${url}
  pluginConfig: { any: thing }
`;
    await Deno.writeTextFile(`${dir}/pin.yaml`, plugins("pin-v2", `file://${dir}/pin.wasm`));
    const cases = `cases:
  - name: the plugin pins v2
    destination: echo.demo
    source: { namespace: demo }
    expect: allow
`;
    const pinned = await check([...DEMO, "--config", `${dir}/pin.yaml`, "--json"], cases);
    assert.equal(pinned.code, 0, pinned.stdout + pinned.stderr);
    assert.equal(JSON.parse(pinned.stdout)[0].backend, "Service demo/echo-v2:80");

    await Deno.writeTextFile(`${dir}/pin.yaml`, plugins("gone", `file://${dir}/missing.wasm`));
    const missing = await check([...DEMO, "--config", `${dir}/pin.yaml`, "--json"], cases);
    assert.equal(missing.code, 1, missing.stdout + missing.stderr);
    const [result] = JSON.parse(missing.stdout);
    assert.equal(result.decision, "deny");
    assert.equal(result.status, 403);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
