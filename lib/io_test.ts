/**
 * Tests for the shared I/O helpers: writing a whole buffer through a writer
 * that accepts only a few bytes per call, and which errors count as "the
 * socket ended" rather than a bug.
 *
 * @example
 * ```sh
 * deno test lib/io_test.ts
 * ```
 *
 * @module
 */
import { assert, assertEquals, assertRejects } from "@std/assert";
import { isClosedError, writeAll, type Writer } from "./io.ts";

/** A writer that accepts at most `chunk` bytes per call and records each call. */
class ShortWriter implements Writer {
  readonly calls: number[] = [];
  readonly #out: number[] = [];

  constructor(readonly chunk: number) {}

  write(p: Uint8Array): Promise<number> {
    const n = Math.min(this.chunk, p.length);
    this.calls.push(p.length);
    this.#out.push(...p.subarray(0, n));
    return Promise.resolve(n);
  }

  get written(): Uint8Array {
    return new Uint8Array(this.#out);
  }
}

function sequence(length: number): Uint8Array {
  return Uint8Array.from({ length }, (_, i) => (i * 7 + 3) & 0xff);
}

Deno.test("writeAll loops over short writes (3 bytes at a time) until every byte is written in order", async () => {
  const writer = new ShortWriter(3);
  const data = sequence(10);
  await writeAll(writer, data);
  assertEquals(writer.written, data);
  // Each call is offered what is left: 10, 7, 4, 1.
  assertEquals(writer.calls, [10, 7, 4, 1]);
});

Deno.test("writeAll makes a single call when the writer takes the whole buffer", async () => {
  const writer = new ShortWriter(1 << 20);
  const data = sequence(4096);
  await writeAll(writer, data);
  assertEquals(writer.written, data);
  assertEquals(writer.calls, [4096]);
});

Deno.test("writeAll handles a length that is an exact multiple of the short write size", async () => {
  const writer = new ShortWriter(3);
  const data = sequence(9);
  await writeAll(writer, data);
  assertEquals(writer.written, data);
  assertEquals(writer.calls, [9, 6, 3]);
});

Deno.test("writeAll does not call the writer for an empty buffer", async () => {
  const writer = new ShortWriter(3);
  await writeAll(writer, new Uint8Array(0));
  assertEquals(writer.calls, []);
});

Deno.test("writeAll propagates the writer's error and stops writing", async () => {
  let calls = 0;
  const failing: Writer = {
    write(p) {
      calls++;
      if (calls === 2) return Promise.reject(new Deno.errors.BrokenPipe("broken pipe"));
      return Promise.resolve(Math.min(2, p.length));
    },
  };
  await assertRejects(() => writeAll(failing, sequence(10)), Deno.errors.BrokenPipe);
  assertEquals(calls, 2);
});

Deno.test("isClosedError is true for every error that means the socket ended", () => {
  const closed = [
    new Deno.errors.BadResource("Bad resource ID"),
    new Deno.errors.Interrupted("operation canceled"),
    new Deno.errors.ConnectionReset("Connection reset by peer (os error 104)"),
    new Deno.errors.ConnectionAborted("Connection aborted"),
    new Deno.errors.BrokenPipe("Broken pipe (os error 32)"),
    new Deno.errors.NotConnected("Socket is not connected (os error 107)"),
    new Deno.errors.UnexpectedEof("early eof"),
  ];
  for (const err of closed) assertEquals(isClosedError(err), true, err.name);
});

Deno.test("isClosedError is false for real failures, plain errors and non-errors", () => {
  const notClosed: unknown[] = [
    new Deno.errors.ConnectionRefused("Connection refused"),
    new Deno.errors.TimedOut("timed out"),
    new Deno.errors.PermissionDenied("Permission denied"),
    new Deno.errors.NotFound("not found"),
    new Deno.errors.AddrInUse("Address in use"),
    new Deno.errors.InvalidData("invalid data"),
    new Error("Bad resource ID"),
    new TypeError("x is not a function"),
    "BrokenPipe",
    { name: "BrokenPipe" },
    null,
    undefined,
  ];
  for (const err of notClosed) assertEquals(isClosedError(err), false, String(err));
});

Deno.test("isClosedError is true for the error a read on a closed connection really throws", async () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const [client, server] = await Promise.all([
    Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port }),
    listener.accept(),
  ]);
  server.close();
  client.close();
  const err = await client.read(new Uint8Array(1)).then(() => undefined, (e: unknown) => e);
  assert(err !== undefined, "read on a closed connection should throw");
  assertEquals(isClosedError(err), true, String(err));
});
