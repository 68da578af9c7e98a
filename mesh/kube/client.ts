/**
 * A small Kubernetes API client on Deno's `fetch`: paged LIST, WATCH as a stream of events, and
 * plain requests (status patches, leases). It is ours rather than `@kubernetes/client-node`
 * because that package is 83 MB and, under Deno, its watches hang forever after a lost connection
 * (an abort never ends the response body; see shared/reference/libraries.md). Deno's `fetch`
 * aborts cleanly, so an inactivity timer can always end a dead watch.
 *
 * Invariants:
 * - Every body read is bounded: a LIST page by `maxPageBytes`, a watch event by `maxEventBytes`.
 * - A watch ends (and its connection is released) when the caller stops iterating, when its
 *   signal aborts, or when no byte arrived for `inactivityMs`.
 * - Objects handed out carry `apiVersion` and `kind` (LIST items omit them) and no
 *   `metadata.managedFields`.
 */
import type { KubeObject } from "../resources.ts";
import type { KubeAccess } from "./kubeconfig.ts";
import { apiVersionOf, collectionPath, type ResourceKind } from "./kinds.ts";
import { LineSplitter, LineTooLongError } from "./_lines.ts";

/** An answer of the API server other than success, or a watch that could not go on. */
export class KubeApiError extends Error {
  /**
   * @param status HTTP status, or the `code` of a watch ERROR event; 0 for transport faults
   * @param reason The Status `reason` (`Expired`, `NotFound`, `Forbidden`...) or a short cause
   * @param detail What was asked and what went wrong
   */
  constructor(readonly status: number, readonly reason: string, detail: string) {
    super(detail);
    this.name = "KubeApiError";
  }
}

/** One watch event. */
export interface WatchEvent {
  readonly type: "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR";
  /** The object, or a `Status` for ERROR. */
  readonly object: KubeObject;
}

/** Bounds of {@link KubeClient}. */
export interface KubeClientOptions {
  /** Items per LIST page. @default 500 */
  readonly pageSize?: number;
  /** Largest LIST page body. @default 64 MiB */
  readonly maxPageBytes?: number;
  /** Largest watch event (one JSON line). @default 16 MiB */
  readonly maxEventBytes?: number;
  /** Deadline of a LIST page or a plain request. @default 60 s */
  readonly requestTimeoutMs?: number;
}

/** How one watch runs. */
export interface WatchOptions {
  /** Asked of the server, which then ends the watch normally. */
  readonly timeoutSeconds: number;
  /** No byte for this long ends the watch with an error. */
  readonly inactivityMs: number;
  readonly signal?: AbortSignal;
}

const EVENT_TYPES = new Set(["ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"]);

/** Talks to one API server with one set of credentials. */
export class KubeClient {
  readonly #access: KubeAccess;
  readonly #pageSize: number;
  readonly #maxPageBytes: number;
  readonly #maxEventBytes: number;
  readonly #timeoutMs: number;

  /**
   * @param access Server, TLS client and token
   * @param options Page size and bounds
   */
  constructor(access: KubeAccess, options: KubeClientOptions = {}) {
    this.#access = access;
    this.#pageSize = options.pageSize ?? 500;
    this.#maxPageBytes = options.maxPageBytes ?? 64 * 1024 * 1024;
    this.#maxEventBytes = options.maxEventBytes ?? 16 * 1024 * 1024;
    this.#timeoutMs = options.requestTimeoutMs ?? 60_000;
  }

  /**
   * Lists every object of a kind, page by page (`limit`/`continue`).
   *
   * @param kind What to list
   * @param signal Aborts the list
   * @returns The objects and the list's resourceVersion, to watch from
   * @throws KubeApiError for any non-200 answer (410 when a `continue` token expired)
   */
  async list(
    kind: ResourceKind,
    signal?: AbortSignal,
  ): Promise<{ items: KubeObject[]; resourceVersion: string }> {
    const items: KubeObject[] = [];
    let token = "";
    for (;;) {
      const query: Record<string, string> = { limit: String(this.#pageSize) };
      if (token) query.continue = token;
      // deno-lint-ignore no-explicit-any
      const page: any = await this.request("GET", collectionUrl(kind, query), { signal });
      for (const item of Array.isArray(page?.items) ? page.items : []) {
        items.push(normalize(item, kind));
      }
      token = String(page?.metadata?.continue ?? "");
      if (!token) return { items, resourceVersion: String(page?.metadata?.resourceVersion ?? "") };
    }
  }

  /**
   * Watches a kind from a resourceVersion, with bookmarks.
   *
   * @param kind What to watch
   * @param resourceVersion From the list or the last event
   * @param options Server timeout, inactivity bound and abort signal
   * @returns Events until the server ends the stream
   * @throws KubeApiError for a non-200 answer, a malformed or oversized event, a broken
   *   connection or inactivity
   */
  async *watch(
    kind: ResourceKind,
    resourceVersion: string,
    options: WatchOptions,
  ): AsyncGenerator<WatchEvent> {
    const url = collectionUrl(kind, {
      watch: "1",
      allowWatchBookmarks: "true",
      resourceVersion,
      timeoutSeconds: String(options.timeoutSeconds),
    });
    const controller = new AbortController();
    const stop = () => controller.abort(options.signal?.reason);
    options.signal?.addEventListener("abort", stop);
    if (options.signal?.aborted) stop();
    let idle = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        idle = true;
        controller.abort();
      }, options.inactivityMs);
    };
    arm();
    try {
      const response = await this.#fetch("GET", url, { signal: controller.signal });
      if (!response.ok) throw await apiError(response, "GET", url);
      const reader = response.body!.getReader();
      const lines = new LineSplitter(this.#maxEventBytes);
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        arm();
        for (const line of lines.push(value)) yield parseEvent(line, kind);
      }
    } catch (error) {
      if (idle) {
        throw new KubeApiError(
          0,
          "Inactive",
          `Watch ${url}: no byte for ${options.inactivityMs} ms`,
        );
      }
      throw asApiError(error, `Watch ${url}`);
    } finally {
      clearTimeout(timer);
      options.signal?.removeEventListener("abort", stop);
      controller.abort();
    }
  }

  /**
   * One request with a JSON answer, within the request deadline.
   *
   * @param method HTTP method
   * @param path Path and query below the server URL
   * @param init Body (sent as JSON), its content type, abort signal
   * @returns The parsed answer
   * @throws KubeApiError for a non-2xx answer, an oversized body or a transport fault
   */
  async request(
    method: string,
    path: string,
    init: { body?: unknown; contentType?: string; signal?: AbortSignal } = {},
  ): Promise<unknown> {
    const deadline = AbortSignal.timeout(this.#timeoutMs);
    const signal = init.signal ? AbortSignal.any([init.signal, deadline]) : deadline;
    try {
      const response = await this.#fetch(method, path, {
        signal,
        body: init.body === undefined ? undefined : JSON.stringify(init.body),
        contentType: init.contentType ?? "application/json",
      });
      if (!response.ok) throw await apiError(response, method, path);
      return JSON.parse(await readBounded(response, this.#maxPageBytes, `${method} ${path}`));
    } catch (error) {
      throw asApiError(error, `${method} ${path}`);
    }
  }

  async #fetch(
    method: string,
    path: string,
    init: { signal: AbortSignal; body?: string; contentType?: string },
  ): Promise<Response> {
    const headers: Record<string, string> = { accept: "application/json" };
    const authorization = await this.#access.authorization();
    if (authorization) headers.authorization = authorization;
    if (init.body !== undefined) headers["content-type"] = init.contentType!;
    const response = await fetch(`${this.#access.server}${path}`, {
      method,
      headers,
      body: init.body,
      signal: init.signal,
      client: this.#access.client,
    });
    if (response.status === 401) this.#access.tokenRejected();
    return response;
  }
}

function collectionUrl(kind: ResourceKind, query: Record<string, string>): string {
  const params = new URLSearchParams(query);
  if (kind.fieldSelector) params.set("fieldSelector", kind.fieldSelector);
  return `${collectionPath(kind)}?${params}`;
}

/** Adds apiVersion/kind, drops managedFields, trims. */
function normalize(value: unknown, kind: ResourceKind): KubeObject {
  // deno-lint-ignore no-explicit-any
  const object: any = typeof value === "object" && value !== null ? value : {};
  if (object.metadata?.managedFields) delete object.metadata.managedFields;
  const full = { ...object, apiVersion: apiVersionOf(kind), kind: kind.kind } as KubeObject;
  return kind.trim ? kind.trim(full) : full;
}

function parseEvent(line: string, kind: ResourceKind): WatchEvent {
  // deno-lint-ignore no-explicit-any
  let event: any;
  try {
    event = JSON.parse(line);
  } catch {
    throw new KubeApiError(0, "BadEvent", `Watch ${kind.kind}: an event is not JSON`);
  }
  if (!EVENT_TYPES.has(event?.type) || typeof event.object !== "object" || !event.object) {
    throw new KubeApiError(0, "BadEvent", `Watch ${kind.kind}: unknown event ${event?.type}`);
  }
  const object = event.type === "ERROR" ? event.object : normalize(event.object, kind);
  return { type: event.type, object };
}

/** Reads a body as text, up to `max` bytes. */
async function readBounded(response: Response, max: number, what: string): Promise<string> {
  const decoder = new TextDecoder();
  let text = "";
  let size = 0;
  for await (const chunk of response.body ?? []) {
    size += chunk.length;
    if (size > max) {
      throw new KubeApiError(0, "TooLarge", `${what}: answer larger than ${max} bytes`);
    }
    text += decoder.decode(chunk, { stream: true });
  }
  return text + decoder.decode();
}

/** A non-2xx answer as an error carrying the Status reason and message. */
async function apiError(response: Response, method: string, path: string): Promise<KubeApiError> {
  let status: { reason?: string; message?: string } = {};
  try {
    status = JSON.parse(await readBounded(response, 64 * 1024, path));
  } catch {
    // Not a Status (a proxy's page): the HTTP status says enough.
  }
  const reason = status.reason ?? response.statusText;
  const message = status.message ? `: ${status.message}` : "";
  return new KubeApiError(
    response.status,
    reason,
    `${method} ${path}: ${response.status} ${reason}${message}`,
  );
}

function asApiError(error: unknown, what: string): KubeApiError {
  if (error instanceof KubeApiError) return error;
  if (error instanceof LineTooLongError) {
    return new KubeApiError(0, "TooLarge", `${what}: ${error.message}`);
  }
  const name = (error as Error)?.name ?? "Error";
  return new KubeApiError(0, name, `${what}: ${(error as Error)?.message ?? error}`);
}
