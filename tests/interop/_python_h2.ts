/**
 * Drives the python3-h2 peers beside this folder's tests: `h2_client.py` run to completion and
 * `h2_server.py` kept running, with their JSON output parsed into typed records.
 */
/** The Debian interpreter, which has python3-h2; a pyenv `python3` on PATH may not. */
export const PYTHON = "/usr/bin/python3";
const HERE = decodeURIComponent(new URL(".", import.meta.url).pathname);

/** Why python3-h2 cannot run here, or undefined when it can. */
export function whyNoPythonH2(): string | undefined {
  try {
    const probe: Deno.CommandOptions = {
      args: ["-c", "import h2"],
      stdout: "null",
      stderr: "piped",
    };
    const out = new Deno.Command(PYTHON, probe).outputSync();
    if (out.success) return undefined;
    return `${PYTHON} cannot import h2 (apt-get install python3-h2, see tests/setup.sh): ${
      new TextDecoder().decode(out.stderr).trim().split("\n").pop()
    }`;
  } catch (e) {
    return `${PYTHON} cannot run: ${(e as Error).message}`;
  }
}

/** What `h2_client.py` prints. */
export interface ClientReport {
  readonly statuses: (number | null)[];
  readonly ok_streams: number;
  readonly bytes: number;
  readonly problems?: string[];
  readonly error?: string;
  readonly server_settings?: Record<string, number>;
  readonly response_headers?: [string, string][] | null;
  readonly tls?: { version: string; cipher: string; alpn: string };
}

/** One CONNECT as `h2_server.py` recorded it. */
export interface ConnectRecord {
  readonly authority: string;
  readonly method: string;
  readonly headers: [string, string][];
  readonly peer_identity: string;
  readonly connection: number;
  readonly stream_id: number;
  readonly peer_settings: Record<string, number>;
  readonly tls: { version: string; cipher: string; alpn: string; tls13_suites_offered: string[] };
  readonly violations: string[];
}

/** How one TCP connection to `h2_server.py` went, written when it closed. */
export interface ConnectionSummary {
  readonly closed_connection: number;
  readonly streams: number;
  readonly resets: [number, number][];
  readonly goaway: { error_code: number; last_stream_id: number } | null;
  readonly connection_window_increment: number;
  readonly pings: number;
  readonly peer_settings: Record<string, number>;
}

/** Options of {@link runClient}. */
export interface ClientOptions {
  readonly connect: string;
  readonly authority: string;
  /** Certificate folder of the client's identity. */
  readonly certs: string;
  readonly expectIdentity: string;
  readonly streams: number;
  readonly payloadBytes: number;
  /** @default 200 */
  readonly expectStatus?: number;
}

/** Runs `h2_client.py` to completion; returns its exit code, JSON report and stderr. */
export async function runClient(
  o: ClientOptions,
): Promise<{ code: number; report: ClientReport; stderr: string }> {
  const args = [
    `${HERE}h2_client.py`,
    ...["--connect", o.connect, "--authority", o.authority],
    ...["--cert-chain", `${o.certs}/cert-chain.pem`, "--key", `${o.certs}/key.pem`],
    ...["--ca", `${o.certs}/root-cert.pem`, "--expect-identity", o.expectIdentity],
    ...["--streams", String(o.streams), "--payload-bytes", String(o.payloadBytes)],
    ...["--expect-status", String(o.expectStatus ?? 200)],
  ];
  const out = await new Deno.Command(PYTHON, { args, stdout: "piped", stderr: "piped" }).output();
  const stdout = new TextDecoder().decode(out.stdout).trim();
  const stderr = new TextDecoder().decode(out.stderr);
  const last = stdout.split("\n").pop() ?? "";
  let report: ClientReport;
  try {
    report = JSON.parse(last);
  } catch {
    throw new Error(`h2_client.py printed no report (exit ${out.code}): ${stdout}\n${stderr}`);
  }
  return { code: out.code, report, stderr };
}

/** A running `h2_server.py`. */
export interface PythonServer extends AsyncDisposable {
  readonly port: number;
  /** CONNECTs recorded so far. */
  readonly records: ConnectRecord[];
  /** Connections that ended so far. */
  readonly closed: ConnectionSummary[];
  /** Resolves once `n` CONNECTs are recorded, or rejects after `ms`. */
  recorded(n: number, ms?: number): Promise<ConnectRecord[]>;
  /** Resolves once `n` connections have ended, or rejects after `ms`. */
  closedCount(n: number, ms?: number): Promise<ConnectionSummary[]>;
  stderr(): string;
}

/** Starts `h2_server.py` on `host` (port 0) with the certificates of a folder. */
export async function startPythonServer(host: string, certs: string): Promise<PythonServer> {
  const records: ConnectRecord[] = [];
  const closed: ConnectionSummary[] = [];
  const script = await startPythonScript(`${HERE}h2_server.py`, [
    ...["--listen", `${host}:0`, "--cert-chain", `${certs}/cert-chain.pem`],
    ...["--key", `${certs}/key.pem`, "--ca", `${certs}/root-cert.pem`],
  ], (line) => {
    if (line.includes('"closed_connection"')) closed.push(JSON.parse(line));
    else records.push(JSON.parse(line));
  });
  return {
    port: script.port,
    records,
    stderr: script.stderr,
    closed,
    recorded: async (n, ms = 5_000) => {
      await until(() => records.length >= n, ms, () => `${records.length} CONNECTs recorded`);
      return records;
    },
    closedCount: async (n, ms = 5_000) => {
      await until(() => closed.length >= n, ms, () => `${closed.length} connections closed`);
      return closed;
    },
    [Symbol.asyncDispose]: script[Symbol.asyncDispose],
  };
}

/** A python server script kept running: the port it printed, and its stderr so far. */
export interface PythonScript extends AsyncDisposable {
  readonly port: number;
  stderr(): string;
}

/**
 * Runs a python3-h2 server script that prints `READY <port>` once listening, handing every
 * other non-empty stdout line to `onLine`. Disposing stops it (SIGTERM).
 *
 * @throws Error when the script exits before READY
 */
export async function startPythonScript(
  script: string,
  args: string[],
  onLine: (line: string) => void,
): Promise<PythonScript> {
  const child = new Deno.Command(PYTHON, {
    args: [script, ...args],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let errText = "";
  const errDone = (async () => {
    for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) errText += chunk;
  })();
  const { promise: ready, resolve, reject } = Promise.withResolvers<number>();
  const outDone = (async () => {
    for await (const line of lines(child.stdout)) {
      const m = /^READY (\d+)$/.exec(line);
      if (m) resolve(Number(m[1]));
      else if (line) onLine(line);
    }
    reject(new Error(`${script} exited before READY: ${errText}`));
  })();
  const stop = async () => {
    try {
      child.kill("SIGTERM");
    } catch {
      // Already exited.
    }
    await child.status;
    await Promise.all([outDone, errDone]);
  };
  let port: number;
  try {
    port = await ready;
  } catch (e) {
    await stop();
    throw e;
  }
  return { port, stderr: () => errText, [Symbol.asyncDispose]: stop };
}

/**
 * Runs a python3-h2 script to completion and parses the last line it printed as JSON.
 *
 * @throws Error with its stdout and stderr when that line is not JSON
 */
export async function runPythonJson<T>(script: string, args: string[]): Promise<T> {
  const out = await new Deno.Command(PYTHON, {
    args: [script, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout).trim();
  try {
    return JSON.parse(stdout.split("\n").pop() ?? "");
  } catch {
    throw new Error(`${script}: ${stdout}\n${new TextDecoder().decode(out.stderr)}`);
  }
}

/** Polls `done` every 10 ms; throws with `state()` after `ms`. */
async function until(done: () => boolean, ms: number, state: () => string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`Gave up after ${ms} ms: ${state()}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Splits a byte stream into text lines. */
async function* lines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  let buffered = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    buffered += chunk;
    for (let i = buffered.indexOf("\n"); i >= 0; i = buffered.indexOf("\n")) {
      yield buffered.slice(0, i);
      buffered = buffered.slice(i + 1);
    }
  }
  if (buffered) yield buffered;
}
