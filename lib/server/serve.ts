/**
 * The server role: bind every endpoint of a {@linkcode ServerConfig}, serve
 * stream clients concurrently and datagrams as they come, and stop cleanly
 * when the signal aborts.
 *
 * @example
 * ```ts
 * import { serve } from "./serve.ts";
 * import { serverDefaults } from "../config.ts";
 *
 * const controller = new AbortController();
 * const config = serverDefaults([{ transport: "tcp", hostname: "127.0.0.1", port: 0 }]);
 * const done = serve(config, { signal: controller.signal, onListening: (e) => console.log(e) });
 * controller.abort();
 * console.log(await done);
 * ```
 *
 * @module
 */

import type { Engine } from "../engine/types.ts";
import { delay } from "@std/async/delay";
import { type Endpoint, formatAddr, formatEndpoint } from "../address.ts";
import { ChatRoom } from "../behaviours/chat.ts";
import { discardStream } from "../behaviours/discard.ts";
import { echoStream } from "../behaviours/echo.ts";
import type { ServerConfig } from "../config.ts";
import { formatDuration } from "../duration.ts";
import { fromSystemError, NetkitError } from "../errors.ts";
import { closeQuietly, isClosedError, logLine, writeAll } from "../io.ts";
import { loadServerTls, type TlsMaterial } from "../tls_files.ts";
import { formatBytes, formatCount, formatCountOf } from "../units.ts";
import { PLAIN, type Style } from "../terminal.ts";
import { CoarseClock, Session } from "./session.ts";
import { type DatagramHandOver, type DatagramServer, serveDatagrams } from "./datagrams.ts";
// Type only: the native echo Worker's module loads with the first UDP echo or TCP probe.
import type { NativeEcho } from "./native_echo.ts";
import { sniffProbe } from "../probe/codec.ts";
import { Gate } from "./gate.ts";
import { MemoryBudget } from "./memory_budget.ts";
// Type only: node:tls and node:stream (about 8 MiB resident) load when a server has --cert.
import type { ServerTlsConn } from "./tls_conn.ts";
import { ThroughputHub } from "../throughput/hub.ts";
import { Iperf3Server } from "../iperf3/server.ts";

/** Options of {@linkcode serve}. */
export interface ServeOptions {
  /**
   * The engine of throughput tests' UDP ports. The native engine also lets the echo of the
   * server's UDP socket and of TCP probe connections run in a Worker (lib/server/native_echo.ts),
   * started at the first UDP echo or TCP probe.
   * @default {the deno engine}
   */
  engine?: Engine;
  /**
   * Aborting it stops the server: listeners close, then connections.
   * @default {undefined} (runs until `--once` is satisfied)
   */
  signal?: AbortSignal;
  /**
   * Called once per listener with the address it really bound.
   * @default {() => {}}
   */
  onListening?: (endpoint: Endpoint) => void;
  /**
   * Counters to update live (the returned summary is this object).
   * @default {a fresh object}
   */
  summary?: ServerSummary;
  /**
   * Where `-v` lines go.
   * @default {logLine} (stderr)
   */
  log?: (line: string) => void;
  /**
   * Called at once when `signal` aborts, with the connections still open (which
   * the server now drains).
   * @default {undefined}
   */
  onStopping?: (open: number) => void;
  /**
   * A native echo Worker with nothing to do for this long stops (a later echo starts another).
   * @default {5000}
   */
  nativeIdleStopMs?: number;
}

/** What a server did, for its closing line. */
export interface ServerSummary {
  connections: number;
  /** Connections closed at once because `--max-conns` was reached. */
  refused: number;
  /** Connections and datagrams refused by `--allow`/`--deny`. */
  denied: number;
  /** UDP datagrams dropped by `--rate-limit`. */
  rateLimited: number;
  bytesIn: number;
  bytesOut: number;
  datagramsIn: number;
  datagramsOut: number;
}

/** Size of the buffer of a connection's first read (enough to recognise a throughput test). */
const FIRST_READ_BYTES = 4096;
/** How long a throughput control or data connection may take to send its request when
 * `--first-byte-timeout` is 0 (otherwise that timeout applies to the whole request). */
const REQUEST_TIMEOUT_MS = 30_000;
/**
 * The sweeper that enforces every timeout runs this often: a twentieth of the shortest
 * timeout, between 10 and 250 ms. A timeout never fires early (it is timed on
 * `performance.now()` from the last activity the sweeper could have missed) and at most two
 * periods late, so at most a tenth of the timeout and half a second (see README).
 */
function sweepPeriodMs(timeoutsMs: number[]): number {
  const shortest = Math.min(...timeoutsMs.filter((t) => t > 0));
  return Math.max(10, Math.min(250, shortest / 20));
}
/** A native echo Worker with nothing to do for this long stops (a later echo starts another). */
const NATIVE_IDLE_STOP_MS = 5000;
/** Accepting after a failure (out of descriptors) waits this long, doubling up to the cap. */
const ACCEPT_BACKOFF_MS = 50;
const ACCEPT_BACKOFF_MAX_MS = 1000;

/** A bound listener (TCP, TLS, Unix) or UDP socket, with the endpoint it really bound. */
export type Bound =
  | { kind: "stream"; listener: Deno.Listener; endpoint: Endpoint }
  | { kind: "datagram"; socket: Deno.DatagramConn; endpoint: Endpoint };

/** Serve until `options.signal` aborts (or one client was served with `--once`). */
export async function serve(
  config: ServerConfig,
  options: ServeOptions = {},
): Promise<ServerSummary> {
  const log = options.log ?? logLine;
  const summary: ServerSummary = options.summary ?? emptySummary();
  const tls = config.tls ? config.tls.pem ?? await loadServerTls(config.tls) : undefined;
  const bound = await bindAll(config.endpoints, tls);
  const tlsConn = tls ? await import("./tls_conn.ts") : undefined;
  const tlsCtx = tls ? tlsConn!.tlsContext(tls.cert, tls.key) : undefined;
  // One gate for every socket a stranger can reach: listeners and each test's UDP port.
  const gate = new Gate(config, summary, config.verbose ? { log } : {});
  const stop = new AbortController();
  const onAbort = () => {
    options.onStopping?.(live.size);
    stop.abort();
  };
  options.signal?.addEventListener("abort", onAbort, { once: true });
  if (options.signal?.aborted) stop.abort();

  const clock = new CoarseClock();
  const live = new Map<Deno.Conn, Session>();
  const handlers = new Set<Promise<void>>();
  const room = new ChatRoom();
  const memory = new MemoryBudget(config.maxTestMemory);
  const hub = new ThroughputHub({
    counters: summary,
    admitDatagram: (from) => gate.admitDatagram(from),
    memory,
    allowUdpFromAnyIp: config.allowUdpFromAnyIp,
    ...(options.engine && { engine: options.engine }),
    ...(config.verbose && { log }),
  });
  // iperf3 clients: the same gate on the UDP port it opens, the same test memory budget.
  const iperf3 = new Iperf3Server({
    counters: summary,
    admitDatagram: (from) => gate.admitDatagram(from),
    memory,
    ...(options.engine && { engine: options.engine }),
    ...(config.verbose && { log }),
  });
  // The native echo Worker: with the native engine, in echo mode, started lazily (its thread
  // and libc cost memory a server serving only throughput tests never pays).
  const nativeAllowed = options.engine?.name === "native" && config.mode === "echo";
  let native: NativeEcho | undefined;
  let nativeStarting: Promise<NativeEcho | undefined> | undefined;
  /** Workers stopping because idle: the server waits for them before it returns. */
  const nativeStopping = new Set<Promise<void>>();
  const udpEndpoint = bound.find((b) => b.endpoint.transport === "udp")?.endpoint;
  const startNative = () =>
    nativeStarting ??= (async () => {
      let modules;
      try {
        modules = await Promise.all([
          import("./native_echo.ts"),
          import("../engine/native/engine.ts"),
        ]);
      } catch (err) {
        if (config.verbose) {
          log(`native echo unavailable (${(err as Error).message}): the event loop echoes`);
        }
        return undefined;
      }
      const [{ NativeEcho }, { sharedLibc }] = modules;
      const libc = sharedLibc();
      if ("reason" in libc || stop.signal.aborted) return undefined;
      native = new NativeEcho({
        libc,
        allow: config.allow,
        deny: config.deny,
        passAll: config.rateLimit > 0,
        counters: summary,
        ...(udpEndpoint && { udpLabel: formatEndpoint(udpEndpoint) }),
        ...(config.verbose && { log }),
        onReady: (echo) => {
          for (const adopt of whenReady.splice(0)) adopt(echo);
        },
      });
      native.passAll = iperf3.active > 0;
      return await native.start() ? native : undefined;
    })();
  /** UDP sockets the Worker holds: closed once it lets go. */
  const heldUdp = new Set<Deno.DatagramConn>();
  /** Hand-overs waiting for the Worker: run when it is ready, before it says so. */
  const whenReady: ((echo: NativeEcho) => void)[] = [];
  const udpHandOver = (socket: Deno.DatagramConn): DatagramHandOver => {
    let asked = false;
    let held: Promise<boolean> | undefined;
    const adopt = (echo: NativeEcho, server: DatagramServer) => {
      const released = stop.signal.aborted ? undefined : echo.adoptUdp(socket, server);
      if (!released) return;
      heldUdp.add(socket);
      held = released.then((again) => {
        heldUdp.delete(socket);
        held = undefined;
        // An idle Worker gave it back: the next echo may hand it to a new one.
        if (echo.idleStopped) asked = false;
        if (stop.signal.aborted) closeQuietly(socket);
        return again;
      });
    };
    return {
      echoed: (server) => {
        // Not while an iperf3 test may want this port's datagrams (asked again later).
        if (held || asked || iperf3.active > 0) return held;
        asked = true;
        if (native?.running) adopt(native, server);
        else {
          whenReady.push((echo) => adopt(echo, server));
          void startNative();
        }
        return held;
      },
    };
  };
  /** A TCP probe connection served by the Worker; false when it could not take it. */
  const echoNatively = async (conn: Deno.Conn, session: Session, first: Uint8Array) => {
    const echo = await startNative();
    if (!echo?.running || session.draining) return false;
    // The bytes already read go back first, from here; then the Worker echoes the rest.
    session.bytesIn += first.length;
    session.touch();
    session.busy = true;
    await writeAll(conn, first);
    session.busy = false;
    session.bytesOut += first.length;
    const released = echo.adoptTcp(conn, session);
    if (!released) {
      await echoStream(conn, session);
      return true;
    }
    if (config.verbose) log(`probe ${session.peer}: echoed by the native echo Worker`);
    const reason = await released;
    if (reason === "drained" || reason === "server stopping") {
      session.closeReason ??= "server shutting down";
    } else if (reason !== "" && reason !== "dropped") session.closeReason ??= reason;
    return true;
  };
  const firstByteApplies = config.firstByteTimeoutMs > 0 && config.mode !== "chat";
  const requestTimeoutMs = config.firstByteTimeoutMs > 0
    ? config.firstByteTimeoutMs
    : REQUEST_TIMEOUT_MS;
  const handshakeTimeoutMs = tls ? config.tlsHandshakeTimeoutMs : 0;
  const period = sweepPeriodMs([
    config.idleTimeoutMs,
    firstByteApplies ? config.firstByteTimeoutMs : 0,
    config.mode === "chat" ? 0 : requestTimeoutMs,
    handshakeTimeoutMs,
  ]);
  // Without -v, refusals are logged as a count, at most once a second.
  let refusedUnlogged = 0;
  let refusedLoggedAt = 0;
  const logRefused = () => {
    if (refusedUnlogged === 0) return;
    const s = refusedUnlogged === 1 ? "" : "s";
    log(
      `refused ${
        formatCount(refusedUnlogged)
      } connection${s}: --max-conns ${config.maxConns} reached`,
    );
    refusedUnlogged = 0;
    refusedLoggedAt = clock.now;
  };
  // At the file limit, accept failures too are logged as a count, at most once a second.
  let acceptFailures = 0;
  let acceptFailure = "";
  let acceptLoggedAt = -Infinity;
  const logAcceptFailures = () => {
    if (acceptFailures === 0) return;
    const s = acceptFailures === 1 ? "" : "s";
    log(`accept failed ${formatCount(acceptFailures)} time${s}: ${acceptFailure}`);
    acceptFailures = 0;
    acceptLoggedAt = performance.now();
  };
  // A connection's --max-conns slot is freed exactly when its socket is closed, here.
  /** Close `conn`; one the Worker holds it lets go of first (its handler then closes it). */
  const closeConn = (conn: Deno.Conn) => {
    if (native?.owns(conn)) {
      native.drop(conn, true);
      return;
    }
    live.delete(conn);
    closeQuietly(conn);
  };
  /** Why a connection is past one of its timeouts, if it is. */
  const overdue = (conn: Deno.Conn, session: Session, now: number): string | undefined => {
    const age = now - session.startedAt;
    if (
      handshakeTimeoutMs > 0 && tlsConn && conn instanceof tlsConn.ServerTlsConn &&
      (conn as ServerTlsConn).handshaking
    ) {
      if (age >= handshakeTimeoutMs) {
        return `TLS handshake not done within ${formatDuration(handshakeTimeoutMs)}`;
      }
    }
    if (
      firstByteApplies && session.bytesIn === 0 && !session.sniffed &&
      age >= config.firstByteTimeoutMs
    ) {
      return `nothing received within ${formatDuration(config.firstByteTimeoutMs)}`;
    }
    if (session.awaitsRequest && !session.source && age >= requestTimeoutMs) {
      return `request not complete within ${formatDuration(requestTimeoutMs)}`;
    }
    if (config.idleTimeoutMs > 0) {
      // Activity is noticed as a change since the last sweep and dated now, the latest it
      // can have happened: late by up to a period, never early.
      if (session.source?.running || session.lastActive !== session.seenActive) {
        session.seenActive = session.lastActive;
        session.quietSince = now;
      } else if (now - session.quietSince >= config.idleTimeoutMs) {
        return `idle for ${formatDuration(config.idleTimeoutMs)}`;
      }
    }
    return undefined;
  };
  const sweeper = setInterval(() => {
    clock.tick();
    native?.sync();
    if (native && native.passAll && iperf3.active === 0) native.passAll = false;
    if (
      native?.running &&
      native.idleFor(clock.now) >= (options.nativeIdleStopMs ?? NATIVE_IDLE_STOP_MS)
    ) {
      const idle = native;
      native = undefined;
      nativeStarting = undefined;
      const stopping = idle.stopIdle();
      nativeStopping.add(stopping);
      void stopping.then(() => nativeStopping.delete(stopping));
    }
    const now = clock.now;
    if (now - refusedLoggedAt >= 1000) logRefused();
    if (now - acceptLoggedAt >= 1000) logAcceptFailures();
    for (const [conn, session] of live) {
      const why = overdue(conn, session, now);
      if (why === undefined) continue;
      session.closeReason = why;
      closeConn(conn);
    }
  }, period);

  // Shutdown: stop accepting at once; close idle connections; let echoes in flight finish
  // up to the drain timeout, then close whatever is left.
  let drainTimer: ReturnType<typeof setTimeout> | undefined;
  const closeAll = () => {
    hub.closeAll();
    iperf3.closeAll();
    // The Worker lets go of the UDP socket at once (closed then) and drains its connections.
    void native?.stop();
    for (const b of bound) {
      if (b.kind === "datagram" && heldUdp.has(b.socket)) continue;
      closeQuietly(b.kind === "stream" ? b.listener : b.socket);
    }
    for (const [conn, session] of live) {
      session.draining = true;
      if (session.busy || native?.owns(conn)) continue;
      session.closeReason ??= "server shutting down";
      closeConn(conn);
    }
    if (live.size > 0) {
      drainTimer = setTimeout(() => {
        for (const [conn, session] of live) {
          session.closeReason ??= `still busy after the ${
            formatDuration(config.drainTimeoutMs)
          } drain`;
          closeConn(conn);
        }
      }, config.drainTimeoutMs);
    }
  };
  stop.signal.addEventListener("abort", closeAll, { once: true });

  const handle = async (accepted: Deno.Conn) => {
    // TLS runs over the TCP socket the server accepted, so closing it mid-handshake frees it.
    const conn = tlsConn && tlsCtx && accepted.remoteAddr.transport === "tcp"
      ? new tlsConn.ServerTlsConn(accepted as Deno.TcpConn, tlsCtx) as unknown as Deno.Conn
      : accepted;
    const session = new Session(formatAddr(conn.remoteAddr), clock);
    live.set(conn, session);
    if (config.verbose) log(`connect ${session.peer}`);
    try {
      if ("setNoDelay" in conn) (conn as Deno.TcpConn).setNoDelay(true);
      switch (config.mode) {
        case "echo":
        case "discard": {
          // The first bytes say whether this is a throughput test's control or data connection.
          // A small buffer for the first read keeps idle connections cheap (4 KiB, not 64).
          const buf = new Uint8Array(FIRST_READ_BYTES);
          const n = await conn.read(buf);
          if (n === null) break;
          session.sniffed = true;
          session.touch();
          const first = buf.subarray(0, n);
          const onTest = (test: { readonly running: boolean }) => (session.source = test);
          if (Iperf3Server.sniff(first)) {
            // Its UDP streams may use the server's UDP port: the Worker passes datagrams here.
            if (native) native.passAll = true;
            session.closeReason = "iperf3 test";
            await iperf3.handle(conn, first, onTest);
            break;
          }
          switch (ThroughputHub.sniff(first)) {
            case "control":
              session.closeReason = "throughput test control";
              session.awaitsRequest = true;
              await hub.control(conn, first, onTest);
              break;
            case "data":
              session.closeReason = "throughput test data";
              session.awaitsRequest = true;
              await hub.data(conn, first, onTest);
              break;
            default:
              if (config.mode !== "echo") await discardStream(conn, session, first);
              else if (
                !(nativeAllowed && conn === accepted && conn.remoteAddr.transport === "tcp" &&
                  sniffProbe(first) &&
                  await echoNatively(conn, session, first))
              ) await echoStream(conn, session, first);
          }
          break;
        }
        case "chat":
          await room.serve(conn, session);
          break;
        default: {
          const never: never = config.mode;
          throw new Error(`unknown mode ${never}`);
        }
      }
    } catch (err) {
      if (err instanceof Deno.errors.ConnectionReset) session.closeReason ??= "reset by peer";
      else if (tls && err instanceof Deno.errors.InvalidData) {
        session.closeReason ??= `TLS handshake failed: ${(err as Error).message}`;
      } else if (!isClosedError(err)) session.closeReason ??= `error: ${(err as Error).message}`;
    } finally {
      closeConn(conn);
      summary.connections++;
      summary.bytesIn += session.bytesIn;
      summary.bytesOut += session.bytesOut;
      if (config.verbose) {
        const took = formatDuration(performance.now() - session.startedAt);
        const why = session.closeReason ? ` (${session.closeReason})` : "";
        log(
          `disconnect ${session.peer}: ${formatBytes(session.bytesIn)} in, ${
            formatBytes(session.bytesOut)
          } out, ${took}${why}`,
        );
      }
    }
  };

  const acceptLoop = async (listener: Deno.Listener) => {
    let backoffMs = ACCEPT_BACKOFF_MS;
    while (!stop.signal.aborted) {
      let conn: Deno.Conn;
      try {
        conn = await listener.accept();
        backoffMs = ACCEPT_BACKOFF_MS;
      } catch (err) {
        if (stop.signal.aborted || isClosedError(err)) return;
        // Out of file descriptors or a connection reset before accept: keep serving, but
        // back off (the pending connection stays queued) and log a count, not every failure.
        acceptFailures++;
        acceptFailure = (err as Error).message;
        if (performance.now() - acceptLoggedAt >= 1000) logAcceptFailures();
        await delay(backoffMs, { signal: stop.signal }).catch(() => {});
        backoffMs = Math.min(backoffMs * 2, ACCEPT_BACKOFF_MAX_MS);
        continue;
      }
      if (!gate.admitConnection(conn.remoteAddr)) {
        closeQuietly(conn);
        continue;
      }
      if (live.size >= config.maxConns) {
        summary.refused++;
        if (config.verbose) {
          log(`refused ${formatAddr(conn.remoteAddr)}: --max-conns ${config.maxConns} reached`);
        } else {
          refusedUnlogged++;
        }
        closeQuietly(conn);
        continue;
      }
      const task = handle(conn);
      handlers.add(task);
      task.finally(() => handlers.delete(task));
      if (config.once) {
        await task;
        stop.abort();
        return;
      }
    }
  };

  try {
    for (const b of bound) options.onListening?.(b.endpoint);
    await Promise.all(
      bound.map((b) =>
        b.kind === "stream" ? acceptLoop(b.listener) : serveDatagrams(b.socket, {
          ...(b.endpoint.transport === "udp" && shareWithIperf3(iperf3, b.endpoint.port, b.socket)),
          ...(nativeAllowed && b.endpoint.transport === "udp" && {
            handOver: udpHandOver(b.socket),
          }),
          mode: config.mode,
          signal: stop.signal,
          counters: summary,
          ...(gate.active && { admit: (from: Deno.Addr) => gate.admitDatagram(from) }),
          ...(config.verbose && { log }),
        })
      ),
    );
    await Promise.all(handlers);
  } finally {
    clearInterval(sweeper);
    clearTimeout(drainTimer);
    logRefused();
    logAcceptFailures();
    options.signal?.removeEventListener("abort", onAbort);
    stop.abort();
    await Promise.allSettled(handlers);
    // No thread outlives the server.
    await nativeStarting;
    await native?.stop();
    native?.sync();
    await Promise.all(nativeStopping);
    for (const b of bound) {
      if (b.endpoint.transport === "unix") await Deno.remove(b.endpoint.path).catch(() => {});
    }
  }
  return summary;
}

/** A summary with every counter at zero. */
export function emptySummary(): ServerSummary {
  return {
    connections: 0,
    refused: 0,
    denied: 0,
    rateLimited: 0,
    bytesIn: 0,
    bytesOut: 0,
    datagramsIn: 0,
    datagramsOut: 0,
  };
}

/** The closing line printed when a server stops. */
export function formatSummary(s: ServerSummary, style: Style = PLAIN): string {
  const parts = [
    `${formatCount(s.connections)} connection${s.connections === 1 ? "" : "s"} served`,
    `${formatCount(s.refused)} refused`,
    ...(s.denied > 0 ? [`${formatCount(s.denied)} denied`] : []),
    ...(s.rateLimited > 0 ? [`${formatCountOf(s.rateLimited, "datagram")} rate-limited`] : []),
    `${formatBytes(s.bytesIn)} in`,
    `${formatBytes(s.bytesOut)} out`,
  ];
  if (s.datagramsIn > 0 || s.datagramsOut > 0) {
    parts.push(
      `${formatCountOf(s.datagramsIn, "datagram")} in`,
      `${formatCount(s.datagramsOut)} out`,
    );
  }
  return `${style.bold("summary:")} ${parts.join(", ")}`;
}

async function bindAll(endpoints: Endpoint[], tls?: TlsMaterial): Promise<Bound[]> {
  // `--proto both` with port 0: TCP picks a port, UDP must get the same one, and a name
  // (localhost) the same address.
  for (let attempt = 0;; attempt++) {
    const bound: Bound[] = [];
    try {
      let first: { hostname: string; port: number } | undefined;
      for (const endpoint of endpoints) {
        const want = endpoint.transport !== "unix" && first !== undefined
          ? { ...endpoint, ...first }
          : endpoint;
        const b = await bindOne(want, tls);
        if (b.endpoint.transport !== "unix") {
          first = { hostname: b.endpoint.hostname, port: b.endpoint.port };
        }
        bound.push(b);
      }
      return bound;
    } catch (err) {
      for (const b of bound) closeQuietly(b.kind === "stream" ? b.listener : b.socket);
      const retry = err instanceof NetkitError && err.kind === "addr_in_use" && attempt < 20 &&
        endpoints.length > 1 && endpoints[0]?.transport !== "unix" && endpoints[0]?.port === 0;
      if (!retry) throw err;
    }
  }
}

/** Bind one endpoint (TCP over TLS when `tls` is given); errors come typed, as the server's. */
export async function bindOne(endpoint: Endpoint, tls?: TlsMaterial): Promise<Bound> {
  const where = formatEndpoint(endpoint);
  try {
    switch (endpoint.transport) {
      case "tcp": {
        const options = {
          transport: "tcp",
          hostname: endpoint.hostname,
          port: endpoint.port,
        } as const;
        let listener: Deno.Listener;
        try {
          // TLS runs per connection over the plain TCP socket (see tls_conn.ts); Deno's own TLS
          // listener, bound for a moment on an ephemeral port, checks the certificate and key.
          if (tls) Deno.listenTls({ ...options, port: 0, cert: tls.cert, key: tls.key }).close();
          listener = Deno.listen(options);
        } catch (err) {
          if (
            tls && !(err instanceof Deno.errors.AddrInUse) &&
            !(err instanceof Deno.errors.PermissionDenied)
          ) {
            throw new NetkitError(
              "tls",
              `Cannot use the TLS certificate and key: ${
                (err as Error).message
              }; do --cert and --key belong together?`,
            );
          }
          throw err;
        }
        // The address really bound: the port the OS chose, the address a name resolved to.
        const addr = listener.addr as Deno.NetAddr;
        return {
          kind: "stream",
          listener,
          endpoint: { ...endpoint, hostname: addr.hostname, port: addr.port },
        };
      }
      case "udp": {
        const socket = Deno.listenDatagram({
          transport: "udp",
          hostname: endpoint.hostname,
          port: endpoint.port,
        });
        const addr = socket.addr as Deno.NetAddr;
        return {
          kind: "datagram",
          socket,
          endpoint: { ...endpoint, hostname: addr.hostname, port: addr.port },
        };
      }
      case "unix": {
        await removeStaleSocket(endpoint.path);
        const listener = Deno.listen({ transport: "unix", path: endpoint.path });
        return { kind: "stream", listener, endpoint };
      }
      default: {
        const never: never = endpoint;
        throw new Error(`unknown transport ${JSON.stringify(never)}`);
      }
    }
  } catch (err) {
    throw fromSystemError(err, "listen on", where);
  }
}

/** Remove a socket file left by a server that died, but never a live one or a non-socket. */
async function removeStaleSocket(path: string): Promise<void> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.lstat(path);
  } catch {
    return;
  }
  if (!info.isSocket) return; // listen fails with "address in use"; never delete a user's file
  try {
    const conn = await Deno.connect({ transport: "unix", path });
    conn.close();
  } catch (err) {
    if (err instanceof Deno.errors.ConnectionRefused) await Deno.remove(path);
  }
}

/** Let iperf3 tests take their datagrams from the server's own UDP socket on `port`. */
function shareWithIperf3(iperf3: Iperf3Server, port: number, socket: Deno.DatagramConn) {
  iperf3.shareUdp(port, socket);
  return { divert: (data: Uint8Array, from: Deno.Addr) => iperf3.divert(data, from, socket) };
}
