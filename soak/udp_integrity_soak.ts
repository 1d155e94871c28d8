/**
 * Integrity soak of the UDP engines: over a gigabyte of datagrams of varied
 * sizes (64 B to 16 KiB) sent with `sendBatch` (native: `sendmmsg`, 32 a
 * call), received by the engine's listener (native: `recvmmsg` into one
 * buffer, handed out one datagram at a time, as the server's throughput test
 * ports receive), echoed with the listener's `send` (native: `sendto`) and
 * received back with the connected socket's `receiveBatch` (native:
 * `recvmmsg`, 64 a call). The SHA-256 of every byte echoed, in arrival order,
 * must equal the SHA-256 of every byte sent, in send order: nothing lost,
 * duplicated, reordered, cut or corrupted; each datagram is also compared
 * with its regenerated content, so a failure names the first bad one. Once
 * per engine (tests/support/engines.ts). Not part of `deno task test`;
 * `deno task soak` runs it. `NETKIT_SOAK_MIB` sets the size (default 1024).
 *
 * A window of datagrams in flight (at most 4 MiB, and a quarter of the
 * smallest receive buffer: Deno's sockets keep the default) keeps every socket buffer
 * far from full, so a lost datagram is a bug here, not congestion; a run with
 * no progress for {@linkcode STALL_MS} fails, naming what was missing.
 *
 * @module
 */

import { assert, assertEquals } from "@std/assert";
// node: because WebCrypto digests only a whole buffer; the soak hashes gigabytes as they stream.
import { createHash } from "node:crypto";
import { type EngineName, engineTest } from "../tests/support/engines.ts";
import { selectEngine } from "../lib/engine/select.ts";
import { DatagramBatch } from "../lib/engine/types.ts";

const MiB = 1024 * 1024;
const TOTAL_BYTES = Number(Deno.env.get("NETKIT_SOAK_MIB") ?? 1024) * MiB;
const MAX_DATAGRAM = 16 * 1024;
const MIN_DATAGRAM = 64;
const SEND_BATCH = 32;
const RECEIVE_BATCH = 64;
/** Bytes in flight at most (sent, not yet echoed back), and a quarter of the smallest receive buffer. */
const WINDOW_BYTES = 4 * MiB;
/** Linux's default receive buffer, for an engine that does not say what it got (deno). */
const DEFAULT_RECEIVE_BUFFER = 208 * 1024;
const BUFFER_BYTES = 8 * MiB;
const STALL_MS = 5_000;

/** Datagram `seq`: its length and bytes are a function of `seq` alone (xorshift32). */
function fillDatagram(seq: number, into: Uint8Array): number {
  let x = (Math.imul(seq + 1, 0x9e3779b1) ^ 0x2545f491) >>> 0 || 1;
  x ^= x << 13;
  x ^= x >>> 17;
  x ^= x << 5;
  const length = MIN_DATAGRAM + ((x >>> 0) % (MAX_DATAGRAM - MIN_DATAGRAM + 1));
  const view = new DataView(into.buffer, into.byteOffset, length);
  view.setUint32(0, seq);
  let i = 4;
  for (; i + 4 <= length; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    view.setUint32(i, x >>> 0);
  }
  for (; i < length; i++) into[i] = (x >>> (8 * (i & 3))) & 0xff;
  return length;
}

async function soak(engineName: EngineName): Promise<void> {
  const { engine } = selectEngine(engineName);
  assertEquals(engine.name, engineName);
  const listener = await engine.listen({
    local: { hostname: "127.0.0.1", port: 0 },
    maxDatagram: MAX_DATAGRAM,
    receiveBuffer: BUFFER_BYTES,
  });
  const port = (listener.addr as Deno.NetAddr).port;
  const socket = await engine.open({
    remote: { hostname: "127.0.0.1", port },
    receiveBuffer: BUFFER_BYTES,
    sendBuffer: BUFFER_BYTES,
  });
  // The kernel charges each datagram more than its length: a quarter of the buffer is safe.
  const window = Math.min(
    WINDOW_BYTES,
    (socket.features.receiveBuffer ?? DEFAULT_RECEIVE_BUFFER) / 4,
    (listenerBuffer(engineName) ?? DEFAULT_RECEIVE_BUFFER) / 4,
  );
  const sentHash = createHash("sha256");
  const echoHash = createHash("sha256");
  let sent = 0, sentBytes = 0, echoed = 0, echoedBytes = 0, echoedByListener = 0;
  let lastProgress = performance.now();
  const bad: string[] = [];
  const started = performance.now();

  // The listener echoes every datagram to where it came from.
  const echoing = (async () => {
    try {
      while (true) {
        const [data, from] = await listener.receive();
        await listener.send(data, from);
        echoedByListener++;
      }
    } catch (err) {
      if (!(err instanceof Deno.errors.BadResource || err instanceof Deno.errors.Interrupted)) {
        if (!/closed|EBADF/i.test(String(err))) throw err;
      }
    }
  })();

  // The socket receives the echoes and checks each against its regenerated content.
  let wake: (() => void) | undefined;
  const expected = new Uint8Array(MAX_DATAGRAM);
  const receiving = (async () => {
    const batch = new DatagramBatch(RECEIVE_BATCH, MAX_DATAGRAM + 1);
    while (echoedBytes < TOTAL_BYTES) {
      const n = await socket.receiveBatch(batch);
      if (n === 0) return; // closed
      for (let i = 0; i < n; i++) {
        const got = batch.slot(i);
        const length = fillDatagram(echoed, expected);
        if (bad.length < 5 && (got.length !== length || !sameBytes(got, expected, length))) {
          const seq = got.length >= 4 ? new DataView(got.buffer, got.byteOffset).getUint32(0) : -1;
          bad.push(`echo ${echoed}: ${got.length} B carrying seq ${seq}, expected ${length} B`);
        }
        echoHash.update(got);
        echoed++;
        echoedBytes += got.length;
      }
      lastProgress = performance.now();
      wake?.();
    }
  })();

  const stall = setInterval(() => {
    if (performance.now() - lastProgress > STALL_MS) {
      bad.push(
        `no echo for ${STALL_MS} ms: sent ${sent}, listener echoed ${echoedByListener}, ` +
          `received ${echoed}`,
      );
      socket.close(); // ends the receiver; the sender sees it below
      wake?.();
    }
  }, 500);

  try {
    const out = new DatagramBatch(SEND_BATCH, MAX_DATAGRAM);
    while (sentBytes < TOTAL_BYTES && bad.length === 0) {
      while (sentBytes - echoedBytes + MAX_DATAGRAM > window && bad.length === 0) {
        await new Promise<void>((resolve) => (wake = resolve));
        wake = undefined;
      }
      let count = 0;
      for (
        ;
        count < SEND_BATCH && sentBytes < TOTAL_BYTES &&
        sentBytes - echoedBytes + MAX_DATAGRAM <= window;
        count++
      ) {
        const slot = out.data.subarray(count * MAX_DATAGRAM, (count + 1) * MAX_DATAGRAM);
        const length = fillDatagram(sent, slot);
        out.lengths[count] = length;
        sentHash.update(slot.subarray(0, length));
        sent++;
        sentBytes += length;
      }
      out.count = count;
      assertEquals(await socket.sendBatch(out), count, "the kernel took every datagram");
    }
    await receiving;
  } finally {
    clearInterval(stall);
    socket.close();
    listener.close();
    await echoing;
    await receiving.catch(() => {});
  }
  const ms = performance.now() - started;
  assertEquals(bad, [], `${engineName} engine`);
  assertEquals(echoed, sent);
  assertEquals(echoedBytes, sentBytes);
  assertEquals(echoHash.digest("hex"), sentHash.digest("hex"), "SHA-256 of the echoes");
  assert(sentBytes >= TOTAL_BYTES);
  console.log(
    `udp ${engineName} engine: ${sent.toLocaleString("en-US")} datagrams, ` +
      `${sentBytes.toLocaleString("en-US")} B (${(sentBytes / 1e9).toFixed(3)} GB) echoed and ` +
      `verified by SHA-256, elapsed ${(ms / 1000).toFixed(2)} s, ${
        (sentBytes / 1e6 / (ms / 1000)).toFixed(1)
      } MB/s each way`,
  );
}

/** The listener's receive buffer: the native one is asked for {@linkcode BUFFER_BYTES} (root may exceed rmem_max); Deno's is the default. */
function listenerBuffer(engine: EngineName): number | undefined {
  return engine === "native" ? BUFFER_BYTES : undefined;
}

function sameBytes(a: Uint8Array, b: Uint8Array, length: number): boolean {
  for (let i = 0; i < length; i++) if (a[i] !== b[i]) return false;
  return true;
}

engineTest(
  `udp integrity soak: ${
    TOTAL_BYTES / MiB
  } MiB of 64 B-16 KiB datagrams through sendmmsg, the listener's echo and recvmmsg with their SHA-256 intact`,
  soak,
);
