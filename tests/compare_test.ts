/**
 * End-to-end tests of `netkit compare` and of probe failures in the machine
 * output formats, through the real CLI on loopback: the demo with its
 * embedded server, a custom comparison against `netkit server --proto both`,
 * the text table, the JSON stream, and errors as JSON.
 *
 * @module
 */

import { assert, assertEquals, assertMatch } from "@std/assert";
import { runNetkit, type RunResult, startServer } from "./support/cli.ts";
import { closedPort } from "./support/sockets.ts";

const LOCALHOST = "127.0.0.1";

/** The fields of a probe report these tests read. */
interface ProbeJson {
  transport: "tcp" | "udp";
  sent: number;
  received: number;
  lost: number;
}

/** One phase of the `compare --json` document. */
interface PhaseJson {
  name: string;
  description: string;
  parameters: Record<string, unknown>;
  tcp: ProbeJson;
  udp: ProbeJson;
  findings: string[];
}

/** The `compare --json` document. */
interface CompareJson {
  target: string;
  embedded_server: boolean;
  parameters: Record<string, unknown>;
  tcp: ProbeJson;
  udp: ProbeJson;
  findings: string[];
  phases: PhaseJson[];
}

function assertOk(result: RunResult): void {
  assertEquals(result.code, 0, `exit ${result.code}: ${result.stderr}`);
}

/** A failure in `--json` mode: the exit code, one JSON error document, one `error:` line. */
function assertJsonFailure(result: RunResult, code: number, mentions: string): void {
  assertEquals(result.code, code, result.stderr);
  const doc = JSON.parse(result.text) as { error: unknown; exit_code: unknown };
  assertEquals(Object.keys(doc).sort(), ["error", "exit_code"]);
  assertEquals(typeof doc.error, "string");
  assert((doc.error as string).includes(mentions), doc.error as string);
  assertEquals(doc.exit_code, code);
  const errLines = result.stderr.trimEnd().split("\n");
  assertEquals(errLines.length, 1, result.stderr);
  assertMatch(errLines[0]!, /^error: /);
}

Deno.test("compare --json demo runs both phases on its embedded server and prints one JSON document", async () => {
  const started = performance.now();
  const result = await runNetkit(["compare", "--json"], { timeoutMs: 30_000 });
  const elapsedMs = performance.now() - started;
  assertOk(result);
  assert(elapsedMs < 30_000, `took ${elapsedMs} ms`);
  const doc = JSON.parse(result.text) as CompareJson; // the whole of stdout is one document
  assertEquals(Object.keys(doc).sort(), [
    "embedded_server",
    "findings",
    "interrupted",
    "parameters",
    "phases",
    "target",
    "tcp",
    "udp",
  ]);
  assertEquals(doc.embedded_server, true);
  assertMatch(doc.target, /^127\.0\.0\.1:\d+$/);
  assertEquals(doc.phases.map((p) => p.name), ["paced", "unpaced"]);
  for (const phase of doc.phases) {
    assertEquals(phase.tcp.transport, "tcp");
    assertEquals(phase.udp.transport, "udp");
    assertEquals(phase.tcp.lost, 0, `tcp lost in ${phase.name}`);
    assertEquals(phase.tcp.received, phase.tcp.sent);
    assertEquals(phase.tcp.sent, phase.udp.sent, `sent differs in ${phase.name}`);
    assertEquals(phase.tcp.sent, phase.parameters.count);
    assert(phase.findings.length > 0, `no findings in ${phase.name}`);
    for (const f of phase.findings) assert(typeof f === "string" && f.length > 0);
  }
  // The top level repeats the last phase.
  const last = doc.phases[doc.phases.length - 1]!;
  assertEquals(
    { parameters: doc.parameters, tcp: doc.tcp, udp: doc.udp, findings: doc.findings },
    { parameters: last.parameters, tcp: last.tcp, udp: last.udp, findings: last.findings },
  );
});

Deno.test("compare HOST PORT --json runs one 'custom' phase and loses nothing on loopback at 1,000/s", async () => {
  await using server = await startServer(["--proto", "both", "--host", LOCALHOST]);
  const result = await runNetkit([
    "compare",
    LOCALHOST,
    String(server.port),
    "--count",
    "1000",
    "--rate",
    "1000",
    "--json",
  ], { timeoutMs: 20_000 });
  assertOk(result);
  const doc = JSON.parse(result.text) as CompareJson;
  assertEquals(doc.embedded_server, false);
  assertEquals(doc.target, `${LOCALHOST}:${server.port}`);
  assertEquals(doc.phases.map((p) => p.name), ["custom"]);
  const phase = doc.phases[0]!;
  assertEquals(phase.parameters.count, 1000);
  assertEquals(phase.parameters.rate_pps, 1000);
  for (const r of [phase.tcp, phase.udp]) {
    assertEquals(r.sent, 1000, `${r.transport} sent`);
    assertEquals(r.received, 1000, `${r.transport} received`);
    assertEquals(r.lost, 0, `${r.transport} lost`);
  }
  assert(phase.findings.length > 0);
});

Deno.test("two consecutive unimpaired loopback compare runs never contradict each other on latency", async () => {
  await using server = await startServer(["--proto", "both", "--host", LOCALHOST]);
  const slower: string[] = [];
  for (let run = 0; run < 2; run++) {
    const result = await runNetkit([
      "compare",
      LOCALHOST,
      String(server.port),
      "--count",
      "3000",
      "--rate",
      "2000",
      "--json",
    ], { timeoutMs: 30_000 });
    assertOk(result);
    const findings = (JSON.parse(result.text) as CompareJson).findings;
    // A latency finding is either "similar (within noise)" or "X's <percentile> RTT was …".
    const latency = findings.filter((f) => /RTT|[Ll]atency/.test(f));
    assertEquals(latency.length, 1, findings.join("\n"));
    const claim = /^(TCP|UDP)'s (median|p99) RTT was/.exec(latency[0]!);
    if (claim) slower.push(`${claim[1]} ${claim[2]}`);
  }
  // Either run may see a real difference, but never the opposite one the next time.
  const transports = new Set(slower.map((s) => s.split(" ")[0]));
  assert(transports.size <= 1, `contradictory findings: ${slower.join(" / ")}`);
});

Deno.test("compare HOST PORT in text prints the TCP/UDP table with every documented row", async () => {
  await using server = await startServer(["--proto", "both", "--host", LOCALHOST]);
  const result = await runNetkit([
    "compare",
    LOCALHOST,
    String(server.port),
    "--count",
    "500",
    "--rate",
    "1000",
  ], { timeoutMs: 20_000 });
  assertOk(result);
  const lines = result.text.split("\n");
  const header = lines.findIndex((l) => /^\s+TCP\s+UDP$/.test(l));
  assert(header >= 0, result.text);
  const rowOf = (label: string) =>
    lines.slice(header + 1).find((l) => l.trimStart().startsWith(`${label} `));
  for (
    const label of ["sent", "lost", "out of order", "duplicates", "rtt p99 ms", "jitter ms"]
  ) {
    const row = rowOf(label);
    assert(row !== undefined, `no '${label}' row in:\n${result.text}`);
    assertMatch(row, /\d.*\s{2,}.*\d/, `row '${label}' lacks two values: ${row}`);
  }
  assertMatch(rowOf("sent")!, /^\s+sent\s+500\s+500$/);
  assertMatch(rowOf("goodput") ?? "", /^\s+goodput\s+[\d.]+ \w*bit\/s\s+[\d.]+ \w*bit\/s$/);
  assertEquals(result.stderr, "");
});

Deno.test("compare --json-stream prints only JSON lines: interval events, then the end event last", async () => {
  await using server = await startServer(["--proto", "both", "--host", LOCALHOST]);
  const result = await runNetkit([
    "compare",
    LOCALHOST,
    String(server.port),
    "--interval-report",
    "200ms",
    "--count",
    "600",
    "--rate",
    "1000",
    "--json-stream",
  ], { timeoutMs: 20_000 });
  assertOk(result);
  assert(result.text.endsWith("\n"));
  const events = result.text.trimEnd().split("\n").map((line) =>
    JSON.parse(line) as { event: string; data: Record<string, unknown> }
  );
  for (const e of events) assert(e.event === "interval" || e.event === "end", e.event);
  const intervals = events.filter((e) => e.event === "interval");
  assert(intervals.length >= 1, "no interval event");
  for (const i of intervals) {
    assertEquals(i.data.phase, "custom");
    assert(i.data.transport === "tcp" || i.data.transport === "udp");
  }
  assertEquals(events.filter((e) => e.event === "end").length, 1);
  const end = events[events.length - 1]!;
  assertEquals(end.event, "end");
  assertEquals((end.data as unknown as CompareJson).phases.map((p) => p.name), ["custom"]);
});

Deno.test("a refused probe with --json exits 3 with the error as JSON on stdout and one error line", async () => {
  const port = closedPort();
  const result = await runNetkit(["client", "--probe", "--json", LOCALHOST, String(port)], {
    timeoutMs: 20_000,
  });
  assertJsonFailure(result, 3, `${LOCALHOST}:${port}`);
});

Deno.test("a refused compare with --json exits 3 with the error as JSON on stdout and one error line", async () => {
  const port = closedPort();
  const result = await runNetkit(["compare", LOCALHOST, String(port), "--json"], {
    timeoutMs: 20_000,
  });
  assertJsonFailure(result, 3, `${LOCALHOST}:${port}`);
});

Deno.test("compare HOST PORT --ping-pong keeps one probe in flight over each transport, as the README says", async () => {
  await using server = await startServer(["--proto", "both", "--host", LOCALHOST]);
  const result = await runNetkit([
    "compare",
    LOCALHOST,
    String(server.port),
    "--ping-pong",
    "--count",
    "200",
    "--json",
  ], { timeoutMs: 20_000 });
  assertOk(result);
  const doc = JSON.parse(result.text) as CompareJson;
  assertEquals(doc.parameters.outstanding, 1);
  assertEquals(doc.parameters.rate_pps, 0);
  assertEquals(doc.phases[0]!.description, "200 probes of 64 B one at a time (ping-pong)");
  for (const r of [doc.tcp, doc.udp]) assertEquals(r.received, 200, r.transport);
});

Deno.test("compare's text fits 80 columns when piped: findings wrap, sizes print as '1,400 B'", async () => {
  await using server = await startServer(["--proto", "both", "--host", LOCALHOST]);
  const result = await runNetkit([
    "compare",
    LOCALHOST,
    String(server.port),
    "--count",
    "300",
    "--rate",
    "0",
    "--size",
    "1400",
  ], { timeoutMs: 20_000 });
  assertOk(result);
  const lines = result.text.trimEnd().split("\n");
  for (const line of lines) assert(line.length <= 80, `${line.length} columns: ${line}`);
  assertMatch(result.text, /300 probes of 1,400 B at full speed/);
  // The findings follow the table's last row: every one of their lines indented by two.
  const findings = lines.slice(lines.findIndex((l) => /^\s+elapsed\s/.test(l)) + 2);
  assert(findings.length > 0, result.text);
  for (const line of findings) assertMatch(line, /^ {2}\S/);
});
