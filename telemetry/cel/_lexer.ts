/**
 * Turns CEL text into tokens: numbers, strings (with escapes, and raw strings), identifiers and
 * operators, each with its offset for error messages.
 */

import { CelError } from "./errors.ts";

export type Token =
  | { kind: "num"; value: number; at: number }
  | { kind: "str"; value: string; at: number }
  | { kind: "id"; value: string; at: number }
  | { kind: "op"; value: string; at: number }
  | { kind: "end"; at: number };

const OPS = [
  "&&",
  "||",
  "==",
  "!=",
  "<=",
  ">=",
  "<",
  ">",
  "!",
  "?",
  ":",
  ".",
  ",",
  "(",
  ")",
  "[",
  "]",
  "+",
  "-",
  "*",
  "/",
  "%",
];

export function tokenize(src: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i];
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    const at = i;
    if (/[0-9]/.test(c)) {
      const m = /^(0x[0-9a-fA-F]+|[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?)[uU]?/.exec(src.slice(i))!;
      out.push({ kind: "num", value: Number(m[1]), at });
      i += m[0].length;
      continue;
    }
    if (/[A-Za-z_]/.test(c)) {
      const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(src.slice(i))!;
      const raw = (m[0] === "r" || m[0] === "R") && (src[i + 1] === "'" || src[i + 1] === '"');
      if (raw) {
        const [value, next] = readString(src, i + 1, true);
        out.push({ kind: "str", value, at });
        i = next;
        continue;
      }
      out.push({ kind: "id", value: m[0], at });
      i += m[0].length;
      continue;
    }
    if (c === "'" || c === '"') {
      const [value, next] = readString(src, i, false);
      out.push({ kind: "str", value, at });
      i = next;
      continue;
    }
    const op = OPS.find((o) => src.startsWith(o, i));
    if (!op) throw new CelError(`Unexpected character "${c}"`, at);
    out.push({ kind: "op", value: op, at });
    i += op.length;
  }
  out.push({ kind: "end", at: src.length });
  return out;
}

const ESCAPES: Record<string, string> = {
  n: "\n",
  t: "\t",
  r: "\r",
  "\\": "\\",
  "'": "'",
  '"': '"',
  "`": "`",
  "?": "?",
  a: "\x07",
  b: "\b",
  f: "\f",
  v: "\v",
};

function readString(src: string, start: number, raw: boolean): [string, number] {
  const quote = src[start];
  let i = start + 1;
  let out = "";
  while (i < src.length && src[i] !== quote) {
    if (src[i] === "\n") throw new CelError("Line break inside a string literal", i);
    if (src[i] === "\\" && !raw) {
      const e = ESCAPES[src[i + 1]];
      if (e === undefined) throw new CelError(`Unsupported escape "\\${src[i + 1]}"`, i);
      out += e;
      i += 2;
      continue;
    }
    out += src[i++];
  }
  if (i >= src.length) throw new CelError("Unterminated string literal", start);
  return [out, i + 1];
}

/** A token as an error message quotes it. */
export function tokenText(t: Token): string {
  return t.kind === "end" ? "end of expression" : String(t.value);
}
