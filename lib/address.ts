/**
 * Endpoints: where a socket listens or connects, as a discriminated union on
 * `transport`, plus parsing of `HOST`, `HOST:PORT` and `[v6]:PORT` forms.
 *
 * @example
 * ```ts
 * import { formatEndpoint, splitHostPort } from "./address.ts";
 *
 * splitHostPort("[::1]:7"); // { host: "::1", port: "7" }
 * formatEndpoint({ transport: "tcp", hostname: "::1", port: 7 }); // "tcp [::1]:7"
 * ```
 *
 * @module
 */

/** A TCP endpoint. */
export interface TcpEndpoint extends ClientSide {
  transport: "tcp";
  hostname: string;
  port: number;
}

/** A UDP endpoint. */
export interface UdpEndpoint extends ClientSide {
  transport: "udp";
  hostname: string;
  port: number;
}

/** How a client reaches an IP endpoint; absent fields leave it to the system. */
export interface ClientSide {
  /** Resolve the host name to this family only (`-4`, `-6`). */
  family?: 4 | 6;
  /** Bind the client's local side (`--source ADDR`, `--source-port PORT`). */
  source?: { hostname?: string; port?: number };
}

/** An IP endpoint: TCP or UDP. */
export type IpEndpoint = TcpEndpoint | UdpEndpoint;

/** A Unix domain socket endpoint. */
export interface UnixEndpoint {
  transport: "unix";
  path: string;
}

/** Where to listen or connect. */
export type Endpoint = TcpEndpoint | UdpEndpoint | UnixEndpoint;

/** Host and port text as the user wrote them, before validation. */
export interface HostPort {
  host: string;
  port?: string;
}

/**
 * Split `HOST`, `HOST:PORT`, `[V6]`, `[V6]:PORT` or a bare IPv6 address.
 *
 * @returns `undefined` when brackets are unbalanced.
 */
export function splitHostPort(text: string): HostPort | undefined {
  if (text.startsWith("[")) {
    const close = text.indexOf("]");
    if (close < 0) return undefined;
    const host = text.slice(1, close);
    if (host.includes("[")) return undefined;
    const rest = text.slice(close + 1);
    if (rest === "") return { host };
    if (!rest.startsWith(":")) return undefined;
    return { host, port: rest.slice(1) };
  }
  if (text.includes("[") || text.includes("]")) return undefined;
  const colons = text.split(":").length - 1;
  if (colons === 1) {
    const [host = "", port = ""] = text.split(":");
    return { host, port };
  }
  return { host: text };
}

/** Parse a port number; `undefined` unless an integer in 0..65535. */
export function parsePort(text: string): number | undefined {
  if (!/^\d{1,5}$/.test(text)) return undefined;
  const port = Number(text);
  return port <= 65535 ? port : undefined;
}

/** Format a host for printing: IPv6 literals in brackets. */
export function formatHost(hostname: string, port: number): string {
  return hostname.includes(":") ? `[${hostname}]:${port}` : `${hostname}:${port}`;
}

/** Format an endpoint the way every netkit line prints it: `tcp 127.0.0.1:5050`. */
export function formatEndpoint(endpoint: Endpoint): string {
  switch (endpoint.transport) {
    case "tcp":
    case "udp":
      return `${endpoint.transport} ${formatHost(endpoint.hostname, endpoint.port)}`;
    case "unix":
      return `unix ${endpoint.path}`;
    default: {
      const never: never = endpoint;
      throw new Error(`unknown transport in ${JSON.stringify(never)}`);
    }
  }
}

/**
 * Format a Deno address as a peer: `127.0.0.1:40000` or a Unix path. An IPv4
 * peer of a dual-stack (`::`) socket, which Deno reports IPv4-mapped
 * (`::ffff:127.0.0.1`), prints as the IPv4 address it is, as `--allow`/`--deny` match it.
 */
export function formatAddr(addr: Deno.Addr): string {
  switch (addr.transport) {
    case "tcp":
    case "udp":
      return formatHost(addr.hostname.replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/i, ""), addr.port);
    case "unix":
    case "unixpacket":
      return addr.path || "unix-peer";
    case "vsock":
      return `vsock ${addr.cid}:${addr.port}`;
    default: {
      const never: never = addr;
      throw new Error(`unknown address ${JSON.stringify(never)}`);
    }
  }
}

/** The wildcard address of the same family as `hostname`, for binding a UDP client. */
export function wildcardFor(hostname: string): string {
  return hostname.includes(":") ? "::" : "0.0.0.0";
}

/** 4 or 6 for an IPv4 or IPv6 address literal, `undefined` for anything else (a name). */
export function ipFamily(text: string): 4 | 6 | undefined {
  if (
    /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/.test(text)
  ) {
    return 4;
  }
  if (!text.includes(":") || /[^\da-fA-F:.]/.test(text)) return undefined;
  return URL.canParse(`http://[${text}]/`) ? 6 : undefined;
}

/** Whether `hostname` is a loopback address (127.0.0.0/8, ::1, or `localhost`): no network between. */
export function isLoopback(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, "").toLowerCase();
  return h === "localhost" || h === "::1" || h === "0:0:0:0:0:0:0:1" ||
    /^127\.\d+\.\d+\.\d+$/.test(h);
}
