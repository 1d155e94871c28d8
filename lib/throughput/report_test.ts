/**
 * Unit tests of throughput presentation: the JSON document's target and
 * per-stream fields, the summary's sizes, and aligned interval lines.
 *
 * @example
 * ```sh
 * deno test lib/throughput/report_test.ts
 * ```
 *
 * @module
 */

import { assert, assertEquals, assertMatch } from "@std/assert";
import type { ThroughputPlan } from "../config.ts";
import type { DirectionResult, ThroughputResult } from "./client.ts";
import {
  formatThroughput,
  formatThroughputInterval,
  receiverLimit,
  receiverSeconds,
  throughputJson,
} from "./report.ts";

function plan(over: Partial<ThroughputPlan> = {}): ThroughputPlan {
  return {
    endpoint: { transport: "tcp", hostname: "127.0.0.1", port: 5050 },
    proto: "tcp",
    direction: "up",
    parallel: 1,
    durationMs: 1000,
    size: 131072,
    bitrate: 0,
    intervalMs: 1000,
    timeoutMs: 5000,
    ...over,
  };
}

const DIRECTION: DirectionResult = {
  sent: {
    bytes: 2800,
    datagrams: 2,
    seconds: 1,
    streams: [{ stream: 0, bytes: 2800, datagrams: 2, seconds: 1 }],
  },
  received: {
    bytes: 1400,
    datagrams: 1,
    lost: 1,
    outOfOrder: 0,
    duplicates: 0,
    jitterMs: 0.01,
    seconds: 1,
    streams: [{
      stream: 0,
      bytes: 1400,
      datagrams: 1,
      lost: 1,
      out_of_order: 0,
      duplicates: 0,
      jitter_ms: 0.01,
      seconds: 1,
      intervals: [1400],
    }],
  },
  rcvbufErrors: 1,
};

function result(p: ThroughputPlan): ThroughputResult {
  return { plan: p, up: DIRECTION, down: undefined, elapsedS: 1, interrupted: false };
}

type Doc = { target: string; up: { streams: Record<string, unknown>[] } };

Deno.test("throughputJson's target has the probe report's form: transport, then HOST:PORT or [V6]:PORT", () => {
  assertEquals((throughputJson(result(plan())) as Doc).target, "tcp 127.0.0.1:5050");
  const v6 = plan({ proto: "udp", endpoint: { transport: "tcp", hostname: "::1", port: 7 } });
  assertEquals((throughputJson(result(v6)) as Doc).target, "udp [::1]:7");
});

Deno.test("throughputJson: TCP streams carry no datagram fields, UDP streams carry them all", () => {
  const tcp = (throughputJson(result(plan())) as Doc).up.streams[0]!;
  assertEquals(Object.keys(tcp).sort(), ["bytes", "interval_bytes", "stream"]);
  const udp = (throughputJson(result(plan({ proto: "udp", size: 1400 }))) as Doc).up.streams[0]!;
  assertEquals(Object.keys(udp).sort(), [
    "bytes",
    "datagrams",
    "duplicates",
    "interval_bytes",
    "jitter_ms",
    "lost",
    "out_of_order",
    "stream",
  ]);
});

Deno.test("formatThroughput prints the size exactly, '1,400 B datagrams', and '1 datagram' in the singular", () => {
  const lines = formatThroughput(result(plan({ proto: "udp", size: 1400 })));
  assertMatch(lines[0]!, /, 1,400 B datagrams/);
  assert(
    lines.some((l) => l.includes("dropped 1 datagram for a full receive buffer")),
    lines.join("\n"),
  );
  assertMatch(formatThroughput(result(plan()))[0]!, /, 128 KiB writes/);
});

Deno.test("formatThroughputInterval lines keep their columns aligned whatever the magnitudes", () => {
  const small = formatThroughputInterval(
    { startS: 0, endS: 1, sentBytes: 12, receivedBytes: 5 },
    "bidir",
  );
  const large = formatThroughputInterval(
    { startS: 9, endS: 10, sentBytes: 1.7e9, receivedBytes: 250e6 },
    "bidir",
  );
  for (const label of ["sent", "received"]) {
    assertEquals(large.indexOf(label), small.indexOf(label), `${small}\n${large}`);
  }
  assertEquals(large.length, small.length, `${small}\n${large}`);
});

// --- netkit's own receiver, and paced writes

function receiving(lost: number, rcvbufErrors: number | null): DirectionResult {
  return {
    sent: { bytes: 1_400_000, datagrams: 1000, seconds: 1, streams: [] },
    received: {
      bytes: (1000 - lost) * 1400,
      datagrams: 1000 - lost,
      lost,
      outOfOrder: 0,
      duplicates: 0,
      jitterMs: 0.01,
      seconds: 1,
      streams: [],
    },
    rcvbufErrors,
  };
}

function test(
  proto: "tcp" | "udp",
  bitrate: number,
  size: number,
  up: DirectionResult,
  hostname = "127.0.0.1",
): ThroughputResult {
  return {
    plan: {
      endpoint: { transport: "tcp", hostname, port: 5050 },
      proto,
      direction: "up",
      parallel: 1,
      durationMs: 1000,
      size,
      bitrate,
      intervalMs: 0,
      timeoutMs: 5000,
    },
    up,
    down: undefined,
    interrupted: false,
    elapsedS: 1,
  };
}

Deno.test("receive-buffer drops say plainly that netkit's receiver could not keep up", () => {
  assertEquals(
    receiverLimit(receiving(40, 40), false),
    "netkit's receiver could not keep up: the kernel dropped 40 datagrams for a full receive buffer (RcvbufErrors), so that loss is on the receiving host, not the network",
  );
});

Deno.test("loss on loopback without readable counters is put on this host; elsewhere nothing is claimed", () => {
  assertMatch(
    receiverLimit(receiving(40, null), true)!,
    /^on loopback there is no network: the loss is on this host/,
  );
  assertEquals(receiverLimit(receiving(40, null), false), undefined);
  assertEquals(receiverLimit(receiving(40, 0), false), undefined); // counters say: not this host
  assertEquals(receiverLimit(receiving(0, null), true), undefined);
});

Deno.test("the UDP report carries the receiver sentence; the header names shrunk TCP writes", () => {
  const udp = formatThroughput(test("udp", 10e6, 1400, receiving(40, 40)));
  assertEquals(udp.filter((l) => l.includes("could not keep up")).length, 1);
  const tcp = formatThroughput(test("tcp", 10_000, 131072, receiving(0, null)));
  assertMatch(
    tcp[0]!,
    /, 25 B writes \(--size 128 KiB is more than 20 ms at this bit rate\), paced at/,
  );
  const fast = formatThroughput(test("tcp", 1e9, 131072, receiving(0, null)));
  assertMatch(fast[0]!, /, 128 KiB writes, paced at/);
});

Deno.test("a UDP datagram larger than the whole test's bit budget is pointed out", () => {
  const lines = formatThroughput(test("udp", 1000, 1400, receiving(0, null)));
  assertMatch(
    lines[1]!,
    /^ {2}note: one 1,400 B datagram is more than .* allows in the whole test/,
  );
  assertEquals(
    formatThroughput(test("udp", 10e6, 1400, receiving(0, null))).filter((l) =>
      l.includes("note:")
    ),
    [],
  );
});

Deno.test("a receiver that took bytes in after the sender stopped (a draining queue) is rated over its own time", () => {
  const drained: DirectionResult = {
    ...DIRECTION,
    sent: { ...DIRECTION.sent, bytes: 1_000_000, seconds: 1 },
    received: { ...DIRECTION.received, bytes: 1_000_000, seconds: 2 },
  };
  assertEquals(receiverSeconds(drained), 2);
  const doc = throughputJson({ ...result(plan()), up: drained }) as {
    up: { sum_sent: { bits_per_second: number }; sum_received: { bits_per_second: number } };
  };
  assertEquals(doc.up.sum_sent.bits_per_second, 8_000_000);
  assertEquals(doc.up.sum_received.bits_per_second, 4_000_000);
  // A receiver whose first byte came late is still rated over the test's time, never faster.
  assertEquals(receiverSeconds({ ...drained, received: { ...drained.received, seconds: 0.5 } }), 1);
});
