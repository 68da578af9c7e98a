// Counts timer ticks. Root id "tick". pluginConfig: {"period_ms":"<n>"} (default 10). Each
// response gets `x-ticks: <ticks so far>`.
export * from "@solo-io/proxy-runtime/proxy";
import {
  Context,
  FilterHeadersStatusValues,
  registerRootContext,
  RootContext,
  stream_context,
} from "@solo-io/proxy-runtime";
import { set_tick_period_milliseconds } from "@solo-io/proxy-runtime/runtime";
import { configField } from "../../common/assembly/util";

class TickRoot extends RootContext {
  ticks: u32 = 0;

  createContext(context_id: u32): Context {
    return new TickContext(context_id, this);
  }

  onConfigure(configuration_size: u32): bool {
    const ok = super.onConfigure(configuration_size);
    const period = configField(this.getConfiguration(), "period_ms");
    set_tick_period_milliseconds(period == "" ? 10 : U32.parseInt(period));
    return ok;
  }

  onTick(): void {
    this.ticks += 1;
  }
}

class TickContext extends Context {
  onResponseHeaders(_headers: u32, _end: bool): FilterHeadersStatusValues {
    const root = changetype<TickRoot>(this.root_context);
    stream_context.headers.response.add("x-ticks", root.ticks.toString());
    return FilterHeadersStatusValues.Continue;
  }
}

registerRootContext((context_id: u32) => new TickRoot(context_id), "tick");
