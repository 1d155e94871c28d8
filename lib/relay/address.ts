/**
 * The relay's address forms: `PROTO:PORT` (listen on every IPv4 interface),
 * `PROTO:HOST:PORT`, `PROTO:[V6]:PORT` and `unix:PATH`, where PROTO is `tcp`,
 * `udp` or `tls` (TCP with TLS: termination when listening, origination when
 * connecting).
 *
 * @example
 * ```ts
 * import { formatRelayEndpoint, parseRelayAddress } from "./address.ts";
 *
 * const listen = parseRelayAddress("udp:5353", "listen"); // { transport: "udp", hostname: "0.0.0.0", port: 5353 }
 * const target = parseRelayAddress("udp:[::1]:53", "target");
 * if (typeof target !== "string") console.log(formatRelayEndpoint(target)); // "udp [::1]:53"
 * ```
 *
 * @module
 */

import { formatHost, parsePort, splitHostPort } from "../address.ts";
import type { RelayEndpoint } from "../config.ts";

const PROTOS = ["tcp", "udp", "tls", "unix"] as const;

/** The forms, for error messages. */
export const RELAY_ADDRESS_FORMS =
  "tcp:PORT, tcp:HOST:PORT, udp:[V6]:PORT, tls:HOST:PORT or unix:PATH";

/**
 * Parse one relay address. `PROTO:PORT` listens on `0.0.0.0`; a target needs a host.
 *
 * @returns the endpoint, or a sentence saying what is wrong.
 */
export function parseRelayAddress(text: string, role: "listen" | "target"): RelayEndpoint | string {
  const colon = text.indexOf(":");
  const proto = colon < 0 ? text : text.slice(0, colon);
  if (!(PROTOS as readonly string[]).includes(proto)) {
    return `'${text}' does not start with tcp:, udp:, tls: or unix:`;
  }
  const rest = colon < 0 ? "" : text.slice(colon + 1);
  if (proto === "unix") {
    return rest === "" ? `'${text}' names no socket path` : { transport: "unix", path: rest };
  }
  const transport = proto as "tcp" | "udp" | "tls";
  if (rest === "") return `'${text}' names no port`;
  let host: string | undefined;
  let portText: string;
  if (/^\d+$/.test(rest)) {
    portText = rest;
  } else {
    const split = splitHostPort(rest);
    if (split === undefined || split.port === undefined || split.host === "") {
      return `'${text}' is not PROTO:PORT, PROTO:HOST:PORT or PROTO:[V6]:PORT`;
    }
    host = split.host;
    portText = split.port;
  }
  if (host !== undefined && /[\s/]/.test(host)) return `'${host}' is not a host name or address`;
  const port = parsePort(portText);
  if (port === undefined) return `'${portText}' in '${text}' is not a port from 0 to 65535`;
  if (role === "target") {
    if (host === undefined) {
      return `the target '${text}' needs a host, e.g. ${proto}:127.0.0.1:${port}`;
    }
    if (port === 0) return `the target '${text}' needs a port from 1 to 65535`;
  }
  return { transport, hostname: host ?? "0.0.0.0", port };
}

/** `tcp 127.0.0.1:80`, `tls [::1]:443`, `unix /tmp/a.sock`, as netkit prints endpoints. */
export function formatRelayEndpoint(endpoint: RelayEndpoint): string {
  return endpoint.transport === "unix"
    ? `unix ${endpoint.path}`
    : `${endpoint.transport} ${formatHost(endpoint.hostname, endpoint.port)}`;
}

/** Whether the endpoint carries a byte stream (TCP, TLS, Unix) rather than datagrams. */
export function isStream(endpoint: RelayEndpoint): boolean {
  return endpoint.transport !== "udp";
}
