import { assert, assertEquals, assertNotEquals } from "@std/assert";
import { loadLibc } from "./libc.ts";
import { LINUX } from "./layout.ts";
import { findSocketFd, sameHost } from "./socket_fd.ts";

const libc = loadLibc();
const ignore = "reason" in libc;

/** The local port the kernel reports for `fd` (proves the number is the socket's). */
function portOf(fd: number): number {
  if ("reason" in libc) throw new Error(libc.reason);
  const addr = new Uint8Array(128);
  const len = new Uint32Array([addr.length]);
  assertEquals(libc.symbols.getsockname(fd, addr, new Uint8Array(len.buffer)), 0);
  return new DataView(addr.buffer).getUint16(2, false);
}

Deno.test({
  name: "findSocketFd finds the descriptor of a UDP socket Deno bound",
  ignore,
  fn() {
    if ("reason" in libc) return;
    const socket = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
    try {
      const local = socket.addr as Deno.NetAddr;
      const fd = findSocketFd(libc, { type: "udp", local });
      assert(fd !== undefined && fd > 2, `fd ${fd}`);
      assertEquals(portOf(fd), local.port);
      assertEquals(findSocketFd(libc, { type: "tcp", local }), undefined, "UDP is not TCP");
    } finally {
      socket.close();
    }
  },
});

Deno.test({
  name: "findSocketFd tells apart the two ends of one TCP connection by their peers",
  ignore,
  async fn() {
    if ("reason" in libc) return;
    using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (listener.addr as Deno.NetAddr).port;
    using client = await Deno.connect({ hostname: "127.0.0.1", port });
    using server = await listener.accept();
    const c = findSocketFd(libc, {
      type: "tcp",
      local: client.localAddr as Deno.NetAddr,
      remote: client.remoteAddr as Deno.NetAddr,
    });
    const s = findSocketFd(libc, {
      type: "tcp",
      local: server.localAddr as Deno.NetAddr,
      remote: server.remoteAddr as Deno.NetAddr,
    });
    assert(c !== undefined && s !== undefined);
    assertNotEquals(c, s);
    assertEquals(portOf(c), (client.localAddr as Deno.NetAddr).port);
    // Without a peer, the accepted socket and the listener share the local address: ambiguous.
    assertEquals(
      findSocketFd(libc, { type: "tcp", local: server.localAddr as Deno.NetAddr }),
      undefined,
    );
  },
});

Deno.test({
  name: "findSocketFd answers undefined for a socket that does not exist",
  ignore,
  fn() {
    if ("reason" in libc) return;
    const socket = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
    try {
      const port = (socket.addr as Deno.NetAddr).port;
      const other = { transport: "udp", hostname: "127.0.0.2", port } as const;
      assertEquals(findSocketFd(libc, { type: "udp", local: other }), undefined);
      assertEquals(LINUX.SO_TYPE, 3);
    } finally {
      socket.close();
    }
  },
});

Deno.test("sameHost equates IPv4-mapped IPv6 with IPv4, and nothing else", () => {
  assert(sameHost("::ffff:127.0.0.1", "127.0.0.1"));
  assert(sameHost("::ffff:7f00:1", "127.0.0.1"));
  assert(sameHost("[::1]", "::1"));
  assert(sameHost("FE80::1", "fe80::1"));
  assert(!sameHost("::ffff:127.0.0.2", "127.0.0.1"));
  assert(!sameHost("::1", "127.0.0.1"));
});

Deno.test({
  name:
    "findSocketFd finds a socket numbered past the first 300 descriptors (the scan follows the table's size)",
  ignore,
  fn() {
    if ("reason" in libc) return;
    const many: Deno.DatagramConn[] = [];
    try {
      for (let i = 0; i < 300; i++) {
        many.push(Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 }));
      }
      const last = many[many.length - 1]!;
      const fd = findSocketFd(libc, { type: "udp", local: last.addr as Deno.NetAddr });
      assert(fd !== undefined && fd >= 300, `fd ${fd}`);
      assertEquals(portOf(fd), (last.addr as Deno.NetAddr).port);
    } finally {
      for (const socket of many) socket.close();
    }
  },
});
