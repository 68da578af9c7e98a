/**
 * Envoy-style access logs, as Istio's `envoyFileAccessLog` providers configure them: Istio's
 * default text line (`EnvoyTextLogFormat`), its default JSON object, or a custom
 * `logFormat.text` / `logFormat.labels` with the `%COMMAND%` operators we can fill; written to
 * `/dev/stdout` or a file through a bounded queue.
 *
 * Invariants:
 * - A format is compiled once (when MeshConfig is read); an unknown `%COMMAND%` is an error
 *   naming the provider and the command.
 * - Writing never blocks and never throws: lines wait in a bounded queue, and a line that finds
 *   it full is dropped and counted ({@link AccessLogs.dropped}), as `log/` does.
 * - Missing values are `-` in text and `null` in JSON; numeric operators stay numbers in JSON.
 * - The authorization outcome: a deny's `%RESPONSE_CODE_DETAILS%` is Envoy's
 *   `rbac_access_denied_matched_policy[<policy>|none]`; any request's deciding policy and the
 *   decision are `%DYNAMIC_METADATA(istio.authorization:policy)%` and `…:decision)%`.
 */
import { setImmediate } from "node:timers";
import type { Sink } from "../log/mod.ts";

/** What one finished request or connection offers the formatter. */
export interface LogRecord {
  /** Unix epoch ms of the request head (or the connection). */
  readonly startMs: number;
  /** `HTTP/1.1`, `HTTP/2`; undefined for TCP. */
  readonly protocol?: string;
  readonly code: number;
  /** Envoy response flags, `-` for none. */
  readonly flags: string;
  readonly details?: string;
  readonly bytesReceived: number;
  readonly bytesSent: number;
  readonly durationMs: number;
  readonly upstreamHost?: string;
  readonly upstreamCluster?: string;
  readonly upstreamFailure?: string;
  readonly downstreamLocal?: string;
  readonly downstreamRemote?: string;
  readonly peerSan?: string;
  /** The SNI of the downstream (HBONE) TLS connection. */
  readonly requestedServerName?: string;
  /** Why the proxy closed the connection (TCP: the RBAC denial). */
  readonly terminationDetails?: string;
  readonly routeName?: string;
  readonly grpcStatus?: string;
  readonly attempts?: number;
  /** The policy that decided. */
  readonly policy?: string;
  /** `allow` or `deny`, when a policy decided. */
  readonly decision?: string;
  /** Request header by lower-case name (`:method`, `:path`, `:authority` included). */
  requestHeader(name: string): string | undefined;
  /** Response header by lower-case name. */
  responseHeader(name: string): string | undefined;
  /** Response trailer by lower-case name. */
  responseTrailer(name: string): string | undefined;
}

/** An `envoyFileAccessLog` provider as MeshConfig gives it. */
export interface AccessLogProvider {
  readonly name: string;
  /** `/dev/stdout` or a file path. */
  readonly path: string;
  /** `logFormat.text`; Istio's default line when neither text nor labels are set. */
  readonly text?: string;
  /** `logFormat.labels`: a JSON object of format strings. */
  readonly labels?: Readonly<Record<string, string>>;
  readonly omitEmptyValues?: boolean;
}

/** Istio's `EnvoyTextLogFormat` (`telemetry_logging.go`). */
export const DEFAULT_TEXT_FORMAT =
  '[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% ' +
  '%PROTOCOL%" %RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% ' +
  '%CONNECTION_TERMINATION_DETAILS% "%UPSTREAM_TRANSPORT_FAILURE_REASON%" %BYTES_RECEIVED% ' +
  '%BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" ' +
  '"%REQ(USER-AGENT)%" "%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%" ' +
  "%UPSTREAM_CLUSTER_RAW% %UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% " +
  "%DOWNSTREAM_REMOTE_ADDRESS% %REQUESTED_SERVER_NAME% %ROUTE_NAME%\n";

/** Istio's JSON access log (`EnvoyJSONLogFormatIstio`): the same fields as snake_case keys. */
export const DEFAULT_JSON_LABELS: Readonly<Record<string, string>> = Object.freeze({
  authority: "%REQ(:AUTHORITY)%",
  bytes_received: "%BYTES_RECEIVED%",
  bytes_sent: "%BYTES_SENT%",
  connection_termination_details: "%CONNECTION_TERMINATION_DETAILS%",
  downstream_local_address: "%DOWNSTREAM_LOCAL_ADDRESS%",
  downstream_remote_address: "%DOWNSTREAM_REMOTE_ADDRESS%",
  duration: "%DURATION%",
  method: "%REQ(:METHOD)%",
  path: "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%",
  protocol: "%PROTOCOL%",
  request_id: "%REQ(X-REQUEST-ID)%",
  requested_server_name: "%REQUESTED_SERVER_NAME%",
  response_code: "%RESPONSE_CODE%",
  response_code_details: "%RESPONSE_CODE_DETAILS%",
  response_flags: "%RESPONSE_FLAGS%",
  route_name: "%ROUTE_NAME%",
  start_time: "%START_TIME%",
  upstream_cluster: "%UPSTREAM_CLUSTER_RAW%",
  upstream_host: "%UPSTREAM_HOST%",
  upstream_local_address: "%UPSTREAM_LOCAL_ADDRESS%",
  upstream_service_time: "%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%",
  upstream_transport_failure_reason: "%UPSTREAM_TRANSPORT_FAILURE_REASON%",
  user_agent: "%REQ(USER-AGENT)%",
  x_forwarded_for: "%REQ(X-FORWARDED-FOR)%",
});

type Value = string | number | undefined;
type Operator = (r: LogRecord) => Value;

const OPERATORS: Readonly<Record<string, Operator>> = {
  START_TIME: (r) => new Date(r.startMs).toISOString(),
  PROTOCOL: (r) => r.protocol,
  RESPONSE_CODE: (r) => r.code,
  RESPONSE_FLAGS: (r) => r.flags,
  RESPONSE_CODE_DETAILS: (r) => r.details,
  CONNECTION_TERMINATION_DETAILS: (r) => r.terminationDetails,
  UPSTREAM_TRANSPORT_FAILURE_REASON: (r) => r.upstreamFailure,
  BYTES_RECEIVED: (r) => r.bytesReceived,
  BYTES_SENT: (r) => r.bytesSent,
  DURATION: (r) => Math.floor(r.durationMs),
  UPSTREAM_HOST: (r) => r.upstreamHost,
  UPSTREAM_CLUSTER: (r) => r.upstreamCluster,
  UPSTREAM_CLUSTER_RAW: (r) => r.upstreamCluster,
  // Envoy's waypoint reaches its upstream through the internal `connect_originate` listener, so
  // its value is no socket address; ours would be the pooled tunnel's TLS socket, which the HTTP
  // pool does not hand to the request.
  UPSTREAM_LOCAL_ADDRESS: () => undefined,
  DOWNSTREAM_LOCAL_ADDRESS: (r) => r.downstreamLocal,
  DOWNSTREAM_REMOTE_ADDRESS: (r) => r.downstreamRemote,
  DOWNSTREAM_PEER_URI_SAN: (r) => r.peerSan,
  // The HBONE connection's SNI (Envoy's waypoint logs `-`: its inner connection has no TLS).
  REQUESTED_SERVER_NAME: (r) => r.requestedServerName,
  ROUTE_NAME: (r) => r.routeName,
  GRPC_STATUS: (r) => r.grpcStatus,
  UPSTREAM_REQUEST_ATTEMPT_COUNT: (r) => r.attempts,
  METHOD: (r) => r.requestHeader(":method"),
};

/** A compiled format: a line of text, or a JSON object. */
export interface AccessLogFormat {
  format(record: LogRecord): string;
}

/**
 * Compiles a provider's format.
 *
 * @example
 * ```ts
 * compileFormat({ name: "envoy", path: "/dev/stdout" }).format(record);
 * ```
 *
 * @param provider The provider's `logFormat`
 * @returns The formatter
 * @throws Error naming the provider and the unknown command
 */
export function compileFormat(provider: AccessLogProvider): AccessLogFormat {
  const at = `envoyFileAccessLog provider ${provider.name}`;
  if (provider.labels) {
    const fields = Object.keys(provider.labels).sort().map((key) =>
      [key, compileText(provider.labels![key], at)] as const
    );
    const omit = provider.omitEmptyValues ?? false;
    return {
      format(record) {
        const out: Record<string, unknown> = {};
        for (const [key, parts] of fields) {
          const v = parts.length === 1 && typeof parts[0] !== "string"
            ? parts[0](record)
            : render(parts, record);
          if (omit && (v === undefined || v === "")) continue;
          out[key] = v ?? null;
        }
        return JSON.stringify(out) + "\n";
      },
    };
  }
  let text = provider.text ?? DEFAULT_TEXT_FORMAT;
  if (!text.endsWith("\n")) text += "\n";
  const parts = compileText(text, at);
  return { format: (record) => render(parts, record) };
}

type Part = string | Operator;

function render(parts: readonly Part[], record: LogRecord): string {
  let out = "";
  for (const p of parts) {
    if (typeof p === "string") out += p;
    else {
      const v = p(record);
      out += v === undefined || v === "" ? "-" : v;
    }
  }
  return out;
}

const COMMAND = /%([A-Z_]+)(?:\(([^)]*)\))?(?::([0-9]+))?%/g;

function compileText(text: string, at: string): Part[] {
  const parts: Part[] = [];
  let last = 0;
  for (const m of text.matchAll(COMMAND)) {
    if (m.index! > last) parts.push(text.slice(last, m.index));
    parts.push(operator(m[1], m[2], m[3] ? Number(m[3]) : undefined, at));
    last = m.index! + m[0].length;
  }
  if (last < text.length) parts.push(text.slice(last));
  return parts;
}

function operator(name: string, arg: string | undefined, max: number | undefined, at: string) {
  const op = headerOperator(name, arg) ?? metadataOperator(name, arg) ?? OPERATORS[name];
  if (!op) throw new Error(`${at}: %${name}% is not a supported command operator`);
  if (max === undefined) return op;
  return (r: LogRecord) => {
    const v = op(r);
    return typeof v === "string" ? v.slice(0, max) : v;
  };
}

/** `%REQ(X?Y)%`, `%RESP(X)%`, `%TRAILER(X)%`: a header, or the fallback header when absent. */
function headerOperator(name: string, arg: string | undefined): Operator | undefined {
  if (arg === undefined || !["REQ", "RESP", "TRAILER"].includes(name)) return undefined;
  const [first, second] = arg.toLowerCase().split("?");
  const read = name === "REQ"
    ? (r: LogRecord, h: string) => r.requestHeader(h)
    : name === "RESP"
    ? (r: LogRecord, h: string) => r.responseHeader(h)
    : (r: LogRecord, h: string) => r.responseTrailer(h);
  if (second === undefined) return (r) => read(r, first);
  return (r) => read(r, first) ?? read(r, second);
}

/** `%DYNAMIC_METADATA(istio.authorization:policy|decision)%`: the authorization outcome. */
function metadataOperator(name: string, arg: string | undefined): Operator | undefined {
  if (name !== "DYNAMIC_METADATA" || !arg?.startsWith("istio.authorization")) return undefined;
  const key = arg.split(":")[1];
  if (key === "policy") return (r) => r.policy;
  if (key === "decision") return (r) => r.decision;
  return undefined;
}

/** Options of {@link AccessLogs}. */
export interface AccessLogsOptions {
  /** Lines waiting per destination at most; more are dropped. @default 10000 */
  readonly maxQueued?: number;
  /** Opens a path for appending. @default Deno.stdout for `/dev/stdout`, else an append-only file */
  readonly open?: (path: string) => Sink;
}

/**
 * Every provider's formatter and its writer; one writer per path. {@link AccessLogs.update}
 * follows MeshConfig reloads: a path still in use keeps its writer (and its queue).
 */
export class AccessLogs {
  #providers = new Map<string, { format: AccessLogFormat; writer: LineWriter }>();
  #writers = new Map<string, LineWriter>();
  readonly #options: AccessLogsOptions;
  /** Lines dropped by writers already closed. */
  #retiredDrops = 0;

  /**
   * @param providers The MeshConfig's `envoyFileAccessLog` providers (with `envoy`)
   * @param options Queue bound and opener
   * @throws Error when a format has an unknown command
   */
  constructor(providers: Iterable<AccessLogProvider>, options: AccessLogsOptions = {}) {
    this.#options = options;
    void this.update(providers);
  }

  /**
   * Takes the providers of a reloaded MeshConfig: formats are replaced, new paths are opened,
   * and the writers of paths no longer named are drained, then closed.
   *
   * @param providers The new MeshConfig's `envoyFileAccessLog` providers
   * @returns When the writers left behind are closed
   * @throws Error when a format has an unknown command (nothing changes then)
   */
  update(providers: Iterable<AccessLogProvider>): Promise<void> {
    const list = [...providers];
    const formats = list.map(compileFormat);
    const writers = new Map<string, LineWriter>();
    const next = new Map<string, { format: AccessLogFormat; writer: LineWriter }>();
    list.forEach((p, i) => {
      let writer = writers.get(p.path) ?? this.#writers.get(p.path);
      if (!writer) {
        const open = this.#options.open ?? openPath;
        writer = new LineWriter(open(p.path), this.#options.maxQueued ?? 10_000);
      }
      writers.set(p.path, writer);
      next.set(p.name, { format: formats[i], writer });
    });
    const gone = [...this.#writers].filter(([path]) => !writers.has(path)).map(([, w]) => w);
    this.#providers = next;
    this.#writers = writers;
    return Promise.all(gone.map(async (w) => {
      await w.drain();
      w.close();
      this.#retiredDrops += w.dropped;
    })).then(() => {});
  }

  /** Whether a provider is known. */
  has(name: string): boolean {
    return this.#providers.has(name);
  }

  /**
   * Formats and queues one line; unknown providers are ignored (load reported them).
   *
   * @param provider Provider name
   * @param record The finished request or connection
   */
  write(provider: string, record: LogRecord): void {
    const p = this.#providers.get(provider);
    if (p) p.writer.push(p.format.format(record));
  }

  /** Lines dropped because a queue was full. */
  get dropped(): number {
    let n = this.#retiredDrops;
    for (const w of this.#writers.values()) n += w.dropped;
    return n;
  }

  /** Waits until queued lines are written (tests, shutdown). */
  async drain(): Promise<void> {
    await Promise.all([...this.#writers.values()].map((w) => w.drain()));
  }

  /** Releases the files. */
  close(): void {
    for (const w of this.#writers.values()) w.close();
  }
}

/**
 * A bounded, non-blocking line queue in front of a sink: lines are joined and written by one
 * flush loop at a time; a line that finds the queue full is dropped and counted (as `log/`).
 */
class LineWriter {
  #sink: Sink & { close?(): void };
  readonly #max: number;
  readonly #encoder = new TextEncoder();
  #queue: string[] = [];
  #flushing: Promise<void> | undefined;
  dropped = 0;

  constructor(sink: Sink & { close?(): void }, maxQueued: number) {
    this.#sink = sink;
    this.#max = maxQueued;
  }

  push(line: string): void {
    if (this.#queue.length >= this.#max) {
      this.dropped++;
      return;
    }
    this.#queue.push(line);
    // After this turn of the event loop, so the lines of many requests are encoded as one.
    this.#flushing ??= new Promise((r) => setImmediate(r)).then(() => this.#flush());
  }

  async drain(): Promise<void> {
    while (this.#flushing) await this.#flushing;
  }

  /** Releases the sink once; lines pushed later are dropped by the failing write. */
  close(): void {
    const sink = this.#sink;
    this.#sink = { write: () => Promise.reject(new Error("Access log closed")) };
    sink.close?.();
  }

  async #flush(): Promise<void> {
    try {
      while (this.#queue.length > 0) {
        const bytes = this.#encoder.encode(this.#queue.join(""));
        this.#queue = [];
        let off = 0;
        while (off < bytes.length) off += await this.#sink.write(bytes.subarray(off));
      }
    } catch {
      // A closed file or stdout must not take the proxy down; access logs are best effort.
      this.dropped += this.#queue.length;
      this.#queue = [];
    } finally {
      this.#flushing = undefined;
    }
  }
}

function openPath(path: string): Sink & { close?(): void } {
  // The process's own streams are shared: written through, never closed.
  if (path === "/dev/stdout") return { write: (b) => Deno.stdout.write(b) };
  if (path === "/dev/stderr") return { write: (b) => Deno.stderr.write(b) };
  const file = Deno.openSync(path, { append: true, create: true });
  return { write: (b) => file.write(b), close: () => file.close() };
}
