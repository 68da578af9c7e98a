// Adds and removes request and response headers. Root id "headers".
// Request: adds `x-wasm-request: <pluginConfig "request" field>`, removes `x-strip-me`.
// Response: adds `x-wasm-response: yes`, removes `x-upstream-secret`.
export * from "@solo-io/proxy-runtime/proxy";
import {
  Context,
  FilterHeadersStatusValues,
  registerRootContext,
  RootContext,
  stream_context,
} from "@solo-io/proxy-runtime";
import { configField } from "../../common/assembly/util";

class HeadersRoot extends RootContext {
  createContext(context_id: u32): Context {
    return new HeadersContext(context_id, this);
  }
}

class HeadersContext extends Context {
  onRequestHeaders(_headers: u32, _end: bool): FilterHeadersStatusValues {
    const value = configField(this.root_context.getConfiguration(), "request");
    stream_context.headers.request.add("x-wasm-request", value);
    stream_context.headers.request.remove("x-strip-me");
    return FilterHeadersStatusValues.Continue;
  }

  onResponseHeaders(_headers: u32, _end: bool): FilterHeadersStatusValues {
    stream_context.headers.response.add("x-wasm-response", "yes");
    stream_context.headers.response.remove("x-upstream-secret");
    return FilterHeadersStatusValues.Continue;
  }
}

registerRootContext((context_id: u32) => new HeadersRoot(context_id), "headers");
