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
import { assert, assertEquals, assertThrows, fail } from "@std/assert";
import {
  type DecodedProbe,
  decodeProbe,
  PROBE_HEADER_BYTES,
  PROBE_MAX_BYTES,
  ProbeEncoder,
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
