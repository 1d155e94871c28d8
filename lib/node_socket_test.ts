import { assertEquals, assertRejects } from "@std/assert";
import net from "node:net";
import { NodeSocketIo } from "./node_socket.ts";

/** A loopback pair of node sockets (client, server side); both destroyed by `close`. */
async function socketPair(): Promise<
  { client: net.Socket; peer: net.Socket; close(): Promise<void> }
> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  const accepted = new Promise<net.Socket>((resolve) => server.once("connection", resolve));
  const client = net.connect({ host: "127.0.0.1", port });
  await new Promise<void>((resolve) => client.once("connect", resolve));
  const peer = await accepted;
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  return {
    client,
    peer,
    close: () => {
      client.destroy();
      peer.destroy();
      return closed;
    },
  };
}

Deno.test("NodeSocketIo reads across and within chunks, then null once the peer ended", async () => {
  const pair = await socketPair();
  try {
    const io = new NodeSocketIo(pair.client);
    pair.peer.end(new TextEncoder().encode("hello world"));
    const got: number[] = [];
    const buf = new Uint8Array(4);
    for (let n = await io.read(buf); n !== null; n = await io.read(buf)) {
      got.push(...buf.subarray(0, n));
    }
    assertEquals(new TextDecoder().decode(new Uint8Array(got)), "hello world");
    assertEquals(io.ended, true);
  } finally {
    await pair.close();
  }
});

Deno.test("NodeSocketIo.write sends a copy: the caller may reuse its buffer at once", async () => {
  const pair = await socketPair();
  try {
    const io = new NodeSocketIo(pair.client);
    const peerIo = new NodeSocketIo(pair.peer);
    const buf = new TextEncoder().encode("abc");
    const written = io.write(buf);
    buf.fill(0x7a);
    assertEquals(await written, 3);
    await io.closeWrite();
    const into = new Uint8Array(8);
    let text = "";
    for (let n = await peerIo.read(into); n !== null; n = await peerIo.read(into)) {
      text += new TextDecoder().decode(into.subarray(0, n));
    }
    assertEquals(text, "abc");
  } finally {
    await pair.close();
  }
});

Deno.test("NodeSocketIo read throws the socket's error, as mapped, after beforeThrow settles", async () => {
  const pair = await socketPair();
  try {
    let settled = false;
    const io = new NodeSocketIo(pair.client, {
      mapError: (err) => new Deno.errors.InvalidData(err.message),
      onError: () => {
        io.beforeThrow = Promise.resolve().then(() => (settled = true));
      },
    });
    pair.client.destroy(new Error("boom"));
    await assertRejects(() => io.read(new Uint8Array(4)), Deno.errors.InvalidData, "boom");
    assertEquals(settled, true);
  } finally {
    await pair.close();
  }
});
