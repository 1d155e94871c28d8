/**
 * What a probe report means for a script: the error a run ends with although
 * it ran to the end. Not one reply at all exits 5 (as `--message` does): over
 * UDP that usually means nothing listens there; and loss above `--max-loss`
 * exits 1, so a CI job can gate on delivery.
 *
 * @example
 * ```ts
 * import { probeVerdict } from "./verdict.ts";
 * import type { ProbeReport } from "./run_probe.ts";
 *
 * declare const report: ProbeReport;
 * const error = probeVerdict(report, 1); // loss above 1% is a failure
 * if (error) console.error(`error: ${error.message}`);
 * ```
 *
 * @module
 */

import { NetkitError } from "../errors.ts";
import { formatCount, formatPercent } from "../units.ts";
import type { ProbeReport } from "./run_probe.ts";

/**
 * The error a finished run reports, if any: no reply at all (exit 5), replies
 * but not one echo of a probe (exit 1), or loss above `maxLossPercent` (exit 1).
 */
export function probeVerdict(
  report: ProbeReport,
  maxLossPercent: number | undefined,
): NetkitError | undefined {
  if (report.sent > 0 && report.received === 0 && report.malformed > 0) {
    // Something answers, but not with our probes.
    return new NetkitError(
      "failure",
      `none of the ${formatCount(report.malformed)} replies from ${report.target} was an echo ` +
        `of a probe: is it an echo server?`,
    );
  }
  if (report.sent > 0 && report.received === 0) {
    return new NetkitError(
      "timeout",
      report.transport === "udp"
        ? `no reply at all: is anything listening on ${report.target}?`
        : `no reply at all from ${report.target}: is it an echo server?`,
    );
  }
  if (maxLossPercent !== undefined && report.lostFraction * 100 > maxLossPercent) {
    return new NetkitError(
      "failure",
      `${report.transport.toUpperCase()} lost ${formatPercent(report.lostFraction)} of probes (${
        formatCount(report.lost)
      } of ${formatCount(report.sent)}), more than --max-loss ${maxLossPercent}%`,
    );
  }
  return undefined;
}
