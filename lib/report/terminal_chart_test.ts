import { assert, assertEquals, assertMatch } from "@std/assert";
import { ProbeSeries } from "./series.ts";
import { bar, sparkline, terminalChart } from "./terminal_chart.ts";

const TCP = { min: 0.02, mean: 1, p50: 0.05, p90: 0.1, p99: 1, p999: 5, max: 20 };
const UDP = { min: 0.02, mean: 1, p50: 0.04, p90: 0.08, p99: 0.5, p999: 2, max: 10 };

function series(transport: "tcp" | "udp") {
  const s = new ProbeSeries(transport, { bucketMs: 1 });
  for (let seq = 0; seq < 100; seq++) {
    s.sent(seq, seq);
    if (seq !== 50) s.sample(seq, seq, 0.03 + seq / 10, "new");
  }
  return s.data();
}

Deno.test("the ladder has a rung per percentile with one bar per transport on one log scale", () => {
  const lines = terminalChart(
    [
      { label: "TCP", rtt: TCP, series: series("tcp") },
      { label: "UDP", rtt: UDP, series: series("udp") },
    ],
    "unicode",
    40,
  );
  assertMatch(lines[0]!, /one log scale from 0\.020 to 20\.00/);
  const rungs = lines.filter((l) => /^\s+(p50|p90|p99|p99\.9|max)\s/.test(l));
  assertEquals(rungs.map((l) => l.trim().split(/\s+/)[0]), ["p50", "p90", "p99", "p99.9", "max"]);
  // TCP's max is the top of the scale: a full bar of 40 columns.
  const tcpMax = lines.find((l) => l.startsWith("  max"))!;
  assertEquals((tcpMax.match(/█/g) ?? []).length, 40);
  // UDP's max (10 ms) is shorter than TCP's (20 ms) on the same scale.
  const udpMax = lines[lines.indexOf(tcpMax) + 1]!;
  assert((udpMax.match(/█/g) ?? []).length < 40, udpMax);
  assertEquals(lines.filter((l) => l.includes("rtt p50 over the run")).length, 1);
  assertEquals(lines.length, 1 + 10 + 1 + 2);
});

Deno.test("ASCII glyphs: nothing outside printable ASCII", () => {
  const lines = terminalChart([{ label: "UDP", rtt: UDP, series: series("udp") }], "ascii");
  for (const line of lines) assertMatch(line, /^[\x20-\x7e]*$/);
  assert(lines.some((l) => l.includes("#")));
});

Deno.test("bars grow in eighths; a sparkline has one column per value up to its width, blank where none", () => {
  assertEquals(bar(0.5, 4, "unicode"), "██");
  assertEquals(bar(1 / 32, 4, "unicode"), "▏");
  assertEquals(bar(0, 4, "unicode"), "▏");
  assertEquals(bar(0.5, 4, "ascii"), "##");
  assertEquals(sparkline([0.01, 0.1, null, 1, 10], 0.01, 10, "unicode"), "▁▃ ▆█");
  assertEquals(sparkline([0.01, 10], 0.01, 10, "ascii"), "_#");
  assertEquals(sparkline(new Array(500).fill(1), 0.01, 10, "unicode", 60).length, 60);
});

Deno.test("no RTT at all: no chart", () => {
  const none = { min: null, mean: null, p50: null, p90: null, p99: null, p999: null, max: null };
  assertEquals(terminalChart([{ label: "UDP", rtt: none }], "unicode"), []);
});
