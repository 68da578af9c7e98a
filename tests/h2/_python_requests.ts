/**
 * Drives `py_h2_requests.py` (beside this file): python3-h2 sending or serving ordinary requests
 * with bodies and trailers over cleartext TCP, for the h2/ and h2c tests.
 */
import { type PythonScript, runPythonJson, startPythonScript } from "../interop/_python_h2.ts";
import { until } from "./_helpers.ts";

const SCRIPT = decodeURIComponent(new URL("py_h2_requests.py", import.meta.url).pathname);

/** One response as the python client got it. */
export interface PyResponse {
  readonly status: number | null;
  readonly headers: [string, string][] | null;
  readonly trailers: [string, string][] | null;
  readonly body_bytes: number;
  readonly echo_ok: boolean;
  readonly reset: number | null;
}

/** What the python client prints. */
export interface PyClientReport {
  readonly rounds_ok: number;
  readonly problems: string[];
  readonly resets: [number, number][];
  readonly eof_after_goaway: number;
  /** Of the last round: the POST with a body and trailers, then the GET. */
  readonly responses: PyResponse[];
}

/** One request as the python server recorded it. */
export interface PyRequest {
  readonly headers: [string, string][];
  readonly body_bytes: number;
  readonly trailers: [string, string][] | null;
  readonly connection: number;
}

/**
 * Runs the python client to completion against `connect` (`host:port`).
 *
 * @param args More arguments: `--rounds`, `--goaway`, `--payload-bytes`, `--authority`
 */
export function runPyRequests(connect: string, ...args: string[]): Promise<PyClientReport> {
  return runPythonJson(SCRIPT, ["client", "--connect", connect, ...args]);
}

/** A running python server: its port and the requests it recorded. */
export interface PyServer extends PythonScript {
  readonly requests: PyRequest[];
  /** Resolves once `n` requests were recorded. */
  recorded(n: number): Promise<PyRequest[]>;
}

/** Starts the python server on `host` (port 0). */
export async function startPyRequestsServer(host: string): Promise<PyServer> {
  const requests: PyRequest[] = [];
  const script = await startPythonScript(
    SCRIPT,
    ["server", "--listen", `${host}:0`],
    (line) => requests.push(JSON.parse(line)),
  );
  return {
    port: script.port,
    requests,
    recorded: async (n) => {
      await until(() => requests.length >= n, 5_000, `${n} requests recorded`);
      return requests;
    },
    stderr: script.stderr,
    [Symbol.asyncDispose]: script[Symbol.asyncDispose],
  };
}
