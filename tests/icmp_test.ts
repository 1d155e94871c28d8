/**
 * ICMP port unreachable as a first-class answer (issue 10 item 4, issue 13's
 * UDP scan), end to end through the CLI. On the native engine a connected UDP
 * socket hears it from any host: probe, `--message` and compare end at once
 * with `nothing listens on udp HOST:PORT` (exit 3, as TCP's refused), a
 * listener that goes away mid-run leaves the partial report, and `scan -u`
 * says `closed` (nmap's names: open, closed, filtered, open|filtered). On
 * `--engine deno` only this host's own addresses can be told (a bind test);
 * a remote host's silence is "no reply at all" (exit 5) and `open|filtered`.
 *
 * The remote host is a second network namespace the test creates: a veth
 * pair between two namespaces of its own (10.200.X.1 and .2), deleted after.
 *
 * @example
 * ```sh
 * sudo deno test -q --no-prompt --allow-all --trace-leaks tests/icmp_test.ts
 * ```
 *
 * @module
 */

import { assertEquals, assertLess, assertMatch, assertNotMatch } from "@std/assert";
import { hasCommand, NETKIT_RUN, ROOT_DIR, runNetkit, startServer } from "./support/cli.ts";
import { engineTest, NATIVE_MISSING } from "./support/engines.ts";

const RUN_TIMEOUT_MS = 20_000;

/** The one error line of a run to a port where nothing listens on UDP. */
function nothingListens(shown: string, port: number | string): string {
  return `error: nothing listens on udp ${shown}:${port}: start a UDP echo server there (netkit server --proto udp or --proto both)`;
}

/** Each port's state in `scan --json`'s document. */
function states(text: string): Map<number, string> {
  const doc = JSON.parse(text) as { ports: { port: number; state: string }[] };
  return new Map(doc.ports.map((p) => [p.port, p.state]));
}

/**
 * probe, message and compare to `host`:`port`, each on `engine`, each waiting
 * `timeout` for replies (long: an answer that comes at once is not a timeout).
 */
function closedRuns(host: string, port: string, engine: string, wait = "15s"): string[][] {
  const timeout = ["--timeout", wait];
  return [
    ["client", "--probe", "-u", host, port, "--count", "20", ...timeout, "--engine", engine],
    ["client", "-u", host, port, "--message", "hi", ...timeout, "--engine", engine],
    ["compare", host, port, "--count", "20", ...timeout, "--engine", engine],
  ];
}

// ---------------------------------------------------------------------------
// This host: 127.0.0.1 and ::1 (both engines say it; the deno engine by its bind test)

for (const [host, shown] of [["127.0.0.1", "127.0.0.1"], ["::1", "[::1]"]] as const) {
  engineTest(
    `probe, message and compare to ${host} with TCP but no UDP on the port: 'nothing listens', exit 3`,
    async (engine) => {
      await using server = await startServer(["--proto", "tcp", "--host", host]);
      for (const args of closedRuns(host, String(server.port), engine)) {
        const t0 = performance.now();
        const result = await runNetkit(args, { timeoutMs: RUN_TIMEOUT_MS });
        assertEquals(result.code, 3, `${args.join(" ")}: ${result.stderr}`);
        assertEquals(result.stderr.trim().split("\n")[0], nothingListens(shown, server.port));
        assertNotMatch(result.text, /lost|retransmi/);
        // At once: not after the 15 s reply timeout.
        assertLess(performance.now() - t0, 10_000, args.join(" "));
      }
    },
  );

  engineTest(
    `scan -u ${host}: an echoing port is open, one nothing listens on is closed on the native engine (open|filtered on deno)`,
    async (engine) => {
      await using server = await startServer(["--proto", "udp", "--host", host]);
      // A port nothing listens on: the TCP server's (its UDP side is free on this address).
      await using tcp = await startServer(["--proto", "tcp", "--host", host]);
      const ports = `${server.port},${tcp.port}`;
      const args = ["scan", "-u", host, ports, "--payload", "hi", "--timeout", "300ms"];
      const result = await runNetkit([...args, "--engine", engine, "--json"]);
      assertEquals(result.code, 0, result.stderr);
      const got = states(result.text);
      assertEquals(got.get(server.port), "open");
      assertEquals(got.get(tcp.port), engine === "native" ? "closed" : "open|filtered");
      const text = await runNetkit([...args, "--engine", engine]);
      assertEquals(text.code, 0, text.stderr);
      assertMatch(
        text.stderr,
        engine === "native"
          ? /^1 open, 1 closed, 0 open\|filtered in /m
          : /^1 open, 1 open\|filtered in /m,
      );
    },
  );
}

Deno.test({
  name:
    "a UDP listener that goes away mid-probe (native engine): the partial report, then 'nothing listens … any more', exit 3, at once",
  ignore: NATIVE_MISSING !== undefined,
  fn: async () => {
    await using server = await startServer(["--proto", "udp", "--host", "127.0.0.1"]);
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        ...NETKIT_RUN,
        "client",
        "--probe",
        "-u",
        "127.0.0.1",
        String(server.port),
        "--rate",
        "200",
        "--duration",
        "20s",
        "--interval-report",
        "100ms",
        "--engine",
        "native",
      ],
      cwd: ROOT_DIR,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const killer = setTimeout(() => child.kill("SIGKILL"), RUN_TIMEOUT_MS);
    const stderr = new Response(child.stderr).text();
    try {
      const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
      let text = "";
      // The first interval line with echoes in it: the listener has answered.
      while (!/^\[.*\] udp +\d+ +[1-9]/m.test(text)) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`probe ended before an interval: ${text}${await stderr}`);
        text += value;
      }
      const killedAt = performance.now();
      await server.stop("SIGKILL");
      for (let r = await reader.read(); !r.done; r = await reader.read()) text += r.value;
      const { code } = await child.status;
      assertLess(performance.now() - killedAt, 3000, "ended at once, not at --duration");
      assertEquals(code, 3, await stderr);
      assertMatch(text, /udp probe to 127\.0\.0\.1:\d+: .*\n {2}sent [\d,]+ {2}received [1-9]/);
      assertMatch(
        (await stderr).trim(),
        new RegExp(
          `^error: nothing listens on udp 127\\.0\\.0\\.1:${server.port} any more: it went away after echoing [\\d,]+ of [\\d,]+ probes \\(ICMP port unreachable\\)$`,
        ),
      );
    } finally {
      clearTimeout(killer);
      try {
        child.kill("SIGKILL");
      } catch { /* exited */ }
      await child.status;
      await stderr;
    }
  },
});

// ---------------------------------------------------------------------------
// A remote-looking host: two namespaces of the test's own, joined by a veth pair

function netnsUnsupported(): string | undefined {
  if (Deno.build.os !== "linux") return "network namespaces need Linux";
  if (Deno.uid() !== 0) return "not root";
  const missing = ["ip", "nft"].filter((c) => !hasCommand(c));
  return missing.length > 0 ? `${missing.join(", ")} not installed` : undefined;
}
const NETNS = netnsUnsupported();
const SKIP_NETNS = NETNS !== undefined && Deno.env.get("NETKIT_REQUIRE_PEERS") !== "1";
if (SKIP_NETNS) console.warn(`skipping the namespace ICMP tests: ${NETNS}`);

async function sh(args: string[], input?: string): Promise<void> {
  const child = new Deno.Command(args[0]!, {
    args: args.slice(1),
    stdin: input === undefined ? "null" : "piped",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
  try {
    if (input !== undefined) {
      const writer = child.stdin.getWriter();
      await writer.write(new TextEncoder().encode(input));
      await writer.close();
    }
    const { code, stderr } = await child.output();
    if (code !== 0) throw new Error(`${args.join(" ")}: ${new TextDecoder().decode(stderr)}`);
  } finally {
    clearTimeout(timer);
  }
}

/** Ports on the remote host with nothing listening: UDP to DROPPED is dropped, to REJECTED refused by a firewall. */
const DROPPED = 7001;
const REJECTED = 7002;

/**
 * A client namespace and a server namespace, 10.200.X.1 and 10.200.X.2 on a
 * veth pair between them; the server's drops UDP to {@linkcode DROPPED} and
 * answers UDP to {@linkcode REJECTED} with ICMP admin-prohibited (nftables).
 */
async function withRemoteHost(
  body: (hosts: { client: string; server: string; address: string }) => Promise<void>,
): Promise<void> {
  const id = crypto.randomUUID().slice(0, 6);
  const client = `nk-icmp-c-${Deno.pid}-${id}`;
  const server = `nk-icmp-s-${Deno.pid}-${id}`;
  const subnet = `10.200.${1 + Deno.pid % 250}`;
  const created: string[] = [];
  try {
    for (const ns of [client, server]) {
      await sh(["ip", "netns", "add", ns]);
      created.push(ns);
      await sh(["ip", "-n", ns, "link", "set", "lo", "up"]);
    }
    // Created inside the client's namespace, its peer moved straight to the server's.
    await sh([
      "ip",
      "-n",
      client,
      "link",
      "add",
      `nkc${id}`,
      "type",
      "veth",
      "peer",
      "name",
      `nks${id}`,
      "netns",
      server,
    ]);
    for (const [ns, dev, host] of [[client, `nkc${id}`, 1], [server, `nks${id}`, 2]] as const) {
      await sh(["ip", "-n", ns, "addr", "add", `${subnet}.${host}/24`, "dev", dev]);
      await sh(["ip", "-n", ns, "link", "set", dev, "up"]);
    }
    // The kernel rate-limits ICMP to a remote peer (about one a second after a burst); the
    // test's own server namespace lifts that so each check gets its answer.
    await sh(["ip", "netns", "exec", server, "sysctl", "-qw", "net.ipv4.icmp_ratelimit=0"]);
    await sh(
      ["ip", "netns", "exec", server, "nft", "-f", "-"],
      [
        "add table ip nkicmp",
        "add chain ip nkicmp input { type filter hook input priority 0; policy accept; }",
        `add rule ip nkicmp input udp dport ${DROPPED} drop`,
        `add rule ip nkicmp input udp dport ${REJECTED} reject with icmp type admin-prohibited`,
        "",
      ].join("\n"),
    );
    await body({ client, server, address: `${subnet}.2` });
  } finally {
    for (const ns of created.reverse()) await sh(["ip", "netns", "del", ns]);
  }
}

Deno.test({
  name:
    "a remote host (another namespace over veth): the native engine hears ICMP (exit 3; scan open/closed/filtered/open|filtered), the deno engine cannot (no reply at all, exit 5; open|filtered)",
  ignore: SKIP_NETNS || NATIVE_MISSING !== undefined,
  fn: async () => {
    await withRemoteHost(async ({ client, server, address }) => {
      const wrap = { wrap: ["ip", "netns", "exec", client], timeoutMs: RUN_TIMEOUT_MS };
      const inServer = ["ip", "netns", "exec", server];
      await using echo = await startServer(["--proto", "both", "--host", address], {
        wrap: inServer,
      });
      // TCP but no UDP on this port: what issue 10 saw reported as 100% UDP loss.
      await using tcp = await startServer(["--proto", "tcp", "--host", address], {
        wrap: inServer,
      });
      const port = String(tcp.port);

      for (const args of closedRuns(address, port, "native")) {
        const t0 = performance.now();
        const result = await runNetkit(args, wrap);
        assertLess(performance.now() - t0, 10_000, `at once, not after --timeout: ${args}`);
        assertEquals(result.code, 3, `${args.join(" ")}: ${result.stderr}`);
        assertEquals(result.stderr.trim().split("\n")[0], nothingListens(address, port));
        assertNotMatch(result.text, /lost|retransmi/);
      }
      const list = `${echo.port},${port},${DROPPED},${REJECTED}`;
      const scan = (engine: string) =>
        runNetkit(
          ["scan", "-u", address, list, "--payload", "hi", "--timeout", "400ms", "--engine", engine]
            .concat("--json"),
          wrap,
        );
      const native = await scan("native");
      assertEquals(native.code, 0, native.stderr);
      assertEquals(
        Object.fromEntries(states(native.text)),
        Object.fromEntries([
          [echo.port, "open"],
          [tcp.port, "closed"],
          [DROPPED, "open|filtered"],
          [REJECTED, "filtered"],
        ]),
      );

      // The deno engine: this host's bind test cannot reach another host, so silence it is.
      const [probe, message, compare] = await Promise.all(
        closedRuns(address, port, "deno", "300ms").map((args) => runNetkit(args, wrap)),
      );
      assertEquals(probe!.code, 5, probe!.stderr);
      assertEquals(
        probe!.stderr.trim(),
        `error: no reply at all: is anything listening on udp ${address}:${port}?`,
      );
      assertEquals(message!.code, 5, message!.stderr);
      assertEquals(
        message!.stderr.trim(),
        `error: No reply from udp ${address}:${port} within 300 ms (message 1 of 1): is anything listening on udp ${address}:${port}?`,
      );
      assertEquals(compare!.code, 5, compare!.stderr);
      assertMatch(
        compare!.stderr,
        new RegExp(`no reply at all: is anything listening on udp ${address}:${port}\\?`),
      );
      const deno = await scan("deno");
      assertEquals(deno.code, 0, deno.stderr);
      assertEquals(
        Object.fromEntries(states(deno.text)),
        Object.fromEntries([
          [echo.port, "open"],
          [tcp.port, "open|filtered"],
          [DROPPED, "open|filtered"],
          [REJECTED, "open|filtered"],
        ]),
      );
    });
  },
});
