import { assert, assertEquals } from "@std/assert";
import { deadline } from "@std/async/deadline";
import { GRO_BATCH_BYTES } from "../engine/types.ts";
import { testBufferBytes, ThroughputHub } from "./hub.ts";
import { LineReader } from "./line_reader.ts";
import { CONTROL_MAGIC, DATA_MAGIC, decodeControl, type StartRequest } from "./protocol.ts";
import { TCP_RECEIVE_BYTES, UDP_RECEIVER_BYTES } from "./streams.ts";

const encoder = new TextEncoder();

const UDP: StartRequest = {
  type: "start",
  proto: "udp",
  direction: "up",
  parallel: 2,
  duration_ms: 1000,
  size: 1400,
  bitrate: 0,
};

Deno.test("testBufferBytes counts a receiving test's GRO batch when the client sends with GSO", () => {
  const plain = testBufferBytes(UDP);
  assertEquals(plain, 2 * UDP_RECEIVER_BYTES + 65536);
  assertEquals(testBufferBytes({ ...UDP, gso: true }), 2 * UDP_RECEIVER_BYTES + GRO_BATCH_BYTES);
  // The server only sends: no GRO batch, whatever the client says.
  assertEquals(
    testBufferBytes({ ...UDP, direction: "down", gso: true }),
    testBufferBytes({ ...UDP, direction: "down" }),
  );
});

Deno.test("testBufferBytes counts TCP per stream: the receive buffer up, the block down, both for bidir", () => {
  const tcp: StartRequest = { ...UDP, proto: "tcp", size: 1 << 20 };
  assertEquals(testBufferBytes(tcp), 2 * TCP_RECEIVE_BYTES);
  assertEquals(testBufferBytes({ ...tcp, direction: "down" }), 2 * (1 << 20));
  assertEquals(
    testBufferBytes({ ...tcp, direction: "bidir" }),
    2 * (TCP_RECEIVE_BYTES + (1 << 20)),
  );
});

/** A data connection whose every read fails with `error` (a stream that breaks, not ends). */
function brokenConn(error: Error): Deno.Conn {
  const addr: Deno.NetAddr = { transport: "tcp", hostname: "127.0.0.1", port: 9 };
  return {
    localAddr: addr,
    remoteAddr: addr,
    read: () => Promise.reject(error),
    write: (p: Uint8Array) => Promise.resolve(p.length),
    close: () => {},
    closeWrite: () => Promise.resolve(),
  } as unknown as Deno.Conn;
}

Deno.test("a TCP data stream that fails with an error other than a close ends its test with that reason, and is never an unhandled rejection", async () => {
  const lines: string[] = [];
  const hub = new ThroughputHub({ log: (line) => lines.push(line) });
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepted = listener.accept();
  using client = await Deno.connect({ port: (listener.addr as Deno.NetAddr).port });
  using server = await accepted;
  const start: StartRequest = { ...UDP, proto: "tcp", parallel: 1, size: 1024 };
  const request = encoder.encode(`${CONTROL_MAGIC}${JSON.stringify(start)}\n`);
  await client.write(request);
  const first = new Uint8Array(4096);
  const n = (await server.read(first))!;
  const serving = hub.control(server, first.subarray(0, n));
  const replies = new LineReader(client, new Uint8Array(0));
  const ready = decodeControl((await replies.next())!);
  assert(ready?.type === "ready", JSON.stringify(ready));
  const failing = brokenConn(new Deno.errors.TimedOut("connection timed out"));
  const attached = hub.data(failing, encoder.encode(`${DATA_MAGIC}${ready.test_id} 0\n`));
  const go = decodeControl((await replies.next())!);
  assertEquals(go?.type, "go");
  // The server's side fails at once: it ends the test and closes the control connection
  // (as for any test stopped early), and its log says why.
  assertEquals(await deadline(replies.next(), 5000), null);
  await deadline(serving, 5000);
  await deadline(attached, 5000);
  assert(
    lines.some((l) => /ended early \(data stream 0: connection timed out\)/.test(l)),
    lines.join("\n"),
  );
});
