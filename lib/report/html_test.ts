import { assert, assertEquals, assertMatch } from "@std/assert";
import { assertNoExternalUrl, parseMarkup } from "../../tests/support/html.ts";
import type { ProbeReport } from "../probe/run_probe.ts";
import type { ThroughputResult } from "../throughput/client.ts";
import { renderHtml, type ReportMeta } from "./html.ts";
import { probeSection } from "./probe_page.ts";
import { ProbeSeries } from "./series.ts";
import { throughputSections } from "./throughput_page.ts";

const META: ReportMeta = {
  commandLine: "netkit compare --report 'a <b>.html'",
  date: "2026-11-30T06:00:00.000Z",
  host: "test-host",
  version: "netkit 0.1.0",
};

function fakeRun(transport: "tcp" | "udp", n: number, lossEvery: number) {
  const series = new ProbeSeries(transport);
  let received = 0;
  for (let seq = 0; seq < n; seq++) {
    const at = seq * 0.5;
    series.sent(seq, at);
    if (lossEvery > 0 && seq % lossEvery === 0) continue;
    // Only UDP reorders and duplicates here: TCP's chart must then show no such markers.
    const udp = transport === "udp";
    series.sample(seq, at, 0.05 + (seq % 37) / 10, udp && seq % 501 === 1 ? "out_of_order" : "new");
    if (udp && seq % 777 === 2) series.sample(seq, at, 0.2, "duplicate");
    received++;
  }
  const data = series.data();
  const rtt = { min: 0.05, mean: 1, p50: 1, p90: 3, p99: 3.6, p999: 3.65, max: 3.7 };
  const report: ProbeReport = {
    transport,
    target: `${transport} 127.0.0.1:5050`,
    size: 64,
    rateRequested: 2000,
    sent: n,
    received,
    lost: n - received,
    lostFraction: (n - received) / n,
    outOfOrder: data.totals.outOfOrder,
    duplicates: data.totals.duplicates,
    stale: 0,
    malformed: 0,
    rtt,
    jitterMs: 0.1,
    bitsPerSecond: 1e6,
    ratePps: 2000,
    elapsedS: n / 2000,
  };
  return { report, series: data };
}

function comparePage(n: number): string {
  return renderHtml("netkit compare", META, [
    probeSection("Phase 1 of 2 (paced)", [fakeRun("tcp", n, 0), fakeRun("udp", n, 50)], {
      findings: ["UDP lost 2% <of> probes"],
      id: "phase-1",
    }),
    probeSection("Phase 2 of 2 (unpaced)", [fakeRun("tcp", n, 0), fakeRun("udp", n, 3)], {
      id: "phase-2",
    }),
  ]);
}

Deno.test("a compare page parses, has three charts per phase with the expected series, and the table and findings", () => {
  const html = comparePage(10_000);
  const elements = parseMarkup(html);
  const sections = html.split("<section>").slice(1);
  assertEquals(sections.length, 2);
  for (const section of sections) {
    assertEquals(section.match(/<figure class="chart"/g)?.length, 3);
  }
  const charts = elements.filter((e) => e.name === "figure" && e.attrs.class === "chart");
  const series = (id: string) => charts.find((c) => c.attrs.id === id)?.attrs["data-series"];
  assertEquals(
    series("phase-1-rtt-time"),
    "TCP p50|TCP p99|UDP p50|UDP p99|UDP lost|UDP reordered|UDP duplicated",
  );
  assertEquals(series("phase-1-rtt-cdf"), "TCP|UDP");
  assertEquals(series("phase-1-loss"), "TCP lost|UDP lost");
  assertEquals(elements.filter((e) => e.name === "table").length, 2);
  assertMatch(html, /<li>UDP lost 2% &#60;of&#62; probes<\/li>/);
  // The title block says what was run, escaped.
  assertMatch(html, /netkit compare --report &#39;a &#60;b&#62;.html&#39;/);
  assertMatch(html, /test-host/);
  assertMatch(html, /2026-11-30T06:00:00.000Z/);
  assertMatch(html, /prefers-color-scheme:dark/);
  assertMatch(html, /@media print/);
});

Deno.test("a report embeds no external URL of any kind", () => {
  assertNoExternalUrl(comparePage(2_000));
});

Deno.test("the no-external-URL check catches each way out", () => {
  for (
    const bad of [
      '<img src="x.png">',
      "<a href='#'>",
      "<style>body{background:url(x.png)}</style>",
      "see https://example.com",
      '<link rel="stylesheet" href="//cdn.example/x.css">',
      "<script>1</script>",
    ]
  ) {
    let caught = false;
    try {
      assertNoExternalUrl(bad);
    } catch {
      caught = true;
    }
    assert(caught, bad);
  }
});

Deno.test("a 1,000,000-probe compare report is under 1 MB", () => {
  const html = comparePage(1_000_000);
  const bytes = new TextEncoder().encode(html).length;
  assert(bytes < 1_000_000, `${bytes} bytes`);
  parseMarkup(html);
});

Deno.test("a UDP throughput page has bits/s per stream and in total, loss and jitter per interval, per direction", () => {
  const streams = [0, 1].map((stream) => ({
    stream,
    bytes: 3000,
    datagrams: 3,
    lost: 1,
    out_of_order: 0,
    duplicates: 0,
    jitter_ms: 0.1,
    seconds: 3,
    intervals: [1000, 1000, 1000],
    interval_lost: [1, 0, 0],
    interval_jitter_ms: [null, 0.1, 0.2],
  }));
  const direction = {
    sent: { bytes: 8000, datagrams: 8, seconds: 3, streams: [] },
    received: {
      bytes: 6000,
      datagrams: 6,
      lost: 2,
      outOfOrder: 0,
      duplicates: 0,
      jitterMs: 0.1,
      seconds: 3,
      streams,
    },
    rcvbufErrors: null,
  };
  const result: ThroughputResult = {
    plan: {
      endpoint: { transport: "tcp", hostname: "127.0.0.1", port: 5050 },
      proto: "udp",
      direction: "bidir",
      parallel: 2,
      durationMs: 3000,
      size: 1000,
      bitrate: 1e6,
      intervalMs: 1000,
      timeoutMs: 5000,
    },
    up: direction,
    down: direction,
    elapsedS: 3,
  };
  const intervals = [0, 1, 2].map((k) => ({
    startS: k,
    endS: k + 1,
    sentBytes: 2000,
    receivedBytes: 2000,
  }));
  const html = renderHtml("netkit udp throughput", META, throughputSections(result, intervals));
  const elements = parseMarkup(html);
  assertNoExternalUrl(html);
  const charts = elements.filter((e) => e.name === "figure");
  assertEquals(charts.map((c) => c.attrs.id), [
    "up-bitrate",
    "up-udp-loss",
    "up-udp-jitter",
    "down-bitrate",
    "down-udp-loss",
    "down-udp-jitter",
  ]);
  assertEquals(
    charts[0]!.attrs["data-series"],
    "stream 1|stream 2|total, receiver|total, sender",
  );
  assertEquals(charts[3]!.attrs["data-series"], "stream 1|stream 2|total, receiver");
  assertEquals(charts[2]!.attrs["data-series"], "stream 1 jitter|stream 2 jitter");
  assertMatch(html, /<th>sender<\/th><th>receiver<\/th>/);
});
