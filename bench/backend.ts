/**
 * The benchmark backend, one process standing for the application in a pod:
 * - a TCP echo (writes back what it reads, half-closes after the client does),
 * - a TCP sink (reads to end of stream, then answers the byte count as 8 bytes big-endian),
 * - an HTTP/1.1 server answering every GET with a 1 KiB body, and every POST or PUT by reading
 *   its body to the end, discarding it, and answering the byte count as decimal text (`Deno.serve`,
 *   Deno's native HTTP stack, so the backend is cheap next to the proxies).
 *
 * Usage: deno run -A bench/backend.ts --host IP --echo PORT --sink PORT --http PORT
 */
import { parseArgs } from "node:util";

const BUFFER = 256 << 10;
const BODY = new Uint8Array(1024).fill(0x78);

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let off = 0;
  while (off < bytes.length) off += await conn.write(bytes.subarray(off));
}

async function echo(conn: Deno.Conn): Promise<void> {
  const buf = new Uint8Array(BUFFER);
  for (;;) {
    const n = await conn.read(buf);
    if (n === null) break;
    await writeAll(conn, buf.subarray(0, n));
  }
  await conn.closeWrite();
}

async function sink(conn: Deno.Conn): Promise<void> {
  const buf = new Uint8Array(BUFFER);
  let total = 0;
  for (;;) {
    const n = await conn.read(buf);
    if (n === null) break;
    total += n;
  }
  const answer = new Uint8Array(8);
  new DataView(answer.buffer).setBigUint64(0, BigInt(total));
  await writeAll(conn, answer);
  await conn.closeWrite();
}

/** Reads an upload to its end and answers how many bytes it had. */
async function countBody(body: ReadableStream<Uint8Array>): Promise<Response> {
  let total = 0;
  for await (const chunk of body) total += chunk.length;
  return new Response(String(total), { headers: { "content-type": "text/plain" } });
}

async function serveTcp(
  hostname: string,
  port: number,
  handle: (conn: Deno.Conn) => Promise<void>,
): Promise<void> {
  for await (const conn of Deno.listen({ hostname, port })) {
    conn.setNoDelay(true);
    handle(conn).catch(() => {}).finally(() => {
      try {
        conn.close();
      } catch {
        // Already closed.
      }
    });
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      host: { type: "string", default: "127.0.9.1" },
      echo: { type: "string", default: "9000" },
      sink: { type: "string", default: "9001" },
      http: { type: "string", default: "8080" },
    },
  });
  const host = values.host;
  void serveTcp(host, Number(values.echo), echo);
  void serveTcp(host, Number(values.sink), sink);
  Deno.serve(
    { hostname: host, port: Number(values.http), onListen: () => {} },
    (req) =>
      req.body && (req.method === "POST" || req.method === "PUT")
        ? countBody(req.body)
        : new Response(BODY, { headers: { "content-type": "application/octet-stream" } }),
  );
  console.log(JSON.stringify({ event: "ready", host }));
  Deno.addSignalListener("SIGTERM", () => Deno.exit(0));
}
