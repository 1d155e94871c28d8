/**
 * End-to-end tests of `netkit relay` through the real CLI: TCP, Unix and TLS
 * byte-exact both ways (SHA-256) with half-closes passed on each way, resets
 * propagated, the server's defences, UDP sessions byte-exact, seeded UDP
 * impairments counted exactly (loss within binomial bounds), TCP toxics,
 * interop with socat and ncat on either side, 50 concurrent streams, and
 * fuzzed input to the listener.
 *
 * @example
 * ```sh
 * deno test -A --trace-leaks tests/relay_test.ts
 * ```
 *
 * @module
 */

import {
  assert,
  assertEquals,
  assertGreaterOrEqual,
  assertLessOrEqual,
  assertMatch,
} from "@std/assert";
import { delay } from "@std/async/delay";
import { runNetkit, startServer } from "./support/cli.ts";
import { makeTestCerts } from "./support/certs.ts";
import {
  hasIpv6Loopback,
  randomBytes,
  sha256,
  spawnPeer,
  startOnFreePort,
  waitForTcp,
} from "./support/peers.ts";
import { startRelay } from "./support/relay.ts";
import { closedPort, readToEnd, writeAll } from "./support/sockets.ts";
import { hasCommand } from "./support/cli.ts";

const LOCALHOST = "127.0.0.1";

type StreamConn = Deno.Conn | Deno.TlsConn;

/** A stream target in the test process: `serve` runs for each connection, which is then closed. */
function streamTarget(listener: Deno.Listener, serve: (conn: Deno.Conn) => Promise<void>) {
  const tasks = new Set<Promise<void>>();
  let accepted = 0;
  const loop = (async () => {
    try {
      for await (const conn of listener) {
        accepted++;
        const task = serve(conn).catch(() => {}).finally(() => {
          try {
            conn.close();
          } catch { /* closed by serve */ }
        });
        tasks.add(task);
      }
    } catch { /* listener closed */ }
  })();
  return {
    port: listener.addr.transport === "tcp" ? listener.addr.port : NaN,
    get accepted() {
      return accepted;
    },
    /** Resolves once every connection accepted so far has been served (before a relay stops). */
    async settled() {
      await Promise.all(tasks);
    },
    async close() {
      try {
        listener.close();
      } catch { /* closed */ }
      await loop;
      await Promise.all(tasks);
    },
    [Symbol.asyncDispose]() {
      return this.close();
    },
  };
}

function tcpTarget(serve: (conn: Deno.Conn) => Promise<void>) {
  return streamTarget(Deno.listen({ hostname: LOCALHOST, port: 0 }), serve);
}

/** A TCP target that reads and counts all it is sent (`got`: the bytes so far). */
function countingTarget() {
  let got = 0;
  const target = tcpTarget(async (conn) => {
    const buf = new Uint8Array(65536);
    for (let n; (n = await conn.read(buf)) !== null;) got += n;
  });
  return Object.defineProperty(target, "got", { get: () => got }) as typeof target & {
    readonly got: number;
  };
}

/** A relay from a TCP port of its own to the TCP target at `port`, with `flags`. */
function tcpRelayTo(port: number, flags: string[] = []) {
  return startRelay([`tcp:${LOCALHOST}:0`, `tcp:${LOCALHOST}:${port}`, ...flags]);
}

/** Echo until the peer ends, then end. */
async function echo(conn: Deno.Conn): Promise<void> {
  const buf = new Uint8Array(65536);
  for (let n; (n = await conn.read(buf)) !== null;) await writeAll(conn, buf.subarray(0, n));
  await conn.closeWrite();
}

/** Send `payload` then end our side, while reading everything the peer sends. */
async function exchange(conn: StreamConn, payload: Uint8Array): Promise<Uint8Array> {
  const [received] = await Promise.all([
    readToEnd(conn as Deno.Conn),
    (async () => {
      await writeAll(conn, payload);
      await conn.closeWrite();
    })(),
  ]);
  return received;
}

/** The relay's `--json` document after it was stopped. */
async function stopJson(relay: Awaited<ReturnType<typeof startRelay>>) {
  const { code, stdout, stderr } = await relay.stop();
  assertEquals(code, 0, stderr);
  return JSON.parse(stdout);
}

/** Wait for `cond` (checked every 10 ms), failing after `ms`. */
async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`);
    await delay(10);
  }
}

/** A read that must end (EOF or an error) within `ms`; returns how it ended. */
async function readEnds(conn: StreamConn, ms: number): Promise<"eof" | "error"> {
  const buf = new Uint8Array(65536);
  const end = performance.now() + ms;
  const timer = setTimeout(() => {
    try {
      conn.close();
    } catch { /* closed */ }
  }, ms);
  try {
    while (performance.now() < end) {
      if ((await conn.read(buf)) === null) return "eof";
    }
    throw new Error("still open");
  } catch (err) {
    if (performance.now() >= end) throw new Error(`connection still open after ${ms} ms`);
    return err instanceof Error && err.message === "still open" ? "eof" : "error";
  } finally {
    clearTimeout(timer);
  }
}

Deno.test("relay tcp carries 2 MB each way byte-exact (SHA-256) and counts every byte", async () => {
  const up = randomBytes(2 << 20);
  const down = randomBytes(2 << 20);
  let targetGot = "";
  const target = tcpTarget(async (conn) => {
    targetGot = sha256(await exchange(conn, down));
  });
  try {
    const relay = await tcpRelayTo(target.port, ["--json"]);
    try {
      using conn = await Deno.connect({ hostname: LOCALHOST, port: relay.port });
      const got = await exchange(conn, up);
      assertEquals(sha256(got), sha256(down));
      await target.settled(); // the target has read to the end before the relay stops
    } finally {
      const doc = await stopJson(relay);
      assertEquals(doc.connections, 1);
      assertEquals(doc.up.bytes_in, up.length);
      assertEquals(doc.up.bytes_out, up.length);
      assertEquals(doc.down.bytes_in, down.length);
      assertEquals(doc.down.bytes_out, down.length);
    }
  } finally {
    await target.close();
  }
  assertEquals(targetGot, sha256(up));
});

Deno.test("relay tcp passes the client's half-close on, and the reply still comes back", async () => {
  await using target = tcpTarget(async (conn) => {
    const request = await readToEnd(conn); // ends only if the relay passed the FIN on
    await writeAll(conn, new TextEncoder().encode(`got ${new TextDecoder().decode(request)}`));
    await conn.closeWrite();
  });
  await using relay = await tcpRelayTo(target.port);
  using conn = await Deno.connect({ hostname: LOCALHOST, port: relay.port });
  const reply = await exchange(conn, new TextEncoder().encode("request"));
  assertEquals(new TextDecoder().decode(reply), "got request");
});

Deno.test("relay tcp passes the target's half-close on, and the client can still send", async () => {
  let after = "";
  const target = tcpTarget(async (conn) => {
    await writeAll(conn, new TextEncoder().encode("banner"));
    await conn.closeWrite();
    after = new TextDecoder().decode(await readToEnd(conn));
  });
  try {
    await using relay = await tcpRelayTo(target.port);
    using conn = await Deno.connect({ hostname: LOCALHOST, port: relay.port });
    assertEquals(new TextDecoder().decode(await readToEnd(conn)), "banner");
    await writeAll(conn, new TextEncoder().encode("after the banner"));
    await conn.closeWrite();
    await target.settled(); // the target has read to the end before the relay stops
  } finally {
    await target.close();
  }
  assertEquals(after, "after the banner");
});

Deno.test({
  name: "relay joins IPv6 clients to IPv4 targets, TCP and UDP",
  ignore: !hasIpv6Loopback(),
  fn: async () => {
    const tcp = tcpTarget(echo);
    const udp = udpPeer("echo");
    try {
      await using tcpRelay = await startRelay(["tcp:[::1]:0", `tcp:${LOCALHOST}:${tcp.port}`]);
      assertMatch(tcpRelay.line, /^listening on tcp \[::1\]:\d+ -> tcp 127\.0\.0\.1:\d+$/);
      using conn = await Deno.connect({ hostname: "::1", port: tcpRelay.port });
      const payload = randomBytes(100_000);
      assertEquals(sha256(await exchange(conn, payload)), sha256(payload));
      await using udpRelay = await startRelay(["udp:[::1]:0", `udp:${LOCALHOST}:${udp.port}`]);
      const client = Deno.listenDatagram({ transport: "udp", hostname: "::1", port: 0 });
      try {
        await client.send(new TextEncoder().encode("v6"), {
          transport: "udp",
          hostname: "::1",
          port: udpRelay.port,
        });
        assertEquals(new TextDecoder().decode(await receiveWithin(client, 3000)), "v6");
      } finally {
        client.close();
      }
    } finally {
      await tcp.close();
      await udp.close();
    }
  },
});

Deno.test("relay unix -> tcp and tcp -> unix are byte-exact both ways", async () => {
  const dir = await Deno.makeTempDir({ prefix: "netkit-relay-" });
  const up = randomBytes(512 * 1024);
  const down = randomBytes(512 * 1024);
  const got: string[] = [];
  const serve = async (conn: Deno.Conn) => {
    got.push(sha256(await exchange(conn, down)));
  };
  const tcp = tcpTarget(serve);
  const unixPath = `${dir}/target.sock`;
  const unix = streamTarget(Deno.listen({ transport: "unix", path: unixPath }), serve);
  try {
    const listenPath = `${dir}/relay.sock`;
    await using toTcp = await startRelay([`unix:${listenPath}`, `tcp:${LOCALHOST}:${tcp.port}`]);
    assertEquals(toTcp.line, `listening on unix ${listenPath} -> tcp ${LOCALHOST}:${tcp.port}`);
    {
      using conn = await Deno.connect({ transport: "unix", path: listenPath });
      assertEquals(sha256(await exchange(conn, up)), sha256(down));
      await tcp.settled();
    }
    await using toUnix = await startRelay([`tcp:${LOCALHOST}:0`, `unix:${unixPath}`]);
    {
      using conn = await Deno.connect({ hostname: LOCALHOST, port: toUnix.port });
      assertEquals(sha256(await exchange(conn, up)), sha256(down));
      await unix.settled();
    }
    await toTcp.stop();
    // The relay removes its socket file when it stops.
    assertEquals(await Deno.stat(listenPath).then(() => true, () => false), false);
  } finally {
    await tcp.close();
    await unix.close();
    await Deno.remove(dir, { recursive: true });
  }
  assertEquals(got, [sha256(up), sha256(up)]);
});

Deno.test("relay terminates TLS (tls: LISTEN) and originates it (tls: TARGET) byte-exact", async () => {
  await using certs = await makeTestCerts();
  const ca = await Deno.readTextFile(certs.caCert);
  const up = randomBytes(1 << 20);
  const down = randomBytes(1 << 20);
  const got: string[] = [];
  const serve = async (conn: Deno.Conn) => {
    got.push(sha256(await exchange(conn, down)));
  };
  const plain = tcpTarget(serve);
  const secure = streamTarget(
    Deno.listenTls({
      hostname: LOCALHOST,
      port: 0,
      cert: await Deno.readTextFile(certs.leafCert),
      key: await Deno.readTextFile(certs.leafKey),
    }),
    serve,
  );
  try {
    await using terminate = await startRelay([
      `tls:${LOCALHOST}:0`,
      `tcp:${LOCALHOST}:${plain.port}`,
      "--cert",
      certs.leafCert,
      "--key",
      certs.leafKey,
    ]);
    {
      using conn = await Deno.connectTls({
        hostname: LOCALHOST,
        port: terminate.port,
        caCerts: [ca],
      });
      assertEquals(sha256(await exchange(conn, up)), sha256(down));
      await plain.settled();
    }
    await using originate = await startRelay([
      `tcp:${LOCALHOST}:0`,
      `tls:${LOCALHOST}:${secure.port}`,
      "--ca",
      certs.caCert,
    ]);
    {
      using conn = await Deno.connect({ hostname: LOCALHOST, port: originate.port });
      assertEquals(sha256(await exchange(conn, up)), sha256(down));
      await secure.settled();
    }
  } finally {
    await plain.close();
    await secure.close();
  }
  assertEquals(got, [sha256(up), sha256(up)]);
});

/**
 * Write until the connection fails (a reset noticed) or `ms` pass. Deno reports a
 * reset on a read as an end of data, so a side learns of one by writing.
 */
async function writeUntilFails(conn: Deno.Conn, ms: number): Promise<boolean> {
  const chunk = new Uint8Array(64 * 1024);
  const end = performance.now() + ms;
  try {
    while (performance.now() < end) await writeAll(conn, chunk);
    return false;
  } catch {
    return true;
  }
}

Deno.test("relay closes the client when the target resets, and counts the reset", async () => {
  await using target = tcpTarget(async (conn) => {
    await conn.read(new Uint8Array(1)); // data arrived; the rest stays unread
    conn.close(); // closing with unread data sends a reset
  });
  const relay = await tcpRelayTo(target.port, ["--json", "-v"]);
  try {
    using conn = await Deno.connect({ hostname: LOCALHOST, port: relay.port });
    // The relay notices the reset when it next writes to the target, and closes us.
    assert(await writeUntilFails(conn, 5000), "the client's connection stayed open");
  } finally {
    const { code, stdout, stderr } = await relay.stop();
    assertEquals(code, 0, stderr);
    assertEquals(JSON.parse(stdout).resets, 1, stderr);
  }
});

Deno.test("relay closes the target when the client resets, and counts the reset", async () => {
  let failed: boolean | undefined;
  let connected!: () => void;
  const isConnected = new Promise<void>((resolve) => (connected = resolve));
  await using target = tcpTarget(async (conn) => {
    connected();
    failed = await writeUntilFails(conn, 5000);
  });
  const relay = await tcpRelayTo(target.port, ["--json", "-v"]);
  try {
    const conn = await Deno.connect({ hostname: LOCALHOST, port: relay.port });
    await isConnected;
    await conn.read(new Uint8Array(1)); // data is flowing; leave the rest unread
    conn.close(); // a reset
    await until(() => failed !== undefined, 8000, "the target's writes to end");
    assertEquals(failed, true, "the target's connection stayed open");
  } finally {
    const { code, stdout, stderr } = await relay.stop();
    assertEquals(code, 0, stderr);
    assertEquals(JSON.parse(stdout).resets, 1, stderr);
  }
});

Deno.test("relay --max-conns 1 refuses a second connection while the first is served", async () => {
  await using target = tcpTarget(echo);
  const relay = await tcpRelayTo(target.port, ["--max-conns", "1", "--json"]);
  try {
    using first = await Deno.connect({ hostname: LOCALHOST, port: relay.port });
    await writeAll(first, new Uint8Array([1]));
    assertEquals(await first.read(new Uint8Array(1)), 1); // served
    using second = await Deno.connect({ hostname: LOCALHOST, port: relay.port });
    await readEnds(second, 5000);
    await writeAll(first, new Uint8Array([2]));
    assertEquals(await first.read(new Uint8Array(1)), 1); // still served
  } finally {
    const doc = await stopJson(relay);
    assertEquals(doc.refused, 1);
    assertEquals(doc.connections, 1);
  }
});

Deno.test("relay closes a client whose target cannot be reached, counts it, and keeps serving", async () => {
  const port = closedPort();
  const relay = await startRelay([`tcp:${LOCALHOST}:0`, `tcp:${LOCALHOST}:${port}`, "--json"]);
  try {
    for (let i = 0; i < 2; i++) {
      using conn = await Deno.connect({ hostname: LOCALHOST, port: relay.port });
      await readEnds(conn, 5000);
    }
  } finally {
    const doc = await stopJson(relay);
    assertEquals(doc.failed, 2);
    assertEquals(doc.connections, 2);
  }
});

Deno.test("relay --allow keeps out a client outside the list: the target never sees it", async () => {
  const target = tcpTarget(echo);
  try {
    const relay = await tcpRelayTo(target.port, ["--allow", "10.0.0.0/8", "--json"]);
    try {
      using conn = await Deno.connect({ hostname: LOCALHOST, port: relay.port });
      await readEnds(conn, 5000);
    } finally {
      const doc = await stopJson(relay);
      assertEquals(doc.denied, 1);
      assertEquals(doc.connections, 0);
    }
  } finally {
    await target.close();
  }
  assertEquals(target.accepted, 0);
});

Deno.test("relay --idle-timeout and --first-byte-timeout close quiet connections", async () => {
  await using target = tcpTarget(echo);
  const relay = await tcpRelayTo(target.port, [
    "--idle-timeout",
    "400ms",
    "--first-byte-timeout",
    "200ms",
    "--json",
  ]);
  try {
    const t0 = performance.now();
    using silent = await Deno.connect({ hostname: LOCALHOST, port: relay.port });
    await readEnds(silent, 5000);
    assertGreaterOrEqual(performance.now() - t0, 150);
    using idle = await Deno.connect({ hostname: LOCALHOST, port: relay.port });
    await writeAll(idle, new Uint8Array([7]));
    assertEquals(await idle.read(new Uint8Array(1)), 1);
    const t1 = performance.now();
    await readEnds(idle, 5000);
    assertGreaterOrEqual(performance.now() - t1, 300);
  } finally {
    const doc = await stopJson(relay);
    assertEquals(doc.expired, 2);
  }
});

/** A UDP socket in the test that echoes, or records, what it receives. */
function udpPeer(mode: "echo" | "sink") {
  const socket = Deno.listenDatagram({ transport: "udp", hostname: LOCALHOST, port: 0 });
  const received: Uint8Array[] = [];
  const loop = (async () => {
    try {
      for (;;) {
        const [data, from] = await socket.receive();
        if (mode === "echo") await socket.send(data, from);
        else received.push(data);
      }
    } catch { /* closed */ }
  })();
  return {
    port: (socket.addr as Deno.NetAddr).port,
    received,
    async close() {
      socket.close();
      await loop;
    },
    [Symbol.asyncDispose]() {
      return this.close();
    },
  };
}

function udpClient(): Deno.DatagramConn & Disposable {
  const socket = Deno.listenDatagram({ transport: "udp", hostname: LOCALHOST, port: 0 });
  return Object.assign(socket, {
    [Symbol.dispose]() {
      try {
        socket.close();
      } catch { /* closed */ }
    },
  });
}

async function receiveWithin(socket: Deno.DatagramConn, ms: number): Promise<Uint8Array> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const [data] = await Promise.race([
      socket.receive(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no datagram within ${ms} ms`)), ms);
      }),
    ]);
    return data;
  } finally {
    clearTimeout(timer);
  }
}

Deno.test("relay udp carries 300 datagrams of 1 to 1400 bytes byte-exact both ways", async () => {
  await using target = udpPeer("echo");
  const relay = await startRelay([
    `udp:${LOCALHOST}:0`,
    `udp:${LOCALHOST}:${target.port}`,
    "--json",
  ]);
  const sent: Uint8Array[] = [];
  const back: Uint8Array[] = [];
  try {
    using client = udpClient();
    const to = { transport: "udp" as const, hostname: LOCALHOST, port: relay.port };
    for (let i = 0; i < 300; i++) {
      const data = randomBytes(1 + Math.floor(Math.random() * 1400));
      sent.push(data);
      await client.send(data, to);
      back.push(await receiveWithin(client, 3000));
    }
  } finally {
    const doc = await stopJson(relay);
    assertEquals(doc.connections, 1);
    assertEquals(doc.up.datagrams_in, 300);
    assertEquals(doc.down.datagrams_out, 300);
  }
  const join = (parts: Uint8Array[]) => {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let off = 0;
    for (const p of parts) out.set(p, (off += p.length) - p.length);
    return out;
  };
  assertEquals(sha256(join(back)), sha256(join(sent)));
  assertEquals(back.map((b) => b.length), sent.map((s) => s.length));
});

Deno.test("relay udp keeps a session per client, refuses past --max-conns and expires idle ones", async () => {
  await using target = udpPeer("echo");
  const relay = await startRelay([
    `udp:${LOCALHOST}:0`,
    `udp:${LOCALHOST}:${target.port}`,
    "--max-conns",
    "1",
    "--idle-timeout",
    "300ms",
    "--json",
    "-v",
  ]);
  try {
    const to = { transport: "udp" as const, hostname: LOCALHOST, port: relay.port };
    using a = udpClient();
    using b = udpClient();
    await a.send(new TextEncoder().encode("a"), to);
    assertEquals(new TextDecoder().decode(await receiveWithin(a, 3000)), "a");
    await b.send(new TextEncoder().encode("b"), to); // refused: one session is live
    await until(() => /refused a datagram/.test(relay.stderr()), 3000, "the refusal");
    await until(() => /session .* closed: .*idle/.test(relay.stderr()), 5000, "expiry");
    await b.send(new TextEncoder().encode("b"), to); // now there is room
    assertEquals(new TextDecoder().decode(await receiveWithin(b, 3000)), "b");
  } finally {
    const doc = await stopJson(relay);
    assertEquals(doc.connections, 2);
    assertEquals(doc.refused, 1);
    assertGreaterOrEqual(doc.expired, 1);
  }
});

Deno.test("relay udp applies the server's gate: --deny and --rate-limit per client, counted", async () => {
  await using target = udpPeer("sink");
  const cases = [[["--deny", "127.0.0.2"], "denied", 50], [
    ["--rate-limit", "5"],
    "rate_limited",
    40,
  ]];
  for (const [flags, key, least] of cases as [string[], string, number][]) {
    const relay = await startRelay([
      `udp:${LOCALHOST}:0`,
      `udp:${LOCALHOST}:${target.port}`,
      "--json",
      ...flags,
    ]);
    let doc;
    try {
      const to = { transport: "udp" as const, hostname: LOCALHOST, port: relay.port };
      const other = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.2", port: 0 });
      try {
        for (let i = 0; i < 50; i++) await other.send(new Uint8Array([i]), to);
      } finally {
        other.close();
      }
      // A fence from another client: the relay reads in order, so once it reaches
      // the target, the relay has judged all 50.
      using fence = udpClient();
      target.received.length = 0;
      await fence.send(new Uint8Array([255]), to);
      await until(() => target.received.some((d) => d[0] === 255), 5000, "the fence");
    } finally {
      doc = await stopJson(relay);
    }
    assertEquals(doc[key] + doc.up.datagrams_in, 51, JSON.stringify(doc));
    assertGreaterOrEqual(doc[key], least, JSON.stringify(doc));
  }
});

/**
 * Send `n` numbered datagrams through a relay to a sink, paced, then fences
 * (numbered after them) until one arrives: the relay handles datagrams in
 * order, so by then it has decided every one. Returns the sink's sequence
 * numbers in arrival order and the relay's document.
 */
async function throughUdpRelay(flags: string[], n: number) {
  const sink = udpPeer("sink");
  try {
    const relay = await startRelay([
      `udp:${LOCALHOST}:0`,
      `udp:${LOCALHOST}:${sink.port}`,
      "--json",
      ...flags,
    ]);
    let fences = 0;
    let doc;
    try {
      using client = udpClient();
      const to = { transport: "udp" as const, hostname: LOCALHOST, port: relay.port };
      const datagram = new Uint8Array(64);
      const view = new DataView(datagram.buffer);
      for (let i = 0; i < n; i++) {
        view.setUint32(0, i);
        await client.send(datagram, to);
        if (i % 50 === 49) await delay(5); // pacing, so no socket buffer overflows on the way
      }
      const fenceSeen = () => sink.received.some((d) => new DataView(d.buffer).getUint32(0) >= n);
      while (!fenceSeen()) {
        view.setUint32(0, n + fences++);
        await client.send(datagram, to);
        if (fences > 100) throw new Error("no fence came through");
        const end = performance.now() + 300;
        while (!fenceSeen() && performance.now() < end) await delay(5);
      }
    } finally {
      doc = await stopJson(relay);
    }
    const seqs = sink.received.map((d) => new DataView(d.buffer, d.byteOffset).getUint32(0));
    return { seqs, doc, fences, received: sink.received.length };
  } finally {
    await sink.close();
  }
}

Deno.test("relay udp --loss 10% drops within binomial bounds, counts exactly, and --seed repeats it", async () => {
  const n = 2000;
  const first = await throughUdpRelay(["--up-loss", "10%", "--seed", "7"], n);
  const again = await throughUdpRelay(["--up-loss", "10%", "--seed", "7"], n);
  for (const run of [first, again]) {
    assertEquals(run.doc.up.datagrams_in, n + run.fences); // nothing lost before the relay
    assertEquals(run.doc.up.datagrams_out, run.received); // nothing lost after it
    assertEquals(run.doc.up.dropped, run.doc.up.datagrams_in - run.doc.up.datagrams_out);
    const lostData = n - new Set(run.seqs.filter((s) => s < n)).size;
    // Binomial(2000, 0.1): mean 200, sd 13.4; 4.5 sd either side.
    assert(lostData >= 140 && lostData <= 260, `lost ${lostData} of ${n}`);
  }
  const dropped = (run: typeof first) => {
    const got = new Set(run.seqs);
    return Array.from({ length: n }, (_, i) => i).filter((i) => !got.has(i));
  };
  assertEquals(dropped(again), dropped(first));
});

Deno.test("relay udp --duplicate 100% sends every datagram twice and counts each copy", async () => {
  const n = 100;
  const run = await throughUdpRelay(["--up-duplicate", "100%"], n);
  const data = run.seqs.filter((s) => s < n);
  assertEquals(data.length, 2 * n);
  assertEquals(run.doc.up.duplicated, n + run.fences);
  assertEquals(run.doc.up.datagrams_out, 2 * (n + run.fences));
  for (let i = 0; i < n; i++) assertEquals(data.filter((s) => s === i).length, 2);
});

Deno.test("relay udp --reorder 30% holds back exactly the datagrams it counts", async () => {
  const n = 300;
  const run = await throughUdpRelay(["--up-reorder", "30%", "--seed", "3"], n);
  assertEquals(new Set(run.seqs.filter((s) => s < n)).size, n); // nothing lost
  // A held datagram leaves right after the next one: it arrives after a higher number.
  let late = 0;
  let highest = -1;
  for (const s of run.seqs) {
    if (s < highest) late++;
    highest = Math.max(highest, s);
  }
  const counted = run.doc.up.reordered;
  // A held datagram whose successor comes more than 50 ms later (a loaded machine) leaves
  // on the flush timer with nothing after it yet, so it is not late: late <= counted, and
  // every late one was counted.
  assertLessOrEqual(late, counted);
  assert(counted - late <= 5, `late ${late}, counted ${counted}`);
  assert(counted > 0.2 * n && counted < 0.4 * (n + run.fences), `reordered ${counted}`);
});

Deno.test("relay udp --delay 100ms holds each datagram 100 ms each way and counts it", async () => {
  await using target = udpPeer("echo");
  const relay = await startRelay([
    `udp:${LOCALHOST}:0`,
    `udp:${LOCALHOST}:${target.port}`,
    "--delay",
    "100ms",
    "--json",
  ]);
  try {
    using client = udpClient();
    const to = { transport: "udp" as const, hostname: LOCALHOST, port: relay.port };
    for (let i = 0; i < 3; i++) {
      const t0 = performance.now();
      await client.send(new Uint8Array([i]), to);
      assertEquals((await receiveWithin(client, 3000))[0], i);
      assertGreaterOrEqual(performance.now() - t0, 199);
    }
  } finally {
    const doc = await stopJson(relay);
    assertEquals(doc.up.delayed, 3);
    assertEquals(doc.down.delayed, 3);
  }
});

Deno.test("relay tcp --delay keeps order, --rate paces, --reset-after cuts at the byte", async () => {
  await using target = tcpTarget(echo);
  {
    // 256 KiB at 8 Mbit/s each way takes at least 0.25 s; order and bytes intact.
    await using relay = await tcpRelayTo(target.port, [
      "--delay",
      "20ms",
      "--jitter",
      "10ms",
      "--rate",
      "8M",
    ]);
    const payload = randomBytes(256 * 1024);
    const t0 = performance.now();
    using conn = await Deno.connect({ hostname: LOCALHOST, port: relay.port });
    assertEquals(sha256(await exchange(conn, payload)), sha256(payload));
    assertGreaterOrEqual(performance.now() - t0, 250);
  }
  {
    const relay = await tcpRelayTo(target.port, ["--up-reset-after", "100000", "--json"]);
    try {
      using conn = await Deno.connect({ hostname: LOCALHOST, port: relay.port });
      const payload = randomBytes(300_000);
      const [got] = await Promise.all([
        readToEnd(conn).catch(() => new Uint8Array(0)),
        writeAll(conn, payload).catch(() => {}),
      ]);
      assertLessOrEqual(got.length, 100_000);
    } finally {
      const doc = await stopJson(relay);
      assertEquals(doc.up.bytes_out, 100_000);
      assertEquals(doc.resets, 1);
    }
  }
});

Deno.test("relay tcp --rate with --queue holds at most the queue and back-pressures the client", async () => {
  await using target = countingTarget();
  const relay = await tcpRelayTo(target.port, ["--up-rate", "800k", "--queue", "64KiB", "--json"]);
  let doc;
  const conn = await Deno.connect({ hostname: LOCALHOST, port: relay.port });
  try {
    const writing = writeAll(conn, randomBytes(8 << 20)).catch(() => {});
    await until(() => target.got >= 50_000, 5000, "50 KB at the target"); // 100 KB/s
    doc = await stopJson(relay);
    conn.close();
    await writing;
  } finally {
    try {
      conn.close();
    } catch { /* closed */ }
    await relay.stop();
  }
  // Read but not yet forwarded: at most the queue plus the one read that filled it.
  assertLessOrEqual(doc.up.bytes_in - doc.up.bytes_out, 64 * 1024 + 64 * 1024);
  assert(doc.up.bytes_in < 8 << 20, `the relay read all ${doc.up.bytes_in} B: no back-pressure`);
});

Deno.test("relay tcp --close-after ends a busy connection after that long", async () => {
  await using target = tcpTarget(echo);
  await using relay = await tcpRelayTo(target.port, ["--close-after", "300ms"]);
  const t0 = performance.now();
  using conn = await Deno.connect({ hostname: LOCALHOST, port: relay.port });
  await writeAll(conn, new Uint8Array([1]));
  assertEquals(await conn.read(new Uint8Array(1)), 1);
  await readEnds(conn, 5000);
  assertGreaterOrEqual(performance.now() - t0, 290);
});

Deno.test("relay tcp --stall-after passes exactly that many bytes, then holds the connection", async () => {
  await using target = countingTarget();
  const relay = await tcpRelayTo(target.port, ["--up-stall-after", "50KB", "--json"]);
  try {
    using conn = await Deno.connect({ hostname: LOCALHOST, port: relay.port });
    await writeAll(conn, randomBytes(60_000));
    await until(() => target.got >= 50_000, 5000, "50 KB at the target");
    await writeAll(conn, randomBytes(10)); // still open: the write succeeds
  } finally {
    const doc = await stopJson(relay);
    assertEquals(doc.up.bytes_out, 50_000);
  }
  assertEquals(target.got, 50_000);
});

Deno.test("relay tcp: 50 concurrent streams of 2 MB each come back byte-exact", async () => {
  await using target = tcpTarget(echo);
  await using relay = await tcpRelayTo(target.port);
  const results = await Promise.all(
    Array.from({ length: 50 }, async () => {
      const payload = randomBytes(2 << 20);
      using conn = await Deno.connect({ hostname: LOCALHOST, port: relay.port });
      return sha256(await exchange(conn, payload)) === sha256(payload);
    }),
  );
  assertEquals(results.filter((ok) => ok).length, 50);
});

Deno.test("relay survives fuzzed input on TCP, TLS and UDP listeners and keeps serving", async () => {
  await using certs = await makeTestCerts();
  const ca = await Deno.readTextFile(certs.caCert);
  const tcp = tcpTarget(echo);
  const udp = udpPeer("echo");
  try {
    await using plain = await startRelay([`tcp:${LOCALHOST}:0`, `tcp:${LOCALHOST}:${tcp.port}`]);
    await using tls = await startRelay([
      `tls:${LOCALHOST}:0`,
      `tcp:${LOCALHOST}:${tcp.port}`,
      "--cert",
      certs.leafCert,
      "--key",
      certs.leafKey,
    ]);
    await using dgram = await startRelay([
      `udp:${LOCALHOST}:0`,
      `udp:${LOCALHOST}:${udp.port}`,
      "--loss",
      "5%",
      "--corrupt",
      "5%",
      "--duplicate",
      "5%",
    ]);
    for (const port of [plain.port, tls.port]) {
      await Promise.all(Array.from({ length: 20 }, async (_, i) => {
        const conn = await Deno.connect({ hostname: LOCALHOST, port });
        try {
          await writeAll(conn, randomBytes(1 + Math.floor(Math.random() * 20_000)));
          if (i % 2 === 0) await conn.closeWrite();
        } catch {
          /* the relay may close a garbage TLS handshake first */
        } finally {
          conn.close(); // often with unread data: a reset
        }
      }));
    }
    const to = { transport: "udp" as const, hostname: LOCALHOST, port: dgram.port };
    for (let c = 0; c < 5; c++) {
      using s = udpClient();
      for (let i = 0; i < 200; i++) await s.send(randomBytes(Math.floor(Math.random() * 1500)), to);
    }
    // Every relay still serves.
    using conn = await Deno.connect({ hostname: LOCALHOST, port: plain.port });
    assertEquals(
      new TextDecoder().decode(await exchange(conn, new TextEncoder().encode("ok"))),
      "ok",
    );
    using secure = await Deno.connectTls({ hostname: LOCALHOST, port: tls.port, caCerts: [ca] });
    assertEquals(
      new TextDecoder().decode(await exchange(secure, new TextEncoder().encode("ok"))),
      "ok",
    );
    using s = udpClient();
    let answered = false;
    for (let i = 0; i < 20 && !answered; i++) {
      await s.send(new TextEncoder().encode("ok"), to);
      answered = await receiveWithin(s, 500).then(() => true, () => false);
    }
    assert(answered, "the UDP relay answered nothing after the fuzzing");
    for (const relay of [plain, tls, dgram]) assertEquals((await relay.stop()).code, 0);
  } finally {
    await tcp.close();
    await udp.close();
  }
});

const haveSocat = hasCommand("socat");
const haveNcat = hasCommand("ncat");

Deno.test({
  name: "relay interop: a socat echo behind the relay and ncat in front of it, byte-exact",
  ignore: !haveSocat || !haveNcat,
  fn: async () => {
    const { peer: socat, port } = await startOnFreePort(
      "tcp",
      LOCALHOST,
      (p) =>
        spawnPeer("socat", [`TCP-LISTEN:${p},bind=${LOCALHOST},reuseaddr,fork`, "PIPE"], {
          timeoutMs: 30_000,
        }),
      (_peer, p) => waitForTcp(LOCALHOST, p),
    );
    try {
      await using relay = await startRelay([`tcp:${LOCALHOST}:0`, `tcp:${LOCALHOST}:${port}`]);
      const payload = randomBytes(1 << 20);
      await using ncat = spawnPeer("ncat", [LOCALHOST, String(relay.port)], {
        stdin: "piped",
        timeoutMs: 30_000,
      });
      await ncat.write(payload);
      const got = await ncat.waitForOutput(payload.length, 20_000);
      assertEquals(sha256(got.subarray(0, payload.length)), sha256(payload));
    } finally {
      await socat.stop();
    }
  },
});

Deno.test({
  name: "relay interop: socat in front of the relay, a netkit server behind it, byte-exact",
  ignore: !haveSocat,
  fn: async () => {
    await using server = await startServer(["--host", LOCALHOST]);
    await using relay = await startRelay([`tcp:${LOCALHOST}:0`, `tcp:${LOCALHOST}:${server.port}`]);
    const payload = randomBytes(1 << 20);
    await using socat = spawnPeer("socat", ["-", `TCP:${LOCALHOST}:${relay.port}`], {
      stdin: "piped",
      timeoutMs: 30_000,
    });
    await socat.write(payload);
    await socat.closeStdin(); // socat half-closes; the relay passes it on; the echo ends
    const result = await socat.wait();
    assertEquals(result.code, 0, result.stderr);
    assertEquals(sha256(result.stdout), sha256(payload));
  },
});

Deno.test("relay usage errors: one line, exit 2, and TCP loss points to compare --loss", async () => {
  const cases: [string[], RegExp][] = [
    [
      ["tcp:0", "tcp:127.0.0.1:80", "--loss", "5%"],
      /'--loss' is for UDP: .*'netkit compare --loss'/,
    ],
    [["tcp:0", "tcp:127.0.0.1:80", "--up-duplicate", "1%"], /'--up-duplicate' is for UDP/],
    [["udp:0", "udp:127.0.0.1:53", "--reset-after", "1MB"], /'--reset-after' is a TCP toxic/],
    [["udp:0", "tcp:127.0.0.1:80"], /not udp to tcp/],
    [["tcp:0"], /needs LISTEN and TARGET/],
    [["tcp:0", "tcp:80"], /Invalid TARGET: the target 'tcp:80' needs a host/],
    [["tls:0", "tcp:127.0.0.1:80"], /'tls:' LISTEN needs '--cert FILE'/],
    [["udp:0", "udp:127.0.0.1:53", "--loss", "120%"], /Invalid value '120%' for '--loss'/],
    [["tcp:0", "tcp:127.0.0.1:80", "--queue", "lots"], /Invalid value 'lots' for '--queue'/],
  ];
  for (const [args, message] of cases) {
    const result = await runNetkit(["relay", ...args]);
    assertEquals(result.code, 2, args.join(" "));
    assertMatch(result.stderr, message);
    assertEquals(result.stderr.split("\n").length, 2, result.stderr); // one line
  }
});
