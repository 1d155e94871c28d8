/**
 * Integrity soak of `netkit relay`: 50 concurrent TCP streams of 20 MiB each
 * (1.05 GB in all) from the test, through one `netkit relay`, to one
 * `netkit server` echo and back, with the SHA-256 of every stream's echo
 * checked against the SHA-256 of what was sent. Not part of `deno task test`;
 * `deno task soak` runs it. It prints the bytes verified, the elapsed time,
 * the throughput and the relay's peak memory, and checks the relay's own byte
 * counters against what went through.
 *
 * The data of each stream is pseudo-random and deterministic (mulberry32 from
 * a per-stream seed), so a failing stream can be regenerated.
 *
 * @example
 * ```sh
 * deno test --no-prompt --allow-all --trace-leaks soak/relay_soak.ts
 * ```
 *
 * @module
 */

import { assertEquals } from "@std/assert";
import { createHash } from "node:crypto";
import { mulberry32 } from "../lib/prng.ts";
import { startServer } from "../tests/support/cli.ts";
import { startRelay } from "../tests/support/relay.ts";

const HOST = "127.0.0.1";
const MiB = 1024 * 1024;
const STREAMS = 50;
const STREAM_BYTES = 20 * MiB;
const CHUNK = 64 * 1024;
/** Past this the test closes everything and fails instead of hanging. */
const DEADLINE_MS = 10 * 60_000;

async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  for (let off = 0; off < data.length;) off += await conn.write(data.subarray(off));
}

/** Peak resident memory (VmHWM) of a process in MiB, or null off Linux. */
async function peakMiB(pid: number): Promise<number | null> {
  try {
    const status = await Deno.readTextFile(`/proc/${pid}/status`);
    return Number(/^VmHWM:\s+(\d+) kB$/m.exec(status)?.[1]) / 1024;
  } catch {
    return null;
  }
}

Deno.test(
  `relay carries ${STREAMS} concurrent TCP streams of ${
    STREAM_BYTES / MiB
  } MiB (over 1 GB) to an echo and back with every stream's SHA-256 intact`,
  async () => {
    const deadline = new AbortController();
    const timer = setTimeout(() => deadline.abort(), DEADLINE_MS);
    await using server = await startServer(["--host", HOST]);
    const relay = await startRelay([`tcp:${HOST}:0`, `tcp:${HOST}:${server.port}`, "--json"]);
    const conns: Deno.Conn[] = [];
    const closeAll = () => {
      for (const conn of conns) {
        try {
          conn.close();
        } catch { /* closed */ }
      }
    };
    deadline.signal.addEventListener("abort", closeAll, { once: true });
    try {
      const started = performance.now();
      const results = await Promise.all(
        Array.from({ length: STREAMS }, async (_, i) => {
          const conn = await Deno.connect({ hostname: HOST, port: relay.port });
          conns.push(conn);
          const received = (async () => {
            const hash = createHash("sha256");
            const buf = new Uint8Array(CHUNK);
            let bytes = 0;
            for (let n; (n = await conn.read(buf)) !== null;) {
              hash.update(buf.subarray(0, n));
              bytes += n;
            }
            return { bytes, digest: hash.digest("hex") };
          })();
          const random = mulberry32(1000 + i);
          const words = new Uint32Array(CHUNK / 4);
          const chunk = new Uint8Array(words.buffer);
          const sent = createHash("sha256");
          for (let left = STREAM_BYTES; left > 0; left -= CHUNK) {
            for (let w = 0; w < words.length; w++) words[w] = random() * 0x1_0000_0000;
            sent.update(chunk);
            await writeAll(conn, chunk);
          }
          await conn.closeWrite();
          return { i, sent: sent.digest("hex"), ...(await received) };
        }),
      );
      const elapsed = performance.now() - started;
      const peak = await peakMiB(relay.pid);
      let verified = 0;
      for (const r of results) {
        assertEquals(r.bytes, STREAM_BYTES, `stream ${r.i}: echo length`);
        assertEquals(r.digest, r.sent, `stream ${r.i} (seed ${1000 + r.i}): SHA-256 of the echo`);
        verified += r.bytes;
      }
      closeAll();
      const { code, stdout, stderr } = await relay.stop();
      assertEquals(code, 0, stderr);
      const doc = JSON.parse(stdout);
      assertEquals(doc.connections, STREAMS);
      assertEquals(doc.up.bytes_out, STREAMS * STREAM_BYTES);
      assertEquals(doc.down.bytes_out, STREAMS * STREAM_BYTES);
      console.log(
        `relay, ${STREAMS} streams: ${verified.toLocaleString("en-US")} B (${
          (verified / 1e9).toFixed(3)
        } GB) verified by SHA-256 each way, elapsed ${(elapsed / 1000).toFixed(2)} s, ${
          (verified / 1e6 / (elapsed / 1000)).toFixed(1)
        } MB/s each way; relay peak RSS (VmHWM) ${
          peak === null ? "n/a" : `${peak.toFixed(1)} MiB`
        }`,
      );
    } finally {
      clearTimeout(timer);
      closeAll();
      await relay.stop();
    }
  },
);
