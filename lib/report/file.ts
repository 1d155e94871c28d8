/**
 * The `--report FILE.html` file: opened (created, emptied) by `main.ts`
 * BEFORE it drops privileges, so a command keeps no `write` permission at all
 * (Deno revokes a permission as a whole: revoking `write` for one path leaves
 * a global grant in place, so "write only this file" can only be had by
 * holding the open file). A path that cannot be written fails at start, not
 * after a long run. The host name is read then too (`sys`, or /etc/hostname).
 *
 * @example
 * ```ts
 * import { openReportFile, writeReport } from "./file.ts";
 * import { parseCommandLine } from "../cli/parse.ts";
 *
 * const config = await openReportFile(
 *   parseCommandLine(["compare", "--report", "/tmp/r.html"]),
 * );
 * if (config.command === "compare" && config.report) {
 *   await writeReport(config.report, "<!doctype html><title>r</title>");
 * }
 * ```
 *
 * @module
 */

import type { Config, ReportTarget } from "../config.ts";
import { NetkitError, systemDetail } from "../errors.ts";
import { renderHtml, type ReportMeta } from "./html.ts";
import { writeAll } from "@std/io/write-all";

function hostName(): string {
  try {
    if (Deno.permissions.querySync({ name: "sys", kind: "hostname" }).state === "granted") {
      return Deno.hostname();
    }
  } catch { /* fall through */ }
  try {
    return Deno.readTextFileSync("/etc/hostname").trim() || "unknown";
  } catch {
    return "unknown";
  }
}

/** `config` with its report file open (if it asks for one). */
export async function openReportFile(config: Config): Promise<Config> {
  if (config.command === "text" || config.command === "server") return config;
  if (!("report" in config) || !config.report || config.report.file) return config;
  const target = config.report;
  let file: Deno.FsFile;
  try {
    file = await Deno.open(target.path, { write: true, create: true, truncate: true });
  } catch (err) {
    throw new NetkitError(
      "permission",
      `Cannot write --report '${target.path}': ${
        systemDetail(err)
      }; give a file in a writable directory`,
    );
  }
  return { ...config, report: { ...target, file, host: hostName() } } as Config;
}

/** Write `html` into the report file and close it. */
export async function writeReport(target: ReportTarget, html: string): Promise<void> {
  const file = target.file ?? await Deno.open(target.path, {
    write: true,
    create: true,
    truncate: true,
  });
  try {
    await file.truncate(0);
    await writeAll(file, new TextEncoder().encode(html));
  } finally {
    file.close();
  }
}

/** Close the report file unwritten (a run that failed before measuring anything). */
export function closeReport(target: ReportTarget | undefined): void {
  try {
    target?.file?.close();
  } catch { /* already closed */ }
}

/** The page's title block: the command line, now, the host (read at start), the version. */
export function reportMeta(target: ReportTarget, version: string): ReportMeta {
  return {
    commandLine: target.commandLine,
    date: new Date().toISOString(),
    host: target.host ?? "unknown",
    version: `netkit ${version}`,
  };
}

/**
 * A run that failed still leaves a page that says so (rather than the empty
 * file opened at start): the title block and the error.
 */
export async function writeFailureReport(
  target: ReportTarget,
  version: string,
  err: unknown,
): Promise<void> {
  const message = err instanceof Error ? err.message : String(err);
  await writeReport(
    target,
    renderHtml("netkit: the run failed", reportMeta(target, version), [
      { heading: "The run failed", intro: message, charts: [] },
    ]),
  ).catch(() => {});
}
