/**
 * Integrity soak of netkit's echo path: more than a gigabyte through one
 * `netkit server`, with the SHA-256 of every stream's echo checked against the
 * SHA-256 of what was sent. Not part of `deno task test` (its name does not
 * match the test pattern); `deno task soak` runs it. Each test prints the bytes
 * verified, the elapsed time, the throughput and the server's peak memory.
 *
 * The data of each stream is pseudo-random and deterministic: xorshift32 from
 * a per-stream seed, so a failing stream can be regenerated.
 *
 * @module
 */

import { assertEquals, assertMatch } from "@std/assert";
// node: because WebCrypto digests only a whole buffer; the soak hashes gigabytes as they stream.
import { createHash, type Hash } from "node:crypto";
import { NETKIT_RUN, ROOT_DIR, startServer } from "../tests/support/cli.ts";

const HOST = "127.0.0.1";
const MiB = 1024 * 1024;
const CHUNK_BYTES = 64 * 1024;
/** Past this a test closes everything and fails instead of hanging. */
const DEADLINE_MS = 10 * 60_000;

/** Deterministic pseudo-random bytes: xorshift32, seeded per stream. */
class SeededBytes {
  #x: number;
  readonly #words = new Uint32Array(CHUNK_BYTES / 4);
  readonly #bytes = new Uint8Array(this.#words.buffer);

  constructor(seed: number) {
    this.#x = (Math.imul(seed + 1, 0x9e3779b1) ^ 0x2545f491) >>> 0 || 1;
  }

  /** The next `n` bytes (at most one chunk), in a buffer reused by the following call. */
  next(n: number): Uint8Array {
    const words = this.#words;
    let x = this.#x;
    const count = Math.ceil(n / 4);
    for (let i = 0; i < count; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      words[i] = x;
    }
    this.#x = x;
    return this.#bytes.subarray(0, n);
  }
}

async function writeAll(w: { write(p: Uint8Array): Promise<number> }, data: Uint8Array) {
  let off = 0;
  while (off < data.length) off += await w.write(data.subarray(off));
}

/** Write `total` seeded bytes through `write`, hashing them; return the hex digest. */
async function sendSeeded(
  seed: number,
  total: number,
  write: (chunk: Uint8Array) => Promise<void>,
): Promise<string> {
  const source = new SeededBytes(seed);
  const hash = createHash("sha256");
  for (let left = total; left > 0;) {
    const chunk = source.next(Math.min(CHUNK_BYTES, left));
    hash.update(chunk);
    await write(chunk);
    left -= chunk.length;
  }
  return hash.digest("hex");
}

/** Peak (VmHWM) and current (VmRSS) resident memory of a process, in MiB, or null off Linux. */
async function memoryMiB(pid: number): Promise<{ hwm: number; rss: number } | null> {
  try {
    const status = await Deno.readTextFile(`/proc/${pid}/status`);
    const field = (name: string) =>
      Number(new RegExp(`^${name}:\\s+(\\d+) kB$`, "m").exec(status)?.[1]) / 1024;
    return { hwm: field("VmHWM"), rss: field("VmRSS") };
  } catch {
    return null;
  }
}

function report(what: string, bytes: number, ms: number, memory: { hwm: number } | null) {
  console.log(
    `${what}: ${bytes.toLocaleString("en-US")} B (${(bytes / 1e9).toFixed(3)} GB) verified ` +
      `by SHA-256, elapsed ${(ms / 1000).toFixed(2)} s, ${
        (bytes / 1e6 / (ms / 1000)).toFixed(1)
      } MB/s each way; server peak RSS (VmHWM) ${memory ? `${memory.hwm.toFixed(1)} MiB` : "n/a"}`,
  );
}

/** Run `fn` with a signal that aborts after {@linkcode DEADLINE_MS}. */
async function withDeadline<T>(fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const deadline = new AbortController();
  const timer = setTimeout(() => deadline.abort(), DEADLINE_MS);
  try {
    return await fn(deadline.signal);
  } catch (err) {
    if (!deadline.signal.aborted) throw err;
    throw new Error(`gave up after ${DEADLINE_MS / 1000} s: ${(err as Error).message}`);
  } finally {
    clearTimeout(timer);
  }
}

const TCP_STREAMS = 100;
const TCP_STREAM_BYTES = 11 * MiB;

Deno.test(
  `server echoes ${TCP_STREAMS} concurrent TCP streams of ${
    TCP_STREAM_BYTES / MiB
  } MiB (over 1 GiB in all) with every stream's SHA-256 intact`,
  () =>
    withDeadline(async (signal) => {
      const server = await startServer(["--host", HOST]);
      const conns: Deno.Conn[] = [];
      const closeAll = () => {
        for (const conn of conns) {
          try {
            conn.close();
          } catch { /* already closed */ }
        }
      };
      signal.addEventListener("abort", closeAll, { once: true });
      let stopped: { code: number; stderr: string } | undefined;
      try {
        const started = performance.now();
        const results = await Promise.all(
          Array.from({ length: TCP_STREAMS }, async (_, i) => {
            const conn = await Deno.connect({ hostname: HOST, port: server.port, signal });
            conns.push(conn);
            const received = (async () => {
              const hash = createHash("sha256");
              const buf = new Uint8Array(CHUNK_BYTES);
              let bytes = 0;
              for (let n; (n = await conn.read(buf)) !== null;) {
                hash.update(buf.subarray(0, n));
                bytes += n;
              }
              return { bytes, digest: hash.digest("hex") };
            })();
            const sent = await sendSeeded(i, TCP_STREAM_BYTES, (chunk) => writeAll(conn, chunk));
            await conn.closeWrite();
            return { i, sent, ...(await received) };
          }),
        );
        const elapsed = performance.now() - started;
        const memory = await memoryMiB(server.child.pid);
        let verified = 0;
        for (const r of results) {
          assertEquals(r.bytes, TCP_STREAM_BYTES, `stream ${r.i}: echo length`);
          assertEquals(r.digest, r.sent, `stream ${r.i} (seed ${r.i}): SHA-256 of the echo`);
          verified += r.bytes;
        }
        closeAll();
        stopped = await server.stop();
        assertEquals(stopped.code, 0, stopped.stderr);
        assertMatch(stopped.stderr, /summary: 100 connections served, 0 refused/);
        report(`tcp, ${TCP_STREAMS} streams`, verified, elapsed, memory);
      } finally {
        signal.removeEventListener("abort", closeAll);
        closeAll();
        stopped ??= await server.stop();
      }
    }),
);

const CLIENTS = 10;
const CLIENT_BYTES = 100 * MiB;

Deno.test(
  `netkit client in netcat mode pipes ${CLIENTS} files of ${
    CLIENT_BYTES / MiB
  } MiB through the server at once with every client's stdout SHA-256 intact`,
  () =>
    withDeadline(async (signal) => {
      const dir = await Deno.makeTempDir({ prefix: "netkit_soak_" });
      const children: Deno.ChildProcess[] = [];
      const killAll = () => {
        for (const child of children) {
          try {
            child.kill("SIGKILL");
          } catch { /* exited */ }
        }
      };
      signal.addEventListener("abort", killAll, { once: true });
      const server = await startServer(["--host", HOST]);
      let stopped: { code: number; stderr: string } | undefined;
      try {
        // The inputs, as files: each client reads its stdin from a regular file, as `< file` does.
        const inputs = await Promise.all(
          Array.from({ length: CLIENTS }, async (_, i) => {
            const path = `${dir}/input_${i}.bin`;
            using file = await Deno.open(path, { write: true, create: true, truncate: true });
            const digest = await sendSeeded(1000 + i, CLIENT_BYTES, (c) => writeAll(file, c));
            return { path, digest };
          }),
        );

        const started = performance.now();
        const results = await Promise.all(inputs.map(async ({ path, digest }, i) => {
          const child = new Deno.Command("sh", {
            args: [
              "-c",
              'exec "$@" < "$NETKIT_SOAK_INPUT"',
              "sh",
              Deno.execPath(),
              ...NETKIT_RUN,
              "client",
              HOST,
              String(server.port),
            ],
            cwd: ROOT_DIR,
            env: { NETKIT_SOAK_INPUT: path },
            stdin: "null",
            stdout: "piped",
            stderr: "piped",
          }).spawn();
          children.push(child);
          const stderr = new Response(child.stderr).text();
          const hash: Hash = createHash("sha256");
          let bytes = 0;
          for await (const chunk of child.stdout) {
            hash.update(chunk);
            bytes += chunk.length;
          }
          const { code } = await child.status;
          return { i, code, stderr: await stderr, bytes, sent: digest, got: hash.digest("hex") };
        }));
        const elapsed = performance.now() - started;
        const memory = await memoryMiB(server.child.pid);
        let verified = 0;
        for (const r of results) {
          assertEquals(r.code, 0, `client ${r.i} exited ${r.code}: ${r.stderr}`);
          assertEquals(r.bytes, CLIENT_BYTES, `client ${r.i}: stdout length`);
          assertEquals(r.got, r.sent, `client ${r.i} (seed ${1000 + r.i}): SHA-256 of stdout`);
          verified += r.bytes;
        }
        stopped = await server.stop();
        assertEquals(stopped.code, 0, stopped.stderr);
        assertMatch(stopped.stderr, /summary: 10 connections served, 0 refused/);
        report(`netcat, ${CLIENTS} netkit clients`, verified, elapsed, memory);
      } finally {
        signal.removeEventListener("abort", killAll);
        killAll();
        await Promise.allSettled(children.map((c) => c.status));
        stopped ??= await server.stop();
        await Deno.remove(dir, { recursive: true });
      }
    }),
);
