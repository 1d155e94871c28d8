import { assertEquals } from "@std/assert";
import { GRO_BATCH_BYTES } from "../engine/types.ts";
import { testBufferBytes } from "./hub.ts";
import type { StartRequest } from "./protocol.ts";
import { TCP_RECEIVE_BYTES, UDP_RECEIVER_BYTES } from "./streams.ts";

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
