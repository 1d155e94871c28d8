/**
 * Run a relay from its {@linkcode RelayConfig}: bind LISTEN as the server
 * binds (same errors, TLS material, stale Unix socket handling), resolve or
 * dial TARGET as the client does, and hand over to the stream relay or the
 * UDP relay until the signal aborts.
 *
 * @example
 * ```ts
 * import { relay } from "./relay.ts";
 * import { parseCommandLine } from "../cli/parse.ts";
 * import type { RelayConfig } from "../config.ts";
 *
 * const config = parseCommandLine(["relay", "tcp:127.0.0.1:0", "tcp:127.0.0.1:5050"]) as RelayConfig;
 * const stop = new AbortController();
 * const done = relay(config, { signal: stop.signal, onListening: (where) => console.log(where) });
 * stop.abort();
 * console.log(await done);
 * ```
 *
 * @module
 */

import type { Endpoint } from "../address.ts";
import { dialStream, dialTls, resolve, type StreamConn } from "../client/dial.ts";
import type { RelayConfig, RelayEndpoint } from "../config.ts";
import { fromSystemError, NetkitError } from "../errors.ts";
import { closeQuietly } from "../io.ts";
import { Gate } from "../server/gate.ts";
import { bindOne } from "../server/serve.ts";
import { ServerTlsConn, tlsContext } from "../server/tls_conn.ts";
import { loadServerTls } from "../tls_files.ts";
import { formatRelayEndpoint } from "./address.ts";
import { emptyRelayCounters, type RelayCounters } from "./counters.ts";
import { serveStreamRelay } from "./stream.ts";
import { startUdpRelay } from "./udp.ts";

/** Options of {@linkcode relay}. */
export interface RelayOptions {
  /** Aborting it stops the relay. */
  signal: AbortSignal;
  /**
   * Called once with the address really bound (the port chosen for port 0).
   * @default {() => {}}
   */
  onListening?: (endpoint: RelayEndpoint) => void;
  /**
   * Counters to update live (the result is this object).
   * @default {a fresh object}
   */
  counters?: RelayCounters;
  /**
   * `-v` lines.
   * @default {undefined}
   */
  log?: (line: string) => void;
  /**
   * Warnings shown without -v (refusals, as a count).
   * @default {undefined}
   */
  warn?: (line: string) => void;
}

/** Relay until `options.signal` aborts; returns the counters. */
export async function relay(config: RelayConfig, options: RelayOptions): Promise<RelayCounters> {
  const counters = options.counters ?? emptyRelayCounters();
  const { listen, target } = config;
  // The server's gate: the same rules, counters and log lines as every netkit listener.
  const gate = new Gate(config, counters, options.log ? { log: options.log } : {});
  if (listen.transport === "udp") {
    if (target.transport !== "udp") throw new Error("a UDP relay needs a UDP target");
    const address = await resolve({
      transport: "udp",
      hostname: target.hostname,
      port: target.port,
    });
    let udp;
    try {
      udp = startUdpRelay({
        listen: { hostname: listen.hostname, port: listen.port },
        target: { hostname: address, port: target.port },
        up: config.up,
        down: config.down,
        seed: config.seed,
        queueBytes: config.queueBytes,
        keepOrder: config.keepOrder,
        maxSessions: config.maxConns,
        idleTimeoutMs: config.idleTimeoutMs,
        gate,
        counters,
        ...(options.log && { log: options.log }),
      });
    } catch (err) {
      throw fromSystemError(err, "listen on", formatRelayEndpoint(listen));
    }
    try {
      options.onListening?.({ ...listen, port: udp.addr.port });
      await waitFor(options.signal);
    } finally {
      await udp.close();
    }
    return counters;
  }

  const tls = config.tls ? config.tls.pem ?? await loadServerTls(config.tls) : undefined;
  const endpoint: Endpoint = listen.transport === "unix"
    ? { transport: "unix", path: listen.path }
    : { transport: "tcp", hostname: listen.hostname, port: listen.port };
  const bound = await bindOne(endpoint, listen.transport === "tls" ? tls : undefined);
  if (bound.kind !== "stream") {
    closeQuietly(bound.socket);
    throw new Error("expected a stream listener");
  }
  const dial = (): Promise<StreamConn> => {
    switch (target.transport) {
      case "unix":
        return dialStream({ transport: "unix", path: target.path }, config.connectTimeoutMs);
      case "tcp":
        return dialStream(
          { transport: "tcp", hostname: target.hostname, port: target.port },
          config.connectTimeoutMs,
        );
      case "tls":
        return dialTls(
          { transport: "tcp", hostname: target.hostname, port: target.port },
          config.targetTls ?? { caFile: undefined, insecure: false },
          config.connectTimeoutMs,
        );
      case "udp":
        throw new NetkitError("usage", "a stream relay cannot send to a UDP target");
    }
  };
  // TLS termination as the server does it: over the TCP socket accepted, so that closing a
  // connection mid-handshake frees it at once (lib/server/tls_conn.ts).
  const context = listen.transport === "tls" && tls ? tlsContext(tls.cert, tls.key) : undefined;
  try {
    const real = bound.endpoint;
    options.onListening?.(
      real.transport === "unix" ? listen : { ...listen, port: real.port } as RelayEndpoint,
    );
    await serveStreamRelay(bound.listener, {
      dial,
      up: config.up,
      down: config.down,
      counters,
      signal: options.signal,
      maxConns: config.maxConns,
      idleTimeoutMs: config.idleTimeoutMs,
      firstByteTimeoutMs: config.firstByteTimeoutMs,
      gate,
      ...(context && {
        wrap: (accepted: Deno.Conn) =>
          new ServerTlsConn(accepted as Deno.TcpConn, context) as unknown as Deno.Conn,
      }),
      seed: config.seed,
      queueBytes: config.queueBytes,
      ...(options.log && { log: options.log }),
      ...(options.warn && { warn: options.warn }),
    });
  } finally {
    closeQuietly(bound.listener);
    if (listen.transport === "unix") await Deno.remove(listen.path).catch(() => {});
  }
  return counters;
}

function waitFor(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener("abort", () => resolve(), { once: true });
  });
}
