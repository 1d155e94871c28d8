/**
 * Small I/O helpers shared by every transport: write a whole buffer (`writeAll`
 * and `writeAllSync` from `@std/io`), and the errors that simply mean "the peer
 * or we closed the socket".
 *
 * @example
 * ```ts
 * import { writeAll } from "./io.ts";
 *
 * using conn = await Deno.connect({ hostname: "127.0.0.1", port: 5050 });
 * await writeAll(conn, new TextEncoder().encode("hello"));
 * ```
 *
 * @module
 */

import { writeAll, writeAllSync } from "@std/io/write-all";

/** Anything with Deno's `write` signature. */
export type { Writer } from "@std/io/types";

/** Write every byte of `data`, looping over short writes (`@std/io`). */
export { writeAll };

/**
 * True for errors that mean a socket ended (closed by us, reset or broken by
 * the peer) rather than a bug: a loop that sees one stops quietly.
 */
export function isClosedError(err: unknown): boolean {
  return err instanceof Deno.errors.BadResource ||
    err instanceof Deno.errors.Interrupted ||
    err instanceof Deno.errors.ConnectionReset ||
    err instanceof Deno.errors.ConnectionAborted ||
    err instanceof Deno.errors.BrokenPipe ||
    err instanceof Deno.errors.NotConnected ||
    err instanceof Deno.errors.UnexpectedEof;
}

const encoder = new TextEncoder();

/** Write all of `text` to a standard stream synchronously, looping over short writes. */
export function writeText(stream: { writeSync(p: Uint8Array): number }, text: string): void {
  writeAllSync(stream, encoder.encode(text));
}

/** Write one line to stderr (logs and summaries; never stdout). */
export function logLine(line: string): void {
  writeText(Deno.stderr, line + "\n");
}

/** Write one `-v` line to stderr, after the time as ISO 8601 UTC: `2026-11-30T05:20:42.123Z connect …`. */
export function logEvent(line: string): void {
  logLine(`${new Date().toISOString()} ${line}`);
}

/** Close a socket or listener that may already be closed. */
export function closeQuietly(resource: { close(): void }): void {
  try {
    resource.close();
  } catch {
    // Already closed.
  }
}
