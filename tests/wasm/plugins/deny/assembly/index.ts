// Answers 403 with body "denied by wasm\n" and `x-wasm-denied: yes` when the request has
// `x-deny`; other requests pass. Root id "deny".
export * from "@solo-io/proxy-runtime/proxy";
import {
  Context,
  FilterHeadersStatusValues,
  GrpcStatusValues,
  HeaderPair,
  registerRootContext,
  RootContext,
  send_local_response,
  stream_context,
} from "@solo-io/proxy-runtime";

class DenyRoot extends RootContext {
  createContext(context_id: u32): Context {
    return new DenyContext(context_id, this);
  }
}

class DenyContext extends Context {
  onRequestHeaders(_headers: u32, _end: bool): FilterHeadersStatusValues {
    if (stream_context.headers.request.get("x-deny") == "") {
      return FilterHeadersStatusValues.Continue;
    }
    const extra = [new HeaderPair(String.UTF8.encode("x-wasm-denied"), String.UTF8.encode("yes"))];
    send_local_response(
      403,
      "wasm_deny",
      String.UTF8.encode("denied by wasm\n"),
      extra,
      GrpcStatusValues.PermissionDenied,
    );
    return FilterHeadersStatusValues.StopIteration;
  }
}

registerRootContext((context_id: u32) => new DenyRoot(context_id), "deny");
