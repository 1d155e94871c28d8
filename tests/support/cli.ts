/**
 * Run the real netkit CLI as a subprocess, with exactly the permission set the
 * compiled binary gets (`-P=netkit` from deno.json), and wait on its printed
 * `listening on …` lines rather than on sleeps.
 *
 * @example
 * ```ts
 * import { runNetkit, startServer } from "./cli.ts";
 *
 * await using server = await startServer(["--proto", "tcp", "--host", "127.0.0.1"]);
 * const result = await runNetkit(["client", `127.0.0.1:${server.port}`], { stdin: "hi" });
 * ```
 *
 * @module
 */

const ROOT = new URL("../../", import.meta.url);

/**
 * The V8 flags the binary is compiled with (deno.json's compile tasks, and its
 * `netkit` and `demo` tasks): the tests and the bench run netkit with the same,
 * so what they measure is what ships.
 */
export const V8_FLAGS = "--v8-flags=--max-semi-space-size=1";

/**
 * The deno arguments that run netkit as the binary would (see deno.json
 * `permissions.netkit`, and {@linkcode V8_FLAGS}).
 */
export const NETKIT_RUN = ["run", "-q", "--no-prompt", "-P=netkit", V8_FLAGS, "main.ts"];

/** The repository root, where deno.json lives. */
export const ROOT_DIR: string = ROOT.pathname;

/** The ISO 8601 time that starts every server log line, as a regular expression source. */
export const AT = "[\\d-]+T[\\d:.]+Z ";

/** A running `netkit server`. */
export interface RunningServer extends AsyncDisposable {
  /** The port of the first listener (all share it with `--proto both`). */
  port: number;
  /** The `listening on …` lines it printed. */
  lines: string[];
  child: Deno.ChildProcess;
  /** Send a signal and collect the exit status and stderr. */
  stop(signal?: Deno.Signal): Promise<{ code: number; stderr: string }>;
}

/** Options of {@linkcode startServer}. */
export interface StartServerOptions {
  /**
   * How many `listening on` lines to wait for.
   * @default {1} (2 for `--proto both`)
   */
  listeners?: number;
  /**
   * Give up after this long.
   * @default {15000}
   */
  timeoutMs?: number;
  /**
   * Add `--port 0` unless `args` name a port or path; false when `args` give the port as `server PORT`.
   * @default {true}
   */
  addPort?: boolean;
  /**
   * A command that runs the server, e.g. `["ip", "netns", "exec", NS]` (it must exec it, so
   * that the child's pid is the server's).
   * @default {[]} (run directly)
   */
  wrap?: string[];
}

/** Start `netkit server ARGS` and resolve once it printed its `listening on` lines. */
export async function startServer(
  args: string[],
  options: StartServerOptions = {},
): Promise<RunningServer> {
  const wanted = options.listeners ?? (args.includes("both") ? 2 : 1);
  const hasPort = options.addPort === false || args.includes("--port") || args.includes("-p") ||
    args.includes("--path");
  const [command = Deno.execPath(), ...prefix] = options.wrap?.length
    ? [...options.wrap, Deno.execPath()]
    : [];
  const child = new Deno.Command(command, {
    args: [...prefix, ...NETKIT_RUN, "server", ...(hasPort ? [] : ["--port", "0"]), ...args],
    cwd: ROOT_DIR,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderrText = new Response(child.stderr).text();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const lines: string[] = [];
  let pending = "";
  const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 15000);
  try {
    while (lines.length < wanted) {
      const { value, done } = await reader.read();
      if (done) {
        clearTimeout(timer);
        const { code } = await child.status;
        throw new Error(`server exited (${code}) before listening: ${await stderrText}`);
      }
      pending += value;
      let nl;
      while ((nl = pending.indexOf("\n")) >= 0) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        if (line.startsWith("listening on ")) lines.push(line);
      }
    }
  } finally {
    clearTimeout(timer);
  }
  // Keep draining stdout so the server never blocks on it.
  const stdoutDone = (async () => {
    while (!(await reader.read()).done) { /* drain */ }
  })();
  const port = Number(/:(\d+)$/.exec(lines[0] ?? "")?.[1] ?? NaN);
  let stopped: Promise<{ code: number; stderr: string }> | undefined;
  const stop = (signal: Deno.Signal = "SIGTERM") => {
    stopped ??= (async () => {
      try {
        child.kill(signal);
      } catch { /* already exited */ }
      const killer = setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch { /* exited */ }
      }, 10000);
      const { code } = await child.status;
      clearTimeout(killer);
      await stdoutDone;
      return { code, stderr: await stderrText };
    })();
    return stopped;
  };
  return {
    port,
    lines,
    child,
    stop,
    async [Symbol.asyncDispose]() {
      await stop();
    },
  };
}

/** What a finished netkit run printed. */
export interface RunResult {
  code: number;
  stdout: Uint8Array;
  stderr: string;
  /** `stdout` decoded as UTF-8. */
  text: string;
}

/** Options of {@linkcode runNetkit}. */
export interface RunNetkitOptions {
  /**
   * What to feed on stdin: text, bytes, or a file path as `{ file }`.
   * @default {null stdin}
   */
  stdin?: string | Uint8Array | { file: string };
  /**
   * Kill the run after this long (the test then fails on its exit code).
   * @default {30000}
   */
  timeoutMs?: number;
  /**
   * Exactly this environment (nothing inherited), e.g. to leave NO_COLOR out.
   * @default {the test's own environment}
   */
  env?: Record<string, string>;
  /**
   * A command that runs netkit, e.g. `["ip", "netns", "exec", NS]`.
   * @default {[]} (run directly)
   */
  wrap?: string[];
  /**
   * Send SIGINT (Ctrl-C) once this settles, e.g. when the run is known to be under way.
   * @default {undefined} (never)
   */
  interruptWhen?: Promise<unknown>;
}

/** Run `netkit ARGS` to completion. */
export async function runNetkit(
  args: string[],
  options: RunNetkitOptions = {},
): Promise<RunResult> {
  const stdin = options.stdin;
  const [command = Deno.execPath(), ...prefix] = options.wrap?.length
    ? [...options.wrap, Deno.execPath()]
    : [];
  const child = new Deno.Command(command, {
    args: [...prefix, ...NETKIT_RUN, ...args],
    cwd: ROOT_DIR,
    ...(options.env && { clearEnv: true, env: options.env }),
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch { /* exited */ }
  }, options.timeoutMs ?? 30000);
  let exited = false;
  options.interruptWhen?.finally(() => {
    if (exited) return;
    try {
      child.kill("SIGINT");
    } catch { /* exited */ }
  }).catch(() => {});
  const feed = (async () => {
    if (stdin === undefined) return;
    if (typeof stdin === "object" && "file" in stdin) {
      const file = await Deno.open(stdin.file);
      await file.readable.pipeTo(child.stdin); // closes the file too
    } else {
      const writer = child.stdin.getWriter();
      await writer.write(typeof stdin === "string" ? new TextEncoder().encode(stdin) : stdin);
      await writer.close();
    }
  })();
  try {
    const [{ code, stdout, stderr }] = await Promise.all([child.output(), feed.catch(() => {})]);
    return {
      code,
      stdout,
      stderr: new TextDecoder().decode(stderr),
      text: new TextDecoder().decode(stdout),
    };
  } finally {
    exited = true;
    clearTimeout(timer);
  }
}

/** Whether a program is on PATH. */
export function hasCommand(name: string): boolean {
  try {
    return new Deno.Command("sh", {
      args: ["-c", `command -v ${name}`],
      stdout: "null",
      stderr: "null",
    })
      .outputSync().success;
  } catch {
    return false;
  }
}

/**
 * Whether a test that needs `peers` should be skipped: only where one is
 * missing and `NETKIT_REQUIRE_PEERS` is unset. CI sets it, so there a missing
 * peer fails the test instead of skipping it.
 */
export function skipWithout(...peers: string[]): boolean {
  const missing = peers.filter((p) => !hasCommand(p));
  if (missing.length === 0) return false;
  if (Deno.env.get("NETKIT_REQUIRE_PEERS") === "1") return false; // the test runs and fails
  console.warn(`skipping: ${missing.join(", ")} not installed`);
  return true;
}
