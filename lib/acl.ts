/**
 * Access control by address: `--allow CIDR` and `--deny CIDR`, IPv4 and IPv6,
 * checked on a peer's address before any of its bytes are read. Deny wins;
 * with any allow rule, a peer must match one.
 *
 * @example
 * ```ts
 * import { AccessList, parseCidr } from "./acl.ts";
 *
 * const acl = new AccessList([parseCidr("127.0.0.0/8")!], [parseCidr("127.0.0.2")!]);
 * acl.permits("127.0.0.1"); // true
 * acl.permits("127.0.0.2"); // false
 * acl.permits("::1"); // false: not allowed
 * ```
 *
 * @module
 */

/** A network: address bytes and prefix length. */
export interface Cidr {
  text: string;
  bytes: Uint8Array;
  prefix: number;
}

function parseIpv4(text: string): Uint8Array | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  const out = new Uint8Array(4);
  for (const [i, p] of parts.entries()) {
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255) return undefined;
    out[i] = Number(p);
  }
  return out;
}

function parseIpv6(text: string): Uint8Array | undefined {
  let head = text;
  let v4: Uint8Array | undefined;
  const lastColon = text.lastIndexOf(":");
  if (text.includes(".")) {
    v4 = parseIpv4(text.slice(lastColon + 1));
    if (!v4) return undefined;
    head = text.slice(0, lastColon + 1) + "0:0";
  }
  const halves = head.split("::");
  if (halves.length > 2) return undefined;
  const groups = (s: string) => (s === "" ? [] : s.split(":"));
  const left = groups(halves[0] ?? "");
  const right = halves.length === 2 ? groups(halves[1] ?? "") : [];
  const missing = 8 - left.length - right.length;
  // "::" stands for one or more zero groups (RFC 4291), never for none.
  if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined;
  const all = [...left, ...Array(halves.length === 2 ? missing : 0).fill("0"), ...right];
  const out = new Uint8Array(16);
  for (const [i, g] of all.entries()) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
    const v = parseInt(g, 16);
    out[i * 2] = v >> 8;
    out[i * 2 + 1] = v & 0xff;
  }
  if (v4) out.set(v4, 12);
  return out;
}

/** Parse an IP address into 4 or 16 bytes; IPv4-mapped IPv6 becomes IPv4. */
export function parseIp(text: string): Uint8Array | undefined {
  const v4 = parseIpv4(text);
  if (v4) return v4;
  const v6 = parseIpv6(text.replace(/%.*$/, ""));
  if (!v6) return undefined;
  const mapped = v6.subarray(0, 10).every((b) => b === 0) && v6[10] === 0xff && v6[11] === 0xff;
  return mapped ? v6.slice(12) : v6;
}

/** Parse `ADDR` or `ADDR/PREFIX`; `undefined` when malformed. */
export function parseCidr(text: string): Cidr | undefined {
  const [addr = "", prefixText, extra] = text.split("/");
  if (extra !== undefined) return undefined;
  const bytes = parseIp(addr);
  if (!bytes) return undefined;
  const max = bytes.length * 8;
  if (prefixText !== undefined && !/^\d{1,3}$/.test(prefixText)) return undefined;
  const prefix = prefixText === undefined ? max : Number(prefixText);
  if (prefix > max) return undefined;
  return { text, bytes, prefix };
}

/** Whether `ip` (bytes) lies in `cidr`. */
export function contains(cidr: Cidr, ip: Uint8Array): boolean {
  if (ip.length !== cidr.bytes.length) return false;
  let bits = cidr.prefix;
  for (let i = 0; bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if (((ip[i] ?? 0) & mask) !== ((cidr.bytes[i] ?? 0) & mask)) return false;
  }
  return true;
}

/** Allow and deny rules. */
export class AccessList {
  constructor(readonly allow: readonly Cidr[] = [], readonly deny: readonly Cidr[] = []) {}

  /** Whether any rule is set (otherwise everyone is permitted). */
  get active(): boolean {
    return this.allow.length > 0 || this.deny.length > 0;
  }

  /** Whether a peer at `address` may connect or send. */
  permits(address: string): boolean {
    if (!this.active) return true;
    const ip = parseIp(address);
    if (!ip) return false;
    if (this.deny.some((c) => contains(c, ip))) return false;
    return this.allow.length === 0 || this.allow.some((c) => contains(c, ip));
  }
}
