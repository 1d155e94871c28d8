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
import { type NetkitError, PartialRunError } from "../errors.ts";
import { selectEngineOf } from "../privileges.ts";
import { logEvent } from "../io.ts";
import { Output } from "../output.ts";
import {
  formatInterval,
  formatIntervalHeader,
  formatProbeProgress,
  formatProbeReport,
  probeIntervalJson,
  probeReportJson,
} from "../probe/report.ts";
import { type ProbeReport, runProbe } from "../probe/run_probe.ts";
import { probeVerdict } from "../probe/verdict.ts";
import { RunStop } from "../stop.ts";
import { VERSION } from "../cli/spec.ts";
import { closeReport, reportMeta, writeFailureReport, writeReport } from "../report/file.ts";
import { renderHtml } from "../report/html.ts";
import { probeSection } from "../report/probe_page.ts";
import { ProbeSeries } from "../report/series.ts";
import { terminalChart } from "../report/terminal_chart.ts";

/**
 * Run a probe; returns the exit code: 0 when it ran and got replies within
 * `--max-loss`, 130/143 when interrupted, 0 once stdout was closed. Throws what
 * failed (after printing the partial report), no reply at all (5), or loss
 * above `--max-loss` (1).
 *
 * Ctrl-C or SIGTERM stops sending, waits for echoes in flight (a second one
 * stops that), then prints the report marked interrupted.
 */
export async function runProbeCommand(config: ProbeConfig): Promise<number> {
  const out = new Output(config.output);
  using stop = RunStop.onSignals();
  /** The failure already carried by the printed report (then not printed again). */
  let reported: unknown;
  try {
    using progress = out.progress();
    const { transport } = config.endpoint;
    let headed = false;
    const glyphs = out.chartGlyphs(!config.noChart);
    const series = config.report || glyphs ? new ProbeSeries(transport) : undefined;
    const engine = selectEngineOf(config);
    let report: ProbeReport;
    let error: NetkitError | undefined;
    try {
      report = await runProbe(config.endpoint, config.workload, {
        ...(engine && { engine }),
        ...(series && { onSent: series.sent, onSample: series.sample }),
        onStart: (live) =>
          progress.follow(() => formatProbeProgress(live(), { transport, ...config.workload })),
        onInterval: (interval) => {
          if (!headed) out.text(formatIntervalHeader());
          headed = true;
          out.text(formatInterval(interval, out.style));
          out.event("interval", probeIntervalJson(interval));
        },
        signal: stop.signal,
        now: stop.now,
        ...(config.verbose && { onPath: logEvent }),
      });
    } catch (err) {
      // A run that failed part-way still reports what it measured, then the error.
      if (!(err instanceof PartialRunError)) throw err;
      report = err.partial as ProbeReport;
      error = err;
    }
    progress.stop();
    if (stop.reason === "stdout") return 0;
    if (!report.interrupted) error ??= probeVerdict(report, config.maxLossPercent);
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
    out.result(probeReportJson(report), error);
    if (error !== undefined) throw reported = error;
    return stop.exitCode(0);
  } catch (err) {
    if (stop.reason === "stdout") return 0;
    if (err !== reported) {
      out.error(err);
      if (config.report) await writeFailureReport(config.report, VERSION, err);
    }
    throw err;
  } finally {
    closeReport(config.report);
  }
}
