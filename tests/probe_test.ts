/**
 * End-to-end correctness of `netkit client --probe`: the counts it reports
 * (sent, received, lost, out of order, duplicates, malformed) must equal
 * exactly what an impairing UDP relay injected, RTTs must reflect injected
 * delay, TCP framing must survive arbitrary re-chunking of the byte stream,
 * and pacing must hold the requested rate.
 *
 * Everything runs on loopback through the real CLI; results are read from
 * `--json` on stdout.
 *
 * @module
 */

import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { runNetkit, startServer } from "./support/cli.ts";
import type { DirectionCounters } from "../lib/relay/counters.ts";
import type { PathDecision } from "../lib/relay/datagram_path.ts";
import { startUdpRelay, type UdpRelay, type UdpRelayOptions } from "../lib/relay/udp.ts";
import { mulberry32 } from "../lib/prng.ts";
import { type EngineName, engineTest } from "./support/engines.ts";

/** The product's UDP relay on 127.0.0.1:0 in front of the server on `port`. */
function startRelay(port: number, options: Omit<UdpRelayOptions, "listen" | "target"> = {}) {
  return startUdpRelay({
    listen: { hostname: LOCALHOST, port: 0 },
    target: { hostname: LOCALHOST, port },
    ...options,
  });
}

/** A scripted reorder's wait for its successor: longer than any test, so it never flushes alone. */
const HOLD_FOR_SUCCESSOR_MS = 60_000;

/** The four counts these tests assert, per direction, from the relay's counters. */
function relayStats(relay: UdpRelay) {
  const four = (d: DirectionCounters) => ({
    forwarded: d.datagramsOut,
    dropped: d.dropped,
    duplicated: d.duplicated,
    reordered: d.reordered,
  });
  return { toServer: four(relay.counters.up), toClient: four(relay.counters.down) };
}

const LOCALHOST = "127.0.0.1";
/** Upper bound on any single CLI run here; a hang fails the test instead of stalling it. */
const RUN_TIMEOUT_MS = 20_000;

/** The `--json` document of one probe run (the fields these tests read). */
interface ProbeJson {
  transport: "tcp" | "udp";
  size: number;
  sent: number;
  received: number;
  lost: number;
  out_of_order: number;
  duplicates: number;
  stale: number;
  malformed: number;
  rtt_ms: Record<"min" | "mean" | "p50" | "p90" | "p99" | "p999" | "max", number | null>;
  rate_pps: number | null;
  engine: string;
  engine_features: { blocking_worker?: true };
  interrupted: boolean;
}

/** Run `netkit client --probe … --json`, require exit 0 and one JSON document on stdout. */
async function probe(proto: "tcp" | "udp", port: number, flags: string[]): Promise<ProbeJson> {
  const result = await runNetkit(
    ["client", "--probe", "--proto", proto, LOCALHOST, String(port), ...flags, "--json"],
    { timeoutMs: RUN_TIMEOUT_MS },
  );
  assertEquals(result.code, 0, `exit ${result.code}: ${result.stderr}`);
  return JSON.parse(result.text) as ProbeJson;
}

/** {@linkcode probe} over UDP on one engine; its JSON must name that engine. */
async function udpProbe(engine: EngineName, port: number, flags: string[]): Promise<ProbeJson> {
  const report = await probe("udp", port, [...flags, "--engine", engine]);
  assertEquals(report.engine, engine);
  return report;
}

/** What a ping-pong's loss tests compare: sent, received, lost, duplicates, malformed. */
function lossCounts(report: ProbeJson) {
  const { sent, received, lost, duplicates, malformed } = report;
  return { sent, received, lost, duplicates, malformed };
}

/** Probe flags for a ping-pong: the next probe leaves only when the last one's echo is back. */
const PING_PONG = ["--rate", "0", "--outstanding", "1"];

/** All `count` probes of `report` came back: none lost or malformed, and round trips measured. */
function assertAllEchoed(report: ProbeJson, count: number): void {
  assertEquals(report.sent, count);
  assertEquals(report.received, count);
  assertEquals(report.lost, 0);
  assertEquals(report.malformed, 0);
  assert(report.rtt_ms.p50 !== null && report.rtt_ms.max !== null);
}

// ---------------------------------------------------------------------------
// UDP through the impairing relay
// ---------------------------------------------------------------------------

engineTest(
  "udp probe counts exactly the drops, duplicates and reorders injected in both directions",
  async (engine) => {
    await using server = await startServer(["--proto", "udp", "--host", LOCALHOST]);
    // Probes go out in order, so toServer index i is probe seq i. The server
    // echoes every datagram it gets, in arrival order, so toClient index j is
    // the j-th datagram the server received — shifted by toServer's drops,
    // duplicates and reorders:
    //
    //   toServer: drop {10, 50}  duplicate {20, 60}  reorder {30, 80}
    //   server receives (toClient index → seq):
    //     0..9   → 0..9
    //     10..19 → 11..20       (seq 10 dropped: everything after shifts down one)
    //     20     → 20           (second copy of the duplicated seq 20)
    //     21..29 → 21..29       (the duplicate shifted everything back up)
    //     30, 31 → 31, 30       (seq 30 held back until seq 31 passed)
    //     32..49 → 32..49
    //     50..59 → 51..60       (seq 50 dropped)
    //     60     → 60           (second copy of seq 60)
    //     61..79 → 61..79
    //     80, 81 → 81, 80       (seq 80 held back until seq 81 passed)
    //     82..199→ 82..199      (200 datagrams in all: 200 − 2 dropped + 2 copies)
    //
    //   toClient: drop {5, 20, 150}  duplicate {100}  reorder {30, 140}
    //     index 5   = seq 5            → lost
    //     index 20  = seq 20's 2nd copy → dropped, so seq 20 arrives once: no duplicate
    //     index 150 = seq 150          → lost
    //     index 100 = seq 100          → arrives twice: 1 duplicate
    //     index 30  = seq 31, held until index 31 (seq 30) passed: the client sees
    //                 30, 31 — this reorder undoes toServer's, so no out-of-order
    //     index 140 = seq 140, held until index 141 (seq 141): out of order
    //
    //   Seqs never echoed: 10, 50 (toServer) and 5, 150 (toClient) → lost 4, received 196.
    //   Duplicates: seq 60 (toServer copy, both echoes delivered) + seq 100 → 2.
    //   Out of order: seq 80 (after 81) and seq 140 (after 141) → 2.
    //   Datagrams the client gets: 200 − 3 dropped + 1 copy = 198 = 196 received + 2 duplicates.
    //
    // Each held datagram must wait for its successor however late that comes:
    // with the relay's default 50 ms flush, a client or server stalled that
    // long between two datagrams (CI saw it) lets seq 30 up alone, and the
    // down reorder then shows the client 31 before 30: out of order 3.
    await using relay = startRelay(server.port, {
      up: {
        script: {
          drop: new Set([10, 50]),
          duplicate: new Set([20, 60]),
          reorder: new Set([30, 80]),
        },
        reorderFlushMs: HOLD_FOR_SUCCESSOR_MS,
      },
      down: {
        script: {
          drop: new Set([5, 20, 150]),
          duplicate: new Set([100]),
          reorder: new Set([30, 140]),
        },
        reorderFlushMs: HOLD_FOR_SUCCESSOR_MS,
      },
    });
    const report = await udpProbe(engine, relay.addr.port, [
      "--count",
      "200",
      "--rate",
      "500",
      "--timeout",
      "500ms",
    ]);
    assertEquals(
      {
        sent: report.sent,
        received: report.received,
        lost: report.lost,
        duplicates: report.duplicates,
        out_of_order: report.out_of_order,
        stale: report.stale,
        malformed: report.malformed,
      },
      { sent: 200, received: 196, lost: 4, duplicates: 2, out_of_order: 2, stale: 0, malformed: 0 },
    );
    assertEquals(relayStats(relay), {
      toServer: { forwarded: 200, dropped: 2, duplicated: 2, reordered: 2 },
      toClient: { forwarded: 198, dropped: 3, duplicated: 1, reordered: 2 },
    });
    // Every datagram handed to the client is either a distinct echo or a duplicate.
    assertEquals(relayStats(relay).toClient.forwarded, report.received + report.duplicates);
  },
);

engineTest(
  "udp probe counts match the relay's seeded random drops and duplicates exactly",
  async (engine) => {
    await using server = await startServer(["--proto", "udp", "--host", LOCALHOST]);
    const decisions: Record<"toServer" | "toClient", PathDecision[]> = {
      toServer: [],
      toClient: [],
    };
    await using relay = startRelay(server.port, {
      seed: 20240607,
      up: { loss: 0.05, duplicate: 0.05 },
      down: { loss: 0.05, duplicate: 0.05 },
      onDecision: (direction, d) =>
        decisions[direction === "up" ? "toServer" : "toClient"][d.index] = d,
    });
    const sent = 400;
    const report = await udpProbe(engine, relay.addr.port, [
      "--count",
      String(sent),
      "--rate",
      "1000",
      "--timeout",
      "500ms",
    ]);
    const stats = relayStats(relay);
    // The seed must actually exercise every impairment for this test to mean anything.
    for (const dir of ["toServer", "toClient"] as const) {
      assert(stats[dir].dropped > 0 && stats[dir].duplicated > 0, JSON.stringify(stats));
    }

    // Identities that hold whatever the random choices were (no reordering, no
    // loss outside the relay on loopback at this rate):
    //  - every probe reaches the relay: toServer saw `sent` datagrams;
    //  - the server echoes each datagram forwarded to it, so toClient saw exactly
    //    toServer.forwarded datagrams, each dropped or forwarded (plus copies);
    //  - every datagram forwarded to the client is a distinct echo or a duplicate.
    assertEquals(decisions.toServer.length, sent);
    assertEquals(
      stats.toServer.forwarded,
      sent - stats.toServer.dropped + stats.toServer.duplicated,
    );
    assertEquals(decisions.toClient.length, stats.toServer.forwarded);
    assertEquals(
      stats.toClient.forwarded,
      decisions.toClient.length - stats.toClient.dropped + stats.toClient.duplicated,
    );
    assertEquals(report.received + report.duplicates, stats.toClient.forwarded);

    // Exact expectation, replaying the relay's decisions: toServer index i is
    // seq i; the server's echoes, in order, are each forwarded seq once or twice;
    // toClient index j is the j-th of those echoes.
    const echoed: number[] = [];
    for (const d of decisions.toServer) {
      if (d.dropped) continue;
      echoed.push(d.index);
      if (d.duplicated) echoed.push(d.index);
    }
    const arrivals = new Map<number, number>();
    for (const d of decisions.toClient) {
      if (d.dropped) continue;
      const seq = echoed[d.index]!;
      arrivals.set(seq, (arrivals.get(seq) ?? 0) + (d.duplicated ? 2 : 1));
    }
    const distinct = arrivals.size;
    let duplicates = 0;
    for (const n of arrivals.values()) duplicates += n - 1;
    assertEquals(
      {
        sent: report.sent,
        received: report.received,
        lost: report.lost,
        duplicates: report.duplicates,
        out_of_order: report.out_of_order,
        malformed: report.malformed,
      },
      {
        sent,
        received: distinct,
        lost: sent - distinct,
        duplicates,
        out_of_order: 0,
        malformed: 0,
      },
    );
    // A probe dropped toward the server has no echo at all, so it is always lost.
    assert(report.lost >= stats.toServer.dropped);
  },
);

engineTest("udp probe rtt reflects 30 ms of delay injected on the way back", async (engine) => {
  await using server = await startServer(["--proto", "udp", "--host", LOCALHOST]);
  const delayMs = 30;
  const toleranceMs = 25;
  await using relay = startRelay(server.port, {
    down: { delayMs },
  });
  const report = await udpProbe(engine, relay.addr.port, [
    "--count",
    "50",
    "--rate",
    "100",
    "--timeout",
    "1s",
  ]);
  assertEquals(report.received, 50);
  const { min, p50 } = report.rtt_ms;
  assert(min !== null && min >= delayMs, `min ${min} ms`);
  assert(p50 !== null && p50 >= delayMs && p50 < delayMs + toleranceMs, `p50 ${p50} ms`);
});

engineTest(
  "udp probe with --outstanding 1 is a ping-pong: one probe in flight, every one echoed",
  async (engine) => {
    await using server = await startServer(["--proto", "udp", "--host", LOCALHOST]);
    const order: string[] = [];
    await using relay = startRelay(server.port, {
      onDecision: (direction, d) => order.push(`${direction === "up" ? "S" : "C"}${d.index}`),
    });
    const count = 200;
    const report = await udpProbe(engine, relay.addr.port, [
      "--count",
      String(count),
      ...PING_PONG,
      "--timeout",
      "2s",
    ]);
    assertAllEchoed(report, count);
    // Probe k+1 never left before echo k came back through the relay.
    const expected = Array.from({ length: count }, (_, i) => [`S${i}`, `C${i}`]).flat();
    assertEquals(order, expected);
    // The native engine's ping-pong blocks in libc's recv in a Worker, not on the event loop.
    assertEquals(report.engine_features.blocking_worker === true, engine === "native");
  },
);

engineTest(
  "udp ping-pong counts an echo with corrupt padding and one of the wrong size as malformed; the corrupt one's probe is lost",
  async (engine) => {
    // An echo peer that flips a padding bit of echo 30, and sends echo 60 one byte short
    // followed by the whole echo: 99 of 100 come back whole, two replies are malformed.
    const peer = Deno.listenDatagram({ transport: "udp", hostname: LOCALHOST, port: 0 });
    const serving = (async () => {
      let n = 0;
      try {
        for await (const [data, from] of peer) {
          if (n === 30) data[40]! ^= 0x01;
          if (n === 60) await peer.send(data.subarray(0, data.length - 1), from);
          await peer.send(data, from);
          n++;
        }
      } catch { /* closed */ }
    })();
    try {
      const report = await udpProbe(engine, (peer.addr as Deno.NetAddr).port, [
        ...["--count", "100", "--size", "64", "--timeout", "300ms", ...PING_PONG],
      ]);
      assertEquals(lossCounts(report), {
        sent: 100,
        received: 99,
        lost: 1,
        duplicates: 0,
        malformed: 2,
      });
      assertEquals(report.engine_features.blocking_worker === true, engine === "native");
    } finally {
      peer.close();
      await serving;
    }
  },
);

engineTest(
  "udp ping-pong stopped by SIGINT exits 130 with a report of every probe it sent, marked interrupted",
  async (engine) => {
    await using server = await startServer(["--proto", "udp", "--host", LOCALHOST]);
    const { promise: running, resolve } = Promise.withResolvers<void>();
    await using relay = startRelay(server.port, {
      onDecision: (direction, d) => {
        if (direction === "down" && d.index === 300) resolve();
      },
    });
    // SIGINT once 300 echoes went back: the ping-pong is under way.
    const result = await runNetkit([
      ...["client", "--probe", "--ping-pong", "--proto", "udp", LOCALHOST],
      ...[String(relay.addr.port), "--duration", "20s", "--engine", engine, "--json"],
    ], { interruptWhen: running, timeoutMs: RUN_TIMEOUT_MS });
    assertEquals(result.code, 130, result.stderr);
    const report = JSON.parse(result.text) as ProbeJson;
    assertEquals(report.interrupted, true);
    assert(report.sent >= 300, `sent ${report.sent}`);
    // The echo in flight is waited for: nothing sent goes missing on a Ctrl-C.
    assertEquals(report.received, report.sent);
    assertEquals(report.lost, 0);
  },
);

engineTest(
  "udp ping-pong to a port that never echoes fails with 'No echo' after its timeout (exit 5)",
  async (engine) => {
    // A bound socket that never answers (no ICMP port unreachable either).
    const silent = Deno.listenDatagram({ transport: "udp", hostname: LOCALHOST, port: 0 });
    const port = (silent.addr as Deno.NetAddr).port;
    const started = performance.now();
    let result;
    try {
      result = await runNetkit(
        [
          ...["client", "--probe", "--ping-pong", "--proto", "udp", LOCALHOST, String(port)],
          ...["--count", "10", "--timeout", "300ms", "--engine", engine],
        ],
        { timeoutMs: RUN_TIMEOUT_MS },
      );
    } finally {
      silent.close();
    }
    assertEquals(result.code, 5, result.stderr);
    assertStringIncludes(result.stderr, `No echo from udp ${LOCALHOST}:${port} within 300 ms`);
    assert(performance.now() - started < 10_000, "bounded by the timeout, not hung");
  },
);

engineTest(
  "udp probe --duration 1s --rate 200 sends about 200 probes at about 200 per second",
  async (engine) => {
    await using server = await startServer(["--proto", "udp", "--host", LOCALHOST]);
    const report = await udpProbe(engine, server.port, [
      "--duration",
      "1s",
      "--rate",
      "200",
      "--timeout",
      "1s",
    ]);
    assert(report.sent >= 150 && report.sent <= 250, `sent ${report.sent}`);
    assert(
      report.rate_pps !== null && report.rate_pps >= 160 && report.rate_pps <= 240,
      `rate_pps ${report.rate_pps}`,
    );
    assertEquals(report.received, report.sent);
  },
);

// ---------------------------------------------------------------------------
// TCP through a re-chunking proxy
// ---------------------------------------------------------------------------

/** Counters of one direction through {@linkcode startTcpProxy}. */
interface ProxyDirection {
  bytes: number;
  reads: number;
  writes: number;
  /** Writes that carried bytes from more than one read. */
  coalesced: number;
}

/** A TCP proxy on 127.0.0.1 in front of one server port. */
interface TcpProxy extends AsyncDisposable {
  port: number;
  toServer: ProxyDirection;
  toClient: ProxyDirection;
  /** Most bytes ever read from the client but not yet echoed back by the server. */
  maxInFlight: number;
}

/**
 * Start a TCP proxy to `targetPort`. With `seed`, each direction re-chunks
 * the stream: reads of random size (1..maxChunk bytes) are queued, and a
 * separate writer sends random-sized pieces (1..maxChunk) that split reads and
 * join consecutive ones; otherwise bytes pass through as read.
 */
function startTcpProxy(
  targetPort: number,
  options: { seed?: number; maxChunk?: number } = {},
): TcpProxy {
  const listener = Deno.listen({ hostname: LOCALHOST, port: 0 });
  const maxChunk = options.maxChunk ?? 200;
  const conns = new Set<Deno.Conn>();
  const sessions: Promise<void>[] = [];
  const newDirection = (): ProxyDirection => ({ bytes: 0, reads: 0, writes: 0, coalesced: 0 });
  const proxy = {
    port: (listener.addr as Deno.NetAddr).port,
    toServer: newDirection(),
    toClient: newDirection(),
    maxInFlight: 0,
  };
  const close = (conn: Deno.Conn) => {
    if (!conns.delete(conn)) return;
    try {
      conn.close();
    } catch { /* already closed */ }
  };

  async function pump(
    from: Deno.Conn,
    to: Deno.Conn,
    stats: ProxyDirection,
    random: (() => number) | undefined,
  ): Promise<void> {
    const size = () => random ? 1 + Math.floor(random() * maxChunk) : 65536;
    const queue: Uint8Array[] = [];
    let queued = 0;
    let readerDone = false;
    let wake: (() => void) | undefined;
    const notify = () => {
      const w = wake;
      wake = undefined;
      w?.();
    };
    const reader = (async () => {
      const buf = new Uint8Array(65536);
      try {
        for (;;) {
          const n = await from.read(buf.subarray(0, size()));
          if (n === null) break;
          stats.reads++;
          stats.bytes += n;
          if (stats === proxy.toServer) {
            proxy.maxInFlight = Math.max(
              proxy.maxInFlight,
              proxy.toServer.bytes - proxy.toClient.bytes,
            );
          }
          queue.push(buf.slice(0, n));
          queued += n;
          notify();
        }
      } catch { /* closed */ }
      readerDone = true;
      notify();
    })();
    try {
      for (;;) {
        while (queued === 0 && !readerDone) await new Promise<void>((r) => (wake = r));
        if (queued === 0) break;
        const want = Math.min(size(), queued);
        const out = new Uint8Array(want);
        let off = 0;
        let pieces = 0;
        while (off < want) {
          const head = queue[0]!;
          const take = Math.min(head.length, want - off);
          out.set(head.subarray(0, take), off);
          off += take;
          pieces++;
          if (take === head.length) queue.shift();
          else queue[0] = head.subarray(take);
        }
        queued -= want;
        stats.writes++;
        if (pieces > 1) stats.coalesced++;
        for (let w = 0; w < out.length;) w += await to.write(out.subarray(w));
      }
    } catch { /* closed */ }
    // Either side ending ends the session.
    close(from);
    close(to);
    await reader;
  }

  const accepting = (async () => {
    let session = 0;
    for (;;) {
      let client: Deno.Conn;
      try {
        client = await listener.accept();
      } catch {
        return; // listener closed
      }
      conns.add(client);
      const seed = options.seed === undefined ? undefined : options.seed + 2 * session++;
      sessions.push((async () => {
        let server: Deno.Conn;
        try {
          server = await Deno.connect({ hostname: LOCALHOST, port: targetPort });
        } catch {
          close(client);
          return;
        }
        conns.add(server);
        await Promise.all([
          pump(client, server, proxy.toServer, seed === undefined ? undefined : mulberry32(seed)),
          pump(
            server,
            client,
            proxy.toClient,
            seed === undefined ? undefined : mulberry32(seed + 1),
          ),
        ]);
      })());
    }
  })();

  return Object.assign(proxy, {
    async [Symbol.asyncDispose]() {
      listener.close();
      await accepting;
      for (const conn of [...conns]) close(conn);
      await Promise.all(sessions);
    },
  });
}

Deno.test("tcp probe frames 2,000 probes exactly when the stream is split and coalesced at random", async () => {
  await using server = await startServer(["--proto", "tcp", "--host", LOCALHOST]);
  await using proxy = startTcpProxy(server.port, { seed: 42, maxChunk: 200 });
  const count = 2000;
  const size = 100;
  const report = await probe("tcp", proxy.port, [
    "--size",
    String(size),
    "--count",
    String(count),
    "--rate",
    "0",
    "--timeout",
    "5s",
  ]);
  assertEquals(
    {
      sent: report.sent,
      received: report.received,
      lost: report.lost,
      out_of_order: report.out_of_order,
      duplicates: report.duplicates,
      malformed: report.malformed,
    },
    { sent: count, received: count, lost: 0, out_of_order: 0, duplicates: 0, malformed: 0 },
  );
  // The proxy really did re-chunk: every byte passed both ways in pieces of at
  // most 200 bytes (so at least total / 200 writes each way), and some writes
  // joined bytes of several reads.
  for (const dir of [proxy.toServer, proxy.toClient]) {
    assertEquals(dir.bytes, count * size);
    assert(dir.writes >= (count * size) / 200, JSON.stringify(dir));
    assert(dir.coalesced > 0, JSON.stringify(dir));
  }
});

Deno.test("tcp probe with --outstanding 1 is a ping-pong: one probe in flight, every one echoed", async () => {
  await using server = await startServer(["--proto", "tcp", "--host", LOCALHOST]);
  await using proxy = startTcpProxy(server.port);
  const count = 200;
  const size = 64;
  const report = await probe("tcp", proxy.port, [
    "--count",
    String(count),
    "--size",
    String(size),
    ...PING_PONG,
    "--timeout",
    "2s",
  ]);
  assertAllEchoed(report, count);
  // The client never had more than one probe's bytes unanswered.
  assert(proxy.maxInFlight <= size, `max in flight ${proxy.maxInFlight} bytes`);
  assertEquals(proxy.toServer.bytes, count * size);
});

engineTest(
  "udp probe with --outstanding 1 counts probes the relay dropped as lost and carries on",
  async (engine) => {
    await using server = await startServer(["--proto", "udp", "--host", LOCALHOST]);
    // Each dropped probe holds the window for one --timeout, then is given up
    // on. (Netkit once let its stall watchdog race that wait and fail the run.)
    const drops = [5, 15, 25, 35, 45, 55, 65, 75];
    await using relay = startRelay(server.port, {
      up: { script: { drop: new Set(drops) } },
    });
    const count = 100;
    const report = await udpProbe(engine, relay.addr.port, [
      "--count",
      String(count),
      ...PING_PONG,
      "--timeout",
      "150ms",
    ]);
    assertEquals(
      lossCounts(report),
      {
        sent: count,
        received: count - drops.length,
        lost: drops.length,
        duplicates: 0,
        malformed: 0,
      },
    );
    assertEquals(relayStats(relay).toServer.forwarded, count - drops.length);
  },
);
