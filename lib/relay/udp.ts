/**
 * The UDP relay: one session per client address and port, each with its own
 * socket toward the target, so replies go back to the client that caused
 * them. Sessions expire after `idleTimeoutMs` without a datagram either way,
 * and at most `maxSessions` live at once (a new client past that is refused,
 * its datagrams counted). Each direction of a session runs through a
 * {@linkcode DatagramPath} with its own seeded generator.
 *
 * @example
 * ```ts
 * import { startUdpRelay } from "./udp.ts";
 *
 * await using relay = startUdpRelay({
 *   listen: { hostname: "127.0.0.1", port: 0 },
 *   target: { hostname: "127.0.0.1", port: 5050 },
 *   up: { loss: 0.1 },
 *   seed: 7,
 * });
 * console.log(relay.addr.port, relay.counters.up.dropped);
 * ```
 *
 * @module
 */

import { formatAddr, formatHost, wildcardFor } from "../address.ts";
import { isFrom } from "../client/dial.ts";
import type { Impairment } from "../config.ts";
import { closeQuietly } from "../io.ts";
import { mixSeed, mulberry32 } from "../prng.ts";
import type { Gate } from "../server/gate.ts";
import { formatBytes, formatCount } from "../units.ts";
import { emptyRelayCounters, type RelayCounters } from "./counters.ts";
import { DatagramPath, type PathDecision, type PathScript } from "./datagram_path.ts";
import { NO_IMPAIRMENT } from "./impairment.ts";

/**
 * One direction's impairments, any field left out being none, plus exact
 * decisions by index and how long a reordered datagram waits for a successor
 * (default `REORDER_FLUSH_MS`, 50 ms).
 */
export type UdpImpairOptions = Partial<Impairment> & {
  script?: PathScript;
  reorderFlushMs?: number;
};

/** Options of {@linkcode startUdpRelay}. */
export interface UdpRelayOptions {
  /** Where clients send. */
  listen: { hostname: string; port: number };
  /** The target's address (resolved). */
  target: { hostname: string; port: number };
  /**
   * Client → target.
   * @default {{}}
   */
  up?: UdpImpairOptions;
  /**
   * Target → client.
   * @default {{}}
   */
  down?: UdpImpairOptions;
  /**
   * Seed of every session's generators.
   * @default {1}
   */
  seed?: number;
  /**
   * Bytes queued at most per direction of a session.
   * @default {1048576}
   */
  queueBytes?: number;
  /**
   * Jitter keeps order.
   * @default {false}
   */
  keepOrder?: boolean;
  /**
   * Sessions at once.
   * @default {1024}
   */
  maxSessions?: number;
  /**
   * Expire a session idle this long; 0 never.
   * @default {60000}
   */
  idleTimeoutMs?: number;
  /**
   * The server's gate: every datagram from a client passes `--allow`/`--deny`
   * and `--rate-limit` first (refusals counted in `counters`).
   * @default {undefined} (everyone, no limit)
   */
  gate?: Gate;
  /**
   * Counters to update live.
   * @default {a fresh object}
   */
  counters?: RelayCounters;
  /**
   * Every decision of every session, before it is acted upon.
   * @default {undefined}
   */
  onDecision?: (direction: "up" | "down", decision: PathDecision) => void;
  /**
   * `-v` lines: sessions opened and closed, clients refused.
   * @default {undefined}
   */
  log?: (line: string) => void;
}

/** A running UDP relay. */
export interface UdpRelay extends AsyncDisposable {
  /** Where clients send. */
  readonly addr: Deno.NetAddr;
  readonly counters: RelayCounters;
  /** Sessions live now. */
  readonly sessions: number;
  /** Stop: close every socket and timer, and wait for the loops. Idempotent. */
  close(): Promise<void>;
}

interface UdpSession {
  id: number;
  client: Deno.NetAddr;
  peer: string;
  socket: Deno.DatagramConn;
  up: DatagramPath;
  down: DatagramPath;
  lastActive: number;
  startedAt: number;
  upBytes: number;
  downBytes: number;
  loop: Promise<void>;
}

function check(name: string, value: number, max: number): void {
  if (!(value >= 0 && value <= max)) {
    throw new RangeError(`${name} must be in [0, ${max}], got ${value}`);
  }
}

function impairmentOf(direction: string, options: UdpImpairOptions): Impairment {
  const { script: _, reorderFlushMs: __, ...given } = options;
  const imp: Impairment = { ...NO_IMPAIRMENT, ...given };
  for (const name of ["loss", "duplicate", "reorder", "corrupt"] as const) {
    check(`${direction}.${name}`, imp[name], 1);
  }
  for (const name of ["delayMs", "jitterMs", "rate"] as const) {
    check(`${direction}.${name}`, imp[name], Number.MAX_SAFE_INTEGER);
  }
  return imp;
}

/**
 * Bind `options.listen` and relay datagrams to `options.target` until closed.
 *
 * @throws {RangeError} on an impairment out of range; Deno's errors when binding fails.
 */
export function startUdpRelay(options: UdpRelayOptions): UdpRelay {
  const up = impairmentOf("up", options.up ?? {});
  const down = impairmentOf("down", options.down ?? {});
  const upScript = options.up?.script;
  const downScript = options.down?.script;
  const seed = options.seed ?? 1;
  const maxSessions = options.maxSessions ?? 1024;
  const idleTimeoutMs = options.idleTimeoutMs ?? 60_000;
  const counters = options.counters ?? emptyRelayCounters();
  const { gate, log, onDecision } = options;
  const target: Deno.NetAddr = { transport: "udp", ...options.target };
  const listener = Deno.listenDatagram({ transport: "udp", ...options.listen });
  // Sessions by client port, then address: no key string built per datagram.
  const sessions = new Map<number, Map<string, UdpSession>>();
  let live = 0;
  let nextId = 0;
  let closed = false;
  let closing: Promise<void> | undefined;
  let refusedUnlogged = 0;

  const end = (session: UdpSession, why: string) => {
    const byHost = sessions.get(session.client.port);
    if (byHost?.get(session.client.hostname) !== session) return;
    byHost.delete(session.client.hostname);
    if (byHost.size === 0) sessions.delete(session.client.port);
    live--;
    session.up.close();
    session.down.close();
    closeQuietly(session.socket);
    log?.(
      `session ${session.peer} closed: ${formatBytes(session.upBytes)} up, ${
        formatBytes(session.downBytes)
      } down (${why})`,
    );
  };

  const open = (client: Deno.NetAddr): UdpSession | undefined => {
    const peer = formatAddr(client);
    if (live >= maxSessions) {
      counters.refused++;
      if (refusedUnlogged++ === 0) {
        log?.(`refused a datagram from ${peer}: --max-conns ${maxSessions} sessions live`);
      }
      return undefined;
    }
    const id = nextId++;
    let socket: Deno.DatagramConn;
    try {
      socket = Deno.listenDatagram({
        transport: "udp",
        hostname: wildcardFor(target.hostname),
        port: 0,
      });
    } catch (err) {
      log?.(`cannot open a socket toward the target for ${peer}: ${(err as Error).message}`);
      return undefined;
    }
    const common = { queueBytes: options.queueBytes, keepOrder: options.keepOrder };
    const session: UdpSession = {
      id,
      client,
      peer,
      socket,
      up: new DatagramPath(up, {
        ...common,
        random: mulberry32(mixSeed(seed, id, 0)),
        counters: counters.up,
        send: (data) => socket.send(data, target),
        script: upScript,
        reorderFlushMs: options.up?.reorderFlushMs,
        ...(onDecision && { onDecision: (d: PathDecision) => onDecision("up", d) }),
      }),
      down: new DatagramPath(down, {
        ...common,
        random: mulberry32(mixSeed(seed, id, 1)),
        counters: counters.down,
        send: (data) => listener.send(data, client),
        script: downScript,
        reorderFlushMs: options.down?.reorderFlushMs,
        ...(onDecision && { onDecision: (d: PathDecision) => onDecision("down", d) }),
      }),
      lastActive: performance.now(),
      startedAt: performance.now(),
      upBytes: 0,
      downBytes: 0,
      loop: Promise.resolve(),
    };
    let byHost = sessions.get(client.port);
    if (byHost === undefined) sessions.set(client.port, byHost = new Map());
    byHost.set(client.hostname, session);
    live++;
    counters.connections++;
    log?.(`session ${peer} opened (to ${formatHost(target.hostname, target.port)})`);
    session.loop = downLoop(session);
    return session;
  };

  const downLoop = async (session: UdpSession) => {
    const buf = new Uint8Array(65536);
    for (;;) {
      let data: Uint8Array, from: Deno.Addr;
      try {
        [data, from] = await session.socket.receive(buf);
      } catch {
        if (closed || !sessions.get(session.client.port)?.has(session.client.hostname)) return;
        continue; // transient (an ICMP error on some systems)
      }
      // Only the target's datagrams go back: nobody else can use the session's port.
      if (!isFrom(from, target)) continue;
      session.lastActive = performance.now();
      session.downBytes += data.length;
      const sent = session.down.push(data);
      if (sent) await sent;
    }
  };

  const upLoop = async () => {
    const buf = new Uint8Array(65536);
    while (!closed) {
      let data: Uint8Array, from: Deno.Addr;
      try {
        [data, from] = await listener.receive(buf);
      } catch {
        if (closed) return;
        continue;
      }
      if (from.transport !== "udp") continue;
      if (gate && !gate.admitDatagram(from)) continue;
      const session = sessions.get(from.port)?.get(from.hostname) ?? open(from);
      if (session === undefined) continue;
      session.lastActive = performance.now();
      session.upBytes += data.length;
      const sent = session.up.push(data);
      if (sent) await sent;
    }
  };

  const period = idleTimeoutMs > 0 ? Math.max(10, Math.min(1000, idleTimeoutMs / 4)) : 1000;
  const sweeper = setInterval(() => {
    if (refusedUnlogged > 1) {
      log?.(`refused ${formatCount(refusedUnlogged - 1)} more datagrams: --max-conns reached`);
    }
    refusedUnlogged = 0;
    if (idleTimeoutMs <= 0) return;
    const now = performance.now();
    for (const byHost of [...sessions.values()]) {
      for (const session of [...byHost.values()]) {
        if (now - session.lastActive >= idleTimeoutMs) {
          counters.expired++;
          end(session, `idle for ${idleTimeoutMs} ms`);
        }
      }
    }
  }, period);

  const loop = upLoop();
  const close = () => {
    if (closing) return closing;
    closed = true;
    clearInterval(sweeper);
    closeQuietly(listener);
    const all = [...sessions.values()].flatMap((byHost) => [...byHost.values()]);
    for (const session of all) end(session, "relay stopped");
    closing = Promise.all([loop, ...all.map((s) => s.loop)]).then(() => {});
    return closing;
  };

  return {
    addr: listener.addr as Deno.NetAddr,
    counters,
    get sessions() {
      return live;
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}
