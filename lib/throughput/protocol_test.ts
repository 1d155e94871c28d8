/**
 * Tests for the throughput wire protocol: the 28-byte UDP test header (round
 * trip and what is refused as not ours), control message encoding, and the
 * validation of start requests from untrusted peers.
 *
 * @example
 * ```sh
 * deno test lib/throughput/protocol_test.ts
 * ```
 *
 * @module
 */
import { assert, assertEquals, assertMatch } from "@std/assert";
import { mulberry32 } from "../../tests/support/prng.ts";
import {
  checkStart,
  CONTROL_MAGIC,
  type ControlMessage,
  decodeControl,
  encodeControl,
  OLD_CONTROL_MAGIC,
  parseControl,
  readUdpHeader,
  type StartRequest,
  UDP_CHALLENGE_BYTES,
  UDP_HEADER_BYTES,
  UDP_HELLO_BYTES,
  UDP_PROOF_BYTES,
  UDP_SECRET_BYTES,
  type UdpHeader,
  UdpKind,
  writeUdpHeader,
} from "./protocol.ts";

function emptyHeader(): UdpHeader {
  return { key: -1, stream: -1, kind: -1, seq: -1, sendTimeMs: -1 };
}

function datagram(
  key: number,
  stream: number,
  kind: number,
  seq: number,
  sendTimeMs: number,
  length = UDP_HEADER_BYTES,
): Uint8Array {
  const buf = new Uint8Array(length);
  writeUdpHeader(new DataView(buf.buffer), key, stream, kind, seq, sendTimeMs);
  return buf;
}

function roundTrip(
  key: number,
  stream: number,
  kind: number,
  seq: number,
  sendTimeMs: number,
): UdpHeader {
  const out = emptyHeader();
  assert(readUdpHeader(datagram(key, stream, kind, seq, sendTimeMs), out));
  return out;
}

Deno.test("UDP header is 28 bytes starting with the magic NKT1, fields big-endian", () => {
  assertEquals(UDP_HEADER_BYTES, 28);
  const buf = datagram(0x01020304, 0x0506, UdpKind.hello, 0x0708, 0);
  assertEquals([...buf.subarray(0, 4)], [0x4e, 0x4b, 0x54, 0x31]);
  assertEquals([...buf.subarray(4, 8)], [1, 2, 3, 4]);
  assertEquals([...buf.subarray(8, 10)], [5, 6]);
  assertEquals([...buf.subarray(10, 12)], [0, 1]);
  assertEquals([...buf.subarray(12, 20)], [0, 0, 0, 0, 0, 0, 7, 8]);
});

Deno.test("UDP header round trip keeps key, stream, kind, seq and send time", () => {
  assertEquals(roundTrip(42, 3, UdpKind.data, 1234, 5678.25), {
    key: 42,
    stream: 3,
    kind: UdpKind.data,
    seq: 1234,
    sendTimeMs: 5678.25,
  });
});

Deno.test("UDP header round trip keeps the extreme values of each field", () => {
  assertEquals(roundTrip(0xffffffff, 0xffff, UdpKind.end, 0, -1.5), {
    key: 0xffffffff,
    stream: 0xffff,
    kind: UdpKind.end,
    seq: 0,
    sendTimeMs: -1.5,
  });
  assertEquals(roundTrip(0, 0, UdpKind.helloAck, 2 ** 32, Number.MAX_VALUE).seq, 2 ** 32);
  assertEquals(roundTrip(0, 0, 0, 2 ** 32 - 1, 0).seq, 2 ** 32 - 1);
  assertEquals(roundTrip(0, 0, 0, 2 ** 32 + 1, 0).seq, 2 ** 32 + 1);
});

Deno.test("UDP header round trip keeps sequence numbers up to 2^53 exactly", () => {
  assertEquals(roundTrip(1, 1, 0, Number.MAX_SAFE_INTEGER, 0).seq, Number.MAX_SAFE_INTEGER);
  assertEquals(roundTrip(1, 1, 0, 2 ** 53, 0).seq, 2 ** 53);
});

Deno.test("UDP header round trip keeps a performance.now()-style fractional send time bit-exact", () => {
  const t = 123456.78912345678;
  assertEquals(roundTrip(1, 1, 0, 1, t).sendTimeMs, t);
});

Deno.test("readUdpHeader reads the header at the start of a longer datagram (payload ignored)", () => {
  const buf = datagram(7, 2, UdpKind.data, 99, 1.5, 1400);
  buf.fill(0xaa, UDP_HEADER_BYTES);
  const out = emptyHeader();
  assert(readUdpHeader(buf, out));
  assertEquals(out, { key: 7, stream: 2, kind: 0, seq: 99, sendTimeMs: 1.5 });
});

Deno.test("readUdpHeader refuses a datagram shorter than 28 bytes and leaves `out` untouched", () => {
  const full = datagram(7, 2, UdpKind.data, 99, 1.5);
  const out = emptyHeader();
  assertEquals(readUdpHeader(full.subarray(0, UDP_HEADER_BYTES - 1), out), false);
  assertEquals(readUdpHeader(new Uint8Array(0), out), false);
  assertEquals(out, emptyHeader());
});

Deno.test("readUdpHeader refuses a datagram whose magic differs in any of its four bytes", () => {
  for (let i = 0; i < 4; i++) {
    const buf = datagram(7, 2, UdpKind.data, 99, 1.5);
    buf[i] = buf[i]! ^ 0x20;
    const out = emptyHeader();
    assertEquals(readUdpHeader(buf, out), false, `magic byte ${i}`);
    assertEquals(out, emptyHeader());
  }
  assertEquals(readUdpHeader(new TextEncoder().encode("x".repeat(64)), emptyHeader()), false);
});

Deno.test("readUdpHeader refuses sequence numbers above 2^53 (not exact as a number)", () => {
  const out = emptyHeader();
  const cases: Array<[number, number]> = [
    [2 ** 21, 1], // 2^53 + 1
    [2 ** 21 + 1, 0],
    [0xffffffff, 0xffffffff],
  ];
  for (const [high, low] of cases) {
    const buf = datagram(7, 2, UdpKind.data, 0, 1.5);
    const view = new DataView(buf.buffer);
    view.setUint32(12, high);
    view.setUint32(16, low);
    assertEquals(readUdpHeader(buf, out), false, `high ${high} low ${low}`);
  }
  assertEquals(out, emptyHeader());
});

Deno.test("readUdpHeader refuses a non-finite send time (NaN, +Infinity, -Infinity)", () => {
  const out = emptyHeader();
  for (const t of [NaN, Infinity, -Infinity]) {
    assertEquals(readUdpHeader(datagram(7, 2, UdpKind.data, 1, t), out), false, String(t));
  }
  assertEquals(out, emptyHeader());
});

Deno.test("readUdpHeader reuses the caller's object: a second read overwrites every field", () => {
  const out = emptyHeader();
  assert(readUdpHeader(datagram(1, 2, UdpKind.hello, 3, 4), out));
  assert(readUdpHeader(datagram(5, 6, UdpKind.end, 7, 8), out));
  assertEquals(out, { key: 5, stream: 6, kind: UdpKind.end, seq: 7, sendTimeMs: 8 });
});

const START: StartRequest = {
  type: "start",
  proto: "tcp",
  direction: "up",
  parallel: 4,
  duration_ms: 10_000,
  size: 128 * 1024,
  bitrate: 0,
};

Deno.test("encodeControl writes one JSON line ending in a single newline", () => {
  const text = new TextDecoder().decode(encodeControl({ type: "go" }));
  assertEquals(text, '{"type":"go"}\n');
  const start = new TextDecoder().decode(encodeControl(START));
  assert(start.endsWith("\n"));
  assertEquals(start.indexOf("\n"), start.length - 1);
});

Deno.test("encodeControl → decodeControl round trips every message type", () => {
  const messages: ControlMessage[] = [
    START,
    { type: "ready", test_id: "abc123", udp_port: 40000 },
    { type: "ready", test_id: "abc123", udp_port: null },
    {
      type: "ready",
      test_id: "abc123",
      udp_port: 40000,
      udp_key: 0xffffffff,
      udp_secret: "00112233445566778899aabbccddeeff",
    },
    { type: "go" },
    { type: "progress", received_bytes: 123456789 },
    {
      type: "report",
      sent: [{ stream: 0, bytes: 100, datagrams: 0, seconds: 1.5 }],
      received: [{
        stream: 0,
        bytes: 90,
        datagrams: 3,
        lost: 1,
        out_of_order: 0,
        duplicates: 0,
        jitter_ms: null,
        seconds: 1.5,
        intervals: [45, 45],
      }],
      rcvbuf_errors: 2,
    },
    { type: "error", message: 'line 1\nline 2 "quoted" ✓' },
  ];
  for (const message of messages) {
    const line = new TextDecoder().decode(encodeControl(message));
    assertEquals(decodeControl(line.slice(0, -1)), message);
  }
});

Deno.test("decodeControl returns undefined for garbage: not JSON, not an object, unknown type", () => {
  for (
    const line of [
      "",
      "not json",
      "{",
      '{"type":"go"} trailing',
      "null",
      "42",
      '"go"',
      "true",
      "[]",
      '["go"]',
      "{}",
      '{"type":"nope"}',
      '{"type":"GO"}',
      '{"type":1}',
      '{"type":null}',
    ]
  ) {
    assertEquals(decodeControl(line), undefined, JSON.stringify(line));
  }
});

Deno.test("checkStart accepts valid TCP and UDP requests, at the edges of every range", () => {
  assertEquals(checkStart(START), undefined);
  const ok: StartRequest[] = [
    { ...START, direction: "down" },
    { ...START, direction: "bidir" },
    { ...START, parallel: 1 },
    { ...START, parallel: 128 },
    { ...START, duration_ms: 1 },
    { ...START, duration_ms: 3_600_000 },
    { ...START, size: 1 },
    { ...START, size: 4 * 1024 * 1024 },
    { ...START, bitrate: 1.5e9 },
    { ...START, proto: "udp", size: UDP_HEADER_BYTES },
    { ...START, proto: "udp", size: 1400, bitrate: 1e6 },
    { ...START, proto: "udp", size: 65507 },
  ];
  for (const r of ok) assertEquals(checkStart(r), undefined, JSON.stringify(r));
});

/** A start request with one field replaced by a value its type does not allow. */
function bad(field: string, value: unknown, base: StartRequest = START): StartRequest {
  return { ...base, [field]: value } as StartRequest;
}

Deno.test("checkStart rejects a proto other than tcp or udp", () => {
  for (const proto of ["sctp", "TCP", "", undefined, 6]) {
    assertEquals(checkStart(bad("proto", proto)), "proto must be tcp or udp", String(proto));
  }
});

Deno.test("checkStart rejects a direction other than up, down or bidir", () => {
  for (const direction of ["sideways", "UP", "", null, 1]) {
    assertEquals(checkStart(bad("direction", direction)), "bad direction", String(direction));
  }
});

Deno.test("checkStart rejects parallel 0, 129, 1.5, negative, NaN and non-numbers", () => {
  for (const parallel of [0, 129, 1.5, -1, NaN, Infinity, "4", null]) {
    assertEquals(
      checkStart(bad("parallel", parallel)),
      "parallel must be 1 to 128",
      String(parallel),
    );
  }
});

Deno.test("checkStart rejects duration 0, over one hour, fractional, NaN and non-numbers", () => {
  for (const duration of [0, -1, 3_600_001, 10.5, NaN, Infinity, "1000", undefined]) {
    assertEquals(
      checkStart(bad("duration_ms", duration)),
      "duration must be at most 1 hour",
      String(duration),
    );
  }
});

Deno.test("checkStart rejects TCP write sizes of 0, above 4 MiB, fractional or non-numeric", () => {
  for (const size of [0, -1, 4 * 1024 * 1024 + 1, 1.5, NaN, "1024"]) {
    assertEquals(checkStart(bad("size", size)), "bad size", String(size));
  }
});

Deno.test("checkStart rejects UDP datagrams smaller than the header or larger than 65507 bytes", () => {
  const udp: StartRequest = { ...START, proto: "udp", size: 1400 };
  for (const size of [0, 1, UDP_HEADER_BYTES - 1, 65508, 128 * 1024, 100.5]) {
    assertEquals(checkStart(bad("size", size, udp)), "bad size", String(size));
  }
});

Deno.test("checkStart rejects a negative, NaN, infinite or non-numeric bitrate", () => {
  for (const bitrate of [-1, -0.001, NaN, Infinity, -Infinity, "0", null, undefined]) {
    assertEquals(checkStart(bad("bitrate", bitrate)), "bad bitrate", String(bitrate));
  }
});

Deno.test("a hello carries the secret and a proof the challenge after the header: 44 bytes each", () => {
  assertEquals(UDP_HELLO_BYTES, 28 + 16);
  assertEquals(UDP_PROOF_BYTES, 28 + 16);
  assertEquals(UDP_SECRET_BYTES, 16);
  assertEquals(UDP_CHALLENGE_BYTES, 16);
  // The kinds on the wire: data, hello, ack and end keep their numbers; challenge and proof are new.
  assertEquals(UdpKind, { data: 0, hello: 1, helloAck: 2, end: 3, challenge: 4, proof: 5 });
});

Deno.test("the control magic names protocol version 2; version 1 is known only to be refused", () => {
  assertEquals(CONTROL_MAGIC, "NKCTL/2 ");
  assertEquals(OLD_CONTROL_MAGIC, "NKCTL/1 ");
  assertEquals(CONTROL_MAGIC.length, OLD_CONTROL_MAGIC.length);
});

// ---------------------------------------------------------------------------------------------
// Every field of every message from the network is checked: mutated messages are refused with
// a reason, or are still well formed; decoding never throws.

const REPORT = {
  type: "report",
  sent: [{ stream: 0, bytes: 100, datagrams: 0, seconds: 1.5 }],
  received: [{
    stream: 1,
    bytes: 90,
    datagrams: 3,
    lost: 1,
    out_of_order: 0,
    duplicates: 0,
    jitter_ms: 0.25,
    seconds: 1.5,
    intervals: [45, 45],
  }],
  rcvbuf_errors: 2,
};
const WELL_FORMED: Record<string, unknown>[] = [
  REPORT,
  { type: "ready", test_id: "abc123", udp_port: 40000, udp_key: 7, udp_secret: "0a".repeat(16) },
  { type: "error", message: "no" },
  { type: "progress", received_bytes: 12 },
  { type: "go" },
];

/** An independent statement of what the client may rely on in each message it accepts. */
function usable(m: Record<string, unknown>): boolean {
  const amount = (v: unknown) => typeof v === "number" && Number.isFinite(v) && v >= 0;
  const stream = (v: unknown) => Number.isInteger(v) && (v as number) >= 0 && (v as number) < 128;
  const list = (v: unknown, item: (x: Record<string, unknown>) => boolean) =>
    Array.isArray(v) && v.every((x) => typeof x === "object" && x !== null && item(x));
  const sent = (x: Record<string, unknown>) =>
    stream(x.stream) && amount(x.bytes) && amount(x.datagrams) && amount(x.seconds);
  switch (m.type) {
    case "report":
      return list(m.sent, sent) &&
        list(
          m.received,
          (x) =>
            sent(x) && amount(x.lost) && amount(x.out_of_order) && amount(x.duplicates) &&
            (x.jitter_ms === null || amount(x.jitter_ms)) &&
            Array.isArray(x.intervals) && x.intervals.every(amount),
        ) &&
        (m.rcvbuf_errors === undefined || amount(m.rcvbuf_errors));
    case "ready":
      return typeof m.test_id === "string" && m.test_id.length > 0 &&
        (m.udp_port === null || (Number.isInteger(m.udp_port) && (m.udp_port as number) > 0)) &&
        (m.udp_key === undefined || (Number.isInteger(m.udp_key) && (m.udp_key as number) >= 0)) &&
        (m.udp_secret === undefined ||
          (typeof m.udp_secret === "string" && /^[0-9a-f]{32}$/i.test(m.udp_secret)));
    case "progress":
      return amount(m.received_bytes);
    case "error":
      return typeof m.message === "string";
    case "go":
      return true;
    default:
      return false;
  }
}

/** Every path to a value inside `v` (object keys and list indices). */
function paths(v: unknown, at: (string | number)[] = []): (string | number)[][] {
  const out: (string | number)[][] = [];
  if (Array.isArray(v)) v.forEach((x, i) => out.push([...at, i], ...paths(x, [...at, i])));
  else if (typeof v === "object" && v !== null) {
    for (const [k, x] of Object.entries(v)) out.push([...at, k], ...paths(x, [...at, k]));
  }
  return out;
}

/** A deep copy of `v` with the value at `path` replaced (or deleted when `to` is undefined). */
function mutate(v: unknown, path: (string | number)[], to: unknown): unknown {
  const copy = structuredClone(v) as Record<string | number, unknown>;
  let parent = copy;
  for (const key of path.slice(0, -1)) parent = parent[key] as Record<string | number, unknown>;
  const last = path[path.length - 1]!;
  if (to === undefined) delete parent[last];
  else parent[last] = to;
  return copy;
}

const REPLACEMENTS: unknown[] = [
  undefined,
  null,
  "",
  "12",
  -1,
  1.5,
  1e400, // Infinity once parsed
  -0.5,
  2 ** 53,
  true,
  [],
  [1, "x"],
  {},
  { bytes: 1 },
];

Deno.test("parseControl: a field of any message deleted, nulled or of the wrong type is refused naming the field, or the message is still usable", () => {
  let refused = 0;
  let kept = 0;
  for (const message of WELL_FORMED) {
    assert(usable(message) && parseControl(JSON.stringify(message)).type === message.type);
    for (const path of paths(message)) {
      if (path[0] === "type") continue;
      for (const to of REPLACEMENTS) {
        const line = JSON.stringify(mutate(message, path, to)).replace("1e+400", "1e400");
        const decoded = parseControl(line);
        if (decoded.type === "invalid") {
          refused++;
          assertMatch(decoded.problem, /^'[\w.[\]]+' must be |has more than/, line);
        } else {
          kept++;
          assert(
            usable(decoded as unknown as Record<string, unknown>),
            `accepted unusable ${line}`,
          );
        }
      }
    }
  }
  // Most mutations break the message; a few keep it usable (another valid number, say).
  assert(refused > 250, `only ${refused} refused`);
  assert(kept > 10, `only ${kept} kept`);
});

Deno.test("parseControl: 20,000 random byte-level mutations of valid messages never throw, and what is accepted is usable", () => {
  const random = mulberry32(9);
  const pick = <T>(items: T[]) => items[Math.floor(random() * items.length)]!;
  const alphabet = '{}[]:,"-.0123456789eE nulltruefalse\\';
  let accepted = 0;
  for (let i = 0; i < 20_000; i++) {
    const chars = [...JSON.stringify(pick(WELL_FORMED))];
    for (let edits = 1 + Math.floor(random() * 3); edits > 0; edits--) {
      const at = Math.floor(random() * chars.length);
      const op = random();
      if (op < 0.4) chars[at] = pick([...alphabet]);
      else if (op < 0.7) chars.splice(at, 1);
      else chars.splice(at, 0, pick([...alphabet]));
    }
    const decoded = parseControl(chars.join(""));
    if (decoded.type !== "invalid") {
      accepted++;
      assert(usable(decoded as unknown as Record<string, unknown>), chars.join(""));
    }
  }
  assert(accepted > 0, "no mutation was accepted at all: the test proves nothing");
});

Deno.test("parseControl refuses a report with more than 128 streams, and a ready with a port out of range", () => {
  const many = { ...REPORT, sent: Array.from({ length: 129 }, () => REPORT.sent[0]) };
  assertEquals(parseControl(JSON.stringify(many)), {
    type: "invalid",
    problem: "'sent' has more than 128 entries",
  });
  for (const port of [0, 65536, 1.5]) {
    const decoded = parseControl(JSON.stringify({ type: "ready", test_id: "a", udp_port: port }));
    assertMatch(decoded.type === "invalid" ? decoded.problem : "", /^'udp_port' must be /);
  }
  assertEquals(parseControl(JSON.stringify({ type: "report", sent: [] })), {
    type: "invalid",
    problem: "'received' must be a list, not missing",
  });
});

Deno.test("checkStart takes gso: true for UDP only, and nothing else for gso", () => {
  const udp: StartRequest = { ...START, proto: "udp", size: 1400 };
  assertEquals(checkStart({ ...udp, gso: true }), undefined);
  for (const value of [false, 1, "true", null]) {
    assertEquals(checkStart(bad("gso", value, udp)), "gso is true, for udp", String(value));
  }
  assertEquals(checkStart({ ...START, gso: true }), "gso is true, for udp");
});
