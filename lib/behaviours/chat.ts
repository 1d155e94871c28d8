/**
 * Chat over streams: each line a client sends is relayed, unchanged, to every
 * other connected client. A client that stops reading gets a bounded queue;
 * past {@linkcode ChatRoomOptions.maxQueuedBytes} it is disconnected, so it
 * never slows or grows the room.
 *
 * @example
 * ```ts
 * import { ChatRoom } from "./chat.ts";
 * import { CoarseClock, Session } from "../server/session.ts";
 *
 * const room = new ChatRoom();
 * using listener = Deno.listen({ port: 0 });
 * for await (const conn of listener) {
 *   room.serve(conn, new Session("peer", new CoarseClock()));
 * }
 * ```
 *
 * @module
 */

import { writeAll } from "../io.ts";
import type { Session } from "../server/session.ts";

/** Options of a {@linkcode ChatRoom}. */
export interface ChatRoomOptions {
  /**
   * Longest line relayed whole; a longer one is relayed in pieces of this size.
   * @default {65536}
   */
  maxLineBytes?: number;
  /**
   * Bytes queued for a client that is not reading before it is disconnected.
   * @default {1048576}
   */
  maxQueuedBytes?: number;
}

class Member {
  readonly queue: Uint8Array[] = [];
  queued = 0;
  writing = false;
  constructor(readonly conn: Deno.Conn, readonly session: Session) {}
}

/** A room of stream clients relaying lines to each other. */
export class ChatRoom {
  readonly #members = new Set<Member>();
  readonly #maxLine: number;
  readonly #maxQueued: number;

  constructor(options: ChatRoomOptions = {}) {
    this.#maxLine = options.maxLineBytes ?? 65536;
    this.#maxQueued = options.maxQueuedBytes ?? 1 << 20;
  }

  /** Members connected now. */
  get size(): number {
    return this.#members.size;
  }

  /** Serve one client until it disconnects. */
  async serve(conn: Deno.Conn, session: Session): Promise<void> {
    const member = new Member(conn, session);
    this.#members.add(member);
    const buf = new Uint8Array(16 * 1024);
    const line = new Uint8Array(this.#maxLine);
    let lineLen = 0;
    try {
      while (true) {
        const n = await conn.read(buf);
        if (n === null) break;
        session.bytesIn += n;
        session.touch();
        let start = 0;
        while (start < n) {
          const nl = buf.subarray(start, n).indexOf(10);
          const end = nl < 0 ? n : start + nl + 1;
          let piece = buf.subarray(start, end);
          start = end;
          while (piece.length > 0) {
            const take = Math.min(piece.length, this.#maxLine - lineLen);
            line.set(piece.subarray(0, take), lineLen);
            lineLen += take;
            piece = piece.subarray(take);
            if (lineLen === this.#maxLine || (piece.length === 0 && nl >= 0)) {
              this.#broadcast(line.slice(0, lineLen), member);
              lineLen = 0;
            }
          }
        }
      }
      if (lineLen > 0) this.#broadcast(line.slice(0, lineLen), member);
    } finally {
      this.#members.delete(member);
    }
  }

  #broadcast(bytes: Uint8Array, from: Member): void {
    for (const member of this.#members) {
      if (member !== from) this.#send(member, bytes);
    }
  }

  #send(member: Member, bytes: Uint8Array): void {
    if (member.queued + bytes.length > this.#maxQueued) {
      member.session.closeReason = "too slow: stopped reading";
      this.#members.delete(member);
      try {
        member.conn.close();
      } catch { /* already closed */ }
      return;
    }
    member.queue.push(bytes);
    member.queued += bytes.length;
    if (!member.writing) this.#drain(member);
  }

  async #drain(member: Member): Promise<void> {
    member.writing = true;
    try {
      let next: Uint8Array | undefined;
      while ((next = member.queue.shift()) !== undefined) {
        await writeAll(member.conn, next);
        member.queued -= next.length;
        member.session.bytesOut += next.length;
      }
    } catch {
      // Any write failure means this member is gone; the reader loop ends it.
      this.#members.delete(member);
    } finally {
      member.writing = false;
    }
  }
}
