/**
 * The kernel's own UDP counters (Linux `/proc/net/snmp`), read to say why UDP
 * lost probes: `RcvbufErrors` counts datagrams dropped because a socket's
 * receive buffer was full. Counters are system-wide (per network namespace),
 * so a figure is "during the run", not "caused by this run" alone.
 *
 * Deno asks for `--allow-all` to read anything under `/proc/net`, which the
 * binary does not get: under its own permissions this returns `undefined` and
 * reports fall back to other evidence. It answers under `deno run -A`.
 *
 * @example
 * ```ts
 * import { readUdpCounters } from "./udp_counters.ts";
 *
 * const before = await readUdpCounters();
 * console.log(before?.RcvbufErrors);
 * ```
 *
 * @module
 */

/** UDP counters by name, e.g. `InDatagrams`, `RcvbufErrors`; undefined where unreadable. */
export async function readUdpCounters(): Promise<Record<string, number> | undefined> {
  if (Deno.build.os !== "linux") return undefined;
  let text: string;
  try {
    text = await Deno.readTextFile("/proc/net/snmp");
  } catch {
    return undefined; // not permitted or not there: the report just says less
  }
  const lines = text.split("\n").filter((line) => line.startsWith("Udp: "));
  const [names, values] = lines.map((line) => line.slice(5).trim().split(/\s+/));
  if (!names || !values || names.length !== values.length) return undefined;
  return Object.fromEntries(names.map((name, i) => [name, Number(values[i])]));
}
