import { assert, assertEquals, assertMatch } from "@std/assert";
import {
  describeImpairment,
  expectedRoundTripLoss,
  hasImpairment,
  impairmentFlags,
  netemFlags,
  NFT_TABLE,
  nftScript,
  tbfBurstBytes,
  tcCommands,
} from "./impairment.ts";
import { parseCommandLine } from "../cli/parse.ts";

Deno.test("a round trip through 5% loss each way fails 1 − 0.95² = 9.75% of the time", () => {
  assertEquals(Number(expectedRoundTripLoss(5).toFixed(6)), 0.0975);
  assertEquals(expectedRoundTripLoss(0), 0);
});

Deno.test("the loss rule drops on input only (once per packet on lo), tcp and udp counted apart, SYNs exempt", () => {
  const script = nftScript(2.5);
  assertMatch(script, new RegExp(`add table inet ${NFT_TABLE}\n`));
  assertMatch(script, /hook input priority 0/);
  assert(!/hook output/.test(script), "an output rule would drop each packet twice");
  assertMatch(
    script,
    /tcp flags & syn == syn accept\n.*udp numgen random mod 10000 < 250 counter drop/,
  );
  assertMatch(script, /meta l4proto tcp numgen random mod 10000 < 250 counter drop/);
});

Deno.test("tbf alone is the root qdisc; with netem it is netem's child, and its bucket holds full packets", () => {
  assertEquals(tcCommands({ lossPercent: 5 }), []);
  const tbf = tcCommands({ rateBps: 5e6 });
  assertEquals(tbf.length, 1);
  assertEquals(tbf[0]?.slice(0, 7), ["qdisc", "add", "dev", "lo", "root", "handle", "10:"]);
  assert(tbf[0]?.includes("5000000bit"));
  assert(tbfBurstBytes(5e6) >= 1514 * 4);
  assertEquals(tbfBurstBytes(1e9), 1_250_000);
  const both = tcCommands({ delayMs: 20, jitterMs: 5, reorderPercent: 10, rateBps: 1e6 });
  assertEquals(both[0], [
    "qdisc",
    "add",
    "dev",
    "lo",
    "root",
    "handle",
    "1:",
    "netem",
    "delay",
    "20ms",
    "5ms",
    "reorder",
    "10%",
    "limit",
    "100000",
  ]);
  assertEquals(both[1]?.slice(0, 8), [
    "qdisc",
    "add",
    "dev",
    "lo",
    "parent",
    "1:1",
    "handle",
    "10:",
  ]);
});

Deno.test("the header names each impairment and the kernel part that applies it", () => {
  assertEquals(
    describeImpairment({ lossPercent: 2, delayMs: 20, rateBps: 20e6 }),
    "loss 2% each way by nftables; delay 20 ms each way by netem; rate 20.00 Mbit/s by tbf (both directions share it)",
  );
  assertEquals(describeImpairment({ duplicatePercent: 0.5 }), "duplicate 0.5% by netem");
  assertEquals(netemFlags({ lossPercent: 1, delayMs: 5, duplicatePercent: 1 }), [
    "--delay",
    "--duplicate",
  ]);
  assert(!hasImpairment({}));
  assert(hasImpairment({ rateBps: 8000 }));
});

Deno.test("impairment flags parse back to the same impairment (what the re-run process gets)", () => {
  const i = {
    lossPercent: 1.5,
    delayMs: 20,
    jitterMs: 2,
    reorderPercent: 3,
    duplicatePercent: 4,
    rateBps: 5e6,
  };
  const config = parseCommandLine(["lab", ...impairmentFlags(i), "--", "server"]);
  assert(config.command === "lab");
  assertEquals(config.impairment, i);
  const compare = parseCommandLine(["compare", ...impairmentFlags(i, "--link-rate")]);
  assert(compare.command === "compare");
  assertEquals(compare.impairment, i);
});
