/**
 * netkit against its anchors on loopback: iperf3 (TCP and UDP throughput,
 * server memory) and sockperf (ping-pong RTT). Each measurement runs netkit
 * and its anchor alternately (A B A B …), each run with its own fresh server,
 * and reports medians, the ratio netkit/anchor and whether netkit meets its
 * target, then the same table as Markdown for the README.
 *
 * ```sh
 * deno task bench                          # 5 pairs of 10 s runs per measurement
 * deno task bench --pairs 2 --duration 3s  # quicker
 * deno task bench --json                   # one JSON summary on stdout
 * ```
 *
 * Linux only (peak RSS comes from /proc/PID/status). Installs nothing: an
 * anchor that is not on PATH is named, and netkit's side of it still runs.
 *
 * @module
 */

import { NETKIT_RUN, ROOT_DIR, V8_FLAGS } from "../tests/support/cli.ts";

// ---------------------------------------------------------------------------
// Flags

interface Options {
  pairs: number;
  durationS: number;
  json: boolean;
  /** Only these measurements (keys), e.g. the engine rows; default all. */
  only: string[] | undefined;
}

const USAGE = `Usage: deno task bench [--pairs N] [--duration DUR] [--only KEYS] [--json]

Runs netkit and its anchors (iperf3, sockperf) alternately on loopback and prints
medians, ratios netkit/anchor and targets, then a Markdown table.

  --pairs N        netkit/anchor pairs per measurement (default 5)
  --duration DUR   length of each run, whole seconds: 10, 10s, 1m (default 10s)
  --only KEYS      only these measurements, comma-separated: tcp, tcp_1m, tcp_p4,
                   udp, udp_nk_native, udp_nk_deno, udp_nk_gso, udp_native, udp_deno, pp_tcp,
                   pp_udp, pp_udp_native, pp_udp_deno, pp_udp_native_same, pp_tcp_across,
                   pp_tcp_same, cpu_probe, cpu_udp10, server_memory
                   (e.g. --only udp_nk_native)
  --json           print one JSON summary on stdout instead of the report
  -h, --help       show this help`;

function parseDurationS(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(text.trim());
  if (!m) throw new Error(`bad --duration '${text}': use e.g. 10s, 3, 1m`);
  const n = Number(m[1]);
  const s = m[2] === "ms" ? n / 1000 : m[2] === "m" ? n * 60 : n;
  if (!Number.isInteger(s) || s < 1) {
    // iperf3 -t and sockperf -t take whole seconds.
    throw new Error(`bad --duration '${text}': whole seconds, at least 1 (iperf3 and sockperf)`);
  }
  return s;
}

function parseOptions(args: string[]): Options {
  const options: Options = { pairs: 5, durationS: 10, json: false, only: undefined };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const [name, inline] = arg.includes("=") ? arg.split("=", 2) as [string, string] : [arg];
    const value = () => {
      const v = inline ?? args[++i];
      if (v === undefined) throw new Error(`${name} needs a value`);
      return v;
    };
    switch (name) {
      case "--pairs": {
        const v = value();
        const n = Number(v);
        if (!/^\d+$/.test(v) || n < 1) throw new Error(`bad --pairs '${v}': a whole number ≥ 1`);
        options.pairs = n;
        break;
      }
      case "--duration":
      case "-t":
        options.durationS = parseDurationS(value());
        break;
      case "--json":
        options.json = true;
        break;
      case "--only":
        options.only = value().split(",").map((k) => k.trim()).filter((k) => k);
        break;
      case "-h":
      case "--help":
        console.log(USAGE);
        Deno.exit(0);
        break;
      default:
        throw new Error(`unknown argument '${arg}'\n\n${USAGE}`);
    }
  }
  return options;
}

// ---------------------------------------------------------------------------
// Processes: every one is registered, killed and awaited, and bounded in time.

const live = new Set<Deno.ChildProcess>();

function kill(child: Deno.ChildProcess, signal: Deno.Signal): void {
  try {
    child.kill(signal);
  } catch { /* already exited */ }
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves with the exit status. */
async function terminate(child: Deno.ChildProcess, graceMs = 5000): Promise<Deno.CommandStatus> {
  kill(child, "SIGTERM");
  const killer = setTimeout(() => kill(child, "SIGKILL"), graceMs);
  try {
    return await child.status;
  } finally {
    clearTimeout(killer);
    live.delete(child);
  }
}

interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  ms: number;
}

/** Run a command to completion, killed after `timeoutMs`. */
async function run(
  cmd: string,
  args: string[],
  timeoutMs: number,
  cwd?: string,
): Promise<RunResult> {
  const started = performance.now();
  const child = new Deno.Command(cmd, {
    args,
    cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  live.add(child);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    kill(child, "SIGKILL");
  }, timeoutMs);
  try {
    const out = await child.output();
    return {
      code: out.code,
      stdout: new TextDecoder().decode(out.stdout),
      stderr: new TextDecoder().decode(out.stderr),
      timedOut,
      ms: performance.now() - started,
    };
  } finally {
    clearTimeout(timer);
    kill(child, "SIGKILL"); // no-op once exited
    await child.status;
    live.delete(child);
  }
}

/** Read a stream line by line into `sink`, calling `onLine` on each. */
async function pumpLines(
  stream: ReadableStream<Uint8Array>,
  sink: string[],
  onLine: () => void,
): Promise<void> {
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  let pending = "";
  try {
    while (true) {
      const { value, done } = await reader.read();
      if (done) break;
      pending += value;
      let nl;
      while ((nl = pending.indexOf("\n")) >= 0) {
        sink.push(pending.slice(0, nl));
        pending = pending.slice(nl + 1);
        onLine();
      }
    }
    if (pending) {
      sink.push(pending);
      onLine();
    }
  } catch { /* the process went away */ }
}

/** A server we started; `stop` reads its peak RSS, then stops it and awaits it. */
interface Server {
  name: string;
  child: Deno.ChildProcess;
  /** stdout and stderr lines, interleaved as they came. */
  lines: string[];
  stop(): Promise<{ code: number; memory: Memory }>;
}

/**
 * Start a server and resolve once `ready(lines)` holds, polled on every output
 * line and every 20 ms (for readiness checks that look elsewhere, e.g. at
 * /proc/net/tcp). Never a fixed sleep; gives up after `timeoutMs`.
 */
async function startServer(
  name: string,
  cmd: string,
  args: string[],
  ready: (lines: string[]) => boolean | Promise<boolean>,
  timeoutMs = 15000,
  cwd?: string,
): Promise<Server> {
  const child = new Deno.Command(cmd, {
    args,
    cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  live.add(child);
  const lines: string[] = [];
  let wake = () => {};
  const pumps = Promise.all([
    pumpLines(child.stdout, lines, () => wake()),
    pumpLines(child.stderr, lines, () => wake()),
  ]);
  let exited = false;
  child.status.then(() => {
    exited = true;
    wake();
  });
  let stopped: Promise<{ code: number; memory: Memory }> | undefined;
  const stop = () =>
    stopped ??= (async () => {
      const memory = exited ? NO_MEMORY : await memoryOf(child.pid);
      const { code } = await terminate(child);
      await pumps;
      return { code, memory };
    })();
  const server: Server = { name, child, lines, stop };
  const deadlineAt = performance.now() + timeoutMs;
  try {
    while (!(await ready(lines))) {
      if (exited) {
        throw new Error(`${name} exited before it was ready: ${lines.slice(-5).join(" | ")}`);
      }
      if (performance.now() > deadlineAt) {
        throw new Error(
          `${name} not ready after ${timeoutMs} ms: ${lines.slice(-5).join(" | ")}`,
        );
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 20);
        wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
  } catch (e) {
    await stop();
    throw e;
  }
  return server;
}

/** What a process holds (KiB, from /proc/PID/status); a field is null when unreadable. */
interface Memory {
  /** VmHWM: the peak resident set. */
  vmHwmKiB: number | null;
  /** RssAnon now: private memory (heaps, stacks, buffers). */
  anonKiB: number | null;
  /** RssFile now: file pages mapped, the executable's code and libraries (shared, reclaimable). */
  fileKiB: number | null;
}

/** The memory of a live process (all null if it cannot be read). */
async function memoryOf(pid: number): Promise<Memory> {
  let status = "";
  try {
    status = await Deno.readTextFile(`/proc/${pid}/status`);
  } catch {
    // all null
  }
  const field = (name: string) => {
    const m = new RegExp(`^${name}:\\s+(\\d+)\\s+kB`, "m").exec(status);
    return m ? Number(m[1]) : null;
  };
  return { vmHwmKiB: field("VmHWM"), anonKiB: field("RssAnon"), fileKiB: field("RssFile") };
}

const NO_MEMORY: Memory = { vmHwmKiB: null, anonKiB: null, fileKiB: null };

/** A run's memory values (KiB) for its sample: those that were read. */
function memoryValues(m: Memory): Record<string, number> {
  return {
    ...(m.vmHwmKiB === null ? {} : { rssKiB: m.vmHwmKiB }),
    ...(m.anonKiB === null ? {} : { anonKiB: m.anonKiB }),
    ...(m.fileKiB === null ? {} : { fileKiB: m.fileKiB }),
  };
}

/** Whether a TCP socket is listening on 127.0.0.1:port (or any address), per /proc/net/tcp. */
async function tcpListening(port: number): Promise<boolean> {
  const hex = port.toString(16).toUpperCase().padStart(4, "0");
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text = "";
    try {
      text = await Deno.readTextFile(file);
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      // f[1] = local "ADDR:PORT", f[3] = state, 0A = LISTEN
      if (f[3] === "0A" && f[1]?.endsWith(`:${hex}`)) return true;
    }
  }
  return false;
}

/** A port free for both TCP and UDP on 127.0.0.1: bind port 0, read it, close. */
function freePort(): number {
  for (let attempt = 0; attempt < 50; attempt++) {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (listener.addr as Deno.NetAddr).port;
    listener.close();
    try {
      const udp = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port });
      udp.close();
      return port;
    } catch { /* UDP port taken: try another */ }
  }
  throw new Error("no port free for both TCP and UDP on 127.0.0.1");
}

function hasCommand(name: string): boolean {
  try {
    return new Deno.Command("sh", {
      args: ["-c", `command -v ${name}`],
      stdout: "null",
      stderr: "null",
    }).outputSync().success;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------
// The runs

const HOST = "127.0.0.1";
const DENO = Deno.execPath();
/** The netkit command line as shown in the report (permissions as the binary's). */
const NETKIT_SHOWN = `deno ${NETKIT_RUN.join(" ")}`;

/** A problem seen in one run, stated precisely. */
const problems: string[] = [];

function problem(text: string): void {
  problems.push(text);
  console.error(`  problem: ${text}`);
}

/** Pull a finite number out of a parsed JSON document by path. */
function num(doc: unknown, path: string): number | undefined {
  let cur: unknown = doc;
  for (const key of path.split(".")) {
    if (cur === null || typeof cur !== "object") return undefined;
    cur = (cur as Record<string, unknown>)[key];
  }
  return typeof cur === "number" && Number.isFinite(cur) ? cur : undefined;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function tail(text: string, n = 300): string {
  const t = text.trim().replace(/\s+/g, " ");
  return t.length > n ? `…${t.slice(-n)}` : t;
}

/** Extract named figures; every missing one is a problem, and the run is discarded. */
function extract<K extends string>(
  who: string,
  doc: unknown,
  paths: Record<K, string>,
): Record<K, number> | undefined {
  const out = {} as Record<K, number>;
  let ok = true;
  for (const key of Object.keys(paths) as K[]) {
    const path = paths[key];
    const v = num(doc, path);
    if (v === undefined) {
      problem(`${who}: JSON field ${path} missing or not a finite number`);
      ok = false;
    } else out[key] = v;
  }
  return ok ? out : undefined;
}

function runFailed(who: string, r: RunResult): boolean {
  if (r.timedOut) {
    problem(`${who}: killed after ${(r.ms / 1000).toFixed(1)} s without finishing`);
    return true;
  }
  if (r.code !== 0) {
    problem(`${who}: exit ${r.code}: ${tail(r.stderr || r.stdout)}`);
    return true;
  }
  return false;
}

/** Where a run's two processes are pinned (taskset -c), or undefined: wherever the OS puts them. */
interface Placement {
  server: number;
  client: number;
}

/** Both ends of the pinned rows: server (receiver) on CPU 0, client (sender) on CPU 1. */
const ACROSS: Placement = { server: 0, client: 1 };
/** Ping-pong rows also run with both ends on one CPU (sockperf's 9.7 µs placement here). */
const SAME: Placement = { server: 0, client: 0 };

function placementText(p: Placement | undefined): string {
  return p === undefined
    ? "unpinned"
    : p.server === p.client
    ? `both on CPU ${p.server}`
    : `server on CPU ${p.server}, client on CPU ${p.client}`;
}

async function startNetkitServer(
  cpu?: number,
  extra: string[] = [],
): Promise<{ server: Server; port: number }> {
  const server = await startServer(
    "netkit server",
    ...pinned(cpu, DENO, [
      ...NETKIT_RUN,
      "server",
      "--proto",
      "both",
      "--host",
      HOST,
      "--port",
      "0",
      ...extra,
    ]),
    (lines) => lines.filter((l) => l.startsWith("listening on ")).length >= 2,
    30000,
    ROOT_DIR,
  );
  const line = server.lines.find((l) => l.startsWith("listening on tcp "));
  const port = Number(/:(\d+)$/.exec(line ?? "")?.[1]);
  if (!Number.isInteger(port)) {
    await server.stop();
    throw new Error(`netkit server printed no tcp port: ${server.lines.join(" | ")}`);
  }
  return { server, port };
}

/** Stop a netkit server, and flag a non-zero exit or a missing summary. */
async function stopNetkitServer(
  server: Server,
  who: string,
): Promise<{ memory: Memory; summary: string | undefined }> {
  const { code, memory } = await server.stop();
  const summary = server.lines.find((l) => l.startsWith("summary:"));
  if (code !== 0) {
    problem(
      `${who}: netkit server exited ${code} on SIGTERM (expected 0): ${
        tail(server.lines.join(" | "))
      }`,
    );
  } else if (!summary) {
    problem(`${who}: netkit server printed no 'summary:' line on SIGTERM`);
  }
  return { memory, summary };
}

const runTimeoutMs = (durationS: number) => (durationS + 30) * 1000;

function netkitClient(args: string[], durationS: number, cpu?: number): Promise<RunResult> {
  return run(
    ...pinned(cpu, DENO, [...NETKIT_RUN, "client", ...args]),
    runTimeoutMs(durationS),
    ROOT_DIR,
  );
}

interface Sample {
  values: Record<string, number>;
  /** netkit server's 'summary:' line, where there is one. */
  summary?: string;
}

// --- 1 and 4: TCP throughput, and the server's peak RSS while serving it

function netkitTcpArgs(port: number | string, d: number, extra: string[] = []): string[] {
  return [
    "--throughput",
    "--proto",
    "tcp",
    HOST,
    String(port),
    "--duration",
    `${d}s`,
    ...extra,
    "--json",
  ];
}

async function netkitTcp(
  d: number,
  who: string,
  extra: string[] = [],
): Promise<Sample | undefined> {
  const { server, port } = await startNetkitServer();
  let r: RunResult;
  let stopped: Awaited<ReturnType<typeof stopNetkitServer>>;
  try {
    r = await netkitClient(netkitTcpArgs(port, d, extra), d);
  } finally {
    stopped = await stopNetkitServer(server, who);
  }
  if (runFailed(who, r)) return undefined;
  const doc = parseJson(r.stdout);
  if (doc === undefined) return void problem(`${who}: stdout is not JSON: ${tail(r.stdout)}`);
  const v = extract(who, doc, {
    bps: "up.sum_received.bits_per_second",
    sentBps: "up.sum_sent.bits_per_second",
    bytes: "up.sum_received.bytes",
  });
  if (!v) return undefined;
  if (stopped.memory.vmHwmKiB === null) problem(`${who}: could not read the server's VmHWM`);
  if (v.bps > v.sentBps * 1.01) {
    problem(`${who}: receiver ${v.bps} bit/s exceeds sender ${v.sentBps} bit/s`);
  }
  if (v.bytes > 0 && stopped.summary && /\b0 B in\b/.test(stopped.summary)) {
    problem(
      `${who}: the server received ${v.bytes} bytes of test data, but its SIGTERM summary says '${stopped.summary}'`,
    );
  }
  return {
    values: { ...v, ...memoryValues(stopped.memory) },
    summary: stopped.summary,
  };
}

function iperfServerArgs(port: number | string): string[] {
  return ["-s", "-B", HOST, "-p", String(port)];
}

/** `taskset -c CPU` before a command, where a run is pinned. */
function pinned(cpu: number | undefined, cmd: string, args: string[]): [string, string[]] {
  return cpu === undefined ? [cmd, args] : ["taskset", ["-c", String(cpu), cmd, ...args]];
}

async function startIperfServer(cpu?: number): Promise<{ server: Server; port: number }> {
  const port = freePort();
  // Fresh per run, without -1 (one-off), so nothing but our test touches it;
  // ready once its TCP control port is listening (seen in /proc/net/tcp, so no
  // probe connection disturbs it).
  const server = await startServer(
    "iperf3 server",
    ...pinned(cpu, "iperf3", iperfServerArgs(port)),
    () => tcpListening(port),
  );
  return { server, port };
}

function iperfTcpArgs(port: number | string, d: number, extra: string[] = []): string[] {
  return ["-c", HOST, "-p", String(port), "-t", String(d), ...extra, "-J"];
}

async function iperfTcp(
  d: number,
  who: string,
  extra: string[] = [],
): Promise<Sample | undefined> {
  const { server, port } = await startIperfServer();
  let r: RunResult;
  let stopped: Awaited<ReturnType<Server["stop"]>>;
  try {
    r = await run("iperf3", iperfTcpArgs(port, d, extra), runTimeoutMs(d));
  } finally {
    stopped = await server.stop();
  }
  const doc = parseJson(r.stdout);
  const err = (doc as { error?: string } | undefined)?.error;
  if (err) return void problem(`${who}: iperf3 error: ${err}`);
  if (runFailed(who, r)) return undefined;
  if (doc === undefined) return void problem(`${who}: stdout is not JSON: ${tail(r.stdout)}`);
  const v = extract(who, doc, { bps: "end.sum_received.bits_per_second" });
  if (!v) return undefined;
  if (stopped.memory.vmHwmKiB === null) problem(`${who}: could not read the server's VmHWM`);
  return {
    values: { ...v, ...memoryValues(stopped.memory) },
  };
}

// --- 2: UDP throughput, 1400-byte datagrams, unlimited rate

function netkitUdpArgs(
  port: number | string,
  d: number,
  engine?: string,
  extra: string[] = [],
): string[] {
  return [
    ...(engine ? ["--engine", engine] : []),
    ...extra,
    "--throughput",
    "--proto",
    "udp",
    HOST,
    String(port),
    "--duration",
    `${d}s`,
    "--size",
    "1400",
    "--bitrate",
    "0",
    "--json",
  ];
}

async function netkitUdp(
  d: number,
  who: string,
  engine?: "native" | "deno",
  cpus?: Placement,
  extra: string[] = [],
): Promise<Sample | undefined> {
  // Both ends on the engine named: the client's flows and the server's test port.
  const engineArgs = engine ? ["--engine", engine] : [];
  const { server, port } = await startNetkitServer(cpus?.server, engineArgs);
  let r: RunResult;
  let stopped: Awaited<ReturnType<typeof stopNetkitServer>>;
  try {
    r = await netkitClient(netkitUdpArgs(port, d, engine, extra), d, cpus?.client);
  } finally {
    stopped = await stopNetkitServer(server, who);
  }
  if (runFailed(who, r)) return undefined;
  const doc = parseJson(r.stdout);
  if (doc === undefined) return void problem(`${who}: stdout is not JSON: ${tail(r.stdout)}`);
  const v = extract(who, doc, {
    received: "up.sum_received.datagrams",
    sent: "up.sum_sent.datagrams",
    seconds: "up.sum_sent.seconds",
    lossPct: "up.sum_received.lost_percent",
    lost: "up.sum_received.lost",
  });
  if (!v) return undefined;
  const ran = (doc as { engine?: string }).engine;
  if (engine && ran !== engine) problem(`${who}: asked for --engine ${engine}, ran ${ran}`);
  if (v.seconds <= 0) return void problem(`${who}: up.sum_sent.seconds is ${v.seconds}`);
  const dps = v.received / v.seconds;
  // Cross-checks of netkit's own figures.
  if (v.received + v.lost !== v.sent) {
    problem(
      `${who}: received ${v.received} + lost ${v.lost} = ${
        v.received + v.lost
      }, but sent is ${v.sent}`,
    );
  }
  const expectPct = v.sent > 0 ? (100 * v.lost) / v.sent : 0;
  if (Math.abs(expectPct - v.lossPct) > 0.01) {
    problem(`${who}: lost_percent ${v.lossPct} but lost/sent = ${expectPct.toFixed(4)}%`);
  }
  if (v.received > 0 && stopped.summary && !/datagrams in/.test(stopped.summary)) {
    problem(
      `${who}: the server received ${v.received} test datagrams, but its SIGTERM summary counts none: '${stopped.summary}'`,
    );
  }
  return { values: { ...v, dps }, summary: stopped.summary };
}

function iperfUdpArgs(port: number | string, d: number): string[] {
  return ["-c", HOST, "-p", String(port), "-t", String(d), "-u", "-b", "0", "-l", "1400", "-J"];
}

async function iperfUdp(
  d: number,
  who: string,
  cpus?: { receiver: number; sender: number },
): Promise<Sample | undefined> {
  const { server, port } = await startIperfServer(cpus?.receiver);
  let r: RunResult;
  try {
    r = await run(...pinned(cpus?.sender, "iperf3", iperfUdpArgs(port, d)), runTimeoutMs(d));
  } finally {
    await server.stop();
  }
  const doc = parseJson(r.stdout);
  const err = (doc as { error?: string } | undefined)?.error;
  if (err) return void problem(`${who}: iperf3 error: ${err}`);
  if (runFailed(who, r)) return undefined;
  if (doc === undefined) return void problem(`${who}: stdout is not JSON: ${tail(r.stdout)}`);
  const v = extract(who, doc, {
    packets: "end.sum.packets",
    lost: "end.sum.lost_packets",
    seconds: "end.sum.seconds",
    lossPct: "end.sum.lost_percent",
  });
  if (!v) return undefined;
  if (v.seconds <= 0) return void problem(`${who}: end.sum.seconds is ${v.seconds}`);
  return { values: { ...v, dps: (v.packets - v.lost) / v.seconds } };
}

// --- 2b: UDP on each engine of lib/engine/ (bench/engine_udp.ts), pinned

/** Where the engine rows and their iperf3 anchor run: receiver on CPU 0, sender on CPU 1. */
const ENGINE_CPUS = { receiver: 0, sender: 1 };
const ENGINE_RCVBUF = 4 << 20;

function engineUdpArgs(
  role: "send" | "receive",
  engine: string,
  local: number | string,
  remote: number | string,
  d: number,
): string[] {
  return [
    "run",
    "-q",
    "--no-prompt",
    "-A",
    "bench/engine_udp.ts",
    role,
    engine,
    HOST,
    String(local),
    String(remote),
    ...(role === "send" ? [String(d), "1400"] : [String(ENGINE_RCVBUF)]),
  ];
}

async function engineUdp(
  engine: "native" | "deno",
  d: number,
  who: string,
): Promise<Sample | undefined> {
  const [rport, sport] = [freePort(), freePort()];
  const receiver = await startServer(
    `${engine} receiver`,
    ...pinned(ENGINE_CPUS.receiver, DENO, engineUdpArgs("receive", engine, rport, sport, d)),
    (lines) => lines.includes("ready"),
    30000,
    ROOT_DIR,
  );
  let r: RunResult;
  try {
    r = await run(
      ...pinned(ENGINE_CPUS.sender, DENO, engineUdpArgs("send", engine, sport, rport, d)),
      runTimeoutMs(d),
      ROOT_DIR,
    );
  } finally {
    // The receiver exits by itself 300 ms after the last datagram.
    await Promise.race([receiver.child.status, new Promise((ok) => setTimeout(ok, 5000))]);
    await receiver.stop();
  }
  if (runFailed(who, r)) return undefined;
  const sent = extract(who, parseJson(r.stdout), { sent: "sent", seconds: "seconds" });
  const got = extract(who, parseJson(receiver.lines.find((l) => l.startsWith("{")) ?? ""), {
    received: "received",
  });
  if (!sent || !got) return undefined;
  const lossPct = sent.sent > 0 ? (100 * (sent.sent - got.received)) / sent.sent : 0;
  return { values: { ...sent, ...got, lossPct, dps: got.received / sent.seconds } };
}

// --- 5: CPU that pacing costs: a probe at 1,000/s, and UDP at 10 Mbit/s against iperf3's

/**
 * Run a command under bash and add its CPU seconds (user + system of the
 * command and its children, from bash's `times`) to the result, with the
 * `times` lines taken off stdout.
 */
async function runWithCpu(
  cmd: string,
  args: string[],
  timeoutMs: number,
  cwd?: string,
): Promise<RunResult & { cpuS: number | undefined }> {
  const r = await run(
    "bash",
    ["-c", '"$@"; code=$?; echo; times; exit $code', "bash", cmd, ...args],
    timeoutMs,
    cwd,
  );
  const lines = r.stdout.trimEnd().split("\n");
  const children = lines[lines.length - 1] ?? "";
  const m = /^(\d+)m([\d.]+)s (\d+)m([\d.]+)s$/.exec(children.trim());
  const cpuS = m ? Number(m[1]) * 60 + Number(m[2]) + Number(m[3]) * 60 + Number(m[4]) : undefined;
  return { ...r, stdout: lines.slice(0, -3).join("\n"), cpuS };
}

function netkitProbeCpuArgs(port: number | string, d: number): string[] {
  return [
    "--probe",
    "--proto",
    "udp",
    HOST,
    String(port),
    "--rate",
    "1000",
    "--duration",
    `${d}s`,
    "--json",
    "--interval-report",
    "0",
  ];
}

function netkitUdp10CpuArgs(port: number | string, d: number): string[] {
  return netkitUdpArgs(port, d).map((a, i, all) => all[i - 1] === "--bitrate" ? "10M" : a);
}

function iperfUdp10CpuArgs(port: number | string, d: number): string[] {
  return iperfUdpArgs(port, d).map((a, i, all) => all[i - 1] === "-b" ? "10M" : a);
}

/** A netkit client's CPU as % of one core over its run (Deno's start-up included). */
async function netkitCpu(
  args: (port: number, d: number) => string[],
  d: number,
  who: string,
): Promise<Sample | undefined> {
  const { server, port } = await startNetkitServer();
  let r: Awaited<ReturnType<typeof runWithCpu>>;
  try {
    r = await runWithCpu(
      DENO,
      [...NETKIT_RUN, "client", ...args(port, d)],
      runTimeoutMs(d),
      ROOT_DIR,
    );
  } finally {
    await stopNetkitServer(server, who);
  }
  if (runFailed(who, r)) return undefined;
  if (r.cpuS === undefined) return void problem(`${who}: no CPU time from bash's times`);
  if (parseJson(r.stdout) === undefined) {
    return void problem(`${who}: stdout is not JSON: ${tail(r.stdout)}`);
  }
  return { values: { cpuPct: (100 * r.cpuS) / (r.ms / 1000), cpuS: r.cpuS } };
}

async function iperfUdp10Cpu(d: number, who: string): Promise<Sample | undefined> {
  const { server, port } = await startIperfServer();
  let r: Awaited<ReturnType<typeof runWithCpu>>;
  try {
    r = await runWithCpu("iperf3", iperfUdp10CpuArgs(port, d), runTimeoutMs(d));
  } finally {
    await server.stop();
  }
  if (runFailed(who, r)) return undefined;
  if (r.cpuS === undefined) return void problem(`${who}: no CPU time from bash's times`);
  return { values: { cpuPct: (100 * r.cpuS) / (r.ms / 1000), cpuS: r.cpuS } };
}

// --- 3: ping-pong RTT, 64 bytes

function netkitPingArgs(
  proto: "tcp" | "udp",
  port: number | string,
  d: number,
  engine?: string,
): string[] {
  return [
    ...(engine ? ["--engine", engine] : []),
    "--probe",
    "--ping-pong",
    "--proto",
    proto,
    HOST,
    String(port),
    "--duration",
    `${d}s`,
    "--size",
    "64",
    "--json",
    "--interval-report",
    "0",
  ];
}

async function netkitPing(
  proto: "tcp" | "udp",
  d: number,
  who: string,
  engine?: "native" | "deno",
  cpus?: Placement,
): Promise<Sample | undefined> {
  const { server, port } = await startNetkitServer(cpus?.server);
  let r: RunResult;
  let stopped: Awaited<ReturnType<typeof stopNetkitServer>>;
  try {
    r = await netkitClient(netkitPingArgs(proto, port, d, engine), d, cpus?.client);
  } finally {
    stopped = await stopNetkitServer(server, who);
  }
  if (runFailed(who, r)) return undefined;
  const doc = parseJson(r.stdout);
  if (doc === undefined) return void problem(`${who}: stdout is not JSON: ${tail(r.stdout)}`);
  const v = extract(who, doc, {
    p50ms: "rtt_ms.p50",
    p99ms: "rtt_ms.p99",
    minms: "rtt_ms.min",
    maxms: "rtt_ms.max",
    sent: "sent",
    received: "received",
  });
  if (!v) return undefined;
  if (!(v.minms <= v.p50ms && v.p50ms <= v.p99ms && v.p99ms <= v.maxms)) {
    problem(
      `${who}: rtt_ms not ordered: min ${v.minms} p50 ${v.p50ms} p99 ${v.p99ms} max ${v.maxms}`,
    );
  }
  if (v.received !== v.sent) problem(`${who}: ${v.sent - v.received} of ${v.sent} probes lost`);
  return {
    values: { p50us: v.p50ms * 1000, p99us: v.p99ms * 1000, samples: v.received },
    summary: stopped.summary,
  };
}

function sockperfServerArgs(proto: "tcp" | "udp", port: number | string): string[] {
  return ["server", ...(proto === "tcp" ? ["--tcp"] : []), "-i", HOST, "-p", String(port)];
}

function sockperfClientArgs(proto: "tcp" | "udp", port: number | string, d: number): string[] {
  return [
    "ping-pong",
    ...(proto === "tcp" ? ["--tcp"] : []),
    "-i",
    HOST,
    "-p",
    String(port),
    "-m",
    "64",
    "-t",
    String(d),
    "--full-rtt",
  ];
}

/** Whether this sockperf knows --full-rtt (checked once). */
let sockperfFullRtt = true;

async function sockperfPing(
  proto: "tcp" | "udp",
  d: number,
  who: string,
  cpus?: Placement,
): Promise<Sample | undefined> {
  const port = freePort();
  // sockperf binds (and listens) before it prints "[tid N] using recvfrom() to
  // block on socket(s)", right before its loop: that line is its readiness.
  const server = await startServer(
    "sockperf server",
    ...pinned(cpus?.server, "sockperf", sockperfServerArgs(proto, port)),
    (lines) => lines.some((l) => /using \S+\(\) to block on socket/.test(l)),
  );
  let r: RunResult;
  const args = sockperfClientArgs(proto, port, d).filter((a) =>
    sockperfFullRtt || a !== "--full-rtt"
  );
  try {
    r = await run(...pinned(cpus?.client, "sockperf", args), runTimeoutMs(d));
  } finally {
    await server.stop();
  }
  if (runFailed(who, r)) return undefined;
  const out = r.stdout + "\n" + r.stderr;
  // With --full-rtt sockperf says "avg-rtt" / "Round trip is"; without, it
  // reports half the round trip ("avg-latency" / "Latency is"): double it.
  const full = /avg-rtt|Round trip is/.test(out);
  const half = /avg-latency|Latency is/.test(out);
  if (!full && !half) {
    return void problem(`${who}: cannot tell whether figures are RTT or latency: ${tail(out)}`);
  }
  const factor = full ? 1 : 2;
  const pct = (p: string) => {
    const m = new RegExp(`---> percentile ${p.replace(".", "\\.")} =\\s*([\\d.]+)`).exec(out);
    return m ? Number(m[1]) * factor : undefined;
  };
  const p50us = pct("50.000");
  const p99us = pct("99.000");
  const samples = Number(/Total (\d+) observations/.exec(out)?.[1] ?? NaN);
  if (p50us === undefined || p99us === undefined) {
    return void problem(`${who}: no percentile 50.000/99.000 lines in output: ${tail(out)}`);
  }
  return { values: { p50us, p99us, samples, doubled: factor === 2 ? 1 : 0 } };
}

// ---------------------------------------------------------------------------
// Statistics and the report

function median(xs: number[]): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

interface Row {
  metric: string;
  unit: string;
  netkit: number | null;
  anchor: number | null;
  netkitRuns: number[];
  anchorRuns: number[];
  anchorName: string;
  ratio: number | null;
  target: string;
  met: boolean | null;
  /** Decimal places for the figures. */
  digits: number;
}

function fmt(x: number | null, digits: number): string {
  if (x === null) return "n/a";
  return x.toLocaleString("en-US", {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
}

function metText(row: Row): string {
  if (row.target === "report only") return "—";
  if (row.met === null) return "n/a";
  return row.met ? "yes" : "no";
}

function ratioText(r: number | null): string {
  // Three decimals below 10x, so a ratio just under a target never prints as the target.
  return r === null ? "n/a" : `${r.toFixed(r < 10 ? 3 : 1)}x`;
}

function tableRows(rows: Row[]): string[][] {
  return rows.map((row) => [
    `${row.metric} (${row.unit})`,
    fmt(row.netkit, row.digits),
    row.anchor === null && row.anchorRuns.length === 0
      ? `n/a (${row.anchorName})`
      : `${fmt(row.anchor, row.digits)} (${row.anchorName})`,
    ratioText(row.ratio),
    row.target,
    metText(row),
  ]);
}

const HEADER = ["metric", "netkit median", "anchor median", "ratio", "target", "met?"];

function plainTable(rows: string[][]): string {
  const all = [HEADER, ...rows];
  const widths = HEADER.map((_, i) => Math.max(...all.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => c.padEnd(widths[i]!)).join(" | ").trimEnd();
  return [line(HEADER), widths.map((w) => "-".repeat(w)).join("-|-"), ...rows.map(line)].join(
    "\n",
  );
}

function markdownTable(rows: string[][]): string {
  const esc = (c: string) => c.replaceAll("|", "\\|");
  return [
    `| ${HEADER.join(" | ")} |`,
    `| ${HEADER.map(() => "---").join(" | ")} |`,
    ...rows.map((r) => `| ${r.map(esc).join(" | ")} |`),
  ].join("\n");
}

async function firstLine(cmd: string, args: string[]): Promise<string> {
  try {
    const r = await run(cmd, args, 10000);
    return (r.stdout + r.stderr).split("\n").map((l) => l.trim()).find((l) => l) ?? "?";
  } catch {
    return "?";
  }
}

async function machine(): Promise<Record<string, string>> {
  const read = async (f: string) => {
    try {
      return await Deno.readTextFile(f);
    } catch {
      return "";
    }
  };
  const cpuinfo = await read("/proc/cpuinfo");
  const meminfo = await read("/proc/meminfo");
  const memKiB = Number(/^MemTotal:\s+(\d+)/m.exec(meminfo)?.[1] ?? NaN);
  return {
    load: (await read("/proc/loadavg")).split(" ").slice(0, 3).join(" "),
    cores: (await firstLine("nproc", [])) || String(navigator.hardwareConcurrency),
    cpu: /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? "unknown",
    memory: Number.isFinite(memKiB) ? `${(memKiB / 1024 / 1024).toFixed(1)} GiB` : "unknown",
    kernel: `${Deno.build.os} ${Deno.osRelease()} ${Deno.build.arch}`,
  };
}

// ---------------------------------------------------------------------------
// Main

async function main(): Promise<number> {
  let options: Options;
  try {
    options = parseOptions(Deno.args);
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    return 2;
  }
  if (Deno.build.os !== "linux") {
    console.error("error: the bench reads /proc (peak RSS, listening sockets): Linux only");
    return 2;
  }
  const { pairs, durationS: d } = options;
  const log = (s: string) => console.error(s);

  const haveIperf = hasCommand("iperf3");
  const haveSockperf = hasCommand("sockperf");
  const missing = [...(haveIperf ? [] : ["iperf3"]), ...(haveSockperf ? [] : ["sockperf"])];
  for (const m of missing) {
    log(
      `anchor missing: ${m} is not on PATH; its comparisons run netkit only (install: apt-get install ${m})`,
    );
  }

  const versions: Record<string, string> = {
    deno: Deno.version.deno,
    netkit: await firstLine(DENO, [...NETKIT_RUN, "--version"]),
    iperf3: haveIperf ? await firstLine("iperf3", ["--version"]) : "missing",
    sockperf: haveSockperf ? await firstLine("sockperf", ["--version"]) : "missing",
  };
  if (haveSockperf) {
    const help = await run("sockperf", ["ping-pong", "--help"], 10000);
    sockperfFullRtt = (help.stdout + help.stderr).includes("--full-rtt");
  }
  const host = await machine();
  const date = new Date().toISOString();

  const P = "PORT";
  const sk = (proto: "tcp" | "udp") =>
    sockperfClientArgs(proto, P, d).filter((a) => sockperfFullRtt || a !== "--full-rtt");
  const commands = {
    netkit_server: `${NETKIT_SHOWN} server --proto both --host ${HOST} --port 0`,
    netkit_tcp: `${NETKIT_SHOWN} client ${netkitTcpArgs(P, d).join(" ")}`,
    netkit_tcp_p4: `${NETKIT_SHOWN} client ${netkitTcpArgs(P, d, ["--parallel", "4"]).join(" ")}`,
    netkit_udp_engine:
      `taskset -c ${ACROSS.server} ${NETKIT_SHOWN} server … --engine native|deno; taskset -c ${ACROSS.client} ${NETKIT_SHOWN} client ${
        netkitUdpArgs(P, d, "native|deno").join(" ")
      }`,
    netkit_pingpong_udp_engine:
      `taskset -c ${ACROSS.server} ${NETKIT_SHOWN} server …; taskset -c ${ACROSS.client} ${NETKIT_SHOWN} client ${
        netkitPingArgs("udp", P, d, "native|deno").join(" ")
      }`,
    netkit_udp: `${NETKIT_SHOWN} client ${netkitUdpArgs(P, d).join(" ")}`,
    netkit_pingpong_tcp: `${NETKIT_SHOWN} client ${netkitPingArgs("tcp", P, d).join(" ")}`,
    netkit_pingpong_udp: `${NETKIT_SHOWN} client ${netkitPingArgs("udp", P, d).join(" ")}`,
    iperf3_server: `iperf3 ${iperfServerArgs(P).join(" ")}`,
    iperf3_tcp: `iperf3 ${iperfTcpArgs(P, d).join(" ")}`,
    iperf3_tcp_1m: `iperf3 ${iperfTcpArgs(P, d, ["-l", "1M"]).join(" ")}`,
    iperf3_tcp_p4: `iperf3 ${iperfTcpArgs(P, d, ["-P", "4"]).join(" ")}`,
    iperf3_udp: `iperf3 ${iperfUdpArgs(P, d).join(" ")}`,
    engine_udp_receiver: `taskset -c ${ENGINE_CPUS.receiver} deno ${
      engineUdpArgs("receive", "native|deno", "RPORT", "SPORT", d).join(" ")
    }`,
    engine_udp_sender: `taskset -c ${ENGINE_CPUS.sender} deno ${
      engineUdpArgs("send", "native|deno", "SPORT", "RPORT", d).join(" ")
    }`,
    iperf3_udp_pinned: `taskset -c ${ENGINE_CPUS.receiver} iperf3 ${
      iperfServerArgs(P).join(" ")
    }; taskset -c ${ENGINE_CPUS.sender} iperf3 ${iperfUdpArgs(P, d).join(" ")}`,
    sockperf_server_tcp: `sockperf ${sockperfServerArgs("tcp", P).join(" ")}`,
    sockperf_server_udp: `sockperf ${sockperfServerArgs("udp", P).join(" ")}`,
    sockperf_pingpong_tcp: `sockperf ${sk("tcp").join(" ")}`,
    sockperf_pingpong_udp: `sockperf ${sk("udp").join(" ")}`,
    netkit_cpu_probe: `${NETKIT_SHOWN} client ${netkitProbeCpuArgs(P, d).join(" ")}`,
    netkit_cpu_udp_10m: `${NETKIT_SHOWN} client ${netkitUdp10CpuArgs(P, d).join(" ")}`,
    iperf3_cpu_udp_10m: `iperf3 ${iperfUdp10CpuArgs(P, d).join(" ")}`,
    sockperf_pingpong_udp_pinned: `taskset -c ${ACROSS.server} sockperf ${
      sockperfServerArgs("udp", P).join(" ")
    }; taskset -c ${ACROSS.client} sockperf ${sk("udp").join(" ")}`,
  };

  // The measurements, each run alternately: netkit, anchor, netkit, anchor, …
  type Runner = (who: string) => Promise<Sample | undefined>;
  interface Measurement {
    key: string;
    title: string;
    anchorName: string;
    haveAnchor: boolean;
    netkit: Runner;
    anchor: Runner;
  }
  const measurements: Measurement[] = [
    {
      key: "tcp",
      title: `TCP throughput, 1 stream, ${d} s`,
      anchorName: "iperf3",
      haveAnchor: haveIperf,
      netkit: (w) => netkitTcp(d, w),
      anchor: (w) => iperfTcp(d, w),
    },
    {
      key: "tcp_1m",
      title: `TCP throughput, 1 stream, netkit's default 1 MiB writes vs iperf3 -l 1M, ${d} s`,
      anchorName: "iperf3",
      haveAnchor: haveIperf,
      netkit: (w) => netkitTcp(d, w),
      anchor: (w) => iperfTcp(d, w, ["-l", "1M"]),
    },
    {
      key: "tcp_p4",
      title: `TCP throughput, --parallel 4 vs iperf3 -P 4, ${d} s`,
      anchorName: "iperf3",
      haveAnchor: haveIperf,
      netkit: (w) => netkitTcp(d, w, ["--parallel", "4"]),
      anchor: (w) => iperfTcp(d, w, ["-P", "4"]),
    },
    {
      key: "udp",
      title: `UDP throughput, 1400 B datagrams, unlimited rate, ${d} s`,
      anchorName: "iperf3",
      haveAnchor: haveIperf,
      netkit: (w) => netkitUdp(d, w),
      anchor: (w) => iperfUdp(d, w),
    },
    ...(["native", "deno"] as const).map((engine) => ({
      key: `udp_nk_${engine}`,
      title: `netkit UDP throughput, 1400 B unlimited, --engine ${engine} (client), ${
        placementText(ACROSS)
      }, vs iperf3 placed the same, ${d} s`,
      anchorName: "iperf3",
      haveAnchor: haveIperf,
      netkit: (w: string) => netkitUdp(d, w, engine, ACROSS),
      anchor: (w: string) => iperfUdp(d, w, { receiver: ACROSS.server, sender: ACROSS.client }),
    })),
    {
      key: "udp_nk_gso",
      title:
        `netkit UDP throughput, 1400 B unlimited, --engine native --gso (labelled: on loopback GSO bypasses per-packet work), ${
          placementText(ACROSS)
        }, vs iperf3 placed the same, ${d} s`,
      anchorName: "iperf3",
      haveAnchor: haveIperf,
      netkit: (w: string) => netkitUdp(d, w, "native", ACROSS, ["--gso"]),
      anchor: (w: string) => iperfUdp(d, w, { receiver: ACROSS.server, sender: ACROSS.client }),
    },
    ...(["native", "deno"] as const).map((engine) => ({
      key: `udp_${engine}`,
      title:
        `UDP 1400 B unlimited, ${engine} engine (lib/engine/) vs iperf3, receivers on CPU ${ENGINE_CPUS.receiver}, senders on CPU ${ENGINE_CPUS.sender}, ${d} s`,
      anchorName: "iperf3",
      haveAnchor: haveIperf,
      netkit: (w: string) => engineUdp(engine, d, w),
      anchor: (w: string) => iperfUdp(d, w, ENGINE_CPUS),
    })),
    {
      key: "pp_tcp",
      title: `TCP ping-pong, 64 B, ${d} s`,
      anchorName: "sockperf",
      haveAnchor: haveSockperf,
      netkit: (w) => netkitPing("tcp", d, w),
      anchor: (w) => sockperfPing("tcp", d, w),
    },
    {
      key: "pp_udp",
      title: `UDP ping-pong, 64 B, ${d} s`,
      anchorName: "sockperf",
      haveAnchor: haveSockperf,
      netkit: (w) => netkitPing("udp", d, w),
      anchor: (w) => sockperfPing("udp", d, w),
    },
    {
      key: "cpu_probe",
      title: `CPU of a UDP probe at 1,000/s, ${d} s`,
      anchorName: "none",
      haveAnchor: false,
      netkit: (w) => netkitCpu(netkitProbeCpuArgs, d, w),
      anchor: () => Promise.resolve(undefined),
    },
    {
      key: "cpu_udp10",
      title: `CPU of UDP throughput at 10 Mbit/s, 1400 B datagrams, ${d} s`,
      anchorName: "iperf3",
      haveAnchor: haveIperf,
      netkit: (w) => netkitCpu(netkitUdp10CpuArgs, d, w),
      anchor: (w) => iperfUdp10Cpu(d, w),
    },
    ...(["native", "deno"] as const).map((engine) => ({
      key: `pp_udp_${engine}`,
      title: `UDP ping-pong, 64 B, --engine ${engine}, ${
        placementText(ACROSS)
      }, vs sockperf placed the same, ${d} s`,
      anchorName: "sockperf",
      haveAnchor: haveSockperf,
      netkit: (w: string) => netkitPing("udp", d, w, engine, ACROSS),
      anchor: (w: string) => sockperfPing("udp", d, w, ACROSS),
    })),
    {
      // The server's peak memory on its own row (issue 11's target), each run a fresh server.
      key: "server_memory",
      title: `Server peak memory (VmHWM) serving one TCP test, ${d} s`,
      anchorName: "iperf3 -s",
      haveAnchor: haveIperf,
      netkit: (w) => netkitTcp(d, w),
      anchor: (w) => iperfTcp(d, w),
    },
    {
      key: "pp_udp_native_same",
      title: `UDP ping-pong, 64 B, --engine native (blocking recv in a Worker), ${
        placementText(SAME)
      }, vs sockperf placed the same, ${d} s`,
      anchorName: "sockperf",
      haveAnchor: haveSockperf,
      netkit: (w: string) => netkitPing("udp", d, w, "native", SAME),
      anchor: (w: string) => sockperfPing("udp", d, w, SAME),
    },
    ...([["across", ACROSS], ["same", SAME]] as const).map(([where, cpus]) => ({
      key: `pp_tcp_${where}`,
      title: `TCP ping-pong, 64 B, ${placementText(cpus)}, vs sockperf placed the same, ${d} s`,
      anchorName: "sockperf",
      haveAnchor: haveSockperf,
      netkit: (w: string) => netkitPing("tcp", d, w, undefined, cpus),
      anchor: (w: string) => sockperfPing("tcp", d, w, cpus),
    })),
  ];

  const samples: Record<string, { netkit: Sample[]; anchor: Sample[] }> = {};
  const only = options.only;
  const unknown = only?.filter((k) => !measurements.some((m) => m.key === k)) ?? [];
  if (unknown.length) {
    console.error(`error: unknown --only ${unknown.join(", ")}`);
    return 2;
  }
  const describe = (key: string, s: Sample): string => {
    const v = s.values;
    switch (key) {
      case "tcp":
      case "tcp_1m":
      case "tcp_p4":
        return `${fmt(v.bps! / 1e9, 2)} Gbit/s received, peak RSS ${
          fmt((v.rssKiB ?? NaN) / 1024, 1)
        } MiB`;
      case "udp":
      case "udp_nk_native":
      case "udp_nk_deno":
      case "udp_nk_gso":
      case "udp_native":
      case "udp_deno":
        return `${fmt(v.dps!, 0)} datagrams/s delivered, loss ${fmt(v.lossPct!, 2)}%`;
      case "cpu_probe":
      case "cpu_udp10":
        return `${fmt(v.cpuPct!, 1)}% of a core (${fmt(v.cpuS!, 2)} s CPU)`;
      case "server_memory":
        return `server peak ${fmt((v.rssKiB ?? NaN) / 1024, 1)} MiB (after: private ${
          fmt((v.anonKiB ?? NaN) / 1024, 1)
        }, file pages ${fmt((v.fileKiB ?? NaN) / 1024, 1)}), test ${fmt(v.bps! / 1e9, 2)} Gbit/s`;
      default:
        return `p50 ${fmt(v.p50us!, 1)} µs, p99 ${fmt(v.p99us!, 1)} µs, ${
          fmt(v.samples!, 0)
        } samples`;
    }
  };
  const benchStart = performance.now();
  for (const m of measurements.filter((m) => !only || only.includes(m.key))) {
    log(
      `\n${m.title}: ${pairs} pair(s), ${
        m.haveAnchor
          ? `netkit and ${m.anchorName} alternately`
          : m.anchorName === "none"
          ? "netkit only (no anchor)"
          : `netkit only (${m.anchorName} missing)`
      }`,
    );
    const got = samples[m.key] = { netkit: [] as Sample[], anchor: [] as Sample[] };
    for (let i = 1; i <= pairs; i++) {
      const sides: Array<["netkit" | "anchor", string, Runner]> = [
        ["netkit", "netkit", m.netkit],
        ...(m.haveAnchor ? [["anchor", m.anchorName, m.anchor] as ["anchor", string, Runner]] : []),
      ];
      for (const [side, name, runner] of sides) {
        const who = `${m.key} run ${i} ${name}`;
        try {
          const s = await runner(who);
          if (s) {
            got[side].push(s);
            log(`  ${i}/${pairs} ${name.padEnd(8)} ${describe(m.key, s)}`);
          } else log(`  ${i}/${pairs} ${name.padEnd(8)} failed (see problem above)`);
        } catch (e) {
          problem(`${who}: ${(e as Error).message}`);
        }
      }
    }
  }
  const elapsedS = (performance.now() - benchStart) / 1000;
  host.loadAfter = (await Deno.readTextFile("/proc/loadavg").catch(() => "")).split(" ").slice(0, 3)
    .join(" ");

  // Rows of the table.
  const pick = (key: string, side: "netkit" | "anchor", field: string, scale = 1) =>
    (samples[key]?.[side] ?? []).map((s) => s.values[field]).filter((x): x is number =>
      x !== undefined && Number.isFinite(x)
    ).map((x) => x * scale);
  const row = (
    metric: string,
    unit: string,
    anchorName: string,
    netkitRuns: number[],
    anchorRuns: number[],
    target: string,
    test: ((ratio: number, n: number, a: number) => boolean) | null,
    digits: number,
    haveAnchor: boolean,
  ): Row => {
    const n = median(netkitRuns);
    const a = median(anchorRuns);
    const ratio = n !== null && a !== null && a !== 0 ? n / a : null;
    return {
      metric,
      unit,
      anchorName: haveAnchor ? anchorName : `${anchorName} missing`,
      netkit: n,
      anchor: a,
      netkitRuns,
      anchorRuns,
      ratio,
      target,
      met: test && n !== null && a !== null && ratio !== null ? test(ratio, n, a) : null,
      digits,
    };
  };
  /** The delivered-datagrams row and the loss row of one UDP measurement against iperf3. */
  const udpRows = (
    key: string,
    delivered: string,
    loss: string,
    targets: { atLeast?: number; lossAtMostAnchor?: boolean },
  ): Row[] => [
    row(
      delivered,
      "datagrams/s",
      "iperf3",
      pick(key, "netkit", "dps"),
      pick(key, "anchor", "dps"),
      targets.atLeast ? `≥ ${targets.atLeast}x iperf3` : "report only",
      targets.atLeast ? (r) => r >= targets.atLeast! : null,
      0,
      haveIperf,
    ),
    row(
      loss,
      "%",
      "iperf3",
      pick(key, "netkit", "lossPct"),
      pick(key, "anchor", "lossPct"),
      targets.lossAtMostAnchor ? "≤ iperf3" : "report only",
      targets.lossAtMostAnchor ? (_r, n, a) => n <= a : null,
      2,
      haveIperf,
    ),
  ];
  /** A server memory row (MiB) of measurement `key` against `iperf3 -s`; a target if `atMostMiB`. */
  const memoryRow = (metric: string, key: string, field: string, atMostMiB?: number): Row =>
    row(
      metric,
      "MiB",
      "iperf3 -s",
      pick(key, "netkit", field, 1 / 1024),
      pick(key, "anchor", field, 1 / 1024),
      atMostMiB ? `≤ ${atMostMiB} MiB` : "report only",
      atMostMiB ? (_r, n) => n <= atMostMiB : null,
      1,
      haveIperf,
    );
  const nkLoss = median(pick("udp", "netkit", "lossPct"));
  const ipLoss = median(pick("udp", "anchor", "lossPct"));
  const lossOk = nkLoss !== null && ipLoss !== null ? nkLoss <= ipLoss : null;
  const rows: Row[] = [
    row(
      "TCP throughput, 1 stream",
      "Gbit/s",
      "iperf3",
      pick("tcp", "netkit", "bps", 1e-9),
      pick("tcp", "anchor", "bps", 1e-9),
      "≥ 1.2x iperf3",
      (r) => r >= 1.2,
      2,
      haveIperf,
    ),
    row(
      "TCP throughput, 1 stream, vs iperf3 -l 1M",
      "Gbit/s",
      "iperf3 -l 1M",
      pick("tcp_1m", "netkit", "bps", 1e-9),
      pick("tcp_1m", "anchor", "bps", 1e-9),
      "≥ 1.0x iperf3 -l 1M",
      (r) => r >= 1.0,
      2,
      haveIperf,
    ),
    row(
      "TCP throughput, 4 streams (--parallel 4 / -P 4)",
      "Gbit/s",
      "iperf3 -P 4",
      pick("tcp_p4", "netkit", "bps", 1e-9),
      pick("tcp_p4", "anchor", "bps", 1e-9),
      "report only",
      null,
      2,
      haveIperf,
    ),
    row(
      "UDP delivered, 1400 B, unlimited",
      "datagrams/s",
      "iperf3",
      pick("udp", "netkit", "dps"),
      pick("udp", "anchor", "dps"),
      "≥ 0.8x iperf3, loss ≤ iperf3's",
      (r) => r >= 0.8 && lossOk === true,
      0,
      haveIperf,
    ),
    row(
      "UDP receiver loss",
      "%",
      "iperf3",
      pick("udp", "netkit", "lossPct"),
      pick("udp", "anchor", "lossPct"),
      "≤ iperf3",
      (_r, n, a) => n <= a,
      2,
      haveIperf,
    ),
    ...(["native", "deno"] as const).flatMap((engine) =>
      udpRows(
        `udp_nk_${engine}`,
        `netkit UDP delivered, 1400 B, --engine ${engine}, pinned`,
        `netkit UDP receiver loss, --engine ${engine}, pinned`,
        engine === "native" ? { atLeast: 1.1, lossAtMostAnchor: true } : {},
      )
    ),
    ...udpRows(
      "udp_nk_gso",
      "netkit UDP delivered, 1400 B, --engine native --gso (GSO: loopback bypasses per-packet work), pinned",
      "netkit UDP receiver loss, --engine native --gso, pinned",
      { atLeast: 2.5 },
    ),
    ...(["native", "deno"] as const).flatMap((engine) =>
      udpRows(
        `udp_${engine}`,
        `UDP delivered, 1400 B, ${engine} engine, pinned`,
        `UDP receiver loss, ${engine} engine, pinned`,
        engine === "native" ? { atLeast: 1.1, lossAtMostAnchor: true } : {},
      )
    ),
    ...(["tcp", "udp"] as const).flatMap((proto) =>
      (["p50", "p99"] as const).map((q) =>
        row(
          `${proto.toUpperCase()} ping-pong 64 B, RTT ${q}`,
          "µs",
          "sockperf",
          pick(`pp_${proto}`, "netkit", `${q}us`),
          pick(`pp_${proto}`, "anchor", `${q}us`),
          q === "p50" ? "≤ 1.1x sockperf" : "report only",
          q === "p50" ? (r) => r <= 1.1 : null,
          1,
          haveSockperf,
        )
      )
    ),
    {
      ...row(
        "Client CPU, UDP probe at 1,000/s",
        "% of a core",
        "none",
        pick("cpu_probe", "netkit", "cpuPct"),
        [],
        "< 10% of a core",
        null,
        1,
        true,
      ),
      met: median(pick("cpu_probe", "netkit", "cpuPct")) === null
        ? null
        : median(pick("cpu_probe", "netkit", "cpuPct"))! < 10,
    },
    row(
      "Client CPU, UDP at 10 Mbit/s, 1400 B",
      "% of a core",
      "iperf3",
      pick("cpu_udp10", "netkit", "cpuPct"),
      pick("cpu_udp10", "anchor", "cpuPct"),
      "≤ 3x iperf3",
      (r) => r <= 3,
      1,
      haveIperf,
    ),
    // The pinned ping-pong rows: [label, sample, placement], all against sockperf's p50.
    ...([
      ["UDP ping-pong 64 B, RTT p50, --engine native", "pp_udp_native", ACROSS],
      ["UDP ping-pong 64 B, RTT p50, --engine deno", "pp_udp_deno", ACROSS],
      ["UDP ping-pong 64 B, RTT p50, --engine native", "pp_udp_native_same", SAME],
      ["TCP ping-pong 64 B, RTT p50", "pp_tcp_across", ACROSS],
      ["TCP ping-pong 64 B, RTT p50", "pp_tcp_same", SAME],
    ] as const).map(([label, key, cpus]) =>
      row(
        `${label}, ${placementText(cpus)}`,
        "µs",
        "sockperf",
        pick(key, "netkit", "p50us"),
        pick(key, "anchor", "p50us"),
        "≤ 1.1x sockperf",
        (r) => r <= 1.1,
        1,
        haveSockperf,
      )
    ),
    memoryRow("Server peak RSS (VmHWM) serving the TCP test", "tcp", "rssKiB"),
    memoryRow("Server peak memory (VmHWM), one TCP test", "server_memory", "rssKiB", 45),
    memoryRow("Server private memory (RssAnon) after one TCP test", "server_memory", "anonKiB"),
    memoryRow(
      "Server file pages (RssFile: executable code, libraries) after one TCP test",
      "server_memory",
      "fileKiB",
    ),
  ];
  if (only) rows.splice(0, rows.length, ...rows.filter((r) => r.netkitRuns.length > 0));
  const sockperfDoubled = (samples.pp_tcp?.anchor ?? []).concat(samples.pp_udp?.anchor ?? []).some((
    s,
  ) => s.values.doubled === 1);
  const rttNote = sockperfFullRtt && !sockperfDoubled
    ? "sockperf run with --full-rtt: both sides report the full round trip, in µs"
    : "sockperf reports half the round trip: its figures were doubled to the full round trip";
  const notes = [
    `Loopback (${HOST}) only; every run has its own fresh server; medians of ${pairs} run(s) each, netkit and anchor alternately.`,
    "TCP: receiver bits/s (iperf3 end.sum_received; netkit up.sum_received); netkit writes its default 1 MiB blocks, iperf3 its default 128 KiB (and 1 MiB in the -l 1M row). TCP rows are unpinned.",
    `netkit UDP rows (--engine): netkit's own throughput command, client and server both on the engine named (native: the client sends with sendmmsg 32, the server's test port receives with recvmmsg into a 4 MiB buffer); both it and iperf3 pinned: ${
      placementText(ACROSS)
    } (taskset). Rows without a placement are unpinned; the unpinned UDP and ping-pong rows run --engine auto (native here).`,
    "UDP delivered datagrams/s: iperf3 (end.sum.packets − end.sum.lost_packets) / end.sum.seconds; netkit up.sum_received.datagrams / up.sum_sent.seconds. Loss: iperf3 end.sum.lost_percent; netkit up.sum_received.lost_percent.",
    `Ping-pong: ${rttNote}. sockperf drops its first 400 ms (warm-up) and last ~50 ms from its statistics; netkit counts every probe of the run.`,
    "CPU: user + system seconds of the client process (bash's times, children included) over its wall time, as % of one core; netkit's includes Deno's start-up (about 0.05 s).",
    "Memory: VmHWM from /proc/PID/status of the server process (the deno process for netkit) just before stopping it, after it served one TCP test; at the same moment RssAnon (private: heaps, stacks, buffers) and RssFile (file pages: the executable's code and its libraries, shared between processes and reclaimable), which add up to the resident set then.",
    `netkit runs as the binary does: \`${NETKIT_SHOWN}\`, with the permission set and the --v8-flags of deno.json's compile tasks (${V8_FLAGS}), so the figures measure what ships.`,
    `Engine rows: bench/engine_udp.ts, the bare engines of lib/engine/ outside netkit's commands, a connected UDP pair; native: sendmmsg batches of 32, recvmmsg batches of 64, ${
      ENGINE_RCVBUF >> 20
    } MiB receive buffer asked for; deno: one op per datagram. Delivered datagrams/s = received / sender seconds. Both they and their iperf3 anchor (default buffers) are pinned: receiver on CPU ${ENGINE_CPUS.receiver}, sender on CPU ${ENGINE_CPUS.sender} (taskset).`,
  ];

  const sampleSummaries = Object.fromEntries(
    Object.entries(samples).map(([k, v]) => [k, {
      netkit: v.netkit.map((s) => ({ ...s.values, ...(s.summary ? { summary: s.summary } : {}) })),
      anchor: v.anchor.map((s) => s.values),
    }]),
  );
  const allMeasured = rows.every((r) => r.netkit !== null) &&
    rows.every((r) =>
      r.anchor !== null || r.anchorName.endsWith("missing") || r.anchorName === "none"
    );

  if (options.json) {
    console.log(JSON.stringify(
      {
        date,
        machine: host,
        versions,
        options: { pairs, duration_s: d },
        missing_anchors: missing,
        elapsed_s: Math.round(elapsedS),
        commands,
        notes,
        rows: rows.map((r) => ({
          metric: r.metric,
          unit: r.unit,
          anchor: r.anchorName,
          netkit_median: r.netkit,
          anchor_median: r.anchor,
          ratio: r.ratio,
          target: r.target,
          met: r.target === "report only" ? null : r.met,
          netkit_runs: r.netkitRuns,
          anchor_runs: r.anchorRuns,
        })),
        samples: sampleSummaries,
        problems,
      },
      null,
      2,
    ));
    return allMeasured ? 0 : 1;
  }

  const out: string[] = [];
  const p = (s = "") => out.push(s);
  p("");
  p("netkit benchmark against iperf3 and sockperf, loopback");
  p("");
  p(`date      ${date}`);
  p(`machine   ${host.cores} cores, ${host.cpu}, ${host.memory} RAM, ${host.kernel}`);
  p(`load avg  ${host.load} before, ${host.loadAfter} after (1, 5, 15 min; other load skews figures)`);
  p(`versions  deno ${versions.deno}; ${versions.netkit}`);
  p(`anchors   ${versions.iperf3}; ${versions.sockperf}`);
  if (missing.length) p(`missing   ${missing.join(", ")} (its rows show netkit only)`);
  p(`runs      ${pairs} pair(s) per measurement, ${d} s each; bench took ${
    Math.round(elapsedS)
  } s`);
  p("");
  p("Commands (PORT: a fresh free port per run; netkit's server uses --port 0):");
  for (const [k, v] of Object.entries(commands)) p(`  ${k.padEnd(22)} ${v}`);
  p("");
  p("Per-run figures (netkit, anchor):");
  for (const r of rows) {
    p(`  ${r.metric} (${r.unit}): netkit [${
      r.netkitRuns.map((x) => fmt(x, r.digits)).join(", ")
    }]; ${r.anchorName} [${r.anchorRuns.map((x) => fmt(x, r.digits)).join(", ")}]`);
  }
  const summaries = (samples.tcp?.netkit ?? []).map((s) => s.summary).filter((s) => s);
  if (summaries.length) p(`  netkit server after one TCP run: ${summaries[0]}`);
  p("");
  const cells = tableRows(rows);
  p(plainTable(cells));
  p("");
  for (const n of notes) p(`- ${n}`);
  if (problems.length) {
    p("");
    p(`Problems (${problems.length}):`);
    for (const pr of problems) p(`  - ${pr}`);
  }
  p("");
  p("## Markdown");
  p("");
  p(
    `Loopback, ${
      date.slice(0, 10)
    }: ${host.cores} cores, ${host.cpu}, ${host.memory} RAM, ${host.kernel}; ` +
      `deno ${versions.deno}, ${versions.iperf3}, ${versions.sockperf}. ` +
      `Medians of ${pairs} alternating run(s) of ${d} s each (\`deno task bench\`).`,
  );
  p("");
  p(markdownTable(cells));
  p("");
  for (const n of notes) p(`- ${n}`);
  console.log(out.join("\n"));
  return allMeasured ? 0 : 1;
}

// Ctrl-C or SIGTERM: stop every process we started, then exit.
const onSignal = () => {
  for (const child of live) kill(child, "SIGKILL");
  Promise.allSettled([...live].map((c) => c.status)).then(() => Deno.exit(130));
};
Deno.addSignalListener("SIGINT", onSignal);
Deno.addSignalListener("SIGTERM", onSignal);
let code = 1;
try {
  code = await main();
} catch (e) {
  console.error(`error: ${(e as Error).stack ?? e}`);
} finally {
  // Nothing may outlive the bench.
  await Promise.allSettled([...live].map((c) => terminate(c, 2000)));
  Deno.removeSignalListener("SIGINT", onSignal);
  Deno.removeSignalListener("SIGTERM", onSignal);
}
Deno.exit(code);
