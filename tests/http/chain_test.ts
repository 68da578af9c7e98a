import assert from "node:assert/strict";
import { chainVariants, compose, type Filter, LocalReply, runChain } from "../../http/chain.ts";
import { HttpContext } from "../../http/context.ts";
import { bytesBody, HeaderMap, readAll } from "../../http/types.ts";

function context(body = "") {
  return new HttpContext({
    head: {
      method: "POST",
      path: "/",
      authority: "a",
      scheme: "http",
      version: "1.1",
      headers: new HeaderMap(),
    },
    body: bytesBody(body),
  }, {});
}

const ok: Filter<unknown> = (ctx) => {
  ctx.response = { head: { status: 200, headers: new HeaderMap() }, body: bytesBody("ok") };
  return Promise.resolve();
};

Deno.test("runChain() answers 413 when a filter buffers a body past its bound", async () => {
  const buffering: Filter<unknown> = async (ctx, next) => {
    await readAll(ctx.request.body, 4);
    await next();
  };
  const ctx = context("more than four bytes");
  await runChain(compose([buffering, ok]), ctx);
  assert.equal(ctx.response?.head.status, 413);
});

Deno.test("runChain() turns a LocalReply into the response with its flag", async () => {
  const deny: Filter<unknown> = () =>
    Promise.reject(new LocalReply(403, "RBAC: access denied", { flag: "RBAC" }));
  const ctx = context();
  await runChain(compose([deny, ok]), ctx);
  assert.equal(ctx.response?.head.status, 403);
  assert.equal(ctx.flag, "RBAC");
  assert.equal(
    new TextDecoder().decode(await readAll(ctx.response!.body, 100)),
    "RBAC: access denied",
  );
});

Deno.test("compose() refuses a second next() and the chain answers 500", async () => {
  const twice: Filter<unknown> = async (_ctx, next) => {
    await next();
    await next();
  };
  const errors: unknown[] = [];
  const ctx = context();
  await runChain(compose([twice, ok]), ctx, (e) => errors.push(e));
  assert.equal(ctx.response?.head.status, 500);
  assert.equal(errors.length, 1);
});

Deno.test("chainVariants() runs each request through the chain of its key, each composed once", async () => {
  const seen: string[] = [];
  const mark = (name: string): Filter<unknown> => (_ctx, next) => {
    seen.push(name);
    return next();
  };
  const built: number[] = [];
  const wanted = [0, 1, 1, 0];
  let i = 0;
  const chain = chainVariants<unknown>(() => wanted[i++], (key) => {
    built.push(key);
    return [mark("first"), ...(key & 1 ? [mark("optional")] : []), ok];
  });
  for (const expected of [["first"], ["first", "optional"], ["first", "optional"], ["first"]]) {
    seen.length = 0;
    const ctx = context();
    await runChain(chain, ctx);
    assert.deepEqual(seen, expected);
    assert.equal(ctx.response?.head.status, 200);
  }
  assert.deepEqual(built, [0, 1], "one composition per key");
});
