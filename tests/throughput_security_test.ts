/**
 * End-to-end tests of the throughput tests' defences (issue 9, items 1–4),
 * against the real server run with the binary's permissions:
 *
 * - UDP reflection: a UDP stream is bound only to an address that proved it
 *   receives (the test's secret in the hello, a challenge echoed back), from
 *   the control connection's IP unless `--allow-udp-from-any-ip`; an unproven
 *   address gets at most 3x its bytes and 4 datagrams; a bound flow is never
 *   taken over; a sending server stops when the client stops acknowledging;
 *   a forged-source hello (raw socket, in a network namespace of this test's
 *   own) gets no stream while a legitimate test runs.
 * - The gate: `--deny` and `--rate-limit` cover a test's UDP port.
 * - A Unix-socket server refuses UDP tests; test UDP ports bind to the
 *   address the control connection arrived on.
 * - Memory: `--max-test-memory` refuses tests beyond it, and the server's RSS
 *   stays bounded under the issue's load.
 *
 * Where a test proves that a datagram does NOT come, it first waits for one
 * the server sends later on the same path (the server reads its socket in
 * order), then allows a short bounded wait.
 *
 * @module
 */

import { assert, assertEquals, assertGreater, assertLessOrEqual, assertMatch } from "@std/assert";
import { deadline } from "@std/async/deadline";
import { hasCommand, NETKIT_RUN, ROOT_DIR, runNetkit, startServer } from "./support/cli.ts";
import { NATIVE_MISSING } from "./support/engines.ts";
import { spawnPeer } from "./support/peers.ts";
import {
  datagram,
  hello,
  Inbox,
  KIND,
  kindOf,
  memoryOf,
  proof,
  RawControl,
  udpBoundAddress,
} from "./support/throughput_wire.ts";

/** How long a test waits for a datagram that must NOT come (after the server proved it is past it). */
const ABSENCE_MS = 300;

/** The request of a UDP test the server sends (`down`) for `duration_ms` at `bitrate` bit/s. */
function udpDown(duration_ms: number, bitrate: number) {
  return { proto: "udp", direction: "down", duration_ms, bitrate };
}

/** Bind `flow` to `stream` of the test announced by `ready`: hello, challenge, proof, ack. */
async function bind(flow: Inbox, ready: Record<string, unknown>, stream = 0): Promise<void> {
  const port = ready.udp_port as number;
  const h = hello(ready, stream);
  await flow.send(h, port);
  const challenge = await flow.expect(KIND.challenge, 5000, "challenge to a valid hello");
  assertLessOrEqual(challenge.length, h.length, "a challenge is no larger than the hello");
  await flow.send(proof(challenge), port);
  await flow.expect(KIND.helloAck, 5000, "ack of a proof");
}

Deno.test("udp flow binding: another IP, a wrong secret and an unproven address get no stream (at most 3x their bytes, 4 datagrams); the proven flow gets it and cannot be taken over", async () => {
  await using server = await startServer(["--host", "127.0.0.1", "-v"]);
  await using control = await RawControl.open(server.port, udpDown(3000, 2_000_000));
  const ready = await control.expect("ready");
  const port = ready.udp_port as number;
  await using otherIp = new Inbox("127.0.0.2");
  await using wrongSecret = new Inbox("127.0.0.1");
  await using unproven = new Inbox("127.0.0.1");
  await using legit = new Inbox("127.0.0.1");

  // The right secret from another IP, and a wrong secret from the right one: nothing at all.
  for (let i = 0; i < 5; i++) {
    await otherIp.send(hello(ready), port);
    await wrongSecret.send(hello(ready, 0, new Uint8Array(16).fill(7)), port);
  }
  // An address that never answers its challenge (a victim whose address was forged).
  for (let i = 0; i < 20; i++) await unproven.send(hello(ready), port);
  await bind(legit, ready);
  assertEquals(kindOf((await unproven.next(ABSENCE_MS))!.data), KIND.challenge);
  assertEquals(await otherIp.next(ABSENCE_MS), undefined, "a hello from another IP was answered");
  assertEquals(await wrongSecret.next(0), undefined, "a hello with a wrong secret was answered");

  await control.expect("go");
  // The proven flow receives the stream...
  await legit.expect(KIND.data, 5000, "data on the bound flow");
  // ...and a later hello and proof from elsewhere on the same IP cannot take it over.
  const stranger = new Inbox("127.0.0.1");
  try {
    await stranger.send(hello(ready), port);
    await stranger.send(datagram({ key: ready.udp_key as number, kind: KIND.proof }, 16), port);
    legit.clear();
    await legit.expect(KIND.data, 5000, "data on the bound flow after the takeover attempt");
    assertEquals(await stranger.next(ABSENCE_MS), undefined, "a takeover attempt was answered");
  } finally {
    await stranger[Symbol.asyncDispose]();
  }
  // The unproven address got challenges only: at most 4, at most 3x what it sent.
  assertLessOrEqual(unproven.datagrams, 4);
  assertLessOrEqual(unproven.bytes, 3 * unproven.sent);
  for (let got; (got = await unproven.next(0));) assertEquals(kindOf(got.data), KIND.challenge);
  assertEquals(otherIp.datagrams + wrongSecret.datagrams, 0);
  control.close();
  const { stderr } = await server.stop();
  assertMatch(stderr, /ignored (\d+) UDP hello\(s\)\/proof\(s\) that did not match/);
  const ignored = Number(/ignored (\d+) UDP hello/.exec(stderr)![1]);
  assertGreater(ignored, 10, stderr); // 5 other IP + 5 wrong secret + the takeover
});

Deno.test("--allow-udp-from-any-ip: a flow from another IP (127.0.0.2) binds once it proves its address, and receives the test", async () => {
  await using server = await startServer(["--host", "127.0.0.1", "--allow-udp-from-any-ip"]);
  await using control = await RawControl.open(server.port, udpDown(1000, 1_000_000));
  const ready = await control.expect("ready");
  await using flow = new Inbox("127.0.0.2");
  await bind(flow, ready);
  await control.expect("go");
  await flow.expect(KIND.data, 5000, "data to the proven flow from another IP");
});

Deno.test("a sending server stops within seconds when the client stops acknowledging (the watchdog counts reported bytes, not sent ones); a reporting client runs past that", async () => {
  await using server = await startServer(["--host", "127.0.0.1", "-v"]);
  await using control = await RawControl.open(server.port, udpDown(30_000, 1_000_000));
  const ready = await control.expect("ready");
  await using flow = new Inbox("127.0.0.1");
  await bind(flow, ready);
  await control.expect("go");
  const go = performance.now();
  await flow.expect(KIND.data, 5000, "data");
  // No progress lines: the server must give up long before its 30 s.
  const ended = await control.next(15_000);
  const after = performance.now() - go;
  assert(ended === null || ended.type === "error", JSON.stringify(ended));
  assert(after < 10_000, `the unacknowledged test ran ${after} ms`);
  console.log(`unacknowledged 30 s test ended after ${(after / 1000).toFixed(1)} s`);
  // A real client reports its progress and runs its whole 4 s (longer than the 3 s stall).
  const result = await runNetkit([
    "client",
    "--throughput",
    "--proto",
    "udp",
    "--reverse",
    "--bitrate",
    "5M",
    "--duration",
    "4s",
    "--json",
    `127.0.0.1:${server.port}`,
  ]);
  assertEquals(result.code, 0, result.stderr);
  const doc = JSON.parse(result.text);
  assertGreater(doc.down.sum_received.bytes, 0);
  assertGreater(doc.down.sum_sent.seconds, 3.5);
  const { stderr } = await server.stop();
  assertMatch(stderr, /ended early \(no data moved for 3 s: client gone\)/);
  assertEquals((stderr.match(/: done, /g) ?? []).length, 1, stderr);
});

Deno.test("--deny 127.0.0.2: the host refused on the main port gets nothing from a test's UDP port; --rate-limit covers the test port too", async () => {
  await using server = await startServer([
    "--proto",
    "both",
    "--host",
    "127.0.0.1",
    "--deny",
    "127.0.0.2",
    "--allow-udp-from-any-ip", // so that only the gate can refuse 127.0.0.2
    "--rate-limit",
    "20",
    "-v",
  ]);
  await using denied = new Inbox("127.0.0.2");
  await using allowed = new Inbox("127.0.0.1");
  // The main port: 127.0.0.2 is refused, 127.0.0.1 echoed.
  await denied.send(new TextEncoder().encode("ping"), server.port);
  await allowed.send(new TextEncoder().encode("ping"), server.port);
  assert(await allowed.next(5000), "127.0.0.1 echoed on the main port");
  assertEquals(await denied.next(ABSENCE_MS), undefined, "127.0.0.2 echoed on the main port");

  await using control = await RawControl.open(server.port, udpDown(2000, 1_000_000));
  const ready = await control.expect("ready");
  const port = ready.udp_port as number;
  // The test's port: a valid hello from 127.0.0.2 is dropped by the gate; from 127.0.0.1, answered.
  for (let i = 0; i < 3; i++) await denied.send(hello(ready), port);
  await using flow = new Inbox("127.0.0.1");
  await bind(flow, ready);
  await control.expect("go");
  await flow.expect(KIND.data, 5000, "data to the allowed flow");
  assertEquals(await denied.next(ABSENCE_MS), undefined, "127.0.0.2 got something");
  // A flood on the test's port is rate-limited like one on the main port.
  for (let i = 0; i < 100; i++) {
    await allowed.send(datagram({ key: ready.udp_key as number, kind: KIND.data, seq: i }), port);
  }
  // The server read past the flood once the bound flow's repeated hello is acked again (its
  // bucket refills at 20 a second).
  flow.clear();
  let reacked = false;
  for (let attempt = 0; attempt < 50 && !reacked; attempt++) {
    await flow.send(hello(ready), port);
    for (let got; !reacked && (got = await flow.next(100));) {
      reacked = kindOf(got.data) === KIND.helloAck;
    }
  }
  assert(reacked, "the bound flow's hello was never acked after the flood");
  control.close();
  const { stderr } = await server.stop();
  const summary = stderr.split("\n").find((l) => l.startsWith("summary: ")) ?? "";
  const denials = Number(/([\d,]+) denied/.exec(summary)?.[1]);
  assertGreater(denials, 3, summary); // the echo request and the three hellos
  assertMatch(summary, /[\d,]+ datagrams rate-limited/);
  assertMatch(stderr, new RegExp(`rate-limited udp 127\\.0\\.0\\.1:${allowed.port}:`));
  assertEquals(denied.datagrams, 0);
  console.log(`denied host: ${denied.datagrams} datagrams back; ${summary}`);
});

Deno.test("a Unix-socket server refuses UDP throughput tests with a clear error line", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/nk.sock`;
  try {
    await using server = await startServer(["--path", path]);
    const conn = await Deno.connect({ transport: "unix", path });
    const start = { type: "start", proto: "udp", direction: "down", parallel: 1 };
    await using control = await RawControl.raw(
      conn,
      `NKCTL/2 ${JSON.stringify({ ...start, duration_ms: 1000, size: 1400, bitrate: 0 })}\n`,
    );
    const reply = await control.expect("error");
    assertMatch(String(reply.message), /Unix socket only and opens no UDP ports/);
    assertEquals(await control.next(), null, "the server closes the control connection");
    assertEquals(server.lines, [`listening on unix ${path}`]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a test's UDP port binds to the address its control connection arrived on, never the wildcard", async () => {
  for (const [host, dial] of [["127.0.0.1", "127.0.0.1"], ["0.0.0.0", "127.0.0.2"]]) {
    await using server = await startServer(["--host", host!]);
    await using control = await RawControl.open(server.port, {
      proto: "udp",
      direction: "up",
      duration_ms: 1000,
    }, dial);
    const ready = await control.expect("ready");
    assertEquals(await udpBoundAddress(ready.udp_port as number), dial, `server on ${host}`);
  }
});

const MIB = 1024 * 1024;

Deno.test("--max-test-memory: 128 TCP streams of 4 MiB reversed are refused; tests fill the 256 MiB budget, one more is refused; server RSS stays bounded and the budget comes back", async () => {
  await using server = await startServer(["--host", "127.0.0.1", "-v"]);
  const pid = server.child.pid;
  const before = await memoryOf(pid);
  const big = { proto: "tcp", direction: "down", parallel: 128, size: 4 * MIB, duration_ms: 3000 };
  // The issue's load, six times: each refused at once, with the numbers.
  for (let i = 0; i < 6; i++) {
    await using control = await RawControl.open(server.port, big);
    const reply = await control.expect("error");
    assertMatch(
      String(reply.message),
      /128 streams of 4 MiB \(tcp down\) needs 512 MiB of buffers, over this server's 128 MiB per test/,
    );
  }
  // 16 streams of 4 MiB = 64 MiB each: four fill the budget, the fifth and sixth are refused.
  const fits = { ...big, parallel: 16, bitrate: 10_000_000 };
  const controls: RawControl[] = [];
  const data: Deno.Conn[] = [];
  try {
    const replies = [];
    for (let i = 0; i < 6; i++) {
      const control = await RawControl.open(server.port, fits);
      controls.push(control);
      replies.push(await control.next());
    }
    assertEquals(replies.map((r) => r?.type), [
      "ready",
      "ready",
      "ready",
      "ready",
      "error",
      "error",
    ]);
    assertMatch(String(replies[4]!.message), /test memory is taken \(256 MiB of 256 MiB by 4/);
    // The four run: every stream opens, and the server writes its 4 MiB blocks to all 64.
    for (const [i, control] of controls.slice(0, 4).entries()) {
      for (let s = 0; s < 16; s++) {
        const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
        data.push(conn);
        await conn.write(new TextEncoder().encode(`NKDATA/1 ${replies[i]!.test_id} ${s}\n`));
      }
      await control.expect("go");
    }
    // Read a first megabyte from every stream: all 64 writers are under way.
    const buf = new Uint8Array(256 * 1024);
    await Promise.all(data.map(async (conn) => {
      for (let got = 0; got < MIB;) {
        const n = await conn.read(buf);
        if (n === null) break;
        got += n;
      }
    }));
    const during = await memoryOf(pid);
    // Unshared, 64 writers of 4 MiB would hold 256 MiB; shared, one block of 4 MiB.
    assertLessOrEqual(during.hwmMiB - before.rssMiB, 96, JSON.stringify({ before, during }));
  } finally {
    for (const c of [...controls, ...data]) {
      try {
        c.close();
      } catch { /* closed */ }
    }
  }
  // The budget comes back once the tests end: a new test of 64 MiB is admitted.
  let admitted: Record<string, unknown> | null = null;
  for (let attempt = 0; attempt < 50 && admitted?.type !== "ready"; attempt++) {
    await using control = await RawControl.open(server.port, fits);
    admitted = await control.next();
    if (admitted?.type !== "ready") await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assertEquals(admitted?.type, "ready", JSON.stringify(admitted));
  const after = await memoryOf(pid);
  assertLessOrEqual(after.rssMiB - before.rssMiB, 96, JSON.stringify({ before, after }));
  console.log(
    `server RSS before ${before.rssMiB.toFixed(0)} MiB, peak ${
      after.hwmMiB.toFixed(0)
    } MiB, after ${after.rssMiB.toFixed(0)} MiB`,
  );
});

Deno.test("an NKCTL/1 request from an older client gets one error line naming both protocol versions", async () => {
  await using server = await startServer(["--host", "127.0.0.1"]);
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
  await using control = await RawControl.raw(conn, 'NKCTL/1 {"type":"start","proto":"tcp"}\n');
  const reply = await control.expect("error");
  assertMatch(String(reply.message), /NKCTL\/2, the client NKCTL\/1: run the same netkit version/);
  assertEquals(await control.next(), null);
});

// ---------------------------------------------------------------- forged source, in a namespace

/** Why this machine cannot run the namespace test, or undefined if it can. */
function noNamespaces(): string | undefined {
  if (Deno.build.os !== "linux") return "network namespaces need Linux";
  if (Deno.uid() !== 0) return "not root (a namespace and a raw socket need it)";
  const missing = ["ip", "python3"].filter((c) => !hasCommand(c));
  return missing.length > 0 ? `${missing.join(", ")} not installed` : undefined;
}
const NO_NAMESPACES = noNamespaces();

/**
 * Inside the namespace: open a UDP down test at full speed, then forge its hello (with the
 * right secret) from two victims' addresses with a raw socket: 127.0.0.2 (another IP) and
 * 127.0.0.1 on another port (the control's IP, so only the challenge stops it). Prints what
 * each victim received as JSON.
 */
const FORGER = `
import json, select, socket, struct, sys, time
port = int(sys.argv[1])
ctl = socket.create_connection(("127.0.0.1", port), timeout=5)
start = {"type": "start", "proto": "udp", "direction": "down", "parallel": 1,
         "duration_ms": 5000, "size": 1400, "bitrate": 0}
ctl.sendall(b"NKCTL/2 " + json.dumps(start).encode() + b"\\n")
ready = json.loads(ctl.makefile("rb").readline())
udp_port, key, secret = ready["udp_port"], ready["udp_key"], bytes.fromhex(ready["udp_secret"])
victims = {}
for name, ip in (("other_ip", "127.0.0.2"), ("same_ip", "127.0.0.1")):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((ip, 0))
    victims[name] = s
raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
hello = b"NKT1" + struct.pack(">IHHIId", key, 0, 1, 0, 0, 0.0) + secret
sent = 0
for _ in range(10):
    for s in victims.values():
        src, sport = s.getsockname()
        udp = struct.pack(">HHHH", sport, udp_port, 8 + len(hello), 0) + hello
        ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
                         socket.inet_aton(src), socket.inet_aton("127.0.0.1"))
        raw.sendto(ip + udp, ("127.0.0.1", 0))
    sent += len(hello)
got = {name: {"datagrams": 0, "bytes": 0, "kinds": []} for name in victims}
until = time.monotonic() + 2.0
while time.monotonic() < until:
    ready_socks, _, _ = select.select(list(victims.values()), [], [], max(0, until - time.monotonic()))
    for name, s in victims.items():
        if s in ready_socks:
            data = s.recv(65536)
            got[name]["datagrams"] += 1
            got[name]["bytes"] += len(data)
            if len(data) >= 12 and len(got[name]["kinds"]) < 100:
                got[name]["kinds"].append(struct.unpack(">H", data[10:12])[0])
print(json.dumps({"sent_per_victim": sent, "victims": got}))
`;

Deno.test({
  name:
    "a forged-source hello (raw socket, in a namespace of its own) gets the victim no stream, at most 3x the forged bytes, while a legitimate test runs",
  ignore: NO_NAMESPACES !== undefined && Deno.env.get("NETKIT_REQUIRE_PEERS") !== "1",
  async fn() {
    const ns = `nk-udpsec-${Deno.pid}-${
      crypto.getRandomValues(new Uint32Array(1))[0]!.toString(36)
    }`;
    const ip = async (...args: string[]) => {
      const { code, stderr } = await new Deno.Command("ip", { args, stderr: "piped" }).output();
      assertEquals(code, 0, `ip ${args.join(" ")}: ${new TextDecoder().decode(stderr)}`);
    };
    await ip("netns", "add", ns);
    try {
      await ip("-n", ns, "link", "set", "lo", "up");
      const wrap = ["ip", "netns", "exec", ns];
      await using server = await startServer(["--host", "127.0.0.1", "-v"], { wrap });
      const forger = new Deno.Command("ip", {
        args: [...wrap.slice(1), "python3", "-c", FORGER, String(server.port)],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const legit = runNetkit([
        "client",
        "--throughput",
        "--proto",
        "udp",
        "--reverse",
        "--bitrate",
        "20M",
        "--duration",
        "2s",
        "--json",
        `127.0.0.1:${server.port}`,
      ], { wrap });
      const [forged, result] = await Promise.all([forger, legit]);
      const decoder = new TextDecoder();
      assertEquals(forged.code, 0, decoder.decode(forged.stderr));
      const report = JSON.parse(decoder.decode(forged.stdout));
      const { other_ip: otherIp, same_ip: sameIp } = report.victims;
      // Another IP: not even a challenge. The control's IP: challenges only, 3x bound, no data.
      assertEquals(otherIp.datagrams, 0, JSON.stringify(report));
      // The forged hellos did arrive (the victim on the control's IP was challenged)...
      assertGreater(sameIp.datagrams, 0, JSON.stringify(report));
      // ...and were answered with at most 4 challenges, nothing else.
      assertLessOrEqual(sameIp.datagrams, 4, JSON.stringify(report));
      assertLessOrEqual(sameIp.bytes, 3 * report.sent_per_victim, JSON.stringify(report));
      assert(sameIp.kinds.every((k: number) => k === KIND.challenge), JSON.stringify(report));
      // The legitimate test in the same namespace ran as usual.
      assertEquals(result.code, 0, result.stderr);
      const doc = JSON.parse(result.text);
      assertGreater(doc.down.sum_received.bytes, 1_000_000);
      const { stderr } = await server.stop();
      assertMatch(stderr, /ignored \d+ UDP hello/);
      console.log(
        `forged: ${
          JSON.stringify(report)
        }; legitimate test received ${doc.down.sum_received.bytes} B`,
      );
    } finally {
      await ip("netns", "delete", ns);
    }
  },
});

for (
  const [what, args] of [
    ["a UDP flood on a test's port (--gso -b 0, several times what the server can read)", [
      "--gso",
    ]],
    ["an unpaced reverse UDP test (-R -b 0: the server sends as fast as the kernel takes)", [
      "--reverse",
    ]],
  ] as const
) {
  Deno.test({
    name:
      `${what} does not stall the server's event loop: a TCP echo meanwhile answers in milliseconds, not seconds`,
    ignore: NATIVE_MISSING !== undefined || navigator.hardwareConcurrency < 2 ||
      !hasCommand("taskset"),
    async fn() {
      // Server and client on a core each, as two hosts would be: sharing one, the sender
      // slows to what the other end takes, and the socket runs dry now and then.
      await using server = await startServer(["--proto", "both", "--host", "127.0.0.1"], {
        wrap: ["taskset", "-c", "0"],
      });
      const port = String(server.port);
      await using flooder = spawnPeer("taskset", [
        ...["-c", "1", Deno.execPath(), ...NETKIT_RUN, "client"],
        ...["--throughput", "--proto", "udp", ...args, "--bitrate", "0", "--engine", "native"],
        ...["127.0.0.1", port, "--duration", "4s", "--interval-report", "1s"],
      ], { cwd: ROOT_DIR, timeoutMs: 20_000 });
      // The flood has run a second once its first interval line is out.
      const decoder = new TextDecoder();
      while (!/\]\s+(sent|received)/.test(decoder.decode(flooder.output()))) {
        await flooder.waitForOutput(flooder.output().length + 1, 15_000);
      }
      // Echoed by the event loop (not a probe): each reply waits for the loop to turn.
      using conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
      const buf = new Uint8Array(64);
      const rtts: number[] = [];
      for (let i = 0; i < 5; i++) {
        const at = performance.now();
        await conn.write(new TextEncoder().encode("ping\n"));
        let got = 0;
        while (got < 5) got += (await deadline(conn.read(buf.subarray(got)), 10_000)) ?? 5;
        rtts.push(performance.now() - at);
      }
      // Starved, a reply took 1–4 s (the flood's rest); the loop now turns every millisecond.
      assertLessOrEqual(Math.max(...rtts), 500, `TCP echoes during the flood (ms): ${rtts}`);
    },
  });
}
