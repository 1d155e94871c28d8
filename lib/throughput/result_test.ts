import { assertEquals } from "@std/assert";
import type { ReceivedFigures, SentFigures } from "./protocol.ts";
import { combineDirection } from "./result.ts";

function received(stream: number, jitter: number | null): ReceivedFigures {
  return {
    stream,
    bytes: 100 * (stream + 1),
    datagrams: 10,
    lost: stream,
    out_of_order: 1,
    duplicates: 2,
    jitter_ms: jitter,
    seconds: 1 + stream,
    intervals: [],
  };
}

Deno.test("combineDirection sums counts, averages the jitters measured, takes the longest seconds", () => {
  const sent: SentFigures[] = [
    { stream: 0, bytes: 100, datagrams: 10, seconds: 2 },
    { stream: 1, bytes: 200, datagrams: 20, seconds: 3 },
  ];
  const got = combineDirection(sent, [received(0, 1), received(1, null), received(2, 3)], 7);
  assertEquals(got.sent, { bytes: 300, datagrams: 30, seconds: 3, streams: sent });
  assertEquals(got.received.bytes, 600);
  assertEquals(got.received.datagrams, 30);
  assertEquals(got.received.lost, 3);
  assertEquals(got.received.outOfOrder, 3);
  assertEquals(got.received.duplicates, 6);
  assertEquals(got.received.jitterMs, 2);
  assertEquals(got.received.seconds, 3);
  assertEquals(got.rcvbufErrors, 7);
});

Deno.test("combineDirection of no streams is zeros with no jitter", () => {
  const got = combineDirection([], [], null);
  assertEquals(got.sent.seconds, 0);
  assertEquals(got.received.seconds, 0);
  assertEquals(got.received.jitterMs, null);
  assertEquals(got.rcvbufErrors, null);
});
