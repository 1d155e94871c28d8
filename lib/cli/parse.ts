/**
 * Turn the command line into a typed {@linkcode Config}, rejecting unknown
 * flags, bad values and conflicting flags up front with one line each.
 *
 * @example
 * ```ts
 * import { parseCommandLine } from "./parse.ts";
 *
 * const config = parseCommandLine(["server", "--proto", "udp", "--port", "0"]);
 * // { command: "server", endpoints: [{ transport: "udp", hostname: "0.0.0.0", port: 0 }], … }
 * ```
 *
 * @module
 */

import {
  type ClientSide,
  type Endpoint,
  type IpEndpoint,
  ipFamily,
  parsePort,
  splitHostPort,
} from "../address.ts";
import {
  type ClientConfig,
  type CompareConfig,
  type Config,
  type Impairment,
  type LabConfig,
  type LabImpairment,
  type OutputFormat,
  type ProbeWorkload,
  type RelayConfig,
  type RelayEndpoint,
  type ReportTarget,
  type ScanConfig,
  type ServerConfig,
  serverDefaults,
  type ServerMode,
} from "../config.ts";
import { parseDuration } from "../duration.ts";
import { usageError } from "../errors.ts";
import { PROBE_HEADER_BYTES, PROBE_MAX_BYTES } from "../probe/codec.ts";
import { UDP_HEADER_BYTES } from "../throughput/protocol.ts";
import { parseBlockSize, parseByteSize, parsePercent, parseScaled } from "../units.ts";
import { parseRelayAddress, RELAY_ADDRESS_FORMS } from "../relay/address.ts";
import { parsePortList } from "../scan/ports.ts";
import { hasImpairment } from "../lab/impairment.ts";
import { ENGINE_CHOICES } from "../engine/select.ts";
import { type CommandName, COMMANDS, renderHelp, renderTopHelp, VERSION } from "./spec.ts";
import { type Cidr, parseCidr } from "../acl.ts";
import type { ClientTls } from "../client/dial.ts";
import { type FlagValues, parseFlagArgs } from "./args.ts";

/** UDP throughput's bitrate per stream when `--bitrate` is not given (iperf3's default). */
export const UDP_DEFAULT_BITRATE = 1_000_000;

/** Flag values of one command, with helpers that validate and name the command in errors. */
class Flags {
  constructor(
    readonly command: CommandName,
    readonly values: FlagValues,
    readonly argv: readonly string[] = [],
  ) {}

  has(name: string): boolean {
    return this.values[name] !== undefined;
  }

  bool(name: string): boolean {
    return this.values[name] === true;
  }

  string(name: string): string | undefined {
    const v = this.values[name];
    return typeof v === "string" ? v : undefined;
  }

  strings(name: string): string[] {
    const v = this.values[name];
    return Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : [];
  }

  fail(message: string): never {
    throw usageError(message, this.command);
  }

  invalid(name: string, value: string, expected: string): never {
    this.fail(`Invalid value '${value}' for '--${name}': expected ${expected}`);
  }

  choice<T extends string>(name: string, allowed: readonly T[], fallback: T): T {
    const v = this.string(name);
    if (v === undefined) return fallback;
    if ((allowed as readonly string[]).includes(v)) return v as T;
    return this.invalid(name, v, `one of ${allowed.join(", ")}`);
  }

  int(name: string, min: number, max: number, fallback: number): number {
    const v = this.string(name);
    if (v === undefined) return fallback;
    const n = /^-?\d+$/.test(v) ? Number(v) : NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max) {
      const range = max === Number.MAX_SAFE_INTEGER ? `${min} or more` : `${min} to ${max}`;
      return this.invalid(name, v, `a whole number, ${range}`);
    }
    return n;
  }

  /** Bytes, whole or with K, M or G counted in 1024s, as iperf3's `-l` takes (`--size`). */
  blockSize(name: string, min: number, max: number, fallback: number): number {
    const v = this.string(name);
    if (v === undefined) return fallback;
    const n = parseBlockSize(v);
    if (n === undefined || n < min || n > max) {
      return this.invalid(name, v, `bytes, ${min} to ${max}, with K or M if you like (1K = 1024)`);
    }
    return n;
  }

  /** A number with an optional k, M or G (decimal) suffix, as `--bitrate` takes. */
  scaled(name: string, fallback: number): number {
    const v = this.string(name);
    if (v === undefined) return fallback;
    return parseScaled(v) ??
      this.invalid(name, v, "a number, 0 or more, with k, M or G if you like (e.g. 2.5, 5k, 1M)");
  }

  /** `--proto`, where `-u`/`--udp` is `--proto udp` (nc's habit). */
  proto<T extends string>(allowed: readonly T[], fallback: T): T {
    if (!this.bool("udp")) return this.choice("proto", allowed, fallback);
    const given = this.string("proto");
    if (given !== undefined && given !== "udp") this.fail(`'-u' and '--proto ${given}' disagree`);
    this.conflict("udp", "path");
    return "udp" as T;
  }

  /** `-4`/`-6`, if either was given. */
  family(): 4 | 6 | undefined {
    this.conflict("ipv4", "ipv6");
    return this.bool("ipv4") ? 4 : this.bool("ipv6") ? 6 : undefined;
  }

  duration(name: string, fallback: number): number {
    const v = this.string(name);
    if (v === undefined) return fallback;
    const ms = parseDuration(v);
    if (ms === undefined) {
      return this.invalid(name, v, "a duration such as 500ms, 2s, 1.5m or a number of seconds");
    }
    return ms;
  }

  conflict(a: string, b: string): void {
    if (this.has(a) && this.has(b)) this.fail(`'--${a}' and '--${b}' cannot be used together`);
  }

  requires(flag: string, needed: string): void {
    if (this.has(flag) && !this.has(needed)) {
      this.fail(`'--${flag}' needs '--${needed}'`);
    }
  }

  output(): OutputFormat {
    this.conflict("json", "json-stream");
    if (this.bool("json")) return "json";
    if (this.bool("json-stream")) return "json-stream";
    return "text";
  }
}

/**
 * The output format `argv` asks for, read from the raw arguments so that even a
 * command line that fails to parse gets its JSON: `--json`, `-J` (also in a
 * cluster such as `-uJ`) or `--json-stream`, before any `--`.
 */
export function requestedOutput(argv: readonly string[]): OutputFormat {
  const end = argv.indexOf("--");
  const flags = end === -1 ? argv : argv.slice(0, end);
  if (flags.some((a) => a === "--json" || a.startsWith("--json=") || /^-[a-zA-Z\d]*J/.test(a))) {
    return "json";
  }
  if (flags.some((a) => a === "--json-stream" || a.startsWith("--json-stream="))) {
    return "json-stream";
  }
  return "text";
}

/** Parse `argv` (without the program name) into a {@linkcode Config}. */
export function parseCommandLine(argv: readonly string[]): Config {
  const [first, ...rest] = argv;
  if (first === undefined) {
    throw usageError("Missing command: expected 'server', 'client', 'compare', 'relay' or 'scan'");
  }
  if (first === "--help" || first === "-h" || first === "help") {
    return { command: "text", text: renderTopHelp() };
  }
  if (first === "--version" || first === "-V") {
    return { command: "text", text: `netkit ${VERSION}` };
  }
  if (!Object.hasOwn(COMMANDS, first)) {
    throw usageError(
      `Unknown command '${first}': expected 'server', 'client', 'compare', 'relay' or 'scan'`,
    );
  }
  const command = first as CommandName;
  const spec = COMMANDS[command];
  const flagArgs = command === "lab" ? labFlagArgs(rest) : rest;
  const { values, positionals } = parseFlagArgs(command, spec.flags, flagArgs);
  const flags = new Flags(command, values, flagArgs);
  if (flags.bool("help")) return { command: "text", text: renderHelp(spec) };
  switch (command) {
    case "server":
      return buildServer(flags, positionals);
    case "client":
      return buildClient(flags, positionals);
    case "compare":
      return buildCompare(flags, positionals, rest);
    case "relay":
      return buildRelay(flags, positionals);
    case "scan":
      return buildScan(flags, positionals);
    case "lab":
      return buildLab(flags, positionals, rest);
    default: {
      const never: never = command;
      throw new Error(`unhandled command ${never}`);
    }
  }
}

function buildServer(flags: Flags, positionals: string[]): ServerConfig {
  if (positionals.length > 1) flags.fail(`Unexpected argument '${positionals[1]}'`);
  const [portArg] = positionals;
  if (portArg !== undefined && parsePort(portArg) === undefined) {
    flags.fail(`Unexpected argument '${portArg}': the one argument is a port from 0 to 65535`);
  }
  const proto = flags.proto(["tcp", "udp", "unix", "both"], flags.has("path") ? "unix" : "tcp");
  const family = flags.family();
  const mode = flags.choice<ServerMode>("mode", ["echo", "discard", "chat"], "echo");
  let endpoints: Endpoint[];
  if (proto === "unix") {
    flags.conflict("path", "host");
    flags.conflict("path", "port");
    if (portArg !== undefined) flags.fail(`Unexpected argument '${portArg}' with a Unix socket`);
    if (family !== undefined) flags.fail(`'-${family}' is for IP, not a Unix socket`);
    const path = flags.string("path") ?? flags.fail("'--proto unix' needs '--path SOCKET'");
    endpoints = [{ transport: "unix", path }];
  } else {
    if (flags.has("path")) flags.fail(`'--path' is for Unix sockets, not '--proto ${proto}'`);
    const hostname = hostFlag(flags, flags.string("host") ?? (family === 6 ? "::" : "0.0.0.0"));
    familyMatches(flags, family, hostname, "--host");
    if (portArg !== undefined && flags.has("port")) {
      flags.fail(`Give the port once: '${portArg}' or '--port ${flags.string("port")}'`);
    }
    const port = portFlag(flags, portArg ?? flags.string("port"), 5050);
    endpoints = proto === "both"
      ? [{ transport: "tcp", hostname, port }, { transport: "udp", hostname, port }]
      : [{ transport: proto, hostname, port }];
  }
  if (mode === "chat" && (proto === "udp" || proto === "both")) {
    flags.fail("'--mode chat' needs a stream transport: use '--proto tcp' or '--proto unix'");
  }
  const tls = tlsFiles(flags, proto);
  const cidrs = (name: string): Cidr[] =>
    flags.strings(name).map((text) =>
      parseCidr(text) ??
        flags.invalid(name, text, "an IPv4 or IPv6 address or network such as 10.0.0.0/8 or ::1")
    );
  if (flags.has("rate-limit") && proto === "unix") {
    flags.fail("'--rate-limit' applies to UDP, and a Unix-socket server opens no UDP port");
  }
  if (flags.bool("once") && proto === "udp") {
    flags.fail(
      "'--once' serves one connection and UDP has none: use '--proto tcp' or '--proto unix'",
    );
  }
  // The defaults live in one place, serverDefaults; flags override them.
  const d = serverDefaults(endpoints);
  return {
    ...d,
    mode,
    maxConns: flags.int("max-conns", 1, 1_000_000, d.maxConns),
    idleTimeoutMs: flags.duration("idle-timeout", d.idleTimeoutMs),
    once: flags.bool("once"),
    verbose: flags.bool("verbose"),
    allow: cidrs("allow"),
    deny: cidrs("deny"),
    rateLimit: flags.int("rate-limit", 0, 100_000_000, d.rateLimit),
    firstByteTimeoutMs: flags.duration("first-byte-timeout", d.firstByteTimeoutMs),
    drainTimeoutMs: flags.duration("drain-timeout", d.drainTimeoutMs),
    tlsHandshakeTimeoutMs: flags.duration("handshake-timeout", d.tlsHandshakeTimeoutMs),
    tls,
    maxTestMemory: byteSize(flags, "max-test-memory", d.maxTestMemory),
    allowUdpFromAnyIp: flags.bool("allow-udp-from-any-ip"),
    ...(flags.has("engine") && { engine: flags.choice("engine", ENGINE_CHOICES, "auto") }),
  };
}

function tlsFiles(flags: Flags, proto: string): { certFile: string; keyFile: string } | undefined {
  if (!flags.bool("tls")) {
    for (const name of ["cert", "key", "handshake-timeout"]) flags.requires(name, "tls");
    return undefined;
  }
  if (proto !== "tcp" && proto !== "both") {
    flags.fail(`'--tls' runs over TCP, not '--proto ${proto}'`);
  }
  const certFile = flags.string("cert") ??
    flags.fail("'--tls' needs '--cert FILE' (a PEM certificate chain)");
  const keyFile = flags.string("key") ??
    flags.fail("'--tls' needs '--key FILE' (a PEM private key)");
  return { certFile, keyFile };
}

/** A size in bytes with an optional binary unit: `1048576`, `512KiB`, `256MiB`, `1GiB`. */
function byteSize(flags: Flags, name: string, fallback: number): number {
  const text = flags.string(name);
  if (text === undefined) return fallback;
  const match = /^(\d+(?:\.\d+)?)\s*(B|KiB|MiB|GiB)?$/.exec(text);
  const factor = { B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3 }[match?.[2] ?? "B"] ?? 1;
  const bytes = match ? Math.floor(Number(match[1]) * factor) : NaN;
  if (!(bytes >= 1024 * 1024) || bytes > 2 ** 50) {
    return flags.invalid(name, text, "a size from 1MiB, such as 64MiB or 1GiB");
  }
  return bytes;
}

function hostFlag(flags: Flags, given: string): string {
  // '[::1]' is how an IPv6 address is written beside a port; the address is '::1'.
  const host = /^\[([^[\]]*)\]$/.exec(given)?.[1] ?? given;
  if (host === "" || /[\s/]/.test(host)) flags.invalid("host", given, "an IP address or host name");
  // Digits and dots, or a colon, can only be an address: say so, rather than look it up.
  if (
    (/^[\d.]+$/.test(host) || host.includes(":")) &&
    ipFamily(host.split("%")[0] ?? host) === undefined
  ) {
    flags.fail(
      host.includes(":")
        ? `'${given}' is not a valid address: not an IPv6 address`
        : `'${given}' is not a valid address: an IPv4 address is four numbers from 0 to 255`,
    );
  }
  return host;
}

/** With `-4`/`-6`, an address literal of the other family is a usage error. */
function familyMatches(flags: Flags, family: 4 | 6 | undefined, host: string, what: string) {
  const literal = ipFamily(host);
  if (family !== undefined && literal !== undefined && literal !== family) {
    flags.fail(
      `'-${family}' asks for IPv${family} but ${what} '${host}' is an IPv${literal} address`,
    );
  }
}

/** `-4`/`-6`, `--source` and `--source-port` of a client, as endpoint fields (none if not given). */
function clientSide(flags: Flags, hostname: string): ClientSide {
  const family = flags.family();
  familyMatches(flags, family, hostname, "the host");
  const sourceHost = flags.string("source");
  if (sourceHost !== undefined) {
    const sourceFamily = ipFamily(sourceHost) ??
      flags.invalid("source", sourceHost, "an IPv4 or IPv6 address of this host");
    familyMatches(flags, family, sourceHost, "--source");
    const hostFamily = ipFamily(hostname);
    if (hostFamily !== undefined && hostFamily !== sourceFamily) {
      flags.fail(
        `--source '${sourceHost}' is an IPv${sourceFamily} address but the host '${hostname}' is an IPv${hostFamily} address: give both of one family`,
      );
    }
  }
  const sourcePortText = flags.string("source-port");
  const sourcePort = sourcePortText === undefined ? undefined : parsePort(sourcePortText) ??
    flags.invalid("source-port", sourcePortText, "a port from 0 to 65535");
  const source = sourceHost === undefined && sourcePort === undefined ? undefined : {
    ...(sourceHost !== undefined && { hostname: sourceHost }),
    ...(sourcePort !== undefined && { port: sourcePort }),
  };
  return { ...(family !== undefined && { family }), ...(source && { source }) };
}

/** `--source-port` binds one socket: not for many connections at once. */
function sourcePortOnce(flags: Flags, connections: number): number {
  if (connections > 1 && flags.has("source-port")) {
    flags.fail("'--source-port' binds one socket: use it with '--connections 1'");
  }
  return connections;
}

function portFlag(flags: Flags, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  return parsePort(text) ?? flags.invalid("port", text, "a port from 0 to 65535");
}

/** Host and port from `HOST [PORT]`, `HOST:PORT`, `[V6]:PORT` and the `--host`/`--port` flags. */
function target(
  flags: Flags,
  positionals: string[],
  defaultPort = 5050,
): { hostname: string; port: number } {
  if (positionals.length > 2) flags.fail(`Unexpected argument '${positionals[2]}'`);
  let host = flags.string("host");
  let port = flags.string("port");
  const [first, second] = positionals;
  if (first !== undefined) {
    if (host !== undefined) flags.fail(`Give the host once: '${first}' or '--host ${host}'`);
    const split = splitHostPort(first);
    if (!split) return flags.invalid("host", first, "HOST, HOST:PORT or [IPV6]:PORT");
    host = split.host;
    if (split.port !== undefined) {
      if (second !== undefined) flags.fail(`Give the port once: '${first}' or '${second}'`);
      if (port !== undefined) flags.fail(`Give the port once: '${first}' or '--port ${port}'`);
      port = split.port;
    }
  }
  if (second !== undefined) {
    if (port !== undefined) flags.fail(`Give the port once: '${second}' or '--port ${port}'`);
    port = second;
  }
  const fallback = flags.bool("ipv6") ? "::1" : "127.0.0.1";
  return { hostname: hostFlag(flags, host ?? fallback), port: portFlag(flags, port, defaultPort) };
}

function workload(flags: Flags, defaults: { count: number; timeoutMs: number }): ProbeWorkload {
  flags.conflict("count", "duration");
  const durationMs = flags.has("duration") ? flags.duration("duration", 0) : undefined;
  if (durationMs === 0) flags.invalid("duration", flags.string("duration") ?? "0", "more than 0");
  const pingPong = flags.bool("ping-pong");
  if (pingPong) {
    flags.conflict("ping-pong", "rate");
    flags.conflict("ping-pong", "outstanding");
  }
  return {
    count: durationMs === undefined
      ? flags.int("count", 1, Number.MAX_SAFE_INTEGER, defaults.count)
      : undefined,
    durationMs,
    rate: pingPong ? 0 : flags.scaled("rate", 1000),
    size: flags.blockSize("size", PROBE_HEADER_BYTES, PROBE_MAX_BYTES, 64),
    timeoutMs: flags.duration("timeout", defaults.timeoutMs),
    intervalMs: flags.duration("interval-report", 1000),
    outstanding: pingPong ? 1 : flags.int("outstanding", 0, 1_000_000, 0),
  };
}

/** `--report FILE.html` and `--no-chart`, as config fields (none when not given). */
function reportFlags(flags: Flags): { report?: ReportTarget; noChart?: true } {
  const path = flags.string("report");
  if (path !== undefined && (path === "" || path.endsWith("/"))) {
    flags.invalid("report", path, "a file name such as report.html");
  }
  const quote = (a: string) => /^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", `'\\''`)}'`;
  return {
    ...(path !== undefined && {
      report: { path, commandLine: ["netkit", flags.command, ...flags.argv].map(quote).join(" ") },
    }),
    ...(flags.bool("no-chart") && { noChart: true as const }),
  };
}

/**
 * TCP throughput's bytes per write when `--size` is not given: 1 MiB (a bare
 * Deno pair measured 1.13x iperf3 with 1 MiB writes against 1.05x with
 * 128 KiB), less with many streams so that a test of `--parallel 128 --bidir`
 * still fits a server's default test memory: 32 MiB over the streams, at
 * least 128 KiB.
 */
export function tcpDefaultSize(parallel: number): number {
  return Math.min(1 << 20, Math.max(128 * 1024, 2 ** Math.floor(Math.log2((32 << 20) / parallel))));
}

const PROBE_ONLY = ["rate", "outstanding", "ping-pong", "max-loss"];
const THROUGHPUT_ONLY = ["bitrate", "parallel", "reverse", "bidir", "iperf3", "gso"];
const IPERF3_ONLY = ["omit", "iperf3-json"];
const MEASURING = [
  "duration",
  "size",
  "interval-report",
  "json",
  "json-stream",
  "report",
  "no-chart",
  "engine",
];

function buildClient(flags: Flags, positionals: string[]): ClientConfig {
  const proto = flags.proto(["tcp", "udp", "unix"], flags.has("path") ? "unix" : "tcp");
  for (const name of ["source", "source-port", "ipv4", "ipv6"]) {
    flags.conflict(name, "tls");
    flags.conflict(name, "path");
  }
  flags.conflict("probe", "message");
  flags.conflict("probe", "throughput");
  for (const mode of ["probe", "throughput"]) {
    for (const tlsFlag of ["tls", "ca", "insecure"]) flags.conflict(mode, tlsFlag);
  }
  flags.conflict("throughput", "message");
  if (flags.bool("ping-pong") && !flags.has("probe")) flags.fail("'--ping-pong' needs '--probe'");
  if (flags.bool("throughput")) {
    for (const name of [...PROBE_ONLY, "connections", "interval", "count"]) {
      flags.conflict("throughput", name);
    }
    flags.conflict("reverse", "bidir");
    flags.conflict("throughput", "source-port");
    if (proto === "unix") {
      flags.fail("'--throughput' runs over TCP or UDP: use '--proto tcp' or '--proto udp'");
    }
    const iperf3 = flags.bool("iperf3");
    if (!iperf3) { for (const name of IPERF3_ONLY) flags.requires(name, "iperf3"); }
    flags.conflict("iperf3", "report");
    const { hostname, port } = target(flags, positionals, iperf3 ? 5201 : 5050);
    const durationMs = flags.duration("duration", 10_000);
    if (durationMs <= 0) flags.invalid("duration", flags.string("duration") ?? "0", "more than 0");
    const omitMs = flags.duration("omit", 0);
    if (iperf3) {
      // iperf3 agrees durations in whole seconds.
      for (const [name, ms] of [["duration", durationMs], ["omit", omitMs]] as const) {
        if (ms % 1000 !== 0) {
          flags.invalid(name, flags.string(name) ?? "", "whole seconds with --iperf3");
        }
      }
      if (flags.bool("iperf3-json") && !flags.bool("json")) {
        flags.fail("'--iperf3-json' needs '--json'");
      }
    }
    const gso = flags.bool("gso");
    flags.conflict("gso", "iperf3");
    flags.conflict("engine", "iperf3");
    if (gso && proto !== "udp") flags.fail("'--gso' segments UDP sends: use it with '--proto udp'");
    if (gso && flags.bool("reverse")) {
      flags.fail(
        "'--gso' segments the client's sends, and with '--reverse' the client only receives",
      );
    }
    const bitrateText = flags.string("bitrate");
    // UDP has no congestion control: like iperf3, pace it at 1 Mbit/s unless told otherwise.
    const bitrate = bitrateText === undefined
      ? (proto === "udp" ? UDP_DEFAULT_BITRATE : 0)
      : parseScaled(bitrateText) ??
        flags.invalid(
          "bitrate",
          bitrateText,
          "bits per second such as 0 (unlimited), 500k, 100M or 1.5G",
        );
    return {
      command: "client",
      action: "throughput",
      plan: {
        endpoint: { transport: "tcp", hostname, port, ...clientSide(flags, hostname) },
        proto,
        direction: flags.bool("reverse") ? "down" : flags.bool("bidir") ? "bidir" : "up",
        parallel: flags.int("parallel", 1, 128, 1),
        durationMs,
        size: proto === "udp"
          ? flags.blockSize("size", UDP_HEADER_BYTES, PROBE_MAX_BYTES, 1400)
          : flags.blockSize(
            "size",
            1,
            4 * 1024 * 1024,
            tcpDefaultSize(flags.int("parallel", 1, 128, 1)),
          ),
        bitrate,
        ...(bitrateText === undefined && proto === "udp" && { bitrateIsDefault: true }),
        intervalMs: flags.duration("interval-report", 1000),
        timeoutMs: flags.duration("timeout", 5000),
        engine: flags.choice("engine", ENGINE_CHOICES, "auto"),
        ...(gso && { gso: true as const }),
      },
      output: flags.output(),
      ...(reportFlags(flags).report && { report: reportFlags(flags).report }),
      ...(iperf3 && { iperf3: { omitMs, json: flags.bool("iperf3-json") } }),
      ...(flags.bool("verbose") && { verbose: true }),
    };
  }
  for (const name of [...THROUGHPUT_ONLY, ...IPERF3_ONLY]) flags.requires(name, "throughput");
  if (flags.bool("probe")) {
    flags.conflict("probe", "connections");
    flags.conflict("probe", "interval");
    if (proto === "unix") {
      flags.fail("'--probe' runs over TCP or UDP: use '--proto tcp' or '--proto udp'");
    }
    const { hostname, port } = target(flags, positionals);
    return {
      command: "client",
      action: "probe",
      endpoint: {
        transport: proto,
        hostname,
        port,
        ...clientSide(flags, hostname),
      } satisfies IpEndpoint,
      workload: workload(flags, { count: 1000, timeoutMs: 2000 }),
      output: flags.output(),
      ...reportFlags(flags),
      ...(flags.bool("verbose") && { verbose: true }),
      maxLossPercent: maxLoss(flags),
      engine: flags.choice("engine", ENGINE_CHOICES, "auto"),
    };
  }
  for (const name of PROBE_ONLY) flags.requires(name, "probe");
  // UDP messages go through an engine too (the native one hears ICMP port unreachable).
  const udpMessage = flags.has("message") && proto === "udp";
  for (const name of MEASURING) {
    if (name === "engine" && udpMessage) continue;
    if (flags.has(name)) flags.fail(`'--${name}' needs '--probe' or '--throughput'`);
  }
  let endpoint: Endpoint;
  if (proto === "unix") {
    flags.conflict("path", "host");
    flags.conflict("path", "port");
    if (positionals.length > 0) {
      flags.fail(`Unexpected argument '${positionals[0]}' with a Unix socket`);
    }
    const path = flags.string("path") ?? flags.fail("'--proto unix' needs '--path SOCKET'");
    endpoint = { transport: "unix", path };
  } else {
    if (flags.has("path")) flags.fail(`'--path' is for Unix sockets, not '--proto ${proto}'`);
    const { hostname, port } = target(flags, positionals);
    endpoint = { transport: proto, hostname, port, ...clientSide(flags, hostname) };
  }
  const timeoutMs = flags.duration("timeout", 5000);
  const verbose = flags.bool("verbose");
  let tls: ClientTls | undefined;
  if (flags.bool("tls")) {
    if (proto !== "tcp") flags.fail(`'--tls' runs over TCP, not '--proto ${proto}'`);
    tls = { caFile: flags.string("ca"), insecure: flags.bool("insecure") };
    flags.conflict("ca", "insecure");
  } else {
    flags.requires("ca", "tls");
    flags.requires("insecure", "tls");
  }
  const text = flags.string("message");
  if (text === undefined) {
    for (const name of ["count", "interval", "connections"]) flags.requires(name, "message");
    return { command: "client", action: "pipe", endpoint, tls, timeoutMs, verbose };
  }
  if (text === "") flags.invalid("message", text, "at least one character");
  const message = new TextEncoder().encode(text);
  if (proto === "udp" && message.length > PROBE_MAX_BYTES) {
    flags.invalid("message", `${text.slice(0, 16)}…`, `at most ${PROBE_MAX_BYTES} bytes for UDP`);
  }
  return {
    command: "client",
    action: "message",
    endpoint,
    tls,
    message,
    count: flags.int("count", 1, Number.MAX_SAFE_INTEGER, 1),
    intervalMs: flags.duration("interval", 0),
    connections: sourcePortOnce(flags, flags.int("connections", 1, 100_000, 1)),
    timeoutMs,
    verbose,
    ...(udpMessage && { engine: flags.choice("engine", ENGINE_CHOICES, "auto") }),
  };
}

/** Lab flags are the arguments before `--`; the netkit command line follows it. */
function labFlagArgs(rest: string[]): string[] {
  const dashes = rest.indexOf("--");
  return dashes < 0 ? rest : rest.slice(0, dashes);
}

/** `5`, `5%` or `0.5%`: a share of packets, more than 0 and less than 100. */
function percentFlag(flags: Flags, name: string): number | undefined {
  const text = flags.string(name);
  if (text === undefined) return undefined;
  const match = /^(\d+(?:\.\d+)?)%?$/.exec(text.trim());
  const value = match ? Number(match[1]) : NaN;
  if (!(value > 0 && value < 100)) {
    return flags.invalid(name, text, "a percentage above 0 and below 100, such as 2% or 0.5%");
  }
  return value;
}

/** The impairment flags of `compare` (rate flag `--link-rate`) or `lab` (`--rate`). */
function labImpairment(flags: Flags, rateFlag: "rate" | "link-rate"): LabImpairment {
  const duration = (name: string) => {
    if (!flags.has(name)) return undefined;
    const ms = flags.duration(name, 0);
    if (ms <= 0) flags.invalid(name, flags.string(name) ?? "0", "a duration above 0, such as 20ms");
    return ms;
  };
  flags.requires("jitter", "delay");
  flags.requires("reorder", "delay");
  const rateText = flags.string(rateFlag);
  const rateBps = rateText === undefined ? undefined : parseScaled(rateText);
  if (rateText !== undefined && !(rateBps !== undefined && rateBps >= 8000)) {
    flags.invalid(rateFlag, rateText, "bits per second of 8k or more, such as 500k, 20M or 1G");
  }
  const i: LabImpairment = {
    lossPercent: percentFlag(flags, "loss"),
    delayMs: duration("delay"),
    jitterMs: duration("jitter"),
    reorderPercent: percentFlag(flags, "reorder"),
    duplicatePercent: percentFlag(flags, "duplicate"),
    rateBps,
  };
  return Object.fromEntries(Object.entries(i).filter(([, v]) => v !== undefined)) as LabImpairment;
}

const LAB_COMMANDS = ["server", "client", "compare"];

function buildLab(flags: Flags, positionals: string[], rest: string[]): LabConfig {
  const dashes = rest.indexOf("--");
  if (positionals.length > 0) {
    flags.fail(`Unexpected argument '${positionals[0]}': put '--' before the command`);
  }
  const args = dashes < 0 ? [] : rest.slice(dashes + 1);
  const inner = args[0];
  if (inner === undefined) {
    flags.fail(
      "Give the command to run after '--', e.g. 'netkit lab --loss 5% -- client --probe --proto udp'",
    );
  }
  if (!LAB_COMMANDS.includes(inner)) {
    flags.fail(`Cannot run '${inner}' in the lab: expected ${LAB_COMMANDS.join(", ")} after '--'`);
  }
  const parsed = parseCommandLine(args); // the inner command's own usage errors, up front
  if (parsed.command === "compare" && parsed.impairment !== undefined) {
    flags.fail("Give the impairments once: to 'netkit lab', or to 'netkit compare' on its own");
  }
  return {
    command: "lab",
    impairment: labImpairment(flags, "rate"),
    args,
    inside: flags.bool("lab-inside"),
    ...(flags.bool("verbose") && { verbose: true }),
  };
}

function buildCompare(flags: Flags, positionals: string[], argv: string[]): CompareConfig {
  const remote = positionals.length > 0;
  const tuned = ["count", "duration", "rate", "size", "outstanding", "timeout", "ping-pong"].some(
    (f) => flags.has(f),
  );
  const impaired = labImpairment(flags, "link-rate");
  const lab = hasImpairment(impaired);
  if (lab && remote) {
    flags.fail(
      "Impairment flags build a private lab path with its own server: drop HOST and PORT, or the impairments",
    );
  }
  return {
    command: "compare",
    target: remote ? target(flags, positionals) : undefined,
    workload: remote || tuned ? workload(flags, { count: 10_000, timeoutMs: 2000 }) : undefined,
    intervalMs: flags.has("interval-report") ? flags.duration("interval-report", 1000) : undefined,
    output: flags.output(),
    ...reportFlags(flags),
    ...(flags.bool("verbose") && { verbose: true }),
    maxLossPercent: maxLoss(flags),
    ...(lab && { impairment: impaired, labInside: flags.bool("lab-inside"), argv }),
    engine: flags.choice("engine", ENGINE_CHOICES, "auto"),
  };
}

/** `--max-loss PERCENT`: a percentage from 0 to 100 (a trailing % is allowed). */
function maxLoss(flags: Flags): number | undefined {
  const text = flags.string("max-loss");
  if (text === undefined) return undefined;
  const n = /^\d+(\.\d+)?%?$/.test(text) ? Number(text.replace(/%$/, "")) : NaN;
  if (!(n >= 0 && n <= 100)) flags.invalid("max-loss", text, "a percentage from 0 to 100");
  return n;
}

const UDP_ONLY_IMPAIRMENTS = ["loss", "reorder", "duplicate", "corrupt"];
const TCP_ONLY_IMPAIRMENTS = ["stall-after", "reset-after", "close-after"];

/** The flag that sets impairment `name` for `direction`: `--up-NAME`, else `--NAME`. */
function impairmentFlag(flags: Flags, direction: "up" | "down", name: string): string | undefined {
  const prefixed = `${direction}-${name}`;
  if (flags.has(prefixed)) return prefixed;
  return flags.has(name) ? name : undefined;
}

function impairment(flags: Flags, direction: "up" | "down"): Impairment {
  const flag = (name: string) => impairmentFlag(flags, direction, name);
  const percent = (name: string): number => {
    const f = flag(name);
    if (f === undefined) return 0;
    const text = flags.string(f)!;
    return parsePercent(text) ??
      flags.invalid(f, text, "a percentage from 0% to 100%, e.g. 5% or 0.5%");
  };
  const duration = (name: string): number | undefined => {
    const f = flag(name);
    return f === undefined ? undefined : flags.duration(f, 0);
  };
  const bytes = (name: string): number | undefined => {
    const f = flag(name);
    if (f === undefined) return undefined;
    const text = flags.string(f)!;
    return parseByteSize(text) ??
      flags.invalid(f, text, "a byte count such as 65536, 64KiB, 10MB or 1GB");
  };
  const rateFlag = flag("rate");
  const stallAfter = bytes("stall-after");
  const resetAfter = bytes("reset-after");
  const closeAfterMs = duration("close-after");
  if (stallAfter !== undefined && resetAfter !== undefined) {
    flags.fail(
      `'--stall-after' and '--reset-after' cannot both apply to the ${direction} direction`,
    );
  }
  return {
    loss: percent("loss"),
    duplicate: percent("duplicate"),
    reorder: percent("reorder"),
    corrupt: percent("corrupt"),
    delayMs: duration("delay") ?? 0,
    jitterMs: duration("jitter") ?? 0,
    rate: rateFlag === undefined ? 0 : flags.scaled(rateFlag, 0),
    ...(stallAfter !== undefined && { stallAfter }),
    ...(resetAfter !== undefined && { resetAfter }),
    ...(closeAfterMs !== undefined && { closeAfterMs }),
  };
}

function buildRelay(flags: Flags, positionals: string[]): RelayConfig {
  if (positionals.length < 2) {
    flags.fail(
      `'netkit relay' needs LISTEN and TARGET, e.g. 'netkit relay tcp:8080 tcp:127.0.0.1:80'`,
    );
  }
  if (positionals.length > 2) flags.fail(`Unexpected argument '${positionals[2]}'`);
  const address = (text: string, role: "listen" | "target"): RelayEndpoint => {
    const parsed = parseRelayAddress(text, role);
    if (typeof parsed === "string") {
      flags.fail(
        `Invalid ${
          role === "listen" ? "LISTEN" : "TARGET"
        }: ${parsed} (forms: ${RELAY_ADDRESS_FORMS})`,
      );
    }
    return parsed;
  };
  const listen = address(positionals[0]!, "listen");
  const target = address(positionals[1]!, "target");
  const udp = listen.transport === "udp";
  if (udp !== (target.transport === "udp")) {
    flags.fail(
      `A relay joins stream transports (tcp, tls, unix) to each other, or udp to udp: not ${listen.transport} to ${target.transport}`,
    );
  }
  const given = (name: string) =>
    ["", "up-", "down-"].map((p) => p + name).filter((f) => flags.has(f));
  if (udp) {
    for (const name of TCP_ONLY_IMPAIRMENTS) {
      const [f] = given(name);
      if (f) {
        flags.fail(
          `'--${f}' is a TCP toxic: a UDP relay has no connection to stall, reset or close`,
        );
      }
    }
    if (flags.has("first-byte-timeout")) {
      flags.fail(
        "'--first-byte-timeout' applies to stream relays; UDP sessions use '--idle-timeout'",
      );
    }
  } else {
    if (flags.has("rate-limit")) {
      flags.fail("'--rate-limit' applies to UDP relays: a stream relay back-pressures instead");
    }
    for (const name of UDP_ONLY_IMPAIRMENTS) {
      const [f] = given(name);
      if (f) {
        flags.fail(
          `'--${f}' is for UDP: a TCP relay terminates TCP and cannot drop, duplicate, reorder or corrupt segments; for TCP under packet loss use 'netkit compare --loss' (kernel loss)`,
        );
      }
    }
    if (flags.has("keep-order")) {
      flags.fail("'--keep-order' is for UDP: a stream relay always keeps order");
    }
  }
  let tls: RelayConfig["tls"];
  if (listen.transport === "tls") {
    const certFile = flags.string("cert") ??
      flags.fail("'tls:' LISTEN needs '--cert FILE' (a PEM certificate chain)");
    const keyFile = flags.string("key") ??
      flags.fail("'tls:' LISTEN needs '--key FILE' (a PEM private key)");
    tls = { certFile, keyFile };
  } else {
    for (const name of ["cert", "key"]) {
      if (flags.has(name)) flags.fail(`'--${name}' needs a 'tls:' LISTEN, e.g. tls:8443`);
    }
  }
  let targetTls: RelayConfig["targetTls"];
  if (target.transport === "tls") {
    flags.conflict("ca", "insecure");
    targetTls = { caFile: flags.string("ca"), insecure: flags.bool("insecure") };
  } else {
    for (const name of ["ca", "insecure"]) {
      if (flags.has(name)) {
        flags.fail(`'--${name}' needs a 'tls:' TARGET, e.g. tls:example.test:443`);
      }
    }
  }
  const cidrs = (name: string): Cidr[] =>
    flags.strings(name).map((text) =>
      parseCidr(text) ??
        flags.invalid(name, text, "an IPv4 or IPv6 address or network such as 10.0.0.0/8 or ::1")
    );
  const queueText = flags.string("queue");
  const queueBytes = queueText === undefined ? 1 << 20 : parseByteSize(queueText) ??
    flags.invalid("queue", queueText, "a byte count such as 65536, 256KiB or 1MB");
  if (queueBytes < 1) flags.invalid("queue", queueText ?? "0", "1 byte or more");
  return {
    command: "relay",
    listen,
    target,
    maxConns: flags.int("max-conns", 1, 1_000_000, 1024),
    idleTimeoutMs: flags.duration("idle-timeout", udp ? 60_000 : 0),
    firstByteTimeoutMs: flags.duration("first-byte-timeout", udp ? 0 : 30_000),
    connectTimeoutMs: flags.duration("timeout", 5000),
    allow: cidrs("allow"),
    deny: cidrs("deny"),
    rateLimit: flags.int("rate-limit", 0, 100_000_000, 0),
    tls,
    targetTls,
    up: impairment(flags, "up"),
    down: impairment(flags, "down"),
    seed: flags.int("seed", 0, 0xffffffff, crypto.getRandomValues(new Uint32Array(1))[0]!),
    queueBytes,
    keepOrder: flags.bool("keep-order"),
    verbose: flags.bool("verbose"),
    output: flags.bool("json") ? "json" : "text",
  };
}

function buildScan(flags: Flags, positionals: string[]): ScanConfig {
  if (positionals.length < 2) {
    flags.fail("'netkit scan' needs HOST and PORTS, e.g. 'netkit scan 127.0.0.1 22,80,8000-8100'");
  }
  if (positionals.length > 2) flags.fail(`Unexpected argument '${positionals[2]}'`);
  const host = positionals[0]!;
  if (host === "" || /[\s/\[\]]/.test(host)) {
    flags.fail(`Invalid HOST '${host}': expected an IP address or host name`);
  }
  const ports = parsePortList(positionals[1]!);
  if (typeof ports === "string") flags.fail(`Invalid PORTS: ${ports}`);
  const proto = flags.proto(["tcp", "udp"], "tcp");
  if (proto !== "udp" && flags.has("payload")) {
    flags.fail("'--payload' is for UDP: add '--proto udp'");
  }
  if (proto !== "udp" && flags.has("engine")) {
    flags.fail("'--engine' moves UDP (TCP runs on Deno's sockets): add '--proto udp'");
  }
  const timeoutMs = flags.duration("timeout", 1000);
  if (timeoutMs <= 0) flags.invalid("timeout", flags.string("timeout") ?? "0", "more than 0");
  return {
    command: "scan",
    host,
    proto,
    ports,
    concurrency: flags.int("concurrency", 1, 10_000, 100),
    rate: flags.scaled("rate", 0),
    timeoutMs,
    payload: new TextEncoder().encode(flags.string("payload") ?? ""),
    ...(proto === "udp" && { engine: flags.choice("engine", ENGINE_CHOICES, "auto") }),
    verbose: flags.bool("verbose"),
    output: flags.bool("json") ? "json" : "text",
  };
}
