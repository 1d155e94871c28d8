/**
 * `netkit client --throughput`: run one test and print intervals and the
 * summary as text, one JSON document, or a JSON stream.
 *
 * @example
 * ```ts
 * import { runThroughputCommand } from "./throughput.ts";
 * import { parseCommandLine } from "../cli/parse.ts";
 * import type { ThroughputConfig } from "../config.ts";
 *
 * const config = parseCommandLine(["client", "--throughput", "-t", "2s"]) as ThroughputConfig;
 * Deno.exit(await runThroughputCommand(config));
 * ```
 *
 * @module
 */

import type { ThroughputConfig } from "../config.ts";
import { Output } from "../output.ts";
import { runThroughput, type ThroughputInterval } from "../throughput/client.ts";
import { VERSION } from "../cli/spec.ts";
import { closeReport, reportMeta, writeFailureReport, writeReport } from "../report/file.ts";
import { renderHtml } from "../report/html.ts";
import { throughputSections } from "../report/throughput_page.ts";
import {
  formatThroughput,
  formatThroughputInterval,
  formatThroughputProgress,
  throughputIntervalJson,
  throughputJson,
} from "../throughput/report.ts";

/** Run a throughput test; returns the exit code. */
export async function runThroughputCommand(config: ThroughputConfig): Promise<number> {
  const out = new Output(config.output);
  try {
    using progress = out.progress();
    const intervals: ThroughputInterval[] = [];
    const result = await runThroughput(config.plan, {
      onStart: (live) => progress.follow(() => formatThroughputProgress(live(), config.plan)),
      onInterval: (interval) => {
        if (config.report) intervals.push(interval);
        out.text(formatThroughputInterval(interval, config.plan.direction, out.style));
        out.event("interval", throughputIntervalJson(interval));
      },
    });
    progress.stop();
    out.text(...formatThroughput(result, out.style));
    if (config.report) {
      const p = config.plan;
      await writeReport(
        config.report,
        renderHtml(
          `netkit ${p.proto} throughput (${p.direction}, ${p.parallel} stream${
            p.parallel === 1 ? "" : "s"
          }) to ${p.endpoint.hostname} port ${p.endpoint.port}`,
          reportMeta(config.report, VERSION),
          throughputSections(result, intervals),
        ),
      );
    }
    out.result(throughputJson(result));
    return 0;
  } catch (err) {
    out.error(err);
    if (config.report) await writeFailureReport(config.report, VERSION, err);
    throw err;
  } finally {
    closeReport(config.report);
  }
}
