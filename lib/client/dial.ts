/**
 * Open the client side of a transport: a stream connection (TCP or Unix) with a
 * connect timeout, or a UDP socket with the server's address resolved once.
 *
 * @example
 * ```ts
 * import { dialStream } from "./dial.ts";
 *
 * using conn = await dialStream({ transport: "tcp", hostname: "127.0.0.1", port: 5050 }, 5000);
 * ```
 *
 * @module
 */

// node: because Deno.resolveDns asks DNS servers only; lookup() reads /etc/hosts as the system does.
import { lookup } from "node:dns/promises";
import {
  formatEndpoint,
  type IpEndpoint,
  ipFamily,
  type TcpEndpoint,
  type UnixEndpoint,
  wildcardFor,
} from "../address.ts";
import { deadline } from "../deadline.ts";
import type { DatagramTransport, Engine, HostPort } from "../engine/types.ts";
import { formatDuration } from "../duration.ts";
import { closedWithoutReply, fromSystemError, NetkitError } from "../errors.ts";
import { isClosedError } from "../io.ts";
import { connectBound } from "./bound_tcp.ts";
import { loadCaFile } from "../tls_files.ts";
import { connectInsecureTls } from "./node_tls_conn.ts";

/** A stream endpoint: TCP or a Unix socket. */
export type StreamEndpoint = TcpEndpoint | UnixEndpoint;

/** Connect to a stream endpoint, failing with a typed error after `timeoutMs`. */
export async function dialStream(endpoint: StreamEndpoint, timeoutMs: number): Promise<Deno.Conn> {
  const where = formatEndpoint(endpoint);
  let pending: Promise<Deno.Conn>;
  if (endpoint.transport === "unix") {
    pending = Deno.connect({ transport: "unix", path: endpoint.path });
  } else if (endpoint.family === undefined && endpoint.source === undefined) {
    pending = Deno.connect({ transport: "tcp", hostname: endpoint.hostname, port: endpoint.port });
  } else {
    const { source, port } = endpoint;
    const address = await resolve(endpoint);
    pending = source
      ? connectBound(address, port, source)
      : Deno.connect({ transport: "tcp", hostname: address, port });
  }
  try {
    const conn = await deadline<Deno.Conn>(
      pending,
      timeoutMs,
      () =>
        new NetkitError(
          "timeout",
          `Timed out after ${formatDuration(timeoutMs)} connecting to ${where}`,
        ),
    );
    if (endpoint.transport === "tcp") (conn as Deno.TcpConn).setNoDelay(true);
    return conn;
  } catch (err) {
    // A connect that completes after the deadline must not leak its socket.
    pending.then((conn) => conn.close(), () => {});
    throw fromSystemError(err, "connect to", where);
  }
}

/** The part of a connection the client uses: a `Deno.Conn` fits, and so does TLS. */
export interface StreamConn extends Disposable {
  read(p: Uint8Array): Promise<number | null>;
  write(p: Uint8Array): Promise<number>;
  closeWrite(): Promise<void>;
  close(): void;
}

/** TLS for a client connection. */
export interface ClientTls {
  /** PEM file of a CA to trust besides the system's. */
  caFile: string | undefined;
  /** That file's text, when it was read at start (before privileges drop). */
  caPem?: string;
  /** Skip certificate verification altogether. */
  insecure: boolean;
}

/** Connect over TLS (TCP only) and complete the handshake within `timeoutMs`. */
export async function dialTls(
  endpoint: TcpEndpoint,
  tls: ClientTls,
  timeoutMs: number,
): Promise<StreamConn> {
  const where = formatEndpoint(endpoint);
  let caCerts: string[] | undefined;
  const ca = tls.caPem ?? (tls.caFile !== undefined ? await loadCaFile(tls.caFile) : undefined);
  if (ca !== undefined) caCerts = [ca];
  const connecting: Promise<StreamConn> = tls.insecure
    ? connectInsecureTls(endpoint.hostname, endpoint.port)
    : (async () => {
      const conn = await Deno.connectTls({
        hostname: endpoint.hostname,
        port: endpoint.port,
        ...(caCerts && { caCerts }),
      });
      try {
        await conn.handshake();
      } catch (err) {
        conn.close();
        throw err;
      }
      return conn;
    })();
  try {
    return await deadline(
      connecting,
      timeoutMs,
      () =>
        new NetkitError(
          "timeout",
          `Timed out after ${
            formatDuration(timeoutMs)
          } waiting for a TLS handshake with ${where}: is it a TLS server?`,
        ),
    );
  } catch (err) {
    connecting.then((conn) => conn.close(), () => {});
    if (err instanceof NetkitError) throw err;
    // Closed or reset before the handshake ended: turned away, most likely by a limit.
    const code = (err as { code?: unknown } | null)?.code;
    if (isClosedError(err) || code === "ECONNRESET" || code === "EPIPE") {
      throw closedWithoutReply(where);
    }
    // Failing to reach the server is reported as for any connection; the rest is TLS's.
    const reached = fromSystemError(err, "connect to", where);
    if (reached.kind !== "network" && reached.kind !== "tls") throw reached;
    const detail = (err as Error).message;
    const plain = explainCertificate(detail, endpoint.hostname, tls.caFile);
    const hint = /certificate|issuer|expired|NotValidForName/i.test(detail)
      ? "trust its CA with --ca FILE, or skip verification with --insecure"
      : "is it a TLS server?";
    throw new NetkitError(
      "tls",
      `TLS handshake with ${where} failed: ${plain ?? `${detail}; ${hint}`}`,
      { cause: err },
    );
  }
}

/**
 * The certificate failures a user meets most, from the TLS library's terms
 * (e.g. `invalid peer certificate: Other(OtherError(CaUsedAsEndEntity))`) to
 * what happened and what to do; `undefined` for any other failure.
 */
export function explainCertificate(
  detail: string,
  hostname: string,
  caFile: string | undefined,
): string | undefined {
  const insecure = "or use --insecure to skip verification for a test";
  if (/CaUsedAsEndEntity/.test(detail)) {
    const fix = caFile !== undefined
      ? `if --ca '${caFile}' holds the server's own certificate, give --ca the CA that signed it instead, ${insecure}`
      : `the server needs a certificate signed by a CA, ${insecure}`;
    return `the server's certificate is a CA certificate (self-signed, CA:TRUE), which TLS does not accept as a server's own: ${fix}`;
  }
  if (/UnknownIssuer/.test(detail)) {
    return `the server's certificate is not signed by a CA this client trusts: ${
      caFile !== undefined
        ? `--ca '${caFile}' is not the CA that signed it; give that CA with --ca FILE`
        : "give the CA that signed it with --ca FILE"
    }, ${insecure}`;
  }
  if (/NotValidForName/.test(detail)) {
    return `the server's certificate does not name '${hostname}': connect by a name or address it lists, ${insecure}`;
  }
  if (/Expired|NotValidYet/.test(detail)) {
    return `the server's certificate has expired or is not valid yet: check its dates and both clocks, ${insecure}`;
  }
  return undefined;
}

/** A UDP client socket and the resolved server address it talks to. */
export interface DatagramPeer {
  socket: Deno.DatagramConn;
  peer: Deno.NetAddr;
}

/**
 * Resolve `endpoint` (names through the system resolver, `/etc/hosts` included)
 * and bind a UDP socket of the same family on an ephemeral port.
 */
export async function openDatagram(endpoint: IpEndpoint): Promise<DatagramPeer> {
  const where = formatEndpoint(endpoint);
  const address = await resolve(endpoint);
  try {
    const socket = Deno.listenDatagram({
      transport: "udp",
      hostname: endpoint.source?.hostname ?? wildcardFor(address),
      port: endpoint.source?.port ?? 0,
    });
    return { socket, peer: { transport: "udp", hostname: address, port: endpoint.port } };
  } catch (err) {
    throw fromSystemError(err, "open a UDP socket for", where);
  }
}

/**
 * Open `engine`'s UDP socket connected to `remote` (the resolved `endpoint`),
 * bound to the endpoint's `--source` address and port if it names them.
 */
export function openEngineDatagram(
  engine: Engine,
  endpoint: IpEndpoint,
  remote: HostPort,
  where: string,
): Promise<DatagramTransport> {
  const source = endpoint.source;
  return engine.open({
    remote,
    // Probes and messages: paced, and timed on arrival.
    receiveWait: "event-loop",
    ...(source && {
      local: {
        hostname: source.hostname ?? wildcardFor(remote.hostname),
        port: source.port ?? 0,
      },
    }),
  }).catch((err) => {
    throw fromSystemError(err, "open a UDP socket for", where);
  });
}

/**
 * Resolve an endpoint's host (names through the system resolver, `/etc/hosts`
 * included) to one address of its `family`, or of its source address's
 * family, or of either.
 */
export async function resolve(
  endpoint: IpEndpoint,
  where: string = formatEndpoint(endpoint),
): Promise<string> {
  const source = endpoint.source?.hostname;
  const family = endpoint.family ?? (source === undefined ? undefined : ipFamily(source));
  try {
    return (await lookup(endpoint.hostname, family === undefined ? {} : { family })).address;
  } catch (err) {
    const ipv = family === undefined ? "" : ` (IPv${family} only)`;
    throw new NetkitError(
      "not_found",
      `Cannot resolve ${where}${ipv}: host name not found; check the spelling or use an IP address`,
      { cause: err },
    );
  }
}

/**
 * "nothing listens on udp HOST:PORT" (exit 3, as a refused TCP connect): what
 * ICMP port unreachable means, however it was learnt.
 */
export function nothingListensOnUdp(peer: { hostname: string; port: number }): NetkitError {
  return new NetkitError(
    "refused",
    `nothing listens on ${
      formatEndpoint({ transport: "udp", hostname: peer.hostname, port: peer.port })
    }: start a UDP echo server there (netkit server --proto udp or --proto both)`,
  );
}

/**
 * Whether `err` is ICMP port unreachable as a connected UDP socket reports it:
 * `ECONNREFUSED` from the next send or receive (the native engine's sockets
 * are connected; Deno's own never report it).
 */
export function isPortUnreachable(err: unknown): boolean {
  return err instanceof Deno.errors.ConnectionRefused ||
    (err as { code?: unknown } | null)?.code === "ECONNREFUSED";
}

/**
 * The deno engine's fallback for {@linkcode nothingListensOnUdp}: fail with it
 * when this host can tell that no socket is bound at `peer`.
 *
 * The honest test is ICMP port unreachable on a connected UDP socket, and the
 * native engine (Linux) has one: probe, message and compare on it see
 * `ECONNREFUSED` ({@linkcode isPortUnreachable}) for any host, and do not call
 * this. Deno's own sockets offer none: `Deno.listenDatagram` cannot connect,
 * the `connect()` of its `node:dgram` is emulated with `sendto` (no
 * `connect(2)`, so no ECONNREFUSED), and the kernel's tables under
 * `/proc/net` need `--allow-all`. So it stays for the deno engine (every other
 * OS, and `--engine deno`), where what remains is exact for this host's own
 * addresses only: binding the address and port fails with "address in use"
 * when anything is bound there, and succeeds (the socket is closed at once)
 * when nothing is. It is a moment's look (a server starting at that instant
 * is missed); for other hosts it cannot tell, and a run without any reply
 * says "no reply at all: is anything listening on udp HOST:PORT?" (exit 5).
 */
export function ensureUdpListener(peer: Deno.NetAddr): void {
  if (peer.port === 0) return;
  let probe: Deno.DatagramConn;
  try {
    probe = Deno.listenDatagram({ transport: "udp", hostname: peer.hostname, port: peer.port });
  } catch {
    return; // in use (something listens), or not this host's address: cannot tell
  }
  probe.close();
  throw nothingListensOnUdp(peer);
}

/** Whether a datagram came from `peer` (same address and port). */
export function isFrom(addr: Deno.Addr, peer: Deno.NetAddr): boolean {
  return addr.transport === "udp" && addr.port === peer.port &&
    sameHost(addr.hostname, peer.hostname);
}

function sameHost(a: string, b: string): boolean {
  return a === b || a.replace(/^::ffff:/, "") === b.replace(/^::ffff:/, "");
}
