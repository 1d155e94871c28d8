/**
 * `netkit client --probe` against echo servers nobody here wrote: ncat
 * `--exec /bin/cat` and socat `EXEC:/bin/cat` over TCP, socat `PIPE` over
 * UDP, all on 127.0.0.1. At a moderate rate nothing may be lost, reordered,
 * duplicated or mangled: every probe comes back exactly once, in order. (UDP
 * may lose only what the kernel counted as socket-buffer overflow meanwhile:
 * on an idle machine, nothing.)
 *
 * A test whose peer is not installed is skipped, except where
 * `NETKIT_REQUIRE_PEERS=1` (CI), where it fails instead.
 *
 * @example
 * ```sh
 * deno test -q --no-prompt --allow-all --trace-leaks tests/probe_interop_test.ts
 * ```
 *
 * @module
 */
import { assert, assertEquals } from "@std/assert";
import { runNetkit, skipWithout } from "./support/cli.ts";
import { type Peer, spawnPeer, startOnFreePort, waitForTcp } from "./support/peers.ts";

const HOST = "127.0.0.1";
const COUNT = 1000;
const RATE = 500;
/** A small probe and one that is most of an Ethernet MTU. */
const SIZES = [64, 1000] as const;
/** Hard deadline of a peer process (the probe run takes about 2 s plus the drain). */
const PEER_TIMEOUT_MS = 20000;
/** Hard deadline of one `netkit client --probe` run. */
const RUN_TIMEOUT_MS = 15000;

/** The probe report's JSON, as far as these tests read it. */
interface ProbeJson {
  sent: number;
  received: number;
  lost: number;
  out_of_order: number;
  duplicates: number;
  stale: number;
  malformed: number;
}

/** Probe `proto` `HOST:port` with COUNT probes of `size` bytes at RATE per second. */
async function probe(proto: "tcp" | "udp", port: number, size: number): Promise<ProbeJson> {
  const result = await runNetkit(
    [
      "client",
      "--probe",
      "--proto",
      proto,
      HOST,
      String(port),
      "--count",
      String(COUNT),
      "--rate",
      String(RATE),
      "--size",
      String(size),
      "--timeout",
      "2s",
      "--json",
    ],
    { timeoutMs: RUN_TIMEOUT_MS },
  );
  assertEquals(result.code, 0, `probe failed: ${result.stderr}`);
  return JSON.parse(result.text) as ProbeJson;
}

/**
 * Every probe sent came back once, in order, intact: nothing lost, except
 * (UDP only) up to `overflow` datagrams the kernel counted as dropped for want
 * of socket buffer while the probe ran, see {@linkcode udpBufferDrops}.
 */
function assertEveryProbeEchoedOnceInOrder(report: ProbeJson, peer: Peer, overflow = 0): void {
  const where = `via ${peer.name}: ${JSON.stringify(report)}`;
  assertEquals(report.sent, COUNT, `sent ${where}`);
  assertEquals(report.received + report.lost, report.sent, `received + lost ${where}`);
  if (overflow === 0) {
    assertEquals(report.received, report.sent, `received ${where}`);
    assertEquals(report.lost, 0, `lost ${where}`);
  } else {
    console.warn(`${overflow} udp datagrams overflowed socket buffers on this machine meanwhile`);
    assert(
      report.lost <= overflow,
      `lost ${report.lost}, more than the ${overflow} buffer overflows the kernel counted, ${where}`,
    );
  }
  assertEquals(report.out_of_order, 0, `out of order ${where}`);
  assertEquals(report.duplicates, 0, `duplicates ${where}`);
  assertEquals(report.stale, 0, `stale ${where}`);
  assertEquals(report.malformed, 0, `malformed ${where}`);
}

/**
 * UDP datagrams this machine's kernel has dropped for want of socket buffer
 * (`/proc/net/snmp`: InErrors, which includes RcvbufErrors, plus
 * SndbufErrors), summed over every socket of the network namespace. At 500/s
 * a receiver stalled for ~200 ms (a heavily loaded machine) overflows its
 * buffer: the datagrams are then really lost, and the kernel says so. A
 * counter shared with every other process can only over-count ours.
 */
async function udpBufferDrops(): Promise<number> {
  const snmp = await Deno.readTextFile("/proc/net/snmp");
  const [names, values] = snmp.split("\n").filter((l) => l.startsWith("Udp: "))
    .map((l) => l.split(/\s+/).slice(1));
  assert(names && values, `no Udp lines in /proc/net/snmp:\n${snmp}`);
  const field = (name: string) => Number(values[names.indexOf(name)] ?? NaN);
  const drops = field("InErrors") + field("SndbufErrors");
  assert(Number.isFinite(drops), `no Udp InErrors or SndbufErrors in /proc/net/snmp`);
  return drops;
}

/**
 * Wait until the kernel lists a UDP socket bound to 127.0.0.1:`port` (Linux
 * `/proc/net/udp`), without sending it anything: the socat echo below serves
 * only the first peer that sends to it, so a readiness datagram would take
 * its place. Retries with a growing backoff, like the helpers in peers.ts.
 */
async function waitForUdpSocket(port: number, peer: Peer, timeoutMs = 5000): Promise<void> {
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, "0")}`;
  const until = performance.now() + timeoutMs;
  for (let pause = 5;; pause = Math.min(pause * 2, 100)) {
    if (peer.exited) throw new Error(`${peer.name} exited before binding: ${peer.errors()}`);
    const table = await Deno.readTextFile("/proc/net/udp");
    if (table.split("\n").some((line) => line.trim().split(/\s+/)[1] === local)) return;
    if (performance.now() >= until) {
      throw new Error(`${peer.name}: no udp socket on ${HOST}:${port} after ${timeoutMs} ms`);
    }
    await new Promise((resolve) => setTimeout(resolve, pause));
  }
}

/** TCP echo servers: the probe connects once and never half-closes, so each serves it to the end. */
const TCP_ECHOES = [
  {
    // ncat --exec loses data only after a client half-close, which the probe never does.
    peer: "ncat",
    label: "ncat -l -k --exec /bin/cat",
    args: (port: number) => ["-l", "-k", "--exec", "/bin/cat", HOST, String(port)],
  },
  {
    peer: "socat",
    label: "socat TCP-LISTEN,fork EXEC:/bin/cat",
    args: (port: number) => [`TCP4-LISTEN:${port},bind=${HOST},reuseaddr,fork`, "EXEC:/bin/cat"],
  },
] as const;

for (const echo of TCP_ECHOES) {
  for (const size of SIZES) {
    Deno.test({
      name:
        `tcp probe: ${COUNT} probes of ${size} B at ${RATE}/s all echoed once and in order by ${echo.label}`,
      ignore: skipWithout(echo.peer),
      async fn() {
        const { peer, port } = await startOnFreePort(
          "tcp",
          HOST,
          (port) => spawnPeer(echo.peer, echo.args(port), { timeoutMs: PEER_TIMEOUT_MS }),
          (peer, port) => waitForTcp(HOST, port, { peer }),
        );
        await using _peer = peer;
        assertEveryProbeEchoedOnceInOrder(await probe("tcp", port, size), peer);
      },
    });
  }
}

/**
 * The UDP echo: `socat -b SIZE UDP4-LISTEN:PORT PIPE`, without `fork`.
 *
 * - `PIPE` passes each datagram through a pipe, which is a byte stream: when
 *   two datagrams wait, socat reads both out of the pipe at once and sends
 *   them back as one. At 500/s that happened to 10–17% of the probes
 *   (measured: 212 to 346 of 1000 lost, half as many "malformed"
 *   double-size echoes). `-b SIZE` caps every read at one probe, and since
 *   every probe is SIZE bytes, each read from the pipe is exactly one probe.
 *   (`EXEC:/bin/cat` coalesces the same way, in cat as well.)
 * - `fork` hands each new peer address to a child, and the first datagrams of
 *   a new peer can reach the parent's fresh listening socket before the
 *   child's socket is connected: several children then echo one client, and
 *   their echoes interleave (seen: 3 socat children for one probe client, and
 *   1–2 echoes out of order per run). Without `fork` one socat serves the
 *   first peer, the probe, alone; readiness is therefore read from the
 *   kernel's socket table rather than by an echo.
 * - `UDP-RECVFROM,fork` is worse still: a child per datagram, racing (measured
 *   with `-b64 … PIPE`: 570 and 667 of 1000 lost, 22 and 30 out of order).
 */
for (const size of SIZES) {
  Deno.test({
    name:
      `udp probe: ${COUNT} probes of ${size} B at ${RATE}/s all echoed once and in order by socat UDP-LISTEN PIPE`,
    ignore: skipWithout("socat") || Deno.build.os !== "linux", // readiness from /proc/net/udp
    async fn() {
      const { peer, port } = await startOnFreePort(
        "udp",
        HOST,
        (port) =>
          spawnPeer(
            "socat",
            [`-b${size}`, "-T5", `UDP4-LISTEN:${port},bind=${HOST},reuseaddr`, "PIPE"],
            { timeoutMs: PEER_TIMEOUT_MS },
          ),
        (peer, port) => waitForUdpSocket(port, peer),
      );
      await using _peer = peer;
      const dropsBefore = await udpBufferDrops();
      const report = await probe("udp", port, size);
      assertEveryProbeEchoedOnceInOrder(report, peer, (await udpBufferDrops()) - dropsBefore);
    },
  });
}
