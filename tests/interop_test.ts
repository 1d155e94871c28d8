/**
 * Interoperability with the classic tools: nc (OpenBSD netcat), ncat and
 * socat as clients of `netkit server`, and as servers for `netkit client`,
 * over TCP and UDP on 127.0.0.1 and ::1. Streams are checked byte for byte
 * (1 MiB of random bytes, compared by SHA-256).
 *
 * A test whose peer is not installed is skipped, except where
 * `NETKIT_REQUIRE_PEERS=1` (CI), where it fails instead.
 *
 * @example
 * ```sh
 * deno test -q --no-prompt --allow-all --trace-leaks tests/interop_test.ts
 * ```
 *
 * @module
 */
import { assert, assertEquals, assertMatch } from "@std/assert";
import { runNetkit, skipWithout, startServer } from "./support/cli.ts";
import {
  hasIpv6Loopback,
  type Peer,
  randomBytes,
  sha256,
  spawnPeer,
  startOnFreePort,
  waitForTcp,
  waitForTcpListener,
  waitForUdpEcho,
} from "./support/peers.ts";

/** Bytes pushed through every stream round trip. */
const STREAM_BYTES = 1 << 20;
/** Hard deadline of any one peer process or netkit client run. */
const RUN_TIMEOUT_MS = 15000;
/** How long to wait for a UDP echo that should arrive at once on loopback. */
const ECHO_TIMEOUT_MS = 3000;

const IPV6 = hasIpv6Loopback();
if (!IPV6) console.warn("skipping ::1 cases: IPv6 loopback unavailable");

const HOSTS = [
  { host: "127.0.0.1", url: "127.0.0.1", ignore: false },
  { host: "::1", url: "[::1]", ignore: !IPV6 },
] as const;

const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

/** Assert two byte strings are identical, by length and SHA-256 (no 1 MiB diffs in the output). */
function assertSameBytes(actual: Uint8Array, expected: Uint8Array, what: string): void {
  assertEquals(actual.length, expected.length, `${what}: byte count`);
  assertEquals(sha256(actual), sha256(expected), `${what}: SHA-256`);
}

/** Feed `data` to the peer's stdin, close it, and collect the peer's exit and output. */
async function feedAndWait(peer: Peer, data: Uint8Array) {
  const fed = peer.write(data).then(() => peer.closeStdin());
  const result = await peer.wait();
  await fed;
  return result;
}

// ---------------------------------------------------------------------------
// Peers as TCP clients of `netkit server` (echo).

/** TCP client command lines that send stdin, half-close at EOF and exit when the server closes. */
const TCP_CLIENTS = [
  { peer: "nc", args: (host: string, port: number) => ["-N", host, String(port)] },
  { peer: "ncat", args: (host: string, port: number) => [host, String(port)] },
  {
    peer: "socat",
    // -t: after stdin EOF, wait up to 5 s (not 0.5 s) for the rest of the echo.
    args: (host: string, port: number) => [
      "-t5",
      "-",
      `TCP:${host.includes(":") ? `[${host}]` : host}:${port}`,
    ],
  },
] as const;

for (const client of TCP_CLIENTS) {
  for (const { host, ignore } of HOSTS) {
    Deno.test({
      name: `${client.peer} client gets 1 MiB echoed byte-exact by netkit tcp server on ${host}`,
      ignore: ignore || skipWithout(client.peer),
      async fn() {
        await using server = await startServer(["--proto", "tcp", "--host", host]);
        const data = randomBytes(STREAM_BYTES);
        await using peer = spawnPeer(client.peer, client.args(host, server.port), {
          stdin: "piped",
          timeoutMs: RUN_TIMEOUT_MS,
        });
        const result = await feedAndWait(peer, data);
        assertEquals(result.signal, null, `${peer.name} killed at its deadline: ${result.stderr}`);
        assertEquals(result.code, 0, `${peer.name}: ${result.stderr}`);
        assertSameBytes(result.stdout, data, peer.name);
      },
    });
  }
}

// ---------------------------------------------------------------------------
// Peers as UDP clients of `netkit server --proto udp` (echo).

/**
 * UDP client command lines. UDP peers never see an end of the exchange, so
 * stdin stays open until the echo is read and the peer is then stopped; their
 * own idle timeouts only back that up.
 */
const UDP_CLIENTS = [
  { peer: "nc", args: (host: string, port: number) => ["-u", "-w2", host, String(port)] },
  {
    peer: "ncat",
    args: (host: string, port: number) => ["-u", "--idle-timeout", "2", host, String(port)],
  },
  {
    peer: "socat",
    args: (host: string, port: number) => [
      "-T2",
      "-",
      `UDP:${host.includes(":") ? `[${host}]` : host}:${port}`,
    ],
  },
] as const;

for (const client of UDP_CLIENTS) {
  for (const { host, ignore } of HOSTS) {
    Deno.test({
      name: `${client.peer} udp client gets its datagram echoed by netkit udp server on ${host}`,
      ignore: ignore || skipWithout(client.peer),
      async fn() {
        await using server = await startServer(["--proto", "udp", "--host", host]);
        const message = new TextEncoder().encode(`hello from ${client.peer} over udp\n`);
        await using peer = spawnPeer(client.peer, client.args(host, server.port), {
          stdin: "piped",
          timeoutMs: RUN_TIMEOUT_MS,
        });
        await peer.write(message);
        const echoed = await peer.waitForOutput(message.length, ECHO_TIMEOUT_MS);
        assertEquals(decode(echoed), decode(message));
      },
    });
  }
}

// ---------------------------------------------------------------------------
// `netkit client` against peer servers.

for (const { host, url, ignore } of HOSTS) {
  Deno.test({
    name: `netkit client round-trips 1 MiB byte-exact through socat cat echo on ${host}`,
    ignore: ignore || skipWithout("socat"),
    async fn() {
      const family = host.includes(":") ? "TCP6" : "TCP4";
      const { peer, port } = await startOnFreePort(
        "tcp",
        host,
        (port) =>
          spawnPeer("socat", [
            "-t5",
            `${family}-LISTEN:${port},bind=${url},reuseaddr,fork`,
            "EXEC:/bin/cat",
          ], { timeoutMs: RUN_TIMEOUT_MS }),
        (peer, port) => waitForTcp(host, port, { peer }),
      );
      await using _peer = peer;
      const data = randomBytes(STREAM_BYTES);
      const result = await runNetkit(["client", `${url}:${port}`], {
        stdin: data,
        timeoutMs: RUN_TIMEOUT_MS,
      });
      assertEquals(result.code, 0, result.stderr);
      assertSameBytes(result.stdout, data, "netkit client via socat EXEC:/bin/cat");
    },
  });
}

/** An `ncat -l -k --exec /bin/cat` echo on 127.0.0.1 (keeps listening, so a probe connect is fine). */
function startNcatEcho() {
  return startOnFreePort(
    "tcp",
    "127.0.0.1",
    (port) =>
      spawnPeer("ncat", ["-l", "-k", "--exec", "/bin/cat", "127.0.0.1", String(port)], {
        timeoutMs: RUN_TIMEOUT_MS,
      }),
    (peer, port) => waitForTcp("127.0.0.1", port, { peer }),
  );
}

Deno.test({
  name: "netkit client --message gets every reply from ncat --exec cat echo",
  ignore: skipWithout("ncat"),
  async fn() {
    const { peer, port } = await startNcatEcho();
    await using _peer = peer;
    const result = await runNetkit(
      ["client", "127.0.0.1", String(port), "--message", "hello ncat", "--count", "3"],
      { timeoutMs: RUN_TIMEOUT_MS },
    );
    assertEquals(result.code, 0, result.stderr);
    assertEquals(result.text, "hello ncat\n".repeat(3));
  },
});

Deno.test({
  name: "netkit client --connections 4 --message all succeed against ncat --exec cat echo",
  ignore: skipWithout("ncat"),
  async fn() {
    const { peer, port } = await startNcatEcho();
    await using _peer = peer;
    const result = await runNetkit(
      [
        "client",
        "127.0.0.1",
        String(port),
        "--connections",
        "4",
        "--message",
        "hi",
        "--count",
        "5",
      ],
      { timeoutMs: RUN_TIMEOUT_MS },
    );
    assertEquals(result.code, 0, result.stderr);
    assertMatch(result.text, /^connections: 4 ok, 0 failed; messages: 20 sent, 20 replies;/);
  },
});

Deno.test({
  name: "netkit client and one-shot nc -l exchange stdin both ways and both exit",
  ignore: skipWithout("nc") || Deno.build.os !== "linux", // readiness from /proc/net/tcp
  async fn() {
    const toNc = "hello from netkit\n";
    const fromNc = "greetings from nc\n";
    const { peer, port } = await startOnFreePort(
      "tcp",
      "127.0.0.1",
      (port) => {
        const peer = spawnPeer("nc", ["-l", "127.0.0.1", String(port)], {
          stdin: "piped",
          timeoutMs: RUN_TIMEOUT_MS,
        });
        // nc reads its stdin only once a client is connected; the pipe holds it until then.
        peer.write(fromNc).then(() => peer.closeStdin()).catch(() => {});
        return peer;
      },
      // A probe connect would use up the one-shot listener: watch the kernel's table instead.
      (peer, port) => waitForTcpListener(port, { peer }),
    );
    await using _peer = peer;
    const result = await runNetkit(["client", "127.0.0.1", String(port)], {
      stdin: toNc,
      timeoutMs: RUN_TIMEOUT_MS,
    });
    assertEquals(result.code, 0, result.stderr);
    assertEquals(result.text, fromNc);
    const nc = await peer.wait();
    assertEquals(nc.signal, null, `nc killed at its deadline: ${nc.stderr}`);
    assertEquals(nc.code, 0, nc.stderr);
    assertEquals(decode(nc.stdout), toNc);
  },
});

/** A socat UDP echo on `host` (a child per client address, idle children exit after 2 s). */
function startSocatUdpEcho(host: string, url: string) {
  const family = host.includes(":") ? "UDP6" : "UDP4";
  return startOnFreePort(
    "udp",
    host,
    (port) =>
      spawnPeer("socat", ["-T2", `${family}-LISTEN:${port},bind=${url},reuseaddr,fork`, "PIPE"], {
        timeoutMs: RUN_TIMEOUT_MS,
      }),
    (peer, port) => waitForUdpEcho(host, port, { peer }),
  );
}

for (const { host, url, ignore } of HOSTS) {
  Deno.test({
    name: `netkit client --proto udp --message gets 3 echoes from socat udp echo on ${host}`,
    ignore: ignore || skipWithout("socat"),
    async fn() {
      const { peer, port } = await startSocatUdpEcho(host, url);
      await using _peer = peer;
      const result = await runNetkit(
        ["client", "--proto", "udp", `${url}:${port}`, "--message", "ping", "--count", "3"],
        { timeoutMs: RUN_TIMEOUT_MS },
      );
      assertEquals(result.code, 0, result.stderr);
      assertEquals(result.text, "ping\n".repeat(3));
    },
  });
}

Deno.test({
  name:
    "netkit client --proto udp pipes a datagram through socat udp echo and exits after --timeout",
  ignore: skipWithout("socat"),
  async fn() {
    const { peer, port } = await startSocatUdpEcho("127.0.0.1", "127.0.0.1");
    await using _peer = peer;
    const message = "one datagram via the pipe\n";
    const started = performance.now();
    const result = await runNetkit(
      ["client", "--proto", "udp", "--timeout", "300ms", "127.0.0.1", String(port)],
      { stdin: message, timeoutMs: RUN_TIMEOUT_MS },
    );
    const elapsed = performance.now() - started;
    assertEquals(result.code, 0, result.stderr);
    assertEquals(result.text, message);
    assert(elapsed < 5000, `took ${elapsed.toFixed(0)} ms to exit with --timeout 300ms`);
  },
});
