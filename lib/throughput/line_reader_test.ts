/**
 * Tests for the bounded line reader over a real loopback TCP connection:
 * lines split across writes and packed into one, bytes sniffed before the
 * reader existed, the bytes left after a header line, end of stream and the
 * length bound.
 *
 * @example
 * ```sh
 * deno test lib/throughput/line_reader_test.ts
 * ```
 *
 * @module
 */
import { assertEquals, assertRejects } from "@std/assert";
import { NetkitError } from "../errors.ts";
import { LineReader } from "./line_reader.ts";

const encoder = new TextEncoder();
const enc = (text: string) => encoder.encode(text);

interface Pair {
  /** The side the test writes to. */
  client: Deno.TcpConn;
  /** The side the reader reads from. */
  server: Deno.TcpConn;
  close(): void;
}

/** A connected loopback TCP pair; the listener is closed once accepted. */
async function tcpPair(): Promise<Pair> {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const [client, server] = await Promise.all([
    Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port }),
    listener.accept(),
  ]);
  let closed = false;
  return {
    client,
    server,
    close() {
      if (closed) return;
      closed = true;
      for (const c of [client, server]) {
        try {
          c.close();
        } catch {
          // already closed by the test
        }
      }
    },
  };
}

async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  for (let off = 0; off < data.length;) off += await conn.write(data.subarray(off));
}

/**
 * Wrap `conn.read` so the test can wait until the reader has consumed a
 * chunk: the synchronisation that proves a line really arrived in pieces.
 */
function observeReads(conn: Deno.Conn): () => Promise<number | null> {
  const realRead = conn.read.bind(conn);
  const waiting: Array<(n: number | null) => void> = [];
  const done: Array<number | null> = [];
  conn.read = async (p: Uint8Array) => {
    const n = await realRead(p);
    const w = waiting.shift();
    if (w) w(n);
    else done.push(n);
    return n;
  };
  return () => {
    if (done.length > 0) return Promise.resolve(done.shift()!);
    return new Promise((resolve) => waiting.push(resolve));
  };
}

Deno.test("LineReader joins a line whose bytes arrive in several separate reads", async () => {
  const pair = await tcpPair();
  try {
    const nextRead = observeReads(pair.server);
    const lines = new LineReader(pair.server);
    const line = lines.next();
    for (const piece of ["NKCTL", '/1 {"type":', '"go"}']) {
      await writeAll(pair.client, enc(piece));
      assertEquals(await nextRead(), piece.length); // the reader has taken this piece alone
    }
    await writeAll(pair.client, enc("\n"));
    assertEquals(await line, 'NKCTL/1 {"type":"go"}');
  } finally {
    pair.close();
  }
});

Deno.test("LineReader returns each of several lines delivered in one write, in order", async () => {
  const pair = await tcpPair();
  try {
    const lines = new LineReader(pair.server);
    await writeAll(pair.client, enc("one\ntwo\n\nfour\n"));
    assertEquals(await lines.next(), "one");
    assertEquals(await lines.next(), "two");
    assertEquals(await lines.next(), "");
    assertEquals(await lines.next(), "four");
    pair.client.closeWrite();
    assertEquals(await lines.next(), null);
  } finally {
    pair.close();
  }
});

Deno.test("LineReader serves lines from the initial bytes before reading the connection", async () => {
  const pair = await tcpPair();
  try {
    const lines = new LineReader(pair.server, enc("first\nsec"));
    assertEquals(await lines.next(), "first"); // nothing written yet: came from `initial`
    await writeAll(pair.client, enc("ond\nthird\n"));
    assertEquals(await lines.next(), "second");
    assertEquals(await lines.next(), "third");
  } finally {
    pair.close();
  }
});

Deno.test("LineReader.rest() returns exactly the bytes that followed a header line", async () => {
  const pair = await tcpPair();
  try {
    const payload = new Uint8Array([0, 1, 2, 10, 255, 13, 10, 7]); // binary, with newlines in it
    const first = new Uint8Array([...enc("NKDATA/1 t1 "), ...enc("0\n"), ...payload]);
    const lines = new LineReader(pair.server, first.subarray(0, 5), 128);
    await writeAll(pair.client, first.subarray(5));
    assertEquals(await lines.next(), "NKDATA/1 t1 0");
    assertEquals(lines.rest(), payload);
  } finally {
    pair.close();
  }
});

Deno.test("LineReader.rest() is empty when the line ended exactly at the end of the bytes read", async () => {
  const pair = await tcpPair();
  try {
    const lines = new LineReader(pair.server, enc("header\n"));
    assertEquals(await lines.next(), "header");
    assertEquals(lines.rest(), new Uint8Array(0));
  } finally {
    pair.close();
  }
});

Deno.test("LineReader.rest() returns a copy that later reads do not overwrite", async () => {
  const pair = await tcpPair();
  try {
    const lines = new LineReader(pair.server, enc("a\nbc"));
    assertEquals(await lines.next(), "a");
    const rest = lines.rest();
    await writeAll(pair.client, enc("\nxyz\n"));
    assertEquals(await lines.next(), "bc");
    assertEquals(rest, enc("bc"));
  } finally {
    pair.close();
  }
});

Deno.test("LineReader.next() returns null when the peer ends the stream", async () => {
  const pair = await tcpPair();
  try {
    const lines = new LineReader(pair.server);
    await writeAll(pair.client, enc("last\n"));
    pair.client.close();
    assertEquals(await lines.next(), "last");
    assertEquals(await lines.next(), null);
    assertEquals(await lines.next(), null);
  } finally {
    pair.close();
  }
});

Deno.test("LineReader.next() returns null at end of stream, dropping an unterminated last line", async () => {
  const pair = await tcpPair();
  try {
    const lines = new LineReader(pair.server);
    await writeAll(pair.client, enc("no newline"));
    pair.client.closeWrite();
    assertEquals(await lines.next(), null);
  } finally {
    pair.close();
  }
});

Deno.test("LineReader decodes UTF-8 split across writes in the middle of a character", async () => {
  const pair = await tcpPair();
  try {
    const nextRead = observeReads(pair.server);
    const lines = new LineReader(pair.server);
    const line = lines.next();
    const bytes = enc("caf\u00e9 \u2713\n");
    await writeAll(pair.client, bytes.subarray(0, 4)); // "caf" + first byte of é
    assertEquals(await nextRead(), 4);
    await writeAll(pair.client, bytes.subarray(4));
    assertEquals(await line, "caf\u00e9 \u2713");
  } finally {
    pair.close();
  }
});

Deno.test("LineReader throws a 'network' NetkitError once a line exceeds maxBytes with no newline", async () => {
  const pair = await tcpPair();
  try {
    const lines = new LineReader(pair.server, new Uint8Array(0), 16);
    await writeAll(pair.client, enc("x".repeat(40)));
    const err = await assertRejects(() => lines.next(), NetkitError, "longer than 16 bytes");
    assertEquals(err.kind, "network");
  } finally {
    pair.close();
  }
});

Deno.test("LineReader throws for over-long initial bytes without reading the connection", async () => {
  const pair = await tcpPair();
  try {
    const lines = new LineReader(pair.server, enc("y".repeat(200)), 128);
    await assertRejects(() => lines.next(), NetkitError);
  } finally {
    pair.close();
  }
});

Deno.test("LineReader accepts a line just under maxBytes that arrives a chunk at a time", async () => {
  const pair = await tcpPair();
  try {
    const nextRead = observeReads(pair.server);
    const lines = new LineReader(pair.server, new Uint8Array(0), 16);
    const line = lines.next();
    await writeAll(pair.client, enc("x".repeat(8)));
    assertEquals(await nextRead(), 8);
    await writeAll(pair.client, enc("x".repeat(7) + "\n"));
    assertEquals(await line, "x".repeat(15));
  } finally {
    pair.close();
  }
});

Deno.test("LineReader refuses a line longer than maxBytes even when its newline came in the same read", async () => {
  const pair = await tcpPair();
  try {
    const lines = new LineReader(pair.server, enc("z".repeat(10_000) + "\n"), 128);
    await assertRejects(() => lines.next(), Error, "longer than 128 bytes");
  } finally {
    pair.close();
  }
});
