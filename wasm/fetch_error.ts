/** The one error of module fetching: which url, what kind of failure, and why. */

/** Closed set of fetch failure kinds. */
export type WasmFetchErrorKind =
  | "url" // the url cannot be fetched at all (scheme, malformed reference)
  | "network" // connection refused, reset, DNS
  | "timeout" // the whole load took longer than its bound
  | "status" // the server answered with an error status
  | "auth" // the registry refused our credentials, or its challenge is unusable
  | "size" // a body, layer or module is larger than the bound
  | "digest" // a sha256 or blob digest does not match
  | "format"; // not a Wasm module, gzip, tar or image of a known layout

/** A module that could not be had, naming the url and the reason. */
export class WasmFetchError extends Error {
  readonly kind: WasmFetchErrorKind;
  readonly url: string;
  readonly reason: string;

  /**
   * @param kind What failed
   * @param url The module url as the WasmPlugin wrote it (scheme defaulted)
   * @param reason Why, with the detail that locates it (status, digest, layer type)
   */
  constructor(kind: WasmFetchErrorKind, url: string, reason: string) {
    super(`Cannot fetch Wasm module ${url}: ${reason}`);
    this.name = "WasmFetchError";
    this.kind = kind;
    this.url = url;
    this.reason = reason;
  }
}
