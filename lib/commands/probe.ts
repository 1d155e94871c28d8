/**
 * `netkit client --probe`: run one probe workload and print intervals and the
 * summary as text, one JSON document, or a JSON stream.
 *
 * @example
 * ```ts
 * import { runProbeCommand } from "./probe.ts";
 * import { parseCommandLine } from "../cli/parse.ts";
 * import type { ProbeConfig } from "../config.ts";
 *
 * const config = parseCommandLine(["client", "--probe", "--proto", "udp", "--count", "100"]) as ProbeConfig;
 * Deno.exit(await runProbeCommand(config));
 * ```
 *
 * @module
 */

import type { ProbeConfig } from "../config.ts";
import { Output } from "../output.ts";
import {
  formatInterval,
  formatProbeReport,
  probeIntervalJson,
  probeReportJson,
} from "../probe/report.ts";
import { runProbe } from "../probe/run_probe.ts";

/** Run a probe; returns the exit code (0 when it ran, whatever it measured). */
export async function runProbeCommand(config: ProbeConfig): Promise<number> {
  const out = new Output(config.output);
  try {
    const report = await runProbe(config.endpoint, config.workload, {
      onInterval: (interval) => {
        out.text(formatInterval(interval));
        out.event("interval", probeIntervalJson(interval));
      },
    });
    out.text(...formatProbeReport(report));
    out.result(probeReportJson(report));
    return 0;
  } catch (err) {
    out.error(err);
    throw err;
  }
}
