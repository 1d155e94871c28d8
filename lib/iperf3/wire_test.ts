import { assert, assertEquals, assertThrows } from "@std/assert";
import {
  buildParams,
  connectMessageOrder,
  ControlReader,
  COOKIE_SIZE,
  encodeJson,
  isConnectReply,
  isCookie,
  makeCookie,
  parseParams,
  parseResults,
  readUdpHeader,
  serverError,
  State,
  streamId,
  UDP_CONNECT_MSG,
  UDP_CONNECT_REPLY,
  udpWord,
  WireError,
  writeUdpHeader,
} from "./wire.ts";

function reader(bytes: Uint8Array, chunk = 3): ControlReader {
  let off = 0;
  return new ControlReader({
    read(p: Uint8Array): Promise<number | null> {
      if (off >= bytes.length) return Promise.resolve(null);
      const n = Math.min(chunk, p.length, bytes.length - off);
      p.set(bytes.subarray(off, off + n));
      off += n;
      return Promise.resolve(n);
    },
  });
}

Deno.test("makeCookie makes 36 characters of a-z2-7 and a NUL, which isCookie accepts", () => {
  const cookie = makeCookie();
  assertEquals(cookie.length, COOKIE_SIZE);
  assertEquals(cookie[36], 0);
  assert(/^[a-z2-7]{36}$/.test(new TextDecoder().decode(cookie.subarray(0, 36))));
  assert(isCookie(cookie));
});

Deno.test("isCookie refuses short input, a missing NUL and characters outside a-z2-7", () => {
  const cookie = makeCookie();
  assert(!isCookie(cookie.subarray(0, 36)));
  const noNul = cookie.slice();
  noNul[36] = 0x41;
  assert(!isCookie(noNul));
  const upper = cookie.slice();
  upper[5] = 0x41; // 'A'
  assert(!isCookie(upper));
  const eight = cookie.slice();
  eight[0] = 0x38; // '8'
  assert(!isCookie(eight));
});

Deno.test("ControlReader reads state bytes, numbers and JSON split over reads", async () => {
  const bytes = new Uint8Array([
    State.PARAM_EXCHANGE,
    ...serverError(142, 2),
    ...encodeJson({ tcp: true, time: 2 }),
  ]);
  const r = reader(bytes);
  assertEquals(await r.state(), State.PARAM_EXCHANGE);
  assertEquals(await r.state(), State.SERVER_ERROR);
  assertEquals(await r.int32(), 142);
  assertEquals(await r.int32(), 2);
  assertEquals(await r.json(1000, "parameters"), { tcp: true, time: 2 });
  assertEquals(await r.state(), null);
});

Deno.test("ControlReader refuses an oversized, empty, cut or non-object JSON message", async () => {
  const big = new Uint8Array([0, 1, 0, 0]);
  await assertRejectsWire(reader(big).json(1000, "results"), /claim 65536 bytes/);
  await assertRejectsWire(reader(new Uint8Array([0, 0, 0, 0])).json(1000, "results"), /claim 0/);
  await assertRejectsWire(
    reader(new Uint8Array([0, 0, 0, 9, 0x7b])).json(1000, "results"),
    /middle/,
  );
  await assertRejectsWire(reader(encodeJson([1])).json(1000, "results"), /not a JSON object/);
  await assertRejectsWire(
    reader(new Uint8Array([0, 0, 0, 2, 0xff, 0xfe])).json(1000, "results"),
    /valid JSON/,
  );
});

async function assertRejectsWire(p: Promise<unknown>, pattern: RegExp): Promise<void> {
  try {
    await p;
  } catch (err) {
    assert(err instanceof WireError, `not a WireError: ${err}`);
    assert(pattern.test(err.message), err.message);
    return;
  }
  throw new Error("did not reject");
}

Deno.test("parseParams reads what iperf3 3.12 sends and fills iperf3's defaults", () => {
  const p = parseParams({
    udp: true,
    omit: 1,
    time: 2,
    num: 0,
    blockcount: 0,
    parallel: 2,
    bidirectional: true,
    len: 32768,
    bandwidth: 5000000,
    pacing_timer: 1000,
    udp_counters_64bit: 1,
    client_version: "3.12",
  });
  assertEquals(p.proto, "udp");
  assertEquals([p.omitS, p.timeS, p.parallel, p.len, p.bandwidth], [1, 2, 2, 32768, 5000000]);
  assert(p.bidirectional && !p.reverse && p.udp64);
  const d = parseParams({ tcp: true });
  assertEquals([d.timeS, d.parallel, d.len], [10, 1, 0]);
});

Deno.test("parseParams refuses what netkit does not do, with iperf3's error number", () => {
  const cases: [Record<string, unknown>, number, RegExp][] = [
    [{ sctp: true }, 131, /SCTP/],
    [{ tcp: true, authtoken: "x" }, 142, /authentication/],
    [{ tcp: true, congestion: "cubic" }, 134, /congestion/],
    [{ tcp: true, parallel: 129 }, 6, /parallel/],
    [{ tcp: true, len: 2 ** 21 }, 7, /len/],
    [{ udp: true, len: 8 }, 20, /len/],
    [{ tcp: true, time: 86401 }, 5, /time/],
    [{ tcp: true, time: 0, num: 10 }, 13, /-n/],
    [{ tcp: true, reverse: true, bidirectional: true }, 114, /reverse and bidirectional/],
    [{ tcp: true, udp: true }, 114, /both TCP and UDP/],
    [{ tcp: true, time: "10" }, 5, /time/],
    [{ tcp: true, bandwidth: -1 }, 114, /bandwidth/],
  ];
  for (const [doc, errno, pattern] of cases) {
    const err = assertThrows(() => parseParams(doc), WireError) as WireError & { errno: number };
    assertEquals(err.errno, errno, JSON.stringify(doc));
    assert(pattern.test(err.message), err.message);
  }
});

Deno.test("buildParams round-trips through parseParams", () => {
  const p = {
    proto: "udp" as const,
    omitS: 1,
    timeS: 3,
    parallel: 4,
    reverse: true,
    bidirectional: false,
    len: 1400,
    bandwidth: 1e6,
    udp64: true,
    clientVersion: "3.12",
  };
  assertEquals(parseParams(buildParams(p)), p);
});

Deno.test("parseResults names the missing field; turns an unsigned -1 retransmits into -1", () => {
  const base = {
    cpu_util_total: 1,
    cpu_util_user: 0.5,
    cpu_util_system: 0.5,
    sender_has_retransmits: 0,
  };
  const stream = {
    id: 1,
    bytes: 10,
    retransmits: 18446744073709552000,
    jitter: 0,
    errors: 0,
    packets: 0,
  };
  const ok = parseResults({ ...base, streams: [stream] }, 1);
  assertEquals(ok.streams[0]!.retransmits, -1);
  assertThrows(() => parseResults({ ...base }, 1), WireError, "'streams'");
  assertThrows(() => parseResults({ streams: [] }, 1), WireError, "cpu_util_total");
  assertThrows(
    () => parseResults({ ...base, streams: [{ ...stream, bytes: "x" }] }, 1),
    WireError,
    "'bytes' in stream 0",
  );
  assertThrows(
    () => parseResults({ ...base, streams: [stream, stream] }, 1),
    WireError,
    "2 streams",
  );
  assertThrows(() => parseResults({ ...base, streams: [null] }, 1), WireError, "not an object");
});

Deno.test("parseParams and parseResults throw only WireError on 2,000 fuzzed documents", () => {
  const values = [null, true, false, 0, -1, 1.5, 1e308, "x", [], {}, [1], { a: 1 }, 2 ** 60];
  const keys = [
    "tcp",
    "udp",
    "time",
    "omit",
    "parallel",
    "len",
    "bandwidth",
    "reverse",
    "streams",
    "cpu_util_total",
    "cpu_util_user",
    "cpu_util_system",
    "sender_has_retransmits",
    "num",
    "id",
    "bytes",
    "congestion",
    "authtoken",
    "sctp",
  ];
  let seed = 12345;
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  for (let i = 0; i < 2000; i++) {
    const doc: Record<string, unknown> = {};
    for (let k = rand(8); k > 0; k--) {
      const v = values[rand(values.length)];
      doc[keys[rand(keys.length)]!] = rand(4) === 0 ? [{ [keys[rand(keys.length)]!]: v }] : v;
    }
    for (const f of [() => parseParams(doc), () => parseResults(doc, 4)]) {
      try {
        f();
      } catch (err) {
        assert(err instanceof WireError, `${JSON.stringify(doc)}: ${err}`);
      }
    }
  }
});

Deno.test("UDP headers: 32- and 64-bit packet numbers and the clock round-trip", () => {
  const buf = new Uint8Array(64);
  const view = new DataView(buf.buffer);
  const out = { sendMs: 0, count: 0 };
  writeUdpHeader(view, false, 7, 1_700_000_000_123.456);
  assert(readUdpHeader(buf, false, out));
  assertEquals(out.count, 7);
  assert(Math.abs(out.sendMs - 1_700_000_000_123.456) < 0.002);
  writeUdpHeader(view, true, 2 ** 40 + 3, 1000);
  assert(readUdpHeader(buf, true, out));
  assertEquals(out.count, 2 ** 40 + 3);
  assert(!readUdpHeader(buf.subarray(0, 15), true, out));
});

Deno.test("connect messages in either byte order; the reply answers in the same order", () => {
  assertEquals(connectMessageOrder(udpWord(UDP_CONNECT_MSG, "le")), "le");
  assertEquals(connectMessageOrder(udpWord(UDP_CONNECT_MSG, "be")), "be");
  assertEquals(connectMessageOrder(udpWord(123456789, "le")), "le");
  assertEquals(connectMessageOrder(new Uint8Array([1, 2, 3, 4])), undefined);
  assertEquals(connectMessageOrder(new Uint8Array(5)), undefined);
  // iperf3 on x86 sends "9876" and expects "6789".
  assertEquals(new TextDecoder().decode(udpWord(UDP_CONNECT_MSG, "le")), "9876");
  assertEquals(new TextDecoder().decode(udpWord(UDP_CONNECT_REPLY, "le")), "6789");
  assert(isConnectReply(udpWord(UDP_CONNECT_REPLY, "le")));
  // "9876" is the message itself (an echo), not a reply.
  assert(!isConnectReply(udpWord(UDP_CONNECT_REPLY, "be")));
  assert(isConnectReply(udpWord(987654321, "le")));
  assert(!isConnectReply(udpWord(UDP_CONNECT_MSG, "le")));
});

Deno.test("stream ids follow iperf3: 1, then 3, 4, 5", () => {
  assertEquals([0, 1, 2, 3].map(streamId), [1, 3, 4, 5]);
});
