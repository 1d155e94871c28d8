/**
 * What the lab does to the packets on its private loopback, as data: the
 * nftables script for `--loss`, the `tc` commands for `--delay`, `--jitter`,
 * `--reorder`, `--duplicate` (netem) and `--rate` (tbf), the sentence a report
 * prints, and the loss a round trip should see. Pure: nothing here runs.
 *
 * "Each way" on loopback: every packet crosses `lo` once, leaving through its
 * egress qdisc (where netem and tbf act) and arriving through the netfilter
 * input hook (where the drop rule acts). A request and its echo are two
 * packets, one each way, so ONE input rule dropping P% is P% each way, and a
 * probe survives a round trip with probability (1 − P)². The drop is on
 * input, not output: a packet dropped on output never leaves, and the kernel
 * returns EPERM to the sender (a local error TCP simply retries), while one
 * dropped on input was sent and vanishes, as on a wire. TCP handshake packets
 * are exempt, so a lost SYN's 1 s initial timeout does not decide a run.
 *
 * @example
 * ```ts
 * import { describeImpairment, expectedRoundTripLoss } from "./impairment.ts";
 *
 * console.log(describeImpairment({ lossPercent: 2, rateBps: 20e6 }));
 * // loss 2% each way by nftables; rate 20.00 Mbit/s by tbf (both directions share it)
 * console.log(expectedRoundTripLoss(5)); // 0.0975
 * ```
 *
 * @module
 */

import type { LabImpairment } from "../config.ts";
import { formatBitRate } from "../units.ts";

/** The nftables table the lab creates inside its namespace. */
export const NFT_TABLE = "netkit_lab";

/** MTU the lab gives its loopback: an Ethernet-sized path, so tbf and loss act per real-sized packet. */
export const LAB_MTU = 1500;

/** Whether any impairment is asked for. */
export function hasImpairment(i: LabImpairment): boolean {
  return Object.values(i).some((v) => v !== undefined);
}

/** The flags that need netem (a kernel qdisc some kernels lack). */
export function netemFlags(i: LabImpairment): string[] {
  const flags: string[] = [];
  if (i.delayMs !== undefined) flags.push("--delay");
  if (i.jitterMs !== undefined) flags.push("--jitter");
  if (i.reorderPercent !== undefined) flags.push("--reorder");
  if (i.duplicatePercent !== undefined) flags.push("--duplicate");
  return flags;
}

/** Share of round trips (request and echo) that a loss of `percent` each way drops: 1 − (1 − p)². */
export function expectedRoundTripLoss(percent: number): number {
  const p = percent / 100;
  return 1 - (1 - p) ** 2;
}

/** Resolution of the drop rule: `numgen random mod 10000 < N`, so 0.01% steps. */
const NUMGEN_MOD = 10_000;

/** The nftables script (for `nft -f -`) dropping `lossPercent` of TCP and UDP packets, each counted. */
export function nftScript(lossPercent: number): string {
  const below = Math.round((lossPercent / 100) * NUMGEN_MOD);
  const drop = (proto: string) =>
    `add rule inet ${NFT_TABLE} input meta l4proto ${proto} numgen random mod ${NUMGEN_MOD} < ${below} counter drop`;
  return [
    `add table inet ${NFT_TABLE}`,
    `add chain inet ${NFT_TABLE} input { type filter hook input priority 0; policy accept; }`,
    `add rule inet ${NFT_TABLE} input tcp flags & syn == syn accept`,
    drop("udp"),
    drop("tcp"),
    "",
  ].join("\n");
}

/** tbf's bucket: 10 ms at the rate, and never less than a few full-size packets. */
export function tbfBurstBytes(rateBps: number): number {
  return Math.max(4 * (LAB_MTU + 14), Math.ceil(rateBps / 8 / 100));
}

/** The `tc` argument lists, in order, that put netem and/or tbf on `lo`. */
export function tcCommands(i: LabImpairment): string[][] {
  const commands: string[][] = [];
  const netem: string[] = [];
  if (i.delayMs !== undefined) {
    netem.push("delay", `${i.delayMs}ms`);
    if (i.jitterMs !== undefined) netem.push(`${i.jitterMs}ms`);
  }
  if (i.reorderPercent !== undefined) netem.push("reorder", `${i.reorderPercent}%`);
  if (i.duplicatePercent !== undefined) netem.push("duplicate", `${i.duplicatePercent}%`);
  const tbf = i.rateBps === undefined ? undefined : [
    "tbf",
    "rate",
    `${Math.round(i.rateBps)}bit`,
    "burst",
    String(tbfBurstBytes(i.rateBps)),
    "latency",
    "100ms",
  ];
  if (netem.length > 0) {
    // netem's default queue (1,000 packets) would drop at modest rates with a delay.
    commands.push([
      "qdisc",
      "add",
      "dev",
      "lo",
      "root",
      "handle",
      "1:",
      "netem",
      ...netem,
      "limit",
      "100000",
    ]);
    if (tbf) commands.push(["qdisc", "add", "dev", "lo", "parent", "1:1", "handle", "10:", ...tbf]);
  } else if (tbf) {
    commands.push(["qdisc", "add", "dev", "lo", "root", "handle", "10:", ...tbf]);
  }
  return commands;
}

/** `5` → `"5%"`, `0.5` → `"0.5%"`. */
function percent(p: number): string {
  return `${Number(p.toFixed(2))}%`;
}

/** `20` → `"20 ms"`. */
function milliseconds(value: number): string {
  return `${Number(value.toFixed(3))} ms`;
}

/** The header sentence: what is impaired, and by which part of the kernel. */
export function describeImpairment(i: LabImpairment): string {
  const parts: string[] = [];
  if (i.lossPercent !== undefined) {
    parts.push(`loss ${percent(i.lossPercent)} each way by nftables`);
  }
  const netem: string[] = [];
  if (i.delayMs !== undefined) {
    netem.push(
      `delay ${milliseconds(i.delayMs)}${
        i.jitterMs !== undefined ? ` ± ${milliseconds(i.jitterMs)}` : ""
      } each way`,
    );
  }
  if (i.reorderPercent !== undefined) netem.push(`reorder ${percent(i.reorderPercent)}`);
  if (i.duplicatePercent !== undefined) netem.push(`duplicate ${percent(i.duplicatePercent)}`);
  if (netem.length > 0) parts.push(`${netem.join(", ")} by netem`);
  if (i.rateBps !== undefined) {
    parts.push(`rate ${formatBitRate(i.rateBps)} by tbf (both directions share it)`);
  }
  return parts.join("; ");
}

/**
 * The impairment as flags again (`["--loss", "5", …]`), for the process
 * re-executed inside the namespace: lab's, or compare's (`--link-rate`).
 */
export function impairmentFlags(
  i: LabImpairment,
  rateFlag: "--rate" | "--link-rate" = "--rate",
): string[] {
  const flags: string[] = [];
  if (i.lossPercent !== undefined) flags.push("--loss", String(i.lossPercent));
  if (i.delayMs !== undefined) flags.push("--delay", `${i.delayMs}ms`);
  if (i.jitterMs !== undefined) flags.push("--jitter", `${i.jitterMs}ms`);
  if (i.reorderPercent !== undefined) flags.push("--reorder", String(i.reorderPercent));
  if (i.duplicatePercent !== undefined) flags.push("--duplicate", String(i.duplicatePercent));
  if (i.rateBps !== undefined) flags.push(rateFlag, String(i.rateBps));
  return flags;
}
