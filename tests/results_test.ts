/**
 * Results are never lost or wrong, through the real CLI: a closed stdout ends
 * a run quietly; Ctrl-C and SIGTERM keep the report of what ran; a server that
 * goes away leaves the partial report and one plain error line; the last
 * interval is printed; no UDP listener is not packet loss; scripts get exit
 * codes (5 for no reply, 1 above --max-loss); a TCP echo stream that gained a
 * byte is resynchronised.
 *
 * Signals are sent after the run's first output line, never after a sleep.
 *
 * @module
 */

import { assert, assertEquals, assertMatch, assertNotMatch } from "@std/assert";
import { NETKIT_RUN, ROOT_DIR, runNetkit, startServer } from "./support/cli.ts";

const LOCALHOST = "127.0.0.1";
/** A text interval line: `[  0.0-  0.2 s] udp       201 …`. */
const INTERVAL_LINE = /^\[ *[\d.]+- *[\d.]+ s\] (tcp|udp) /;
/** Upper bound on any one CLI run here; past it the child is killed and the test fails. */
const RUN_TIMEOUT_MS = 30_000;

/** A running CLI whose stdout is read line by line. */
interface Spawned extends AsyncDisposable {
  child: Deno.ChildProcess;
  /** The next stdout line, or null at the end of stdout. */
  line(): Promise<string | null>;
  /** The next stdout line that matches `pattern` (skipping headers and the like), or null. */
  lineMatching(pattern: RegExp): Promise<string | null>;
  /** Stop reading stdout and close our end of the pipe (a reader that went away). */
  closeStdout(): Promise<void>;
  /** Wait for the exit; the rest of stdout and all of stderr. */
  finish(): Promise<{ code: number; stdout: string; stderr: string; ms: number }>;
}

function spawnNetkit(args: string[]): Spawned {
  const child = new Deno.Command(Deno.execPath(), {
    args: [...NETKIT_RUN, ...args],
    cwd: ROOT_DIR,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const killer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch { /* exited */ }
  }, RUN_TIMEOUT_MS);
  const stderr = new Response(child.stderr).text();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let pending = "";
  let ended = false;
  const line = async (): Promise<string | null> => {
    while (true) {
      const nl = pending.indexOf("\n");
      if (nl >= 0) {
        const text = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        return text;
      }
      if (ended) return null;
      const { value, done } = await reader.read();
      if (done) ended = true;
      else pending += value;
    }
  };
  let finished: ReturnType<Spawned["finish"]> | undefined;
  const finish = () =>
    finished ??= (async () => {
      const from = performance.now();
      let rest = "";
      if (!ended) {
        for (let r; !(r = await reader.read()).done;) rest += r.value;
        ended = true;
      }
      const { code } = await child.status;
      clearTimeout(killer);
      return { code, stdout: pending + rest, stderr: await stderr, ms: performance.now() - from };
    })();
  const lineMatching = async (pattern: RegExp): Promise<string | null> => {
    for (let l; (l = await line()) !== null;) if (pattern.test(l)) return l;
    return null;
  };
  return {
    child,
    line,
    lineMatching,
    closeStdout: async () => {
      ended = true;
      await reader.cancel();
    },
    finish,
    async [Symbol.asyncDispose]() {
      try {
        child.kill("SIGKILL");
      } catch { /* exited */ }
      await finish();
    },
  };
}

/** A UDP socket on loopback that answers per `answer` (echo, drop, …) until disposed. */
function udpPeer(
  answer: (n: number) => boolean,
  port = 0,
): { port: number; received: () => number } & AsyncDisposable {
  const socket = Deno.listenDatagram({ transport: "udp", hostname: LOCALHOST, port });
  let n = 0;
  const loop = (async () => {
    try {
      while (true) {
        const [data, from] = await socket.receive();
        if (answer(n++)) await socket.send(data, from);
      }
    } catch { /* closed */ }
  })();
  return {
    port: (socket.addr as Deno.NetAddr).port,
    received: () => n,
    async [Symbol.asyncDispose]() {
      socket.close();
      await loop;
    },
  };
}

/** A TCP echo on `port` of loopback until disposed. */
function tcpEcho(port: number): AsyncDisposable {
  const listener = Deno.listen({ hostname: LOCALHOST, port });
  const conns = new Set<Deno.Conn>();
  const serve = async (conn: Deno.Conn) => {
    conns.add(conn);
    try {
      await conn.readable.pipeTo(conn.writable);
    } catch {
      /* peer gone */
    } finally {
      conns.delete(conn);
    }
  };
  const accepting = (async () => {
    for await (const conn of listener) serve(conn);
  })().catch(() => {});
  return {
    async [Symbol.asyncDispose]() {
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch { /* closed */ }
      }
      await accepting;
    },
  };
}

/**
 * A UDP peer (answering per `answer`) and a TCP echo on one loopback port, as
 * compare needs: the TCP port is taken first, then UDP on the same number
 * (another port is tried if that one's UDP side is taken).
 */
async function udpAndTcpEcho(
  answer: (n: number) => boolean,
): Promise<{ udp: ReturnType<typeof udpPeer> } & AsyncDisposable> {
  for (let attempt = 0;; attempt++) {
    const probe = Deno.listen({ hostname: LOCALHOST, port: 0 });
    const port = (probe.addr as Deno.NetAddr).port;
    probe.close();
    let udp: ReturnType<typeof udpPeer>;
    try {
      udp = udpPeer(answer, port);
    } catch (err) {
      if (attempt < 20 && err instanceof Deno.errors.AddrInUse) continue;
      throw err;
    }
    let tcp: AsyncDisposable;
    try {
      tcp = tcpEcho(port);
    } catch (err) {
      await udp[Symbol.asyncDispose]();
      if (attempt < 20 && err instanceof Deno.errors.AddrInUse) continue;
      throw err;
    }
    return {
      udp,
      async [Symbol.asyncDispose]() {
        await tcp[Symbol.asyncDispose]();
        await udp[Symbol.asyncDispose]();
      },
    };
  }
}

/** JSON lines of a `--json-stream` run. */
function events(text: string): { event: string; data: Record<string, unknown> }[] {
  return text.trim().split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
}

// ---------------------------------------------------------------------------
// 1. A closed stdout ends the run quietly
// ---------------------------------------------------------------------------

Deno.test("a closed stdout ends probe, json-stream, throughput, compare and message runs quietly with exit 0", async () => {
  await using server = await startServer(["--proto", "both", "--host", LOCALHOST]);
  const target = [LOCALHOST, String(server.port)];
  const runs: [string, string[]][] = [
    ["probe", ["client", "--probe", ...target, "--duration", "20s", "--interval-report", "100ms"]],
    [
      "probe --json-stream",
      [
        "client",
        "--probe",
        "--proto",
        "udp",
        ...target,
        "--duration",
        "20s",
        "--json-stream",
        "--interval-report",
        "100ms",
      ],
    ],
    [
      "throughput",
      ["client", "--throughput", ...target, "-t", "20s", "-b", "10M", "--interval-report", "100ms"],
    ],
    ["compare", ["compare", ...target, "--duration", "20s", "--interval-report", "100ms"]],
    ["message", ["client", ...target, "--message", "hi", "--count", "100000", "--interval", "1ms"]],
  ];
  for (const [name, args] of runs) {
    await using run = spawnNetkit(args);
    const first = await run.line();
    assert(first !== null && first.length > 0, `${name}: printed a first line`);
    await run.closeStdout();
    const { code, stderr, ms } = await run.finish();
    assertEquals(stderr, "", `${name}: no message on a closed stdout`);
    assertEquals(code, 0, `${name}: exit 0`);
    assert(ms < 10_000, `${name}: stopped at once, not at the end of its 20 s (${ms} ms)`);
  }
});

// ---------------------------------------------------------------------------
// 2. Interrupted runs keep their results
// ---------------------------------------------------------------------------

/** Start a `--json-stream` run reporting every 100 ms, send `signal` at its first interval event; its end. */
async function interruptAtFirstInterval(args: string[], signal: Deno.Signal) {
  await using run = spawnNetkit([...args, "--interval-report", "100ms", "--json-stream"]);
  assertEquals(JSON.parse((await run.line()) ?? "{}").event, "interval");
  run.child.kill(signal);
  return await run.finish();
}

Deno.test("Ctrl-C during a probe prints the report of what ran, marked interrupted, exit 130", async () => {
  await using server = await startServer(["--proto", "udp", "--host", LOCALHOST]);
  await using run = spawnNetkit([
    "client",
    "--probe",
    "--proto",
    "udp",
    LOCALHOST,
    String(server.port),
    "--duration",
    "30s",
    "--interval-report",
    "100ms",
  ]);
  assert((await run.lineMatching(INTERVAL_LINE)) !== null, "an interval line");
  run.child.kill("SIGINT");
  const { code, stdout, stderr } = await run.finish();
  assertEquals(code, 130, stderr);
  assertMatch(stdout, /udp probe to .*\(interrupted: the report covers what ran\)/);
  assertMatch(stdout, /sent [\d,]+ {2}received [\d,]+ {2}lost 0 /);
  assertEquals(stderr, "");
});

Deno.test("SIGTERM during a ping-pong prints the JSON report with interrupted: true, exit 143", async () => {
  await using server = await startServer(["--proto", "tcp", "--host", LOCALHOST]);
  const { code, stdout, stderr } = await interruptAtFirstInterval([
    "client",
    "--probe",
    "--ping-pong",
    LOCALHOST,
    String(server.port),
    "--duration",
    "30s",
  ], "SIGTERM");
  assertEquals(code, 143, stderr);
  const end = events(stdout).find((e) => e.event === "end");
  assertEquals(end?.data.interrupted, true);
  assert((end?.data.received as number) > 0, "the echoes before the signal are reported");
  assertEquals(end?.data.lost, 0, "in-flight echoes were waited for");
});

Deno.test("a second Ctrl-C skips the wait for echoes in flight", async () => {
  // A UDP peer that takes probes and never answers: the first Ctrl-C waits up to --timeout.
  await using silent = udpPeer(() => false);
  await using run = spawnNetkit([
    "client",
    "--probe",
    "--proto",
    "udp",
    LOCALHOST,
    String(silent.port),
    "--duration",
    "30s",
    "--timeout",
    "25s",
    "--interval-report",
    "100ms",
  ]);
  assert((await run.lineMatching(INTERVAL_LINE)) !== null, "an interval line");
  run.child.kill("SIGINT");
  // Sending has stopped once an interval reports nothing sent: now the wait is under way.
  assert((await run.lineMatching(/^\[.*\] udp +0 /)) !== null, "an interval with nothing sent");
  run.child.kill("SIGINT");
  const { code, stdout, ms } = await run.finish();
  assertEquals(code, 130);
  assertMatch(stdout, /\(interrupted/);
  assert(ms < 10_000, `ended at the second signal, not after the 25 s timeout (${ms} ms)`);
});

Deno.test("Ctrl-C during a throughput test prints both ends' figures of what ran, exit 130", async () => {
  await using server = await startServer(["--proto", "tcp", "--host", LOCALHOST]);
  const { code, stdout, stderr } = await interruptAtFirstInterval([
    "client",
    "--throughput",
    LOCALHOST,
    String(server.port),
    "-t",
    "30s",
    "-b",
    "50M",
  ], "SIGINT");
  assertEquals(code, 130, stderr);
  const end = events(stdout).find((e) => e.event === "end")?.data;
  assertEquals(end?.interrupted, true);
  const up = end?.up as { sum_sent: { bytes: number }; sum_received: { bytes: number } };
  assert(up.sum_sent.bytes > 0, "bytes sent before the signal are reported");
  assertEquals(up.sum_received.bytes, up.sum_sent.bytes, "the server's figures arrived");
});

Deno.test("Ctrl-C during a UDP --reverse test: the server stops sending at the client's report, exit 130", async () => {
  await using server = await startServer(["--proto", "tcp", "--host", LOCALHOST]);
  const { code, stdout, stderr, ms } = await interruptAtFirstInterval([
    "client",
    "--throughput",
    "--proto",
    "udp",
    "-R",
    LOCALHOST,
    String(server.port),
    "-t",
    "30s",
    "-b",
    "10M",
  ], "SIGINT");
  assertEquals(code, 130, stderr);
  assert(ms < 5_000, `the server's figures came at once, not after its 30 s (${ms} ms)`);
  const end = events(stdout).find((e) => e.event === "end")?.data;
  assertEquals(end?.interrupted, true);
  const down = end?.down as {
    sum_sent: { datagrams: number };
    sum_received: { datagrams: number };
  };
  assert(down.sum_sent.datagrams > 0, "the server's sent figures arrived");
  assert(down.sum_received.datagrams > 0, "the client's received figures are reported");
});

Deno.test("Ctrl-C during compare prints what ran with interrupted: true, exit 130", async () => {
  await using server = await startServer(["--proto", "both", "--host", LOCALHOST]);
  const { code, stdout, stderr } = await interruptAtFirstInterval([
    "compare",
    LOCALHOST,
    String(server.port),
    "--duration",
    "30s",
  ], "SIGINT");
  assertEquals(code, 130, stderr);
  const end = events(stdout).find((e) => e.event === "end")?.data;
  assertEquals(end?.interrupted, true);
  const tcp = end?.tcp as { sent: number; interrupted: boolean };
  assert(tcp.sent > 0);
  assertEquals(tcp.interrupted, true);
});

/** `stderr` is the one line saying the server went away, with no OS error or mode hint. */
function assertOneWentAwayLine(stderr: string): void {
  const lines = stderr.trim().split("\n");
  assertEquals(lines.length, 1, stderr);
  assertMatch(lines[0]!, /^error: tcp 127\.0\.0\.1:\d+ went away/);
  assertNotMatch(stderr, /os error|echo or discard mode/);
}

Deno.test("a server that dies mid-probe leaves the partial report and one 'went away' line", async () => {
  const server = await startServer(["--proto", "tcp", "--host", LOCALHOST]);
  try {
    await using run = spawnNetkit([
      "client",
      "--probe",
      LOCALHOST,
      String(server.port),
      "--duration",
      "30s",
      "--interval-report",
      "100ms",
    ]);
    assert((await run.lineMatching(INTERVAL_LINE)) !== null, "an interval line");
    await server.stop("SIGKILL");
    const { code, stdout, stderr } = await run.finish();
    assertEquals(code, 9, stderr);
    assertMatch(stdout, /tcp probe to .*\n {2}sent [\d,]+ {2}received [1-9]/);
    assertOneWentAwayLine(stderr);
  } finally {
    await server.stop("SIGKILL");
  }
});

Deno.test("a server that dies mid-throughput leaves the client's counts and one 'went away' line", async () => {
  const server = await startServer(["--proto", "tcp", "--host", LOCALHOST]);
  try {
    await using run = spawnNetkit([
      "client",
      "--throughput",
      LOCALHOST,
      String(server.port),
      "-t",
      "30s",
      "-b",
      "50M",
      "--interval-report",
      "100ms",
    ]);
    assertMatch((await run.line()) ?? "", /sent/);
    await server.stop("SIGKILL");
    const { code, stdout, stderr } = await run.finish();
    assertEquals(code, 9, stderr);
    assertMatch(stdout, /this client counted in [\d.]+ s:\n {2}sent +[\d.]+ [KMG]iB/);
    assertOneWentAwayLine(stderr);
  } finally {
    await server.stop("SIGKILL");
  }
});

// ---------------------------------------------------------------------------
// 3. The last interval is printed
// ---------------------------------------------------------------------------

Deno.test("probe interval lines add up to the totals, the final partial interval included", async () => {
  await using server = await startServer(["--proto", "udp", "--host", LOCALHOST]);
  const args = [
    "client",
    "--probe",
    "--proto",
    "udp",
    LOCALHOST,
    String(server.port),
    "--duration",
    "1050ms",
    "--interval-report",
    "200ms",
  ];
  const stream = await runNetkit([...args, "--json-stream"], { timeoutMs: RUN_TIMEOUT_MS });
  assertEquals(stream.code, 0, stream.stderr);
  const all = events(stream.text);
  const intervals = all.filter((e) => e.event === "interval").map((e) => e.data);
  const end = all.find((e) => e.event === "end")?.data;
  const sum = (key: string) => intervals.reduce((a, i) => a + (i[key] as number), 0);
  assertEquals(sum("sent"), end?.sent);
  assertEquals(sum("received"), end?.received);

  const text = await runNetkit(args, { timeoutMs: RUN_TIMEOUT_MS });
  assertEquals(text.code, 0, text.stderr);
  const sent = [...text.text.matchAll(/^\[.*\] udp +([\d,]+) /gm)]
    .reduce((a, m) => a + Number(m[1]!.replaceAll(",", "")), 0);
  const total = Number(/^ {2}sent ([\d,]+)/m.exec(text.text)?.[1]?.replaceAll(",", ""));
  assertEquals(sent, total);
});

Deno.test("throughput interval lines add up to the total sent, the final partial interval included", async () => {
  await using server = await startServer(["--proto", "tcp", "--host", LOCALHOST]);
  const result = await runNetkit([
    "client",
    "--throughput",
    LOCALHOST,
    String(server.port),
    "-t",
    "1050ms",
    "-b",
    "20M",
    "--interval-report",
    "200ms",
    "--json-stream",
  ], { timeoutMs: RUN_TIMEOUT_MS });
  assertEquals(result.code, 0, result.stderr);
  const all = events(result.text);
  const sent = all.filter((e) => e.event === "interval")
    .reduce((a, e) => a + (e.data.sent_bytes as number), 0);
  const end = all.find((e) => e.event === "end")?.data as { up: { sum_sent: { bytes: number } } };
  assertEquals(sent, end.up.sum_sent.bytes);
});

// ---------------------------------------------------------------------------
// 4. No UDP listener is not packet loss
// ---------------------------------------------------------------------------

Deno.test("probe, message and compare against a port with TCP but no UDP: nothing listens, exit 3", async () => {
  await using server = await startServer(["--proto", "tcp", "--host", LOCALHOST]);
  const port = String(server.port);
  const runs = [
    ["client", "--probe", "--proto", "udp", LOCALHOST, port, "--count", "100"],
    ["client", "--proto", "udp", LOCALHOST, port, "--message", "hi"],
    ["compare", LOCALHOST, port, "--count", "300"],
  ];
  for (const args of runs) {
    const result = await runNetkit(args, { timeoutMs: RUN_TIMEOUT_MS });
    assertEquals(result.code, 3, `${args.join(" ")}: ${result.stderr}`);
    assertEquals(
      result.stderr.trim().split("\n")[0],
      `error: nothing listens on udp 127.0.0.1:${port}: start a UDP echo server there (netkit server --proto udp or --proto both)`,
    );
    assertNotMatch(result.text, /lost|retransmi/);
  }
});

Deno.test("a UDP listener that never answers: 'no reply at all', not a UDP loss figure, exit 5", async () => {
  await using pair = await udpAndTcpEcho(() => false);
  const silent = pair.udp;
  const port = String(silent.port);
  const probe = await runNetkit(
    ["client", "--probe", "--proto", "udp", LOCALHOST, port, "--count", "20", "--timeout", "300ms"],
    { timeoutMs: RUN_TIMEOUT_MS },
  );
  assertEquals(probe.code, 5, probe.stderr);
  assertEquals(
    probe.stderr.trim(),
    `error: no reply at all: is anything listening on udp 127.0.0.1:${port}?`,
  );
  const compare = await runNetkit(
    ["compare", LOCALHOST, port, "--count", "20", "--timeout", "300ms"],
    { timeoutMs: RUN_TIMEOUT_MS },
  );
  assertEquals(compare.code, 5, compare.stderr);
  assertMatch(compare.stderr, /no reply at all: is anything listening on udp 127\.0\.0\.1:\d+\?/);
  assertNotMatch(compare.text, /no retransmission/);
});

// ---------------------------------------------------------------------------
// 5. Exit codes for scripts
// ---------------------------------------------------------------------------

Deno.test("a TCP probe that got no reply at all exits 5", async () => {
  await using server = await startServer([
    "--proto",
    "tcp",
    "--mode",
    "discard",
    "--host",
    LOCALHOST,
  ]);
  const result = await runNetkit(
    ["client", "--probe", LOCALHOST, String(server.port), "--count", "20", "--timeout", "300ms"],
    { timeoutMs: RUN_TIMEOUT_MS },
  );
  assertEquals(result.code, 5, result.stderr);
  assertMatch(result.stderr, /no reply at all from tcp 127\.0\.0\.1:\d+/);
  assertMatch(result.text, /sent 20 {2}received 0/, "the report is printed first");
});

Deno.test("--max-loss: loss above it exits 1, loss within it exits 0 (probe and compare)", async () => {
  // Every other datagram answered: 50% UDP loss; TCP on the same port echoes everything.
  await using pair = await udpAndTcpEcho((n) => n % 2 === 0);
  const lossy = pair.udp;
  const port = String(lossy.port);
  const probe = (max: string) =>
    runNetkit(
      [
        "client",
        "--probe",
        "--proto",
        "udp",
        LOCALHOST,
        port,
        "--count",
        "200",
        "--rate",
        "2000",
        "--timeout",
        "300ms",
        "--max-loss",
        max,
        "--json",
      ],
      { timeoutMs: RUN_TIMEOUT_MS },
    );
  const over = await probe("10");
  assertEquals(over.code, 1, over.stderr);
  assertMatch(over.stderr, /UDP lost 50\.00% of probes \(100 of 200\), more than --max-loss 10%/);
  assertEquals(JSON.parse(over.text).exit_code, 1);
  const within = await probe("60%");
  assertEquals(within.code, 0, within.stderr);

  const compare = await runNetkit(
    ["compare", LOCALHOST, port, "--count", "200", "--timeout", "300ms", "--max-loss", "5"],
    { timeoutMs: RUN_TIMEOUT_MS },
  );
  assertEquals(compare.code, 1, compare.stderr);
  assertMatch(compare.stderr, /^error: UDP lost [\d.]+% of probes .* more than --max-loss 5%/);
});

// ---------------------------------------------------------------------------
// 6. TCP probes resynchronise
// ---------------------------------------------------------------------------

Deno.test("a TCP echo stream with one stray byte first: 3,000 echoes matched, 1 malformed, no loss", async () => {
  await using server = await startServer(["--proto", "tcp", "--host", LOCALHOST]);
  // A proxy that forwards both ways, but sends the client one stray byte before the echoes.
  const listener = Deno.listen({ hostname: LOCALHOST, port: 0 });
  const proxied = (async () => {
    const client = await listener.accept();
    const upstream = await Deno.connect({ hostname: LOCALHOST, port: server.port });
    await client.write(new Uint8Array([0x4e]));
    await Promise.allSettled([
      client.readable.pipeTo(upstream.writable),
      upstream.readable.pipeTo(client.writable),
    ]);
  })();
  try {
    const result = await runNetkit([
      "client",
      "--probe",
      LOCALHOST,
      String((listener.addr as Deno.NetAddr).port),
      "--count",
      "3000",
      "--rate",
      "0",
      "--json",
    ], { timeoutMs: RUN_TIMEOUT_MS });
    assertEquals(result.code, 0, result.stderr);
    const doc = JSON.parse(result.text);
    assertEquals(doc.received, 3000);
    assertEquals(doc.lost, 0);
    assertEquals(doc.malformed, 1);
  } finally {
    listener.close();
    await proxied;
  }
});
