import { assert, assertEquals, assertRejects } from "@std/assert";
import { isClosedError } from "../../io.ts";
import { deadline } from "@std/async/deadline";
import type { Engine } from "../types.ts";
import { denoEngine } from "../deno.ts";
import { loadNativeEngine } from "./engine.ts";

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
