/**
 * Tests for what a finished probe report means for the exit code.
 *
 * @example
 * ```sh
 * deno test lib/probe/verdict_test.ts
 * ```
 *
 * @module
 */
import { assertEquals } from "@std/assert";
import type { ProbeReport } from "./run_probe.ts";
import { probeVerdict } from "./verdict.ts";

function report(overrides: Partial<ProbeReport> = {}): ProbeReport {
  return {
    transport: "udp",
    target: "udp 127.0.0.1:5050",
    size: 64,
    rateRequested: 1000,
    sent: 1000,
    received: 990,
    lost: 10,
    lostFraction: 0.01,
    outOfOrder: 0,
    duplicates: 0,
    stale: 0,
    malformed: 0,
    rtt: { min: 0.05, mean: 0.2, p50: 0.18, p90: 0.3, p99: 0.9, p999: 1.4, max: 2.5 },
    jitterMs: 0.04,
    bitsPerSecond: 512_000,
    ratePps: 999.7,
    elapsedS: 1.002,
    interrupted: false,
    ...overrides,
  };
}

Deno.test("probeVerdict passes a run with replies and no loss limit", () => {
  assertEquals(probeVerdict(report(), undefined), undefined);
});

Deno.test("probeVerdict: no UDP reply at all asks whether anything listens, exit 5", () => {
  const error = probeVerdict(report({ received: 0, lost: 1000, lostFraction: 1 }), undefined);
  assertEquals(error?.exitCode, 5);
  assertEquals(error?.message, "no reply at all: is anything listening on udp 127.0.0.1:5050?");
});

Deno.test("probeVerdict: no TCP reply at all asks whether it echoes, exit 5", () => {
  const error = probeVerdict(
    report({ transport: "tcp", target: "tcp 127.0.0.1:5050", received: 0, lostFraction: 1 }),
    undefined,
  );
  assertEquals(error?.exitCode, 5);
  assertEquals(error?.message, "no reply at all from tcp 127.0.0.1:5050: is it an echo server?");
});

Deno.test("probeVerdict: loss above --max-loss exits 1, at or below it passes", () => {
  assertEquals(probeVerdict(report(), 1), undefined, "1% lost is not more than 1%");
  const error = probeVerdict(report(), 0.5);
  assertEquals(error?.exitCode, 1);
  assertEquals(error?.message, "UDP lost 1.00% of probes (10 of 1,000), more than --max-loss 0.5%");
});

Deno.test("probeVerdict: a run that sent nothing is not 'no reply'", () => {
  assertEquals(probeVerdict(report({ sent: 0, received: 0, lostFraction: 0 }), 0), undefined);
});

Deno.test("probeVerdict: replies that were never echoes of a probe are not 'no reply', exit 1", () => {
  const error = probeVerdict(
    report({ received: 0, lost: 1000, lostFraction: 1, malformed: 1000 }),
    undefined,
  );
  assertEquals(error?.exitCode, 1);
  assertEquals(
    error?.message,
    "none of the 1,000 replies from udp 127.0.0.1:5050 was an echo of a probe: is it an echo server?",
  );
});
