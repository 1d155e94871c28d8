import { assertEquals, assertMatch } from "@std/assert";
import { emptyRelayCounters, formatRelaySummary, relaySummaryJson } from "./counters.ts";

Deno.test("formatRelaySummary prints totals, then each direction, datagram counts for UDP", () => {
  const c = emptyRelayCounters();
  c.connections = 2;
  c.up.bytesIn = 2048;
  c.up.datagramsIn = 10;
  c.up.dropped = 1;
  const [total, up, down] = formatRelaySummary(c, "datagram", 7);
  assertEquals(
    total,
    "summary: 2 sessions, 0 refused, 0 denied, 0 expired, 0 rate-limited, seed 7",
  );
  assertMatch(up!, /^ {2}up \(client → target\): 2\.00 KiB in, .*10 datagrams in, .*1 dropped/);
  assertMatch(down!, /^ {2}down \(target → client\): /);
  const [stream] = formatRelaySummary(c, "stream", 1);
  assertMatch(stream!, /2 connections, .* 0 failed, 0 reset, seed 1$/);
});

Deno.test("relaySummaryJson carries every counter in snake_case", () => {
  const c = emptyRelayCounters();
  c.down.queueDropped = 3;
  const doc = relaySummaryJson(c, { listen: "udp 0.0.0.0:1", target: "udp [::1]:2", seed: 9 }) as {
    down: Record<string, number>;
    seed: number;
  };
  assertEquals(doc.seed, 9);
  assertEquals(doc.down.queue_dropped, 3);
  assertEquals(Object.keys(doc.down).length, 10);
  assertEquals((doc as unknown as { rate_limited: number }).rate_limited, 0);
});
