// Asks another service before letting a request through. Root id "http_call".
// pluginConfig: {"cluster":"<service host>"}. The call is `GET /check` with the request's path in
// `x-original-path`; a 200 answer continues the request (adding `x-checked: <answer body>`), any
// other answer or a failed call gets a 403 local reply.
export * from "@solo-io/proxy-runtime/proxy";
import {
  Context,
  continue_request,
  FilterHeadersStatusValues,
  GrpcStatusValues,
  HeaderPair,
  Headers,
  registerRootContext,
  RootContext,
  send_local_response,
  stream_context,
} from "@solo-io/proxy-runtime";
import { get_buffer_bytes } from "@solo-io/proxy-runtime/runtime";
import { configField } from "../../common/assembly/util";

const HTTP_CALL_RESPONSE_BODY = 4;

function pair(key: string, value: string): HeaderPair {
  return new HeaderPair(String.UTF8.encode(key), String.UTF8.encode(value));
}

class CallRoot extends RootContext {
  createContext(context_id: u32): Context {
    return new CallContext(context_id, this);
  }
}

class CallContext extends Context {
  onRequestHeaders(_headers: u32, _end: bool): FilterHeadersStatusValues {
    const cluster = configField(this.root_context.getConfiguration(), "cluster");
    const headers: Headers = [
      pair(":method", "GET"),
      pair(":path", "/check"),
      pair(":authority", cluster),
      pair("x-original-path", stream_context.headers.request.get(":path")),
    ];
    const result = this.root_context.httpCall(
      cluster,
      headers,
      new ArrayBuffer(0),
      [],
      1000,
      this,
      answered,
    );
    if (result != 0) {
      refuse("call failed");
      return FilterHeadersStatusValues.StopIteration;
    }
    return FilterHeadersStatusValues.StopIteration;
  }
}

function refuse(reason: string): void {
  send_local_response(
    403,
    "wasm_http_call",
    String.UTF8.encode("refused: " + reason + "\n"),
    [],
    GrpcStatusValues.PermissionDenied,
  );
}

function answered(_origin: Context, headers: u32, body_size: usize, _trailers: u32): void {
  if (headers == 0) {
    refuse("no answer");
    return;
  }
  const status = stream_context.headers.http_callback.get(":status");
  if (status != "200") {
    refuse("status " + status);
    return;
  }
  const body = String.UTF8.decode(
    get_buffer_bytes(HTTP_CALL_RESPONSE_BODY, 0, <u32> body_size),
  );
  stream_context.headers.request.add("x-checked", body);
  continue_request();
}

registerRootContext((context_id: u32) => new CallRoot(context_id), "http_call");
