/**
 * The flags of every command, with their defaults and help, in one table, and
 * the help text rendered from it.
 *
 * @example
 * ```ts
 * import { COMMANDS, renderHelp } from "./spec.ts";
 *
 * console.log(renderHelp(COMMANDS.server));
 * ```
 *
 * @module
 */

import { outputWidth, wrap } from "../wrap.ts";

/** One flag: its type, short form, value name, default and help line. */
export interface FlagSpec {
  type: "string" | "boolean";
  /** Repeatable: every occurrence is kept. */
  multiple?: boolean;
  /** One-letter alias, e.g. `v` for `-v`. */
  short?: string;
  /** Name of the value in help, e.g. `DUR`. */
  value?: string;
  /** The default, as shown in help. */
  default?: string;
  help: string;
}

/** A command: name, usage, flags and examples. */
export interface CommandSpec {
  name: string;
  usage: string;
  summary: string;
  flags: Readonly<Record<string, FlagSpec>>;
  examples: readonly string[];
  /** Notes printed after the flags. */
  notes?: readonly string[];
}

/** The version printed by `netkit --version`. */
export const VERSION = "0.1.0";

const HELP_FLAG: FlagSpec = { type: "boolean", short: "h", help: "Show this help" };

const PROBE_FLAGS: Readonly<Record<string, FlagSpec>> = {
  count: {
    type: "string",
    value: "N",
    default: "1 with --message, 1000 with --probe",
    help: "Messages or probes to send",
  },
  duration: {
    type: "string",
    short: "t",
    value: "DUR",
    default: "10s with --throughput",
    help: "Send probes for this long instead of --count; the length of a throughput test",
  },
  rate: {
    type: "string",
    value: "PPS",
    default: "1000",
    help:
      "Probes per second, spread evenly, with k or M (decimal), e.g. 5k; 0 sends as fast as possible",
  },
  size: {
    type: "string",
    short: "l",
    value: "BYTES",
    default: "64 (probe), 131072 (TCP throughput), 1400 (UDP throughput)",
    help: "Bytes per probe (24 to 65507, header included), per throughput write or datagram",
  },
  outstanding: {
    type: "string",
    value: "N",
    default: "0 (no limit)",
    help: "Probes in flight at most; 1 is a ping-pong (one probe, wait for its echo, next)",
  },
  "max-loss": {
    type: "string",
    value: "PERCENT",
    help: "Exit 1 when more than PERCENT of the probes are lost (a delivery gate for CI)",
  },
  "interval-report": {
    type: "string",
    short: "i",
    value: "DUR",
    default: "1s",
    help: "Print a progress line this often; 0 turns them off",
  },
  json: {
    type: "boolean",
    short: "J",
    help: "Print one JSON document at the end (or on a usage error), nothing else on stdout",
  },
  "json-stream": {
    type: "boolean",
    help:
      'Print one JSON object per line as it runs: {"event": "interval"|"end"|"error", "data": …}',
  },
  report: {
    type: "string",
    value: "FILE.html",
    help:
      "Also write the results as one self-contained HTML page with charts (opens offline; no network)",
  },
  "no-chart": {
    type: "boolean",
    help: "Leave out the RTT chart that ends a probe or compare text report on a terminal",
  },
};

/** Every command's flags. `main.ts` dispatches on these names. */
export const COMMANDS = {
  server: {
    name: "server",
    usage:
      "netkit server [PORT] [--proto tcp|udp|unix|both] [--host H] [--port P] [--path SOCKET] [flags]",
    summary:
      "Serve echo, discard or chat over TCP, UDP, both, or a Unix socket, to many clients at once.",
    flags: {
      proto: {
        type: "string",
        value: "tcp|udp|unix|both",
        default: "tcp",
        help: "Transport; 'both' serves TCP and UDP on one port",
      },
      host: {
        type: "string",
        value: "H",
        default: "0.0.0.0 (:: with -6)",
        help: "Address to listen on ('::' for IPv6)",
      },
      udp: { type: "boolean", short: "u", help: "Serve UDP: the same as --proto udp (nc -u)" },
      ipv4: { type: "boolean", short: "4", help: "IPv4 only: listen on 0.0.0.0 by default" },
      ipv6: { type: "boolean", short: "6", help: "IPv6: listen on :: by default" },
      port: {
        type: "string",
        short: "p",
        value: "P",
        default: "5050",
        help: "Port (or give it as the one argument: netkit server 7); 0 lets the OS choose",
      },
      path: {
        type: "string",
        short: "U",
        value: "SOCKET",
        help: "Unix socket path (implies --proto unix)",
      },
      mode: {
        type: "string",
        value: "echo|discard|chat",
        default: "echo",
        help: "echo returns every byte (RFC 862); discard drops them (RFC 863); chat relays lines",
      },
      "max-conns": {
        type: "string",
        short: "m",
        value: "N",
        default: "1024",
        help: "Connections served at once; more are closed at once and logged",
      },
      "idle-timeout": {
        type: "string",
        value: "DUR",
        default: "0 (never)",
        help: "Close connections idle this long",
      },
      "first-byte-timeout": {
        type: "string",
        value: "DUR",
        default: "30s",
        help:
          "Close an echo or discard connection (or TLS handshake) that sends nothing this long; 0 never",
      },
      "drain-timeout": {
        type: "string",
        value: "DUR",
        default: "5s",
        help: "On Ctrl-C or SIGTERM, let echoes in flight finish this long before closing",
      },
      allow: {
        type: "string",
        multiple: true,
        value: "CIDR",
        help: "Only serve peers in CIDR (repeatable; IPv4 or IPv6, e.g. 10.0.0.0/8, ::1)",
      },
      deny: {
        type: "string",
        multiple: true,
        value: "CIDR",
        help: "Never serve peers in CIDR (repeatable; wins over --allow)",
      },
      "rate-limit": {
        type: "string",
        value: "PPS",
        default: "0 (none)",
        help:
          "UDP: datagrams per second accepted from one source address, on every UDP port (throughput tests' too); the rest are dropped",
      },
      "max-test-memory": {
        type: "string",
        value: "SIZE",
        default: "256MiB",
        help:
          "Buffers all throughput tests may hold at once (one test at most half); more is refused. Bytes, KiB, MiB or GiB",
      },
      "allow-udp-from-any-ip": {
        type: "boolean",
        help:
          "Accept a throughput test's UDP flows from another IP than its control connection's (clients behind NAT with several egress addresses); the flow must still prove it receives",
      },
      tls: { type: "boolean", help: "Serve TCP over TLS (needs --cert and --key)" },
      cert: { type: "string", value: "FILE", help: "TLS certificate chain, PEM" },
      key: { type: "string", value: "FILE", help: "TLS private key, PEM" },
      "handshake-timeout": {
        type: "string",
        value: "DUR",
        default: "10s",
        help:
          "With --tls, close a connection whose handshake is not done this long after accept; 0 never",
      },
      once: { type: "boolean", help: "Serve one TCP or Unix client, then exit" },
      verbose: {
        type: "boolean",
        short: "v",
        help:
          "Log the permissions kept, each connect, disconnect (peer, bytes in/out, duration) and datagram peer to stderr, with an ISO time",
      },
      help: HELP_FLAG,
    },
    examples: [
      "netkit server                              # TCP echo on 0.0.0.0:5050",
      "netkit server -u 7                         # UDP echo on port 7",
      "netkit server --proto both --port 0 -v     # TCP and UDP echo, OS-chosen port",
      "netkit server --proto unix --path /tmp/nk.sock --mode chat",
      "netkit server --tls --cert cert.pem --key key.pem --allow 10.0.0.0/8 --deny 10.0.0.66",
    ],
    notes: [
      "Prints 'listening on PROTO ADDRESS' on stdout once ready (the real port when --port 0; 'tls' for a TLS listener).",
      "Ctrl-C or SIGTERM says how many connections it drains, then stops with a one-line summary on stderr; a second Ctrl-C stops at once.",
    ],
  },
  client: {
    name: "client",
    usage: "netkit client [--proto tcp|udp|unix] [HOST [PORT] | HOST:PORT | [V6]:PORT] [flags]",
    summary:
      "Pipe stdin to a socket and the socket to stdout (like nc), exchange messages on many connections, or probe delivery.",
    flags: {
      proto: { type: "string", value: "tcp|udp|unix", default: "tcp", help: "Transport" },
      udp: { type: "boolean", short: "u", help: "UDP: the same as --proto udp (nc -u)" },
      ipv4: { type: "boolean", short: "4", help: "Use IPv4 only (resolve the host to IPv4)" },
      ipv6: { type: "boolean", short: "6", help: "Use IPv6 only (resolve the host to IPv6)" },
      host: { type: "string", value: "H", default: "127.0.0.1", help: "Server address or name" },
      port: { type: "string", short: "p", value: "P", default: "5050", help: "Server port" },
      path: {
        type: "string",
        short: "U",
        value: "SOCKET",
        help: "Unix socket path (implies --proto unix)",
      },
      source: {
        type: "string",
        short: "s",
        value: "ADDR",
        help: "Bind the local side to ADDR, an address of this host (nc -s; TCP and UDP)",
      },
      "source-port": {
        type: "string",
        value: "PORT",
        help: "Bind the local side to PORT (nc -p; not with --throughput or --connections)",
      },
      message: {
        type: "string",
        value: "TEXT",
        help: "Send TEXT (as given, no newline added) and print each reply on its own line",
      },
      interval: {
        type: "string",
        value: "DUR",
        default: "0",
        help: "Pause between messages",
      },
      connections: {
        type: "string",
        short: "c",
        value: "N",
        default: "1",
        help: "Concurrent connections, each doing the --message exchange; prints a summary",
      },
      timeout: {
        type: "string",
        short: "w",
        value: "DUR",
        default: "5s; 2s with --probe",
        help:
          "Connect timeout; wait for a reply or, after stdin ends, for more data; with --probe, how long to wait for the last echoes",
      },
      probe: {
        type: "boolean",
        help: "Send numbered, timestamped probes to an echo server and report delivery",
      },
      "ping-pong": {
        type: "boolean",
        help:
          "Probe latency one probe at a time (--probe --rate 0 --outstanding 1), like sockperf ping-pong",
      },
      throughput: {
        type: "boolean",
        help: "Measure throughput against a netkit server (one-way; see --reverse, --bidir)",
      },
      ...PROBE_FLAGS,
      bitrate: {
        type: "string",
        short: "b",
        value: "RATE",
        default: "1M for UDP (as iperf3), 0 (unlimited) for TCP",
        help:
          "Throughput: bits per second per stream, with k, M or G (decimal), e.g. 100M; 0 unlimited",
      },
      parallel: {
        type: "string",
        short: "P",
        value: "N",
        default: "1",
        help: "Throughput: parallel streams (TCP connections or UDP flows), 1 to 128",
      },
      reverse: {
        type: "boolean",
        short: "R",
        help:
          "Throughput: the server sends, over the connections the client opened (works behind NAT)",
      },
      bidir: { type: "boolean", help: "Throughput: both directions at once" },
      tls: { type: "boolean", help: "Connect over TLS (TCP; verifies the server's certificate)" },
      ca: { type: "string", value: "FILE", help: "TLS: trust this CA certificate (PEM) too" },
      insecure: {
        type: "boolean",
        short: "k",
        help: "TLS: do not verify the server's certificate (like ncat --ssl without --ssl-verify)",
      },
      verbose: {
        type: "boolean",
        short: "v",
        help: "Log the permissions kept, connects and each reply to stderr",
      },
      help: HELP_FLAG,
    },
    examples: [
      "echo hello | netkit client 127.0.0.1 5050  # like nc",
      "netkit client --proto udp [::1]:5050 --message ping --count 3 --interval 200ms",
      "netkit client --connections 200 --message hi",
      "netkit client --probe --proto udp 127.0.0.1 5050 --rate 5000 --count 50000 --json",
      "netkit client --probe --ping-pong --proto udp 127.0.0.1 5050 --count 100000",
      "netkit client --throughput 127.0.0.1 5050 --duration 10s --parallel 4",
      "netkit client --throughput --proto udp 127.0.0.1 5050 --bitrate 1G --size 1400 --reverse",
    ],
    notes: [
      "Replies to --message are read as the same number of bytes as the message (an echo).",
      "UDP: each read from stdin is sent as one datagram (at most 65,507 bytes).",
    ],
  },
  compare: {
    name: "compare",
    usage: "netkit compare [HOST [PORT]] [probe flags]",
    summary:
      "Send the same probes over TCP and over UDP to one echo server and show, side by side, what arrived, in what order, and how late.",
    flags: {
      ...PROBE_FLAGS,
      // Defaults as compare applies them: with HOST or any workload flag, one custom phase;
      // with neither, the demo's two phases (see DEMO_PHASES in commands/compare.ts).
      count: {
        type: "string",
        value: "N",
        default: "10000; the demo: 3000, then 100000",
        help: "Probes to send over each transport",
      },
      duration: {
        type: "string",
        short: "t",
        value: "DUR",
        help: "Send probes for this long over each transport instead of --count",
      },
      rate: {
        type: "string",
        value: "PPS",
        default: "1000; the demo: 2000, then 0",
        help:
          "Probes per second, spread evenly, with k or M (decimal), e.g. 5k; 0 sends as fast as possible",
      },
      size: {
        type: "string",
        short: "l",
        value: "BYTES",
        default: "64",
        help: "Bytes per probe (24 to 65507, header included)",
      },
      "interval-report": {
        type: "string",
        short: "i",
        value: "DUR",
        default: "1s; the demo: 0",
        help: "Print a progress line this often; 0 turns them off",
      },
      "ping-pong": {
        type: "boolean",
        help:
          "Probe latency one probe at a time (--rate 0 --outstanding 1), like sockperf ping-pong",
      },
      timeout: {
        type: "string",
        short: "w",
        value: "DUR",
        default: "2s; the demo: 1s",
        help: "How long to wait for the last echoes",
      },
      verbose: { type: "boolean", short: "v", help: "Log the permissions kept to stderr" },
      help: HELP_FLAG,
    },
    examples: [
      "netkit compare                               # demo: embedded server on loopback",
      "netkit compare 127.0.0.1 --rate 20k --count 100000   # port 5050",
      "netkit compare ::1 5050 --duration 5s --json",
    ],
    notes: [
      "With no HOST it starts its own TCP+UDP echo server on loopback and runs two phases: a paced one and an unpaced one that overruns UDP's receive buffer.",
      "Serve one for a remote compare with: netkit server --proto both",
    ],
  },
} as const satisfies Record<string, CommandSpec>;

/** A command name. */
export type CommandName = keyof typeof COMMANDS;

/** The top-level help, wrapped to `width` columns. */
export function renderTopHelp(width: number = outputWidth()): string {
  return [
    ...wrap(
      `netkit ${VERSION}: echo, chat, netcat-style piping and TCP-vs-UDP delivery measurement.`,
      width,
    ),
    "",
    "Usage: netkit COMMAND [flags]",
    "",
    "Commands:",
    ...Object.values(COMMANDS).flatMap((c) =>
      wrap(c.summary, width, `  ${c.name.padEnd(9)} `, " ".repeat(12))
    ),
    "",
    "Flags:",
    "  -h, --help     Show help (also: netkit COMMAND --help)",
    "  --version      Print the version",
    "",
    "Examples:",
    "  netkit server --proto both --port 5050",
    "  echo hi | netkit client 127.0.0.1 5050",
    "  netkit compare",
  ].join("\n");
}

/**
 * The help of one command: usage, flags with defaults, notes and examples,
 * wrapped to `width` columns (a flag's help continues under its own column; an
 * example too long for a line continues on the next after a shell `\\`).
 */
export function renderHelp(spec: CommandSpec, width: number = outputWidth()): string {
  const rows = Object.entries(spec.flags).map(([name, flag]) => {
    const short = flag.short ? `-${flag.short}, ` : "    ";
    const left = `${short}--${name}${flag.value ? ` ${flag.value}` : ""}`;
    const right = flag.default ? `${flag.help} (default: ${flag.default})` : flag.help;
    return [left, right] as const;
  });
  const column = Math.max(...rows.map(([left]) => left.length)) + 4;
  return [
    ...wrap(`Usage: ${spec.usage}`, width, "", "       "),
    "",
    ...wrap(spec.summary, width),
    "",
    "Flags:",
    ...rows.flatMap(([left, right]) =>
      wrap(right, width, `  ${left}`.padEnd(column), " ".repeat(column))
    ),
    ...(spec.notes ? ["", ...spec.notes.flatMap((note) => wrap(note, width))] : []),
    "",
    "Examples:",
    ...spec.examples.flatMap((e) => wrapCommand(e, width)),
  ].join("\n");
}

/**
 * An example command line, continued with ` \\` where it passes `width`,
 * breaking before a flag, never between a flag and its value.
 */
function wrapCommand(example: string, width: number): string[] {
  if (example.length + 2 <= width) return [`  ${example}`];
  // An aligned '# comment' gives up its alignment before the line is broken.
  const gap = /^(.*?\S)( {2,})(# .*)$/.exec(example);
  if (gap) {
    const [, command, spaces, comment] = gap as unknown as [string, string, string, string];
    const over = example.length + 2 - width;
    if (spaces.length - over >= 2) {
      return [`  ${command}${" ".repeat(spaces.length - over)}${comment}`];
    }
  }
  const groups: string[] = [];
  for (const word of example.split(" ").filter((w) => w !== "")) {
    const last = groups.length - 1;
    const joins = !word.startsWith("-") && last >= 0 && /^-[^\s\uE000]+$/.test(groups[last] ?? "");
    if (joins) groups[last] += `\uE000${word}`;
    else groups.push(word);
  }
  const lines = wrap(groups.join(" "), width - 2, "  ", "      ");
  return lines.map((line, i) =>
    (i < lines.length - 1 ? `${line} \\` : line).replaceAll("\uE000", " ")
  );
}
