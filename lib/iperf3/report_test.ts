import { assert, assertEquals } from "@std/assert";
import type { Iperf3Run } from "./client.ts";
import { formatServerFigures, iperf3RunJson, iperf3ShapedJson } from "./report.ts";
import { Iperf3Stream } from "./streams.ts";

function run(proto: "tcp" | "udp"): Iperf3Run {
  const up = new Iperf3Stream(0, true, "tcp", 1000, false);
  up.bytes = 5000;
  up.startedAt = 1;
  up.endedAt = 1001;
  const plan = {
    endpoint: { transport: "tcp" as const, hostname: "127.0.0.1", port: 5201 },
    proto,
    direction: "up" as const,
    parallel: 1,
    durationMs: 1000,
    size: 1000,
    bitrate: 0,
    intervalMs: 1000,
    timeoutMs: 5000,
  };
  const sent = { bytes: 5000, datagrams: 0, seconds: 1, streams: [] };
  return {
    result: {
      plan,
      elapsedS: 1,
      up: {
        sent,
        received: {
          bytes: 4990,
          datagrams: 0,
          lost: 0,
          outOfOrder: 0,
          duplicates: 0,
          jitterMs: null,
          seconds: 1,
          streams: [],
        },
        rcvbufErrors: null,
      },
      down: undefined,
    },
    server: {
      cpuUtilTotal: 1.5,
      cpuUtilUser: 1,
      cpuUtilSystem: 0.5,
      senderHasRetransmits: -1,
      congestionUsed: null,
      streams: [{
        id: 1,
        bytes: 4990,
        retransmits: -1,
        jitter: 0,
        errors: 0,
        packets: 0,
        startTime: 0,
        endTime: 1,
      }],
      raw: {},
    },
    cookie: "a".repeat(36),
    params: {
      proto,
      omitS: 0,
      timeS: 1,
      parallel: 1,
      reverse: false,
      bidirectional: false,
      len: 1000,
      bandwidth: 0,
      udp64: false,
      clientVersion: "3.12",
    },
    streams: [up],
    connections: [{
      localHost: "127.0.0.1",
      localPort: 4000,
      remoteHost: "127.0.0.1",
      remotePort: 5201,
    }],
    intervals: [{ startS: 0, endS: 1, omitted: false, bytes: [5000] }],
    startedAt: new Date(0),
  };
}

Deno.test("the server's own figures: one line per stream, as it sent them", () => {
  const lines = formatServerFigures(run("tcp"));
  assertEquals(lines.length, 2);
  assert(lines[1]!.includes("stream 1 received"), lines[1]);
  assert(!lines[1]!.includes("retransmits"), "unmeasured retransmits are not shown");
});

Deno.test("netkit's JSON keeps the server's results under iperf3_server", () => {
  const doc = iperf3RunJson(run("tcp")) as Record<string, unknown>;
  assertEquals(doc.protocol, "iperf3");
  const server = doc.iperf3_server as { streams: { bytes: number }[] };
  assertEquals(server.streams[0]!.bytes, 4990);
});

Deno.test("the iperf3-shaped document has start, intervals and end as iperf3 -J writes them", () => {
  const doc = iperf3ShapedJson(run("tcp"), "127.0.0.1", 5201) as {
    start: { cookie: string; test_start: { protocol: string }; connecting_to: { port: number } };
    intervals: { sum: { bytes: number } }[];
    end: {
      sum_sent: { bytes: number };
      sum_received: { bytes: number };
      streams: { sender: unknown }[];
    };
  };
  assertEquals(doc.start.test_start.protocol, "TCP");
  assertEquals(doc.start.connecting_to.port, 5201);
  assertEquals(doc.intervals[0]!.sum.bytes, 5000);
  assertEquals(doc.end.sum_sent.bytes, 5000);
  assertEquals(doc.end.sum_received.bytes, 4990);
  assert(doc.end.streams[0]!.sender);
  const udp = iperf3ShapedJson(run("udp"), "127.0.0.1", 5201) as { end: { sum?: unknown } };
  assert(udp.end.sum !== undefined, "UDP has end.sum");
});
