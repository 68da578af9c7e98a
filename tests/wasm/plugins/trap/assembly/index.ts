// Traps (wasm `unreachable`) on a request with `x-trap`, and aborts through the SDK's
// `abort_proc_exit` (proc_exit(255)) on a request with `x-abort`. Root id "trap".
export * from "@solo-io/proxy-runtime/proxy";
import {
  Context,
  FilterHeadersStatusValues,
  registerRootContext,
  RootContext,
  stream_context,
} from "@solo-io/proxy-runtime";

class TrapRoot extends RootContext {
  createContext(context_id: u32): Context {
    return new TrapContext(context_id, this);
  }
}

class TrapContext extends Context {
  onRequestHeaders(_headers: u32, _end: bool): FilterHeadersStatusValues {
    if (stream_context.headers.request.get("x-trap") != "") unreachable();
    if (stream_context.headers.request.get("x-abort") != "") throw new Error("asked to abort");
    return FilterHeadersStatusValues.Continue;
  }
}

registerRootContext((context_id: u32) => new TrapRoot(context_id), "trap");
