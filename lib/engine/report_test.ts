import { assertEquals, assertMatch } from "@std/assert";
import { engineJson, formatEngine, formatLowWater } from "./report.ts";
import { type EngineUse, TCP_ENGINE_USE } from "./types.ts";

const NATIVE: EngineUse = {
  engine: "native",
  sendBatch: 32,
  receiveBatch: 64,
  gso: false,
  gro: false,
  receiveBuffer: 8 * 1024 * 1024,
  sendBuffer: 4 * 1024 * 1024,
  reason: "auto: sendmmsg/recvmmsg through /lib/x86_64-linux-gnu/libc.so.6",
};

Deno.test("engine JSON puts engine, gso and gro on top and the rest with the reason beneath", () => {
  assertEquals(engineJson(NATIVE), {
    engine: "native",
    gso: false,
    gro: false,
    engine_features: {
      send_batch: 32,
      receive_batch: 64,
      receive_buffer: 8388608,
      send_buffer: 4194304,
      reason: "auto: sendmmsg/recvmmsg through /lib/x86_64-linux-gnu/libc.so.6",
    },
  });
  assertEquals(engineJson(TCP_ENGINE_USE).engine_features.receive_buffer, null);
});

Deno.test("the engine line names batches, buffers, and says GSO is labelled as loopback-only", () => {
  assertEquals(
    formatEngine(NATIVE),
    "engine native: sendmmsg/recvmmsg batches of up to 32/64, receive buffer 8 MiB, send buffer 4 MiB, no GSO/GRO",
  );
  assertEquals(
    formatEngine(TCP_ENGINE_USE),
    "engine deno: Deno's sockets, one op per datagram or write, no GSO/GRO",
  );
  assertMatch(formatEngine({ ...NATIVE, gso: true }), /GSO on \(on loopback it bypasses/);
});

Deno.test("formatLowWater names the mark and the socket option, as the engine line and the server's end-of-test lines say it", () => {
  assertEquals(formatLowWater(131072), "receive low-water mark 128 KiB (SO_RCVLOWAT)");
  assertEquals(
    formatEngine({ ...TCP_ENGINE_USE, receiveLowWater: 131072 }),
    "engine deno: Deno's sockets, one op per datagram or write, receive low-water mark 128 KiB (SO_RCVLOWAT), no GSO/GRO",
  );
});
