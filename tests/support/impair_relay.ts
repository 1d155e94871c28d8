/**
 * In-process UDP relay that injects loss, duplication, reordering and delay
 * between a client and a UDP server, for tests.
 *
 * The relay listens on `127.0.0.1:0`; point the client at `relay.addr`. Each
 * datagram from a client is forwarded to the target, and each datagram coming
 * back from the target is forwarded to the most recent client address (and
 * discarded, uncounted, if no client has sent anything yet). The
 * impairments are chosen per direction by the *index of the datagram in that
 * direction* (0, 1, 2, … in order of arrival at the relay), so a test knows
 * exactly what was injected; seeded random rates are available as well, and
 * {@linkcode ImpairRelayOptions.onDatagram} reports every decision.
 *
 * Order of decisions for one datagram: drop (explicit index or `dropRate`),
 * otherwise duplicate (explicit or `duplicateRate`: two copies are sent) and
 * reorder (explicit index: the datagram, with its copies, is held back and sent
 * right after the next datagram that arrives in that direction has been
 * handled — forwarded or dropped — or after 50 ms if none arrives). Several
 * consecutive reordered datagrams are held together and released in arrival
 * order. `delayMs` is then added to every sent copy; equal delays keep order.
 *
 * Counters: `forwarded` counts datagrams actually handed to the socket
 * (each duplicate copy counts), `dropped`, `duplicated` (extra copies) and
 * `reordered` count decisions.
 *
 * @example
 * ```ts
 * import { startImpairRelay } from "./impair_relay.ts";
 *
 * await using relay = startImpairRelay({ hostname: "127.0.0.1", port: 7 }, {
 *   toServer: { drop: new Set([3]) },
 *   toClient: { delayMs: 20 },
 * });
 * // Send datagrams to relay.addr instead of the server …
 * console.log(relay.stats.toServer.dropped);
 * ```
 *
 * @module
 */

import { mulberry32 } from "./prng.ts";

/** How long a reordered datagram waits for a successor before it is sent anyway. */
export const REORDER_FLUSH_MS = 50;

/** Direction of a datagram through the relay. */
export type ImpairDirection = "toServer" | "toClient";

/** Impairments for one direction; indices count datagrams in that direction from 0. */
export interface ImpairDirectionOptions {
  /**
   * Indices of datagrams that are not forwarded.
   *
   * @default {new Set()}
   */
  drop?: ReadonlySet<number>;
  /**
   * Indices of datagrams that are forwarded twice.
   *
   * @default {new Set()}
   */
  duplicate?: ReadonlySet<number>;
  /**
   * Indices of datagrams held back and sent right after the next datagram in
   * this direction (or after {@linkcode REORDER_FLUSH_MS} if none arrives).
   *
   * @default {new Set()}
   */
  reorder?: ReadonlySet<number>;
  /**
   * Delay added to every datagram sent in this direction, in milliseconds.
   *
   * @default {0}
   */
  delayMs?: number;
  /**
   * Probability (0..1) of dropping each datagram, drawn from the seeded PRNG.
   *
   * @default {0}
   */
  dropRate?: number;
  /**
   * Probability (0..1) of duplicating each datagram not dropped, drawn from
   * the seeded PRNG.
   *
   * @default {0}
   */
  duplicateRate?: number;
}

/** What the relay decided for one datagram; passed to {@linkcode ImpairRelayOptions.onDatagram}. */
export interface ImpairDecision {
  /** Direction of the datagram. */
  direction: ImpairDirection;
  /** Index of the datagram in its direction, from 0. */
  index: number;
  /** Not forwarded. */
  dropped: boolean;
  /** Forwarded twice. */
  duplicated: boolean;
  /** Held back until after the next datagram. */
  reordered: boolean;
}

/** Options for {@linkcode startImpairRelay}. */
export interface ImpairRelayOptions {
  /**
   * Seed of the mulberry32 PRNG behind `dropRate` and `duplicateRate`. Each
   * direction has its own generator, so random decisions depend only on the
   * seed and the datagram index, not on how the directions interleave.
   *
   * @default {1}
   */
  seed?: number;
  /**
   * Local address both relay sockets bind to (port 0).
   *
   * @default {"127.0.0.1"}
   */
  hostname?: string;
  /**
   * Impairments for datagrams from the client to the target.
   *
   * @default {{}}
   */
  toServer?: ImpairDirectionOptions;
  /**
   * Impairments for datagrams from the target back to the client.
   *
   * @default {{}}
   */
  toClient?: ImpairDirectionOptions;
  /**
   * Called synchronously with the decision for every datagram, before it is
   * acted upon.
   *
   * @default {undefined}
   */
  onDatagram?: (decision: ImpairDecision) => void;
}

/** What the relay actually did in one direction. */
export interface ImpairDirectionStats {
  /** Datagrams handed to the socket (each duplicate copy counts). */
  forwarded: number;
  /** Datagrams dropped. */
  dropped: number;
  /** Extra copies decided (one per duplicated datagram). */
  duplicated: number;
  /** Datagrams held back for reordering. */
  reordered: number;
}

/** Counters of both directions. */
export interface ImpairRelayStats {
  /** Client → target. */
  toServer: ImpairDirectionStats;
  /** Target → client. */
  toClient: ImpairDirectionStats;
}

/** A running relay; close it (or `await using` it) to release sockets and timers. */
export interface ImpairRelay extends AsyncDisposable {
  /** Address clients should send to. */
  readonly addr: Deno.NetAddr;
  /** Snapshot of the counters. */
  readonly stats: ImpairRelayStats;
  /** Closes both sockets, clears every timer and waits for pending operations. Idempotent. */
  close(): Promise<void>;
}

interface Held {
  data: Uint8Array;
  copies: number;
}

interface DirectionState {
  readonly direction: ImpairDirection;
  readonly drop: ReadonlySet<number>;
  readonly duplicate: ReadonlySet<number>;
  readonly reorder: ReadonlySet<number>;
  readonly delayMs: number;
  readonly dropRate: number;
  readonly duplicateRate: number;
  readonly random: () => number;
  readonly stats: ImpairDirectionStats;
  readonly held: Held[];
  index: number;
  flushTimer: ReturnType<typeof setTimeout> | undefined;
}

const EMPTY: ReadonlySet<number> = new Set();

function checkRate(name: string, rate: number): number {
  if (!(rate >= 0 && rate <= 1)) throw new RangeError(`${name} must be in [0, 1], got ${rate}`);
  return rate;
}

function directionState(
  direction: ImpairDirection,
  options: ImpairDirectionOptions,
  seed: number,
): DirectionState {
  const delayMs = options.delayMs ?? 0;
  if (!(delayMs >= 0 && delayMs < Infinity)) {
    throw new RangeError(`${direction}.delayMs must be a finite non-negative number`);
  }
  return {
    direction,
    drop: options.drop ?? EMPTY,
    duplicate: options.duplicate ?? EMPTY,
    reorder: options.reorder ?? EMPTY,
    delayMs,
    dropRate: checkRate(`${direction}.dropRate`, options.dropRate ?? 0),
    duplicateRate: checkRate(`${direction}.duplicateRate`, options.duplicateRate ?? 0),
    random: mulberry32(seed),
    stats: { forwarded: 0, dropped: 0, duplicated: 0, reordered: 0 },
    held: [],
    index: 0,
    flushTimer: undefined,
  };
}

/**
 * Starts a UDP relay on `options.hostname:0` in front of `target`.
 *
 * @throws {RangeError} on an invalid rate or delay.
 */
export function startImpairRelay(
  target: { hostname: string; port: number },
  options: ImpairRelayOptions = {},
): ImpairRelay {
  const seed = options.seed ?? 1;
  const hostname = options.hostname ?? "127.0.0.1";
  const onDatagram = options.onDatagram;
  const toServer = directionState("toServer", options.toServer ?? {}, seed);
  const toClient = directionState("toClient", options.toClient ?? {}, seed ^ 0x9e3779b9);
  const targetAddr: Deno.NetAddr = {
    transport: "udp",
    hostname: target.hostname,
    port: target.port,
  };

  const clientSide = Deno.listenDatagram({ hostname, port: 0, transport: "udp" });
  let serverSide: Deno.DatagramConn;
  try {
    serverSide = Deno.listenDatagram({ hostname, port: 0, transport: "udp" });
  } catch (error) {
    clientSide.close();
    throw error;
  }

  let closed = false;
  let closing: Promise<void> | undefined;
  let lastClient: Deno.NetAddr | undefined;
  const delayTimers = new Set<ReturnType<typeof setTimeout>>();
  // Sends are chained per socket so datagrams leave in the order decided.
  let toServerChain: Promise<unknown> = Promise.resolve();
  let toClientChain: Promise<unknown> = Promise.resolve();
  const ignore = () => {};

  function transmit(state: DirectionState, data: Uint8Array): void {
    if (closed) return;
    if (state === toServer) {
      state.stats.forwarded++;
      toServerChain = toServerChain.then(() => serverSide.send(data, targetAddr)).then(
        ignore,
        ignore,
      );
    } else if (lastClient !== undefined) {
      const to = lastClient;
      state.stats.forwarded++;
      toClientChain = toClientChain.then(() => clientSide.send(data, to)).then(ignore, ignore);
    }
  }

  function emit(state: DirectionState, data: Uint8Array, copies: number): void {
    for (let i = 0; i < copies; i++) {
      if (state.delayMs > 0) {
        const timer = setTimeout(() => {
          delayTimers.delete(timer);
          transmit(state, data);
        }, state.delayMs);
        delayTimers.add(timer);
      } else {
        transmit(state, data);
      }
    }
  }

  function releaseHeld(state: DirectionState): void {
    if (state.flushTimer !== undefined) {
      clearTimeout(state.flushTimer);
      state.flushTimer = undefined;
    }
    for (const held of state.held) emit(state, held.data, held.copies);
    state.held.length = 0;
  }

  function handle(state: DirectionState, data: Uint8Array): void {
    const index = state.index++;
    const dropDraw = state.dropRate > 0 ? state.random() : 1;
    const duplicateDraw = state.duplicateRate > 0 ? state.random() : 1;
    const dropped = state.drop.has(index) || dropDraw < state.dropRate;
    const duplicated = !dropped &&
      (state.duplicate.has(index) || duplicateDraw < state.duplicateRate);
    const reordered = !dropped && state.reorder.has(index);
    onDatagram?.({ direction: state.direction, index, dropped, duplicated, reordered });
    if (dropped) {
      state.stats.dropped++;
      releaseHeld(state);
      return;
    }
    const copies = duplicated ? 2 : 1;
    if (duplicated) state.stats.duplicated++;
    if (reordered) {
      state.stats.reordered++;
      state.held.push({ data, copies });
      if (state.flushTimer !== undefined) clearTimeout(state.flushTimer);
      state.flushTimer = setTimeout(() => {
        state.flushTimer = undefined;
        releaseHeld(state);
      }, REORDER_FLUSH_MS);
      return;
    }
    emit(state, data, copies);
    releaseHeld(state);
  }

  async function pump(
    socket: Deno.DatagramConn,
    onData: (data: Uint8Array, from: Deno.NetAddr) => void,
  ): Promise<void> {
    const buffer = new Uint8Array(65536);
    while (!closed) {
      let received: [Uint8Array, Deno.Addr];
      try {
        received = await socket.receive(buffer);
      } catch {
        // Closing the socket rejects the pending receive; other errors (e.g.
        // ICMP-induced ones) are transient for an unconnected UDP socket.
        continue;
      }
      if (closed) break;
      onData(received[0].slice(), received[1] as Deno.NetAddr);
    }
  }

  const pumps = [
    pump(clientSide, (data, from) => {
      lastClient = from;
      handle(toServer, data);
    }),
    pump(serverSide, (data) => handle(toClient, data)),
  ];

  function snapshot(stats: ImpairDirectionStats): ImpairDirectionStats {
    return { ...stats };
  }

  function close(): Promise<void> {
    if (closing !== undefined) return closing;
    closed = true;
    for (const state of [toServer, toClient]) {
      if (state.flushTimer !== undefined) clearTimeout(state.flushTimer);
      state.flushTimer = undefined;
      state.held.length = 0;
    }
    for (const timer of delayTimers) clearTimeout(timer);
    delayTimers.clear();
    clientSide.close();
    serverSide.close();
    closing = Promise.all([...pumps, toServerChain, toClientChain]).then(ignore);
    return closing;
  }

  return {
    addr: clientSide.addr as Deno.NetAddr,
    get stats(): ImpairRelayStats {
      return { toServer: snapshot(toServer.stats), toClient: snapshot(toClient.stats) };
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}
