/**
 * Run third-party network tools (nc, ncat, socat) as peers of netkit in tests:
 * spawn them bounded in time, feed their stdin, collect their stdout, and wait
 * for their listeners without sleeps (retried connects, `/proc/net` polling,
 * retried UDP probes).
 *
 * Every peer runs in its own process group (through `setsid` where it exists)
 * so that stopping it also stops what it forked (socat `fork`, ncat `--exec`).
 *
 * @example
 * ```ts
 * import { freePort, spawnPeer, waitForTcp } from "./peers.ts";
 *
 * const port = freePort("tcp", "127.0.0.1");
 * await using peer = spawnPeer("socat", [`TCP-LISTEN:${port},bind=127.0.0.1,fork`, "PIPE"]);
 * await waitForTcp("127.0.0.1", port, { peer });
 * ```
 *
 * @module
 */

// node: because getRandomValues fills at most 64 KiB a call, and a synchronous SHA-256 is needed.
import { createHash, randomBytes as nodeRandomBytes } from "node:crypto";
import { delay } from "@std/async/delay";
import { hasCommand } from "./cli.ts";

/** How a finished peer ended and what it printed. */
export interface PeerResult {
  code: number;
  signal: Deno.Signal | null;
  stdout: Uint8Array;
  stderr: string;
}

/** A running peer process. Disposing it stops it. */
export interface Peer extends AsyncDisposable {
  /** The command line, for messages. */
  readonly name: string;
  readonly pid: number;
  /** Whether the process has exited. */
  readonly exited: boolean;
  /** Queue bytes for stdin (needs `stdin: "piped"`); rejects if the peer stopped reading. */
  write(data: Uint8Array | string): Promise<void>;
  /** Close stdin after everything queued so far. */
  closeStdin(): Promise<void>;
  /** Stdout received so far. */
  output(): Uint8Array;
  /** Stderr received so far. */
  errors(): string;
  /** Resolve with stdout once it holds at least `bytes` bytes; reject after `timeoutMs` or at EOF. */
  waitForOutput(bytes: number, timeoutMs: number): Promise<Uint8Array>;
  /** Wait for the peer to exit by itself (its hard deadline still applies), then collect. */
  wait(): Promise<PeerResult>;
  /** Close stdin, SIGTERM (then SIGKILL) the process group, and collect. Idempotent. */
  stop(): Promise<PeerResult>;
}

/** Options of {@linkcode spawnPeer}. */
export interface SpawnPeerOptions {
  /**
   * `"piped"` to write to the peer's stdin.
   * @default {"null"}
   */
  stdin?: "piped" | "null";
  /**
   * Hard deadline: the process group is killed this long after the start.
   * @default {10000}
   */
  timeoutMs?: number;
  /**
   * The working directory (netkit itself runs from the repository's root).
   * @default {undefined} (the test's)
   */
  cwd?: string;
}

/** How long a stopped peer gets between SIGTERM and SIGKILL, and its pipes to reach EOF. */
const GRACE_MS = 2000;

const USE_SETSID = Deno.build.os === "linux" && hasCommand("setsid");

/** Start `command args` as a peer. */
export function spawnPeer(
  command: string,
  args: readonly string[],
  options: SpawnPeerOptions = {},
): Peer {
  const name = [command, ...args].join(" ");
  const piped = options.stdin === "piped";
  const child = new Deno.Command(USE_SETSID ? "setsid" : command, {
    args: USE_SETSID ? [command, ...args] : [...args],
    ...(options.cwd && { cwd: options.cwd }),
    stdin: piped ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });
  const signal = (sig: Deno.Signal) => {
    if (USE_SETSID) {
      try {
        // setsid made the peer a process group leader: signal the whole group.
        Deno.kill(-child.pid, sig);
        return;
      } catch {
        // No such group: gone, or setsid has not called setsid(2) yet (nothing forked then).
      }
    }
    try {
      if (!exited) child.kill(sig);
    } catch { /* already gone */ }
  };
  const deadline = setTimeout(() => signal("SIGKILL"), options.timeoutMs ?? 10000);

  // Stdout: collected as it arrives, with a wake-up for waitForOutput.
  const chunks: Uint8Array[] = [];
  let received = 0;
  let stdoutEnded = false;
  let wake: (() => void) | undefined;
  const stdoutReader = child.stdout.getReader();
  const stdoutDone = (async () => {
    try {
      for (;;) {
        const { value, done } = await stdoutReader.read();
        if (done) break;
        chunks.push(value);
        received += value.length;
        wake?.();
      }
    } catch {
      /* cancelled */
    } finally {
      stdoutEnded = true;
      wake?.();
    }
  })();
  let stderrText = "";
  const stderrReader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  const stderrDone = (async () => {
    try {
      for (;;) {
        const { value, done } = await stderrReader.read();
        if (done) break;
        stderrText += value;
      }
    } catch { /* cancelled */ }
  })();

  const writer = piped ? child.stdin.getWriter() : undefined;
  let stdinChain: Promise<void> = Promise.resolve();
  let stdinClosed = !piped;
  const enqueue = (op: (w: WritableStreamDefaultWriter<Uint8Array>) => Promise<void>) => {
    if (!writer) return Promise.reject(new Error(`${name}: stdin is not piped`));
    const next = stdinChain.then(() => op(writer));
    stdinChain = next.catch(() => {});
    return next;
  };

  const output = () => {
    const all = new Uint8Array(received);
    let offset = 0;
    for (const chunk of chunks) {
      all.set(chunk, offset);
      offset += chunk.length;
    }
    return all;
  };

  let finished: Promise<PeerResult> | undefined;
  const finish = (stopFirst: boolean) => {
    finished ??= (async () => {
      if (stopFirst) {
        if (writer && !stdinClosed) {
          stdinClosed = true;
          writer.abort().catch(() => {});
        }
        signal("SIGTERM");
      }
      const killer = setTimeout(() => signal("SIGKILL"), GRACE_MS);
      const { code, signal: sig } = await status;
      clearTimeout(killer);
      clearTimeout(deadline);
      // Whatever it forked and left behind goes too.
      signal("SIGKILL");
      if (writer && !stdinClosed) {
        stdinClosed = true;
        await writer.abort().catch(() => {});
      }
      await stdinChain;
      // A pipe held open by a stray grandchild must not hang the test.
      const cancel = setTimeout(() => {
        stdoutReader.cancel().catch(() => {});
        stderrReader.cancel().catch(() => {});
      }, GRACE_MS);
      await Promise.all([stdoutDone, stderrDone]);
      clearTimeout(cancel);
      return { code, signal: sig, stdout: output(), stderr: stderrText };
    })();
    return finished;
  };

  return {
    name,
    pid: child.pid,
    get exited() {
      return exited;
    },
    write(data) {
      const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
      return enqueue((w) => w.write(bytes));
    },
    closeStdin() {
      return enqueue(async (w) => {
        if (stdinClosed) return;
        stdinClosed = true;
        await w.close();
      });
    },
    output,
    errors: () => stderrText,
    async waitForOutput(bytes, timeoutMs) {
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        wake?.();
      }, timeoutMs);
      try {
        while (received < bytes) {
          if (timedOut || stdoutEnded) {
            throw new Error(
              `${name}: ${received} of ${bytes} bytes on stdout ` +
                `${stdoutEnded ? "before EOF" : `after ${timeoutMs} ms`}; stderr: ${stderrText}`,
            );
          }
          await new Promise<void>((resolve) => (wake = resolve));
        }
        return output();
      } finally {
        wake = undefined;
        clearTimeout(timer);
      }
    },
    wait: () => finish(false),
    stop: () => finish(true),
    async [Symbol.asyncDispose]() {
      await finish(true);
    },
  };
}

/**
 * A port that was free a moment ago on `hostname`, for a peer that cannot
 * report the port it bound. (Another process may take it in between; see
 * {@linkcode startOnFreePort}.)
 */
export function freePort(transport: "tcp" | "udp", hostname: string): number {
  if (transport === "tcp") {
    using listener = Deno.listen({ transport: "tcp", hostname, port: 0 });
    return listener.addr.port;
  }
  const socket = Deno.listenDatagram({ transport: "udp", hostname, port: 0 });
  try {
    return (socket.addr as Deno.NetAddr).port;
  } finally {
    socket.close();
  }
}

/** Whether `::1` can be bound here (IPv6 may be off in containers). */
export function hasIpv6Loopback(): boolean {
  try {
    Deno.listen({ transport: "tcp", hostname: "::1", port: 0 }).close();
    return true;
  } catch {
    return false;
  }
}

/** Options of the `waitFor…` helpers. */
export interface WaitOptions {
  /**
   * Give up after this long.
   * @default {5000}
   */
  timeoutMs?: number;
  /** Fail at once if this peer exits while we wait. */
  peer?: Peer;
}

/** Retry `attempt` with a growing backoff until it returns true, the deadline passes, or the peer exits. */
async function retry(
  what: string,
  options: WaitOptions,
  attempt: () => Promise<boolean>,
): Promise<void> {
  const timeoutMs = options.timeoutMs ?? 5000;
  const until = performance.now() + timeoutMs;
  let pause = 5;
  let lastError: unknown;
  for (;;) {
    if (options.peer?.exited) {
      throw new Error(
        `${options.peer.name} exited while waiting for ${what}: ${options.peer.errors()}`,
      );
    }
    try {
      if (await attempt()) return;
    } catch (err) {
      lastError = err;
    }
    if (performance.now() >= until) {
      throw new Error(`${what} not ready after ${timeoutMs} ms (${lastError ?? "no answer"})`);
    }
    await delay(pause); // the backoff between retried attempts
    pause = Math.min(pause * 2, 100);
  }
}

/**
 * Wait until a TCP connect to `hostname:port` succeeds, and close that probe
 * connection. Not for one-shot listeners (the probe would use them up): see
 * {@linkcode waitForTcpListener}.
 */
export function waitForTcp(
  hostname: string,
  port: number,
  options: WaitOptions = {},
): Promise<void> {
  return retry(`tcp ${hostname}:${port}`, options, async () => {
    const conn = await Deno.connect({ transport: "tcp", hostname, port });
    conn.close();
    return true;
  });
}

/**
 * Wait until the kernel lists a TCP socket listening on `port` (Linux
 * `/proc/net/tcp` and `tcp6`), without connecting to it.
 */
export function waitForTcpListener(port: number, options: WaitOptions = {}): Promise<void> {
  const hex = port.toString(16).toUpperCase().padStart(4, "0");
  return retry(`tcp listener on port ${port}`, options, async () => {
    for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
      let text: string;
      try {
        text = await Deno.readTextFile(table);
      } catch {
        continue; // no IPv6
      }
      for (const line of text.split("\n").slice(1)) {
        const [, local, , state] = line.trim().split(/\s+/);
        if (state === "0A" && local?.endsWith(`:${hex}`)) return true; // 0A: LISTEN
      }
    }
    return false;
  });
}

/**
 * Wait until a UDP echo on `hostname:port` answers: send a probe datagram,
 * wait a little for its echo, and retry.
 */
export async function waitForUdpEcho(
  hostname: string,
  port: number,
  options: WaitOptions = {},
): Promise<void> {
  const socket = Deno.listenDatagram({
    transport: "udp",
    hostname: hostname.includes(":") ? "::1" : "127.0.0.1",
    port: 0,
  });
  const probe = new TextEncoder().encode("netkit-readiness-probe");
  let answered = false;
  const reply = socket.receive().then(() => {
    answered = true;
  });
  reply.catch(() => {});
  try {
    let wait = 20;
    await retry(`udp echo ${hostname}:${port}`, options, async () => {
      await socket.send(probe, { transport: "udp", hostname, port });
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([reply, new Promise((resolve) => (timer = setTimeout(resolve, wait)))]);
      clearTimeout(timer);
      wait = Math.min(wait * 2, 200);
      return answered;
    });
  } finally {
    socket.close();
    await reply.catch(() => {});
  }
}

/**
 * Start a listening peer on a port picked by {@linkcode freePort}, and wait for
 * it with `ready`; if the peer exits before it is ready (the port was taken in
 * between), try again on another port.
 */
export async function startOnFreePort(
  transport: "tcp" | "udp",
  hostname: string,
  start: (port: number) => Peer,
  ready: (peer: Peer, port: number) => Promise<void>,
  attempts = 3,
): Promise<{ peer: Peer; port: number }> {
  for (let i = 1;; i++) {
    const port = freePort(transport, hostname);
    const peer = start(port);
    try {
      await ready(peer, port);
      return { peer, port };
    } catch (err) {
      const exited = peer.exited;
      await peer.stop();
      if (!exited || i >= attempts) throw err;
    }
  }
}

/** `n` random bytes. */
export function randomBytes(n: number): Uint8Array {
  return new Uint8Array(nodeRandomBytes(n));
}

/** Hex SHA-256 of `bytes`. */
export function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}
