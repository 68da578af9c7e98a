/**
 * The WASI preview1 subset plugins link against (l7.md §5.7), answered as proxy-wasm-cpp-host
 * does: stdout/stderr go to the plugin log, clocks and randomness are real, the environment is
 * the plugin's `vmConfig.env`, there are no files, and `proc_exit` fails the plugin. Every name is
 * provided so Go, Rust, TinyGo and Zig modules instantiate; the same table is registered as
 * `wasi_snapshot_preview1` and the legacy `wasi_unstable`.
 */
import { Errno, LogLevel } from "./abi.ts";
import { ProcExit } from "./errors.ts";
import type { GuestMemory } from "./memory.ts";

/** What the shim needs from its VM. */
export interface WasiHost {
  readonly memory: GuestMemory;
  /** `KEY=VALUE` strings of the plugin environment, NUL-terminated when written. */
  readonly environ: readonly string[];
  log(level: number, message: string): void;
}

/** Most bytes one `random_get` may ask for. */
const MAX_RANDOM = 1 << 20;
const encoder = new TextEncoder();

/** Wall-clock time in nanoseconds. */
export function realtimeNs(): bigint {
  return BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e6));
}

/** Unsupported calls: fd-less ones answer NOSYS, as cpp-host's stubs do. */
const STUBS = [
  "fd_advise",
  "fd_allocate",
  "fd_datasync",
  "fd_fdstat_set_rights",
  "fd_filestat_set_size",
  "fd_filestat_set_times",
  "fd_pread",
  "fd_pwrite",
  "fd_readdir",
  "fd_renumber",
  "fd_sync",
  "fd_tell",
  "path_create_directory",
  "path_filestat_set_times",
  "path_link",
  "path_readlink",
  "path_remove_directory",
  "path_rename",
  "path_symlink",
  "path_unlink_file",
  "sock_accept",
  "sock_recv",
  "sock_send",
  "sock_shutdown",
  "fd_read",
  "fd_fdstat_set_flags",
  "fd_prestat_dir_name",
];

/**
 * The WASI import table of one VM.
 *
 * @param host Memory, environment and log of the VM
 * @returns Functions by WASI name
 */
export function wasiImports(host: WasiHost): Record<string, (...args: never[]) => unknown> {
  const m = host.memory;
  const table: Record<string, (...args: never[]) => unknown> = {};
  for (const name of STUBS) table[name] = () => Errno.NOSYS;
  const env = host.environ.map((e) => encoder.encode(e + "\0"));
  return Object.assign(table, {
    fd_write(fd: number, iovs: number, count: number, written: number): number {
      if (fd !== 1 && fd !== 2) return Errno.BADF;
      const parts: Uint8Array[] = [];
      let total = 0;
      for (let i = 0; i < count; i++) {
        const ptr = m.readU32(iovs + i * 8);
        const len = m.readU32(iovs + i * 8 + 4);
        const bytes = ptr === undefined || len === undefined ? undefined : m.read(ptr, len);
        if (!bytes) return Errno.FAULT;
        parts.push(bytes);
        total += bytes.length;
      }
      if (!m.writeU32(written, total)) return Errno.FAULT;
      const text = new TextDecoder().decode(concat(parts, total)).replace(/\n$/, "");
      if (text) host.log(fd === 1 ? LogLevel.INFO : LogLevel.ERROR, text);
      return Errno.SUCCESS;
    },
    fd_seek: () => Errno.SUCCESS,
    fd_close: () => Errno.SUCCESS,
    fd_fdstat_get(fd: number, out: number): number {
      if (fd !== 1 && fd !== 2) return Errno.BADF;
      const stat = new Uint8Array(24);
      stat[8] = 64; // fs_rights_base = FD_WRITE
      return m.write(out, stat) ? Errno.SUCCESS : Errno.FAULT;
    },
    fd_prestat_get: () => Errno.BADF,
    fd_filestat_get: () => Errno.BADF,
    path_open: () => Errno.NOENT,
    path_filestat_get: () => Errno.NOTSUP,
    environ_sizes_get(countPtr: number, sizePtr: number): number {
      const size = env.reduce((n, e) => n + e.length, 0);
      return m.writeU32(countPtr, env.length) && m.writeU32(sizePtr, size)
        ? Errno.SUCCESS
        : Errno.FAULT;
    },
    environ_get(arrayPtr: number, bufPtr: number): number {
      let off = bufPtr >>> 0;
      for (let i = 0; i < env.length; i++) {
        if (!m.writeU32(arrayPtr + i * 4, off) || !m.write(off, env[i])) return Errno.FAULT;
        off += env[i].length;
      }
      return Errno.SUCCESS;
    },
    args_sizes_get(argc: number, size: number): number {
      return m.writeU32(argc, 0) && m.writeU32(size, 0) ? Errno.SUCCESS : Errno.FAULT;
    },
    args_get: () => Errno.SUCCESS,
    clock_time_get(id: number, _precision: bigint, out: number): number {
      const now = id === 0
        ? realtimeNs()
        : id === 1
        ? BigInt(Math.round(performance.now() * 1e6))
        : undefined;
      if (now === undefined) return Errno.NOTSUP;
      return m.writeU64(out, now) ? Errno.SUCCESS : Errno.FAULT;
    },
    clock_res_get(id: number, out: number): number {
      if (id !== 0 && id !== 1) return Errno.NOTSUP;
      return m.writeU64(out, 1000n) ? Errno.SUCCESS : Errno.FAULT;
    },
    random_get(ptr: number, len: number): number {
      len >>>= 0;
      if (len > MAX_RANDOM) return Errno.INVAL;
      const bytes = new Uint8Array(len);
      for (let off = 0; off < len; off += 65536) {
        crypto.getRandomValues(bytes.subarray(off, Math.min(len, off + 65536)));
      }
      return m.write(ptr, bytes) ? Errno.SUCCESS : Errno.FAULT;
    },
    poll_oneoff(_in: number, _out: number, _n: number, events: number): number {
      return m.writeU32(events, 0) ? Errno.SUCCESS : Errno.FAULT;
    },
    sched_yield: () => Errno.SUCCESS,
    proc_exit(code: number): never {
      throw new ProcExit(code);
    },
  });
}

function concat(parts: Uint8Array[], total: number): Uint8Array {
  if (parts.length === 1) return parts[0];
  const out = new Uint8Array(total);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}
