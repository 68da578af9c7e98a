// Reads properties on the request and returns them as response headers. Root id "properties".
// `x-request-path` ← request.path, `x-source-principal` ← source.principal,
// `x-plugin-name` ← plugin_name. A property the host does not have aborts the plugin (SDK).
export * from "@solo-io/proxy-runtime/proxy";
import {
  Context,
  FilterHeadersStatusValues,
  registerRootContext,
  RootContext,
  stream_context,
} from "@solo-io/proxy-runtime";
import { property } from "../../common/assembly/util";

class PropertiesRoot extends RootContext {
  createContext(context_id: u32): Context {
    return new PropertiesContext(context_id, this);
  }
}

class PropertiesContext extends Context {
  path: string = "";
  principal: string = "";
  plugin: string = "";

  onRequestHeaders(_headers: u32, _end: bool): FilterHeadersStatusValues {
    this.path = property(["request", "path"]);
    this.principal = property(["source", "principal"]);
    this.plugin = property(["plugin_name"]);
    return FilterHeadersStatusValues.Continue;
  }

  onResponseHeaders(_headers: u32, _end: bool): FilterHeadersStatusValues {
    stream_context.headers.response.add("x-request-path", this.path);
    stream_context.headers.response.add("x-source-principal", this.principal);
    stream_context.headers.response.add("x-plugin-name", this.plugin);
    return FilterHeadersStatusValues.Continue;
  }
}

registerRootContext((context_id: u32) => new PropertiesRoot(context_id), "properties");
