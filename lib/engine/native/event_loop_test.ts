import { assert, assertEquals } from "@std/assert";
import { leaveEventLoops } from "./event_loop.ts";
import { loadLibc } from "./libc.ts";
import { findSocketFd } from "./socket_fd.ts";

const libc = loadLibc();

Deno.test({
  name:
    "leaveEventLoops takes a TCP connection off Deno's one event loop; blocking I/O still works and Deno still closes it",
  ignore: "reason" in libc,
  async fn() {
    if ("reason" in libc) return;
    using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const client = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
    using server = await listener.accept();
    let closed = false;
    try {
      const fd = findSocketFd(libc, {
        type: "tcp",
        local: client.localAddr as Deno.NetAddr,
        remote: client.remoteAddr as Deno.NetAddr,
      });
      assert(fd !== undefined);
      assertEquals(leaveEventLoops(libc, fd), 1, "Deno's event loop watched it");
      assertEquals(leaveEventLoops(libc, fd), 0, "and no longer does");
      // The socket itself is untouched: libc sends on it, the peer reads the bytes.
      const hello = new TextEncoder().encode("hello");
      assertEquals(libc.symbols.send(fd, hello, BigInt(hello.length), 0), hello.length);
      const got = new Uint8Array(16);
      let n = 0;
      while (n < hello.length) n += (await server.read(got.subarray(n))) ?? 0;
      assertEquals(got.subarray(0, n), hello);
      // Deno still closes it (its own removal fails, and is ignored): the peer sees the end.
      client.close();
      closed = true;
      assertEquals(await server.read(got), null);
    } finally {
      if (!closed) client.close();
    }
  },
});
