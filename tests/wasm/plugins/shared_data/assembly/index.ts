// Counts requests in shared data key "hits" (compare-and-swap, so VMs sharing the data agree).
// Root id "shared_data". Each response gets `x-hits: <count after this request>`.
export * from "@solo-io/proxy-runtime/proxy";
import {
  Context,
  FilterHeadersStatusValues,
  registerRootContext,
  RootContext,
  stream_context,
} from "@solo-io/proxy-runtime";
import { sharedGet, sharedSet } from "../../common/assembly/util";

const ATTEMPTS = 8;

class SharedRoot extends RootContext {
  createContext(context_id: u32): Context {
    return new SharedContext(context_id, this);
  }
}

class SharedContext extends Context {
  hits: string = "";

  onRequestHeaders(_headers: u32, _end: bool): FilterHeadersStatusValues {
    for (let i = 0; i < ATTEMPTS; i++) {
      const seen = sharedGet("hits");
      const next = (seen.value == "" ? 1 : U32.parseInt(seen.value) + 1).toString();
      if (sharedSet("hits", next, seen.cas)) {
        this.hits = next;
        break;
      }
    }
    return FilterHeadersStatusValues.Continue;
  }

  onResponseHeaders(_headers: u32, _end: bool): FilterHeadersStatusValues {
    stream_context.headers.response.add("x-hits", this.hits);
    return FilterHeadersStatusValues.Continue;
  }
}

registerRootContext((context_id: u32) => new SharedRoot(context_id), "shared_data");
