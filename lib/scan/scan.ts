/**
 * connect_ex-style port checks. TCP: `open` (the connect succeeded), `closed`
 * (refused), `filtered` (no answer within the timeout, or the network said it
 * is unreachable). UDP, as nmap names them: `open` (a datagram came back from
 * the port), `closed` (ICMP port unreachable), `filtered` (another ICMP
 * unreachable), `open|filtered` (silence). Only a connected socket hears
 * ICMP: with the native engine (`plan.engine`, Linux) each port gets one, and
 * its `ECONNREFUSED` says closed. Deno's own sockets are not connected and
 * report no ICMP, so on the deno engine a closed UDP port cannot be told from
 * a filtered one and is `open|filtered`.
 *
 * At most `concurrency` sockets are open at once (a pending connect is
 * aborted, and its socket closed, at the timeout), and attempts start at most
 * `rate` per second.
 *
 * @example
 * ```ts
 * import { scanPorts } from "./scan.ts";
 *
 * const result = await scanPorts({
 *   address: "127.0.0.1",
 *   proto: "tcp",
 *   ports: [22, 80],
 *   concurrency: 100,
 *   rate: 0,
 *   timeoutMs: 1000,
 *   payload: new Uint8Array(0),
 * });
 * console.log(result.ports);
 * ```
 *
 * @module
 */

import { delay } from "@std/async/delay";
import { formatHost, wildcardFor } from "../address.ts";
import { fromSystemError } from "../errors.ts";
import { isFrom, isPortUnreachable } from "../client/dial.ts";
import { DatagramBatch, type DatagramTransport, type Engine } from "../engine/types.ts";

/** What a port answered, in nmap's words. */
export type PortState = "open" | "closed" | "filtered" | "open|filtered";

/** One port's result. */
export interface PortResult {
  port: number;
  state: PortState;
  /** How long the check took. */
  ms: number;
}

/** What {@linkcode scanPorts} needs. */
export interface ScanPlan {
  /** An IP address (resolved). */
  address: string;
  proto: "tcp" | "udp";
  ports: readonly number[];
  concurrency: number;
  /** Attempts per second; 0: no limit. */
  rate: number;
  timeoutMs: number;
  payload: Uint8Array;
  /**
   * UDP: the engine whose connected sockets probe each port; only the native
   * one hears ICMP (closed). Default: Deno's own socket (no closed).
   */
  engine?: Engine;
  /** Stop early (the results so far are returned). */
  signal?: AbortSignal;
  /** Each result as it comes. */
  onResult?: (result: PortResult) => void;
}

/** Every port's result, in the order given, and the time the whole scan took. */
export interface ScanResult {
  ports: PortResult[];
  elapsedMs: number;
  /** Stopped by the signal before every port was checked. */
  interrupted: boolean;
}

/** Scan `plan.ports` on `plan.address`. */
export async function scanPorts(plan: ScanPlan): Promise<ScanResult> {
  const started = performance.now();
  const results: (PortResult | undefined)[] = new Array(plan.ports.length);
  const gap = plan.rate > 0 ? 1000 / plan.rate : 0;
  let nextStart = started;
  let next = 0;
  const check = plan.proto === "tcp"
    ? checkTcp
    : plan.engine !== undefined && plan.engine.name !== "deno"
    ? checkUdpConnected
    : checkUdp;
  const worker = async () => {
    while (next < plan.ports.length && !plan.signal?.aborted) {
      const i = next++;
      if (gap > 0) {
        const at = nextStart;
        nextStart = Math.max(nextStart, performance.now()) + gap;
        const wait = at - performance.now();
        if (wait > 0) await delay(wait, { signal: plan.signal }).catch(() => {});
        if (plan.signal?.aborted) return; // stopped while waiting for its slot
      }
      const port = plan.ports[i]!;
      const t0 = performance.now();
      const state = await check(plan, port);
      const result = { port, state, ms: performance.now() - t0 };
      results[i] = result;
      plan.onResult?.(result);
    }
  };
  const workers = Math.max(1, Math.min(plan.concurrency, plan.ports.length));
  await Promise.all(Array.from({ length: workers }, worker));
  const ports = results.filter((r): r is PortResult => r !== undefined);
  return {
    ports,
    elapsedMs: performance.now() - started,
    interrupted: ports.length < plan.ports.length,
  };
}

async function checkTcp(plan: ScanPlan, port: number): Promise<PortState> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), plan.timeoutMs);
  try {
    const conn = await Deno.connect({ hostname: plan.address, port, signal: abort.signal });
    conn.close();
    return "open";
  } catch (err) {
    if (err instanceof Deno.errors.ConnectionRefused) return "closed";
    return "filtered"; // timed out, or unreachable: nothing answered for the port
  } finally {
    clearTimeout(timer);
  }
}

async function checkUdp(plan: ScanPlan, port: number): Promise<PortState> {
  const socket = Deno.listenDatagram({
    transport: "udp",
    hostname: wildcardFor(plan.address),
    port: 0,
  });
  const peer: Deno.NetAddr = { transport: "udp", hostname: plan.address, port };
  const timer = setTimeout(() => socket.close(), plan.timeoutMs);
  try {
    await socket.send(plan.payload, peer);
    for (;;) {
      const [, from] = await socket.receive();
      if (isFrom(from, peer)) return "open";
    }
  } catch {
    return "open|filtered"; // the timeout closed the socket: silence
  } finally {
    clearTimeout(timer);
    try {
      socket.close();
    } catch { /* closed by the timeout */ }
  }
}

/** ICMP unreachable other than port unreachable (host, network, administratively prohibited). */
const UNREACHABLE = new Set(["EHOSTUNREACH", "ENETUNREACH", "EACCES", "EPERM"]);

/** UDP through an engine's connected socket, which hears ICMP port unreachable. */
async function checkUdpConnected(plan: ScanPlan, port: number): Promise<PortState> {
  const where = `udp ${formatHost(plan.address, port)}`;
  // Unreachable (no route, or ICMP that said so): filtered; anything else fails the scan.
  const unreachable = (err: unknown) => {
    if (UNREACHABLE.has((err as { code?: string } | null)?.code ?? "")) return "filtered" as const;
    throw fromSystemError(err, "scan", where);
  };
  let socket: DatagramTransport;
  try {
    socket = await plan.engine!.open({ remote: { hostname: plan.address, port } });
  } catch (err) {
    return unreachable(err);
  }
  using _ = socket;
  const out = new DatagramBatch(1, Math.max(1, plan.payload.length));
  out.data.set(plan.payload);
  out.fill(1, plan.payload.length);
  const reply = new DatagramBatch(1, 1); // that one came back is all a scan needs
  const timer = setTimeout(() => socket.close(), plan.timeoutMs);
  try {
    await socket.sendBatch(out);
    // 0: the timeout closed the socket (silence).
    return await socket.receiveBatch(reply) > 0 ? "open" : "open|filtered";
  } catch (err) {
    return isPortUnreachable(err) ? "closed" : unreachable(err);
  } finally {
    clearTimeout(timer);
  }
}

/** Counts by state. */
export function countStates(ports: readonly PortResult[]): Record<PortState, number> {
  const counts: Record<PortState, number> = {
    open: 0,
    closed: 0,
    filtered: 0,
    "open|filtered": 0,
  };
  for (const p of ports) counts[p.state]++;
  return counts;
}
