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
  formatIntervalHeader,
  formatProbeProgress,
  formatProbeReport,
  probeIntervalJson,
  probeReportJson,
} from "../probe/report.ts";
import { runProbe } from "../probe/run_probe.ts";

/** Run a probe; returns the exit code (0 when it ran, whatever it measured). */
export async function runProbeCommand(config: ProbeConfig): Promise<number> {
  const out = new Output(config.output);
  try {
    using progress = out.progress();
    const { transport } = config.endpoint;
    let headed = false;
    const report = await runProbe(config.endpoint, config.workload, {
      onStart: (live) =>
        progress.follow(() => formatProbeProgress(live(), { transport, ...config.workload })),
      onInterval: (interval) => {
        if (!headed) out.text(formatIntervalHeader());
        headed = true;
        out.text(formatInterval(interval, out.style));
        out.event("interval", probeIntervalJson(interval));
      },
    });
    progress.stop();
    out.text(...formatProbeReport(report, out.style));
    out.result(probeReportJson(report));
    return 0;
  } catch (err) {
    out.error(err);
    throw err;
  }
}
