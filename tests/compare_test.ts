/**
 * End-to-end tests of `netkit compare` and of probe failures in the machine
 * output formats, through the real CLI on loopback: the demo with its
 * embedded server, a custom comparison against `netkit server --proto both`,
 * the text table, the JSON stream, and errors as JSON.
 *
 * @module
 */

import assert from "node:assert/strict";
import { runNetkit, type RunResult, startServer } from "./support/cli.ts";

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

/** A TCP port on 127.0.0.1 with nothing listening (bound, then released). */
function closedPort(): number {
  const listener = Deno.listen({ hostname: LOCALHOST, port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

function assertOk(result: RunResult): void {
  assert.equal(result.code, 0, `exit ${result.code}: ${result.stderr}`);
}

/** A failure in `--json` mode: the exit code, one JSON error document, one `error:` line. */
function assertJsonFailure(result: RunResult, code: number, mentions: string): void {
  assert.equal(result.code, code, result.stderr);
  const doc = JSON.parse(result.text) as { error: unknown; exit_code: unknown };
  assert.deepEqual(Object.keys(doc).sort(), ["error", "exit_code"]);
  assert.equal(typeof doc.error, "string");
  assert.ok((doc.error as string).includes(mentions), doc.error as string);
  assert.equal(doc.exit_code, code);
  const errLines = result.stderr.trimEnd().split("\n");
  assert.equal(errLines.length, 1, result.stderr);
  assert.match(errLines[0]!, /^error: /);
}

Deno.test("compare --json demo runs both phases on its embedded server and prints one JSON document", async () => {
  const started = performance.now();
  const result = await runNetkit(["compare", "--json"], { timeoutMs: 30_000 });
  const elapsedMs = performance.now() - started;
  assertOk(result);
  assert.ok(elapsedMs < 30_000, `took ${elapsedMs} ms`);
  const doc = JSON.parse(result.text) as CompareJson; // the whole of stdout is one document
  assert.deepEqual(Object.keys(doc).sort(), [
    "embedded_server",
    "findings",
    "parameters",
    "phases",
    "target",
    "tcp",
    "udp",
  ]);
  assert.equal(doc.embedded_server, true);
  assert.match(doc.target, /^127\.0\.0\.1:\d+$/);
  assert.deepEqual(doc.phases.map((p) => p.name), ["paced", "unpaced"]);
  for (const phase of doc.phases) {
    assert.equal(phase.tcp.transport, "tcp");
    assert.equal(phase.udp.transport, "udp");
    assert.equal(phase.tcp.lost, 0, `tcp lost in ${phase.name}`);
    assert.equal(phase.tcp.received, phase.tcp.sent);
    assert.equal(phase.tcp.sent, phase.udp.sent, `sent differs in ${phase.name}`);
    assert.equal(phase.tcp.sent, phase.parameters.count);
    assert.ok(phase.findings.length > 0, `no findings in ${phase.name}`);
    for (const f of phase.findings) assert.ok(typeof f === "string" && f.length > 0);
  }
  // The top level repeats the last phase.
  const last = doc.phases[doc.phases.length - 1]!;
  assert.deepEqual(
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
  assert.equal(doc.embedded_server, false);
  assert.equal(doc.target, `${LOCALHOST}:${server.port}`);
  assert.deepEqual(doc.phases.map((p) => p.name), ["custom"]);
  const phase = doc.phases[0]!;
  assert.equal(phase.parameters.count, 1000);
  assert.equal(phase.parameters.rate_pps, 1000);
  for (const r of [phase.tcp, phase.udp]) {
    assert.equal(r.sent, 1000, `${r.transport} sent`);
    assert.equal(r.received, 1000, `${r.transport} received`);
    assert.equal(r.lost, 0, `${r.transport} lost`);
  }
  assert.ok(phase.findings.length > 0);
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
  assert.ok(header >= 0, result.text);
  const rowOf = (label: string) =>
    lines.slice(header + 1).find((l) => l.trimStart().startsWith(`${label} `));
  for (
    const label of ["sent", "lost", "out of order", "duplicates", "rtt p99 ms", "jitter ms"]
  ) {
    const row = rowOf(label);
    assert.ok(row !== undefined, `no '${label}' row in:\n${result.text}`);
    assert.match(row, /\d.*\s{2,}.*\d/, `row '${label}' lacks two values: ${row}`);
  }
  assert.match(rowOf("sent")!, /^\s+sent\s+500\s+500$/);
  assert.match(rowOf("goodput") ?? "", /^\s+goodput\s+[\d.]+ \w*bit\/s\s+[\d.]+ \w*bit\/s$/);
  assert.equal(result.stderr, "");
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
  assert.ok(result.text.endsWith("\n"));
  const events = result.text.trimEnd().split("\n").map((line) =>
    JSON.parse(line) as { event: string; data: Record<string, unknown> }
  );
  for (const e of events) assert.ok(e.event === "interval" || e.event === "end", e.event);
  const intervals = events.filter((e) => e.event === "interval");
  assert.ok(intervals.length >= 1, "no interval event");
  for (const i of intervals) {
    assert.equal(i.data.phase, "custom");
    assert.ok(i.data.transport === "tcp" || i.data.transport === "udp");
  }
  assert.equal(events.filter((e) => e.event === "end").length, 1);
  const end = events[events.length - 1]!;
  assert.equal(end.event, "end");
  assert.deepEqual((end.data as unknown as CompareJson).phases.map((p) => p.name), ["custom"]);
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
