/**
 * Structured logging: one JSON object a line, with a level, written through a bounded buffer.
 *
 * Invariants:
 * - Logging never blocks the caller: lines queue in memory and a background writer drains them.
 * - The queue holds at most {@link LoggerOptions.maxQueued} lines; past that lines are dropped and
 *   counted, and the count is reported in the next line written.
 */

/** Severity of a log line, lowest first. */
export type Level = "debug" | "info" | "warn" | "error";

const RANK: Record<Level, number> = { debug: 0, info: 1, warn: 2, error: 3 };

/** Fields attached to one log line. Values must be JSON-serializable. */
export type Fields = Record<string, unknown>;

/** Where lines go; tests pass their own. */
export interface Sink {
  write(chunk: Uint8Array): Promise<number>;
}

/** Options for {@link Logger}. */
export interface LoggerOptions {
  /** Lowest level written. @default "info" */
  level?: Level;
  /** Lines held while the sink is busy before dropping. @default 10000 */
  maxQueued?: number;
  /** Destination. @default Deno.stdout */
  sink?: Sink;
}

/** A leveled JSON-lines logger with a bounded, non-blocking queue. */
export class Logger {
  #min: number;
  #maxQueued: number;
  #sink: Sink;
  #queue: string[] = [];
  #dropped = 0;
  #flushing = false;
  #encoder = new TextEncoder();

  constructor(options: LoggerOptions = {}) {
    this.#min = RANK[options.level ?? "info"];
    this.#maxQueued = options.maxQueued ?? 10_000;
    this.#sink = options.sink ?? Deno.stdout;
  }

  /** Changes the lowest level written. */
  setLevel(level: Level): void {
    this.#min = RANK[level];
  }

  /** Sends later lines elsewhere (a command whose stdout is its report logs to stderr). */
  setSink(sink: Sink): void {
    this.#sink = sink;
  }

  /** Whether a line at this level would be written; guards costly field building. */
  enabled(level: Level): boolean {
    return RANK[level] >= this.#min;
  }

  /** Lines dropped so far because the queue was full. */
  get dropped(): number {
    return this.#dropped;
  }

  debug(msg: string, fields?: Fields): void {
    this.log("debug", msg, fields);
  }
  info(msg: string, fields?: Fields): void {
    this.log("info", msg, fields);
  }
  warn(msg: string, fields?: Fields): void {
    this.log("warn", msg, fields);
  }
  error(msg: string, fields?: Fields): void {
    this.log("error", msg, fields);
  }

  /** Queues one line if its level is enabled. */
  log(level: Level, msg: string, fields?: Fields): void {
    if (RANK[level] < this.#min) return;
    if (this.#queue.length >= this.#maxQueued) {
      this.#dropped++;
      return;
    }
    const line: Fields = { time: new Date().toISOString(), level, msg, ...fields };
    this.#queue.push(JSON.stringify(line, errorReplacer));
    if (!this.#flushing) this.#flush();
  }

  /** Resolves once every queued line has been handed to the sink. */
  async drain(): Promise<void> {
    while (this.#flushing || this.#queue.length > 0) {
      await new Promise((r) => setTimeout(r, 1));
    }
  }

  async #flush(): Promise<void> {
    this.#flushing = true;
    try {
      while (this.#queue.length > 0) {
        if (this.#dropped > 0) {
          this.#queue.push(
            JSON.stringify({ level: "warn", msg: "Log lines dropped", dropped: this.#dropped }),
          );
          this.#dropped = 0;
        }
        const text = this.#queue.join("\n") + "\n";
        this.#queue = [];
        const bytes = this.#encoder.encode(text);
        let off = 0;
        while (off < bytes.length) off += await this.#sink.write(bytes.subarray(off));
      }
    } catch {
      // A closed stdout must not take the proxy down; logs are best effort.
      this.#queue = [];
    } finally {
      this.#flushing = false;
    }
  }
}

function errorReplacer(_key: string, value: unknown): unknown {
  if (value instanceof Error) return value.message;
  if (typeof value === "bigint") return value.toString();
  return value;
}
