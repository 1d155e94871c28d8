/**
 * Socket helpers shared by the end-to-end tests: read an exact count or to
 * the end, write everything, close what may be closed already, count a
 * process's open descriptors, find a closed port.
 *
 * @example
 * ```ts
 * import { readExactly, writeAll } from "./sockets.ts";
 *
 * using conn = await Deno.connect({ hostname: "127.0.0.1", port: 5050 });
 * await writeAll(conn, new TextEncoder().encode("ping"));
 * console.log(await readExactly(conn, 4));
 * ```
 *
 * @module
 */

import { getAvailablePort } from "@std/net/get-available-port";

export { closeQuietly, isClosedError as isConnectionEnd, writeAll } from "../../lib/io.ts";

/** Read exactly `length` bytes; throws if the peer closes first. */
export async function readExactly(conn: Deno.Conn, length: number): Promise<Uint8Array> {
  const buf = new Uint8Array(length);
  let off = 0;
  while (off < length) {
    const n = await conn.read(buf.subarray(off));
    if (n === null) throw new Error(`closed by the peer after ${off} of ${length} bytes`);
    off += n;
  }
  return buf;
}

/** Read until the peer ends its side. */
export async function readToEnd(conn: Deno.Conn): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  const buf = new Uint8Array(65_536);
  for (let n; (n = await conn.read(buf)) !== null;) chunks.push(buf.slice(0, n));
  const out = new Uint8Array(chunks.reduce((a, c) => a + c.length, 0));
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}

/** How many file descriptors process `pid` holds open (Linux). */
export async function openFds(pid: number): Promise<number> {
  let n = 0;
  for await (const _ of Deno.readDir(`/proc/${pid}/fd`)) n++;
  return n;
}

/** A TCP port that nothing listens on, on any IPv4 address (`@std/net`: bound, then closed). */
export function closedPort(): number {
  return getAvailablePort();
}
