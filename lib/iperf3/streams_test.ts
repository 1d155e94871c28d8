import { assert, assertEquals } from "@std/assert";
import { Iperf3Stream, receiveTcp, sendTcp, sendUdp } from "./streams.ts";
import { writeUdpHeader } from "./wire.ts";

function datagram(count: number, size = 100, udp64 = false): Uint8Array {
  const buf = new Uint8Array(size);
  writeUdpHeader(new DataView(buf.buffer), udp64, count, 1_000_000 + count);
  return buf;
}

Deno.test("a UDP receiver counts loss, reordering and duplicates from iperf3 packet numbers", () => {
  const s = new Iperf3Stream(0, false, "udp", 100, false);
  s.begin(0);
  for (const n of [1, 2, 4, 3, 3, 6]) s.record(datagram(n), 2_000_000);
  assertEquals(s.received, 5);
  assertEquals(s.duplicates, 1);
  assertEquals(s.outOfOrder, 1);
  assertEquals(s.highestCount, 6);
  assertEquals(s.lost(), 1); // 5 missing
  assertEquals(s.lost(8), 3); // the sender says 8: 5, 7 and 8 missing
  assertEquals(s.iperfErrors, 1);
  assertEquals(s.bytes, 500);
});

Deno.test("a UDP receiver leaves the warm-up out and ignores short or impossible datagrams", () => {
  const s = new Iperf3Stream(1, false, "udp", 100, true);
  assertEquals(s.id, 3);
  for (let n = 1; n <= 10; n++) s.record(datagram(n, 100, true), 2_000_000);
  s.endOmit(1000);
  for (let n = 11; n <= 20; n++) if (n !== 15) s.record(datagram(n, 100, true), 2_000_000);
  s.record(new Uint8Array(10), 2_000_000);
  s.record(datagram(0, 100, true), 2_000_000);
  assertEquals(s.malformed, 2);
  assertEquals(s.received, 9);
  assertEquals(s.measuredBytes, 900);
  assertEquals(s.lost(20), 1);
});

Deno.test("sendTcp stops at its end time and receiveTcp counts every byte", async () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepted = listener.accept();
  using client = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
  using server = await accepted;
  const sender = new Iperf3Stream(0, true, "tcp", 1000, false);
  const receiver = new Iperf3Stream(0, false, "tcp", 1000, false);
  const receiving = receiveTcp(server, receiver);
  const stop = new AbortController();
  const start = performance.now();
  // 800 kbit/s for 200 ms: 20 blocks of 1000 B.
  await sendTcp(client, sender, 800_000, stop.signal, start + 200);
  assert(performance.now() - start < 1000, "stopped at its end");
  client.closeWrite();
  await receiving;
  assertEquals(receiver.bytes, sender.bytes);
  assert(sender.bytes >= 18_000 && sender.bytes <= 22_000, `paced: ${sender.bytes}`);
});

Deno.test("sendUdp numbers datagrams from 1 and stops on abort", async () => {
  const a = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  const b = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  try {
    const sender = new Iperf3Stream(0, true, "udp", 200, false);
    const stop = new AbortController();
    const sending = sendUdp(a, b.addr as Deno.NetAddr, sender, 1_600_000, stop.signal);
    const [first] = await b.receive();
    stop.abort();
    await sending;
    assertEquals(first.length, 200);
    assertEquals(new DataView(first.buffer, first.byteOffset).getUint32(8), 1);
    assert(sender.count >= 1);
  } finally {
    a.close();
    b.close();
  }
});
