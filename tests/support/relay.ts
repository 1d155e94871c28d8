/**
 * Run `netkit relay` as a subprocess (the real CLI, with the binary's
 * permissions), wait for its `listening on … -> …` line (stdout, or stderr
 * with `--json`), and stop it with a signal to collect its counters.
 *
 * @example
 * ```ts
 * import { startRelay } from "./relay.ts";
 *
 * await using relay = await startRelay(["tcp:127.0.0.1:0", "tcp:127.0.0.1:5050"]);
 * // connect to relay.port …
 * const { code, stderr } = await relay.stop();
 * ```
 *
 * @module
 */

import { NETKIT_RUN, ROOT_DIR } from "./cli.ts";

/** A running relay. */
export interface RunningRelay extends AsyncDisposable {
  /** The port it listens on (NaN for a Unix socket). */
  port: number;
  /** Its `listening on` line. */
  line: string;
  pid: number;
  /** Stderr so far. */
  stderr(): string;
  /** SIGTERM (or `signal`) it and collect its exit code and output. Idempotent. */
  stop(signal?: Deno.Signal): Promise<{ code: number; stdout: string; stderr: string }>;
}

/** Start `netkit relay ARGS`; `prefix` runs it under another program (e.g. `ip netns exec`). */
export async function startRelay(
  args: string[],
  options: { timeoutMs?: number; prefix?: string[] } = {},
): Promise<RunningRelay> {
  const prefix = options.prefix ?? [];
  const command = prefix.length > 0 ? prefix[0]! : Deno.execPath();
  const fullArgs = prefix.length > 0
    ? [...prefix.slice(1), Deno.execPath(), ...NETKIT_RUN, "relay", ...args]
    : [...NETKIT_RUN, "relay", ...args];
  const child = new Deno.Command(command, {
    args: fullArgs,
    cwd: ROOT_DIR,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let out = "";
  let err = "";
  let notify: (() => void) | undefined;
  const collect = async (stream: ReadableStream<Uint8Array>, into: (s: string) => void) => {
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      into(chunk);
      notify?.();
    }
  };
  const outDone = collect(child.stdout, (s) => (out += s));
  const errDone = collect(child.stderr, (s) => (err += s));
  const exited = child.status.then(() => notify?.());
  const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 15000);
  let line: string | undefined;
  try {
    for (;;) {
      line = `${out}\n${err}`.split("\n").find((l) => l.startsWith("listening on "));
      if (line !== undefined) break;
      const status = await Promise.race([
        new Promise<"more">((resolve) => (notify = () => resolve("more"))),
        exited.then(() => "exited" as const),
      ]);
      if (status === "exited") {
        await Promise.all([outDone, errDone]);
        line = `${out}\n${err}`.split("\n").find((l) => l.startsWith("listening on "));
        if (line !== undefined) break;
        throw new Error(`relay exited before listening: ${err}`);
      }
    }
  } finally {
    clearTimeout(timer);
    notify = undefined;
  }
  const port = Number(/:(\d+) ->/.exec(line)?.[1] ?? NaN);
  let stopped: Promise<{ code: number; stdout: string; stderr: string }> | undefined;
  const stop = (signal: Deno.Signal = "SIGTERM") => {
    stopped ??= (async () => {
      try {
        child.kill(signal);
      } catch { /* exited */ }
      const killer = setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch { /* exited */ }
      }, 10000);
      const { code } = await child.status;
      clearTimeout(killer);
      await Promise.all([outDone, errDone]);
      return { code, stdout: out, stderr: err };
    })();
    return stopped;
  };
  return {
    port,
    line,
    pid: child.pid,
    stderr: () => err,
    stop,
    async [Symbol.asyncDispose]() {
      await stop();
    },
  };
}
