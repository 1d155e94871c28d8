import { assert, assertEquals, assertMatch } from "@std/assert";
import { barChart, compactNumber, escapeXml, lineChart } from "./svg.ts";

Deno.test("compact numbers and escaped text", () => {
  assertEquals(compactNumber(0), "0");
  assertEquals(compactNumber(0.0123456), "0.0123");
  assertEquals(compactNumber(250_000_000), "250M");
  assertEquals(compactNumber(12_345), "12.3k");
  assertEquals(compactNumber(2e9), "2G");
  assertEquals(
    escapeXml(`<a href="x">'&'</a>`),
    "&#60;a href=&#34;x&#34;&#62;&#39;&#38;&#39;&#60;/a&#62;",
  );
});

Deno.test("a line breaks at a missing value and each segment starts with a dot", () => {
  const svg = lineChart({
    id: "t",
    title: "t",
    x: { label: "time (s)" },
    y: { label: "RTT (ms, log)", log: true },
    lines: [{ name: "p50", color: 0, points: [[0, 1], [1, 2], [2, null], [3, 4], [4, 0]] }],
  });
  const d = /<path class="line s-0" d="([^"]*)"/.exec(svg)?.[1];
  assert(d);
  assertEquals(d.match(/M/g)?.length, 2); // [0..1], then [3]; 0 is off a log axis
  assertEquals(d.match(/h0/g)?.length, 2);
  // Log ticks are powers of ten (with 2 and 5 over a short range), labelled compactly.
  for (const label of ["1", "2", "5"]) assertMatch(svg, new RegExp(`>${label}</text>`));
  assertMatch(svg, /data-series="p50"/);
});

Deno.test("marker rows appear only for kinds that happened, and name their counts", () => {
  const svg = lineChart({
    id: "m",
    title: "m",
    x: { label: "time (s)" },
    y: { label: "ms" },
    lines: [{ name: "UDP p50", color: 1, points: [[0, 1], [1, 1]] }],
    markers: [
      { name: "UDP lost", kind: "lost", color: 1, points: [[0, 0], [1, 7]] },
      { name: "UDP reordered", kind: "reordered", color: 1, points: [[0, 0], [1, 0]] },
    ],
  });
  assertMatch(svg, /data-series="UDP p50\|UDP lost"/);
  assertEquals(svg.match(/<title>UDP lost: 7<\/title>/g)?.length, 1);
  assert(!svg.includes("UDP reordered"));
});

Deno.test("bars: one rect per non-zero value, grouped per series", () => {
  const svg = barChart({
    id: "b",
    title: "b",
    x: { label: "time (s)" },
    y: { label: "lost (%)" },
    width: 1,
    bars: [
      { name: "TCP lost", color: 0, points: [[0, 0], [1, 0]] },
      { name: "UDP lost", color: 1, points: [[0, 5], [1, 50]] },
    ],
  });
  assertEquals(svg.match(/<rect /g)?.length, 2 + 2); // two bars, two legend swatches
  assertMatch(svg, /data-series="TCP lost\|UDP lost"/);
  assertMatch(svg, />lost \(%\)<\/text>/);
});
