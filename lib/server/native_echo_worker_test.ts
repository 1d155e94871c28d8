/**
 * Tests of the native echo Worker's pure parts: its `--allow`/`--deny` check on
 * raw socket addresses agrees with lib/acl.ts, source keys tell peers apart,
 * and its source is self-contained (no module import).
 *
 * @module
 */

import { assert, assertEquals, assertFalse, assertNotEquals } from "@std/assert";
import { AccessList, type Cidr, parseCidr } from "../acl.ts";
import { encodeSockaddr } from "../engine/native/layout.ts";
import { aclPermits, sourceKey, WORKER_CONSTANTS, workerSource } from "./native_echo_worker.ts";

const data = (c: Cidr) => ({ bytes: [...c.bytes], prefix: c.prefix });

/** A sockaddr_in6 for an IPv4-mapped address, as a dual-stack socket reports IPv4 peers. */
function mapped(v4: string, port: number): Uint8Array {
  return encodeSockaddr(`::ffff:${v4}`, port);
}

Deno.test("aclPermits on raw sockaddrs agrees with AccessList on their text, IPv4, IPv6 and mapped", () => {
  const rules = [
    { allow: ["127.0.0.0/8"], deny: ["127.0.0.2"] },
    { allow: [], deny: ["10.0.0.0/9", "::1"] },
    { allow: ["fe80::/10", "192.168.1.0/24"], deny: [] },
    { allow: ["127.0.0.1/32", "::/0"], deny: ["2001:db8::/32"] },
  ];
  const hosts = [
    "127.0.0.1",
    "127.0.0.2",
    "127.255.1.9",
    "10.127.0.1",
    "10.128.0.1",
    "192.168.1.77",
    "192.168.2.1",
    "::1",
    "fe80::1",
    "2001:db8::5",
    "2001:db9::5",
  ];
  for (const r of rules) {
    const allow = r.allow.map((t) => parseCidr(t)!);
    const deny = r.deny.map((t) => parseCidr(t)!);
    const list = new AccessList(allow, deny);
    const acl = { allow: allow.map(data), deny: deny.map(data) };
    for (const host of hosts) {
      const want = list.permits(host);
      assertEquals(aclPermits(acl, encodeSockaddr(host, 5050), WORKER_CONSTANTS), want, host);
      if (!host.includes(":")) {
        assertEquals(aclPermits(acl, mapped(host, 5050), WORKER_CONSTANTS), want, `mapped ${host}`);
      }
    }
  }
});

Deno.test("aclPermits refuses an address family it does not know", () => {
  const acl = { allow: [], deny: [data(parseCidr("10.0.0.0/8")!)] };
  assertFalse(aclPermits(acl, new Uint8Array(16), WORKER_CONSTANTS));
});

Deno.test("sourceKey tells ports apart only when asked, for IPv4 and IPv6", () => {
  const a = encodeSockaddr("127.0.0.1", 1000), b = encodeSockaddr("127.0.0.1", 1001);
  assertNotEquals(sourceKey(a, true), sourceKey(b, true));
  assertEquals(sourceKey(a, false), sourceKey(b, false));
  assertNotEquals(sourceKey(a, false), sourceKey(encodeSockaddr("127.0.0.2", 1000), false));
  const c = encodeSockaddr("::1", 1000), d = encodeSockaddr("::1", 1001);
  assertNotEquals(sourceKey(c, true), sourceKey(d, true));
  assertEquals(sourceKey(c, false), sourceKey(d, false));
  assertEquals(typeof sourceKey(a, true), "number");
});

Deno.test("workerSource is self-contained JavaScript: no import, every function it calls defined", () => {
  const source = workerSource();
  assertFalse(/\bimport\b/.test(source));
  for (const name of ["aclPermits", "sourceKey", "echoLoop"]) {
    assert(source.includes(`function ${name}(`), name);
  }
  // It parses as a script (a syntax error would only show when the Worker starts).
  new Function(source);
});
