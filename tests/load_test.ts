/**
 * Load test of `netkit server`: 5,000 TCP connections open at the same time
 * against one server, every byte of every echo checked, and the server's
 * memory with all of them open recorded from /proc (printed, for the README).
 *
 * The connections come from this process through raw `Deno.connect`, opened in
 * bounded-concurrency waves so the server's listen backlog never overflows;
 * a failed connect is retried and never counted as served. Each connection is
 * confirmed by one echo as it opens; once all 5,000 are open and confirmed
 * they are all held while the remaining messages go out on every one of them
 * at once.
 *
 * Needs a file-descriptor limit (`ulimit -n`) of about 12,000: this process
 * holds 5,000 sockets and the server another 5,000. Below that the test is
 * skipped with a message, unless `NETKIT_REQUIRE_PEERS=1` (CI), where it fails.
 *
 * @module
 */

import { assert, assertEquals, assertMatch, fail } from "@std/assert";
import { startServer } from "./support/cli.ts";
import { openFds, readExactly, writeAll } from "./support/sockets.ts";

const HOST = "127.0.0.1";
const CONNECTIONS = 5_000;
/** Messages per connection: the first confirms the connection, the rest go out all at once. */
const MESSAGES = 3;
const MIN_MESSAGE_BYTES = 100;
const MAX_MESSAGE_BYTES = 1_000;
/** Connects (each with its confirming echo) in flight at once: well under any listen backlog. */
const CONNECT_CONCURRENCY = 100;
/** Tries per connection before its connect error counts as a failure. */
const CONNECT_ATTEMPTS = 5;
/** File descriptors needed: 5,000 sockets here, 5,000 in the server, and headroom. */
const FD_NEEDED = 12_000;
/** Past this the test closes everything and fails instead of hanging. */
const DEADLINE_MS = 90_000;

/**
 * The limit on open files that this process and its children get, as `sh` reports it (Deno
 * raises its soft limit to the hard one at startup, so this is in effect the hard limit).
 */
function openFileLimit(): number {
  const out = new Deno.Command("sh", { args: ["-c", "ulimit -n"], stdout: "piped", stderr: "null" })
    .outputSync();
  const text = new TextDecoder().decode(out.stdout).trim();
  return text === "unlimited" ? Infinity : Number(text);
}

const fdLimit = openFileLimit();
const requirePeers = Deno.env.get("NETKIT_REQUIRE_PEERS") === "1";
const fdShortfall = fdLimit >= FD_NEEDED
  ? undefined
  : `the open-file limit (ulimit -n) is ${
    Number.isNaN(fdLimit) ? "unknown" : fdLimit
  }, below the ${FD_NEEDED} that ${CONNECTIONS} connections need on both ends; raise it (ulimit -n ${FD_NEEDED}) before running the tests`;
const skip = fdShortfall !== undefined && !requirePeers;
if (skip) console.warn(`skipping the load test: ${fdShortfall}`);

/** Message `m` of connection `i`: its own length and bytes, tagged with both numbers. */
function message(i: number, m: number): Uint8Array {
  let x = (Math.imul(i * MESSAGES + m + 1, 0x9e3779b1) ^ 0x5bd1e995) >>> 0 || 1;
  const next = () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
  const length = MIN_MESSAGE_BYTES + next() % (MAX_MESSAGE_BYTES - MIN_MESSAGE_BYTES + 1);
  const out = new Uint8Array(length);
  const view = new DataView(out.buffer);
  view.setUint32(0, i);
  view.setUint8(4, m);
  for (let k = 5; k < length; k++) out[k] = next() & 0xff;
  return out;
}

/** Send message `m` of connection `i`, check its echo byte for byte, and return its length. */
async function exchange(conn: Deno.Conn, i: number, m: number): Promise<number> {
  const sent = message(i, m);
  await writeAll(conn, sent);
  const echoed = await readExactly(conn, sent.length);
  for (let k = 0; k < sent.length; k++) {
    if (echoed[k] !== sent[k]) {
      throw new Error(
        `message ${m} (${sent.length} B): byte ${k} came back as ${echoed[k]}, sent ${sent[k]}`,
      );
    }
  }
  return sent.length;
}

/** VmHWM (peak resident) and VmRSS of a process, in KiB, from /proc/PID/status. */
async function memoryKiB(pid: number): Promise<{ hwm: number; rss: number }> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  const field = (name: string) =>
    Number(new RegExp(`^${name}:\\s+(\\d+) kB$`, "m").exec(status)?.[1]);
  return { hwm: field("VmHWM"), rss: field("VmRSS") };
}

const mib = (kib: number) => `${(kib / 1024).toFixed(1)} MiB`;

Deno.test({
  // The reason is in the name too, so that it shows under `deno test -q`, which hides console output.
  name:
    `server holds ${CONNECTIONS} concurrent TCP connections open at once and echoes every byte of ${MESSAGES} messages on each${
      skip ? ` (skipped: ulimit -n is ${fdLimit}, needs ${FD_NEEDED})` : ""
    }`,
  ignore: skip,
  async fn() {
    if (fdShortfall) fail(`cannot run the load test: ${fdShortfall}`);
    const onLinux = Deno.build.os === "linux";
    const server = await startServer(["--host", HOST, "--max-conns", "10000"]);
    const pid = server.child.pid;
    const conns: (Deno.Conn | undefined)[] = new Array(CONNECTIONS);
    const failures: string[] = [];
    const noteFailure = (i: number, phase: string, err: unknown) =>
      failures.push(`connection ${i} (${phase}): ${(err as Error).message ?? err}`);
    const closeAll = () => {
      for (const conn of conns) {
        try {
          conn?.close();
        } catch { /* already closed */ }
      }
    };
    const deadline = new AbortController();
    const timer = setTimeout(() => {
      deadline.abort();
      closeAll(); // pending reads and writes fail, and the test with them
    }, DEADLINE_MS);
    let connectRetries = 0;
    let checkedBytes = 0;
    let stopped: { code: number; stderr: string } | undefined;
    const started = performance.now();
    try {
      // Phase 1: open every connection, a bounded number at a time, each confirmed by one echo.
      let nextIndex = 0;
      const opener = async () => {
        for (let i; (i = nextIndex++) < CONNECTIONS;) {
          let conn: Deno.Conn | undefined;
          for (let attempt = 1; conn === undefined; attempt++) {
            try {
              conn = await Deno.connect({
                hostname: HOST,
                port: server.port,
                signal: deadline.signal,
              });
            } catch (err) {
              if (deadline.signal.aborted || attempt >= CONNECT_ATTEMPTS) {
                noteFailure(i, `connect, ${attempt} tries`, err);
                break;
              }
              connectRetries++;
            }
          }
          if (conn === undefined) continue;
          conns[i] = conn;
          try {
            const n = await exchange(conn, i, 0);
            checkedBytes += n;
          } catch (err) {
            noteFailure(i, "first echo", err);
            conn.close();
            conns[i] = undefined;
          }
        }
      };
      await Promise.all(Array.from({ length: CONNECT_CONCURRENCY }, opener));
      const opened = performance.now();
      const confirmed = conns.filter((c) => c !== undefined).length;
      assertEquals(
        confirmed,
        CONNECTIONS,
        `only ${confirmed} of ${CONNECTIONS} connections opened and echoed; first failures:\n${
          failures.slice(0, 10).join("\n")
        }`,
      );

      // All 5,000 are open now, and none of them is closed before phase 2 is over.
      const idle = onLinux ? await memoryKiB(pid) : undefined;
      const fds = onLinux ? await openFds(pid) : undefined;
      if (fds !== undefined) {
        assert(fds >= CONNECTIONS, `the server has only ${fds} descriptors open`);
      }

      // Phase 2: the remaining messages on every connection at once.
      let served = 0;
      await Promise.all(conns.map(async (conn, i) => {
        if (conn === undefined) return;
        try {
          for (let m = 1; m < MESSAGES; m++) {
            const n = await exchange(conn, i, m);
            checkedBytes += n;
          }
          served++;
        } catch (err) {
          noteFailure(i, "held, all at once", err);
        }
      }));
      const exchanged = performance.now();
      const busy = onLinux ? await memoryKiB(pid) : undefined;
      assertEquals(
        served,
        CONNECTIONS,
        `${served} of ${CONNECTIONS} connections served; first failures:\n${
          failures.slice(0, 10).join("\n")
        }`,
      );

      // Close cleanly: half-close each, and the server must close it back with nothing more.
      let extra = 0;
      await Promise.all(conns.map(async (conn) => {
        if (conn === undefined) return;
        await conn.closeWrite();
        if ((await conn.read(new Uint8Array(1))) !== null) extra++;
      }));
      assertEquals(extra, 0, `${extra} connections got bytes nobody sent`);
      closeAll();
      stopped = await server.stop();
      assertEquals(stopped.code, 0, stopped.stderr);
      assertMatch(stopped.stderr, /summary: 5,000 connections served, 0 refused/);

      console.log(
        [
          `load: ${CONNECTIONS} connections open at once, all served, ${checkedBytes} B echoed and checked`,
          `  opened and confirmed in ${((opened - started) / 1000).toFixed(2)} s ` +
          `(${CONNECT_CONCURRENCY} at a time, ${connectRetries} connect retries); ` +
          `${MESSAGES - 1} more messages on all at once in ${
            ((exchanged - opened) / 1000).toFixed(2)
          } s`,
          ...(idle && busy
            ? [
              `  server with all ${CONNECTIONS} open: ${fds} fds; ` +
              `VmRSS ${mib(idle.rss)} after opening, ${mib(busy.rss)} after the burst; ` +
              `VmHWM (peak) ${mib(busy.hwm)}`,
            ]
            : []),
        ].join("\n"),
      );
    } catch (err) {
      if (!deadline.signal.aborted) throw err;
      throw new Error(`gave up after ${DEADLINE_MS / 1000} s: ${(err as Error).message}`);
    } finally {
      clearTimeout(timer);
      closeAll();
      stopped ??= await server.stop();
    }
  },
});
