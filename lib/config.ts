/**
 * The typed configuration each command runs from. `lib/cli/parse.ts` builds
 * these from flags; commands never look at raw flags.
 *
 * @example
 * ```ts
 * import { serverDefaults } from "./config.ts";
 *
 * const config = serverDefaults([{ transport: "tcp", hostname: "127.0.0.1", port: 0 }]);
 * config.mode = "discard";
 * ```
 *
 * @module
 */

import type { Cidr } from "./acl.ts";
import type { Endpoint, IpEndpoint, TcpEndpoint } from "./address.ts";
import type { ClientTls } from "./client/dial.ts";
import type { EngineChoice } from "./engine/select.ts";
import type { TlsMaterial } from "./tls_files.ts";

/** What a server does with the bytes it receives. */
export type ServerMode = "echo" | "discard" | "chat";

/** How results are printed. */
export type OutputFormat = "text" | "json" | "json-stream";

/** `netkit server`. */
export interface ServerConfig {
  command: "server";
  /** One endpoint per listener (two for `--proto both`: TCP and UDP on one port). */
  endpoints: Endpoint[];
  mode: ServerMode;
  /** Connections served at once; more are closed at once and logged. */
  maxConns: number;
  /** Close a connection idle this long; 0 disables. */
  idleTimeoutMs: number;
  /** Serve one stream client, then exit. */
  once: boolean;
  verbose: boolean;
  /** Only peers in these networks are served (none: everyone). */
  allow: Cidr[];
  /** Peers in these networks are never served. */
  deny: Cidr[];
  /** UDP datagrams per second accepted from one source; 0: no limit. */
  rateLimit: number;
  /** Close echo/discard connections that send nothing this long; 0 disables. */
  firstByteTimeoutMs: number;
  /** On shutdown, how long echoes in flight may finish. */
  drainTimeoutMs: number;
  /** Close a TLS connection whose handshake is not done this long after accept; 0 disables. */
  tlsHandshakeTimeoutMs: number;
  /** Serve TCP over TLS with these PEM files (`pem`: their text, once read at start). */
  tls: { certFile: string; keyFile: string; pem?: TlsMaterial } | undefined;
  /** Bytes all running throughput tests' buffers may take together (one test at most half). */
  maxTestMemory: number;
  /** Accept a throughput test's UDP flows from any IP, not only its control connection's. */
  allowUdpFromAnyIp: boolean;
  /** `--engine`: what serves throughput tests' UDP ports. @default {"auto"} */
  engine?: EngineChoice;
}

/** A server configuration with every option at its default, for the given endpoints. */
export function serverDefaults(endpoints: Endpoint[]): ServerConfig {
  return {
    command: "server",
    endpoints,
    mode: "echo",
    maxConns: 1024,
    idleTimeoutMs: 0,
    once: false,
    verbose: false,
    allow: [],
    deny: [],
    rateLimit: 0,
    firstByteTimeoutMs: 30_000,
    drainTimeoutMs: 5_000,
    tlsHandshakeTimeoutMs: 10_000,
    tls: undefined,
    maxTestMemory: 256 * 1024 * 1024,
    allowUdpFromAnyIp: false,
  };
}

/** `netkit client` with no `--message` or `--probe`: stdin to the socket, the socket to stdout. */
export interface PipeConfig {
  command: "client";
  action: "pipe";
  endpoint: Endpoint;
  /** TLS over TCP (`--tls`). */
  tls: ClientTls | undefined;
  /** Connect timeout, and how long to wait for data after stdin ends. */
  timeoutMs: number;
  verbose: boolean;
}

/** `netkit client --message TEXT`: request/reply exchanges, on one or many connections. */
export interface MessageConfig {
  command: "client";
  action: "message";
  endpoint: Endpoint;
  /** TLS over TCP (`--tls`). */
  tls: ClientTls | undefined;
  message: Uint8Array;
  count: number;
  intervalMs: number;
  connections: number;
  timeoutMs: number;
  verbose: boolean;
  /** `--engine` (UDP only): what moves the datagrams. @default {"auto"} */
  engine?: EngineChoice;
}

/** `--report FILE.html`: where the HTML report goes, and what the page says was run. */
export interface ReportTarget {
  path: string;
  /** The command line as typed, for the page's title. */
  commandLine: string;
  /** Opened before `main.ts` drops `write` (lib/report/file.ts); the report is written through it. */
  file?: Deno.FsFile;
  /** This host's name, read before the drop. */
  host?: string;
}

/** The workload of one probe run (`client --probe` and each half of `compare`). */
export interface ProbeWorkload {
  /** Probes to send; `undefined` when the run is bounded by `durationMs`. */
  count: number | undefined;
  /** Sending time; `undefined` when the run is bounded by `count`. */
  durationMs: number | undefined;
  /** Probes per second; 0 sends as fast as the socket takes them. */
  rate: number;
  /** Bytes per probe, header included. */
  size: number;
  /** How long to wait for the last echoes after the last send. */
  timeoutMs: number;
  /** Interval report period; 0 disables interval lines. */
  intervalMs: number;
  /** Probes in flight at most; 0 means no limit. 1 is a ping-pong. */
  outstanding: number;
}

/** `netkit client --probe`. */
export interface ProbeConfig {
  command: "client";
  action: "probe";
  endpoint: IpEndpoint;
  workload: ProbeWorkload;
  output: OutputFormat;
  /** `--report FILE.html`. */
  report?: ReportTarget;
  /** `--no-chart`: no chart at the end of the text report. */
  noChart?: true;
  /** `-v`: log the permissions kept. */
  verbose?: boolean;
  /** `--max-loss`: loss above this percentage fails the run (exit 1). */
  maxLossPercent: number | undefined;
  /** `--engine`: what moves UDP probes. @default {"auto"} */
  engine?: EngineChoice;
}

/** Which way throughput data flows: up (client → server), down (`--reverse`), or both (`--bidir`). */
export type Direction = "up" | "down" | "bidir";

/** A throughput test to run. */
export interface ThroughputPlan {
  /** The server's TCP address (control, and TCP data). */
  endpoint: TcpEndpoint;
  proto: "tcp" | "udp";
  direction: Direction;
  parallel: number;
  durationMs: number;
  /** TCP: bytes per write; UDP: datagram size. */
  size: number;
  /** Bits per second per stream; 0 = unlimited. */
  bitrate: number;
  /** The bitrate was not asked for: UDP's default (iperf3's 1 Mbit/s), which the report says. */
  bitrateIsDefault?: boolean;
  /** Interval report period; 0 disables interval lines. */
  intervalMs: number;
  /** Connect timeout, and the bound on each setup step. */
  timeoutMs: number;
  /** `--engine`: what moves the client's UDP datagrams. @default {"auto"} */
  engine?: EngineChoice;
  /** `--gso`: UDP sends segmented by the kernel (native engine only). */
  gso?: true;
}

/** `netkit client --throughput`. */
export interface ThroughputConfig {
  command: "client";
  action: "throughput";
  plan: ThroughputPlan;
  output: OutputFormat;
  /** `--report FILE.html`. */
  report?: ReportTarget;
  /** `--iperf3`: speak iperf3's protocol; `omitMs` is `--omit`, `json` is `--iperf3-json`. */
  iperf3?: { omitMs: number; json: boolean };
  /** `-v`: log the permissions kept. */
  verbose?: boolean;
}

/** Any `netkit client` configuration, switched on `action`. */
export type ClientConfig = PipeConfig | MessageConfig | ProbeConfig | ThroughputConfig;

/** `netkit compare`. */
export interface CompareConfig {
  command: "compare";
  /** The echo server to compare against; `undefined` starts one on loopback. */
  target: { hostname: string; port: number } | undefined;
  /** The workload; `undefined` runs the built-in demo phases. */
  workload: ProbeWorkload | undefined;
  /** `--interval-report` when given (the demo phases report no intervals otherwise). */
  intervalMs: number | undefined;
  output: OutputFormat;
  /** `--report FILE.html`. */
  report?: ReportTarget;
  /** `--no-chart`: no chart at the end of the text report. */
  noChart?: true;
  /** `-v`: log the permissions kept. */
  verbose?: boolean;
  /** `--max-loss`: loss above this percentage, either transport, any phase, fails (exit 1). */
  maxLossPercent: number | undefined;
  /** Impairment flags (`--loss`, `--delay`, …): run in a private network namespace (lib/lab/). */
  impairment?: LabImpairment;
  /** The re-executed compare inside the namespace (hidden `--lab-inside`). */
  labInside?: boolean;
  /** The arguments after `compare`, to re-execute inside the namespace. */
  argv?: readonly string[];
  /** `--engine`: what moves the UDP probes. @default {"auto"} */
  engine?: EngineChoice;
}

/**
 * What the kernel does to every packet on the lab's loopback (lib/lab/):
 * each field undefined when not asked for.
 */
export interface LabImpairment {
  /** Percent of TCP and UDP packets dropped each way (nftables). */
  lossPercent?: number;
  /** Added one-way delay in ms (netem). */
  delayMs?: number;
  /** Delay variation in ms (netem; needs a delay). */
  jitterMs?: number;
  /** Percent of packets sent ahead of their turn (netem; needs a delay). */
  reorderPercent?: number;
  /** Percent of packets duplicated (netem). */
  duplicatePercent?: number;
  /** Link rate in bits per second (tbf), shared by both directions of loopback. */
  rateBps?: number;
}

/** `netkit lab IMPAIRMENTS -- COMMAND …`: one netkit command in an impaired namespace. */
export interface LabConfig {
  command: "lab";
  impairment: LabImpairment;
  /** The netkit command line to run inside, e.g. `["client", "--probe", …]`. */
  args: readonly string[];
  /** Set in the process already inside the namespace (hidden `--lab-inside`). */
  inside: boolean;
  /** `-v`: log the permissions kept and each setup command. */
  verbose?: boolean;
}

/** `--help` or `--version`: print text and exit 0. */
export interface TextConfig {
  command: "text";
  text: string;
}

/** Where a relay listens or connects: `tcp:`, `udp:`, `tls:` (TCP with TLS) or `unix:`. */
export type RelayEndpoint =
  | { transport: "tcp" | "udp" | "tls"; hostname: string; port: number }
  | { transport: "unix"; path: string };

/**
 * The impairments of one direction of a relay. Rates are fractions from 0 to 1;
 * UDP takes loss, duplicate, reorder and corrupt; both take delay, jitter and
 * rate; TCP alone takes the byte and time limits (a TCP relay cannot drop segments).
 */
export interface Impairment {
  loss: number;
  duplicate: number;
  reorder: number;
  corrupt: number;
  delayMs: number;
  jitterMs: number;
  /** Bits per second; 0: unlimited. */
  rate: number;
  /** TCP: forward this many bytes, then no more (the connection stays open). */
  stallAfter?: number;
  /** TCP: forward this many bytes, then close both connections at once. */
  resetAfter?: number;
  /** TCP: this long after the connection opened, end this direction (a half-close). */
  closeAfterMs?: number;
}

/** `netkit relay LISTEN TARGET`. */
export interface RelayConfig {
  command: "relay";
  listen: RelayEndpoint;
  target: RelayEndpoint;
  /** Connections (TCP, Unix, TLS) or sessions (UDP) at once; more are refused and counted. */
  maxConns: number;
  /** Close a connection, or expire a UDP session, idle this long; 0 never. */
  idleTimeoutMs: number;
  /** Close a connection through which no byte flowed either way this long; 0 never. */
  firstByteTimeoutMs: number;
  /** Connect (and TLS handshake) timeout toward the target. */
  connectTimeoutMs: number;
  allow: Cidr[];
  deny: Cidr[];
  /** UDP: datagrams per second accepted from one client address; 0: no limit. */
  rateLimit: number;
  /** `tls:` LISTEN: the certificate and key (`pem`: their text, read at start). */
  tls: { certFile: string; keyFile: string; pem?: TlsMaterial } | undefined;
  /** `tls:` TARGET: how to verify it. */
  targetTls: ClientTls | undefined;
  /** Client → target. */
  up: Impairment;
  /** Target → client. */
  down: Impairment;
  /** Seed of the impairments' random draws (printed in the summary). */
  seed: number;
  /** Bytes held at most per direction of each connection or session (delay and rate queues). */
  queueBytes: number;
  /** UDP: jitter keeps order (each datagram leaves no earlier than the one before). */
  keepOrder: boolean;
  verbose: boolean;
  output: OutputFormat;
}

/** `netkit scan HOST PORTS`. */
export interface ScanConfig {
  command: "scan";
  host: string;
  proto: "tcp" | "udp";
  /** In the order given, each once. */
  ports: number[];
  /** Sockets open at once at most. */
  concurrency: number;
  /** Attempts per second at most; 0: no limit. */
  rate: number;
  timeoutMs: number;
  /** UDP: what each probe datagram carries (empty by default). */
  payload: Uint8Array;
  /** `--engine` (UDP): the native engine's connected sockets tell closed ports. @default {"auto"} */
  engine?: EngineChoice;
  verbose: boolean;
  output: OutputFormat;
}

/** Everything `main.ts` can dispatch. */
export type Config =
  | ServerConfig
  | ClientConfig
  | CompareConfig
  | RelayConfig
  | ScanConfig
  | LabConfig
  | TextConfig;
