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
import { VERSION } from "../cli/spec.ts";
import { closeReport, reportMeta, writeFailureReport, writeReport } from "../report/file.ts";
import { renderHtml } from "../report/html.ts";
import { probeSection } from "../report/probe_page.ts";
import { ProbeSeries } from "../report/series.ts";
import { terminalChart } from "../report/terminal_chart.ts";

/** Run a probe; returns the exit code (0 when it ran, whatever it measured). */
export async function runProbeCommand(config: ProbeConfig): Promise<number> {
  const out = new Output(config.output);
  try {
    using progress = out.progress();
    const { transport } = config.endpoint;
    let headed = false;
    const glyphs = out.chartGlyphs(!config.noChart);
    const series = config.report || glyphs ? new ProbeSeries(transport) : undefined;
    const report = await runProbe(config.endpoint, config.workload, {
      ...(series && { onSent: series.sent, onSample: series.sample }),
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
    const data = series?.data();
    if (glyphs && data) {
      out.text(
        ...terminalChart(
          [{ label: transport.toUpperCase(), rtt: report.rtt, series: data }],
          glyphs,
        ),
      );
    }
    if (config.report && data) {
      const title =
        `netkit ${transport} probe to ${config.endpoint.hostname} port ${config.endpoint.port}`;
      await writeReport(
        config.report,
        renderHtml(title, reportMeta(config.report, VERSION), [
          probeSection(`${transport.toUpperCase()} probe`, [{ report, series: data }]),
        ]),
      );
    }
    out.result(probeReportJson(report));
    return 0;
  } catch (err) {
    out.error(err);
    if (config.report) await writeFailureReport(config.report, VERSION, err);
    throw err;
  } finally {
    closeReport(config.report);
  }
}
