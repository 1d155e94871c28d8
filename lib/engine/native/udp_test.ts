import { assert, assertEquals, assertInstanceOf, assertMatch, assertRejects } from "@std/assert";
import { deadline } from "@std/async/deadline";
import { delay } from "@std/async/delay";
import { DatagramBatch, type DatagramTransport, type Engine } from "../types.ts";
import { denoEngine } from "../deno.ts";
import { loadNativeEngine } from "./engine.ts";
import { findLibc, type Libc, LIBC_PATHS, loadLibc } from "./libc.ts";
import { LINUX } from "./layout.ts";
import { ErrnoError, FAIR_MS, FLOOD_AFTER, NativeUdpSocket, PolledFd } from "./udp.ts";
import { registrations } from "./_epoll_test_utils.ts";

const native = loadNativeEngine();
const nativeMissing = "reason" in native;
const engines: [string, Engine | undefined][] = [
  ["native", "engine" in native ? native.engine : undefined],
  ["deno", denoEngine],
];

/** A port on `host` that was free a moment ago (bound, read, closed). */
function freePort(host: string): number {
  const probe = Deno.listenDatagram({ transport: "udp", hostname: host, port: 0 });
  const port = (probe.addr as Deno.NetAddr).port;
  probe.close();
  return port;
}

/** Two sockets of `engine` connected to each other on `host`. */
async function openPair(
  engine: Engine,
  host: string,
): Promise<[DatagramTransport, DatagramTransport]> {
  for (let attempt = 0;; attempt++) {
    const portA = freePort(host);
    const b = await engine.open({
      local: { hostname: host, port: 0 },
      remote: { hostname: host, port: portA },
    });
    try {
      const a = await engine.open({
        local: { hostname: host, port: portA },
        remote: { hostname: host, port: b.local.port },
      });
      return [a, b];
    } catch (err) {
      b.close();
      if (attempt >= 5) throw err; // the free port was taken meanwhile: try another
    }
  }
}

/** Fill `batch` with `count` datagrams of varied sizes whose bytes encode (datagram, offset). */
function fillPattern(batch: DatagramBatch, count: number, seed: number): void {
  for (let i = 0; i < count; i++) {
    const length = 1 + ((i * 397 + seed * 131) % batch.slotSize);
    batch.lengths[i] = length;
    const slot = batch.data.subarray(i * batch.slotSize, i * batch.slotSize + length);
    for (let j = 0; j < length; j++) slot[j] = (seed * 31 + i * 7 + j) & 0xff;
  }
  batch.count = count;
}

async function receiveAll(
  socket: DatagramTransport,
  want: number,
  slotSize: number,
): Promise<Uint8Array[]> {
  const batch = new DatagramBatch(64, slotSize);
  const got: Uint8Array[] = [];
  while (got.length < want) {
    const n = await socket.receiveBatch(batch);
    assert(n > 0, "socket closed early");
    for (let i = 0; i < n; i++) got.push(batch.slot(i).slice());
  }
  return got;
}

for (const [name, engine] of engines) {
  for (const host of ["127.0.0.1", "::1"]) {
    Deno.test({
      name:
        `${name} engine: a connected UDP pair on ${host} carries batches both ways byte-exact and in order`,
      ignore: engine === undefined,
      async fn() {
        const [a, b] = await openPair(engine!, host);
        try {
          assertEquals(a.features.engine, name);
          const batch = new DatagramBatch(32, 1400);
          const expected: Uint8Array[] = [];
          const receiving = deadline(receiveAll(b, 96, 1400), 10_000);
          for (let round = 0; round < 3; round++) {
            fillPattern(batch, 32, round);
            for (let i = 0; i < 32; i++) expected.push(batch.slot(i).slice());
            assertEquals(await a.sendBatch(batch), 32);
          }
          const got = await receiving;
          assertEquals(got.length, 96);
          for (let i = 0; i < 96; i++) assertEquals(got[i], expected[i], `datagram ${i}`);
          // And back: b to a.
          fillPattern(batch, 5, 9);
          const back = deadline(receiveAll(a, 5, 1400), 10_000);
          assertEquals(await b.sendBatch(batch), 5);
          const gotBack = await back;
          for (let i = 0; i < 5; i++) assertEquals(gotBack[i], batch.slot(i));
        } finally {
          a.close();
          b.close();
        }
      },
    });
  }

  Deno.test({
    name: `${name} engine: close ends a pending receive with 0 datagrams`,
    ignore: engine === undefined,
    async fn() {
      const [a, b] = await openPair(engine!, "127.0.0.1");
      b.close();
      const batch = new DatagramBatch(4, 64);
      const pending = a.receiveBatch(batch);
      a.close();
      assertEquals(await deadline(pending, 5_000), 0);
      assertEquals(batch.count, 0);
    },
  });
}

Deno.test({
  name:
    "PolledFd: a close under a pending poll keeps the descriptor until that poll returns, then releases it",
  ignore: nativeMissing,
  async fn() {
    const libc = loadLibc();
    if ("reason" in libc) return;
    const fd = libc.symbols.socket(LINUX.AF_INET, LINUX.SOCK_DGRAM | LINUX.SOCK_NONBLOCK, 0);
    assert(fd >= 0);
    const sock = new PolledFd(libc, fd);
    const pending = sock.wait(new Uint8Array(8), LINUX.POLLIN, 5_000);
    sock.close();
    assertEquals(sock.fd, fd, "released while a poll still held it");
    await deadline(pending, 5_000);
    assertEquals(sock.fd, -1);
    libc.close();
  },
});

Deno.test({
  name:
    "native engine: with receiveWait event-loop, a receive that has to wait waits in Deno's event loop (no poll on a pool thread), gets the datagram that ended it, then batches again; by default it polls",
  ignore: nativeMissing,
  async fn() {
    const libc = loadLibc();
    if ("reason" in libc) return;
    let polls = 0;
    const counted: Libc = {
      ...libc,
      symbols: {
        ...libc.symbols,
        poll_wait: (...args) => {
          polls++;
          return libc.symbols.poll_wait(...args);
        },
      },
    };
    const peer = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
    const socket = NativeUdpSocket.open(counted, {
      remote: peer.addr as Deno.NetAddr,
      receiveWait: "event-loop",
    });
    try {
      const batch = new DatagramBatch(8, 64);
      const pending = socket.receiveBatch(batch);
      const to = { transport: "udp" as const, hostname: "127.0.0.1", port: socket.local.port };
      await peer.send(new TextEncoder().encode("first"), to);
      assertEquals(await deadline(pending, 5_000), 1);
      assertEquals(new TextDecoder().decode(batch.slot(0)), "first");
      // Datagrams already waiting come in one batch, as before.
      for (const text of ["a", "bb", "ccc"]) await peer.send(new TextEncoder().encode(text), to);
      const got: string[] = [];
      while (got.length < 3) {
        await deadline(socket.receiveBatch(batch), 5_000);
        for (let i = 0; i < batch.count; i++) got.push(new TextDecoder().decode(batch.slot(i)));
      }
      assertEquals(got, ["a", "bb", "ccc"]);
      // Paced arrivals, each after a wait, for longer than FAIR_MS: every wait in the event loop
      // counts as one, so no fairness pause (a 1 ms poll) is ever owed.
      const started = performance.now();
      for (let i = 0; performance.now() - started < 3 * FAIR_MS || i < 16; i++) {
        const next = socket.receiveBatch(batch);
        await delay(2);
        await peer.send(new Uint8Array([i & 0xff]), to);
        assertEquals(await deadline(next, 5_000), 1);
        assertEquals(batch.slot(0)[0], i & 0xff);
      }
      assertEquals(polls, 0, "waited or paused on a pool thread");
      // Paced, it stays in Deno's epoll: no epoll_ctl per wait.
      assert(registrations(socket.fd).length > 0, "paced: in Deno's epoll");
      const flood = new DatagramBatch(32, 16);
      flood.fill(32, 16);
      const sendFlood = async () => {
        for (let sent = 0; sent <= FLOOD_AFTER; sent += 32) await socket.sendBatch(flood);
      };
      // A flood sent while a receive waits must not take the socket out from under it.
      const during = socket.receiveBatch(batch);
      await sendFlood();
      assert(registrations(socket.fd).length > 0, "waiting: still in Deno's epoll");
      await peer.send(new Uint8Array([7]), to);
      assertEquals(await deadline(during, 5_000), 1);
      assertEquals(batch.slot(0)[0], 7);
      // More than FLOOD_AFTER datagrams without a wait: out of Deno's epoll, its next wait a
      // poll on the pool; then, paced again, back in the event loop.
      await sendFlood();
      assertEquals(registrations(socket.fd), [], "flooded: out of Deno's epoll");
      for (const [tag, pooled] of [[8, true], [9, false]] as const) {
        const before = polls;
        const next = socket.receiveBatch(batch);
        assertEquals(registrations(socket.fd).length > 0, !pooled);
        await peer.send(new Uint8Array([tag]), to);
        assertEquals(await deadline(next, 5_000), 1);
        assertEquals(batch.slot(0)[0], tag);
        assertEquals(polls > before, pooled, pooled ? "polled" : "waited in the event loop");
      }
      const closing = socket.receiveBatch(batch);
      socket.close();
      assertEquals(await deadline(closing, 5_000), 0);
      assertEquals(socket.fd, -1, "Deno's socket is closed at once: no poll holds its number");
      // By default a socket waits on the pool.
      using pooled = NativeUdpSocket.open(counted, { remote: peer.addr as Deno.NetAddr });
      const waiting = pooled.receiveBatch(batch);
      await peer.send(new TextEncoder().encode("pooled"), {
        transport: "udp",
        hostname: "127.0.0.1",
        port: pooled.local.port,
      });
      assertEquals(await deadline(waiting, 5_000), 1);
      assertEquals(new TextDecoder().decode(batch.slot(0)), "pooled");
      assert(polls > 0, "the default waited in Deno's event loop");
    } finally {
      socket.close();
      peer.close();
      libc.close();
    }
  },
});

Deno.test({
  name:
    "native engine: a datagram to a closed port surfaces ECONNREFUSED (errno via __errno_location)",
  ignore: nativeMissing,
  async fn() {
    if (!("engine" in native)) return;
    const port = freePort("127.0.0.1");
    using socket = await native.engine.open({ remote: { hostname: "127.0.0.1", port } });
    const batch = new DatagramBatch(1, 16);
    batch.fill(1, 16);
    assertEquals(await socket.sendBatch(batch), 1);
    const err = await assertRejects(() => deadline(socket.receiveBatch(batch), 5_000));
    assertInstanceOf(err, ErrnoError);
    assertEquals(err.code, "ECONNREFUSED");
    assertEquals(err.errno, 111);
    // recvmmsg finds the error on loopback; a receive that had to wait first reports recv.
    assertMatch(err.syscall, /^recv(mmsg)?$/);
  },
});

Deno.test({
  name: "native engine: asks for larger socket buffers and reports what the kernel granted",
  ignore: nativeMissing,
  async fn() {
    if (!("engine" in native)) return;
    using small = await native.engine.open({
      remote: { hostname: "127.0.0.1", port: 9 },
      receiveBuffer: 4096,
    });
    using large = await native.engine.open({
      remote: { hostname: "127.0.0.1", port: 9 },
      receiveBuffer: 4 << 20,
      sendBuffer: 1 << 20,
    });
    // Linux doubles the value asked for (bookkeeping); only root (SO_*BUFFORCE) passes
    // net.core.rmem_max/wmem_max, so the exact floor holds for root alone.
    assert((large.features.receiveBuffer ?? 0) > (small.features.receiveBuffer ?? 0));
    if (Deno.uid() === 0) {
      assert((large.features.receiveBuffer ?? 0) >= 4 << 20, String(large.features.receiveBuffer));
      assert((large.features.sendBuffer ?? 0) >= 1 << 20, String(large.features.sendBuffer));
    }
  },
});

Deno.test("native engine refuses a host name: it takes IP addresses", async () => {
  if (!("engine" in native)) return;
  await assertRejects(
    () => native.engine.open({ remote: { hostname: "localhost", port: 9 } }),
    TypeError,
    "IP address",
  );
});

Deno.test("libc fallback: a missing library, another OS or architecture each give a reason", () => {
  const missing = loadLibc({ paths: ["/nonexistent/netkit/libc.so.6"] });
  assert("reason" in missing);
  assertMatch(missing.reason, /no glibc at the known paths.*\/nonexistent\/netkit\/libc\.so\.6/);
  const mac = loadLibc({ os: "darwin" });
  assert("reason" in mac);
  assertEquals(mac.reason, "the native engine needs Linux (this is darwin)");
  const windows = loadLibc({ os: "windows" });
  assert("reason" in windows);
  assertMatch(windows.reason, /needs Linux \(this is windows\)/);
  const riscv = loadLibc({ arch: "riscv64gc" });
  assert("reason" in riscv);
  assertMatch(riscv.reason, /no checked struct layouts for riscv64gc/);
});

Deno.test("findLibc checks what loadLibc would, without opening: a missing file is a reason", () => {
  const missing = findLibc({ paths: ["/nonexistent/netkit/libc.so.6"] });
  assert("reason" in missing);
  assertMatch(missing.reason, /none of \/nonexistent\/netkit\/libc\.so\.6 exists/);
  assertEquals(findLibc({ os: "darwin" }), {
    reason: "the native engine needs Linux (this is darwin)",
  });
  const here = findLibc();
  const loaded = loadLibc();
  if ("reason" in loaded) return;
  assert(!("reason" in here), "libc loads here, so it must be found");
  assertEquals(here.paths[0], loaded.path);
  loaded.close();
});

Deno.test("every known libc path is absolute and listed in the netkit permission set", async () => {
  const config = JSON.parse(
    await Deno.readTextFile(new URL("../../../deno.json", import.meta.url)),
  );
  const granted: string[] = config.permissions.netkit.ffi;
  for (const path of [...LIBC_PATHS.x86_64, ...LIBC_PATHS.aarch64]) {
    assert(path.startsWith("/"), path);
    assert(granted.includes(path), `${path} missing from deno.json permissions.netkit.ffi`);
  }
  assertEquals(new Set(granted), new Set([...LIBC_PATHS.x86_64, ...LIBC_PATHS.aarch64]));
});
