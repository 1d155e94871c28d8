/**
 * End-to-end tests of the lab (lib/lab/): `netkit compare` with impairment
 * flags and `netkit lab … -- COMMAND`, through the real CLI, each in its own
 * private network namespace whose loopback the kernel impairs.
 *
 * What they prove: UDP loses what the path dropped (5% each way gives 9.75%
 * of round trips, within binomial bounds) while TCP loses nothing and the
 * kernel's own counters show its retransmissions; `--rate` caps goodput;
 * findings cite the counters; `--delay` needs netem (where the kernel lacks
 * it, the run stops with one clear line, exit 2); an unprivileged user gets
 * the same through a user namespace; and nothing is left behind (process,
 * namespace, nftables table) after Ctrl-C or an error.
 *
 * Needs Linux, root (CI) or unprivileged user namespaces, iproute2 and
 * nftables; skipped without them unless `NETKIT_REQUIRE_PEERS=1`.
 *
 * @example
 * ```sh
 * sudo deno test -q --no-prompt --allow-all --trace-leaks tests/lab_test.ts
 * ```
 *
 * @module
 */
import { assert, assertEquals, assertMatch, fail } from "@std/assert";
import { hasCommand, NETKIT_RUN, ROOT_DIR, runNetkit } from "./support/cli.ts";

/** Why this machine cannot run the lab, or undefined if it can. */
function unsupported(): string | undefined {
  if (Deno.build.os !== "linux") return "network namespaces need Linux";
  const missing = ["ip", "tc", "nstat", "nft", "unshare"].filter((c) => !hasCommand(c));
  if (missing.length > 0) return `${missing.join(", ")} not installed (iproute2, nftables)`;
  const net = (flags: string[]) =>
    new Deno.Command("unshare", { args: [...flags, "true"], stderr: "null" }).outputSync().success;
  if (!net(["--net"]) && !net(["--user", "--map-root-user", "--net"])) {
    return "neither root nor unprivileged user namespaces";
  }
  return undefined;
}

const UNSUPPORTED = unsupported();
const REQUIRED = Deno.env.get("NETKIT_REQUIRE_PEERS") === "1";
const IGNORE = UNSUPPORTED !== undefined && !REQUIRED;
if (IGNORE) console.warn(`skipping lab tests: ${UNSUPPORTED}`);

function requireSupport(): void {
  if (UNSUPPORTED !== undefined) fail(`NETKIT_REQUIRE_PEERS=1 but ${UNSUPPORTED}`);
}

const COUNT = new Intl.NumberFormat("en-US");

/** The parts of `compare --json` on a lab path that these tests read. */
interface LabCompareJson {
  tcp: { sent: number; lost: number; out_of_order: number; duplicates: number };
  udp: { sent: number; received: number; lost: number; lost_percent: number };
  findings: string[];
  kernel: {
    tcp_retransmitted_segments: number;
    udp_rcvbuf_errors: number;
    udp_in_errors: number;
    impairment_drops: number;
    impairment_drops_udp: number;
    impairment_drops_tcp: number;
  };
  expected_udp_loss_percent: number;
  impairment: { description: string; loss_percent_each_way: number | null };
}

/**
 * The checks a 5%-each-way compare must pass, for `n` probes: UDP's loss is
 * exactly the kernel's drops, and the rule's share is within 5σ of 9.75%.
 */
function assertLossyCompare(doc: LabCompareJson, n: number): void {
  const k = doc.kernel;
  assertEquals(doc.impairment.loss_percent_each_way, 5);
  assertEquals(doc.impairment.description, "loss 5% each way by nftables");
  assertEquals(doc.expected_udp_loss_percent, 9.75);
  assertEquals(doc.udp.sent, n);
  // Each lost probe is one datagram the kernel dropped: by the rule, or on receive (buffers).
  assertEquals(doc.udp.lost, k.impairment_drops_udp + k.udp_in_errors, "udp lost vs kernel drops");
  const ruleLoss = (100 * k.impairment_drops_udp) / n;
  const sigma = 100 * Math.sqrt((0.0975 * 0.9025) / n);
  assert(
    Math.abs(ruleLoss - 9.75) <= 5 * sigma,
    `the rule dropped ${ruleLoss.toFixed(2)}% of round trips, not 9.75% ± ${
      (5 * sigma).toFixed(2)
    }`,
  );
  assertEquals(doc.tcp.lost, 0, "TCP retransmits: nothing lost");
  assertEquals(doc.tcp.out_of_order, 0);
  assertEquals(doc.tcp.duplicates, 0);
  assert(k.impairment_drops_tcp > 0, "the rule dropped TCP packets too");
  assert(k.tcp_retransmitted_segments > 0, "the kernel counted TCP retransmissions");
  assertEquals(k.impairment_drops, k.impairment_drops_udp + k.impairment_drops_tcp);
}

/** `compare --loss 5%` of `n` probes at 2,000 a second, each given 3 s, as `--json`. */
function compareAtLoss5(n: number): string[] {
  return [
    "compare",
    "--loss",
    "5%",
    "--count",
    String(n),
    "--rate",
    "2000",
    "--timeout",
    "3s",
    "--json",
  ];
}

Deno.test({
  name:
    "compare --loss 5% over 4,000 probes: UDP loses the 9.75% the kernel dropped, TCP nothing, and the findings cite the kernel's counters",
  ignore: IGNORE,
  async fn() {
    requireSupport();
    const n = 4000;
    const result = await runNetkit(compareAtLoss5(n), { timeoutMs: 60_000 });
    assertEquals(result.code, 0, result.stderr);
    const doc = JSON.parse(result.text) as LabCompareJson;
    const k = doc.kernel;
    console.log(
      `lab: udp lost ${doc.udp.lost}/${n} (${doc.udp.lost_percent}%, expected 9.75%); kernel ${
        JSON.stringify(k)
      }`,
    );
    assertLossyCompare(doc, n);
    const retransmits = `TCP retransmitted ${COUNT.format(k.tcp_retransmitted_segments)} segments`;
    assert(
      doc.findings.some((f) => f.includes(retransmits) && f.includes("kernel TcpRetransSegs")),
      `no finding cites '${retransmits}': ${doc.findings.join(" | ")}`,
    );
    const drops = `the loss rule dropped ${COUNT.format(k.impairment_drops_udp)} UDP datagrams`;
    assert(
      doc.findings.some((f) => f.includes(drops) && f.includes("9.75%")),
      `no finding cites '${drops}' and the expected 9.75%: ${doc.findings.join(" | ")}`,
    );
  },
});

Deno.test({
  name: "lab --rate 5M caps the goodput a TCP throughput receiver measures within 10% of 5 Mbit/s",
  ignore: IGNORE,
  async fn() {
    requireSupport();
    // --reverse: the client receives, so its intervals are the receiver's own measurement.
    const result = await runNetkit(
      [
        "lab",
        "--rate",
        "5M",
        "--",
        "client",
        "--throughput",
        "127.0.0.1",
        "5050",
        "-t",
        "4s",
        "--reverse",
        "--json-stream",
      ],
      { timeoutMs: 60_000 },
    );
    assertEquals(result.code, 0, result.stderr);
    assertMatch(result.stderr, /^lab: rate 5\.00 Mbit\/s by tbf/m);
    assertMatch(result.stderr, /^kernel counters in the lab: TCP retransmitted \d+ segments/m);
    const intervals = result.text.trim().split("\n").map((line) =>
      JSON.parse(line) as {
        event: string;
        data: { start_s: number; end_s: number; received_bytes: number };
      }
    ).filter((e) => e.event === "interval").map((e) => e.data);
    assert(intervals.length >= 3, `too few intervals: ${JSON.stringify(intervals)}`);
    // All bytes over the whole span: a stall on a loaded machine only moves bytes between intervals.
    const bytes = intervals.reduce((sum, i) => sum + i.received_bytes, 0);
    const span = intervals[intervals.length - 1]!.end_s - intervals[0]!.start_s;
    const goodput = (8 * bytes) / span;
    console.log(
      `lab --rate 5M: received ${(goodput / 1e6).toFixed(2)} Mbit/s over ${span.toFixed(2)} s (${
        intervals.map((i) => ((8 * i.received_bytes) / (i.end_s - i.start_s) / 1e6).toFixed(2))
      })`,
    );
    // Below 5M by the headers and the ACKs sharing loopback's one queue (~6%), never above.
    assert(
      Math.abs(goodput - 5e6) <= 0.1 * 5e6,
      `goodput ${(goodput / 1e6).toFixed(2)} Mbit/s is not within 10% of 5 Mbit/s`,
    );
  },
});

/** Whether `tc … netem` works in a fresh namespace here (it needs the sch_netem module). */
function netemWorks(): boolean {
  const tryIn = (flags: string[]) =>
    new Deno.Command("unshare", {
      args: [...flags, "tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms"],
      stdout: "null",
      stderr: "null",
    }).outputSync().success;
  return tryIn(["--net"]) || tryIn(["--user", "--map-root-user", "--net"]);
}

Deno.test({
  name:
    "compare --delay adds the delay each way where the kernel has netem, and is one clear usage error where it has none",
  ignore: IGNORE,
  async fn() {
    requireSupport();
    const marker = `${3000 + Math.floor(Math.random() * 999)}ms`;
    const result = await runNetkit(
      [
        "compare",
        "--delay",
        "20ms",
        "--count",
        "100",
        "--rate",
        "100",
        "--timeout",
        marker,
        "--json",
      ],
      { timeoutMs: 60_000 },
    );
    assertEquals(processesWith(marker), [], "no netkit process of this run is left");
    if (netemWorks()) {
      assertEquals(result.code, 0, result.stderr);
      const doc = JSON.parse(result.text) as { udp: { rtt_ms: { min: number } } };
      assert(doc.udp.rtt_ms.min >= 40, `RTT ${doc.udp.rtt_ms.min} ms < 2 × 20 ms`);
      return;
    }
    console.log(
      "no netem in this kernel: --delay's effect is not tested here, only its error (the one permitted skip)",
    );
    assertEquals(result.code, 2, result.stderr);
    const lines = result.stderr.trim().split("\n");
    assertEquals(lines.length, 1, result.stderr);
    assertMatch(lines[0] ?? "", /^error: This kernel has no netem .*--delay cannot be applied/);
    assertMatch(lines[0] ?? "", /modprobe sch_netem.*--loss and --rate/);
    // --json: the error is a JSON document too.
    assertEquals((JSON.parse(result.text) as { exit_code: number }).exit_code, 2);
    assert(!(await hostHasLabTable()), "the host never gets the lab's nftables table");
  },
});

/** A user namespace as `nobody` works here (checked with setpriv). */
function unprivilegedUserns(): string | undefined {
  if (Deno.uid() !== 0) return "not root: cannot switch to nobody";
  if (!hasCommand("setpriv")) return "setpriv (util-linux) not installed";
  const ok = new Deno.Command("setpriv", {
    args: [...NOBODY, "unshare", "--user", "--map-root-user", "--net", "true"],
    stderr: "null",
  }).outputSync().success;
  return ok ? undefined : "this kernel does not allow unprivileged user namespaces";
}

const NOBODY = ["--reuid=65534", "--regid=65534", "--clear-groups"];

Deno.test({
  name:
    "an unprivileged user gets the same lossy compare through a user namespace, and keeps only net, read and run",
  ignore: IGNORE,
  async fn() {
    requireSupport();
    const why = unprivilegedUserns();
    if (why !== undefined) {
      console.log(`unprivileged lab not tested: ${why}`);
      return;
    }
    // deno's cache must be the unprivileged user's own.
    const dir = await Deno.makeTempDir({ prefix: "netkit-lab-nobody-" });
    await Deno.chmod(dir, 0o777);
    try {
      const n = 2000;
      const child = new Deno.Command("setpriv", {
        args: [
          ...NOBODY,
          Deno.execPath(),
          ...NETKIT_RUN,
          ...compareAtLoss5(n),
          "-v",
        ],
        cwd: ROOT_DIR,
        env: { DENO_DIR: dir, HOME: dir },
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const timer = setTimeout(() => child.kill("SIGKILL"), 120_000);
      const { code, stdout, stderr } = await child.output().finally(() => clearTimeout(timer));
      const err = new TextDecoder().decode(stderr);
      assertEquals(code, 0, err);
      assertMatch(err, /permissions kept: net, read, run; dropped: write/);
      const doc = JSON.parse(new TextDecoder().decode(stdout)) as LabCompareJson;
      console.log(
        `lab as nobody: udp lost ${doc.udp.lost}/${n}; kernel ${JSON.stringify(doc.kernel)}`,
      );
      assertLossyCompare(doc, n);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

/** Pids whose command line contains every one of `words`. */
function processesWith(...words: string[]): number[] {
  const pids: number[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    let args: string[];
    try {
      args = Deno.readTextFileSync(`/proc/${entry.name}/cmdline`).split("\0");
    } catch {
      continue; // exited
    }
    if (words.every((w) => args.includes(w))) pids.push(Number(entry.name));
  }
  return pids;
}

/** The parent pid of `pid` (field 4 of /proc/PID/stat, after the parenthesised name). */
function parentOf(pid: number): number | undefined {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
  } catch {
    return undefined; // exited
  }
}

/** `PID:STARTTIME` (field 22 of /proc/PID/stat): one process, even if its pid is reused later. */
function processIdentity(pid: number): string | undefined {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return `${pid}:${stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19]}`;
  } catch {
    return undefined; // exited
  }
}

/** Pids in the network namespace `ns` (as `readlink /proc/PID/ns/net` prints it). */
function pidsInNamespace(ns: string): number[] {
  const pids: number[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      if (Deno.readLinkSync(`/proc/${entry.name}/ns/net`) === ns) pids.push(Number(entry.name));
    } catch { /* exited or not ours to read */ }
  }
  return pids;
}

/** Namespace inodes that `ip netns` names (bind mounts under /run/netns). */
function namedNamespaces(): string[] {
  try {
    return [...Deno.readDirSync("/run/netns")].map((e) => {
      try {
        return `net:[${Deno.statSync(`/run/netns/${e.name}`).ino}]`;
      } catch {
        return "";
      }
    });
  } catch {
    return [];
  }
}

/** Whether the host's own nftables has the lab's table (it never should). */
async function hostHasLabTable(): Promise<boolean> {
  const { stdout } = await new Deno.Command("nft", { args: ["list", "tables"] }).output();
  return new TextDecoder().decode(stdout).includes("netkit_lab");
}

for (
  const [signal, exitCode, what] of [["SIGINT", 130, "Ctrl-C"], [
    "SIGTERM",
    143,
    "SIGTERM",
  ]] as const
) {
  Deno.test({
    name:
      `${what} during an impaired compare: it reports what it measured (kernel counters too) and leaves no process, namespace or nftables table behind`,
    ignore: IGNORE,
    async fn() {
      requireSupport();
      // An odd timeout marks this run's processes.
      const marker = `${3000 + Math.floor(Math.random() * 999)}ms`;
      const child = new Deno.Command(Deno.execPath(), {
        args: [
          ...NETKIT_RUN,
          "compare",
          "--loss",
          "5%",
          "--count",
          "20000",
          "--rate",
          "1000",
          "--timeout",
          marker,
        ],
        cwd: ROOT_DIR,
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const killer = setTimeout(() => child.kill("SIGTERM"), 60_000);
      const stderr = new Response(child.stderr).text();
      let ns = "";
      let members: (string | undefined)[] = [];
      try {
        // The first interval line: the namespace is impaired, the server up, the probes flowing
        // (and the lab is not reading its counters: it does so only before and after a phase).
        const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
        let text = "";
        while (!/^Phase 1 of 1[^]*\n.*\bsent\b.*\n.*\d.*\n/m.test(text)) {
          const { value, done } = await reader.read();
          if (done) fail(`compare ended before its first interval: ${text}${await stderr}`);
          text += value;
        }
        assertMatch(text, /^Path: loss 5% each way by nftables, in a private network namespace$/m);
        // The child of this netkit (a fork of it about to exec nstat or nft has the same command line).
        const inside = processesWith("--lab-inside", marker).filter((pid) =>
          parentOf(pid) === child.pid
        );
        assertEquals(inside.length, 1, `the compare inside the namespace: ${inside}`);
        ns = Deno.readLinkSync(`/proc/${inside[0]}/ns/net`);
        assert(ns !== Deno.readLinkSync("/proc/self/ns/net"), "it runs in its own namespace");
        assert(!namedNamespaces().includes(ns), "the namespace is anonymous, not in ip netns");
        // Who lives in it now: once they are all gone, the namespace is gone (no name holds it).
        members = pidsInNamespace(ns).map(processIdentity);
        assert(members.length > 0, `no process in ${ns}`);
        child.kill(signal);
        const drain = (async () => {
          for (let r = await reader.read(); !r.done; r = await reader.read()) text += r.value;
        })();
        const { code } = await child.status;
        await drain;
        assertEquals(code, exitCode, `exit after ${signal}: ${await stderr}`);
        // Interrupted, it still reports what it measured, the lab's counters included.
        assertMatch(text, /^ {2}interrupted: the figures cover what ran/m);
        assertMatch(text, /^ {2}kernel: TCP retransmitted \d+ segments/m);
      } finally {
        clearTimeout(killer);
        try {
          child.kill("SIGTERM"); // when an assertion failed first: netkit passes it on inside
        } catch { /* already exited */ }
        await child.status;
        await stderr;
      }
      assertEquals(processesWith(marker), [], "no netkit process of this run is left");
      // By identity (pid and start time), not by the namespace's inode: the kernel reuses those.
      const survivors = members.filter((m) =>
        m !== undefined && processIdentity(Number(m.split(":")[0])) === m
      );
      assertEquals(survivors, [], `nothing that lived in ${ns} is left`);
      assert(!namedNamespaces().includes(ns), `${ns} is not kept by ip netns`);
      assert(!(await hostHasLabTable()), "the host never gets the lab's nftables table");
    },
  });
}

Deno.test({
  name: "an error inside the lab (a refused connect) exits with its code and leaves nothing behind",
  ignore: IGNORE,
  async fn() {
    requireSupport();
    const marker = `${3000 + Math.floor(Math.random() * 999)}ms`;
    const result = await runNetkit(
      [
        "lab",
        "-v",
        "--loss",
        "5%",
        "--",
        "client",
        "--probe",
        "127.0.0.1",
        "1",
        "--timeout",
        marker,
      ],
      { timeoutMs: 60_000 },
    );
    assertEquals(result.code, 3, result.stderr);
    assertMatch(result.stderr, /^error: Connection refused by tcp 127\.0\.0\.1:1/m);
    assertMatch(result.stderr, /^kernel counters in the lab: /m);
    assertMatch(result.stderr, /permissions kept: read, run; dropped: net, write/);
    assertEquals(processesWith(marker), [], "no netkit process of this run is left");
    assertEquals(processesWith("--drain-timeout", "0", "5050"), [], "the lab's server stopped");
    assert(!(await hostHasLabTable()), "the host never gets the lab's nftables table");
  },
});
