/**
 * CEL's operations on values at evaluation: type checks, equality, ordering, `in`, arithmetic and
 * conversions. A mismatch throws {@link EvalError}, which the program turns into the unknown value.
 */

import type { CelMap } from "./attributes.ts";
import { EvalError } from "./errors.ts";

export function isMap(v: unknown): v is CelMap {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Date) &&
    typeof (v as CelMap).get === "function";
}

export function asBool(v: unknown): boolean {
  if (typeof v !== "boolean") throw new EvalError("Not a bool");
  return v;
}

export function asNumber(v: unknown): number {
  if (typeof v !== "number") throw new EvalError("Not a number");
  return v;
}

export function asText(v: unknown): string {
  if (typeof v !== "string") throw new EvalError("Not a string");
  return v;
}

export function equals(x: unknown, y: unknown): boolean {
  if (typeof x !== typeof y && !(x === null || y === null)) {
    throw new EvalError("No matching overload for ==");
  }
  return x === y;
}

export function compare(x: unknown, y: unknown): number {
  if (typeof x === "number" && typeof y === "number") return x - y;
  if (typeof x === "string" && typeof y === "string") return x < y ? -1 : x > y ? 1 : 0;
  throw new EvalError("No matching overload for comparison");
}

export function contains(container: unknown, item: unknown): boolean {
  if (Array.isArray(container)) return container.some((v) => v === item);
  if (isMap(container)) return container.get(asText(item).toLowerCase()) !== undefined;
  throw new EvalError("No matching overload for in");
}

export function plus(x: unknown, y: unknown): unknown {
  if (typeof x === "string" && typeof y === "string") return x + y;
  return asNumber(x) + asNumber(y);
}

export function arithmetic(op: string, x: number, y: number): number {
  if ((op === "/" || op === "%") && y === 0) throw new EvalError("Division by zero");
  if (op === "-") return x - y;
  if (op === "*") return x * y;
  if (op === "/") return Math.trunc(x / y);
  return x % y;
}

export function sizeOf(v: unknown): number {
  if (typeof v === "string") return [...v].length;
  if (Array.isArray(v)) return v.length;
  throw new EvalError("No matching overload for size");
}

export function toText(v: unknown): string {
  if (typeof v === "string") return v;
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  if (v instanceof Date) return v.toISOString();
  throw new EvalError("No matching overload for string");
}

export function toInt(v: unknown): number {
  if (typeof v === "number") return Math.trunc(v);
  if (typeof v === "string" && /^-?[0-9]+$/.test(v.trim())) return Number(v.trim());
  if (v instanceof Date) return Math.floor(v.getTime() / 1000);
  throw new EvalError("No matching overload for int");
}
