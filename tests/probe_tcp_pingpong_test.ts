/**
 * A TCP ping-pong (`--ping-pong`: one probe in flight, unpaced) on the native
 * engine runs in the ping-pong Worker, blocking in libc's send/recv on the
 * connection Deno made; on `--engine deno` it stays on the event loop. Both
 * must count the same things the same way: probes and echoes, bytes that are
 * not probes (resynchronised and counted malformed), a server that goes away
 * mid-run (the partial report), a peer that never echoes, and Ctrl-C.
 *
 * The peers are netkit's own server and a small echo written here, which can
 * cut its echoes into pieces, inject bytes, or stop echoing, to order.
 *
 * @module
 */

import { assert, assertEquals, assertStringIncludes } from "@std/assert";
// node:net for a peer that resets its connection (SO_LINGER 0): Deno's close always ends with FIN.
import net from "node:net";
import { runNetkit, startServer } from "./support/cli.ts";
import { type EngineName, engineTest } from "./support/engines.ts";

const LOCALHOST = "127.0.0.1";
/** Upper bound on any single CLI run here; a hang fails the test instead of stalling it. */
const RUN_TIMEOUT_MS = 20_000;

/** The `--json` fields these tests read. */
interface ProbeJson {
  transport: "tcp" | "udp";
  sent: number;
  received: number;
  lost: number;
  out_of_order: number;
  duplicates: number;
  malformed: number;
  rtt_ms: Record<"min" | "p50" | "max", number | null>;
  engine: string;
  engine_features: { blocking_worker?: true; reason: string };
  interrupted: boolean;
}

/** What the echo peer does with the bytes of its one connection. */
interface EchoPeerOptions {
  /** Write each echo in pieces of at most this many bytes (each its own write). */
  piece?: number;
  /** Echo this many bytes, then, once more arrive, end the stream (FIN) and only read on. */
  echoBytes?: number;
  /** Write these bytes into the echo stream just before echo byte `at`. */
  inject?: { at: number; bytes: Uint8Array };
  /** Flip the bits `xor` of echo byte `at`. */
  flip?: { at: number; xor: number };
  /** Never read or echo anything. */
  silent?: boolean;
  /** Echo this many bytes, then stop reading (the connection stays open until disposal). */
  stopReadingAfter?: number;
  /** Called with the running total of bytes echoed. */
  onEchoed?: (total: number) => void;
}

/** A TCP echo peer on 127.0.0.1:0 for one connection at a time; dispose to stop it. */
function startEchoPeer(options: EchoPeerOptions = {}) {
  const listener = Deno.listen({ hostname: LOCALHOST, port: 0 });
  const conns = new Set<Deno.Conn>();
  const sessions: Promise<void>[] = [];
  const disposed = Promise.withResolvers<void>();
  const serve = async (conn: Deno.TcpConn) => {
    conn.setNoDelay(true);
    const buf = new Uint8Array(64 * 1024);
    let echoed = 0;
    let ended = false;
    const write = async (bytes: Uint8Array) => {
      const piece = options.piece ?? bytes.length;
      for (let off = 0; off < bytes.length; off += piece) {
        const part = bytes.subarray(off, Math.min(bytes.length, off + piece));
        for (let done = 0; done < part.length;) done += await conn.write(part.subarray(done));
      }
    };
    try {
      while (true) {
        const n = await conn.read(buf);
        if (n === null) return;
        if (options.silent || ended) continue; // read on (so no reset), echo nothing
        const limit = options.echoBytes ?? Number.POSITIVE_INFINITY;
        if (echoed >= limit) {
          ended = true;
          await conn.closeWrite();
          continue;
        }
        const chunk = buf.subarray(0, Math.min(n, limit - echoed));
        const flip = options.flip;
        if (flip && flip.at >= echoed && flip.at < echoed + chunk.length) {
          chunk[flip.at - echoed]! ^= flip.xor;
        }
        const inject = options.inject;
        if (inject && inject.at >= echoed && inject.at < echoed + chunk.length) {
          const before = inject.at - echoed;
          await write(chunk.subarray(0, before));
          await write(inject.bytes);
          await write(chunk.subarray(before));
        } else {
          await write(chunk);
        }
        echoed += chunk.length;
        options.onEchoed?.(echoed);
        if (options.stopReadingAfter !== undefined && echoed >= options.stopReadingAfter) {
          await disposed.promise; // read nothing more: the client's sends fill the buffers
          return;
        }
      }
    } catch {
      // the client went away: that ends the session
    } finally {
      conns.delete(conn);
      try {
        conn.close();
      } catch { /* closed */ }
    }
  };
  const accepting = (async () => {
    try {
      for await (const conn of listener) {
        conns.add(conn);
        sessions.push(serve(conn as Deno.TcpConn));
      }
    } catch { /* listener closed */ }
  })();
  return {
    port: (listener.addr as Deno.NetAddr).port,
    async [Symbol.asyncDispose]() {
      disposed.resolve();
      listener.close();
      await accepting;
      for (const conn of [...conns]) {
        try {
          conn.close();
        } catch { /* closed */ }
      }
      await Promise.all(sessions);
    },
  };
}

/** Run `netkit client --probe --ping-pong --proto tcp … --json` to completion. */
function pingPong(port: number, engine: EngineName, flags: string[]) {
  return runNetkit(
    [
      ...["client", "--probe", "--ping-pong", "--proto", "tcp", LOCALHOST, String(port)],
      ...["--engine", engine, "--json", "--interval-report", "0", ...flags],
    ],
    { timeoutMs: RUN_TIMEOUT_MS },
  );
}

/** {@linkcode pingPong} that must exit 0; its JSON, which must say which path ran. */
async function pingPongOk(port: number, engine: EngineName, flags: string[]): Promise<ProbeJson> {
  const result = await pingPong(port, engine, flags);
  assertEquals(result.code, 0, `exit ${result.code}: ${result.stderr}`);
  const report = JSON.parse(result.text) as ProbeJson;
  assertPath(report, engine);
  return report;
}

/** The Worker ran the native engine's ping-pong; the event loop the deno engine's. */
function assertPath(report: ProbeJson, engine: EngineName): void {
  assertEquals(report.transport, "tcp");
  assertEquals(report.engine, engine);
  assertEquals(report.engine_features.blocking_worker === true, engine === "native");
}

/** The counts of a run, for one comparison. */
function counts(report: ProbeJson) {
  const { sent, received, lost, out_of_order, duplicates, malformed } = report;
  return { sent, received, lost, out_of_order, duplicates, malformed };
}

const ALL_ECHOED = (n: number) => ({
  sent: n,
  received: n,
  lost: 0,
  out_of_order: 0,
  duplicates: 0,
  malformed: 0,
});

engineTest(
  "tcp ping-pong against netkit's server counts a --count 2000 run exactly and says which path ran",
  async (engine) => {
    await using server = await startServer(["--proto", "tcp", "--host", LOCALHOST]);
    const report = await pingPongOk(server.port, engine, ["--count", "2000"]);
    assertEquals(counts(report), ALL_ECHOED(2000));
    assert(report.rtt_ms.min !== null && report.rtt_ms.min > 0);
    assert(report.rtt_ms.max !== null && report.rtt_ms.max < 2000);
  },
);

engineTest(
  "tcp ping-pong reassembles echoes a plain echo peer writes in 7-byte pieces, 100 B and 60,000 B probes",
  async (engine) => {
    let echoed = 0;
    await using peer = startEchoPeer({ piece: 7, onEchoed: (n) => echoed = n });
    const small = await pingPongOk(peer.port, engine, ["--count", "300", "--size", "100"]);
    assertEquals(counts(small), ALL_ECHOED(300));
    assertEquals(echoed, 300 * 100);
    // A probe larger than one read or one kernel segment: sent and received in parts.
    const large = await pingPongOk(peer.port, engine, ["--count", "20", "--size", "60000"]);
    assertEquals(counts(large), ALL_ECHOED(20));
    assertEquals(echoed, 20 * 60000);
  },
);

engineTest(
  "tcp ping-pong counts one stray byte in the echo stream as one malformed echo and loses nothing",
  async (engine) => {
    // One byte before echo 10, and a probe's worth of zeros before echo 40.
    const size = 64;
    const stray = startEchoPeer({ inject: { at: 10 * size, bytes: new Uint8Array([0x4e]) } });
    await using _stray = stray;
    const report = await pingPongOk(stray.port, engine, ["--count", "100", "--size", "64"]);
    assertEquals(counts(report), { ...ALL_ECHOED(100), malformed: 1 });
    await using block = startEchoPeer({ inject: { at: 40 * size, bytes: new Uint8Array(size) } });
    const blockReport = await pingPongOk(block.port, engine, ["--count", "100", "--size", "64"]);
    assertEquals(counts(blockReport), { ...ALL_ECHOED(100), malformed: 1 });
  },
);

engineTest(
  "tcp ping-pong counts an echo with corrupt padding as malformed, and its probe as lost once --timeout passes",
  async (engine) => {
    // Echo 30's padding has one bit flipped: the framer cuts it out (magic and run id are
    // whole), the decoder rejects it. Not an echo: its probe is waited for up to --timeout.
    const size = 64;
    await using peer = startEchoPeer({ flip: { at: 30 * size + 40, xor: 0x01 } });
    const report = await pingPongOk(peer.port, engine, [
      ...["--count", "100", "--size", String(size), "--timeout", "300ms"],
    ]);
    assertEquals(counts(report), {
      sent: 100,
      received: 99,
      lost: 1,
      out_of_order: 0,
      duplicates: 0,
      malformed: 1,
    });
  },
);

engineTest(
  "tcp ping-pong counts the last echo, its run id corrupt, as malformed though nothing follows it",
  async (engine) => {
    // Echo 19's run id has one bit flipped (byte 5, 0x08): the framer skips it, and with
    // no probe after it that run of skipped bytes ends only when the client stops reading.
    const size = 64;
    await using peer = startEchoPeer({ flip: { at: 19 * size + 5, xor: 0x08 } });
    const report = await pingPongOk(peer.port, engine, [
      ...["--count", "20", "--size", String(size), "--timeout", "300ms"],
    ]);
    assertEquals(counts(report), {
      sent: 20,
      received: 19,
      lost: 1,
      out_of_order: 0,
      duplicates: 0,
      malformed: 1,
    });
  },
);

engineTest(
  "tcp ping-pong whose server ends the stream mid-run prints the partial report and exits 9",
  async (engine) => {
    // Echo 50 probes of 64 B; on the 51st, end the stream (FIN) and only read on.
    await using peer = startEchoPeer({ echoBytes: 50 * 64 });
    const result = await pingPong(peer.port, engine, ["--count", "1000", "--size", "64"]);
    assertEquals(result.code, 9, result.stderr);
    assertStringIncludes(
      result.stderr,
      `tcp ${LOCALHOST}:${peer.port} went away: it closed the connection after echoing 50 of 51 probes`,
    );
    const report = JSON.parse(result.text) as ProbeJson;
    assertPath(report, engine);
    assertEquals(counts(report), {
      sent: 51,
      received: 50,
      lost: 1,
      out_of_order: 0,
      duplicates: 0,
      malformed: 0,
    });
  },
);

engineTest(
  "tcp ping-pong whose server resets the connection mid-run prints the partial report and exits 9",
  async (engine) => {
    // Echo 50 probes of 64 B; on the 51st, reset the connection (RST, no FIN).
    const sockets = new Set<net.Socket>();
    const server = net.createServer((socket) => {
      sockets.add(socket);
      socket.on("close", () => sockets.delete(socket));
      socket.on("error", () => {});
      let echoed = 0;
      socket.on("data", (data: Uint8Array) => {
        if (echoed >= 50 * 64) return void socket.resetAndDestroy();
        socket.write(data);
        echoed += data.length;
      });
    });
    const listening = Promise.withResolvers<void>();
    server.listen(0, LOCALHOST, () => listening.resolve());
    await listening.promise;
    const port = (server.address() as net.AddressInfo).port;
    try {
      const result = await pingPong(port, engine, ["--count", "1000", "--size", "64"]);
      assertEquals(result.code, 9, result.stderr);
      assertStringIncludes(
        result.stderr,
        `tcp ${LOCALHOST}:${port} went away: it reset the connection after echoing 50 of 51 probes`,
      );
      const report = JSON.parse(result.text) as ProbeJson;
      assertPath(report, engine);
      assertEquals(counts(report), {
        sent: 51,
        received: 50,
        lost: 1,
        out_of_order: 0,
        duplicates: 0,
        malformed: 0,
      });
    } finally {
      for (const socket of sockets) socket.destroy();
      const closed = Promise.withResolvers<void>();
      server.close(() => closed.resolve());
      await closed.promise;
    }
  },
);

engineTest(
  "tcp ping-pong to a peer that never echoes fails with 'No echo' after its timeout (exit 5)",
  async (engine) => {
    await using peer = startEchoPeer({ silent: true });
    const started = performance.now();
    const result = await pingPong(peer.port, engine, ["--count", "10", "--timeout", "300ms"]);
    assertEquals(result.code, 5, result.stderr);
    assertStringIncludes(result.stderr, `No echo from tcp ${LOCALHOST}:${peer.port} within 300 ms`);
    assert(performance.now() - started < 10_000, "bounded by the timeout, not hung");
  },
);

engineTest(
  "tcp ping-pong whose server stops reading fails with 'stopped taking or echoing probes' after its timeout (exit 5)",
  async (engine) => {
    // One 60,000-byte probe echoed, then nothing read: later probes are given up on one
    // timeout each until the buffers are full and a send cannot complete within the timeout.
    await using peer = startEchoPeer({ stopReadingAfter: 60000 });
    const started = performance.now();
    const result = await pingPong(peer.port, engine, [
      ...["--count", "1000", "--size", "60000", "--timeout", "50ms"],
    ]);
    assertEquals(result.code, 5, result.stderr);
    assertStringIncludes(
      result.stderr,
      `tcp ${LOCALHOST}:${peer.port} stopped taking or echoing probes for 50 ms after `,
    );
    const report = JSON.parse(result.text) as ProbeJson;
    assertPath(report, engine);
    assertEquals(report.received, 1);
    assert(report.sent >= 3 && report.sent < 1000, `sent ${report.sent}`);
    assert(performance.now() - started < 15_000, "bounded by the timeout, not hung");
  },
);

engineTest(
  "tcp ping-pong stopped by SIGINT exits 130 with every probe it sent echoed, marked interrupted",
  async (engine) => {
    const { promise: running, resolve } = Promise.withResolvers<void>();
    await using peer = startEchoPeer({ onEchoed: (n) => n >= 300 * 64 && resolve() });
    // SIGINT once 300 echoes went back: the ping-pong is under way.
    const result = await runNetkit([
      ...["client", "--probe", "--ping-pong", "--proto", "tcp", LOCALHOST, String(peer.port)],
      ...["--duration", "20s", "--size", "64", "--engine", engine, "--json"],
    ], { interruptWhen: running, timeoutMs: RUN_TIMEOUT_MS });
    assertEquals(result.code, 130, result.stderr);
    const report = JSON.parse(result.text) as ProbeJson;
    assertPath(report, engine);
    assertEquals(report.interrupted, true);
    assert(report.sent >= 300, `sent ${report.sent}`);
    assertEquals(report.received, report.sent);
    assertEquals(report.lost, 0);
  },
);

engineTest("tcp ping-pong -v says which path ran, and why", async (engine) => {
  await using server = await startServer(["--proto", "tcp", "--host", LOCALHOST]);
  const result = await pingPong(server.port, engine, ["--count", "10", "-v"]);
  assertEquals(result.code, 0, result.stderr);
  if (engine === "native") {
    assertStringIncludes(result.stderr, "ping-pong: blocking send/recv in a Worker on descriptor ");
    assertStringIncludes(result.stderr, "permissions kept: net, ffi;");
  } else {
    assertStringIncludes(result.stderr, "ping-pong: on the event loop: asked for (--engine deno)");
    assertStringIncludes(result.stderr, "permissions kept: net;");
  }
});

Deno.test("tcp ping-pong from --source-port stays on the event loop: node:net reads that socket", async () => {
  await using server = await startServer(["--proto", "tcp", "--host", LOCALHOST]);
  // A free port to bind: the kernel's pick for a listener closed at once.
  const probe = Deno.listen({ hostname: LOCALHOST, port: 0 });
  const sourcePort = (probe.addr as Deno.NetAddr).port;
  probe.close();
  const result = await runNetkit(
    [
      ...["client", "--probe", "--ping-pong", "--proto", "tcp", LOCALHOST, String(server.port)],
      ...["--source-port", String(sourcePort), "--count", "50", "--json", "-v"],
    ],
    { timeoutMs: RUN_TIMEOUT_MS },
  );
  assertEquals(result.code, 0, result.stderr);
  const report = JSON.parse(result.text) as ProbeJson;
  assertEquals(counts(report), ALL_ECHOED(50));
  assertEquals(report.engine, "deno");
  assertEquals(report.engine_features.blocking_worker, undefined);
  assertStringIncludes(
    result.stderr,
    "ping-pong: on the event loop: --source connects through node:net, which reads the socket itself",
  );
  assertStringIncludes(result.stderr, "permissions kept: net;");
});
