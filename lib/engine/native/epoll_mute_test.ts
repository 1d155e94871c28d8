/**
 * Tests of {@linkcode parseEpollEntry} (the fdinfo text of an epoll instance)
 * and of muting a real registration: Deno's event loop stops waking for a
 * socket, and wakes again once restored.
 *
 * @module
 */

import { assert, assertEquals } from "@std/assert";
import { deadline } from "@std/async/deadline";
import { muteInReactor, parseEpollEntry, reactorSwitch } from "./epoll_mute.ts";
import { sharedLibc } from "./engine.ts";
import type { Libc } from "./libc.ts";
import { findSocketFd } from "./socket_fd.ts";
import { registrations } from "./_epoll_test_utils.ts";

const FDINFO = `pos:	0
flags:	02000002
mnt_id:	17
ino:	1038
tfd:       23 events: 8000201d data:     55e835c41a00  pos:0 ino:35a3b4 sdev:9
tfd:        8 events: 80002019 data:                1  pos:0 ino:35a3af sdev:9
tfd:      123 events: 8000201d data:     55e835c37f00  pos:0 ino:35a3b5 sdev:9
`;

Deno.test("parseEpollEntry finds a descriptor's events and data, and nothing for another", () => {
  assertEquals(parseEpollEntry(FDINFO, 23), { events: 0x8000201d, data: 0x55e835c41a00n });
  assertEquals(parseEpollEntry(FDINFO, 8), { events: 0x80002019, data: 1n });
  assertEquals(parseEpollEntry(FDINFO, 123)?.data, 0x55e835c37f00n);
  assertEquals(parseEpollEntry(FDINFO, 12), undefined);
  assertEquals(parseEpollEntry("pos: 0\n", 3), undefined);
});

/**
 * A UDP socket Deno has registered with its event loop (by a first receive, which got a
 * datagram from `client`), and its descriptor. Close both sockets when done.
 */
async function registeredUdpSocket(libc: Libc) {
  const server = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  const client = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  const fd = findSocketFd(libc, { type: "udp", local: server.addr as Deno.NetAddr });
  assert(fd !== undefined);
  const first = server.receive();
  await client.send(new Uint8Array([1]), server.addr);
  assertEquals((await first)[0], new Uint8Array([1]));
  return { server, client, fd };
}

Deno.test({
  name: "muteInReactor: a muted UDP socket's datagram waits in the kernel until it is restored",
  ignore: "reason" in sharedLibc(),
  fn: async () => {
    const libc = sharedLibc();
    if ("reason" in libc) return;
    const { server, client, fd } = await registeredUdpSocket(libc);
    try {
      const restore = muteInReactor(libc, fd);
      assert(restore, "Deno's registration of the socket was found");
      let got = false;
      const pending = server.receive().then(([d]) => (got = d[0] === 2));
      await client.send(new Uint8Array([2]), server.addr);
      // Several turns of the event loop: a muted socket's receive does not complete.
      for (let i = 0; i < 20; i++) await new Promise((r) => setTimeout(r, 0));
      assertEquals(got, false);
      restore();
      await pending;
      assertEquals(got, true);
    } finally {
      server.close();
      client.close();
    }
  },
});

/**
 * Run `body` on {@linkcode registeredUdpSocket}'s sockets and its registrations in Deno's epoll
 * (at least one), then close both; returns the server socket's address.
 */
async function withRegistered(
  libc: Libc,
  body: (
    socket: Awaited<ReturnType<typeof registeredUdpSocket>> & {
      before: ReturnType<typeof registrations>;
    },
  ) => Promise<void> | void,
): Promise<Deno.NetAddr> {
  const socket = await registeredUdpSocket(libc);
  try {
    const before = registrations(socket.fd);
    // (Deno's event loop holds its epoll instance under more than one descriptor.)
    assert(before.length > 0, "registered by Deno's event loop");
    await body({ ...socket, before });
  } finally {
    socket.server.close();
    socket.client.close();
  }
  return socket.server.addr as Deno.NetAddr;
}

Deno.test({
  name:
    "muteInReactor: the socket is out of Deno's epoll while muted and back with the same events and token after; one closed while muted closes cleanly",
  ignore: "reason" in sharedLibc(),
  fn: async () => {
    const libc = sharedLibc();
    if ("reason" in libc) return;
    const addr = await withRegistered(libc, ({ fd, before }) => {
      const restore = muteInReactor(libc, fd);
      assert(restore);
      assertEquals(registrations(fd), []);
      restore();
      assertEquals(registrations(fd), before);
      restore(); // once only
      assertEquals(registrations(fd), before);
      // Muted again and closed by Deno without a restore: no error, and the descriptor is gone.
      assert(muteInReactor(libc, fd));
    });
    assertEquals(findSocketFd(libc, { type: "udp", local: addr }), undefined);
  },
});

Deno.test({
  name:
    "reactorSwitch: takes a socket out of Deno's epoll and puts it back as it was, again and again, and a datagram that came meanwhile wakes Deno's receive",
  ignore: "reason" in sharedLibc(),
  fn: async () => {
    const libc = sharedLibc();
    if ("reason" in libc) return;
    await withRegistered(libc, async ({ server, client, fd, before }) => {
      const registration = reactorSwitch(libc, fd);
      assert(registration);
      assertEquals(registrations(fd), before, "found, still in");
      for (let round = 0; round < 3; round++) {
        assert(registration.mute());
        assert(registration.mute(), "muting twice is no error");
        assertEquals(registrations(fd), []);
        // Arrives while out: Deno's event loop cannot know, until the socket is back.
        await client.send(new Uint8Array([round + 2]), server.addr);
        registration.unmute();
        registration.unmute();
        assertEquals(registrations(fd), before);
        const [got] = await deadline(server.receive(), 5_000);
        assertEquals(got, new Uint8Array([round + 2]));
      }
      assert(registration.mute()); // and closed by Deno while out: no error
    });
  },
});
