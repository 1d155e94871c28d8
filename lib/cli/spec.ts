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
  /** Left out of the help's flag list (a note describes the family, e.g. `--up-…`). */
  hidden?: boolean;
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
    default: "64 (probe), 1 MiB (TCP throughput; less above --parallel 32), 1400 (UDP throughput)",
    help:
      "Bytes per probe (24 to 65507, header included), per throughput write or datagram; K or M count in 1024s, as iperf3's -l (128K, 1M)",
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

/** Impairments of a relay, each also as `--up-NAME` and `--down-NAME` (see {@linkcode withDirections}). */
const IMPAIRMENT_FLAGS: Readonly<Record<string, FlagSpec>> = {
  loss: { type: "string", value: "P%", help: "UDP: drop this share of datagrams, e.g. 5%" },
  delay: {
    type: "string",
    value: "DUR",
    help: "Hold every datagram or chunk this long, e.g. 30ms",
  },
  jitter: {
    type: "string",
    value: "DUR",
    help:
      "Add a uniform ±DUR to each delay; UDP datagrams may then overtake (see --keep-order), TCP keeps order",
  },
  reorder: {
    type: "string",
    value: "P%",
    help: "UDP: hold this share of datagrams back until the next one has left",
  },
  duplicate: { type: "string", value: "P%", help: "UDP: send this share of datagrams twice" },
  corrupt: {
    type: "string",
    value: "P%",
    help: "UDP: flip one random bit in this share of datagrams",
  },
  rate: {
    type: "string",
    value: "RATE",
    help: "Bits per second, with k, M or G (decimal), e.g. 1M; UDP past --queue is tail-dropped",
  },
  "stall-after": {
    type: "string",
    value: "BYTES",
    help: "TCP: forward this many bytes, then nothing more (the connection stays open), e.g. 1MB",
  },
  "reset-after": {
    type: "string",
    value: "BYTES",
    help: "TCP: forward this many bytes, then close both connections at once, e.g. 10MB",
  },
  "close-after": {
    type: "string",
    value: "DUR",
    help:
      "TCP: this long after a connection opens, end it (with --up-/--down-: half-close that way only)",
  },
};

/** The per-direction flags, listed in the help's notes (wrapped), as the flag list omits them. */
function directionNotes(): string[] {
  const names = Object.keys(IMPAIRMENT_FLAGS).flatMap((n) => [`--up-${n}`, `--down-${n}`]);
  const lines: string[] = [];
  let line = "Per direction:";
  for (const name of names) {
    if (line.length + name.length + 2 > 100) {
      lines.push(line + ",");
      line = " ";
    } else if (!line.endsWith(":")) line += ",";
    line += ` ${name}`;
  }
  return [...lines, line + "."];
}

/** Each impairment flag, then its `--up-` and `--down-` forms (hidden from the flag list). */
function withDirections(flags: Readonly<Record<string, FlagSpec>>): Record<string, FlagSpec> {
  const out: Record<string, FlagSpec> = { ...flags };
  for (const [name, flag] of Object.entries(flags)) {
    out[`up-${name}`] = { ...flag, help: `${flag.help} (client → target only)`, hidden: true };
    out[`down-${name}`] = { ...flag, help: `${flag.help} (target → client only)`, hidden: true };
  }
  return out;
}

/**
 * The impairments of a lab path (lib/lab/): the kernel applies them to every
 * packet on a private loopback. The link rate's flag is `--rate` in `lab` and
 * `--link-rate` in `compare` (where `--rate` is the probe rate).
 */
const LAB_IMPAIRMENT_FLAGS: Readonly<Record<string, FlagSpec>> = {
  loss: {
    type: "string",
    value: "P%",
    help: "Drop P% of TCP and UDP packets each way (nftables; TCP handshakes exempt)",
  },
  delay: { type: "string", value: "DUR", help: "Delay every packet DUR each way (netem)" },
  jitter: {
    type: "string",
    value: "DUR",
    help: "Vary the delay by up to DUR (netem; needs --delay)",
  },
  reorder: {
    type: "string",
    value: "P%",
    help: "Send P% of packets without the delay, ahead of others (netem; needs --delay)",
  },
  duplicate: { type: "string", value: "P%", help: "Duplicate P% of packets (netem)" },
};

const LINK_RATE_HELP =
  "Cap the path at RATE bits/s, k, M or G (tbf); both directions of loopback share it";

const LAB_INSIDE: FlagSpec = {
  type: "boolean",
  hidden: true,
  help: "Internal: this process is already inside the lab's namespace",
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
      engine: {
        type: "string",
        value: "NAME",
        default: "auto",
        help:
          "What receives and sends throughput tests' UDP: auto (native where it loads, else deno; -v says why), native (Linux: libc recvmmsg, a 4 MiB receive buffer; TCP tests' fast streams read in fuller reads through a raised receive low-water mark) or deno",
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
      iperf3: {
        type: "boolean",
        help:
          "Throughput: speak iperf3's protocol, against an iperf3 server (port 5201 by default)",
      },
      omit: {
        type: "string",
        short: "O",
        value: "DUR",
        default: "0",
        help: "Throughput with --iperf3: leave out this first warm-up (whole seconds, iperf3 -O)",
      },
      "iperf3-json": {
        type: "boolean",
        help: "Throughput with --iperf3 --json: print the document in iperf3's -J shape",
      },
      gso: {
        type: "boolean",
        help:
          "UDP throughput: the kernel cuts the client's sends into datagrams (GSO, native engine); on loopback it bypasses per-packet work, so the report labels it",
      },
      engine: {
        type: "string",
        value: "NAME",
        default: "auto",
        help:
          "What moves UDP datagrams (probe, throughput, --message): auto (native where it loads, else deno; -v says why), native (Linux: libc sendmmsg/recvmmsg, larger socket buffers, a connected socket that hears ICMP port unreachable from any host; a TCP throughput client that receives reads fast streams in fuller reads through a raised receive low-water mark) or deno (every OS)",
      },
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
        help:
          "Log the permissions kept, the UDP engine (and why), connects and each reply to stderr",
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
      "UDP probe, --message and compare: on the native engine (Linux), ICMP port unreachable from any host ends the run with 'nothing listens on udp HOST:PORT' (exit 3, as a refused TCP connect; a listener that goes away mid-run leaves the partial report). On --engine deno only this host's own addresses can be told; elsewhere silence is 'no reply at all' (exit 5).",
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
      ...LAB_IMPAIRMENT_FLAGS,
      "link-rate": { type: "string", value: "RATE", help: LINK_RATE_HELP },
      "lab-inside": LAB_INSIDE,
      verbose: {
        type: "boolean",
        short: "v",
        help: "Log the permissions kept and the UDP engine (and why) to stderr",
      },
      engine: {
        type: "string",
        value: "NAME",
        default: "auto",
        help:
          "What moves UDP datagrams: auto (native where it loads, else deno; -v says why), native (Linux: libc sendmmsg/recvmmsg, larger socket buffers) or deno (every OS)",
      },
      help: HELP_FLAG,
    },
    examples: [
      "netkit compare                               # demo: embedded server on loopback",
      "netkit compare --loss 2%                     # over a lossy kernel path (Linux)",
      "netkit compare --loss 1% --link-rate 20M --count 5000",
      "netkit compare 127.0.0.1 --rate 20k --count 100000   # port 5050",
      "netkit compare ::1 5050 --duration 5s --json",
    ],
    notes: [
      "With no HOST it starts its own TCP+UDP echo server on loopback and runs two phases: a paced one and an unpaced one that overruns UDP's receive buffer.",
      "Serve one for a remote compare with: netkit server --proto both",
      "Impairment flags (no HOST) run server and probes in a private network namespace (see 'netkit lab --help').",
    ],
  },
  lab: {
    name: "lab",
    usage: "netkit lab [--loss P%] [--delay DUR] [--rate RATE] [impairments] -- COMMAND [flags]",
    summary:
      "Run one netkit command in a private network namespace whose loopback the kernel impairs (Linux).",
    flags: {
      ...LAB_IMPAIRMENT_FLAGS,
      rate: { type: "string", value: "RATE", help: LINK_RATE_HELP },
      "lab-inside": LAB_INSIDE,
      verbose: {
        type: "boolean",
        short: "v",
        help: "Log the permissions kept and the lab's setup to stderr",
      },
      help: HELP_FLAG,
    },
    examples: [
      "netkit lab --loss 5% -- client --probe --proto udp 127.0.0.1 5050",
      "netkit lab --rate 5M -- client --throughput 127.0.0.1 5050 --duration 5s",
      "netkit lab --loss 1% --delay 20ms -- compare --count 2000",
    ],
    notes: [
      "Needs Linux with root or unprivileged user namespaces, iproute2 (ip, tc, nstat) and nftables.",
      "For 'client', the lab also runs 'netkit server --proto both' on 127.0.0.1:5050 inside it.",
      "Nothing changes outside: the namespace, its rules and qdiscs vanish when the command exits.",
      "Prints the kernel's counters from inside the namespace (TCP retransmissions, UDP",
      "receive-buffer errors, packets the loss rule dropped) on stderr at the end.",
    ],
  },
  relay: {
    name: "relay",
    usage: "netkit relay LISTEN TARGET [flags]",
    summary:
      "Forward a port (TCP, UDP, Unix, TLS) to a target, with netem-like impairments for UDP and toxiproxy-like toxics for TCP.",
    flags: {
      "max-conns": {
        type: "string",
        short: "m",
        value: "N",
        default: "1024",
        help: "Connections (UDP: client sessions) at once; more are refused and counted",
      },
      "idle-timeout": {
        type: "string",
        value: "DUR",
        default: "0 (never) for streams, 60s for UDP sessions",
        help: "Close a connection, or expire a UDP session, with no byte either way this long",
      },
      "first-byte-timeout": {
        type: "string",
        value: "DUR",
        default: "30s",
        help:
          "Close a connection (or TLS handshake) through which nothing flowed either way; 0 never",
      },
      timeout: {
        type: "string",
        short: "w",
        value: "DUR",
        default: "5s",
        help: "Connect (and TLS handshake) timeout toward the target",
      },
      allow: {
        type: "string",
        multiple: true,
        value: "CIDR",
        help: "Only relay clients in CIDR (repeatable; IPv4 or IPv6)",
      },
      deny: {
        type: "string",
        multiple: true,
        value: "CIDR",
        help: "Never relay clients in CIDR (repeatable; wins over --allow)",
      },
      "rate-limit": {
        type: "string",
        value: "PPS",
        default: "0 (none)",
        help: "UDP: datagrams per second accepted from one client address; the rest are dropped",
      },
      cert: { type: "string", value: "FILE", help: "tls: LISTEN: certificate chain, PEM" },
      key: { type: "string", value: "FILE", help: "tls: LISTEN: private key, PEM" },
      ca: {
        type: "string",
        value: "FILE",
        help: "tls: TARGET: trust this CA certificate (PEM) too",
      },
      insecure: {
        type: "boolean",
        short: "k",
        help: "tls: TARGET: do not verify the target's certificate",
      },
      ...withDirections(IMPAIRMENT_FLAGS),
      queue: {
        type: "string",
        value: "BYTES",
        default: "1MiB",
        help:
          "Bytes held at most per direction of each connection or session (delay and rate queues); UDP past it is tail-dropped, TCP stops reading",
      },
      "keep-order": {
        type: "boolean",
        help: "UDP: jitter keeps order (a datagram never leaves before the one ahead of it)",
      },
      seed: {
        type: "string",
        value: "N",
        default: "random, printed in the summary",
        help: "Seed of the impairments' random draws: the same seed, the same decisions",
      },
      verbose: {
        type: "boolean",
        short: "v",
        help:
          "Log the permissions kept, each connection or session opened and closed, with its bytes up and down and why it ended",
      },
      json: {
        type: "boolean",
        short: "J",
        help:
          "Print the final counters as one JSON document on stdout ('listening on' goes to stderr)",
      },
      help: HELP_FLAG,
    },
    examples: [
      "netkit relay tcp:8080 tcp:10.0.0.5:80                 # TCP port forward (IPv4/IPv6)",
      "netkit relay udp:5353 udp:[::1]:53                    # UDP, replies routed back to each client",
      "netkit relay unix:/tmp/app.sock tcp:127.0.0.1:5432    # Unix ↔ TCP, either way",
      "netkit relay tls:8443 tcp:127.0.0.1:8080 --cert c.pem --key k.pem   # TLS termination",
      "netkit relay tcp:8443 tls:example.test:443 --ca ca.pem               # TLS origination",
      "netkit relay udp:6000 udp:127.0.0.1:5050 --loss 5% --delay 30ms --jitter 10ms --reorder 2% --duplicate 1% --seed 7",
      "netkit relay tcp:6001 tcp:127.0.0.1:5050 --delay 50ms --rate 1M --reset-after 10MB",
      "netkit relay udp:6000 udp:127.0.0.1:5050 --up-loss 10% --down-delay 20ms",
    ],
    notes: [
      "LISTEN and TARGET: tcp:PORT (listen on 0.0.0.0), tcp:HOST:PORT, tcp:[V6]:PORT, udp:…, tls:…",
      "(TCP with TLS: termination when listening, origination as target) or unix:PATH. Stream",
      "transports (tcp, tls, unix) relay to each other; udp relays to udp.",
      "Streams: one target connection per client, bytes copied as they come both ways, a half-close",
      "passed on each way; a reset or error on either side closes both. Deno reports a reset seen on a",
      "read as an end of data, so the relay first passes it on as a half-close and closes both sides",
      "(counting a reset) when it next writes toward the side that reset; and it cannot send a reset",
      "itself, so the other side sees its connection closed.",
      "UDP: one session per client address and port, with its own socket toward the target; replies go",
      "back to that client.",
      "Every impairment flag also comes as --up-NAME (client → target) and --down-NAME (target → client);",
      "without a prefix it applies both ways, and a prefixed flag overrides it for its direction.",
      ...directionNotes(),
      "A TCP relay terminates TCP, so it cannot drop segments: TCP takes --delay, --jitter (order kept),",
      "--rate, --stall-after, --reset-after and --close-after; for TCP under real packet loss use",
      "'netkit compare --loss' (kernel loss). UDP takes every impairment but the three TCP toxics.",
      "Prints 'listening on PROTO ADDRESS -> TARGET' once ready (the real port for port 0).",
      "Ctrl-C or SIGTERM stops it and prints the counters per direction on stderr (--json: on stdout).",
    ],
  },
  scan: {
    name: "scan",
    usage: "netkit scan [--proto tcp|udp] HOST PORTS [flags]",
    summary:
      "Check which ports of a host are open (like nc -zv): TCP open/closed/filtered, UDP open/closed/open|filtered (closed on the native engine).",
    flags: {
      proto: { type: "string", value: "tcp|udp", default: "tcp", help: "Transport" },
      udp: { type: "boolean", short: "u", help: "UDP: the same as --proto udp (nc -u)" },
      timeout: {
        type: "string",
        short: "w",
        value: "DUR",
        default: "1s",
        help: "How long a port may stay silent before it is filtered (UDP: open|filtered)",
      },
      concurrency: {
        type: "string",
        short: "c",
        value: "N",
        default: "100",
        help: "Sockets open at once at most (1 to 10000)",
      },
      rate: {
        type: "string",
        value: "N",
        default: "0 (no limit)",
        help: "Attempts started per second at most, with k or M (decimal)",
      },
      payload: {
        type: "string",
        value: "TEXT",
        help: "UDP: send TEXT in each probe datagram (empty by default)",
      },
      engine: {
        type: "string",
        value: "NAME",
        default: "auto",
        help:
          "UDP: auto (native where it loads, else deno; -v says why), native (Linux: a connected socket per port hears ICMP port unreachable, so a port can be closed) or deno (every OS: open or open|filtered only)",
      },
      verbose: {
        type: "boolean",
        short: "v",
        help: "Print every port, not only the open ones; log the permissions kept",
      },
      json: {
        type: "boolean",
        short: "J",
        help: "Print one JSON document with every port scanned and the summary",
      },
      help: HELP_FLAG,
    },
    examples: [
      "netkit scan 127.0.0.1 22,80,443,5000-5100",
      "netkit scan ::1 1-1024 --concurrency 200 --timeout 500ms --json",
      "netkit scan --proto udp 127.0.0.1 53,5050 --payload ping",
    ],
    notes: [
      "PORTS: ports and ranges, comma-separated (1 to 65535), e.g. 22,80,8000-8100.",
      "TCP: open (connected), closed (refused), filtered (no answer within --timeout, or unreachable).",
      "UDP (as nmap): open (a datagram came back), closed (ICMP port unreachable), filtered (another ICMP unreachable), open|filtered (silence).",
      "Only the native engine (Linux) hears ICMP: its socket per port is connected. Deno's own sockets do not report it, so with --engine deno (or where the native engine does not load) a closed UDP port shows as open|filtered.",
      "Hosts rate-limit ICMP (Linux: about one a second per peer after a burst): on a large UDP range, use --rate, or some closed ports show as open|filtered.",
      "Prints one line per open port on stdout (-v: every port), then a summary on stderr.",
      "Exit status: 0 when at least one port is open, 1 when none is (as nc -z), 2 for a usage error.",
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
 * Hidden flags (a family a note describes) are left out of the flag list.
 */
export function renderHelp(spec: CommandSpec, width: number = outputWidth()): string {
  const shown = Object.entries(spec.flags).filter(([, flag]) => !(flag as FlagSpec).hidden);
  const rows = shown.map(([name, flag]) => {
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
