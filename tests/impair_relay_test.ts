/**
 * Tests of the product's UDP relay (lib/relay/udp.ts) as netkit's delivery
 * tests use it in-process: exact decisions by datagram index (`script`),
 * seeded random rates, delays, and a clean close; run against a tiny in-test
 * UDP echo server. (These were the tests of the test-only impairing relay the
 * product's relay replaced; their assertions are kept.)
 *
 * @example
 * ```sh
 * deno test --unstable-net --allow-net --trace-leaks tests/impair_relay_test.ts
 * ```
 *
 * @module
 */
import { assert, assertEquals, assertNotEquals, assertThrows } from "@std/assert";
import type { DirectionCounters } from "../lib/relay/counters.ts";
import { type PathDecision, REORDER_FLUSH_MS } from "../lib/relay/datagram_path.ts";
import { startUdpRelay, type UdpRelay, type UdpRelayOptions } from "../lib/relay/udp.ts";

const LOCALHOST = "127.0.0.1";
/** Guard against hangs only; never used to wait for something to happen. */
const RECEIVE_TIMEOUT_MS = 3000;

interface Echo {
  addr: Deno.NetAddr;
  close(): Promise<void>;
}

/** RFC 862-style UDP echo on 127.0.0.1:0. */
function startEcho(): Echo {
  const socket = Deno.listenDatagram({ hostname: LOCALHOST, port: 0, transport: "udp" });
  const done = (async () => {
    const buffer = new Uint8Array(65536);
    try {
      for (;;) {
        const [data, from] = await socket.receive(buffer);
        await socket.send(data, from);
      }
    } catch {
      // socket closed
    }
  })();
  return {
    addr: socket.addr as Deno.NetAddr,
    async close() {
      socket.close();
      await done;
    },
  };
}

interface Client {
  send(id: number): Promise<void>;
  /** Next reply's id; rejects if nothing arrives within RECEIVE_TIMEOUT_MS. */
  receive(): Promise<number>;
  receiveMany(count: number): Promise<number[]>;
  close(): void;
}

function startClient(to: Deno.NetAddr): Client {
  const socket = Deno.listenDatagram({ hostname: LOCALHOST, port: 0, transport: "udp" });
  const buffer = new Uint8Array(64);
  const client: Client = {
    async send(id) {
      const payload = new Uint8Array(4);
      new DataView(payload.buffer).setUint32(0, id);
      await socket.send(payload, to);
    },
    async receive() {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error("no reply in time")), RECEIVE_TIMEOUT_MS);
      });
      try {
        const [data] = await Promise.race([socket.receive(buffer), timeout]);
        assertEquals(data.length, 4);
        return new DataView(data.buffer, data.byteOffset, 4).getUint32(0);
      } finally {
        clearTimeout(timer);
      }
    },
    async receiveMany(count) {
      const ids: number[] = [];
      for (let i = 0; i < count; i++) ids.push(await client.receive());
      return ids;
    },
    close() {
      socket.close();
    },
  };
  return client;
}

type RelayOptions = Omit<UdpRelayOptions, "listen" | "target">;

/** The four counts the old test relay kept, from the product's counters of one direction. */
function legacy(d: DirectionCounters) {
  return {
    forwarded: d.datagramsOut,
    dropped: d.dropped,
    duplicated: d.duplicated,
    reordered: d.reordered,
  };
}

function stats(relay: UdpRelay) {
  return { toServer: legacy(relay.counters.up), toClient: legacy(relay.counters.down) };
}

function startRelay(target: Deno.NetAddr, options: RelayOptions = {}): UdpRelay {
  return startUdpRelay({ listen: { hostname: LOCALHOST, port: 0 }, target, ...options });
}

/** Runs `body` with an echo server, a relay in front of it and a client pointed at the relay. */
async function withRelay(
  options: RelayOptions,
  body: (client: Client, relay: UdpRelay) => Promise<void>,
): Promise<void> {
  const echo = startEcho();
  const relay = startRelay(echo.addr, options);
  const client = startClient(relay.addr);
  try {
    await body(client, relay);
  } finally {
    client.close();
    await relay.close();
    await echo.close();
  }
}

async function sendRange(client: Client, from: number, to: number): Promise<void> {
  for (let id = from; id < to; id++) await client.send(id);
}

const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);

Deno.test("impair relay without impairments forwards every datagram both ways in order", async () => {
  await withRelay({}, async (client, relay) => {
    await sendRange(client, 0, 10);
    assertEquals(await client.receiveMany(10), range(0, 10));
    assertEquals(relay.addr.hostname, LOCALHOST);
    assert(relay.addr.port > 0);
    assertEquals(stats(relay), {
      toServer: { forwarded: 10, dropped: 0, duplicated: 0, reordered: 0 },
      toClient: { forwarded: 10, dropped: 0, duplicated: 0, reordered: 0 },
    });
  });
});

Deno.test("impair relay dropping index 3 of 10 toward the server returns exactly 9 replies", async () => {
  await withRelay({ up: { script: { drop: new Set([3]) } } }, async (client, relay) => {
    await sendRange(client, 0, 10);
    assertEquals(await client.receiveMany(9), [0, 1, 2, 4, 5, 6, 7, 8, 9]);
    // No 10th reply: the next one is the sentinel sent afterwards.
    await client.send(10);
    assertEquals(await client.receive(), 10);
    assertEquals(stats(relay).toServer, {
      forwarded: 10,
      dropped: 1,
      duplicated: 0,
      reordered: 0,
    });
    assertEquals(stats(relay).toClient, {
      forwarded: 10,
      dropped: 0,
      duplicated: 0,
      reordered: 0,
    });
  });
});

Deno.test("impair relay drops toward the client by reply index", async () => {
  await withRelay({ down: { script: { drop: new Set([0, 9]) } } }, async (client, relay) => {
    await sendRange(client, 0, 10);
    assertEquals(await client.receiveMany(8), range(1, 9));
    await client.send(10);
    assertEquals(await client.receive(), 10);
    assertEquals(stats(relay).toServer.forwarded, 11);
    assertEquals(stats(relay).toClient, {
      forwarded: 9,
      dropped: 2,
      duplicated: 0,
      reordered: 0,
    });
  });
});

Deno.test("impair relay duplicating index 2 toward the server returns 11 replies with 2 twice", async () => {
  await withRelay({ up: { script: { duplicate: new Set([2]) } } }, async (client, relay) => {
    await sendRange(client, 0, 10);
    assertEquals(await client.receiveMany(11), [0, 1, 2, 2, 3, 4, 5, 6, 7, 8, 9]);
    await client.send(10);
    assertEquals(await client.receive(), 10);
    assertEquals(stats(relay).toServer, {
      forwarded: 12,
      dropped: 0,
      duplicated: 1,
      reordered: 0,
    });
    assertEquals(stats(relay).toClient.forwarded, 12);
  });
});

Deno.test("impair relay duplicates toward the client by reply index", async () => {
  await withRelay({ down: { script: { duplicate: new Set([5]) } } }, async (client, relay) => {
    await sendRange(client, 0, 10);
    assertEquals(await client.receiveMany(11), [0, 1, 2, 3, 4, 5, 5, 6, 7, 8, 9]);
    assertEquals(stats(relay).toClient, {
      forwarded: 11,
      dropped: 0,
      duplicated: 1,
      reordered: 0,
    });
  });
});

Deno.test("impair relay sends a reordered datagram right after the next one", async () => {
  await withRelay({ up: { script: { reorder: new Set([4]) } } }, async (client, relay) => {
    await sendRange(client, 0, 10);
    assertEquals(await client.receiveMany(10), [0, 1, 2, 3, 5, 4, 6, 7, 8, 9]);
    assertEquals(stats(relay).toServer, {
      forwarded: 10,
      dropped: 0,
      duplicated: 0,
      reordered: 1,
    });
  });
});

Deno.test("impair relay holds consecutive reordered replies together and releases them in order", async () => {
  await withRelay({ down: { script: { reorder: new Set([2, 3]) } } }, async (client, relay) => {
    await sendRange(client, 0, 10);
    assertEquals(await client.receiveMany(10), [0, 1, 4, 2, 3, 5, 6, 7, 8, 9]);
    assertEquals(stats(relay).toClient.reordered, 2);
  });
});

Deno.test("impair relay releases a reordered datagram after a dropped successor", async () => {
  await withRelay(
    { up: { script: { reorder: new Set([1]), drop: new Set([2]) } } },
    async (client) => {
      await sendRange(client, 0, 5);
      assertEquals(await client.receiveMany(4), [0, 1, 3, 4]);
    },
  );
});

Deno.test("impair relay flushes a reordered last datagram after 50 ms without a successor", async () => {
  await withRelay({ up: { script: { reorder: new Set([9]) } } }, async (client, relay) => {
    await sendRange(client, 0, 9);
    assertEquals(await client.receiveMany(9), range(0, 9));
    const sentAt = performance.now();
    await client.send(9);
    assertEquals(await client.receive(), 9);
    const waited = performance.now() - sentAt;
    assert(waited >= REORDER_FLUSH_MS - 5, `flushed after ${waited} ms`);
    assertEquals(stats(relay).toServer.reordered, 1);
    assertEquals(stats(relay).toServer.forwarded, 10);
  });
});

Deno.test("impair relay adds delayMs in each direction and keeps order", async () => {
  await withRelay({ up: { delayMs: 30 }, down: { delayMs: 20 } }, async (client) => {
    const sentAt = performance.now();
    await sendRange(client, 0, 5);
    assertEquals(await client.receiveMany(5), range(0, 5));
    const rtt = performance.now() - sentAt;
    assert(rtt >= 50 - 5, `round trip ${rtt} ms`);
  });
});

Deno.test("impair relay random drop and duplicate rates are seeded, reported and applied", async () => {
  const N = 200;
  async function run(seed: number): Promise<PathDecision[]> {
    const decisions: PathDecision[] = [];
    let allDecided!: () => void;
    const decided = new Promise<void>((resolve) => (allDecided = resolve));
    const options: RelayOptions = {
      seed,
      up: { loss: 0.3, duplicate: 0.2 },
      onDecision(direction, decision) {
        if (direction !== "up") return;
        decisions.push(decision);
        if (decisions.length === N) allDecided();
      },
    };
    await withRelay(options, async (client, relay) => {
      await sendRange(client, 0, N);
      await decided;
      const expected: number[] = [];
      for (const d of decisions) {
        if (!d.dropped) expected.push(d.index);
        if (d.duplicated) expected.push(d.index);
      }
      const up = stats(relay).toServer;
      assertEquals(up.dropped, decisions.filter((d) => d.dropped).length);
      assertEquals(up.duplicated, decisions.filter((d) => d.duplicated).length);
      assertEquals(up.forwarded, expected.length);
      assert(up.dropped > 30 && up.dropped < 90, `dropped ${up.dropped}`);
      assert(up.duplicated > 10 && up.duplicated < 60, `duplicated ${up.duplicated}`);
      const replies = await client.receiveMany(expected.length);
      assertEquals(replies, expected); // ids equal indices; no reordering configured
    });
    return decisions;
  }
  const first = await run(7);
  const again = await run(7);
  const other = await run(8);
  assertEquals(again, first);
  assertNotEquals(other, first);
});

Deno.test("impair relay close clears pending delay and reorder-flush timers", async () => {
  const echo = startEcho();
  let decisions = 0;
  let bothDecided!: () => void;
  const decided = new Promise<void>((resolve) => (bothDecided = resolve));
  try {
    await using relay = startRelay(echo.addr, {
      up: { delayMs: 60_000, script: { reorder: new Set([1]) } },
      onDecision() {
        if (++decisions === 2) bothDecided();
      },
    });
    const client = startClient(relay.addr);
    try {
      await client.send(0); // parked in a 60 s delay timer
      await client.send(1); // parked as reordered, with a 50 ms flush timer
      await decided;
      assertEquals(stats(relay).toServer.forwarded, 0);
      assertEquals(stats(relay).toServer.reordered, 1);
    } finally {
      client.close();
    }
    // Leaving the block disposes the relay; --trace-leaks fails on any timer left behind.
  } finally {
    await echo.close();
  }
});

Deno.test("impair relay close is idempotent", async () => {
  const echo = startEcho();
  const relay = startRelay(echo.addr);
  await relay.close();
  await relay.close();
  await relay[Symbol.asyncDispose]();
  await echo.close();
});

Deno.test("impair relay rejects rates outside 0..1 and negative delays", () => {
  const target = { transport: "udp", hostname: LOCALHOST, port: 9 } as const;
  assertThrows(() => startRelay(target, { up: { loss: 1.5 } }), RangeError);
  assertThrows(() => startRelay(target, { down: { duplicate: -0.1 } }), RangeError);
  assertThrows(() => startRelay(target, { down: { delayMs: -1 } }), RangeError);
});
