/**
 * `netkit scan HOST PORTS`: check ports as `nc -zv` does. One line per open
 * port on stdout (every port with `-v`), a summary line on stderr, or one
 * JSON document with every port (`--json`). Exit 0 when at least one port is
 * open, 1 when none is (as `nc -z`). Ctrl-C stops early and still reports.
 *
 * @example
 * ```ts
 * import { runScan } from "./scan.ts";
 * import { parseCommandLine } from "../cli/parse.ts";
 * import type { ScanConfig } from "../config.ts";
 *
 * const config = parseCommandLine(["scan", "127.0.0.1", "22,80"]) as ScanConfig;
 * Deno.exit(await runScan(config));
 * ```
 *
 * @module
 */

import { formatHost, type IpEndpoint } from "../address.ts";
import { resolve } from "../client/dial.ts";
import type { ScanConfig } from "../config.ts";
import { selectEngineOf } from "../privileges.ts";
import { logLine } from "../io.ts";
import { Output } from "../output.ts";
import { countStates, type PortResult, scanPorts } from "../scan/scan.ts";
import { formatCount } from "../units.ts";
import { STOP_SIGNALS } from "../signals.ts";

/** Scan; returns 0 when a port is open, 1 when none is. */
export async function runScan(config: ScanConfig): Promise<number> {
  const endpoint: IpEndpoint = { transport: config.proto, hostname: config.host, port: 0 };
  const address = await resolve(endpoint);
  const out = new Output(config.output);
  const engine = selectEngineOf(config);
  const stop = new AbortController();
  const onSignal = () => {
    if (stop.signal.aborted) Deno.exit(130);
    stop.abort();
  };
  for (const signal of STOP_SIGNALS) Deno.addSignalListener(signal, onSignal);
  const line = (r: PortResult) =>
    `${config.proto} ${formatHost(address, r.port)} ${r.state} (${r.ms.toFixed(2)} ms)`;
  let result;
  try {
    result = await scanPorts({
      address,
      proto: config.proto,
      ports: config.ports,
      concurrency: config.concurrency,
      rate: config.rate,
      timeoutMs: config.timeoutMs,
      payload: config.payload,
      ...(engine && { engine: engine.engine }),
      signal: stop.signal,
      onResult: (r) => {
        if (r.state === "open" || config.verbose) out.text(line(r));
      },
    });
  } finally {
    for (const signal of STOP_SIGNALS) Deno.removeSignalListener(signal, onSignal);
  }
  const counts = countStates(result.ports);
  const seconds = result.elapsedMs / 1000;
  if (config.output === "text") {
    const parts = config.proto === "tcp"
      ? [
        `${formatCount(counts.open)} open`,
        `${formatCount(counts.closed)} closed`,
        `${formatCount(counts.filtered)} filtered`,
      ]
      : [
        `${formatCount(counts.open)} open`,
        // Only the native engine can tell closed (and filtered) UDP ports.
        ...(engine?.engine.name === "native" ? [`${formatCount(counts.closed)} closed`] : []),
        ...(counts.filtered > 0 ? [`${formatCount(counts.filtered)} filtered`] : []),
        `${formatCount(counts["open|filtered"])} open|filtered`,
      ];
    const stopped = result.interrupted
      ? ` (interrupted: ${formatCount(result.ports.length)} of ${
        formatCount(config.ports.length)
      } ports checked)`
      : "";
    logLine(`${parts.join(", ")} in ${seconds.toFixed(2)} s${stopped}`);
  }
  out.result({
    target: config.host,
    address,
    proto: config.proto,
    ...(engine && { engine: engine.engine.name }),
    ports: result.ports.map((r) => ({ port: r.port, state: r.state, ms: Number(r.ms.toFixed(3)) })),
    summary: {
      open: counts.open,
      closed: counts.closed,
      filtered: counts.filtered,
      open_filtered: counts["open|filtered"],
      scanned: result.ports.length,
      elapsed_s: Number(seconds.toFixed(3)),
      interrupted: result.interrupted,
    },
  });
  return counts.open > 0 ? 0 : 1;
}
