/**
 * One side of the bench's engine rows: a UDP sender or receiver on one of
 * netkit's engines (`lib/engine/`), connected to its peer on loopback. The
 * bench starts the receiver, waits for its `ready` line, runs the sender, and
 * reads one JSON line from each: the engine alone, without netkit's protocol
 * (`netkit client --throughput --engine` is measured by the bench's
 * `udp_nk_*` rows).
 *
 * ```sh
 * deno run -A bench/engine_udp.ts receive native 127.0.0.1 RPORT SPORT 4194304
 * deno run -A bench/engine_udp.ts send native 127.0.0.1 SPORT RPORT 2 1400
 * ```
 *
 * The sender writes a 32-bit sequence number into each datagram (iperf3
 * writes a header too), sends batches of 32 for `seconds`, and prints
 * `{"sent": N, "seconds": S}`. The receiver receives batches of up to 64,
 * stops 300 ms after the last datagram (or at a hard limit), and prints
 * `{"received": N, "receiveBuffer": B}`.
 *
 * @module
 */

import { selectEngine } from "../lib/engine/select.ts";
import { DatagramBatch } from "../lib/engine/types.ts";

const [role, engineName, host, localPort, remotePort, ...rest] = Deno.args;
if ((role !== "send" && role !== "receive") || (engineName !== "native" && engineName !== "deno")) {
  console.error("usage: engine_udp.ts send|receive native|deno HOST LOCALPORT REMOTEPORT …");
  Deno.exit(2);
}
const { engine } = selectEngine(engineName);
const socket = await engine.open({
  local: { hostname: host!, port: Number(localPort) },
  remote: { hostname: host!, port: Number(remotePort) },
  ...(role === "receive" && { receiveBuffer: Number(rest[0] ?? 4 << 20) }),
});

if (role === "send") {
  const seconds = Number(rest[0] ?? 2);
  const size = Number(rest[1] ?? 1400);
  const batch = new DatagramBatch(32, size);
  const view = new DataView(batch.data.buffer);
  batch.fill(32, size);
  let sent = 0;
  const start = performance.now();
  const end = start + seconds * 1000;
  while (performance.now() < end) {
    for (let i = 0; i < 32; i++) view.setUint32(i * size, sent + i);
    sent += await socket.sendBatch(batch);
  }
  const elapsed = (performance.now() - start) / 1000;
  socket.close();
  console.log(JSON.stringify({ sent, seconds: elapsed }));
} else {
  const batch = new DatagramBatch(64, 2048);
  let received = 0;
  let seen = 0;
  const hardLimit = setTimeout(() => socket.close(), 60_000);
  // Close once datagrams came and then stopped for 300 ms: the sender is done.
  const idle = setInterval(() => {
    if (received > 0 && received === seen) socket.close();
    seen = received;
  }, 300);
  console.log("ready");
  try {
    for (;;) {
      const n = await socket.receiveBatch(batch);
      if (n === 0) break;
      received += n;
    }
  } finally {
    clearInterval(idle);
    clearTimeout(hardLimit);
    socket.close();
  }
  console.log(JSON.stringify({ received, receiveBuffer: socket.features.receiveBuffer ?? null }));
}
