/**
 * Echo (RFC 862) over a stream: every byte read is written back, in order,
 * before the next read, so a client that never reads stalls only itself.
 *
 * @example
 * ```ts
 * import { echoStream } from "./echo.ts";
 * import { CoarseClock, Session } from "../server/session.ts";
 *
 * using listener = Deno.listen({ port: 0 });
 * using conn = await listener.accept();
 * await echoStream(conn, new Session("peer", new CoarseClock()));
 * ```
 *
 * @module
 */

import { writeAll } from "../io.ts";
import type { Session } from "../server/session.ts";

/** Largest read of one echo loop; one buffer per connection, reused. */
export const ECHO_BUFFER_BYTES = 64 * 1024;

/**
 * Echo until the peer ends its side; throws on socket errors.
 *
 * @param first Bytes already read, echoed first; its buffer is reused when it is large enough.
 */
export async function echoStream(
  conn: Deno.Conn,
  session: Session,
  first?: Uint8Array,
): Promise<void> {
  // Start small (the first read's own buffer, or 4 KiB) and grow while reads fill the
  // buffer: a connection trading short messages stays cheap, a bulk stream gets 64 KiB.
  let buf = first ? new Uint8Array(first.buffer, first.byteOffset) : new Uint8Array(4096);
  // The bytes already read sit at the start of `buf`: echo them as the first round.
  let n: number | null = first?.length ?? 0;
  while (!session.draining) {
    if (n === 0 && (n = await conn.read(buf)) === null) return;
    session.bytesIn += n;
    session.touch();
    session.busy = true;
    await writeAll(conn, buf.subarray(0, n));
    session.busy = false;
    session.bytesOut += n;
    if (n === buf.length && buf.length < ECHO_BUFFER_BYTES) {
      buf = new Uint8Array(Math.min(buf.length * 4, ECHO_BUFFER_BYTES));
    }
    n = 0;
  }
}
