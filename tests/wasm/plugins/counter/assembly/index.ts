// Defines the counter metric "wasm_test_requests" and adds one per request. Root id "counter".
export * from "@solo-io/proxy-runtime/proxy";
import {
  Context,
  Counter,
  FilterHeadersStatusValues,
  registerRootContext,
  RootContext,
} from "@solo-io/proxy-runtime";

class CounterRoot extends RootContext {
  requests: Counter | null = null;

  createContext(context_id: u32): Context {
    return new CounterContext(context_id, this);
  }

  onConfigure(configuration_size: u32): bool {
    this.requests = new Counter("wasm_test_requests");
    return super.onConfigure(configuration_size);
  }
}

class CounterContext extends Context {
  onRequestHeaders(_headers: u32, _end: bool): FilterHeadersStatusValues {
    const counter = changetype<CounterRoot>(this.root_context).requests;
    if (counter) counter.increment(1);
    return FilterHeadersStatusValues.Continue;
  }
}

registerRootContext((context_id: u32) => new CounterRoot(context_id), "counter");
