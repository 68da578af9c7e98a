/**
 * Child processes of the harness and what `/proc` says about them.
 *
 * Invariants:
 * - Every process started here is in one registry until it has exited; {@link stopAll} ends
 *   them all (SIGTERM, then SIGKILL after a grace period), and `run.ts` calls it in `finally`
 *   and on SIGINT/SIGTERM, so an error never leaves a proxy running. Once {@link shutDown} has
 *   been called no new process starts, so a scenario still unwinding cannot leave one behind.
 * - Stopping a process also signals its children (by pid, from `/proc`): a load tool runs under
 *   `sh`, and a signal to the shell alone would leave the tool running.
 * - A child's stdout and stderr are always read, so a chatty child never blocks on a full pipe;
 *   the last lines are kept to explain a failure.
 */

const TAIL_LINES = 40;

/** How to start a child. */
export interface SpawnOptions {
  readonly env?: Record<string, string>;
  /** Keep stdin open for {@link Proc.send}. @default false */
  readonly stdin?: boolean;
  /** How many of its last output lines {@link Proc.tail} keeps. @default 40 */
  readonly tailLines?: number;
  /** Called with each line it writes (stdout and stderr) as it comes. */
  readonly onLine?: (line: string) => void;
}

/** A running child process of the harness. */
export class Proc {
  readonly name: string;
  readonly pid: number;
  /** Resolves with the exit status once the process has ended. */
  readonly exited: Promise<Deno.CommandStatus>;
  #child: Deno.ChildProcess;
  #tail: string[] = [];
  #lines: string[] = [];
  #waiters: (() => void)[] = [];
  #stdin?: WritableStreamDefaultWriter<Uint8Array>;
  #done = false;
  #tailLines: number;
  #onLine?: (line: string) => void;

  constructor(name: string, command: string, args: readonly string[], options: SpawnOptions = {}) {
    if (closing) throw new Error(`Not starting ${name}: the harness is stopping`);
    this.name = name;
    this.#tailLines = options.tailLines ?? TAIL_LINES;
    this.#onLine = options.onLine;
    this.#child = new Deno.Command(command, {
      args: [...args],
      env: options.env,
      stdin: options.stdin ? "piped" : "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.pid = this.#child.pid;
    if (options.stdin) this.#stdin = this.#child.stdin.getWriter();
    live.add(this);
    const reading = Promise.all([
      this.#read(this.#child.stdout, true),
      this.#read(this.#child.stderr, false),
    ]);
    this.exited = this.#child.status.then(async (status) => {
      await reading.catch(() => {});
      this.#done = true;
      live.delete(this);
      this.#wake();
      return status;
    });
  }

  /** The last lines the process wrote, stdout and stderr interleaved. */
  get tail(): string {
    return this.#tail.join("\n");
  }

  /** Whether the process has ended. */
  get done(): boolean {
    return this.#done;
  }

  /**
   * Waits for the next stdout line that is a JSON object with `event` equal to `name`.
   *
   * @param name Event name written by the child
   * @param timeoutMs Upper bound on the wait
   * @returns The parsed object
   * @throws Error when the process ends or the wait times out first, with its last lines
   */
  async event<T = Record<string, unknown>>(name: string, timeoutMs: number): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      while (this.#lines.length > 0) {
        const line = this.#lines.shift()!;
        const parsed = parseEvent(line);
        if (parsed?.event === name) return parsed as T;
      }
      if (this.#done) throw this.failure(`ended before "${name}"`);
      const left = deadline - Date.now();
      if (left <= 0) throw this.failure(`no "${name}" within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Writes a line to the child's stdin. */
  async send(line: string): Promise<void> {
    await this.#stdin?.write(new TextEncoder().encode(line + "\n"));
  }

  /** An error naming this process, the problem and its last output lines. */
  failure(problem: string): Error {
    return new Error(
      `Process ${this.name} (pid ${this.pid}) ${problem}; last output:\n${this.tail}`,
    );
  }

  /**
   * Ends the process: SIGTERM, then SIGKILL if it is still running after `graceMs`.
   *
   * @param graceMs How long SIGTERM gets
   * @returns The exit status
   */
  async stop(graceMs = 3_000): Promise<Deno.CommandStatus> {
    await this.#stdin?.close().catch(() => {});
    const children = childrenOf(this.pid);
    if (!this.#done) signal(this.#child, "SIGTERM");
    for (const pid of children) killPid(pid, "SIGTERM");
    let timer: ReturnType<typeof setTimeout> | undefined;
    const killed = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        if (!this.#done) signal(this.#child, "SIGKILL");
        for (const pid of children) killPid(pid, "SIGKILL");
        resolve();
      }, graceMs);
    });
    await Promise.race([this.exited, killed]);
    clearTimeout(timer);
    return await this.exited;
  }

  async #read(stream: ReadableStream<Uint8Array>, events: boolean): Promise<void> {
    let rest = "";
    for await (const text of stream.pipeThrough(new TextDecoderStream())) {
      const parts = (rest + text).split("\n");
      rest = parts.pop()!;
      for (const line of parts) this.#keep(line, events);
    }
    if (rest) this.#keep(rest, events);
  }

  #keep(line: string, events: boolean): void {
    this.#onLine?.(line);
    this.#tail.push(line);
    if (this.#tail.length > this.#tailLines) this.#tail.shift();
    if (/"level":"(warn|error)"/.test(line)) warnings.set(this.name, this.warnings + 1);
    if (events && line.startsWith("{")) {
      this.#lines.push(line);
      this.#wake();
    }
  }

  /** Warn and error log lines written so far. */
  get warnings(): number {
    return warnings.get(this.name) ?? 0;
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }
}

const live = new Set<Proc>();
const warnings = new Map<string, number>();
let closing = false;

/** Stops every process the harness started that is still running. */
export async function stopAll(graceMs = 3_000): Promise<void> {
  while (live.size > 0) await Promise.all([...live].map((p) => p.stop(graceMs)));
}

/** From now on no process starts ({@link Proc}'s constructor throws); then {@link stopAll}. */
export async function shutDown(graceMs = 3_000): Promise<void> {
  closing = true;
  await stopAll(graceMs);
}

function signal(child: Deno.ChildProcess, sig: Deno.Signal): void {
  try {
    child.kill(sig);
  } catch {
    // Already gone.
  }
}

function killPid(pid: number, sig: Deno.Signal): void {
  try {
    Deno.kill(pid, sig);
  } catch {
    // Already gone.
  }
}

/** The direct children of a process, from every thread's `/proc/<pid>/task/<tid>/children`. */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  try {
    for (const t of Deno.readDirSync(`/proc/${pid}/task`)) {
      const text = Deno.readTextFileSync(`/proc/${pid}/task/${t.name}/children`);
      for (const c of text.trim().split(/\s+/)) if (c) out.push(Number(c));
    }
  } catch {
    // Gone, or no /proc: nothing to add.
  }
  return out;
}

function parseEvent(line: string): Record<string, unknown> | undefined {
  try {
    const v = JSON.parse(line);
    return v && typeof v === "object" ? v : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Runs a command to its end and returns its stdout; for short tools (`git`, `getconf`).
 *
 * @returns Trimmed stdout, or undefined when the command is missing or fails
 */
export async function output(
  command: string,
  args: readonly string[],
): Promise<string | undefined> {
  try {
    const r = await new Deno.Command(command, { args: [...args], stderr: "null" }).output();
    return r.success ? new TextDecoder().decode(r.stdout).trim() : undefined;
  } catch {
    return undefined;
  }
}

/** Whether a program is on PATH. */
export async function hasProgram(name: string): Promise<boolean> {
  return (await output("sh", ["-c", `command -v ${name}`])) !== undefined;
}

/**
 * Waits until a TCP connect to the address succeeds.
 *
 * @param proc The process that should be listening, checked for an early exit
 * @throws Error with the process's last lines when it exits or the wait times out
 */
export async function waitListening(
  proc: Proc,
  hostname: string,
  port: number,
  timeoutMs = 30_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (proc.done) throw proc.failure(`exited before listening on ${hostname}:${port}`);
    try {
      const conn = await Deno.connect({ hostname, port });
      conn.close();
      return;
    } catch {
      if (Date.now() > deadline) {
        throw proc.failure(`is not listening on ${hostname}:${port} after ${timeoutMs} ms`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/**
 * Fails with a clear message when something already listens on the address (another bench run,
 * or a leftover process).
 */
export async function assertFree(hostname: string, port: number): Promise<void> {
  try {
    const conn = await Deno.connect({ hostname, port });
    conn.close();
  } catch {
    return;
  }
  throw new Error(`Address ${hostname}:${port} is in use: is another bench run going on?`);
}
