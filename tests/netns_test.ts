/**
 * The probe against real kernel packet loss: a private network namespace whose
 * loopback drops a random 5% of packets (nftables `numgen random`), with
 * `netkit server --proto both` and the probe clients running inside it.
 *
 * UDP must report exactly the loss the kernel caused (the drop rule's counter
 * plus any socket-buffer overflow the kernel counted), a round-trip rate of
 * 1 − 0.95² = 9.75%; TCP must deliver every probe, once and in order, and pay
 * for it in latency: retransmissions hold back everything behind a lost
 * segment (head-of-line blocking), so its p99 RTT exceeds UDP's.
 *
 * Needs Linux, root, `ip` (iproute2) and `nft` (nftables). Without them the
 * test is skipped, except where `NETKIT_REQUIRE_PEERS=1` (CI), where it runs
 * and fails. The namespace is always deleted, also when the test fails.
 *
 * @example
 * ```sh
 * sudo deno test -q --no-prompt --allow-all --trace-leaks tests/netns_test.ts
 * ```
 *
 * @module
 */
import { assert, assertEquals, assertMatch, fail } from "@std/assert";
import { hasCommand, NETKIT_RUN, ROOT_DIR } from "./support/cli.ts";

/** Share of the packets (in percent) the namespace's loopback drops, each way. */
const DROP_PERCENT = 5;
/** A probe is lost if its request or its echo is dropped: 1 − 0.95² = 9.75%. */
const EXPECTED_UDP_LOSS_PERCENT = 100 * (1 - (1 - DROP_PERCENT / 100) ** 2);
const COUNT = 4000;
const RATE = 2000;
/**
 * Allowed distance of the UDP loss the rule caused from 9.75%, in percentage
 * points. Binomial: σ = √(p(1−p)/n) = √(0.0975 · 0.9025 / 4000) ≈ 0.47
 * points, so ±4 points is about 8.5σ: a miss means a wrong count, not bad luck.
 */
const UDP_LOSS_TOLERANCE = 4;
/** Hard deadline of the whole test: every child still running then is killed. */
const TEST_DEADLINE_MS = 35000;
/** Deadline of one setup or teardown command (`ip`, `nft`). */
const COMMAND_TIMEOUT_MS = 10000;

/** Why this machine cannot run the test, or undefined if it can. */
function unsupported(): string | undefined {
  if (Deno.build.os !== "linux") return "network namespaces need Linux";
  if (Deno.uid() !== 0) return "not root (creating a network namespace needs it)";
  const missing = ["ip", "nft"].filter((c) => !hasCommand(c));
  if (missing.length > 0) return `${missing.join(", ")} not installed (iproute2, nftables)`;
  return undefined;
}

const UNSUPPORTED = unsupported();
const REQUIRED = Deno.env.get("NETKIT_REQUIRE_PEERS") === "1";
if (UNSUPPORTED !== undefined && !REQUIRED) {
  console.warn(`skipping netns loss test: ${UNSUPPORTED}`);
}

/**
 * The loss, as one atomic nftables script. On the INPUT hook, not OUTPUT: a
 * packet dropped on output never leaves its sender, and netfilter returns the
 * drop to the sending socket as EPERM. UDP's sendto then fails (a local error,
 * not loss in the network), and TCP keeps the refused segment queued and
 * sends it again with the next one, so there is never a segment to detect as
 * lost and retransmit (measured: TCP p99 1.6–9.5 ms, UDP p99 2.7–4.5 ms, the
 * comparison a coin toss). On input the packet has been sent and then
 * vanishes, as on a wire: UDP loses it silently and TCP must detect the loss
 * and retransmit (measured: TCP p99 204–1452 ms, UDP p99 1.5–64 ms). On `lo`
 * every packet passes the input hook once, so each direction loses 5%.
 *
 * TCP handshake packets (SYN, SYN-ACK) are exempt: a lost SYN costs the 1 s
 * initial RTO, and two in a row (≈1% of runs) would exceed the probe's
 * connect timeout. They carry no probes, so the measurement is unchanged.
 *
 * UDP and TCP each get their own rule (one random draw per packet either
 * way) so that the UDP rule's `counter` says exactly how many probes and
 * echoes the kernel dropped on purpose.
 */
const NFT_SCRIPT = `
add table inet nk
add chain inet nk input { type filter hook input priority 0; policy accept; }
add rule inet nk input tcp flags & syn == syn accept
add rule inet nk input meta l4proto udp numgen random mod 100 < ${DROP_PERCENT} counter drop
add rule inet nk input meta l4proto tcp numgen random mod 100 < ${DROP_PERCENT} counter drop
`;

/** What a finished command printed. */
interface Finished {
  code: number;
  stdout: string;
  stderr: string;
}

/** Children of this test, killed all at once when the test's deadline passes. */
class Children {
  readonly #live = new Set<Deno.ChildProcess>();
  #expired = false;
  readonly #timer: ReturnType<typeof setTimeout>;

  constructor(deadlineMs: number) {
    this.#timer = setTimeout(() => {
      this.#expired = true;
      for (const child of this.#live) kill(child, "SIGKILL");
    }, deadlineMs);
  }

  /** Whether the deadline passed (and children were killed). */
  get expired(): boolean {
    return this.#expired;
  }

  /** Start `command args`; after the deadline only `teardown` commands may start. */
  spawn(
    command: string,
    args: string[],
    stdin: "piped" | "null",
    teardown = false,
  ): Deno.ChildProcess {
    if (this.#expired && !teardown) {
      throw new Error(`test deadline passed before ${command} ${args.join(" ")}`);
    }
    const child = new Deno.Command(command, {
      args,
      cwd: ROOT_DIR,
      stdin,
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#live.add(child);
    child.status.then(() => this.#live.delete(child));
    return child;
  }

  /** Run `command args` to completion (killed after `timeoutMs`), optionally fed `input`. */
  async run(
    command: string,
    args: string[],
    options: { input?: string; timeoutMs?: number; teardown?: boolean } = {},
  ): Promise<Finished> {
    const stdin = options.input === undefined ? "null" : "piped";
    const child = this.spawn(command, args, stdin, options.teardown);
    const timer = setTimeout(() => kill(child, "SIGKILL"), options.timeoutMs ?? COMMAND_TIMEOUT_MS);
    const feed = options.input === undefined ? Promise.resolve() : (async () => {
      const writer = child.stdin.getWriter();
      await writer.write(new TextEncoder().encode(options.input));
      await writer.close();
    })();
    try {
      const [{ code, stdout, stderr }] = await Promise.all([child.output(), feed.catch(() => {})]);
      const decoder = new TextDecoder();
      return { code, stdout: decoder.decode(stdout), stderr: decoder.decode(stderr) };
    } finally {
      clearTimeout(timer);
    }
  }

  dispose(): void {
    clearTimeout(this.#timer);
  }
}

function kill(child: Deno.ChildProcess, signal: Deno.Signal): void {
  try {
    child.kill(signal);
  } catch { /* already exited */ }
}

/** `ip netns exec NS command args…` (iproute2 execs the command: its pid is the child's). */
function inNamespace(ns: string, command: string, args: string[]): [string, string[]] {
  return ["ip", ["netns", "exec", ns, command, ...args]];
}

/** A `netkit server --proto both` running inside the namespace. */
interface NamespacedServer {
  port: number;
  /** SIGTERM (SIGKILL after a grace period), then wait for the exit and its output. */
  stop(): Promise<{ code: number; stderr: string }>;
}

/** Start the echo server in `ns` and wait for both of its `listening on` lines. */
async function startServerIn(children: Children, ns: string): Promise<NamespacedServer> {
  const child = children.spawn(
    ...inNamespace(ns, Deno.execPath(), [
      ...NETKIT_RUN,
      "server",
      "--proto",
      "both",
      "--host",
      "127.0.0.1",
      "--port",
      "0",
      "--verbose", // connect and disconnect lines (with the reason), shown if the test fails
    ]),
    "null",
  );
  const stderr = new Response(child.stderr).text();
  // One loop reads stdout to its end: it collects the `listening on` lines and
  // then keeps draining, so the server never blocks on a full pipe.
  const lines: string[] = [];
  let listening: () => void = () => {};
  const bothListening = new Promise<void>((resolve) => (listening = resolve));
  const stdoutDone = (async () => {
    let pending = "";
    for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
      pending += chunk;
      for (let nl; (nl = pending.indexOf("\n")) >= 0; pending = pending.slice(nl + 1)) {
        const line = pending.slice(0, nl);
        if (line.startsWith("listening on ")) lines.push(line);
        if (lines.length === 2) listening();
      }
    }
  })();
  let stopped: Promise<{ code: number; stderr: string }> | undefined;
  const stop = () => {
    stopped ??= (async () => {
      kill(child, "SIGTERM");
      const killer = setTimeout(() => kill(child, "SIGKILL"), 5000);
      const { code } = await child.status;
      clearTimeout(killer);
      await stdoutDone;
      return { code, stderr: await stderr };
    })();
    return stopped;
  };
  try {
    // Either both lines come, or stdout ends (the server exited, or was killed at the deadline).
    await Promise.race([bothListening, stdoutDone]);
    if (lines.length < 2) {
      const { code } = await stop();
      throw new Error(`server in ${ns} exited (${code}) before listening: ${await stderr}`);
    }
    assertMatch(lines[0] ?? "", /^listening on tcp 127\.0\.0\.1:\d+$/);
    const port = Number(/:(\d+)$/.exec(lines[0] ?? "")?.[1]);
    assertEquals(lines[1], `listening on udp 127.0.0.1:${port}`, "TCP and UDP share one port");
    return { port, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** The probe report's JSON, as far as this test reads it. */
interface ProbeJson {
  sent: number;
  received: number;
  lost: number;
  lost_percent: number;
  out_of_order: number;
  duplicates: number;
  malformed: number;
  rtt_ms: { p50: number; p99: number; max: number };
}

/** Run `netkit client --probe` inside `ns` and parse its JSON report. */
async function probeIn(
  children: Children,
  ns: string,
  proto: "tcp" | "udp",
  port: number,
  timeout: string,
): Promise<ProbeJson> {
  const result = await children.run(
    ...inNamespace(ns, Deno.execPath(), [
      ...NETKIT_RUN,
      "client",
      "--probe",
      "--proto",
      proto,
      "127.0.0.1",
      String(port),
      "--count",
      String(COUNT),
      "--rate",
      String(RATE),
      "--timeout",
      timeout,
      "--json",
    ]),
    { timeoutMs: TEST_DEADLINE_MS },
  );
  assertEquals(result.code, 0, `${proto} probe in ${ns} failed: ${result.stderr}`);
  return JSON.parse(result.stdout) as ProbeJson;
}

/** The drop rules' counters: packets dropped per protocol. */
async function droppedPackets(
  children: Children,
  ns: string,
): Promise<{ udp: number; tcp: number }> {
  const listed = await children.run(
    ...inNamespace(ns, "nft", ["list", "chain", "inet", "nk", "input"]),
  );
  assertEquals(listed.code, 0, `nft list chain: ${listed.stderr}`);
  const count = (proto: string) => {
    const match = new RegExp(
      `meta l4proto ${proto} numgen random mod 100 < \\d+ counter packets (\\d+)`,
    ).exec(listed.stdout);
    assert(match, `no ${proto} drop rule with a counter in:\n${listed.stdout}`);
    return Number(match[1]);
  };
  return { udp: count("udp"), tcp: count("tcp") };
}

/**
 * UDP datagrams the namespace's kernel dropped for want of socket buffer
 * (receive or send side; the client's and the server's sockets both live
 * there): loss that is real but not the rule's, e.g. when a loaded machine
 * stalls a process for a few hundred ms at 2000 probes/s.
 */
async function udpBufferDrops(children: Children, ns: string): Promise<number> {
  const snmp = await children.run(...inNamespace(ns, "cat", ["/proc/net/snmp"]));
  assertEquals(snmp.code, 0, `/proc/net/snmp in ${ns}: ${snmp.stderr}`);
  const [names, values] = snmp.stdout.split("\n").filter((l) => l.startsWith("Udp: "))
    .map((l) => l.split(/\s+/).slice(1));
  assert(names && values, `no Udp lines in /proc/net/snmp:\n${snmp.stdout}`);
  const field = (name: string) => {
    const i = names.indexOf(name);
    assert(i >= 0, `no Udp ${name} in /proc/net/snmp`);
    return Number(values[i]);
  };
  // InErrors counts every datagram dropped on receive (RcvbufErrors, MemErrors, checksums).
  return field("InErrors") + field("SndbufErrors");
}

Deno.test({
  name:
    "in a netns dropping 5% of packets each way, udp probe counts every kernel drop (~9.75%), tcp delivers all in order with a higher p99",
  ignore: UNSUPPORTED !== undefined && !REQUIRED,
  async fn() {
    if (UNSUPPORTED !== undefined) fail(`NETKIT_REQUIRE_PEERS=1 but ${UNSUPPORTED}`);
    const children = new Children(TEST_DEADLINE_MS);
    const ns = `nk-${crypto.randomUUID().slice(0, 8)}`;
    let server: NamespacedServer | undefined;
    let created = false;
    let removal: Finished | undefined;
    let failed = true;
    try {
      const add = await children.run("ip", ["netns", "add", ns]);
      assertEquals(add.code, 0, `ip netns add ${ns}: ${add.stderr}`);
      created = true;
      const lo = await children.run("ip", ["-n", ns, "link", "set", "lo", "up"]);
      assertEquals(lo.code, 0, `ip -n ${ns} link set lo up: ${lo.stderr}`);
      const nft = await children.run(...inNamespace(ns, "nft", ["-f", "-"]), {
        input: NFT_SCRIPT,
      });
      assertEquals(
        nft.code,
        0,
        `nft rules in ${ns} (does this kernel have nf_tables?): ${nft.stderr}`,
      );

      server = await startServerIn(children, ns);
      const udp = await probeIn(children, ns, "udp", server.port, "2s");
      const overflow = await udpBufferDrops(children, ns);
      // TCP waits for every echo; a long timeout costs nothing then, and covers
      // a retransmission that is itself lost (RTO 200 ms, doubling).
      const tcp = await probeIn(children, ns, "tcp", server.port, "5s");
      const dropped = await droppedPackets(children, ns);
      // The probe's loss with the buffer overflows (not the rule's doing) taken out.
      const ruleLossPercent = udp.lost_percent - (100 * overflow) / udp.sent;
      console.log(
        `netns ${ns}: nft dropped ${dropped.udp} udp, ${dropped.tcp} tcp packets; ` +
          `udp lost ${udp.lost}/${udp.sent} (${udp.lost_percent}%, ${overflow} by buffer ` +
          `overflow, expected ${
            EXPECTED_UDP_LOSS_PERCENT.toFixed(2)
          }%), p99 ${udp.rtt_ms.p99} ms; ` +
          `tcp lost ${tcp.lost}/${tcp.sent}, p99 ${tcp.rtt_ms.p99} ms`,
      );

      assert(dropped.udp > 0, "the udp drop rule dropped nothing");
      assert(dropped.tcp > 0, "the tcp drop rule dropped nothing");
      assertEquals(udp.sent, COUNT, "udp probes sent");
      assertEquals(udp.received + udp.lost, udp.sent, "udp: received + lost = sent");
      // Each lost probe is one dropped datagram (its request or its echo), and
      // nothing else sends UDP in the namespace: the counts must agree exactly.
      assertEquals(
        udp.lost,
        dropped.udp + overflow,
        `udp lost vs the kernel's drops (${dropped.udp} by the rule, ${overflow} by overflow)`,
      );
      assert(
        Math.abs(ruleLossPercent - EXPECTED_UDP_LOSS_PERCENT) <= UDP_LOSS_TOLERANCE,
        `udp lost ${udp.lost_percent}% (${ruleLossPercent.toFixed(3)}% without buffer ` +
          `overflow), expected ${EXPECTED_UDP_LOSS_PERCENT.toFixed(2)}% ± ${UDP_LOSS_TOLERANCE}`,
      );
      assertEquals(udp.duplicates, 0, "udp duplicates");
      assertEquals(udp.malformed, 0, "udp malformed echoes");

      assertEquals(tcp.sent, COUNT, "tcp probes sent");
      assertEquals(tcp.received, tcp.sent, "tcp: every probe echoed");
      assertEquals(tcp.lost, 0, "tcp lost");
      assertEquals(tcp.out_of_order, 0, "tcp out of order");
      assertEquals(tcp.duplicates, 0, "tcp duplicates");
      assertEquals(tcp.malformed, 0, "tcp malformed echoes");
      // A lost segment holds back every probe behind it until it is retransmitted
      // (RTO ≥ 200 ms when the loss is at the tail or a retransmission is lost
      // too), which UDP never waits for. Measured: tcp p99 204–1452 ms, udp 1.5–64 ms.
      // A process stall long enough to overflow the UDP buffers (≳140 ms at
      // 2000/s, a badly overloaded machine) inflates UDP's tail to the same
      // order, so the comparison means nothing then (seen: 178 vs 230 ms).
      if (overflow === 0) {
        assert(
          tcp.rtt_ms.p99 > udp.rtt_ms.p99,
          `tcp p99 ${tcp.rtt_ms.p99} ms should exceed udp p99 ${udp.rtt_ms.p99} ms (retransmissions)`,
        );
      } else {
        console.warn(
          `not comparing p99s: ${overflow} udp datagrams overflowed socket buffers (a stalled process)`,
        );
      }
      failed = false;
    } finally {
      // Nothing may still run in the namespace when it goes: stop the server first.
      const stopped = await server?.stop();
      if (created) {
        removal = await children.run("ip", ["netns", "del", ns], { teardown: true }).catch(
          (err) => ({ code: -1, stdout: "", stderr: String(err) }),
        );
        if (removal.code !== 0) console.error(`ip netns del ${ns} failed: ${removal.stderr}`);
      }
      children.dispose();
      if (children.expired) console.error(`test deadline (${TEST_DEADLINE_MS} ms) passed`);
      if (stopped && (failed || stopped.code !== 0)) {
        console.error(`server in ${ns} exited ${stopped.code}; its stderr:\n${stopped.stderr}`);
      }
    }
    // Reached only when the body passed: the cleanup must have worked too.
    assertEquals(removal?.code, 0, `ip netns del ${ns}: ${removal?.stderr}`);
    const list = await new Deno.Command("ip", { args: ["netns", "list"] }).output();
    const names = new TextDecoder().decode(list.stdout).split("\n").map((l) => l.split(" ")[0]);
    assert(!names.includes(ns), `${ns} still listed by ip netns list`);
  },
});
