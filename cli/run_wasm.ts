/**
 * The Wasm runtime of `run`: plugins fetched and instantiated in the background for each config,
 * their HTTP and gRPC calls sent through our upstreams, each callback metered.
 */
import { log } from "../log/mod.ts";
import type { SnapshotHolder } from "../mesh/mod.ts";
import {
  type HttpUpstreams,
  type ProxyConfig,
  wasmGrpcCaller,
  wasmHttpCaller,
} from "../proxy/mod.ts";
import type { Balancer } from "../routes/mod.ts";
import { meter, ModuleFetcher, WasmRuntime } from "../wasm/mod.ts";
import type { RunOptions } from "./run_options.ts";

/** The runtime and how to stop it. */
export interface RunWasm {
  readonly wasm: WasmRuntime;
  /** Stops following the config and releases every plugin VM. */
  close(): void;
}

/**
 * Starts the runtime and prepares the plugins of the current config and of each new one.
 *
 * @param options Parsed `run` flags (our Gateway, for the plugins' node)
 * @param holder The config holder
 * @param calls Where plugins' HTTP and gRPC calls go
 * @returns The runtime and its close
 */
export function startWasm(
  options: RunOptions,
  holder: SnapshotHolder<ProxyConfig>,
  calls: { readonly upstreams: HttpUpstreams; readonly balancer: Balancer },
): RunWasm {
  const { upstreams, balancer } = calls;
  const wasm = new WasmRuntime({
    loader: new ModuleFetcher(),
    httpCaller: wasmHttpCaller({ config: () => holder.current, upstreams, balancer }),
    grpcCaller: wasmGrpcCaller({ config: () => holder.current, upstreams, balancer }),
    // Bounds each plugin callback's run time: a runaway plugin traps instead of stalling us.
    instrument: meter,
    node: { id: `waypoint~${options.namespace}~${options.name}`, cluster: options.name },
  });
  const prepareWasm = (next: ProxyConfig) => {
    wasm.retain(next.wasm.all.map((s) => s.vmKey));
    wasm.prepare(next.wasm.all).catch((e) =>
      log.warn("Wasm prepare failed", { reason: String(e) })
    );
  };
  prepareWasm(holder.current);
  const unsubscribeWasm = holder.subscribe(prepareWasm);
  return {
    wasm,
    close: () => {
      unsubscribeWasm();
      wasm.close();
    },
  };
}
