/**
 * Discard (RFC 863) over a stream: read and drop every byte.
 *
 * @example
 * ```ts
 * import { discardStream } from "./discard.ts";
 * import { CoarseClock, Session } from "../server/session.ts";
 *
 * using listener = Deno.listen({ port: 0 });
 * using conn = await listener.accept();
 * await discardStream(conn, new Session("peer", new CoarseClock()));
 * ```
 *
 * @module
 */

import type { Session } from "../server/session.ts";

/**
 * Read and drop until the peer ends its side.
 *
 * @param first Bytes already read, counted first.
 */
export async function discardStream(
  conn: Deno.Conn,
  session: Session,
  first?: Uint8Array,
): Promise<void> {
  if (first) session.bytesIn += first.length;
  const buf = new Uint8Array(256 * 1024);
  while (true) {
    const n = await conn.read(buf);
    if (n === null) return;
    session.bytesIn += n;
    session.touch();
  }
}
