/**
 * One direction of a UDP relay session with netem-like impairments in user
 * space: loss, duplicate, corrupt (one bit flipped), reorder, delay with
 * jitter, and a rate (a departure-time token bucket) whose backlog, with the
 * delay line's, is capped at `queueBytes` (tail drop past it).
 *
 * For each datagram, in order: draw five numbers from the direction's seeded
 * generator (loss, duplicate, corrupt, reorder, jitter; always five, so each
 * decision depends only on the seed and the datagram's index); drop it, or
 * else copy it once more (duplicate), flip one bit, and hold it back
 * (reorder: it leaves right after the next datagram of the direction was
 * forwarded or dropped, or after `reorderFlushMs`). What leaves is
 * given a departure time: now + delay ± jitter (uniform; with `keepOrder`
 * never before the previous one), then no earlier than the rate allows.
 * Departures in the past with nothing queued are sent at once.
 *
 * `script` names datagram indices to drop, duplicate or reorder exactly (for
 * tests that must know what was injected); `onDecision` sees every decision.
 *
 * @example
 * ```ts
 * import { DatagramPath } from "./datagram_path.ts";
 * import { emptyDirection } from "./counters.ts";
 * import { mulberry32 } from "../prng.ts";
 * import { NO_IMPAIRMENT } from "./impairment.ts";
 *
 * const sent: Uint8Array[] = [];
 * const path = new DatagramPath({ ...NO_IMPAIRMENT, duplicate: 1 }, {
 *   random: mulberry32(1),
 *   counters: emptyDirection(),
 *   send: (data) => Promise.resolve(sent.push(data.slice())),
 * });
 * await path.push(new Uint8Array([1]));
 * path.close(); // sent holds two copies
 * ```
 *
 * @module
 */

import type { Impairment } from "../config.ts";
import type { DirectionCounters } from "./counters.ts";

/** How long a reordered datagram waits for a successor before it leaves anyway. */
export const REORDER_FLUSH_MS = 50;

/** Exact decisions by datagram index (from 0, per direction of a session). */
export interface PathScript {
  drop?: ReadonlySet<number>;
  duplicate?: ReadonlySet<number>;
  reorder?: ReadonlySet<number>;
}

/** What was decided for one datagram. */
export interface PathDecision {
  index: number;
  dropped: boolean;
  duplicated: boolean;
  reordered: boolean;
  corrupted: boolean;
}

/** Options of {@linkcode DatagramPath}. */
export interface DatagramPathOptions {
  random: () => number;
  counters: DirectionCounters;
  /** Send one datagram; the path does not touch `data` again once this settles. */
  send: (data: Uint8Array) => Promise<unknown>;
  /**
   * Bytes held at most (delay and rate queue); past it, datagrams are tail-dropped.
   * @default {1048576}
   */
  queueBytes?: number;
  /**
   * Jitter keeps order.
   * @default {false}
   */
  keepOrder?: boolean;
  /**
   * Exact decisions by index, besides the random ones.
   * @default {undefined}
   */
  script?: PathScript;
  /**
   * How long a reordered datagram waits for a successor before it leaves anyway.
   * @default {REORDER_FLUSH_MS}
   */
  reorderFlushMs?: number;
  /**
   * Called with every decision, before it is acted upon.
   * @default {undefined}
   */
  onDecision?: (decision: PathDecision) => void;
}

interface Queued {
  at: number;
  data: Uint8Array;
}

/** One impaired direction. Call {@linkcode DatagramPath.close} to clear its timers. */
export class DatagramPath {
  readonly #imp: Impairment;
  readonly #o: DatagramPathOptions;
  readonly #queueCap: number;
  readonly #flushMs: number;
  readonly #passthrough: boolean;
  readonly #timed: boolean;
  #index = 0;
  #held: { data: Uint8Array; copies: number }[] = [];
  #flushTimer: ReturnType<typeof setTimeout> | undefined;
  #queue: Queued[] = [];
  #head = 0;
  #queued = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #timerAt = Infinity;
  #lastDeparture = 0;
  #rateFree = 0;
  #tail: Promise<unknown> = Promise.resolve();
  #closed = false;

  constructor(impairment: Impairment, options: DatagramPathOptions) {
    this.#imp = impairment;
    this.#o = options;
    this.#queueCap = options.queueBytes ?? 1 << 20;
    this.#flushMs = options.reorderFlushMs ?? REORDER_FLUSH_MS;
    const i = impairment;
    this.#timed = i.delayMs > 0 || i.jitterMs > 0 || i.rate > 0;
    this.#passthrough = !this.#timed && i.loss === 0 && i.duplicate === 0 && i.reorder === 0 &&
      i.corrupt === 0 && options.script === undefined && options.onDecision === undefined;
  }

  /** Bytes waiting in the delay and rate queue. */
  get queuedBytes(): number {
    return this.#queued;
  }

  /**
   * Forward one datagram. `data` may be a view of a buffer the caller reuses:
   * it must await the returned promise (if any) first.
   */
  push(data: Uint8Array): Promise<unknown> | undefined {
    const c = this.#o.counters;
    c.datagramsIn++;
    c.bytesIn += data.length;
    if (this.#closed) return undefined;
    if (this.#passthrough) return this.#sendNow(data);
    const imp = this.#imp;
    const random = this.#o.random;
    const index = this.#index++;
    const dLoss = random(), dDup = random(), dCorrupt = random(), dReorder = random();
    const dJitter = random();
    const script = this.#o.script;
    const dropped = (script?.drop?.has(index) ?? false) || dLoss < imp.loss;
    const duplicated = !dropped &&
      ((script?.duplicate?.has(index) ?? false) || dDup < imp.duplicate);
    const corrupted = !dropped && data.length > 0 && dCorrupt < imp.corrupt;
    const reordered = !dropped &&
      ((script?.reorder?.has(index) ?? false) || dReorder < imp.reorder);
    this.#o.onDecision?.({ index, dropped, duplicated, reordered, corrupted });
    if (dropped) {
      c.dropped++;
      return this.#releaseHeld();
    }
    let payload = data;
    if (corrupted) {
      payload = data.slice();
      const at = Math.floor(random() * payload.length);
      payload[at]! ^= 1 << Math.floor(random() * 8);
      c.corrupted++;
    }
    const copies = duplicated ? 2 : 1;
    if (duplicated) c.duplicated++;
    if (reordered) {
      c.reordered++;
      this.#held.push({ data: payload === data ? data.slice() : payload, copies });
      if (this.#flushTimer !== undefined) clearTimeout(this.#flushTimer);
      this.#flushTimer = setTimeout(() => {
        this.#flushTimer = undefined;
        this.#releaseHeld();
      }, this.#flushMs);
      return undefined;
    }
    const sent = this.#emit(payload, copies, dJitter);
    const released = this.#releaseHeld();
    return released ?? sent;
  }

  /** Clear every timer and drop what is queued or held. Idempotent. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#flushTimer);
    clearTimeout(this.#timer);
    this.#flushTimer = this.#timer = undefined;
    this.#held = [];
    this.#queue = [];
    this.#head = 0;
    this.#queued = 0;
  }

  #releaseHeld(): Promise<unknown> | undefined {
    if (this.#held.length === 0) return undefined;
    clearTimeout(this.#flushTimer);
    this.#flushTimer = undefined;
    const held = this.#held;
    this.#held = [];
    let last: Promise<unknown> | undefined;
    for (const h of held) last = this.#emit(h.data, h.copies, this.#o.random()) ?? last;
    return last;
  }

  /** Send `copies` copies now or at their departure time. */
  #emit(data: Uint8Array, copies: number, jitterDraw: number): Promise<unknown> | undefined {
    if (!this.#timed) {
      let last: Promise<unknown> | undefined;
      for (let i = 0; i < copies; i++) last = this.#sendNow(data);
      return last;
    }
    const imp = this.#imp;
    const now = performance.now();
    let last: Promise<unknown> | undefined;
    let copy: Uint8Array | undefined;
    for (let i = 0; i < copies; i++) {
      let at = now + Math.max(0, imp.delayMs + (2 * jitterDraw - 1) * imp.jitterMs);
      if (this.#o.keepOrder || imp.rate > 0) at = Math.max(at, this.#lastDeparture);
      if (imp.rate > 0) {
        at = Math.max(at, this.#rateFree);
        this.#rateFree = at + (data.length * 8 * 1000) / imp.rate;
      }
      if (at <= now && this.#head === this.#queue.length) {
        this.#lastDeparture = at;
        last = this.#sendNow(data);
        continue;
      }
      if (this.#queued + data.length > this.#queueCap) {
        this.#o.counters.queueDropped++;
        if (imp.rate > 0) this.#rateFree -= (data.length * 8 * 1000) / imp.rate;
        continue;
      }
      this.#lastDeparture = Math.max(this.#lastDeparture, at);
      copy ??= data.slice();
      this.#insert(at, copy);
      this.#o.counters.delayed++;
    }
    return last;
  }

  #insert(at: number, data: Uint8Array): void {
    const q = this.#queue;
    this.#queued += data.length;
    if (q.length === this.#head || q[q.length - 1]!.at <= at) q.push({ at, data });
    else {
      let lo = this.#head, hi = q.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (q[mid]!.at <= at) lo = mid + 1;
        else hi = mid;
      }
      q.splice(lo, 0, { at, data });
    }
    this.#arm();
  }

  #arm(): void {
    const head = this.#queue[this.#head];
    if (head === undefined) return;
    if (this.#timer !== undefined && this.#timerAt <= head.at) return;
    clearTimeout(this.#timer);
    this.#timerAt = head.at;
    // Rounded up: a datagram never leaves before its time (a delay is a floor, as netem's is).
    this.#timer = setTimeout(
      () => this.#due(),
      Math.max(0, Math.ceil(head.at - performance.now())),
    );
  }

  #due(): void {
    this.#timer = undefined;
    this.#timerAt = Infinity;
    const now = performance.now();
    const q = this.#queue;
    while (this.#head < q.length && q[this.#head]!.at <= now) {
      const { data } = q[this.#head++]!;
      this.#queued -= data.length;
      this.#sendNow(data);
    }
    if (this.#head === q.length) {
      this.#queue = [];
      this.#head = 0;
    } else if (this.#head > 1024 && this.#head * 2 > q.length) {
      this.#queue = q.slice(this.#head);
      this.#head = 0;
    }
    this.#arm();
  }

  #sendNow(data: Uint8Array): Promise<unknown> {
    const c = this.#o.counters;
    const send = this.#o.send;
    // Counted when handed to the socket (as a test that waits for a decision sees it);
    // taken back if the send fails or the path closed before it left.
    c.datagramsOut++;
    c.bytesOut += data.length;
    if (this.#passthrough) {
      // The hot path: the caller awaits each send before the next, so one is in flight
      // and its length is a field; no closure per datagram.
      this.#inFlight = data.length;
      return send(data).catch(this.#undoInFlight);
    }
    const failed = () => {
      c.datagramsOut--;
      c.bytesOut -= data.length;
    };
    // Chained, so datagrams leave in the order decided.
    this.#tail = this.#tail.then(() => this.#closed ? failed() : send(data).catch(failed));
    return this.#tail;
  }

  #inFlight = 0;
  readonly #undoInFlight = () => {
    this.#o.counters.datagramsOut--;
    this.#o.counters.bytesOut -= this.#inFlight;
  };
}
