/**
 * Issue 8's scenario 6, the industrial peer: HAProxy from Debian as an L7 proxy with TLS on both
 * legs and a route on the Host header, measured in the same run as the waypoint:
 *
 *   load tool ──TLS──▶ HAProxy 127.0.9.4:8443 ──mTLS──▶ terminator 127.0.9.3:8443 ──TCP──▶ backend
 *   load tool ──TLS─────────────────────────────────▶ terminator 127.0.9.3:8444 ──TCP──▶ backend
 *
 * The first line is the `haproxy` path: HAProxy terminates TLS, parses HTTP/1.1, picks its
 * backend by the Host header (any other host gets 404), and opens TLS to a terminator that stands
 * where the destination ztunnel stands on the waypoint path; HAProxy presents a certificate of the
 * run's dev CA, which the terminator requires (`verify required`), as HAProxy requires the
 * terminator's. The second line is `haproxy-direct`, the same without HAProxy: "added" for
 * HAProxy is the first minus the second, as the waypoint's is waypoint minus direct.
 *
 * Both are Debian's `haproxy` binary in the foreground (`-f <config> -db`, no master process) with
 * configs written to the run's temporary folder (never Debian's /etc/haproxy/haproxy.cfg, which
 * daemonizes, chroots and logs to /dev/log), bound only on loopback, and stopped with the rest.
 * Certificates are `tunnel/dev_ca.ts` leaves (ECDSA P-256, SPIFFE URI SANs): HAProxy checks the
 * chain against the root, not the URI, and no host name (the leaves have none).
 */
import { issueCert } from "../tunnel/dev_ca.ts";
import { assertFree, hasProgram, output, Proc, waitListening } from "./_procs.ts";
import { NET, spiffe, type Workspace } from "./_stack.ts";

/** Loopback addresses of the peer. */
export const PEER_NET = {
  haproxy: "127.0.9.4",
  terminator: "127.0.9.3",
  /** HTTPS of HAProxy, and the terminator's mTLS port (HAProxy's upstream). */
  port: 8443,
  /** The terminator's port for the direct path: TLS without a client certificate. */
  directPort: 8444,
  /** The Host header HAProxy routes on. */
  host: "backend.bench.svc.cluster.local",
} as const;

/** HAProxy's threads: Istio measures its waypoint with 2 worker threads. */
export const HAPROXY_THREADS = 2;

/** The running peer. */
export interface Peer {
  readonly haproxy: Proc;
  readonly terminator: Proc;
  /** `haproxy -v`'s first line. */
  readonly version: string;
  /** What the checks before the load saw, for the report. */
  readonly checks: string;
  /** Request header lines every load through the peer sends. */
  readonly headers: readonly string[];
  /** HTTPS URL of HAProxy and of the terminator's direct port. */
  readonly url: string;
  readonly directUrl: string;
}

/** HAProxy as the L7 proxy: TLS in, HTTP/1.1, route on Host, TLS with a client cert out. */
function haproxyConfig(dir: string): string {
  const host = PEER_NET.host.replaceAll(".", "\\.");
  const upstream = `${PEER_NET.terminator}:${PEER_NET.port}`;
  return `# Written by bench/_peer.ts for one bench run; run in the foreground with -db.
global
    nbthread ${HAPROXY_THREADS}
    maxconn 4096
    # Debian's default TLS options (/etc/haproxy/haproxy.cfg), on both legs.
    ssl-default-bind-options ssl-min-ver TLSv1.2 no-tls-tickets
    ssl-default-server-options ssl-min-ver TLSv1.2 no-tls-tickets

defaults
    mode http
    option http-keep-alive
    option forwardfor
    timeout connect 5s
    timeout client 60s
    timeout server 60s

frontend mesh
    bind ${PEER_NET.haproxy}:${PEER_NET.port} ssl crt ${dir}/haproxy.pem alpn http/1.1
    use_backend bench_backend if { req.hdr(host) -m reg -i ^${host}(:[0-9]+)?$ }
    default_backend no_route

backend bench_backend
    # Any idle upstream connection may carry any request, as the waypoint's pooled HBONE does.
    http-reuse always
    server backend-0 ${upstream} ssl verify required ca-file ${dir}/root-cert.pem crt ${dir}/haproxy.pem

backend no_route
    http-request return status 404 content-type text/plain string "no route"
`;
}

/**
 * The terminator, where the destination ztunnel stands: TLS in (a client certificate required on
 * HAProxy's port, none on the direct one), plain TCP to the backend.
 */
function terminatorConfig(dir: string): string {
  const listen = (port: number) => `${PEER_NET.terminator}:${port} ssl crt ${dir}/terminator.pem`;
  return `# Written by bench/_peer.ts for one bench run; run in the foreground with -db.
global
    nbthread 1
    maxconn 4096
    ssl-default-bind-options ssl-min-ver TLSv1.2 no-tls-tickets

defaults
    mode tcp
    timeout connect 5s
    timeout client 60s
    timeout server 60s

frontend tls
    bind ${listen(PEER_NET.port)} verify required ca-file ${dir}/root-cert.pem
    bind ${listen(PEER_NET.directPort)}
    default_backend app

backend app
    server app ${NET.pod}:${NET.httpPort}
`;
}

/**
 * Whether the peer can run here.
 *
 * @returns Undefined when it can, else why not (for the report)
 */
export async function peerMissing(): Promise<string | undefined> {
  if (await hasProgram("haproxy")) return undefined;
  return "HAProxy is not installed, so the peer rows (scenario 6) were skipped: apt-get install " +
    "haproxy (or run `bash bench/setup.sh` as root)";
}

/**
 * Writes certificates and configs into `<ws.dir>/peer`, starts the terminator and HAProxy, and
 * checks them with curl before any load.
 *
 * @throws Error when a config is invalid, an address is taken, or a check fails
 */
export async function startPeer(ws: Workspace): Promise<Peer> {
  const dir = `${ws.dir}/peer`;
  await Deno.mkdir(dir, { recursive: true });
  for (const sa of ["haproxy", "terminator"]) {
    await issueCert(`${ws.dir}/ca`, spiffe(sa), `${dir}/${sa}`);
    // HAProxy's `crt` takes one PEM with the chain and the key.
    const [chain, key] = await Promise.all(
      ["cert-chain.pem", "key.pem"].map((f) => Deno.readTextFile(`${dir}/${sa}/${f}`)),
    );
    await Deno.writeTextFile(`${dir}/${sa}.pem`, `${chain.trimEnd()}\n${key}`, { mode: 0o600 });
  }
  await Deno.copyFile(`${ws.dir}/ca/root-cert.pem`, `${dir}/root-cert.pem`);
  const configs = { haproxy: haproxyConfig(dir), terminator: terminatorConfig(dir) };
  for (const [name, text] of Object.entries(configs)) {
    const file = `${dir}/${name}.cfg`;
    await Deno.writeTextFile(file, text);
    const r = await new Deno.Command("haproxy", { args: ["-c", "-q", "-f", file] }).output();
    if (!r.success) {
      throw new Error(
        `haproxy -c refused the ${name} config ${file}:\n` +
          new TextDecoder().decode(r.stderr) + new TextDecoder().decode(r.stdout),
      );
    }
  }
  for (const port of [PEER_NET.port, PEER_NET.directPort]) {
    await assertFree(PEER_NET.terminator, port);
  }
  await assertFree(PEER_NET.haproxy, PEER_NET.port);
  const start = (name: string) => new Proc(name, "haproxy", ["-f", `${dir}/${name}.cfg`, "-db"]);
  const terminator = start("terminator");
  const haproxy = start("haproxy");
  try {
    await Promise.all([
      waitListening(terminator, PEER_NET.terminator, PEER_NET.directPort),
      waitListening(haproxy, PEER_NET.haproxy, PEER_NET.port),
    ]);
    const url = `https://${PEER_NET.haproxy}:${PEER_NET.port}/`;
    const directUrl = `https://${PEER_NET.terminator}:${PEER_NET.directPort}/`;
    const checks = await checkPeer(url, directUrl, dir);
    const version = (await output("haproxy", ["-v"]))?.split("\n")[0] ?? "haproxy";
    return {
      haproxy,
      terminator,
      version,
      checks,
      // "Host" as wrk spells it, so that it replaces wrk's own rather than adding a second one.
      headers: [`Host: ${PEER_NET.host}`],
      url,
      directUrl,
    };
  } catch (e) {
    await stopPeer({ haproxy, terminator });
    throw e;
  }
}

/** Stops HAProxy and the terminator. */
export async function stopPeer(peer: Pick<Peer, "haproxy" | "terminator">): Promise<void> {
  await Promise.all([peer.haproxy.stop(), peer.terminator.stop()]);
}

/**
 * The peer answers as designed: 200 with 1 KiB through HAProxy for the routed host, 404 for
 * another host, 200 on the direct port, and the terminator's mTLS port refuses a client without
 * a certificate and accepts one with HAProxy's.
 *
 * @returns One line for the report
 * @throws Error naming the first check that failed
 */
async function checkPeer(url: string, directUrl: string, dir: string): Promise<string> {
  const mtlsUrl = `https://${PEER_NET.terminator}:${PEER_NET.port}/`;
  const cases = [
    {
      what: `HAProxy, host ${PEER_NET.host}`,
      url,
      args: ["-H", `host: ${PEER_NET.host}`],
      want: 200,
    },
    { what: "HAProxy, host elsewhere", url, args: ["-H", "host: elsewhere"], want: 404 },
    { what: "terminator, direct port", url: directUrl, args: [], want: 200 },
    { what: "terminator, mTLS port, no client cert", url: mtlsUrl, args: [], want: 0 },
    {
      what: "terminator, mTLS port, HAProxy's cert",
      url: mtlsUrl,
      args: ["--cert", `${dir}/haproxy.pem`],
      want: 200,
    },
  ];
  const seen: string[] = [];
  for (const c of cases) {
    const args = ["-sk", "--max-time", "10", "-o", "/dev/null", "-w", "%{http_code}", ...c.args];
    const r = await new Deno.Command("curl", { args: [...args, c.url] }).output();
    const status = Number(new TextDecoder().decode(r.stdout).trim() || 0);
    if (status !== c.want) {
      throw new Error(
        `Peer check "${c.what}" (${c.url}): got ${status || "no answer"}, ` +
          `expected ${c.want || "a refused handshake"}: ${new TextDecoder().decode(r.stderr)}`,
      );
    }
    seen.push(`${c.what} → ${status || "handshake refused"}`);
  }
  return seen.join(", ");
}
