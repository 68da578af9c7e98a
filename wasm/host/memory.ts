/**
 * Guest memory access for host functions. Every pointer and length comes from the plugin and is
 * checked against the memory's current size: a bad one makes the host function answer
 * `INVALID_MEMORY_ACCESS` (as cpp-host does), never a host exception.
 *
 * Invariants:
 * - The views are refreshed after the memory grows (growing detaches the old ArrayBuffer).
 * - Returned buffers are allocated inside the guest with `malloc`, else `proxy_on_memory_allocate`
 *   (l7.md §5.4); an empty value is written as pointer 0, size 0 without allocating.
 */
import { Status } from "./abi.ts";

const decoder = new TextDecoder();

/** The memory of one instance, with its allocator. */
export class GuestMemory {
  #memory?: WebAssembly.Memory;
  #alloc?: (size: number) => number;
  #u8: Uint8Array = new Uint8Array(0);
  #view: DataView = new DataView(new ArrayBuffer(0));

  /**
   * Binds the instance's `memory` export and allocator once instantiation returned.
   *
   * @param memory The exported memory
   * @param alloc `malloc` or `proxy_on_memory_allocate`
   */
  bind(memory: WebAssembly.Memory, alloc: (size: number) => number): void {
    this.#memory = memory;
    this.#alloc = alloc;
    this.#refresh();
  }

  /** Current size in bytes (0 before binding). */
  get size(): number {
    return this.#bytes().length;
  }

  #refresh(): void {
    if (!this.#memory) return;
    const buf = this.#memory.buffer;
    this.#u8 = new Uint8Array(buf);
    this.#view = new DataView(buf);
  }

  #bytes(): Uint8Array {
    if (this.#memory && this.#u8.buffer !== this.#memory.buffer) this.#refresh();
    return this.#u8;
  }

  #ok(ptr: number, len: number): boolean {
    const size = this.#bytes().length;
    return ptr >= 0 && len >= 0 && ptr + len <= size;
  }

  /** A copy of `len` bytes at `ptr`, or undefined when out of bounds. */
  read(ptr: number, len: number): Uint8Array | undefined {
    ptr >>>= 0;
    len >>>= 0;
    if (!this.#ok(ptr, len)) return undefined;
    return this.#u8.slice(ptr, ptr + len);
  }

  /** UTF-8 text at `ptr`, or undefined when out of bounds. */
  readString(ptr: number, len: number): string | undefined {
    ptr >>>= 0;
    len >>>= 0;
    if (!this.#ok(ptr, len)) return undefined;
    return decoder.decode(this.#u8.subarray(ptr, ptr + len));
  }

  /** Little-endian u32 at `ptr`, or undefined when out of bounds. */
  readU32(ptr: number): number | undefined {
    ptr >>>= 0;
    if (!this.#ok(ptr, 4)) return undefined;
    return this.#view.getUint32(ptr, true);
  }

  /** Writes bytes at `ptr`; false when out of bounds. */
  write(ptr: number, bytes: Uint8Array): boolean {
    ptr >>>= 0;
    if (!this.#ok(ptr, bytes.length)) return false;
    this.#u8.set(bytes, ptr);
    return true;
  }

  /** Writes a little-endian u32; false when out of bounds. */
  writeU32(ptr: number, value: number): boolean {
    ptr >>>= 0;
    if (!this.#ok(ptr, 4)) return false;
    this.#view.setUint32(ptr, value >>> 0, true);
    return true;
  }

  /** Writes a little-endian u64; false when out of bounds. */
  writeU64(ptr: number, value: bigint): boolean {
    ptr >>>= 0;
    if (!this.#ok(ptr, 8)) return false;
    this.#view.setBigUint64(ptr, BigInt.asUintN(64, value), true);
    return true;
  }

  /**
   * Copies a value into fresh guest memory and stores its pointer and size in the two slots.
   *
   * @param bytes The value
   * @param ptrSlot Where the pointer goes
   * @param sizeSlot Where the size goes
   * @returns `OK`, or `INVALID_MEMORY_ACCESS` for a bad slot or a failed allocation
   */
  copyOut(bytes: Uint8Array, ptrSlot: number, sizeSlot: number): number {
    if (!this.#ok(ptrSlot >>> 0, 4) || !this.#ok(sizeSlot >>> 0, 4)) {
      return Status.INVALID_MEMORY_ACCESS;
    }
    let ptr = 0;
    if (bytes.length > 0) {
      if (!this.#alloc) return Status.INVALID_MEMORY_ACCESS;
      ptr = this.#alloc(bytes.length) >>> 0;
      if (ptr === 0 || !this.write(ptr, bytes)) return Status.INVALID_MEMORY_ACCESS;
    }
    this.writeU32(ptrSlot, ptr);
    this.writeU32(sizeSlot, bytes.length);
    return Status.OK;
  }
}
