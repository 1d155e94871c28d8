/**
 * Faults: clients killed mid-transfer, connections reset with unread data,
 * half-open and silent connections, a client that never reads, and a flood
 * of connect/close cycles. Through each, a canary client's `--message`
 * exchanges keep succeeding; after each, the server's open file descriptors
 * (`/proc/<pid>/fd`) return to what it held once listening; at the end its
 * `-v` log holds no uncaught error or stack trace, and SIGTERM exits 0 with a
 * summary.
 *
 * @module
 */

import { assert, assertEquals, assertMatch, assertNotMatch, fail } from "@std/assert";
import { NETKIT_RUN, ROOT_DIR, runNetkit, type RunningServer, startServer } from "./support/cli.ts";
import { isConnectionEnd, openFds as fdCount, readToEnd, writeAll } from "./support/sockets.ts";

const LOOPBACK = "127.0.0.1";
/** Each test's runtime bound: past it the server and every client it spawned are killed. */
const TEST_BUDGET_MS = 60_000;
const encoder = new TextEncoder();

function pattern(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** Poll (bounded) until `check` holds; fails with `describe()` when it never does. */
async function eventually(
  check: () => Promise<boolean>,
  describe: () => Promise<string>,
  timeoutMs = 15_000,
): Promise<number> {
  const started = performance.now();
  while (!(await check())) {
    if (performance.now() - started > timeoutMs) fail(await describe());
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return performance.now() - started;
}

/** A stack trace or an uncaught error in a process's stderr. */
const CRASH = /Uncaught|^\s+at \S/m;

/** Keeps running `netkit client --message` exchanges on fresh connections until stopped. */
class Canary {
  runs = 0;
  readonly failures: string[] = [];
  #stopped = false;
  #loop: Promise<void> | undefined;

  constructor(readonly port: number) {}

  start(): void {
    this.#loop = (async () => {
      while (!this.#stopped) this.#record(await this.exchange(`canary-${this.runs}`));
    })();
  }

  /** One exchange of three messages; returns a failure description or undefined. */
  async exchange(message: string): Promise<string | undefined> {
    const r = await runNetkit([
      "client",
      `${LOOPBACK}:${this.port}`,
      "--message",
      message,
      "--count",
      "3",
      "--timeout",
      "5s",
    ], { timeoutMs: 20_000 });
    if (r.code === 0 && r.text === `${message}\n`.repeat(3)) return undefined;
    return `${message}: exit ${r.code}, stdout ${
      JSON.stringify(r.text)
    }, stderr ${r.stderr.trim()}`;
  }

  #record(failure: string | undefined): void {
    this.runs++;
    if (failure) this.failures.push(failure);
  }

  /** Stop after the run in progress; every run must have succeeded. */
  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#loop;
    this.#loop = undefined;
  }
}

interface Harness {
  server: RunningServer;
  pid: number;
  port: number;
  baseline: number;
  canary: Canary;
  /** Children to kill if the test runs past its budget. */
  children: Set<Deno.ChildProcess>;
  /** One explicit canary exchange now, which must succeed. */
  check(when: string): Promise<void>;
  /** Wait (bounded) until the server holds exactly its baseline of fds again. */
  settled(when: string): Promise<number>;
}

/**
 * Start a server (`-v`, loopback), record its fd baseline, run the canary
 * throughout `scenario`, then check fds, stderr and a clean SIGTERM.
 */
async function withServer(
  args: string[],
  scenario: (h: Harness) => Promise<void>,
): Promise<{ stderr: string; canaryRuns: number }> {
  const server = await startServer(["--host", LOOPBACK, "-v", ...args]);
  const pid = server.child.pid;
  const children = new Set<Deno.ChildProcess>();
  const budget = setTimeout(() => {
    for (const child of [server.child, ...children]) {
      try {
        child.kill("SIGKILL");
      } catch { /* exited */ }
    }
  }, TEST_BUDGET_MS);
  const canary = new Canary(server.port);
  const h: Harness = {
    server,
    pid,
    port: server.port,
    baseline: await fdCount(pid),
    canary,
    children,
    async check(when) {
      const failure = await canary.exchange(`check-${when.replaceAll(" ", "-")}`);
      assertEquals(failure, undefined, `canary ${when}`);
    },
    async settled(when) {
      let last = -1;
      return await eventually(
        async () => (last = await fdCount(pid)) === h.baseline,
        () => Promise.resolve(`${when}: the server holds ${last} fds, baseline ${h.baseline}`),
      );
    },
  };
  let failure: unknown;
  try {
    canary.start();
    await scenario(h);
    await canary.stop();
    assertEquals(canary.failures, [], "canary exchanges");
    assert(canary.runs >= 1, "the canary ran");
    const ms = await h.settled("once every client is gone");
    console.log(
      `canary: ${canary.runs} background exchanges, all ok; fds ${h.baseline} at the end ` +
        `(settled in ${Math.round(ms)} ms)`,
    );
  } catch (err) {
    failure = err;
  } finally {
    clearTimeout(budget);
    await canary.stop();
  }
  const alive = await fdCount(pid).then(() => true, () => false);
  const { code, stderr } = await server.stop();
  if (failure) {
    // A server that exited 0 with its summary before this test stopped it got a SIGTERM or
    // SIGINT from elsewhere: this test sends none before the end.
    const state = alive
      ? "was alive"
      : /^summary: /m.test(stderr)
      ? `had been stopped by a signal this test did not send (exit ${code})`
      : `had exited with ${code}`;
    throw new Error(
      `${(failure as Error).message}\n(the server ${state}; its stderr ends:)\n${
        stderr.slice(-2000)
      }`,
      { cause: failure },
    );
  }
  assertNotMatch(stderr, CRASH, "no uncaught error or stack trace in the server's log");
  assertEquals(code, 0, stderr.slice(-2000));
  assertMatch(stderr, /^summary: [\d,]+ connections served, 0 refused, /m);
  return { stderr, canaryRuns: canary.runs };
}

Deno.test("clients SIGKILLed mid-transfer: the server frees their connections and keeps serving", async () => {
  const CLIENTS = 4;
  const TOTAL = 50_000_000;
  const KILL_AFTER = 4 * 1024 * 1024;
  const chunk = pattern(1024 * 1024, 17);
  await withServer([], async (h) => {
    const runs = Array.from({ length: CLIENTS }, (_, i) => {
      const child = new Deno.Command(Deno.execPath(), {
        args: [...NETKIT_RUN, "client", `${LOOPBACK}:${h.port}`],
        cwd: ROOT_DIR,
        stdin: "piped",
        stdout: "piped",
        stderr: "null",
      }).spawn();
      h.children.add(child);
      const writer = child.stdin.getWriter();
      // Feed a 50 MB stream; the writes fail once the client is killed.
      const feeding = (async () => {
        try {
          for (let sent = 0; sent < TOTAL; sent += chunk.length) await writer.write(chunk);
          await writer.close();
        } catch {
          await writer.abort().catch(() => {});
        }
      })();
      // Read the echo back and check it, up to KILL_AFTER bytes; then stop reading, so
      // everything behind stalls with full buffers: the transfer is frozen mid-way.
      const reader = child.stdout.getReader();
      const midway = (async () => {
        let got = 0;
        while (got < KILL_AFTER) {
          const { value, done } = await reader.read();
          assert(!done, `client ${i} ended after ${got} bytes`);
          for (let j = 0; j < value.length; j++) {
            if (value[j] !== chunk[(got + j) % chunk.length]) {
              fail(`client ${i}: echo differs at byte ${got + j}`);
            }
          }
          got += value.length;
        }
        return got;
      })();
      return { child, feeding, reader, midway };
    });
    const echoed = await Promise.all(runs.map((r) => r.midway));
    assert(h.baseline + CLIENTS <= await fdCount(h.pid), "all four are connected");
    await h.check("while four transfers are stalled mid-way");
    for (const r of runs) r.child.kill("SIGKILL");
    for (const r of runs) {
      const status = await r.child.status;
      assertEquals(status.signal, "SIGKILL");
      await r.reader.cancel();
      await r.feeding;
      h.children.delete(r.child);
    }
    const ms = await h.settled("after four clients were killed mid-transfer");
    await h.check("after the kills");
    console.log(
      `killed ${CLIENTS} clients after ${
        echoed.map((n) => (n / 2 ** 20).toFixed(1)).join(", ")
      } MiB echoed each; fds back to ${h.baseline} in ${Math.round(ms)} ms`,
    );
  });
});

Deno.test("resets with unread data and a client that never reads: 20 others are served at once", async () => {
  await withServer([], async (h) => {
    // Five clients that connect and hold, silent (no first-byte timeout is that short).
    const holders = await Promise.all(
      Array.from({ length: 5 }, () => Deno.connect({ hostname: LOOPBACK, port: h.port })),
    );
    // A client that writes without ever reading: the server's echo to it blocks.
    const hog = await Deno.connect({ hostname: LOOPBACK, port: h.port });
    let hogWritten = 0;
    let enough: () => void = () => {};
    const hogStarted = new Promise<void>((resolve) => enough = resolve);
    const hogging = (async () => {
      const chunk = pattern(64 * 1024, 5);
      try {
        for (let i = 0; i < 1024; i++) {
          await writeAll(hog, chunk);
          hogWritten += chunk.length;
          if (hogWritten >= 2 * 1024 * 1024) enough();
        }
      } catch (err) {
        if (!isConnectionEnd(err)) throw err;
      } finally {
        enough();
      }
    })();
    await hogStarted;
    const started = performance.now();
    const many = await runNetkit([
      "client",
      `${LOOPBACK}:${h.port}`,
      "--connections",
      "20",
      "--message",
      "served while one client never reads",
      "--count",
      "3",
      "--timeout",
      "5s",
    ], { timeoutMs: 20_000 });
    const took = performance.now() - started;
    assertEquals(many.code, 0, many.stderr);
    assertMatch(many.text, /^connections: 20 ok, 0 failed; messages: 60 sent, 60 replies;/);

    // Ten clients that write 1 MiB, see the echo begin, and close with unread data: RST.
    const resets = Array.from({ length: 10 }, async (_, i) => {
      const conn = await Deno.connect({ hostname: LOOPBACK, port: h.port });
      const data = pattern(1024 * 1024, 100 + i);
      const writing = writeAll(conn, data).catch((err) => {
        if (!isConnectionEnd(err)) throw err;
      });
      const first = new Uint8Array(1);
      assertEquals(await conn.read(first), 1);
      assertEquals(first[0], data[0]);
      conn.close();
      await writing;
    });
    await Promise.all(resets);
    await h.check("after ten resets, with the hog still stalled");
    // The resets are freed; only the hog and the five holders remain.
    let held = 0;
    await eventually(
      async () => (held = await fdCount(h.pid)) === h.baseline + 6,
      () => Promise.resolve(`after the resets: ${held} fds, want ${h.baseline} + 6 held`),
    );

    hog.close(); // with unread echo in its buffer: a reset too
    await hogging;
    for (const conn of holders) conn.close();
    const ms = await h.settled("after the resets and the hog");
    console.log(
      `hog wrote ${(hogWritten / 2 ** 20).toFixed(1)} MiB unread; 20 connections served in ${
        Math.round(took)
      } ms (process start included); 10 resets; fds back to ${h.baseline} in ${Math.round(ms)} ms`,
    );
  });
});

Deno.test("half-open connections: a half-closed client is finished and a silent one timed out by the server", async () => {
  const { stderr } = await withServer(["--first-byte-timeout", "1s"], async (h) => {
    // Five clients send a little, half-close, and neither read nor close.
    const halfClosed = await Promise.all(Array.from({ length: 5 }, async (_, i) => {
      const conn = await Deno.connect({ hostname: LOOPBACK, port: h.port });
      const data = encoder.encode(`half-closed client ${i} `.repeat(40));
      await writeAll(conn, data);
      await conn.closeWrite();
      return { conn, data };
    }));
    // Five that connect and say nothing.
    const silent = await Promise.all(
      Array.from({ length: 5 }, () => Deno.connect({ hostname: LOOPBACK, port: h.port })),
    );
    try {
      await h.check("while ten half-open connections are held");
      // The server echoes the half-closed ones, sees their end and closes; it drops the silent
      // ones after --first-byte-timeout: it frees all ten while the clients still hold them.
      const ms = await h.settled("with ten half-open connections still held by their clients");
      for (const { conn, data } of halfClosed) assertEquals(await readToEnd(conn), data);
      for (const conn of silent) {
        const got = await readToEnd(conn).catch((err) => {
          if (!isConnectionEnd(err)) throw err;
          return new Uint8Array(0);
        });
        assertEquals(got.length, 0);
      }
      console.log(`ten half-open connections freed by the server in ${Math.round(ms)} ms`);
    } finally {
      for (const { conn } of halfClosed) conn.close();
      for (const conn of silent) conn.close();
    }
  });
  const timedOut = stderr.match(/\(nothing received within 1(?:\.00)? s\)/g) ?? [];
  assertEquals(timedOut.length, 5, "the five silent connections were closed by the timeout");
});

Deno.test("a flood of 2,000 connect/close cycles, 50 at a time, while the canary keeps exchanging", async () => {
  const CYCLES = 2000;
  const AT_ONCE = 50;
  let rate = 0;
  const { stderr, canaryRuns } = await withServer([], async (h) => {
    const started = performance.now();
    for (let i = 0; i < CYCLES; i += AT_ONCE) {
      await Promise.all(Array.from({ length: AT_ONCE }, async (_, j) => {
        const conn = await Deno.connect({ hostname: LOOPBACK, port: h.port });
        try {
          switch ((i + j) % 4) {
            case 0: // connect and close at once
              break;
            case 1: // one byte, then close before the echo is read
              await writeAll(conn, encoder.encode("x"));
              break;
            case 2: { // a full exchange
              await writeAll(conn, encoder.encode("ping"));
              const reply = new Uint8Array(4);
              let got = 0;
              while (got < 4) {
                const n = await conn.read(reply.subarray(got));
                assert(n !== null, "echo cut short");
                got += n;
              }
              assertEquals(new TextDecoder().decode(reply), "ping");
              break;
            }
            default: // half-close, then close
              await conn.closeWrite();
          }
        } catch (err) {
          if (!isConnectionEnd(err)) throw err;
        } finally {
          conn.close();
        }
      }));
    }
    rate = CYCLES / ((performance.now() - started) / 1000);
    await h.check("right after the flood");
    const ms = await h.settled("after the flood");
    console.log(
      `${CYCLES} connect/close cycles at ${Math.round(rate)}/s; fds back to ${h.baseline} in ${
        Math.round(ms)
      } ms`,
    );
  });
  const served = Number(
    /summary: ([\d,]+) connections served/.exec(stderr)?.[1]?.replaceAll(",", ""),
  );
  assert(served >= CYCLES + canaryRuns, `summary counts ${served} connections`);
  assert(rate > 0);
});
