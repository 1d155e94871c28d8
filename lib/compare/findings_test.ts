/**
 * Unit tests of the plain-language findings `netkit compare` prints: which
 * sentences appear for which pair of reports, and their exact wording where a
 * user reads numbers from them.
 *
 * @module
 */

import { assert, assertEquals, assertMatch } from "@std/assert";
import { describeDifferences } from "./findings.ts";
import type { ProbeReport } from "../probe/run_probe.ts";
import type { LatencySummary } from "../stats/histogram.ts";

/** An RTT summary whose percentiles all scale with `p99`. */
function rtt(p50: number, p99: number): LatencySummary {
  return {
    min: p50 / 2,
    mean: p50,
    p50,
    p90: (p50 + p99) / 2,
    p99,
    p999: p99 * 1.2,
    max: p99 * 1.5,
  };
}

/** A clean, paced 10,000-probe run with p50 1 ms and p99 2 ms. */
function clean(transport: "tcp" | "udp", overrides: Partial<ProbeReport> = {}): ProbeReport {
  return {
    transport,
    target: `${transport} 127.0.0.1:5050`,
    size: 64,
    rateRequested: 1000,
    sent: 10_000,
    received: 10_000,
    lost: 0,
    lostFraction: 0,
    outOfOrder: 0,
    duplicates: 0,
    stale: 0,
    malformed: 0,
    rtt: rtt(1, 2),
    jitterMs: 0.05,
    bitsPerSecond: 512_000,
    ratePps: 1000,
    elapsedS: 10,
    ...overrides,
  };
}

/** UDP that lost `lost` of 10,000. */
function lossy(lost: number, overrides: Partial<ProbeReport> = {}): ProbeReport {
  return clean("udp", {
    received: 10_000 - lost,
    lost,
    lostFraction: lost / 10_000,
    ...overrides,
  });
}

const find = (lines: string[], re: RegExp) => lines.filter((l) => re.test(l));

Deno.test("UDP loss with TCP clean leads with the loss count, percentage and TCP's in-order delivery", () => {
  const lines = describeDifferences(clean("tcp"), lossy(37));
  assertEquals(
    lines[0],
    "UDP lost 37 of 10,000 probes (0.37%); TCP delivered all 10,000 in order.",
  );
});

Deno.test("UDP loss with a slower TCP tail adds the tail ratio to the first sentence", () => {
  const lines = describeDifferences(clean("tcp", { rtt: rtt(1, 8.2) }), lossy(37));
  assert(
    lines[0]!.startsWith(
      "UDP lost 37 of 10,000 probes (0.37%); TCP delivered all 10,000 in order, at 4.1x UDP's p99 RTT (8.20 vs 2.00 ms)",
    ),
    lines[0],
  );
});

Deno.test("TCP's delivery is not called 'in order' when its report shows duplicates", () => {
  const lines = describeDifferences(clean("tcp", { duplicates: 1 }), lossy(37));
  assertEquals(lines[0], "UDP lost 37 of 10,000 probes (0.37%); TCP delivered all 10,000.");
});

Deno.test("no loss on either side says both delivered every probe, with TCP's tail when notably slower", () => {
  const same = describeDifferences(clean("tcp"), clean("udp"));
  assertEquals(same[0], "Both delivered every probe (TCP 10,000, UDP 10,000).");
  const slow = describeDifferences(clean("tcp", { rtt: rtt(1, 4.8) }), clean("udp"));
  assertEquals(
    slow[0],
    "Both delivered every probe (TCP 10,000, UDP 10,000); TCP ran at 2.4x UDP's p99 RTT (4.80 vs 2.00 ms).",
  );
});

Deno.test("TCP echoes missing within the timeout are explained as a stall, not a drop", () => {
  const lines = describeDifferences(
    clean("tcp", { received: 9_997, lost: 3, lostFraction: 3 / 10_000 }),
    lossy(37),
  );
  assert(
    lines[0]!.startsWith("TCP did not get 3 of 10,000 echoes back within the timeout (0.03%)"),
    lines[0],
  );
  assertMatch(lines[0]!, /late, not dropped/);
  assertMatch(lines[0]!, /UDP lost 37 \(0\.37%\)\.$/);
});

Deno.test("UDP loss is explained by the embedded server's split when known", () => {
  const lines = describeDifferences(clean("tcp"), lossy(37), {
    udpLossSplit: { toServer: 30, fromServer: 7 },
    rcvbufErrors: 99,
  });
  const why = find(lines, /^Why:/);
  assertEquals(why.length, 1);
  assert(
    why[0]!.startsWith(
      "Why: of the 37 lost, 30 never reached the server's socket reads and 7 were echoed but never reached ours",
    ),
    why[0],
  );
});

Deno.test("UDP loss is explained by kernel receive-buffer overflows when only those are known", () => {
  const lines = describeDifferences(clean("tcp"), lossy(37), { rcvbufErrors: 1_234 });
  const why = find(lines, /^Why:/);
  assertEquals(why.length, 1);
  assertMatch(why[0]!, /^Why: the kernel counted 1,234 UDP receive-buffer overflows/);
});

Deno.test("UDP loss with no evidence gets the generic no-retransmission explanation", () => {
  const lines = describeDifferences(clean("tcp"), lossy(37), { rcvbufErrors: 0 });
  const why = find(lines, /^Why:/);
  assertEquals(why.length, 1);
  assertMatch(why[0]!, /^Why: UDP has no retransmission and no flow control/);
});

Deno.test("no 'Why' sentence about loss when UDP lost nothing", () => {
  const lines = describeDifferences(clean("tcp"), clean("udp"), {
    udpLossSplit: { toServer: 0, fromServer: 0 },
    rcvbufErrors: 5,
  });
  assertEquals(find(lines, /^Why:/), []);
});

Deno.test("the out-of-order sentence appears only when UDP reordered something", () => {
  assertEquals(find(describeDifferences(clean("tcp"), lossy(37)), /out of order/), []);
  const lines = describeDifferences(clean("tcp"), lossy(37, { outOfOrder: 12 }));
  assertEquals(find(lines, /out of order/), [
    "UDP delivered 12 probes out of order; TCP's probes cannot arrive out of order: it delivers one ordered byte stream.",
  ]);
});

Deno.test("the duplicate sentence appears only when UDP delivered duplicates", () => {
  assertEquals(find(describeDifferences(clean("tcp"), clean("udp")), /duplicate/), []);
  const lines = describeDifferences(clean("tcp"), clean("udp", { duplicates: 1_500 }));
  assertEquals(find(lines, /duplicate/), [
    "UDP delivered 1,500 duplicate echoes; TCP discards duplicate segments, so it never does.",
  ]);
});

Deno.test("paced UDP loss with TCP p99 at 1.5x or more explains head-of-line blocking", () => {
  const lines = describeDifferences(clean("tcp", { rtt: rtt(1, 6) }), lossy(37));
  const hol = find(lines, /head-of-line/);
  assertEquals(hol.length, 1);
  assert(
    hol[0]!.startsWith("TCP's p99 RTT was 3.0x UDP's (6.00 vs 2.00 ms). Why: TCP retransmits"),
    hol[0],
  );
  // Exactly at the threshold it still counts.
  const edge = describeDifferences(clean("tcp", { rtt: rtt(1, 3) }), lossy(37));
  assertEquals(find(edge, /head-of-line/).length, 1);
});

Deno.test("no head-of-line explanation below 1.5x, without UDP loss, or when unpaced", () => {
  const below = describeDifferences(clean("tcp", { rtt: rtt(1, 2.9) }), lossy(37));
  assertEquals(find(below, /head-of-line/), []);
  assertEquals(find(below, /^Latency was similar/).length, 1);

  const noLoss = describeDifferences(clean("tcp", { rtt: rtt(1, 6) }), clean("udp"));
  assertEquals(find(noLoss, /head-of-line/), []);

  const unpaced = describeDifferences(
    clean("tcp", { rateRequested: 0, ratePps: 80_000, rtt: rtt(1, 6) }),
    lossy(37, { rateRequested: 0, ratePps: 80_000 }),
  );
  assertEquals(find(unpaced, /head-of-line/), []);
  const flow = find(unpaced, /flow control made the sender wait/);
  assertEquals(flow.length, 1);
  assert(flow[0]!.startsWith("TCP's p99 RTT was 3.0x UDP's"), flow[0]);
});

Deno.test("a slower UDP is reported with the ratio, and with the buffer explanation when unpaced", () => {
  const paced = describeDifferences(clean("tcp"), clean("udp", { rtt: rtt(1, 5) }));
  assertEquals(find(paced, /^UDP's/), ["UDP's p99 RTT was 2.5x TCP's (5.00 vs 2.00 ms)."]);
  const unpaced = describeDifferences(
    clean("tcp", { rateRequested: 0, ratePps: 50_000 }),
    clean("udp", { rateRequested: 0, ratePps: 50_000, rtt: rtt(1, 5) }),
  );
  assertMatch(
    find(unpaced, /^UDP's/)[0]!,
    /^UDP's p99 RTT was 2\.5x TCP's \(5\.00 vs 2\.00 ms\): unpaced datagrams waited/,
  );
});

Deno.test("similar latency is stated with both p99s and medians", () => {
  const lines = describeDifferences(clean("tcp"), clean("udp", { rtt: rtt(1.2, 2.5) }));
  assertEquals(find(lines, /^Latency/), [
    "Latency was similar: p99 RTT 2.00 ms over TCP, 2.50 ms over UDP; median 1.00 vs 1.20 ms.",
  ]);
});

Deno.test("a sender below 90% of the requested rate gets a pacing warning naming its transport", () => {
  const lines = describeDifferences(clean("tcp"), clean("udp", { ratePps: 850 }));
  assertEquals(find(lines, /below the/), [
    "UDP sent at 850/s, below the 1,000/s asked: the sender could not keep up, so compare rates with care.",
  ]);
  assertEquals(
    find(describeDifferences(clean("tcp"), clean("udp", { ratePps: 950 })), /below/),
    [],
  );
});

Deno.test("when UDP got no echo at all the findings have no latency sentence and no NaN or null", () => {
  const none = lossy(10_000, {
    received: 0,
    rtt: {
      min: null,
      mean: null,
      p50: null,
      p90: null,
      p99: null,
      p999: null,
      max: null,
    },
    jitterMs: null,
    bitsPerSecond: 0,
  });
  const lines = describeDifferences(clean("tcp"), none);
  assert(lines[0]!.startsWith("UDP lost 10,000 of 10,000 probes (100.00%)"), lines[0]);
  assertEquals(find(lines, /RTT/), []);
  for (const line of lines) {
    assert(!/NaN|null|undefined|Infinity/.test(line), line);
    assert(line.length > 0);
  }
});
