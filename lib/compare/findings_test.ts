/**
 * Unit tests of the plain-language findings `netkit compare` prints: which
 * sentences appear for which pair of reports (constructed inputs, one rule
 * at a time), their exact wording where a user reads numbers from them, and
 * that the demo's sentences stay the same whatever its figures.
 *
 * @module
 */

import { assert, assertEquals, assertMatch } from "@std/assert";
import { mulberry32 } from "../../tests/support/prng.ts";
import { compareLatency, describeDifferences, MIN_ECHOES } from "./findings.ts";
import {
  type ProbeReport,
  type RttIntervals,
  SUB_RUNS,
  type SubRunRtt,
} from "../probe/run_probe.ts";
import type { LatencySummary } from "../stats/histogram.ts";

/** An RTT summary whose percentiles all scale with `p50` and `p99`. */
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

/** Confidence intervals `spread` (a fraction) either side of each percentile. */
function intervals(summary: LatencySummary, spread = 0.1): RttIntervals {
  const around = (v: number | null) =>
    v === null ? null : { lo: v * (1 - spread), hi: v * (1 + spread) };
  return { p50: around(summary.p50), p99: around(summary.p99), p999: around(summary.p999) };
}

/** Ten sub-runs of `count` echoes each, every one with the summary's percentiles. */
function subRuns(summary: LatencySummary, count = 1_000): SubRunRtt[] {
  return Array.from({ length: SUB_RUNS }, () => ({
    count,
    p50: summary.p50,
    p99: summary.p99,
    p999: summary.p999,
  }));
}

/** RTT fields for a report: the summary, narrow (±10%) intervals and steady sub-runs. */
function rtts(
  p50: number,
  p99: number,
  spread = 0.1,
): Pick<ProbeReport, "rtt" | "rttInterval" | "rttSubRuns"> {
  const summary = rtt(p50, p99);
  return { rtt: summary, rttInterval: intervals(summary, spread), rttSubRuns: subRuns(summary) };
}

/** A clean, paced 10,000-probe run with p50 1 ms and p99 2 ms. */
function clean(transport: "tcp" | "udp", overrides: Partial<ProbeReport> = {}): ProbeReport {
  return {
    transport,
    target: `${transport} 192.0.2.1:5050`,
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
    ...rtts(1, 2),
    jitterMs: 0.05,
    bitsPerSecond: 512_000,
    ratePps: 1000,
    elapsedS: 10,
    interrupted: false,
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

/** The numbers in a sentence, as written (1,234 and 0.37 and 4.1x count as figures). */
function figures(sentence: string): string[] {
  return sentence.match(/\d[\d,]*(\.\d+)?/g) ?? [];
}

/** A sentence with its figures replaced: what must not change from run to run. */
const shape = (sentence: string) => sentence.replace(/\d[\d,]*(\.\d+)?/g, "#");

// --- 1. What arrived ---------------------------------------------------------------------------

Deno.test("UDP loss with TCP clean leads with the loss count, percentage and TCP's in-order delivery", () => {
  const lines = describeDifferences(clean("tcp"), lossy(37));
  assertEquals(
    lines[0],
    "UDP lost 37 of 10,000 probes (0.37%); TCP delivered every probe, in order.",
  );
});

Deno.test("TCP's delivery is not called 'in order' when its report shows duplicates", () => {
  const lines = describeDifferences(clean("tcp", { duplicates: 1 }), lossy(37));
  assertEquals(lines[0], "UDP lost 37 of 10,000 probes (0.37%); TCP delivered every probe.");
});

Deno.test("no loss on either side says both delivered every probe, a count only once", () => {
  assertEquals(
    describeDifferences(clean("tcp"), clean("udp"))[0],
    "Both delivered all 10,000 probes.",
  );
  assertEquals(
    describeDifferences(clean("tcp", { sent: 9_998, received: 9_998 }), clean("udp"))[0],
    "Both delivered every probe (TCP 9,998, UDP 10,000).",
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
  const udpClean = describeDifferences(
    clean("tcp", { received: 9_997, lost: 3, lostFraction: 3 / 10_000 }),
    clean("udp"),
  );
  assertMatch(udpClean[0]!, /UDP lost none\.$/);
});

// --- 2. Why UDP lost: each causal sentence names its evidence, or says the cause is unknown ---

Deno.test("UDP loss is explained from the embedded server's counters when known, and put on this host", () => {
  const lines = describeDifferences(clean("tcp"), lossy(37), {
    udpLossSplit: { toServer: 30, fromServer: 7 },
    rcvbufErrors: 99,
    loopback: true,
  });
  const why = find(lines, /^Why/);
  assertEquals(why, [
    "Why (the embedded server's counters): 30 never reached the server's socket reads and 7 were echoed but never reached netkit's client.",
  ]);
  assertEquals(find(lines, /netkit's receivers could not keep up/).length, 1);
  assertEquals(find(lines, /the loss is on this host/).length, 1);
});

Deno.test("the server's split never repeats a figure: all on one side, or half and half", () => {
  const allBack = describeDifferences(clean("tcp"), lossy(37), {
    udpLossSplit: { toServer: 0, fromServer: 37 },
  });
  assertMatch(
    find(allBack, /^Why/)[0]!,
    /none was lost before the server's socket reads; 37 echoes never reached netkit's client\.$/,
  );
  const noneThere = describeDifferences(clean("tcp"), lossy(37), {
    udpLossSplit: { toServer: 37, fromServer: 0 },
  });
  assertMatch(
    find(noneThere, /^Why/)[0]!,
    /: 37 never reached the server's socket reads; none was lost on the way back\.$/,
  );
  const halves = describeDifferences(clean("tcp"), lossy(40), {
    udpLossSplit: { toServer: 20, fromServer: 20 },
  });
  assertMatch(find(halves, /^Why/)[0]!, /as many never reached .* \(20 each\)\.$/);
});

Deno.test("UDP loss with kernel receive-buffer drops says netkit's receiver could not keep up", () => {
  const lines = describeDifferences(clean("tcp"), lossy(37), { rcvbufErrors: 1_234 });
  const why = find(lines, /^Why/);
  assertEquals(why.length, 1);
  assertMatch(why[0]!, /^Why \(kernel counters\): this host's kernel dropped 1,234 UDP datagrams/);
  assertMatch(why[0]!, /netkit's receiver could not keep up, so the loss is on this host\.$/);
  // Fewer drops than losses on a remote path: only part of the loss is ours.
  const part = describeDifferences(clean("tcp"), lossy(37), { rcvbufErrors: 5 });
  assertMatch(find(part, /^Why/)[0]!, /that much of the loss is on this host and the rest/);
});

Deno.test("no receive-buffer drops (counters readable) puts a remote loss on the path, a loopback one down as unknown", () => {
  const remote = describeDifferences(clean("tcp"), lossy(37), { rcvbufErrors: 0 });
  assertMatch(
    find(remote, /^Why/)[0]!,
    /^Why \(kernel counters\): not this host's receive buffers/,
  );
  const loop = describeDifferences(clean("tcp"), lossy(37), { rcvbufErrors: 0, loopback: true });
  assertMatch(find(loop, /^Why/)[0]!, /^Why: unknown: on loopback/);
});

Deno.test("UDP loss with no counters: on loopback the loss is on this host; elsewhere the cause is unknown", () => {
  const loop = describeDifferences(clean("tcp"), lossy(37), { loopback: true });
  assertMatch(find(loop, /^Why/)[0]!, /^Why \(loss observed on loopback\): .*on this host/);
  const remote = describeDifferences(clean("tcp"), lossy(37));
  assertMatch(find(remote, /^Why/)[0]!, /^Why: unknown: netkit has no counters/);
});

Deno.test("no 'Why' sentence about loss when UDP lost nothing", () => {
  const lines = describeDifferences(clean("tcp"), clean("udp"), {
    udpLossSplit: { toServer: 0, fromServer: 0 },
    rcvbufErrors: 5,
  });
  assertEquals(find(lines, /^Why/), []);
});

// --- 3. Order and duplicates -------------------------------------------------------------------

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

// --- 4. Latency: enough samples, beyond noise ------------------------------------------------

Deno.test("a percentile is compared only with enough echoes from both: p50 100, p99 1,000, p99.9 10,000", () => {
  assertEquals(MIN_ECHOES, { p50: 100, p99: 1_000, p999: 10_000 });
  const slowTcp = (received: number) => clean("tcp", { received, ...rtts(10, 60) });
  const udp = (received: number) => clean("udp", { received, ...rtts(1, 6) });
  for (const [key, need] of Object.entries(MIN_ECHOES) as [keyof typeof MIN_ECHOES, number][]) {
    const below = compareLatency(slowTcp(need - 1), udp(need), key);
    assertEquals(below.kind, "too-few", `${key} with ${need - 1}`);
    const belowUdp = compareLatency(slowTcp(need), udp(need - 1), key);
    assertEquals(belowUdp.kind === "too-few" && belowUdp.short.transport, "udp", key);
    assertEquals(
      compareLatency(slowTcp(need), udp(need), key).kind,
      "slower",
      `${key} with ${need}`,
    );
  }
});

Deno.test("fewer than 1,000 echoes: no p99 finding, the median only, and the reason given", () => {
  const lines = describeDifferences(
    clean("tcp", { sent: 500, received: 500, ...rtts(1, 9) }),
    clean("udp", { sent: 500, received: 500, ...rtts(1, 2) }),
  );
  assertEquals(find(lines, /p99 RTT was/), []);
  assertEquals(find(lines, /^Latency/), [
    "Latency was similar (within noise) at the median: 1.00 ms over both; comparing the p99 needs 1,000 echoes from each transport, and TCP had 500.",
  ]);
  const fewer = describeDifferences(
    clean("tcp", { sent: 50, received: 50 }),
    clean("udp", { sent: 50, received: 40, lost: 10, lostFraction: 0.2 }),
  );
  assertEquals(find(fewer, /^Too few/), [
    "Too few echoes to compare latency: the median needs 100 from each transport, and TCP had 50.",
  ]);
});

Deno.test("a large ratio whose confidence intervals overlap is within noise", () => {
  // p99 3x apart, but each could be anywhere within ±60%: run-to-run noise explains it.
  const lines = describeDifferences(
    clean("tcp", rtts(1, 6, 0.6)),
    clean("udp", rtts(1, 2, 0.6)),
  );
  assertEquals(find(lines, /RTT was/), []);
  assertEquals(
    find(
      lines,
      /^Latency was similar \(within noise\): p99 RTT 6\.00 ms over TCP, 2\.00 ms over UDP/,
    ).length,
    1,
  );
});

Deno.test("a difference below 1.5x, or under 0.25 ms, is within noise even with disjoint intervals", () => {
  const below = describeDifferences(
    clean("tcp", rtts(1, 2.9, 0.01)),
    clean("udp", rtts(1, 2, 0.01)),
  );
  assertEquals(find(below, /RTT was/), []);
  const tiny = describeDifferences(
    clean("tcp", rtts(0.09, 0.2, 0.01)),
    clean("udp", rtts(0.057, 0.1, 0.01)),
  );
  assertEquals(find(tiny, /RTT was/), []);
  assertEquals(find(tiny, /^Latency was similar/).length, 1);
});

Deno.test("a tail from a stall in a few sub-runs is within noise; one present throughout is not", () => {
  // TCP's p99 is 5x UDP's overall, but only 3 of its 10 sub-runs saw it: a stall, not TCP.
  const stalled = rtt(1, 10);
  const steady = rtt(1, 2);
  const fewSubRuns = subRuns(steady).map((b, i) => i < 3 ? { ...b, p99: 10 } : b);
  const stall = describeDifferences(
    clean("tcp", { rtt: stalled, rttInterval: intervals(stalled), rttSubRuns: fewSubRuns }),
    clean("udp", rtts(1, 2)),
  );
  assertEquals(find(stall, /RTT was/), []);
  assertEquals(find(stall, /^Latency was similar \(within noise\)/).length, 1);
  // 8 of 10 sub-runs above UDP's typical one: the difference is there throughout.
  const most = subRuns(steady).map((b, i) => i < 8 ? { ...b, p99: 10 } : b);
  const real = describeDifferences(
    clean("tcp", { rtt: stalled, rttInterval: intervals(stalled), rttSubRuns: most }),
    clean("udp", rtts(1, 2)),
  );
  assertEquals(find(real, /^TCP's p99 RTT was 5\.0x UDP's/).length, 1);
});

Deno.test("run at the same time, sub-runs are compared in pairs: a stall both saw is no difference", () => {
  // Both transports stalled in the same two sub-runs; TCP's overall p99 happens to be higher.
  const tcpSummary = rtt(1, 40);
  const udpSummary = rtt(1, 10);
  const tcpSubs = subRuns(rtt(1, 2)).map((b, i) => i < 2 ? { ...b, p99: 40 } : b);
  const udpSubs = subRuns(rtt(1, 2)).map((b, i) => i < 2 ? { ...b, p99: 35 } : b);
  const stall = {
    tcp: clean("tcp", { rtt: tcpSummary, rttInterval: intervals(tcpSummary), rttSubRuns: tcpSubs }),
    udp: clean("udp", { rtt: udpSummary, rttInterval: intervals(udpSummary), rttSubRuns: udpSubs }),
  };
  assertEquals(
    find(describeDifferences(stall.tcp, stall.udp, { concurrent: true }), /RTT was/),
    [],
  );
  // TCP slower in 8 of 10 pairs: a difference present while both ran.
  const pairs = subRuns(rtt(1, 2)).map((b, i) => i < 8 ? { ...b, p99: 6 } : b);
  const real = describeDifferences(
    clean("tcp", { ...rtts(1, 6), rttSubRuns: pairs }),
    clean("udp", rtts(1, 2)),
    { concurrent: true },
  );
  assertEquals(find(real, /^TCP's p99 RTT was 3\.0x UDP's/).length, 1);
  // In only 7 of 10 pairs: within noise.
  const fewer = subRuns(rtt(1, 2)).map((b, i) => i < 7 ? { ...b, p99: 6 } : b);
  const noise = describeDifferences(
    clean("tcp", { ...rtts(1, 6), rttSubRuns: fewer }),
    clean("udp", rtts(1, 2)),
    { concurrent: true },
  );
  assertEquals(find(noise, /RTT was/), []);
});

Deno.test("fewer than 5 sub-runs with enough echoes each: no latency difference", () => {
  const slow = rtt(10, 60);
  const sparse = subRuns(slow).map((b, i) => i < 6 ? { ...b, count: 5 } : b); // 4 usable
  const lines = describeDifferences(
    clean("tcp", { rtt: slow, rttInterval: intervals(slow), rttSubRuns: sparse }),
    clean("udp", rtts(1, 6)),
  );
  assertEquals(find(lines, /RTT was/), []);
});

Deno.test("a report without confidence intervals never yields a latency difference", () => {
  const lines = describeDifferences(
    clean("tcp", { rtt: rtt(10, 60), rttInterval: undefined }),
    clean("udp", { rtt: rtt(1, 2), rttInterval: undefined }),
  );
  assertEquals(find(lines, /RTT was/), []);
});

Deno.test("the median is reported before the tail, with the ratio and both figures once", () => {
  const lines = describeDifferences(clean("tcp", rtts(10, 60)), clean("udp", rtts(1, 6)));
  const late = find(lines, /RTT was/);
  assertEquals(late.length, 1);
  assert(
    late[0]!.startsWith(
      "TCP's median RTT was 10x UDP's (10.00 vs 1.00 ms, beyond run-to-run noise)",
    ),
    late[0],
  );
  const tailOnly = find(
    describeDifferences(clean("tcp", rtts(1, 6)), lossy(37)),
    /RTT was/,
  );
  assert(tailOnly[0]!.startsWith("TCP's p99 RTT was 3.0x UDP's (6.00 vs 2.00 ms"), tailOnly[0]);
});

Deno.test("a slower TCP tail names its cause from kernel retransmissions, or says it is unknown", () => {
  const tcp = clean("tcp", rtts(1, 6));
  const counted = describeDifferences(tcp, lossy(37), { tcpRetransmits: 42 });
  assertMatch(
    find(counted, /RTT was/)[0]!,
    /\. Why \(kernel counters\): this host retransmitted 42 TCP segments during the TCP run, .*head-of-line blocking\)\.$/,
  );
  const lab = { lossPercent: 5, tcpRetransSegs: 42, udpRcvbufErrors: 0, dropsUdp: 9, dropsTcp: 3 };
  const inLab = describeDifferences(tcp, lossy(37), { tcpRetransmits: 42, lab });
  assertMatch(
    find(inLab, /RTT was/)[0]!,
    /\. Why \(kernel counters\): the lab's network namespace retransmitted 42 TCP segments/,
  );
  const none = describeDifferences(tcp, lossy(37), { tcpRetransmits: 0 });
  assertMatch(
    find(none, /RTT was/)[0]!,
    /retransmitted nothing \(kernel counters\), so it was not head-of-line blocking; the cause is unknown\.$/,
  );
  const unread = describeDifferences(tcp, lossy(37));
  assertMatch(
    find(unread, /RTT was/)[0]!,
    /; the cause is unknown: UDP's loss on the same path suggests TCP retransmitted/,
  );
  const noLoss = describeDifferences(tcp, clean("udp"));
  assertMatch(find(noLoss, /RTT was/)[0]!, /; the cause is unknown\.$/);
  for (const lines of [none, unread, noLoss]) assertEquals(find(lines, /Why \(/).length, 0);
});

Deno.test("unpaced, a slower TCP is explained by flow control: nothing lost, the queue is delay", () => {
  const lines = describeDifferences(
    clean("tcp", { rateRequested: 0, ratePps: 80_000, ...rtts(20, 30) }),
    lossy(37, { rateRequested: 0, ratePps: 80_000, ...rtts(2, 20) }),
  );
  assertMatch(
    find(lines, /RTT was/)[0]!,
    /^TCP's median RTT was 10x UDP's .*\. Why \(sent unpaced, nothing lost\): TCP's flow control/,
  );
});

Deno.test("a slower UDP: full buffers when unpaced with drop counters, else the cause is unknown", () => {
  const paced = describeDifferences(clean("tcp"), clean("udp", rtts(1, 5)));
  assertEquals(find(paced, /^UDP's/), [
    "UDP's p99 RTT was 2.5x TCP's (5.00 vs 2.00 ms, beyond run-to-run noise); the cause is unknown.",
  ]);
  const unpaced = describeDifferences(
    clean("tcp", { rateRequested: 0, ratePps: 50_000 }),
    lossy(37, { rateRequested: 0, ratePps: 50_000, ...rtts(1, 5) }),
    { rcvbufErrors: 40 },
  );
  assertMatch(
    find(unpaced, /^UDP's/)[0]!,
    /\. Why \(the same counters as UDP's loss\): unpaced datagrams waited in full receive buffers/,
  );
});

Deno.test("when UDP got no echo at all the findings have no latency comparison and no NaN or null", () => {
  const none = lossy(10_000, {
    received: 0,
    rtt: { min: null, mean: null, p50: null, p90: null, p99: null, p999: null, max: null },
    rttInterval: { p50: null, p99: null, p999: null },
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

// --- 5. The unpaced TCP figures explained ---------------------------------------------------

Deno.test("unpaced, TCP's send rate and zero jitter are explained; paced, they are not", () => {
  const tcp = clean("tcp", { rateRequested: 0, ratePps: 6_650_829, jitterMs: 0 });
  const lines = describeDifferences(tcp, lossy(37, { rateRequested: 0, ratePps: 240_000 }));
  assertEquals(find(lines, /send rate/), [
    "TCP's send rate of 6,650,829/s counts probes handed to its socket, not packets: unpaced, the application fills the socket buffer (1,024 probes per write) and TCP carries them in large segments.",
  ]);
  assertEquals(find(lines, /jitter/).length, 1);
  assertMatch(
    find(lines, /jitter/)[0]!,
    /^TCP's jitter of 0\.000 ms means its echoes came back in those same batches/,
  );
  assertEquals(find(describeDifferences(clean("tcp"), clean("udp")), /send rate|jitter/), []);
});

// --- 6. Pacing honesty -----------------------------------------------------------------------

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

// --- Across all inputs --------------------------------------------------------------------------

/** A random but plausible pair of reports and evidence, from `next` (uniform in [0, 1)). */
function randomCase(next: () => number) {
  const pick = <T>(xs: T[]) => xs[Math.floor(next() * xs.length)]!;
  const sent = pick([50, 500, 3_000, 10_000, 100_000]);
  const paced = next() < 0.5;
  const report = (transport: "tcp" | "udp") => {
    const lost = next() < 0.4 ? Math.floor(next() * sent * 0.9) : 0;
    const p50 = 0.01 + next() * 30;
    const summary = rtt(p50, p50 * (1 + next() * 5));
    return clean(transport, {
      sent,
      received: sent - lost,
      lost,
      lostFraction: lost / sent,
      outOfOrder: next() < 0.2 ? Math.floor(next() * 50) : 0,
      duplicates: next() < 0.2 ? Math.floor(next() * 50) : 0,
      rateRequested: paced ? 1000 : 0,
      ratePps: paced ? 800 + next() * 250 : next() * 7e6,
      jitterMs: next() < 0.3 ? 0 : next(),
      rtt: summary,
      rttInterval: intervals(summary, next() * 0.5),
      rttSubRuns: subRuns(summary, Math.floor((sent - lost) / SUB_RUNS)),
    });
  };
  const tcp = report("tcp");
  const udp = report("udp");
  const options = {
    ...(next() < 0.5 && { rcvbufErrors: Math.floor(next() * 3) * 17 }),
    ...(next() < 0.5 &&
      {
        udpLossSplit: {
          toServer: Math.floor(next() * 3) * 7,
          fromServer: Math.floor(next() * 3) * 7,
        },
      }),
    ...(next() < 0.5 && { tcpRetransmits: Math.floor(next() * 3) * 11 }),
    loopback: next() < 0.5,
  };
  return { tcp, udp, options };
}

Deno.test("no sentence states one figure twice (2,000 random inputs)", () => {
  const next = mulberry32(20261130);
  for (let i = 0; i < 2_000; i++) {
    const { tcp, udp, options } = randomCase(next);
    for (
      const sentence of describeDifferences(tcp, udp, options).flatMap((l) =>
        l.split(/(?<=\.) (?=[A-Z])/)
      )
    ) {
      const seen = figures(sentence).filter((f) => f !== "0" && !/^0\.0+$/.test(f));
      assertEquals(new Set(seen).size, seen.length, `case ${i}: ${sentence}`);
      assert(!/NaN|null|undefined|Infinity/.test(sentence), sentence);
    }
  }
});

Deno.test("the demo's findings are the same sentences whatever its figures (varied paced and unpaced runs)", () => {
  const next = mulberry32(7);
  const vary = (lo: number, hi: number) => lo + next() * (hi - lo);
  const shapes = { paced: new Set<string>(), unpaced: new Set<string>() };
  for (let i = 0; i < 200; i++) {
    // Paced, unimpaired loopback: medians 0.05–0.1 ms, tails 0.3–1.5 ms, wide intervals.
    const paced = (transport: "tcp" | "udp") => {
      const summary = rtt(vary(0.05, 0.1), vary(0.3, 1.5));
      return clean(transport, {
        sent: 3_000,
        received: 3_000,
        rtt: summary,
        rttInterval: {
          p50: { lo: summary.p50! * 0.9, hi: summary.p50! * 1.1 },
          p99: { lo: 0.2, hi: 2.5 },
          p999: null,
        },
      });
    };
    shapes.paced.add(
      describeDifferences(paced("tcp"), paced("udp"), { loopback: true }).map(shape).join("\n"),
    );
    // Unpaced: TCP queues (median 15–30 ms), UDP overflows buffers (70–90% lost, median 1–4 ms).
    const lost = Math.floor(vary(70_000, 90_000));
    const tcpSummary = rtt(vary(15, 30), vary(25, 35));
    const udpSummary = rtt(vary(1, 4), vary(15, 60));
    const tcp = clean("tcp", {
      sent: 100_000,
      received: 100_000,
      rateRequested: 0,
      ratePps: vary(3e6, 8e6),
      jitterMs: 0,
      rtt: tcpSummary,
      rttInterval: intervals(tcpSummary, 0.05),
      rttSubRuns: subRuns(tcpSummary, 10_000),
    });
    const udp = clean("udp", {
      sent: 100_000,
      received: 100_000 - lost,
      lost,
      lostFraction: lost / 100_000,
      rateRequested: 0,
      ratePps: vary(2e5, 3e5),
      jitterMs: vary(0, 0.03),
      rtt: udpSummary,
      rttInterval: intervals(udpSummary, 0.3),
      rttSubRuns: subRuns(udpSummary, Math.floor((100_000 - lost) / SUB_RUNS)),
    });
    const toServer = Math.floor(lost * vary(0.4, 0.8));
    shapes.unpaced.add(
      describeDifferences(tcp, udp, {
        udpLossSplit: { toServer, fromServer: lost - toServer },
        loopback: true,
      }).map(shape).join("\n"),
    );
  }
  assertEquals(shapes.paced.size, 1, [...shapes.paced].join("\n---\n"));
  assertEquals(shapes.unpaced.size, 1, [...shapes.unpaced].join("\n---\n"));
});

Deno.test("counts of one are singular: 1 probe out of order, 1 duplicate echo, 1 UDP datagram, 1 TCP segment", () => {
  const lines = describeDifferences(
    clean("tcp", rtts(1, 6)),
    lossy(1, { outOfOrder: 1, duplicates: 1 }),
    { rcvbufErrors: 1, tcpRetransmits: 1 },
  );
  assertEquals(find(lines, /1 probe out of order/).length, 1);
  assertEquals(find(lines, /1 duplicate echo;/).length, 1);
  assertEquals(find(lines, /dropped 1 UDP datagram for full/).length, 1);
  assertEquals(find(lines, /retransmitted 1 TCP segment during/).length, 1);
});

Deno.test("on a lab path, findings cite the drop rule's counter, the expected loss and TCP's retransmissions", () => {
  const lab = {
    lossPercent: 5,
    tcpRetransSegs: 61,
    udpRcvbufErrors: 2,
    dropsUdp: 973,
    dropsTcp: 80,
  };
  const tcp = clean("tcp", { rtt: rtt(1, 230) });
  const found = describeDifferences(tcp, lossy(975, { rtt: rtt(1, 2) }), { lab });
  const why = found.find((f) => f.startsWith("Why: the path dropped them"));
  assertEquals(
    why,
    "Why: the path dropped them: the loss rule dropped 973 UDP datagrams (its nftables counter) " +
      "and 2 more overflowed a receive buffer (UdpRcvbufErrors), and UDP never retransmits, so each " +
      "dropped request or echo is a lost probe. With 5% loss each way, 1 − (1 − 0.05)² = 9.75% of " +
      "round trips should fail; UDP lost 9.75%.",
  );
  assert(!found.some((f) => f.includes("on loopback that means full socket receive buffers")));
  const cost = found.find((f) =>
    f.startsWith("TCP retransmitted 61 segments (kernel TcpRetransSegs)")
  );
  assert(cost, found.join(" | "));
  assertMatch(
    cost,
    /after the loss rule dropped 80 of its packets, so it lost nothing but paid in latency: p99 RTT 230 ms vs UDP's 2\.00 ms/,
  );
  // A quick recovery is not called a price.
  const quick = describeDifferences(clean("tcp"), lossy(975), { lab });
  assert(
    quick.some((f) => f.includes("here the retransmissions cost it little")),
    quick.join(" | "),
  );
});
