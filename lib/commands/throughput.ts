/**
 * `netkit client --throughput`: run one test and print intervals and the
 * summary as text, one JSON document, or a JSON stream.
 *
 * Ctrl-C or SIGTERM ends the test early and still prints both ends' figures of
 * what ran, marked interrupted (exit 130 or 143); a second one stops waiting
 * for the server's figures. A server that goes away mid-test leaves the
 * client's own counts and one error line. A closed stdout ends the run quietly.
 *
 * @example
 * ```ts
 * import { runThroughputCommand } from "./throughput.ts";
 * import { parseCommandLine } from "../cli/parse.ts";
 * import type { ThroughputConfig, ThroughputPlan } from "../config.ts";
 *
 * const config = parseCommandLine(["client", "--throughput", "-t", "2s"]) as ThroughputConfig;
 * Deno.exit(await runThroughputCommand(config));
 * ```
 *
 * @module
 */

import type { ThroughputConfig, ThroughputPlan } from "../config.ts";
import { PartialRunError } from "../errors.ts";
import { selectEngineOf } from "../privileges.ts";
import { Output } from "../output.ts";
import type { Progress } from "../progress.ts";
import { RunStop } from "../stop.ts";
import {
  runThroughput,
  type ThroughputInterval,
  type ThroughputLive,
  type ThroughputResult,
} from "../throughput/client.ts";
import { VERSION } from "../cli/spec.ts";
import { closeReport, reportMeta, writeFailureReport, writeReport } from "../report/file.ts";
import { renderHtml } from "../report/html.ts";
import { throughputSections } from "../report/throughput_page.ts";
import { runIperf3Client } from "../iperf3/client.ts";
import { formatServerFigures, iperf3RunJson, iperf3ShapedJson } from "../iperf3/report.ts";
import {
  formatThroughput,
  formatThroughputInterval,
  formatThroughputProgress,
  throughputIntervalJson,
  throughputJson,
} from "../throughput/report.ts";

/** Run a throughput test; returns the exit code (130/143 when interrupted, 0 once stdout closed). */
export async function runThroughputCommand(config: ThroughputConfig): Promise<number> {
  const out = new Output(config.output);
  if (config.iperf3) return await runAgainstIperf3(config, config.iperf3, out);
  using stop = RunStop.onSignals();
  try {
    using progress = out.progress();
    const intervals: ThroughputInterval[] = [];
    const engine = selectEngineOf(config);
    const result = await runThroughput(config.plan, {
      ...(engine && { engine }),
      ...following(config.plan, out, progress, stop, (interval) => {
        if (config.report) intervals.push(interval);
      }),
    }).finally(() => progress.stop());
    if (stop.reason === "stdout") return 0;
    out.text(...formatThroughput(result, out.style));
    // Only the client's own counts (a second Ctrl-C skipped the server's): no page of figures.
    if (config.report && result.clientOnly === undefined) {
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
    return stop.exitCode(0);
  } catch (err) {
    if (stop.reason === "stdout") return 0;
    showFailure(err, out);
    if (config.report) await writeFailureReport(config.report, VERSION, err);
    throw err;
  } finally {
    closeReport(config.report);
  }
}

/**
 * `--iperf3`: the same report against an iperf3 server, with the server's own
 * figures. Ctrl-C ends the test early as at its planned end (both sides'
 * results, exit 130); a second Ctrl-C gives up at once.
 */
async function runAgainstIperf3(
  config: ThroughputConfig,
  iperf3: { omitMs: number; json: boolean },
  out: Output,
): Promise<number> {
  using stop = RunStop.onSignals();
  try {
    using progress = out.progress();
    // A TCP client that receives (-R, --bidir) raises its streams' receive low-water mark.
    const engine = selectEngineOf(config)?.engine;
    const run = await runIperf3Client(
      { ...config.plan, omitMs: iperf3.omitMs },
      { ...following(config.plan, out, progress, stop), ...(engine && { engine }) },
    ).finally(() => progress.stop());
    if (stop.reason === "stdout") return 0;
    out.text(...formatThroughput(run.result, out.style), ...formatServerFigures(run, out.style));
    const { hostname, port } = config.plan.endpoint;
    out.result(iperf3.json ? iperf3ShapedJson(run, hostname, port) : iperf3RunJson(run));
    return stop.exitCode(0);
  } catch (err) {
    if (stop.reason === "stdout") return 0;
    showFailure(err, out);
    throw err;
  }
}

/**
 * The callbacks both clients take: the live progress line, each interval as
 * text and as an event (after `keep`, if given, has seen it), and the stop's
 * signals.
 */
function following(
  plan: ThroughputPlan,
  out: Output,
  progress: Progress,
  stop: RunStop,
  keep?: (interval: ThroughputInterval) => void,
): {
  onStart: (live: () => ThroughputLive) => void;
  onInterval: (interval: ThroughputInterval) => void;
  signal: AbortSignal;
  now: AbortSignal;
} {
  return {
    onStart: (live) => progress.follow(() => formatThroughputProgress(live(), plan)),
    onInterval: (interval) => {
      keep?.(interval);
      out.text(formatThroughputInterval(interval, plan.direction, out.style));
      out.event("interval", throughputIntervalJson(interval));
    },
    signal: stop.signal,
    now: stop.now,
  };
}

/**
 * A failed run's output: when the server went away mid-test (or a second
 * Ctrl-C skipped its figures), the client's own counts, then why; otherwise
 * the error alone.
 */
function showFailure(err: unknown, out: Output): void {
  if (err instanceof PartialRunError) {
    const partial = err.partial as ThroughputResult;
    out.text(...formatThroughput(partial, out.style));
    out.result(throughputJson(partial), err);
  } else {
    out.error(err);
  }
}
