import { assert, assertEquals, assertRejects } from "@std/assert";
import { isClosedError } from "../../io.ts";
import { deadline } from "@std/async/deadline";
import { delay } from "@std/async/delay";
import { DatagramBatch, type Engine } from "../types.ts";
import { denoEngine } from "../deno.ts";
import { loadNativeEngine } from "./engine.ts";
import { FAIR_MS } from "./udp.ts";

const native = loadNativeEngine();
const engines: [string, Engine | undefined][] = [
  ["native", "engine" in native ? native.engine : undefined],
  ["deno", denoEngine],
];

for (const [name, engine] of engines) {
  for (const host of ["127.0.0.1", "::1"]) {
    Deno.test({
      name:
        `${name} listener on ${host}: datagrams from two peers arrive in order with their sources, and replies reach each`,
      ignore: engine === undefined,
      async fn() {
        const listener = await engine!.listen({
          local: { hostname: host, port: 0 },
          maxDatagram: 1400,
        });
        const port = (listener.addr as Deno.NetAddr).port;
        const a = Deno.listenDatagram({ transport: "udp", hostname: host, port: 0 });
        const b = Deno.listenDatagram({ transport: "udp", hostname: host, port: 0 });
        try {
          const to: Deno.NetAddr = { transport: "udp", hostname: host, port };
          const sent: [Deno.DatagramConn, number][] = [[a, 1], [b, 2], [a, 3], [a, 4], [b, 5]];
          for (const [peer, tag] of sent) await peer.send(new Uint8Array(100).fill(tag), to);
          const got: [number, number, number][] = [];
          for (let i = 0; i < sent.length; i++) {
            const [data, from] = await deadline(listener.receive(), 5000);
            got.push([data[0]!, data.length, (from as Deno.NetAddr).port]);
            if (i === 0) await listener.send(new Uint8Array([9, 9]), from); // a reply to a
          }
          const portOf = (c: Deno.DatagramConn) => (c.addr as Deno.NetAddr).port;
          assertEquals(got, sent.map(([peer, tag]) => [tag, 100, portOf(peer)]));
          const [reply, replyFrom] = await deadline(a.receive(), 5000);
          assertEquals([...reply], [9, 9]);
          assertEquals((replyFrom as Deno.NetAddr).port, port);
        } finally {
          listener.close();
          a.close();
          b.close();
        }
      },
    });
  }

  Deno.test({
    name:
      `${name} listener: close ends a pending receive with a closed-socket error (BadResource or Interrupted)`,
    ignore: engine === undefined,
    async fn() {
      const listener = await engine!.listen({
        local: { hostname: "127.0.0.1", port: 0 },
        maxDatagram: 64,
      });
      const pending = listener.receive();
      listener.close();
      const err = await assertRejects(() => deadline(pending, 5000));
      assert(isClosedError(err), String(err));
    },
  });
}

Deno.test({
  name:
    "native listener with GRO: GSO runs from two senders arrive whole and are cut back into their datagrams, in order, byte for byte, with their sources",
  ignore: !("engine" in native),
  async fn() {
    if (!("engine" in native)) return;
    const listener = await native.engine.listen({
      local: { hostname: "127.0.0.1", port: 0 },
      maxDatagram: 1000,
      gro: true,
    });
    assertEquals(listener.gro, true);
    const remote = { hostname: "127.0.0.1", port: (listener.addr as Deno.NetAddr).port };
    const a = await native.engine.open({ remote, gsoSegment: 1000 });
    const b = await native.engine.open({ remote, gsoSegment: 1000 });
    try {
      assert(a.features.gso && b.features.gso, "GSO sends");
      // One GSO send each: 5 datagrams of 1000 bytes and a shorter last one of 300.
      const run = (tag: number) => {
        const batch = new DatagramBatch(1, 5300);
        batch.fill(1, 5300);
        for (let i = 0; i < 5300; i++) batch.data[i] = (tag << 4) | Math.floor(i / 1000);
        return batch;
      };
      assertEquals(await a.sendBatch(run(1)), 1);
      assertEquals(await b.sendBatch(run(2)), 1);
      const got: string[] = [];
      for (let i = 0; i < 12; i++) {
        const [data, from] = await deadline(listener.receive(), 5000);
        const first = data[0]!;
        assert(data.every((byte) => byte === first), "one datagram's bytes, none of the next");
        const who = (from as Deno.NetAddr).port === a.local.port ? "a" : "b";
        got.push(`${who}:${first >> 4}/${first & 15}/${data.length}`);
      }
      const expect = (who: string, tag: number) =>
        [0, 1, 2, 3, 4, 5].map((i) => `${who}:${tag}/${i}/${i < 5 ? 1000 : 300}`);
      assertEquals(got, [...expect("a", 1), ...expect("b", 2)]);
      assertEquals(listener.groRuns, 2, "each run came whole, in one message");
    } finally {
      listener.close();
      a.close();
      b.close();
    }
  },
});

Deno.test({
  name:
    "native listener with GRO still takes plain datagrams one by one (no GSO run: no segment size)",
  ignore: !("engine" in native),
  async fn() {
    if (!("engine" in native)) return;
    const listener = await native.engine.listen({
      local: { hostname: "127.0.0.1", port: 0 },
      maxDatagram: 1400,
      gro: true,
    });
    const peer = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
    try {
      const to = listener.addr as Deno.NetAddr;
      for (const size of [1400, 7, 1400]) {
        await peer.send(new Uint8Array(size).fill(size & 0xff), to);
      }
      const sizes: number[] = [];
      for (let i = 0; i < 3; i++) sizes.push((await deadline(listener.receive(), 5000))[0].length);
      assertEquals(sizes, [1400, 7, 1400]);
      assertEquals(listener.groRuns, 0);
    } finally {
      listener.close();
      peer.close();
    }
  },
});

Deno.test({
  name:
    "native listener: a send that pauses (the event loop's turn) still goes to its own peer while another send to another peer goes by",
  ignore: !("engine" in native),
  async fn() {
    if (!("engine" in native)) return;
    const listener = await native.engine.listen({
      local: { hostname: "127.0.0.1", port: 0 },
      maxDatagram: 64,
    });
    const a = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
    const b = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
    try {
      // 15 sends that never wait, then more than FAIR_MS without a wait: the 16th pauses.
      for (let i = 0; i < 15; i++) await listener.send(new Uint8Array([0]), b.addr);
      await delay(FAIR_MS + 10);
      const toA = listener.send(new Uint8Array([1]), a.addr);
      const toB = listener.send(new Uint8Array([2]), b.addr);
      await Promise.all([toA, toB]);
      const [gotA] = await deadline(a.receive(), 5000);
      assertEquals([...gotA], [1], "a's datagram reached a");
      for (let i = 0; i < 15; i++) await deadline(b.receive(), 5000);
      const [gotB] = await deadline(b.receive(), 5000);
      assertEquals([...gotB], [2], "b got its own datagram, not a's");
    } finally {
      listener.close();
      a.close();
      b.close();
    }
  },
});
