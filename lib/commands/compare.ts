/**
 * `netkit compare`: the same probe workload over TCP, then over UDP, against
 * one echo server; one side-by-side table and plain sentences per phase.
 * With no HOST it starts its own echo server (TCP and UDP) on loopback and
 * runs the demo phases: a paced one and an unpaced one.
 *
 * @example
 * ```ts
 * import { runCompare } from "./compare.ts";
 *
 * Deno.exit(
 *   await runCompare({
 *     command: "compare",
 *     target: undefined,
 *     workload: undefined,
 *     intervalMs: undefined,
 *     output: "text",
 *     maxLossPercent: undefined,
 *   }),
 * );
 * ```
 *
 * @module
 */

import { formatHost, isLoopback } from "../address.ts";
import { ensureUdpListener, openDatagram, resolve } from "../client/dial.ts";
import { type EmbeddedServer, startEmbeddedServer } from "../compare/embedded_server.ts";
import { describeDifferences } from "../compare/findings.ts";
import { readSnmpCounters, readUdpCounters } from "../udp_counters.ts";
import type { CompareConfig, LabImpairment, ProbeWorkload } from "../config.ts";
import { formatSelection, selectEngine } from "../engine/select.ts";
import { logEvent } from "../io.ts";
import { Output } from "../output.ts";
import {
  finite,
  formatInterval,
  formatIntervalHeader,
  formatProbeProgress,
  formatProbeReport,
  type Json,
  ms,
  pps,
  probeIntervalJson,
  probeReportJson,
} from "../probe/report.ts";
import { type ProbeLive, type ProbeReport, runProbe } from "../probe/run_probe.ts";
import type { Style } from "../terminal.ts";
import { formatBitRate, formatCount, formatCountOf, formatPercent, formatSize } from "../units.ts";
import { outputWidth, wrap } from "../wrap.ts";
import { VERSION } from "../cli/spec.ts";
import { closeReport, reportMeta, writeFailureReport, writeReport } from "../report/file.ts";
import { renderHtml } from "../report/html.ts";
import { probeSection } from "../report/probe_page.ts";
import { ProbeSeries, type ProbeSeriesData } from "../report/series.ts";
import { terminalChart } from "../report/terminal_chart.ts";
import { probeVerdict } from "../probe/verdict.ts";
import { type NetkitError, PartialRunError } from "../errors.ts";
import { RunStop } from "../stop.ts";
import { counterDelta, type KernelCounters, kernelJson } from "../lab/counters.ts";
import { describeImpairment, expectedRoundTripLoss } from "../lab/impairment.ts";
import { applyImpairments, type Lab, runInNamespace } from "../lab/namespace.ts";

/** One phase of a comparison. */
export interface ComparePhase {
  name: string;
  description: string;
  workload: ProbeWorkload;
}

/** The loopback demo: informative, and done in well under 15 s. */
export const DEMO_PHASES: readonly ComparePhase[] = [
  {
    name: "paced",
    description: "3,000 probes of 64 B at 2,000/s: a gentle, even load",
    workload: {
      count: 3000,
      durationMs: undefined,
      rate: 2000,
      size: 64,
      timeoutMs: 1000,
      intervalMs: 0,
      outstanding: 0,
    },
  },
  {
    name: "unpaced",
    description: "100,000 probes of 64 B sent as fast as possible: more than a receiver reads",
    workload: {
      count: 100_000,
      durationMs: undefined,
      rate: 0,
      size: 64,
      timeoutMs: 1000,
      intervalMs: 0,
      outstanding: 0,
    },
  },
];

/**
 * The default phase on a lab path (impairment flags): paced, so what the
 * learner sees is the path's doing, not an overrun receiver; a long timeout,
 * since TCP recovers from loss by retransmitting, with backoff.
 */
const LAB_PHASE: ComparePhase = {
  name: "impaired",
  description: "3,000 probes of 64 B at 1,000/s over the impaired path",
  workload: {
    count: 3000,
    durationMs: undefined,
    rate: 1000,
    size: 64,
    timeoutMs: 3000,
    intervalMs: 0,
    outstanding: 0,
  },
};

interface PhaseResult {
  phase: ComparePhase;
  /** The lab's kernel counters during the phase (impairment flags only). */
  kernel?: KernelCounters;
  /** The lab's impairment (impairment flags only). */
  impairment?: LabImpairment;
  tcp: ProbeReport;
  /** Missing when the run was stopped before the phase's UDP half. */
  udp: ProbeReport | undefined;
  rcvbufErrors: number | undefined;
  udpLossSplit: { toServer: number; fromServer: number } | undefined;
  findings: string[];
  /** Bucketed samples, when a chart or `--report` wants them. */
  series?: { tcp: ProbeSeriesData; udp: ProbeSeriesData };
}

/**
 * Run the comparison; returns the exit code (130/143 when interrupted, 0 when
 * stdout was closed). Throws what failed, after printing what ran.
 */
export async function runCompare(config: CompareConfig): Promise<number> {
  const out = new Output(config.output);
  using stop = RunStop.onSignals();
  try {
    if (config.impairment && !config.labInside) {
      // Re-run this compare inside a private, impaired network namespace (lib/lab/).
      return await runInNamespace(["compare", ...(config.argv ?? []), "--lab-inside"]);
    }
    const lab = config.impairment && await applyImpairments(config.impairment);
    if (config.target === undefined) {
      await using server = await startEmbeddedServer();
      out.text(
        out.style.bold(
          `netkit compare: TCP vs UDP against an embedded echo server on ${
            formatHost(server.hostname, server.port)
          }`,
        ),
      );
      if (lab) out.text(`Path: ${lab.description}, in a private network namespace`);
      return await compare(
        { hostname: server.hostname, port: server.port },
        server,
        config,
        out,
        stop,
        undefined,
        lab || undefined,
      );
    }
    // Resolve first: a name that does not resolve fails before anything is printed, and TCP
    // and UDP then measure the same address.
    const { hostname, port } = config.target;
    const shown = formatHost(hostname, port);
    const address = await resolve({ transport: "tcp", hostname, port }, shown);
    out.text(
      out.style.bold(
        `netkit compare: TCP vs UDP against ${shown}${address === hostname ? "" : ` (${address})`}`,
      ),
    );
    // On the deno engine, nothing listening on UDP there is known before the TCP half runs
    // where this host can tell; the native engine's UDP half sees ICMP port unreachable itself.
    if (selectEngine(config.engine ?? "auto").engine.name === "deno") {
      ensureUdpListener(await openDatagramPeer({ hostname: address, port }));
    }
    return await compare({ hostname: address, port }, undefined, config, out, stop, shown);
  } catch (err) {
    if (stop.reason === "stdout") return 0;
    if (!reported.has(err as object)) out.error(err);
    if (config.report) await writeFailureReport(config.report, VERSION, err);
    throw err;
  } finally {
    closeReport(config.report);
  }
}

/** The resolved UDP address of `target` (the socket opened to resolve it is closed at once). */
async function openDatagramPeer(target: { hostname: string; port: number }): Promise<Deno.NetAddr> {
  const { socket, peer } = await openDatagram({ transport: "udp", ...target });
  socket.close();
  return peer;
}

async function compare(
  target: { hostname: string; port: number },
  embedded: EmbeddedServer | undefined,
  config: CompareConfig,
  out: Output,
  stop: RunStop,
  shown: string = formatHost(target.hostname, target.port),
  lab?: Lab,
): Promise<number> {
  const phases: readonly ComparePhase[] = lab && !config.workload
    ? [LAB_PHASE]
    : config.workload
    ? [{
      name: "custom",
      description: describeWorkload(config.workload),
      workload: config.workload,
    }]
    : DEMO_PHASES.map((p) =>
      config.intervalMs === undefined
        ? p
        : { ...p, workload: { ...p.workload, intervalMs: config.intervalMs } }
    );
  const results: PhaseResult[] = [];
  /** The --report page of the phases that ran. */
  const writeHtml = async () => {
    if (!config.report) return;
    const where = formatHost(target.hostname, target.port);
    await writeReport(
      config.report,
      renderHtml(
        `netkit compare: TCP vs UDP against ${
          embedded ? "an embedded echo server on " : ""
        }${where}`,
        reportMeta(config.report, VERSION),
        results.map((r, i) =>
          probeSection(
            `Phase ${i + 1} of ${results.length} (${r.phase.name})`,
            r.series
              ? [
                { report: r.tcp, series: r.series.tcp },
                ...(r.udp ? [{ report: r.udp, series: r.series.udp }] : []),
              ]
              : [],
            { intro: r.phase.description, findings: r.findings, id: `phase-${i + 1}` },
          )
        ),
      ),
    );
  };
  const width = outputWidth();
  const glyphs = out.chartGlyphs(!config.noChart);
  const engine = selectEngine(config.engine ?? "auto");
  if (config.verbose) logEvent(formatSelection(engine));
  using progress = out.progress();
  for (const [i, phase] of phases.entries()) {
    out.text(
      "",
      ...wrap(`Phase ${i + 1} of ${phases.length} (${phase.name}): ${phase.description}`, width)
        .map((line) => out.style.bold(line)),
    );
    // Paced, both transports run at once: the host's noise (other processes, timers) then falls
    // on both alike, and their sub-runs can be compared pair by pair. Unpaced, each runs alone.
    const concurrent = phase.workload.rate > 0;
    const running = new Map<"tcp" | "udp", () => ProbeLive>();
    const onStart = (transport: "tcp" | "udp") => (live: () => ProbeLive) => {
      if (!concurrent) running.clear();
      running.set(transport, live);
      progress.follow(() =>
        `phase ${i + 1}/${phases.length}  ` +
        [...running].map(([t, l]) => formatProbeProgress(l(), { transport: t, ...phase.workload }))
          .join("   ")
      );
    };
    let headed = false;
    const onInterval = (interval: Parameters<typeof formatInterval>[0]) => {
      if (!headed) out.text(formatIntervalHeader());
      headed = true;
      out.text(formatInterval(interval, out.style));
      out.event("interval", {
        phase: phase.name,
        ...(probeIntervalJson(interval) as Record<string, Json>),
      });
    };
    const series = config.report || glyphs
      ? { tcp: new ProbeSeries("tcp"), udp: new ProbeSeries("udp") }
      : undefined;
    // Ctrl-C (stop.signal) stops sending; a second one (stop.now) stops waiting for echoes.
    const kernelBefore = await lab?.counters();
    const runTcp = (signal?: AbortSignal, started?: () => void) =>
      runProbe({ transport: "tcp", ...target }, phase.workload, {
        onInterval,
        ...(series && { onSent: series.tcp.sent, onSample: series.tcp.sample }),
        onStart: (live) => {
          onStart("tcp")(live);
          started?.();
        },
        signal: signal ? AbortSignal.any([signal, stop.signal]) : stop.signal,
        now: stop.now,
      });
    const runUdp = (signal?: AbortSignal) =>
      runProbe({ transport: "udp", ...target }, phase.workload, {
        engine,
        onInterval,
        ...(series && { onSent: series.udp.sent, onSample: series.udp.sample }),
        onStart: onStart("udp"),
        signal: signal ? AbortSignal.any([signal, stop.signal]) : stop.signal,
        now: stop.now,
      });
    const tcpBefore = await readSnmpCounters("Tcp");
    let before = concurrent ? await readUdpCounters() : undefined;
    let serverBefore = concurrent ? await embedded?.counters() : undefined;
    let tcp: ProbeReport;
    let udp: ProbeReport | undefined;
    let failure: NetkitError | undefined;
    let tcpAfter: Record<string, number> | undefined;
    // A run that failed part-way still reports what it measured; any other failure ends compare.
    const partial = (err: unknown): ProbeReport => {
      if (!(err instanceof PartialRunError)) throw err;
      failure ??= err;
      return err.partial as ProbeReport;
    };
    if (concurrent) {
      // One failing (refused, unreachable) stops the other's sending at once.
      const failed = new AbortController();
      const stopOnFailure = (run: Promise<ProbeReport>) =>
        run.catch((err) => {
          failed.abort();
          throw err;
        });
      // UDP starts once TCP has connected, so a refused or unreachable target fails at once.
      const connected = Promise.withResolvers<boolean>();
      const tcpRunning = stopOnFailure(runTcp(failed.signal, () => connected.resolve(true)));
      tcpRunning.catch(() => connected.resolve(false));
      const udpRunning = (await connected.promise)
        ? stopOnFailure(runUdp(failed.signal))
        : undefined;
      const [tcpRun, udpRun] = await Promise.allSettled([tcpRunning, udpRunning]);
      tcp = tcpRun.status === "fulfilled" ? tcpRun.value : partial(tcpRun.reason);
      if (udpRun.status === "fulfilled") udp = udpRun.value;
      else udp = partial(udpRun.reason);
      tcpAfter = await readSnmpCounters("Tcp");
    } else {
      try {
        tcp = await runTcp();
      } catch (err) {
        tcp = partial(err);
      }
      tcpAfter = await readSnmpCounters("Tcp");
      if (failure === undefined && !stop.signal.aborted) {
        before = await readUdpCounters();
        serverBefore = await embedded?.counters();
        try {
          udp = await runUdp();
        } catch (err) {
          udp = partial(err);
        }
      }
    }
    if (stop.reason === "stdout") return 0;
    const tcpRetransmits =
      tcpBefore?.RetransSegs !== undefined && tcpAfter?.RetransSegs !== undefined
        ? tcpAfter.RetransSegs - tcpBefore.RetransSegs
        : undefined;
    const serverAfter = udp && await embedded?.counters();
    const after = udp && await readUdpCounters();
    const kernelAfter = await lab?.counters();
    const kernel = kernelBefore && kernelAfter && counterDelta(kernelBefore, kernelAfter);
    const rcvbufErrors = before?.RcvbufErrors !== undefined && after?.RcvbufErrors !== undefined
      ? after.RcvbufErrors - before.RcvbufErrors
      : kernel?.udpRcvbufErrors;
    const udpLossSplit = udp && serverBefore && serverAfter
      ? {
        toServer: Math.max(0, udp.sent - (serverAfter.datagramsIn - serverBefore.datagramsIn)),
        fromServer: Math.max(
          0,
          serverAfter.datagramsOut - serverBefore.datagramsOut - udp.received - udp.duplicates,
        ),
      }
      : undefined;
    // No UDP reply at all is not a property of UDP: say so instead of explaining the loss.
    failure ??= stop.interrupted
      ? undefined
      : udp?.received === 0 && udp.sent > 0
      ? probeVerdict(udp, undefined)
      : undefined;
    // Findings need both halves, whole: an interrupted or failed phase only shows its figures.
    const complete = udp !== undefined && !tcp.interrupted && !udp.interrupted &&
      failure === undefined;
    const findings = complete && udp !== undefined
      ? describeDifferences(tcp, udp, {
        ...(rcvbufErrors !== undefined && { rcvbufErrors }),
        ...(udpLossSplit && { udpLossSplit }),
        ...(tcpRetransmits !== undefined && { tcpRetransmits }),
        ...(tcpRetransmits === undefined && kernel && { tcpRetransmits: kernel.tcpRetransSegs }),
        loopback: isLoopback(target.hostname),
        concurrent,
        ...(kernel && { lab: { ...kernel, lossPercent: lab?.impairment.lossPercent } }),
      })
      : [];
    const data = series && { tcp: series.tcp.data(), udp: series.udp.data() };
    results.push({
      phase,
      tcp,
      udp,
      rcvbufErrors,
      udpLossSplit,
      findings,
      series: data,
      kernel,
      impairment: lab?.impairment,
    });
    if (i === phases.length - 1 || stop.signal.aborted || failure !== undefined) {
      progress.stop();
    }
    out.text(
      ...table(tcp, udp, out.style),
      ...labLines(udp, lab, kernel, width),
      "",
      ...findings.flatMap((f) => wrap(highlightFinding(f, out.style), width, "  ")),
    );
    if (glyphs && data && udp) {
      out.text(
        "",
        ...terminalChart([
          { label: "TCP", rtt: tcp.rtt, series: data.tcp },
          { label: "UDP", rtt: udp.rtt, series: data.udp },
        ], glyphs),
      );
    }
    if (stop.interrupted) {
      out.text("  interrupted: the figures cover what ran; no findings are drawn from them");
    }
    if (failure !== undefined) {
      await writeHtml();
      finish(shown, embedded, results, out, stop, failure);
      throw failure;
    }
    if (stop.signal.aborted) break;
  }
  await writeHtml();
  const failure = stop.interrupted ? undefined : results.flatMap((r) => [r.tcp, r.udp])
    .map((report) => report && probeVerdict(report, config.maxLossPercent))
    .find((error) => error !== undefined);
  finish(shown, embedded, results, out, stop, failure);
  if (failure !== undefined) throw failure;
  return stop.exitCode(0);
}

/** Failures already in the final document (which then carries their `error`). */
const reported = new WeakSet<object>();

/** Print the final document of what ran, with the failure that ends the run, if any. */
function finish(
  shown: string,
  embedded: EmbeddedServer | undefined,
  results: PhaseResult[],
  out: Output,
  stop: RunStop,
  failure: NetkitError | undefined,
): void {
  const phaseDocs = results.map((r) => phaseJson(r));
  const last = phaseDocs[phaseDocs.length - 1] as Record<string, Json>;
  out.result({
    target: shown,
    embedded_server: embedded !== undefined,
    parameters: last.parameters ?? null,
    tcp: last.tcp ?? null,
    udp: last.udp ?? null,
    findings: last.findings ?? null,
    ...(last.kernel !== undefined && {
      impairment: last.impairment ?? null,
      kernel: last.kernel ?? null,
      expected_udp_loss_percent: last.expected_udp_loss_percent ?? null,
    }),
    phases: phaseDocs,
    interrupted: stop.interrupted,
  }, failure);
  if (failure !== undefined) reported.add(failure);
}

function describeWorkload(w: ProbeWorkload): string {
  const amount = w.count !== undefined
    ? formatCountOf(w.count, "probe")
    : `probes for ${w.durationMs! / 1000} s`;
  const pace = w.rate > 0
    ? `at ${formatCount(w.rate)}/s`
    : w.outstanding === 1
    ? "one at a time (ping-pong)"
    : "at full speed";
  return `${amount} of ${formatSize(w.size)} ${pace}`;
}

function phaseJson(r: PhaseResult): Json {
  const w = r.phase.workload;
  return {
    name: r.phase.name,
    description: r.phase.description,
    parameters: {
      count: w.count ?? null,
      duration_s: w.durationMs !== undefined ? w.durationMs / 1000 : null,
      rate_pps: w.rate,
      size: w.size,
      timeout_s: w.timeoutMs / 1000,
      outstanding: w.outstanding,
    },
    tcp: probeReportJson(r.tcp),
    udp: r.udp ? probeReportJson(r.udp) : null,
    udp_rcvbuf_errors: finite(r.rcvbufErrors ?? null),
    udp_lost_before_server: r.udpLossSplit?.toServer ?? null,
    udp_lost_after_server: r.udpLossSplit?.fromServer ?? null,
    findings: r.findings,
    ...(r.kernel && { kernel: kernelJson(r.kernel) }),
    ...(r.kernel && r.impairment && labJson(r.impairment)),
  };
}

/** Mark up a finding: a transport's loss red, "delivered all" green. */
function highlightFinding(sentence: string, style: Style): string {
  return sentence
    .replace(/\b(?:TCP|UDP) lost [\d,]+ of [\d,]+ probes? \([\d.]+%\)/g, (m) => style.red(m))
    .replace(
      /\b(?:TCP|UDP|Both) delivered (?:all [\d,]+(?: in order)?|every probe)/g,
      (m) => style.green(m),
    );
}

function table(tcp: ProbeReport, udp: ProbeReport | undefined, style: Style): string[] {
  if (udp === undefined) return formatProbeReport(tcp, style).map((line) => `  ${line}`);
  const rows: [string, string, string][] = [
    ["", "TCP", "UDP"],
    ["sent", formatCount(tcp.sent), formatCount(udp.sent)],
    ["received", formatCount(tcp.received), formatCount(udp.received)],
    [
      "lost",
      `${formatCount(tcp.lost)} (${formatPercent(tcp.lostFraction)})`,
      `${formatCount(udp.lost)} (${formatPercent(udp.lostFraction)})`,
    ],
    ["out of order", formatCount(tcp.outOfOrder), formatCount(udp.outOfOrder)],
    ["duplicates", formatCount(tcp.duplicates), formatCount(udp.duplicates)],
    ["rtt min ms", ms(tcp.rtt.min), ms(udp.rtt.min)],
    ["rtt p50 ms", ms(tcp.rtt.p50), ms(udp.rtt.p50)],
    ["rtt p90 ms", ms(tcp.rtt.p90), ms(udp.rtt.p90)],
    ["rtt p99 ms", ms(tcp.rtt.p99), ms(udp.rtt.p99)],
    ["rtt p99.9 ms", ms(tcp.rtt.p999), ms(udp.rtt.p999)],
    ["rtt max ms", ms(tcp.rtt.max), ms(udp.rtt.max)],
    ["jitter ms", ms(tcp.jitterMs), ms(udp.jitterMs)],
    ["goodput", formatBitRate(tcp.bitsPerSecond), formatBitRate(udp.bitsPerSecond)],
    ["send rate", pps(tcp.ratePps), pps(udp.ratePps)],
    ["engine", tcp.engine?.engine ?? "deno", udp.engine?.engine ?? "deno"],
    ["elapsed", `${tcp.elapsedS.toFixed(2)} s`, `${udp.elapsedS.toFixed(2)} s`],
  ];
  const w0 = Math.max(...rows.map((r) => r[0].length)) + 2;
  const w1 = Math.max(...rows.map((r) => r[1].length)) + 4;
  const w2 = Math.max(...rows.map((r) => r[2].length)) + 4;
  // Pad the plain text, then mark it up: colour codes take no columns.
  const lostCell = (r: ProbeReport, padded: string) =>
    padded.replace(/\S.*/, (m) => r.lost > 0 ? style.red(m) : style.green(m));
  return rows.map(([a, b, c], row) => {
    const line = `  ${a.padEnd(w0)}${b.padStart(w1)}${c.padStart(w2)}`.trimEnd();
    if (row === 0) return style.bold(line);
    if (a === "lost") {
      return `  ${a.padEnd(w0)}${lostCell(tcp, b.padStart(w1))}${lostCell(udp, c.padStart(w2))}`;
    }
    return SECONDARY_ROWS.has(a) ? style.dim(line) : line;
  });
}

/** Rows of the compare table shown dimmed: the figures behind the headline ones. */
const SECONDARY_ROWS = new Set([
  "rtt min ms",
  "rtt p90 ms",
  "rtt p99.9 ms",
  "send rate",
  "elapsed",
  "engine",
]);

/** The lab path's JSON: what was applied, and the loss a round trip should see. */
function labJson(i: LabImpairment): Record<string, Json> {
  return {
    impairment: {
      description: describeImpairment(i),
      loss_percent_each_way: i.lossPercent ?? null,
      delay_ms: i.delayMs ?? null,
      jitter_ms: i.jitterMs ?? null,
      reorder_percent: i.reorderPercent ?? null,
      duplicate_percent: i.duplicatePercent ?? null,
      rate_bps: i.rateBps ?? null,
    },
    expected_udp_loss_percent: i.lossPercent === undefined
      ? null
      : finite(100 * expectedRoundTripLoss(i.lossPercent)),
  };
}

/** Under the table on a lab path: expected UDP loss beside measured, and the kernel's counters. */
function labLines(
  udp: ProbeReport | undefined,
  lab: Lab | undefined,
  kernel: KernelCounters | undefined,
  width: number,
): string[] {
  if (!lab || !kernel) return [];
  const loss = lab.impairment.lossPercent;
  return [
    ...(loss === undefined || udp === undefined ? [] : wrap(
      `UDP loss: measured ${formatPercent(udp.lostFraction)}, expected ${
        formatPercent(expectedRoundTripLoss(loss))
      } (${loss}% each way: 1 − (1 − ${loss / 100})²)`,
      width,
      "  ",
    )),
    ...wrap(
      `kernel: TCP retransmitted ${formatCount(kernel.tcpRetransSegs)} segments; ` +
        `UDP receive-buffer errors ${formatCount(kernel.udpRcvbufErrors)}; ` +
        `the loss rule dropped ${formatCount(kernel.dropsUdp + kernel.dropsTcp)} packets ` +
        `(${formatCount(kernel.dropsUdp)} UDP, ${formatCount(kernel.dropsTcp)} TCP)`,
      width,
      "  ",
    ),
  ];
}
