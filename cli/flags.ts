/** Small helpers for command-line flags shared by the commands. */
import { parseArgs, type ParseArgsConfig } from "node:util";
import { type HostPort, parseHostPort as parseAddress } from "../admin/mod.ts";

export type { HostPort };

/** Thrown for flags a user got wrong; `main.ts` prints it with the usage and exits 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/**
 * Parses a `host:port` or `[v6]:port` flag value.
 *
 * @param flag The flag name, for the message
 * @param text The value given
 * @throws UsageError when it is not an address with a port
 */
export function parseHostPort(flag: string, text: string): HostPort {
  try {
    return parseAddress(text);
  } catch (e) {
    throw new UsageError(`--${flag}: ${(e as Error).message}`);
  }
}

/**
 * Parses flags strictly, turning Node's errors into {@link UsageError}.
 *
 * @param args The arguments after the command words
 * @param options The flag table
 */
export function parseFlags<T extends ParseArgsConfig["options"]>(
  args: string[],
  options: T,
): ReturnType<
  typeof parseArgs<{ args: string[]; options: T; strict: true; allowPositionals: false }>
>["values"] {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: false }).values;
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

/** Reads a required flag. @throws UsageError when absent */
export function required<T>(flag: string, value: T | undefined): T {
  if (value === undefined || value === "") throw new UsageError(`--${flag} is required`);
  return value;
}
