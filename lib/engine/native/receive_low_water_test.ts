import { assert, assertEquals } from "@std/assert";
import { sharedLibc } from "./engine.ts";
import { LINUX } from "./layout.ts";
import { openReceiveLowWater, SO_RCVLOWAT } from "./receive_low_water.ts";
import { findSocketFd, type SocketMatch } from "./socket_fd.ts";

const libc = sharedLibc();
const ignore = "reason" in libc;

/** A connected TCP pair on loopback. */
async function pair(): Promise<{ client: Deno.TcpConn; server: Deno.TcpConn; close(): void }> {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const client = await Deno.connect({ port: (listener.addr as Deno.NetAddr).port });
  const server = await listener.accept();
  return { client, server, close: () => (client.close(), server.close()) };
}

/** The kernel's SO_RCVLOWAT of the one socket matching `match`. */
function kernelMark(match: SocketMatch): number {
  if ("reason" in libc) throw new Error(libc.reason);
  const fd = findSocketFd(libc, match);
  assert(fd !== undefined);
  const value = new Int32Array(1);
  const len = new Uint32Array([4]);
  const got = libc.symbols.getsockopt(
    fd,
    LINUX.SOL_SOCKET,
    SO_RCVLOWAT,
    new Uint8Array(value.buffer),
    new Uint8Array(len.buffer),
  );
  assertEquals(got, 0);
  return value[0]!;
}

/** The match of a connected TCP socket, from Deno's side. */
function connMatch(conn: Deno.Conn): SocketMatch {
  return {
    type: "tcp",
    local: conn.localAddr as Deno.NetAddr,
    remote: conn.remoteAddr as Deno.NetAddr,
  };
}

Deno.test({
  name: "openReceiveLowWater sets the kernel's SO_RCVLOWAT of exactly that connection, and back",
  ignore,
  async fn() {
    if ("reason" in libc) return;
    const { client, server, close } = await pair();
    try {
      const mark = openReceiveLowWater(libc, server);
      assert(mark);
      assertEquals(mark.bytes, 1);
      assert(mark.set(131072));
      assertEquals(mark.bytes, 131072);
      assertEquals(kernelMark(connMatch(server)), 131072);
      assertEquals(kernelMark(connMatch(client)), 1, "the other end of the pair is untouched");
      assert(mark.set(1));
      assertEquals(kernelMark(connMatch(server)), 1);
    } finally {
      close();
    }
  },
});

Deno.test({
  name: "with the mark raised, a short stream is still read whole: its end wakes the reader",
  ignore,
  async fn() {
    if ("reason" in libc) return;
    const { client, server, close } = await pair();
    try {
      assert(openReceiveLowWater(libc, server)?.set(131072));
      await client.write(new Uint8Array(100).fill(7));
      await client.closeWrite();
      const buf = new Uint8Array(1024);
      let total = 0;
      for (let n; (n = await server.read(buf)) !== null;) total += n;
      assertEquals(total, 100);
    } finally {
      close();
    }
  },
});

Deno.test({
  name:
    "a mark whose connection was closed refuses to set (the number may be another socket's now)",
  ignore,
  async fn() {
    if ("reason" in libc) return;
    const { server, close } = await pair();
    const mark = openReceiveLowWater(libc, server);
    assert(mark);
    close();
    // The next socket opened takes the lowest free number: likely the closed one's.
    using other = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    assertEquals(mark.set(131072), false);
    assertEquals(mark.bytes, 1);
    assertEquals(kernelMark({ type: "tcp", local: other.addr as Deno.NetAddr }), 1);
  },
});

Deno.test({
  name: "openReceiveLowWater gives undefined for a connection that is not TCP",
  ignore,
  async fn() {
    if ("reason" in libc) return;
    const path = await Deno.makeTempFile();
    await Deno.remove(path);
    using _listener = Deno.listen({ transport: "unix", path });
    try {
      using conn = await Deno.connect({ transport: "unix", path });
      assertEquals(openReceiveLowWater(libc, conn), undefined);
    } finally {
      await Deno.remove(path).catch(() => {});
    }
  },
});
