/**
 * Immutability for snapshots: a read-only map that has no mutators at run time (a frozen `Map`
 * still accepts `set`), and a deep freeze for plain objects and arrays.
 */

/** A map with only the {@link ReadonlyMap} methods; the backing map is private. */
export class FrozenMap<K, V> implements ReadonlyMap<K, V> {
  readonly #map: Map<K, V>;

  /** Copies the entries; later changes to the source do not show. */
  constructor(entries: Iterable<readonly [K, V]> = []) {
    this.#map = new Map(entries);
    Object.freeze(this);
  }

  get size(): number {
    return this.#map.size;
  }

  get(key: K): V | undefined {
    return this.#map.get(key);
  }

  has(key: K): boolean {
    return this.#map.has(key);
  }

  forEach(callback: (value: V, key: K, map: ReadonlyMap<K, V>) => void, thisArg?: unknown): void {
    this.#map.forEach((value, key) => callback.call(thisArg, value, key, this));
  }

  entries(): MapIterator<[K, V]> {
    return this.#map.entries();
  }

  keys(): MapIterator<K> {
    return this.#map.keys();
  }

  values(): MapIterator<V> {
    return this.#map.values();
  }

  [Symbol.iterator](): MapIterator<[K, V]> {
    return this.#map[Symbol.iterator]();
  }
}

/**
 * Freezes a value and everything reachable from it through own properties, array items and
 * {@link FrozenMap} values.
 *
 * @returns The same value, now frozen
 */
export function deepFreeze<T>(value: T): T {
  if (
    typeof value !== "object" || value === null ||
    Object.isFrozen(value) && !(value instanceof FrozenMap)
  ) {
    return value;
  }
  if (value instanceof FrozenMap) {
    for (const item of value.values()) deepFreeze(item);
    return value;
  }
  Object.freeze(value);
  for (const item of Object.values(value)) deepFreeze(item);
  return value;
}
