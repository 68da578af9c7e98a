/**
 * ModuleFetcher over file:// and http:// (a local server on 127.0.21.2): raw, gzip, tar and tar.gz
 * downloads, sha256 checks, bounds, retries and the caches.
 */
import assert from "node:assert/strict";
import { ModuleFetcher } from "../../wasm/fetch.ts";
import type { ModuleSource } from "../../wasm/spec.ts";
import { fetchError, source } from "./_sources.ts";
import { gzip, sha256, tar, testModule } from "./_archive.ts";

const HOST = "127.0.21.2";
const MODULE = testModule("fetch", 3000);
const MODULE_SHA = await sha256(MODULE);

interface Site {
  readonly base: string;
  readonly hits: Map<string, number>;
  close(): Promise<void>;
}

/** A file server with one path per packaging, counting hits per path. */
function site(routes: Record<string, () => Response | Promise<Response>>): Site {
  const hits = new Map<string, number>();
  const server = Deno.serve({ hostname: HOST, port: 0, onListen() {} }, async (request) => {
    const path = new URL(request.url).pathname;
    hits.set(path, (hits.get(path) ?? 0) + 1);
    const route = routes[path];
    return route ? await route() : new Response("no such file", { status: 404 });
  });
  return {
    base: `http://${HOST}:${server.addr.port}`,
    hits,
    close: () => server.shutdown(),
  };
}

const PACKAGINGS: Record<string, () => Promise<Uint8Array<ArrayBuffer>>> = {
  "/raw.wasm": () => Promise.resolve(MODULE),
  "/mod.wasm.gz": () => gzip(MODULE),
  "/mod.tar": () => Promise.resolve(tar({ "plugin.wasm": MODULE })),
  "/mod.tar.gz": () => gzip(tar({ "filter.wasm": MODULE })),
};

Deno.test("ModuleFetcher.load() unpacks raw, gzip, tar and tar.gz downloads", async () => {
  const bodies: Record<string, Uint8Array<ArrayBuffer>> = Object.fromEntries(
    await Promise.all(Object.entries(PACKAGINGS).map(async ([p, make]) => [p, await make()])),
  );
  const server = site(Object.fromEntries(
    Object.entries(bodies).map(([p, body]) => [p, () => new Response(body)]),
  ));
  try {
    const fetcher = new ModuleFetcher();
    for (const path of Object.keys(PACKAGINGS)) {
      const bytes = await fetcher.load(source(server.base + path, { sha256: MODULE_SHA }));
      assert.deepEqual(bytes, MODULE, path);
    }
  } finally {
    await server.close();
  }
});

Deno.test("ModuleFetcher.load() reads file:// paths and checks their sha256", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeFile(`${dir}/m.wasm`, MODULE);
    const fetcher = new ModuleFetcher();
    assert.deepEqual(await fetcher.load(source(`file://${dir}/m.wasm`)), MODULE);
    const wrong = await fetchError(
      fetcher.load(source(`file://${dir}/m.wasm`, { sha256: "0".repeat(64) })),
    );
    assert.equal(wrong.kind, "digest");
    assert.equal(
      wrong.message,
      `Cannot fetch Wasm module file://${dir}/m.wasm: module sha256 is ${MODULE_SHA}, but the WasmPlugin's sha256 is ${
        "0".repeat(64)
      }`,
    );
    const missing = await fetchError(fetcher.load(source(`file://${dir}/none.wasm`)));
    assert.equal(missing.kind, "url");
    assert.match(missing.message, /none\.wasm: cannot read/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ModuleFetcher.load() refuses wrong sha256, 404, non-Wasm and oversized bodies", async () => {
  const big = testModule("big", 200_000);
  const bomb = await gzip(testModule("bomb", 2_000_000));
  const server = site({
    "/raw.wasm": () => new Response(MODULE),
    "/text": () => new Response("<html>not a module</html>"),
    "/big.wasm": () => new Response(big),
    "/bomb.gz": () => new Response(bomb),
    "/forbidden": () => new Response("no", { status: 403 }),
  });
  try {
    const fetcher = new ModuleFetcher({ maxBytes: 100_000, retries: 0 });
    const cases: [string, Partial<ModuleSource>, string, RegExp][] = [
      ["/raw.wasm", { sha256: "f".repeat(64) }, "digest", /module sha256 is [0-9a-f]{64}, but/],
      ["/missing.wasm", {}, "status", /server answered 404/],
      ["/forbidden", {}, "status", /server answered 403/],
      ["/text", {}, "format", /not a Wasm module, gzip or tar holding one/],
      ["/big.wasm", {}, "size", /download is \d+ bytes, larger than the limit of 100000 bytes/],
      ["/bomb.gz", {}, "size", /inflated gzip is larger than the limit of 100000 bytes/],
    ];
    for (const [path, extra, kind, reason] of cases) {
      const error = await fetchError(fetcher.load(source(server.base + path, extra)));
      assert.equal(error.kind, kind, `${path}: ${error.message}`);
      assert.equal(error.url, server.base + path);
      assert.match(error.reason, reason);
    }
  } finally {
    await server.close();
  }
});

Deno.test("ModuleFetcher.load() retries a 503 and reports the last failure", async () => {
  let calls = 0;
  const server = site({
    "/flaky.wasm": () =>
      ++calls === 1 ? new Response("busy", { status: 503 }) : new Response(MODULE),
    "/down.wasm": () => new Response("down", { status: 502 }),
  });
  try {
    const fetcher = new ModuleFetcher({ retries: 1 });
    assert.deepEqual(await fetcher.load(source(`${server.base}/flaky.wasm`)), MODULE);
    assert.equal(server.hits.get("/flaky.wasm"), 2);
    const down = await fetchError(fetcher.load(source(`${server.base}/down.wasm`)));
    assert.equal(down.reason, "failed after 2 attempts: status 502");
  } finally {
    await server.close();
  }
});

Deno.test("ModuleFetcher.load() gives up after its timeout", async () => {
  const never = Promise.withResolvers<Response>();
  const server = site({ "/slow.wasm": () => never.promise });
  try {
    const fetcher = new ModuleFetcher({ timeoutMs: 200 });
    const error = await fetchError(fetcher.load(source(`${server.base}/slow.wasm`)));
    assert.equal(error.kind, "timeout");
    assert.equal(error.reason, "no module after 200 ms");
  } finally {
    never.resolve(new Response(MODULE));
    await server.close();
  }
});

Deno.test("ModuleFetcher.load() caches by pull policy and resource revision", async () => {
  const server = site({ "/m.wasm": () => new Response(MODULE) });
  const url = `${server.base}/m.wasm`;
  try {
    const fetcher = new ModuleFetcher();
    await fetcher.load(source(url));
    await fetcher.load(source(url, { revision: "2" }));
    assert.equal(server.hits.get("/m.wasm"), 1, "IfNotPresent keeps the module");
    await fetcher.load(source(url, { pullPolicy: "Always", revision: "2" }));
    assert.equal(server.hits.get("/m.wasm"), 2, "Always pulls again for a new revision");
    await fetcher.load(source(url, { pullPolicy: "Always", revision: "2" }));
    assert.equal(server.hits.get("/m.wasm"), 2, "Always keeps the module of the same revision");
    await Promise.all([1, 2, 3].map(() => fetcher.load(source(url, { revision: "3" }))));
    assert.equal(server.hits.get("/m.wasm"), 2);
    const concurrent = new ModuleFetcher();
    await Promise.all([1, 2, 3].map(() => concurrent.load(source(url))));
    assert.equal(server.hits.get("/m.wasm"), 3, "concurrent loads share one download");
  } finally {
    await server.close();
  }
});

Deno.test("ModuleFetcher.load() keeps pinned modules on disk across fetchers", async () => {
  const dir = await Deno.makeTempDir();
  const server = site({ "/m.wasm": () => new Response(MODULE) });
  const pinned = source(`${server.base}/m.wasm`, { sha256: MODULE_SHA, pullPolicy: "Always" });
  try {
    await new ModuleFetcher({ cacheDir: dir }).load(pinned);
    assert.deepEqual(await Deno.readFile(`${dir}/${MODULE_SHA}.wasm`), MODULE);
    assert.deepEqual(await new ModuleFetcher({ cacheDir: dir }).load(pinned), MODULE);
    assert.equal(server.hits.get("/m.wasm"), 1);
    await Deno.writeFile(`${dir}/${MODULE_SHA}.wasm`, testModule("tampered"));
    assert.deepEqual(await new ModuleFetcher({ cacheDir: dir }).load(pinned), MODULE);
    assert.equal(server.hits.get("/m.wasm"), 2, "a cache file with another digest is fetched anew");
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ModuleFetcher.load() refuses a scheme it does not know", async () => {
  const error = await fetchError(new ModuleFetcher().load(source("ftp://files.example/m.wasm")));
  assert.equal(
    error.message,
    "Cannot fetch Wasm module ftp://files.example/m.wasm: unsupported scheme ftp",
  );
});
