/**
 * End-to-end tests of `netkit scan` through the real CLI: open and closed TCP
 * ports on 127.0.0.1 and ::1, UDP open and silent ports, a filtered port in a
 * network namespace the test creates (an nftables drop rule), the
 * concurrency bound (the scanner's descriptors counted in /proc while it
 * scans), --rate, usage errors, exit codes, and the same open set as `nc -z`.
 *
 * The namespace tests need Linux, root, `ip` and `nft`; they are skipped
 * without them (unless NETKIT_REQUIRE_PEERS=1). Namespaces get unique names
 * and are always deleted.
 *
 * @example
 * ```sh
 * deno test -A --trace-leaks tests/scan_test.ts
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
import { hasCommand, NETKIT_RUN, ROOT_DIR, runNetkit } from "./support/cli.ts";
import { hasIpv6Loopback } from "./support/peers.ts";

interface ScanDoc {
  target: string;
  proto: string;
  ports: { port: number; state: string; ms: number }[];
  summary: {
    open: number;
    closed: number;
    filtered: number;
    open_filtered: number;
    scanned: number;
  };
}

/** A TCP port on `hostname` that nothing listens on (bound there, then closed). */
function closedPort(hostname: string): number {
  const listener = Deno.listen({ hostname, port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** Listeners on `hostname`: `open` of them, and `closed` ports nothing listens on. */
function ports(hostname: string, open: number, closed: number) {
  const listeners = Array.from({ length: open }, () => Deno.listen({ hostname, port: 0 }));
  const openPorts = listeners.map((l) => (l.addr as Deno.NetAddr).port);
  const closedPorts = Array.from({ length: closed }, () => closedPort(hostname));
  return {
    open: openPorts,
    // Each once: a port freed by closedPort() can come back twice.
    closed: [...new Set(closedPorts)].filter((p) => !openPorts.includes(p)),
    [Symbol.dispose]() {
      for (const l of listeners) l.close();
    },
  };
}

function states(doc: ScanDoc): Map<number, string> {
  return new Map(doc.ports.map((p) => [p.port, p.state]));
}

for (const host of ["127.0.0.1", "::1"]) {
  Deno.test({
    name: `scan ${host}: open and closed TCP ports, one line per open port, exit 0`,
    ignore: host === "::1" && !hasIpv6Loopback(),
    fn: async () => {
      using p = ports(host, 3, 4);
      const list = [...p.open, ...p.closed].join(",");
      const json = await runNetkit(["scan", host, list, "--json"]);
      assertEquals(json.code, 0, json.stderr);
      const doc: ScanDoc = JSON.parse(json.text);
      assertEquals(doc.proto, "tcp");
      assertEquals(doc.ports.length, p.open.length + p.closed.length);
      const got = states(doc);
      for (const port of p.open) assertEquals(got.get(port), "open", `port ${port}`);
      for (const port of p.closed) assertEquals(got.get(port), "closed", `port ${port}`);
      assertEquals(doc.summary.open, 3);
      assertEquals(doc.summary.closed, p.closed.length);

      const text = await runNetkit(["scan", host, list]);
      assertEquals(text.code, 0, text.stderr);
      const lines = text.text.trim().split("\n");
      assertEquals(lines.length, 3);
      const bracket = host.includes(":") ? `[${host}]` : host;
      for (const port of p.open) {
        assert(lines.some((l) => l.startsWith(`tcp ${bracket}:${port} open`)), text.text);
      }
      assertMatch(
        text.stderr,
        new RegExp(`^3 open, ${p.closed.length} closed, 0 filtered in [\\d.]+ s\\n$`),
      );

      const verbose = await runNetkit(["scan", host, list, "-v"]);
      assertEquals(verbose.text.trim().split("\n").length, p.open.length + p.closed.length);
    },
  });
}

Deno.test("scan exits 1 when no port is open, and --json still lists every port", async () => {
  using p = ports("127.0.0.1", 0, 3);
  const result = await runNetkit(["scan", "127.0.0.1", p.closed.join(","), "--json"]);
  assertEquals(result.code, 1);
  const doc: ScanDoc = JSON.parse(result.text);
  assertEquals(doc.ports.map((x) => x.state), p.closed.map(() => "closed"));
});

Deno.test("scan rejects bad ports and ranges with a usage error (exit 2)", async () => {
  for (const bad of ["0", "65536", "80-20", "22,,80", "http", "1-2-3"]) {
    const result = await runNetkit(["scan", "127.0.0.1", bad]);
    assertEquals(result.code, 2, bad);
    assertMatch(result.stderr, /^error: Invalid PORTS: .*\(see 'netkit scan --help'\)\n$/);
    assertEquals(result.text, "");
  }
  const missing = await runNetkit(["scan", "127.0.0.1"]);
  assertEquals(missing.code, 2);
  assertMatch(missing.stderr, /needs HOST and PORTS/);
  const payload = await runNetkit(["scan", "127.0.0.1", "80", "--payload", "x"]);
  assertEquals(payload.code, 2);
  assertMatch(payload.stderr, /'--payload' is for UDP/);
  const engine = await runNetkit(["scan", "127.0.0.1", "80", "--engine", "native"]);
  assertEquals(engine.code, 2);
  assertMatch(engine.stderr, /'--engine' moves UDP .*add '--proto udp'/);
});

Deno.test("scan udp --engine deno: a port that answers is open, a silent one open|filtered (Deno's sockets hear no ICMP: never 'closed')", async () => {
  const socket = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  const port = (socket.addr as Deno.NetAddr).port;
  const payloads: string[] = [];
  const echo = (async () => {
    try {
      for (;;) {
        const [data, from] = await socket.receive();
        payloads.push(new TextDecoder().decode(data));
        await socket.send(data, from);
      }
    } catch { /* closed */ }
  })();
  try {
    const silent = closedPort("127.0.0.1");
    const result = await runNetkit([
      "scan",
      "-u",
      "127.0.0.1",
      `${port},${silent}`,
      "--payload",
      "hello",
      "--timeout",
      "300ms",
      "--engine",
      "deno",
      "--json",
    ]);
    assertEquals(result.code, 0, result.stderr);
    const got = states(JSON.parse(result.text));
    assertEquals(got.get(port), "open");
    assertEquals(got.get(silent), "open|filtered");
    assertEquals(payloads, ["hello"]);
  } finally {
    socket.close();
    await echo;
  }
});

Deno.test("scan --rate 20 starts at most 20 attempts per second", async () => {
  using p = ports("127.0.0.1", 1, 10);
  const list = [...p.open, ...p.closed];
  const t0 = performance.now();
  const result = await runNetkit(["scan", "127.0.0.1", list.join(","), "--rate", "20", "--json"]);
  const took = performance.now() - t0;
  assertEquals(result.code, 0, result.stderr);
  assertEquals(JSON.parse(result.text).ports.length, list.length);
  // n attempts at 20/s: the last starts (n - 1) / 20 s after the first.
  assertGreaterOrEqual(took, ((list.length - 1) / 20) * 1000);
});

Deno.test("scan stopped by SIGTERM still prints what it checked, and says it was interrupted", async () => {
  using p = ports("127.0.0.1", 0, 40);
  const child = new Deno.Command(Deno.execPath(), {
    args: [...NETKIT_RUN, "scan", "127.0.0.1", p.closed.join(","), "--rate", "10", "-v"],
    cwd: ROOT_DIR,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const killer = setTimeout(() => child.kill("SIGKILL"), 30_000);
  const stderrText = new Response(child.stderr).text();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (text.split("\n").length <= 3) {
    const { value, done } = await reader.read();
    if (done) break;
    text += value;
  }
  child.kill("SIGTERM");
  for (let r = await reader.read(); !r.done; r = await reader.read()) text += r.value;
  const { code } = await child.status;
  const stderr = await stderrText;
  clearTimeout(killer);
  const lines = text.trim().split("\n");
  assertEquals(code, 1); // nothing open
  assertGreaterOrEqual(lines.length, 3);
  assert(lines.length < p.closed.length, `${lines.length} lines: it was not stopped early`);
  assertMatch(
    stderr,
    new RegExp(`interrupted: ${lines.length} of ${p.closed.length} ports checked`),
  );
});

Deno.test({
  name: "scan gives the same open set as nc -z on the same ports",
  ignore: !hasCommand("nc"),
  fn: async () => {
    using p = ports("127.0.0.1", 4, 6);
    const all = [...p.open, ...p.closed].sort((a, b) => a - b);
    const nc = await new Deno.Command("nc", {
      args: ["-z", "-v", "-w", "2", "127.0.0.1", ...all.map(String)],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const ncOpen = [
      ...new TextDecoder().decode(nc.stderr).matchAll(/Connection to \S+ (\d+) port .* succeeded/g),
    ]
      .map((m) => Number(m[1])).sort((a, b) => a - b);
    const ours = await runNetkit(["scan", "127.0.0.1", all.join(","), "--json"]);
    const ourOpen = (JSON.parse(ours.text) as ScanDoc).ports.filter((x) => x.state === "open")
      .map((x) => x.port).sort((a, b) => a - b);
    assertEquals(ourOpen, [...p.open].sort((a, b) => a - b));
    assertEquals(ourOpen, ncOpen);
    assertEquals(ours.code, nc.code); // both 0: some port is open
  },
});

// ---------------------------------------------------------------------------
// In a network namespace with an nftables drop rule

function netnsUnsupported(): string | undefined {
  if (Deno.build.os !== "linux") return "network namespaces need Linux";
  if (Deno.uid() !== 0) return "not root";
  const missing = ["ip", "nft"].filter((c) => !hasCommand(c));
  return missing.length > 0 ? `${missing.join(", ")} not installed` : undefined;
}
const NETNS = netnsUnsupported();
const SKIP_NETNS = NETNS !== undefined && Deno.env.get("NETKIT_REQUIRE_PEERS") !== "1";

async function sh(command: string, args: string[]): Promise<void> {
  const { code, stderr } = await new Deno.Command(command, {
    args,
    stdout: "null",
    stderr: "piped",
  })
    .output();
  if (code !== 0) {
    throw new Error(`${command} ${args.join(" ")}: ${new TextDecoder().decode(stderr)}`);
  }
}

/** A fresh namespace with loopback up and TCP to `dports` dropped on input; deleted after `body`. */
async function withDropNamespace(dports: string, body: (ns: string) => Promise<void>) {
  const ns = `nk-scan-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
  await sh("ip", ["netns", "add", ns]);
  try {
    await sh("ip", ["-n", ns, "link", "set", "lo", "up"]);
    const script = [
      "add table inet nkscan",
      "add chain inet nkscan input { type filter hook input priority 0; policy accept; }",
      `add rule inet nkscan input tcp dport ${dports} drop`,
    ].join("\n");
    const file = await Deno.makeTempFile({ suffix: ".nft" });
    try {
      await Deno.writeTextFile(file, script + "\n");
      await sh("ip", ["netns", "exec", ns, "nft", "-f", file]);
    } finally {
      await Deno.remove(file);
    }
    await body(ns);
  } finally {
    await sh("ip", ["netns", "del", ns]);
  }
}

/** `netkit scan ARGS` inside `ns`, sampling its open descriptors every 5 ms while it runs. */
async function scanIn(ns: string, args: string[]) {
  const child = new Deno.Command("ip", {
    args: ["netns", "exec", ns, Deno.execPath(), ...NETKIT_RUN, "scan", ...args],
    cwd: ROOT_DIR,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const killer = setTimeout(() => child.kill("SIGKILL"), 60_000);
  let maxFds = 0;
  let running = true;
  const sampler = (async () => {
    while (running) {
      try {
        let n = 0;
        for await (const _ of Deno.readDir(`/proc/${child.pid}/fd`)) n++;
        maxFds = Math.max(maxFds, n);
      } catch { /* exited */ }
      await delay(5);
    }
  })();
  const out = await child.output();
  running = false;
  await sampler;
  clearTimeout(killer);
  return {
    code: out.code,
    text: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
    maxFds,
  };
}

Deno.test({
  name: "scan reports a port behind an nftables drop rule as filtered, after --timeout",
  ignore: SKIP_NETNS,
  fn: async () => {
    await withDropNamespace("7000", async (ns) => {
      const t0 = performance.now();
      const result = await scanIn(ns, ["127.0.0.1", "7000,7001", "--timeout", "400ms", "--json"]);
      assertEquals(result.code, 1, result.stderr); // nothing open
      const got = states(JSON.parse(result.text));
      assertEquals(got.get(7000), "filtered");
      assertEquals(got.get(7001), "closed");
      assertGreaterOrEqual(performance.now() - t0, 400);
    });
  },
});

Deno.test({
  name: "scan --concurrency bounds the scanner's open sockets (counted in /proc/PID/fd)",
  ignore: SKIP_NETNS,
  fn: async () => {
    await withDropNamespace("20000-20999", async (ns) => {
      // Every port is filtered, so each socket stays open for the whole timeout.
      const one = await scanIn(ns, [
        "127.0.0.1",
        "20000",
        "--timeout",
        "300ms",
        "--concurrency",
        "1",
      ]);
      const many = await scanIn(ns, [
        "127.0.0.1",
        "20000-20999",
        "--timeout",
        "200ms",
        "--concurrency",
        "50",
        "--json",
      ]);
      assertEquals(many.code, 1, many.stderr);
      const doc: ScanDoc = JSON.parse(many.text);
      assertEquals(doc.summary.filtered, 1000);
      // One socket at a time vs fifty: the difference is at most 49 descriptors,
      // and the bound was reached (the scan really ran about 50 at once).
      const spread = `${one.maxFds} descriptors at most with 1, ${many.maxFds} with 50`;
      assertLessOrEqual(many.maxFds - one.maxFds, 49 + 2, spread);
      assertGreaterOrEqual(many.maxFds - one.maxFds, 25, spread);
    });
  },
});
