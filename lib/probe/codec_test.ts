/**
 * Tests for the probe wire format: round trips at every boundary size and
 * every rejection case of {@linkcode decodeProbe}.
 *
 * @example
 * ```sh
 * deno test lib/probe/codec_test.ts
 * ```
 *
 * @module
 */
import { assert, assertEquals, assertFalse, assertThrows, fail } from "@std/assert";
import {
  type DecodedProbe,
  decodeProbe,
  PROBE_HEADER_BYTES,
  PROBE_MAX_BYTES,
  ProbeEncoder,
  ProbeStreamFramer,
  sniffProbe,
} from "./codec.ts";

const RUN_ID = 0xdeadbeef;
const SIZES = [24, 25, 64, 1400, 65507];
const SEQS = [
  0,
  1,
  255,
  256,
  257,
  65_535,
  2 ** 32 - 1,
  2 ** 32,
  2 ** 32 + 300,
  2 ** 53 - 1,
  2 ** 53,
];
const TIMES = [0, 1234.5678, 1e12 + 0.25, 5e-324];

function fresh(): DecodedProbe {
  return { seq: -1, sendTimeMs: -1 };
}

/** Encodes and returns an independent copy (the encoder reuses its buffer). */
function encodeCopy(size: number, seq: number, sendTimeMs = 1.5, runId = RUN_ID): Uint8Array {
  return new ProbeEncoder(size, runId).encode(seq, sendTimeMs).slice();
}

Deno.test("probe constants are 24 header bytes and 65507 maximum bytes", () => {
  assertEquals(PROBE_HEADER_BYTES, 24);
  assertEquals(PROBE_MAX_BYTES, 65507);
});

Deno.test("ProbeEncoder writes the documented big-endian layout", () => {
  const wire = new ProbeEncoder(28, 0x01020304).encode(2 ** 32 + 0x0a0b0c0d, 2.5);
  assertEquals(
    [...wire],
    [
      ...[0x4e, 0x4b, 0x50, 0x31], // "NKP1"
      ...[0x01, 0x02, 0x03, 0x04], // run id
      ...[0, 0, 0, 1, 0x0a, 0x0b, 0x0c, 0x0d], // seq u64
      ...[0x40, 0x04, 0, 0, 0, 0, 0, 0], // 2.5 as float64
      // padding: (seq + i) & 0xff with seq & 0xff = 0x0d and i = 24..27
      (0x0d + 24) & 0xff,
      (0x0d + 25) & 0xff,
      (0x0d + 26) & 0xff,
      (0x0d + 27) & 0xff,
    ],
  );
  assertEquals(new TextDecoder().decode(wire.subarray(0, 4)), "NKP1");
});

Deno.test("probes round-trip at sizes 24, 25, 64, 1400 and 65507 for boundary sequence numbers", () => {
  const out = fresh();
  for (const size of SIZES) {
    const encoder = new ProbeEncoder(size, RUN_ID);
    assertEquals(encoder.size, size);
    assertEquals(encoder.runId, RUN_ID);
    for (const seq of SEQS) {
      for (const t of TIMES) {
        const wire = encoder.encode(seq, t);
        assertEquals(wire.length, size);
        assert(decodeProbe(wire, RUN_ID, out), `size ${size} seq ${seq} time ${t}`);
        assertEquals(out.seq, seq);
        assertEquals(out.sendTimeMs, t);
      }
    }
  }
});

Deno.test("ProbeEncoder reuses one buffer that the next encode overwrites", () => {
  const encoder = new ProbeEncoder(64, RUN_ID);
  const first = encoder.encode(1, 10);
  const second = encoder.encode(2, 20);
  assertEquals(first, second);
  const out = fresh();
  assert(decodeProbe(first, RUN_ID, out));
  assertEquals(out, { seq: 2, sendTimeMs: 20 });
});

Deno.test("ProbeEncoder.stamp rewrites only the send time of the probe last encoded", () => {
  const encoder = new ProbeEncoder(64, RUN_ID);
  const before = encoder.encode(300, 0).slice();
  const stamped = encoder.stamp(12.5);
  const out = fresh();
  assert(decodeProbe(stamped, RUN_ID, out));
  assertEquals(out, { seq: 300, sendTimeMs: 12.5 });
  // Bytes other than the send time (16..23) are unchanged, padding included.
  assertEquals(stamped.subarray(0, 16), before.subarray(0, 16));
  assertEquals(stamped.subarray(24), before.subarray(24));
});

Deno.test("ProbeEncoder writes the right padding for 256 consecutive sequence numbers", () => {
  const encoder = new ProbeEncoder(300, 7);
  for (let seq = 1000; seq < 1000 + 256; seq++) {
    const wire = encoder.encode(seq, 0);
    for (let i = PROBE_HEADER_BYTES; i < wire.length; i++) {
      if (wire[i] !== ((seq + i) & 0xff)) fail(`seq ${seq} byte ${i}: ${wire[i]}`);
    }
  }
});

Deno.test("decodeProbe reads a probe at a non-zero offset inside a larger receive buffer", () => {
  const wire = encodeCopy(64, 99, 3.25);
  const big = new Uint8Array(200);
  big.set(wire, 13);
  const out = fresh();
  assert(decodeProbe(big.subarray(13, 13 + 64), RUN_ID, out));
  assertEquals(out, { seq: 99, sendTimeMs: 3.25 });
});

Deno.test("decodeProbe accepts the largest run id", () => {
  const out = fresh();
  assert(decodeProbe(encodeCopy(24, 5, 1, 0xffffffff), 0xffffffff, out));
  assert(decodeProbe(encodeCopy(24, 5, 1, 0), 0, out));
});

Deno.test("decodeProbe rejects a datagram shorter than the header and leaves out untouched", () => {
  const wire = encodeCopy(64, 5);
  for (const length of [0, 1, 4, 23]) {
    const out = fresh();
    assertEquals(decodeProbe(wire.subarray(0, length), RUN_ID, out), false, `length ${length}`);
    assertEquals(out, fresh());
  }
});

Deno.test("decodeProbe rejects a wrong magic in any of its four bytes", () => {
  for (let i = 0; i < 4; i++) {
    const wire = encodeCopy(64, 5);
    wire[i] = wire[i]! ^ 0x20;
    const out = fresh();
    assertEquals(decodeProbe(wire, RUN_ID, out), false, `magic byte ${i}`);
    assertEquals(out, fresh());
  }
});

Deno.test("decodeProbe ignores an echo of another run", () => {
  const out = fresh();
  assertEquals(decodeProbe(encodeCopy(64, 5, 1, RUN_ID), RUN_ID + 1, out), false);
  assertEquals(decodeProbe(encodeCopy(64, 5, 1, 1), 0x80000001, out), false);
  assertEquals(out, fresh());
});

Deno.test("decodeProbe rejects corrupt padding at the first, a middle and the last byte", () => {
  for (const size of [25, 64, 1400, 65507]) {
    for (const at of [24, Math.floor((24 + size) / 2), size - 1]) {
      const wire = encodeCopy(size, 12345);
      wire[at] = wire[at]! ^ 0x01;
      const out = fresh();
      assertEquals(decodeProbe(wire, RUN_ID, out), false, `size ${size} byte ${at}`);
      assertEquals(out, fresh());
    }
  }
});

Deno.test("decodeProbe rejects padding that belongs to another sequence number", () => {
  // Header of seq 6 spliced onto the padding of seq 5: a corrupted seq field.
  const wire = encodeCopy(64, 5);
  wire.set(encodeCopy(64, 6).subarray(0, PROBE_HEADER_BYTES));
  assertEquals(decodeProbe(wire, RUN_ID, fresh()), false);
});

Deno.test("decodeProbe rejects a sequence number above 2^53", () => {
  const cases: Array<[number, number]> = [
    [0x00200000, 1], // 2^53 + 1
    [0x00200001, 0],
    [0xffffffff, 0xffffffff],
  ];
  for (const [high, low] of cases) {
    const wire = encodeCopy(24, 0);
    const view = new DataView(wire.buffer);
    view.setUint32(8, high);
    view.setUint32(12, low);
    const out = fresh();
    assertEquals(decodeProbe(wire, RUN_ID, out), false, `high ${high} low ${low}`);
    assertEquals(out, fresh());
  }
  // 2^53 itself is accepted.
  const wire = encodeCopy(24, 0);
  new DataView(wire.buffer).setUint32(8, 0x00200000);
  const out = fresh();
  assert(decodeProbe(wire, RUN_ID, out));
  assertEquals(out.seq, 2 ** 53);
});

Deno.test("ProbeEncoder rejects invalid sizes, run ids and sequence numbers", () => {
  for (const size of [0, 23, 65508, 24.5, NaN]) {
    assertThrows(() => new ProbeEncoder(size, 1), RangeError, undefined, `size ${size}`);
  }
  for (const runId of [-1, 2 ** 32, 1.5, NaN]) {
    assertThrows(() => new ProbeEncoder(24, runId), RangeError, undefined, `run id ${runId}`);
  }
  const encoder = new ProbeEncoder(24, 1);
  for (const seq of [-1, 0.5, 2 ** 53 + 2, NaN, Infinity]) {
    assertThrows(() => encoder.encode(seq, 0), RangeError, undefined, `seq ${seq}`);
  }
});

Deno.test("ProbeStreamFramer resynchronises after a stray byte and counts it once", () => {
  const size = 32;
  const runId = 0xdeadbeef;
  const encoder = new ProbeEncoder(size, runId);
  const wire = new Uint8Array(1 + size * 100);
  wire[0] = 0x4e; // a stray 'N': looks like the start of the magic, but is not
  for (let seq = 0; seq < 100; seq++) wire.set(encoder.encode(seq, seq), 1 + seq * size);
  const framer = new ProbeStreamFramer(size, runId, 256);
  const seqs: number[] = [];
  const skipped: number[] = [];
  const out: DecodedProbe = { seq: 0, sendTimeMs: 0 };
  // Odd-sized reads split probes and the stray byte's neighbours every way.
  for (let off = 0; off < wire.length;) {
    const n = Math.min(37, wire.length - off, framer.space().length);
    framer.space().set(wire.subarray(off, off + n));
    framer.commit(n, (probe) => {
      assert(decodeProbe(probe, runId, out), "a framed probe decodes");
      seqs.push(out.seq);
    }, (bytes) => skipped.push(bytes));
    off += n;
  }
  assertEquals(seqs, Array.from({ length: 100 }, (_, i) => i));
  assertEquals(skipped, [1]);
});

Deno.test("ProbeStreamFramer skips a lost byte's probe and matches every later one", () => {
  const size = 32;
  const runId = 42;
  const encoder = new ProbeEncoder(size, runId);
  const probes = Array.from({ length: 10 }, (_, seq) => encoder.encode(seq, 0).slice());
  // Probe 3 loses its first byte: the stream is one byte short from there on.
  const wire = new Uint8Array([
    ...probes.slice(0, 3).flatMap((p) => [...p]),
    ...probes[3]!.subarray(1),
    ...probes.slice(4).flatMap((p) => [...p]),
  ]);
  const framer = new ProbeStreamFramer(size, runId, 64);
  const seqs: number[] = [];
  let skippedBytes = 0;
  const out: DecodedProbe = { seq: 0, sendTimeMs: 0 };
  for (let off = 0; off < wire.length;) {
    const n = Math.min(framer.space().length, wire.length - off);
    framer.space().set(wire.subarray(off, off + n));
    framer.commit(n, (probe) => {
      if (decodeProbe(probe, runId, out)) seqs.push(out.seq);
    }, (bytes) => skippedBytes += bytes);
    off += n;
  }
  assertEquals(seqs, [0, 1, 2, 4, 5, 6, 7, 8, 9]);
  assertEquals(skippedBytes, size - 1);
});

Deno.test("ProbeStreamFramer ignores another run's probes as skipped bytes", () => {
  const size = 24;
  const mine = new ProbeEncoder(size, 1);
  const theirs = new ProbeEncoder(size, 2);
  const wire = new Uint8Array(size * 3);
  wire.set(mine.encode(0, 0), 0);
  wire.set(theirs.encode(1, 0), size);
  wire.set(mine.encode(2, 0), size * 2);
  const framer = new ProbeStreamFramer(size, 1);
  framer.space().set(wire);
  let probes = 0;
  let skipped = 0;
  framer.commit(wire.length, () => probes++, (bytes) => skipped += bytes);
  assertEquals(probes, 2);
  assertEquals(skipped, size);
});

Deno.test("ProbeStreamFramer reports a run of skipped bytes once, across reads, and at the end", () => {
  const size = 24;
  const encoder = new ProbeEncoder(size, 9);
  const framer = new ProbeStreamFramer(size, 9, 64);
  const skipped: number[] = [];
  let probes = 0;
  const feed = (bytes: Uint8Array) => {
    framer.space().set(bytes);
    framer.commit(bytes.length, () => probes++, (n) => skipped.push(n));
  };
  feed(new Uint8Array(30).fill(0x4e)); // garbage, in two reads
  feed(new Uint8Array(20).fill(0x11));
  assertEquals(skipped, [], "the run goes on: not reported yet");
  feed(encoder.encode(0, 0));
  assertEquals([probes, skipped], [1, [50]]);
  feed(encoder.encode(1, 0).subarray(0, 10)); // a probe cut short by the end of the stream
  framer.end((n) => skipped.push(n));
  assertEquals([probes, skipped], [1, [50, 10]]);
});

Deno.test("ProbeStreamFramer.stop reports a last echo with a corrupt run id, the last bytes read", () => {
  // The fuzz seed 3413795375 stream's end: echo 3997 whole, then echo 3998 with bit 3 of
  // run id byte 5 flipped (87 27 3e 00 -> 87 2f 3e 00), then nothing: the client gives up
  // after its timeout and closes. Those 64 bytes arrived and are one malformed echo.
  const size = 64;
  const runId = 0x87273e00;
  const encoder = new ProbeEncoder(size, runId);
  const corrupt = encoder.encode(3998, 1).slice();
  corrupt[5]! ^= 0x08;
  assertEquals([...corrupt.subarray(0, 8)], [0x4e, 0x4b, 0x50, 0x31, 0x87, 0x2f, 0x3e, 0x00]);
  const wire = new Uint8Array([...encoder.encode(3997, 0), ...corrupt]);
  const framer = new ProbeStreamFramer(size, runId);
  const skipped: number[] = [];
  let probes = 0;
  framer.space().set(wire);
  framer.commit(wire.length, () => probes++, (n) => skipped.push(n));
  assertEquals([probes, skipped], [1, []], "the run of skipped bytes has not ended yet");
  framer.stop((n) => skipped.push(n));
  assertEquals(skipped, [size]);
  framer.stop((n) => skipped.push(n));
  assertEquals(skipped, [size], "reported once");
});

Deno.test("ProbeStreamFramer.stop reports skipped bytes but not a possible probe start cut off by the stop", () => {
  const size = 24;
  const encoder = new ProbeEncoder(size, 5);
  const framer = new ProbeStreamFramer(size, 5, 64);
  const skipped: number[] = [];
  let probes = 0;
  const wire = new Uint8Array([
    ...new Uint8Array(30).fill(0x11),
    ...encoder.encode(0, 0).subarray(0, 10),
  ]);
  framer.space().set(wire);
  framer.commit(wire.length, () => probes++, (n) => skipped.push(n));
  framer.stop((n) => skipped.push(n));
  assertEquals(
    [probes, skipped],
    [0, [30]],
    "the 10 bytes of a probe whose rest may be on its way",
  );
  // The framer starts afresh: a probe after a stop is framed from its first byte.
  framer.space().set(encoder.encode(1, 0));
  framer.commit(size, () => probes++, (n) => skipped.push(n));
  assertEquals([probes, skipped], [1, [30]]);
});

Deno.test("sniffProbe recognises a probe's magic and nothing shorter or different", () => {
  const probe = new ProbeEncoder(64, 1).encode(0, 0);
  assert(sniffProbe(probe));
  assert(sniffProbe(probe.subarray(0, 4)));
  assertFalse(sniffProbe(probe.subarray(0, 3)));
  assertFalse(sniffProbe(new TextEncoder().encode("NKP2 hello")));
  assertFalse(sniffProbe(new Uint8Array(0)));
});
